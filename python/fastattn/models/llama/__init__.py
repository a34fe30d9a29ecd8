"""The LLaMA family (model_type "llama", "mistral", "qwen2"): config (LlamaConfig, RoPE and
sliding-window parsing), checkpoint schema (llama_tensor_shapes), builder (build_llama) of the
shared decoder forward, fastattn.models.decoder.DecoderLM."""
from .builder import build_llama
from .config import LlamaConfig
from .schema import llama_tensor_shapes

__all__ = ["LlamaConfig", "llama_tensor_shapes", "build_llama"]
