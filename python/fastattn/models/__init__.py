"""Models assembled from fastattn.layers: DecoderLM (GPT-2, LLaMA, Mistral, Qwen2) and BERT.
`fastattn.load(path)` picks the builder from config.json's model_type."""
from .bert import BertModel
from .decoder import DecoderLM
from .gpt2 import build_gpt2
from .llama import build_llama

__all__ = ["DecoderLM", "BertModel", "build_gpt2", "build_llama"]
