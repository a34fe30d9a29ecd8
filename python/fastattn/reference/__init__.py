"""Readable NumPy implementations of every fastattn op: the math as a reader would write it.

They accept any float dtype; the tests evaluate them in float64 and compare the kernels
against them. They materialise whatever the formula names (no tiling, no fusion)."""
from .activation import gelu, relu, sigmoid, silu, swiglu
from .attention import attention, attention_mask
from .matmul import matmul
from .norm import layer_norm, rms_norm
from .resample import adaptive_avg_pool2d, interpolate, max_pool2d
from .kv_cache import cached_attention
from .position_encodings import alibi_bias, alibi_slopes, random_fourier, sinusoidal_positions
from .rope import rope
from .softmax import log_softmax, softmax

__all__ = ["softmax", "log_softmax", "layer_norm", "rms_norm", "gelu", "silu", "relu",
           "swiglu", "sigmoid", "matmul", "attention", "attention_mask", "rope",
           "cached_attention", "sinusoidal_positions", "alibi_slopes", "alibi_bias",
           "random_fourier", "max_pool2d", "adaptive_avg_pool2d", "interpolate"]
