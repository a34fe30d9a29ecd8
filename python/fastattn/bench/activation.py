"""Benchmark cases for the element-wise activations (gelu, gelu_tanh, silu, swiglu) on
4096 x 4096 float32 against the NumPy reference and torch."""
from __future__ import annotations

import fastattn
from fastattn import reference

from . import ROWWISE_GOAL, Case, RowInputs, with_torch


def cases(quick: bool = False):
    r = RowInputs.make(quick)
    x, g, out, t = r.x, r.g, r.out, r.t
    F = r.torch.nn.functional if r.torch is not None else None
    yield Case("gelu_tanh", r.shape, with_torch(r.torch, {
        "fastattn": lambda: fastattn.gelu(x, "tanh", out=out),
        "numpy": lambda: reference.gelu(x, "tanh"),
    }, lambda: F.gelu(t["x"], approximate="tanh")), bytes=r.nbytes, goal=ROWWISE_GOAL)
    yield Case("silu", r.shape, with_torch(r.torch, {
        "fastattn": lambda: fastattn.silu(x, out=out),
        "numpy": lambda: reference.silu(x),
    }, lambda: F.silu(t["x"])), bytes=r.nbytes, goal=ROWWISE_GOAL)
    yield Case("swiglu", r.shape, with_torch(r.torch, {
        "fastattn": lambda: fastattn.swiglu(g, x, out=out),
        "numpy": lambda: reference.swiglu(g, x),
    }, lambda: F.silu(t["g"]) * t["x"]), bytes=3 * x.nbytes, goal=ROWWISE_GOAL)
    # The exact GELU's NumPy reference calls math.erfc per element (NumPy has no erf), so its
    # column measures Python, not NumPy arithmetic; measured on a smaller slice.
    xs = x[: max(1, x.shape[0] // 16)]
    outs = out[: xs.shape[0]]
    yield Case("gelu", f"{xs.shape[0]}x{x.shape[1]}", with_torch(r.torch, {
        "fastattn": lambda: fastattn.gelu(xs, out=outs),
        "numpy": lambda: reference.gelu(xs),
    }, lambda: F.gelu(t["x"][: xs.shape[0]])), bytes=2 * xs.nbytes,
        goal=">= 1.0x torch (numpy column: math.erfc per element)")
