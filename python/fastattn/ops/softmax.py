"""softmax and log_softmax along any axis."""
from __future__ import annotations

import numpy as np

from .. import _core
from .. import _validate as v
from .._layout import run_rows


def _softmax(op: str, x, axis, out, log: bool) -> np.ndarray:
    x = v.float32_array(op, "x", x)
    axis = v.normalize_axis(op, axis, x.ndim)
    out = v.prepare_out(op, out, x.shape, {"x": x})
    return run_rows(x, axis, out, lambda a, o: _core.softmax(a, o, log))


def softmax(x: np.ndarray, axis: int = -1, *, out: np.ndarray | None = None) -> np.ndarray:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along ``axis``.

    float32 in, float32 out, any shape and strides. ``-inf`` entries get probability 0; a slice
    that is entirely ``-inf`` gives zeros (no NaN). NaN or +inf in a slice gives NaN for it.
    ``out`` may be ``x`` itself (in place). Accuracy: within 1e-6 relative of float64 for logits
    spread over less than ~8 (docs/numerics.md)."""
    return _softmax("softmax", x, axis, out, log=False)


def log_softmax(x: np.ndarray, axis: int = -1, *, out: np.ndarray | None = None) -> np.ndarray:
    """log_softmax(x)_i = (x_i - max x) - log(sum_j exp(x_j - max x)) along ``axis``.

    A slice that is entirely ``-inf`` gives ``-inf`` everywhere. Same conventions as softmax."""
    return _softmax("log_softmax", x, axis, out, log=True)
