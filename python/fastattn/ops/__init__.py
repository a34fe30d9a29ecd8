"""NumPy-in, NumPy-out wrappers of every kernel: validation, docstrings, ``out=`` handling."""
from .activation import gelu, relu, silu, swiglu
from .attention import attention
from .matmul import PackedMatrix, matmul
from .norm import layer_norm, rms_norm
from .resample import adaptive_avg_pool2d, interpolate, max_pool2d
from .rope import rope
from .softmax import log_softmax, softmax

__all__ = ["softmax", "log_softmax", "layer_norm", "rms_norm", "gelu", "silu", "relu", "swiglu",
           "matmul", "PackedMatrix", "attention", "rope", "max_pool2d", "adaptive_avg_pool2d",
           "interpolate"]
