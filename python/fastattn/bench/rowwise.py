"""Benchmark cases for the row-wise ops: softmax, log_softmax, layer_norm, rms_norm and the
element-wise activations. Goal (issue 2): on 4096 x 4096 float32, >= 60% of the measured copy
bandwidth and >= 5x the NumPy reference."""
from __future__ import annotations

import numpy as np

import fastattn
from fastattn import reference

from . import Case, try_import_torch

GOAL = ">= 60% copy BW, >= 5x numpy"


def cases(quick: bool = False):
    torch = try_import_torch()
    rows, n = (256, 4096) if quick else (4096, 4096)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, n), dtype=np.float32)
    g = rng.standard_normal((rows, n), dtype=np.float32)
    w = rng.standard_normal(n, dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    out = np.empty_like(x)
    shape = f"{rows}x{n}"
    nbytes = 2 * x.nbytes  # read x, write out
    tx = tw = tb = tg = None
    if torch is not None:
        tx, tw, tb, tg = (torch.from_numpy(a) for a in (x, w, b, g))
        F = torch.nn.functional

    def with_torch(impls, fn):
        if torch is not None:
            impls["torch"] = fn
        return impls

    yield Case("softmax", shape, with_torch({
        "fastattn": lambda: fastattn.softmax(x, out=out),
        "numpy": lambda: reference.softmax(x),
    }, lambda: torch.softmax(tx, dim=-1)), bytes=nbytes, goal=GOAL)
    yield Case("log_softmax", shape, with_torch({
        "fastattn": lambda: fastattn.log_softmax(x, out=out),
        "numpy": lambda: reference.log_softmax(x),
    }, lambda: torch.log_softmax(tx, dim=-1)), bytes=nbytes, goal=GOAL)
    yield Case("layer_norm", shape, with_torch({
        "fastattn": lambda: fastattn.layer_norm(x, w, b, out=out),
        "numpy": lambda: reference.layer_norm(x, w, b),
    }, lambda: F.layer_norm(tx, (n,), tw, tb)), bytes=nbytes, goal=GOAL)
    yield Case("rms_norm", shape, with_torch({
        "fastattn": lambda: fastattn.rms_norm(x, w, out=out),
        "numpy": lambda: reference.rms_norm(x, w),
    }, lambda: F.rms_norm(tx, (n,), tw)), bytes=nbytes, goal=GOAL)
    yield Case("gelu_tanh", shape, with_torch({
        "fastattn": lambda: fastattn.gelu(x, "tanh", out=out),
        "numpy": lambda: reference.gelu(x, "tanh"),
    }, lambda: F.gelu(tx, approximate="tanh")), bytes=nbytes, goal=GOAL)
    yield Case("silu", shape, with_torch({
        "fastattn": lambda: fastattn.silu(x, out=out),
        "numpy": lambda: reference.silu(x),
    }, lambda: F.silu(tx)), bytes=nbytes, goal=GOAL)
    yield Case("swiglu", shape, with_torch({
        "fastattn": lambda: fastattn.swiglu(g, x, out=out),
        "numpy": lambda: reference.swiglu(g, x),
    }, lambda: F.silu(tg) * tx), bytes=3 * x.nbytes, goal=GOAL)
    # The exact GELU's NumPy reference calls math.erfc per element (NumPy has no erf), so its
    # column measures Python, not NumPy arithmetic; measured on a smaller slice.
    xs = x[: max(1, rows // 16)]
    outs = out[: xs.shape[0]]
    yield Case("gelu", f"{xs.shape[0]}x{n}", with_torch({
        "fastattn": lambda: fastattn.gelu(xs, out=outs),
        "numpy": lambda: reference.gelu(xs),
    }, lambda: F.gelu(tx[: xs.shape[0]])), bytes=2 * xs.nbytes,
        goal="(numpy column: math.erfc per element)")
