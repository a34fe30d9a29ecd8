"""Benchmark cases for layer_norm and rms_norm (row-wise, 4096 x 4096 float32, affine)
against the NumPy reference and torch."""
from __future__ import annotations

import fastattn
from fastattn import reference

from . import ROWWISE_GOAL, Case, RowInputs, with_torch


def cases(quick: bool = False):
    r = RowInputs.make(quick)
    x, w, b, out, t = r.x, r.w, r.b, r.out, r.t
    n = x.shape[1]
    F = r.torch.nn.functional if r.torch is not None else None
    yield Case("layer_norm", r.shape, with_torch(r.torch, {
        "fastattn": lambda: fastattn.layer_norm(x, w, b, out=out),
        "numpy": lambda: reference.layer_norm(x, w, b),
    }, lambda: F.layer_norm(t["x"], (n,), t["w"], t["b"])), bytes=r.nbytes, goal=ROWWISE_GOAL)
    yield Case("rms_norm", r.shape, with_torch(r.torch, {
        "fastattn": lambda: fastattn.rms_norm(x, w, out=out),
        "numpy": lambda: reference.rms_norm(x, w),
    }, lambda: F.rms_norm(t["x"], (n,), t["w"])), bytes=r.nbytes, goal=ROWWISE_GOAL)
