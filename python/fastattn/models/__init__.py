"""Models assembled from fastattn.layers, one folder per family (config, checkpoint schema,
builder, forward): gpt2/ and llama/ build the shared DecoderLM (decoder.py), bert/ holds
BertModel. `fastattn.load(path)` picks the family from config.json's model_type
(fastattn.loading.FAMILIES)."""
from .bert import BertModel
from .decoder import DecoderLM
from .gpt2 import build_gpt2
from .llama import build_llama

__all__ = ["DecoderLM", "BertModel", "build_gpt2", "build_llama"]
