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
from .similarity import cosine_similarity, dot_scores, top_k_neighbours  # noqa: E402
from .tokenizers import WordPieceTokenizer, train_wordpiece  # noqa: E402
from .models.bert import BertModel, BertOutput  # noqa: E402
from .pipelines import embed  # noqa: E402
from .ops import (PackedMatrix, attention, gelu, layer_norm, log_softmax, matmul, relu,  # noqa: E402
                  rms_norm, rope, silu, softmax, swiglu)
from .ops import adaptive_avg_pool2d, interpolate, max_pool2d  # noqa: E402
from .ops import conv2d, conv_transpose2d  # noqa: E402
from .position_encodings import (RandomFourierEncoding, alibi_bias, alibi_slopes,  # noqa: E402
                        sinusoidal_positions)
from .kv_cache import KVCache  # noqa: E402
from .weight_formats import WEIGHT_FORMATS  # noqa: E402
from .io import Checkpoint, SafetensorsFile, save_checkpoint, save_safetensors  # noqa: E402
from .loading import load, load_config  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "WordPieceTokenizer", "train_wordpiece", "BertModel", "BertOutput", "embed",
    "cosine_similarity", "dot_scores", "top_k_neighbours",
    "softmax", "log_softmax", "layer_norm", "rms_norm", "gelu", "silu", "relu", "swiglu",
    "matmul", "PackedMatrix", "WEIGHT_FORMATS", "attention", "conv2d", "conv_transpose2d",
    "max_pool2d", "adaptive_avg_pool2d", "interpolate",
    "rope", "sinusoidal_positions", "alibi_slopes", "alibi_bias", "RandomFourierEncoding",
    "KVCache",
    "available_isas", "get_isa", "set_isa", "use_isa",
    "get_num_threads", "set_num_threads", "threads", "cpu_info", "reference",
    "load", "load_config", "Checkpoint", "SafetensorsFile", "save_checkpoint", "save_safetensors",
]
