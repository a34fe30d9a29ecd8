"""LayerNorm and RMSNorm layers over the last axis (kernels: fastattn.layer_norm / rms_norm)."""
from __future__ import annotations

import numpy as np

from .. import ops


class LayerNorm:
    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, eps: float):
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        self.bias = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
        self.eps = float(eps)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ops.layer_norm(x, self.weight, self.bias, self.eps)


class RMSNorm:
    def __init__(self, weight: np.ndarray, eps: float):
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        self.eps = float(eps)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ops.rms_norm(x, self.weight, self.eps)
