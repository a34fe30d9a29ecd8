"""GPT-2 (model_type "gpt2"): config (GPT2Config), checkpoint schema (gpt2_tensor_shapes),
builder (build_gpt2) of the shared decoder forward, fastattn.models.decoder.DecoderLM."""
from .builder import build_gpt2
from .config import GPT2Config
from .schema import gpt2_tensor_shapes

__all__ = ["GPT2Config", "gpt2_tensor_shapes", "build_gpt2"]
