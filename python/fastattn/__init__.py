"""fastattn: transformers explained down to the equation, and run fast on a CPU.

Kernels (SIMD + OpenMP, C++) behind NumPy-in / NumPy-out functions; ``fastattn.reference``
holds the same ops as readable NumPy.
"""
from . import _core
from .runtime import (available_isas, cpu_info, get_isa, get_num_threads, set_isa,
                      set_num_threads, threads, use_isa)
from .runtime import _apply_environment

_apply_environment()

from . import reference  # noqa: E402
from .ops import gelu, layer_norm, log_softmax, relu, rms_norm, silu, softmax, swiglu  # noqa: E402
from .io import (Checkpoint, SafetensorsFile, load_config, save_checkpoint,  # noqa: E402
                 save_safetensors)
from .loading import load  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "softmax", "log_softmax", "layer_norm", "rms_norm", "gelu", "silu", "relu", "swiglu",
    "available_isas", "get_isa", "set_isa", "use_isa",
    "get_num_threads", "set_num_threads", "threads", "cpu_info", "reference",
    "load", "load_config", "Checkpoint", "SafetensorsFile", "save_checkpoint", "save_safetensors",
]
