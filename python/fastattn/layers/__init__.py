"""Layers: thin Python over the kernels, shared by every model (GPT-2, LLaMA family, BERT, ViT).
No per-token or per-head Python loops: each layer is a few whole-tensor kernel calls."""
from .attention import Attention, RotaryConfig, merge_heads, split_heads
from .block import TransformerBlock
from .embedding import Embedding
from .linear import Linear
from .mlp import ACTIVATIONS, MLP, GatedMLP, activation_name
from .norm import LayerNorm, RMSNorm

__all__ = ["Linear", "Embedding", "LayerNorm", "RMSNorm", "MLP", "GatedMLP", "Attention",
           "RotaryConfig", "TransformerBlock", "activation_name", "ACTIVATIONS",
           "split_heads", "merge_heads"]
