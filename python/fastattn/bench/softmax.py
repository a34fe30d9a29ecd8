"""Benchmark cases for softmax and log_softmax (row-wise, 4096 x 4096 float32) against the
NumPy reference and torch."""
from __future__ import annotations

import fastattn
from fastattn import reference

from . import ROWWISE_GOAL, Case, RowInputs, with_torch


def cases(quick: bool = False):
    r = RowInputs.make(quick)
    x, out, t = r.x, r.out, r.t
    yield Case("softmax", r.shape, with_torch(r.torch, {
        "fastattn": lambda: fastattn.softmax(x, out=out),
        "numpy": lambda: reference.softmax(x),
    }, lambda: r.torch.softmax(t["x"], dim=-1)), bytes=r.nbytes, goal=ROWWISE_GOAL)
    yield Case("log_softmax", r.shape, with_torch(r.torch, {
        "fastattn": lambda: fastattn.log_softmax(x, out=out),
        "numpy": lambda: reference.log_softmax(x),
    }, lambda: r.torch.log_softmax(t["x"], dim=-1)), bytes=r.nbytes, goal=ROWWISE_GOAL)
