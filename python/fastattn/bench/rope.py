"""Benchmark cases for rope. Goal (issue 5): (1, 32, 4096, 128) at >= 60% of the measured copy
bandwidth (it reads x and writes the result once, like a copy)."""
from __future__ import annotations

import numpy as np

import fastattn
from fastattn import reference
from fastattn.rope_frequencies import rope_frequencies

from . import Case, try_import_torch

GOAL = ">= 60% copy BW"


def cases(quick: bool = False):
    torch = try_import_torch()
    B, H, L, D = (1, 8, 1024, 128) if quick else (1, 32, 4096, 128)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, H, L, D), dtype=np.float32)
    y = x.copy()
    out = np.empty_like(x)
    pos = np.arange(L)
    nbytes = 2 * x.nbytes
    shape = f"{B}x{H}x{L}x{D}"
    fastattn.rope(x, pos, out=out)  # builds the cached tables outside the timing

    impls = {"fastattn": lambda: fastattn.rope(x, pos, out=out),
             "numpy": lambda: reference.rope(x, pos)}
    if torch is not None:
        inv = torch.from_numpy(rope_frequencies(D)[0])
        ang = torch.outer(torch.arange(L, dtype=torch.float64), inv)
        cos = torch.cat((ang.cos(), ang.cos()), -1).float()
        sin = torch.cat((ang.sin(), ang.sin()), -1).float()
        tx = torch.from_numpy(x)

        def torch_rope():  # Hugging Face's apply_rotary_pos_emb
            x1, x2 = tx[..., : D // 2], tx[..., D // 2:]
            return tx * cos + torch.cat((-x2, x1), -1) * sin
        impls["torch"] = torch_rope
    yield Case("rope", shape + " half", impls, bytes=nbytes, goal=GOAL)
    yield Case("rope", shape + " in place", {
        "fastattn": lambda: fastattn.rope(y, pos, out=y),
    }, bytes=nbytes, goal=GOAL)
    yield Case("rope", shape + " interleaved", {
        "fastattn": lambda: fastattn.rope(x, pos, style="interleaved", out=out),
        "numpy": lambda: reference.rope(x, pos, style="interleaved"),
    }, bytes=nbytes, goal=GOAL)
    yield Case("rope", shape + " rot 64", {
        "fastattn": lambda: fastattn.rope(x, pos, rotary_dim=64, out=out),
        "numpy": lambda: reference.rope(x, pos, rotary_dim=64),
    }, bytes=nbytes, goal=GOAL)
