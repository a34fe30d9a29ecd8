"""layer_norm and rms_norm over the last axis."""
from __future__ import annotations

import numpy as np

from .. import _core
from .. import _validate as v
from .._layout import contiguous, run_rows


def _param(op: str, name: str, p, n: int) -> np.ndarray | None:
    p = v.optional_float32(op, name, p)
    if p is not None:
        v.require_shape(op, name, p, (n,), "to match x's last axis")
        p = contiguous(p)
    return p


def _input(op: str, x) -> np.ndarray:
    """x checked: float32 with a last axis to normalise over."""
    x = v.float32_array(op, "x", x)
    v.normalize_axis(op, -1, x.ndim)
    return x


def layer_norm(x: np.ndarray, weight: np.ndarray | None = None, bias: np.ndarray | None = None,
               eps: float = 1e-5, *, out: np.ndarray | None = None) -> np.ndarray:
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis.

    mean and the biased variance var = mean((x - mean)^2) are computed per row in float32 with a
    compensated two-pass sum. ``weight`` and ``bias`` are optional ``(D,)`` float32 arrays;
    ``eps`` must be >= 0 and finite in float32."""
    op = "layer_norm"
    x = _input(op, x)
    n = x.shape[-1]
    w, b = _param(op, "weight", weight, n), _param(op, "bias", bias, n)
    eps = v.positive_float(op, "eps", eps, allow_zero=True, float32=True)
    out = v.prepare_out(op, out, x.shape, {"x": x})
    return run_rows(x, x.ndim - 1, out, lambda a, o: _core.layer_norm(a, w, b, eps, o))


def rms_norm(x: np.ndarray, weight: np.ndarray | None = None, eps: float = 1e-6, *,
             out: np.ndarray | None = None) -> np.ndarray:
    """y = x / sqrt(mean(x^2) + eps) * weight over the last axis (LLaMA's RMSNorm)."""
    op = "rms_norm"
    x = _input(op, x)
    w = _param(op, "weight", weight, x.shape[-1])
    eps = v.positive_float(op, "eps", eps, allow_zero=True, float32=True)
    out = v.prepare_out(op, out, x.shape, {"x": x})
    return run_rows(x, x.ndim - 1, out, lambda a, o: _core.rms_norm(a, w, eps, o))
