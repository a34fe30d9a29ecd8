"""layer_norm and rms_norm over the last axis."""
from __future__ import annotations

import numpy as np

from .. import _core
from .. import _validate as v
from .softmax import _rowwise


def _param(op: str, name: str, p, n: int) -> np.ndarray | None:
    p = v.optional_float32(op, name, p)
    if p is not None:
        v.require_shape(op, name, p, (n,), "to match x's last axis")
        p = np.ascontiguousarray(p)
    return p


def _last_axis(op: str, x) -> int:
    x = v.float32_array(op, "x", x)
    if x.ndim == 0:
        raise ValueError(f"{op}: x must have at least 1 dimension, got a 0-d array")
    return x.shape[-1]


def layer_norm(x: np.ndarray, weight: np.ndarray | None = None, bias: np.ndarray | None = None,
               eps: float = 1e-5, *, out: np.ndarray | None = None) -> np.ndarray:
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis.

    mean and the biased variance var = mean((x - mean)^2) are computed per row in float32 with a
    compensated two-pass sum. ``weight`` and ``bias`` are optional ``(D,)`` float32 arrays;
    ``eps`` must be finite and >= 0."""
    op = "layer_norm"
    n = _last_axis(op, x)
    w, b = _param(op, "weight", weight, n), _param(op, "bias", bias, n)
    eps = v.positive_float(op, "eps", eps, allow_zero=True)
    return _rowwise(op, x, -1, out, lambda a, o: _core.layer_norm(a, w, b, eps, o))


def rms_norm(x: np.ndarray, weight: np.ndarray | None = None, eps: float = 1e-6, *,
             out: np.ndarray | None = None) -> np.ndarray:
    """y = x / sqrt(mean(x^2) + eps) * weight over the last axis (LLaMA's RMSNorm)."""
    op = "rms_norm"
    n = _last_axis(op, x)
    w = _param(op, "weight", weight, n)
    eps = v.positive_float(op, "eps", eps, allow_zero=True)
    return _rowwise(op, x, -1, out, lambda a, o: _core.rms_norm(a, w, eps, o))
