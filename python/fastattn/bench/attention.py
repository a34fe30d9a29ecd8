"""Benchmark cases for attention (issue 4). Goals, 2 threads, same run:

- causal self-attention B=1, H=16, D in {64, 128}, L in {1024, 2048}: >= 1.5x PyTorch SDPA;
  L = 4096: >= 1.2x; all >= 20x the NumPy reference;
- non-causal L=4096, D=128: >= 80% of NumPy sgemm's GFLOP/s (the "numpy" column here is NumPy
  doing exactly the two matrix products of attention, S = Q K^T and S V, per head, without
  the softmax: the ratio is attention's GFLOP/s over sgemm's on the same products);
- decode Lq=1, Lk in {4096, 32768}, Hq=32, Hkv=8, D=128: K and V read at >= 70% of the measured
  copy bandwidth (the %copy column).

Segment Anything (issue 14): the image encoder's global blocks, B=1, H=12, L=4096 (a 64 x 64
token grid), D=64, with the decomposed relative-position bias: fastattn adds the two
(L, 64) tables per head inside the kernel (``rel_pos``); torch SDPA gets the bias materialised
as a float attn_mask inside the timed call (12 x 4096^2 floats = 768 MiB), as a port of SAM to
SDPA must build it. ``python -m fastattn.bench.attention`` also prints the peak memory of both.

FLOP convention: 4 * B * Hq * D * (allowed (query, key) pairs): 2 per multiply-add of Q K^T and
2 of P V (D = Dv here); a causal L x L problem has L (L + 1) / 2 pairs. The softmax's exp is not
counted. Bytes (decode): K and V once.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

import fastattn
from fastattn import reference

from . import Case, try_import_torch, with_torch


def _qkv(rng, b, hq, hkv, lq, lk, d):
    return (rng.standard_normal((b, hq, lq, d), dtype=np.float32),
            rng.standard_normal((b, hkv, lk, d), dtype=np.float32),
            rng.standard_normal((b, hkv, lk, d), dtype=np.float32))


def _numpy_per_head(q, k, v, **kw):
    """The NumPy reference (float32), one head at a time so its L x L scores stay ~64 MiB."""
    return [reference.attention(q[:, h:h + 1], k[:, h:h + 1], v[:, h:h + 1], **kw)
            for h in range(q.shape[1])]


def cases(quick: bool = False):
    torch = try_import_torch()
    F = torch.nn.functional if torch is not None else None
    rng = np.random.default_rng(0)

    # causal self-attention
    shapes = [(64, 256), (128, 256)] if quick else [
        (64, 1024), (64, 2048), (128, 1024), (128, 2048), (64, 4096), (128, 4096)]
    for d, L in shapes:
        h = 16
        q, k, v = _qkv(rng, 1, h, h, L, L, d)
        out = np.empty_like(q)
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v)) if torch is not None else (0,) * 3
        goal = ">= 1.2x torch, >= 20x numpy" if L >= 4096 else ">= 1.5x torch, >= 20x numpy"
        yield Case("attention causal", f"B1 H{h} L{L} D{d}", with_torch(torch, {
            "fastattn": lambda q=q, k=k, v=v, out=out: fastattn.attention(q, k, v, causal=True,
                                                                          out=out),
            "numpy": lambda q=q, k=k, v=v: _numpy_per_head(q, k, v, causal=True),
        }, lambda tq=tq, tk=tk, tv=tv: F.scaled_dot_product_attention(tq, tk, tv,
                                                                       is_causal=True)),
            flops=4.0 * h * d * L * (L + 1) / 2, goal=goal)

    # non-causal, against NumPy's sgemm on the same two products
    L, d, h = (512, 128, 2) if quick else (4096, 128, 4)
    q, k, v = _qkv(rng, 1, h, h, L, L, d)
    out = np.empty_like(q)
    s = np.empty((L, L), np.float32)
    o = np.empty((L, d), np.float32)

    def sgemm_products(q=q, k=k, v=v, s=s, o=o):
        for i in range(h):
            np.matmul(q[0, i], k[0, i].T, out=s)
            np.matmul(s, v[0, i], out=o)

    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v)) if torch is not None else (0,) * 3
    yield Case("attention", f"B1 H{h} L{L} D{d}", with_torch(torch, {
        "fastattn": lambda q=q, k=k, v=v, out=out: fastattn.attention(q, k, v, out=out),
        "numpy": sgemm_products,
    }, lambda tq=tq, tk=tk, tv=tv: F.scaled_dot_product_attention(tq, tk, tv)),
        flops=4.0 * h * d * L * L,
        goal="numpy column = sgemm of QK^T and SV: >= 0.8x")

    # decode: one query per head, GQA 32/8
    for lk in ([4096] if quick else [4096, 32768]):
        q, k, v = _qkv(rng, 1, 32, 8, 1, lk, 128)
        out = np.empty_like(q)
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v)) if torch is not None else (0,) * 3
        yield Case("attention decode", f"Hq32 Hkv8 Lk{lk} D128", with_torch(torch, {
            "fastattn": lambda q=q, k=k, v=v, out=out: fastattn.attention(q, k, v, out=out),
            "numpy": lambda q=q, k=k, v=v: reference.attention(q, k, v),
        }, lambda tq=tq, tk=tk, tv=tv: F.scaled_dot_product_attention(tq, tk, tv,
                                                                       enable_gqa=True)),
            bytes=k.nbytes + v.nbytes, flops=4.0 * 32 * 128 * lk, goal=">= 70% copy BW")

    yield from rel_pos_cases(quick, torch, rng)


def _sam_global(rng, quick: bool):
    """q, k, v (1, 12, L, 64) and rel_h, rel_w (1, 12, L, S) of a SAM global block, S x S grid."""
    side = 32 if quick else 64
    q, k, v = _qkv(rng, 1, 12, 12, side * side, side * side, 64)
    rh = rng.standard_normal((1, 12, side * side, side), dtype=np.float32)
    rw = rng.standard_normal((1, 12, side * side, side), dtype=np.float32)
    return side, q, k, v, rh, rw


def _torch_rel_pos_sdpa(torch, tq, tk, tv, trh, trw):
    """SDPA with the relative-position bias materialised as its float attn_mask (B, H, L, L)."""
    bias = (trh[..., :, None] + trw[..., None, :]).flatten(-2)
    return torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=bias)


def rel_pos_cases(quick: bool, torch, rng):
    side, q, k, v, rh, rw = _sam_global(rng, quick)
    L = side * side
    out = np.empty_like(q)
    t = [torch.from_numpy(x) for x in (q, k, v, rh, rw)] if torch is not None else [0] * 5
    yield Case("attention rel_pos", f"B1 H12 L{L} D64 (SAM global)", with_torch(torch, {
        "fastattn": lambda: fastattn.attention(q, k, v, rel_pos=(rh, rw), out=out),
        "numpy": lambda: [reference.attention(q[:, h:h + 1], k[:, h:h + 1], v[:, h:h + 1],
                                              rel_pos=(rh[:, h:h + 1], rw[:, h:h + 1]))
                          for h in range(12)],
    }, lambda: _torch_rel_pos_sdpa(torch, *t)),
        flops=4.0 * 12 * 64 * L * L,
        goal="torch: SDPA + materialised bias (768 MiB)",
        extra={"materialised_bias_mib": 12 * L * L * 4 / 2**20})


_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, time
    import numpy as np
    import fastattn
    L, H, D = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, H, L, D), dtype=np.float32) for _ in range(3))
    out = np.zeros_like(q)
    fastattn.attention(q[:, :, :8], k[:, :, :8], v[:, :, :8], causal=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    fastattn.attention(q, k, v, causal=True, out=out)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024, dt)
""")


def memory_growth(L: int = 16384, H: int = 16, D: int = 64) -> tuple[float, float]:
    """(peak RSS growth in MiB beyond q, k, v and out, seconds) of one causal attention call
    in a fresh process (ru_maxrss, Linux KiB)."""
    r = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(L), str(H), str(D)],
                       capture_output=True, text=True, check=True)
    growth, seconds = r.stdout.split()
    return float(growth), float(seconds)


_REL_POS_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, time
    import numpy as np
    from fastattn.bench.attention import _sam_global, _torch_rel_pos_sdpa
    which = sys.argv[1]
    side, q, k, v, rh, rw = _sam_global(np.random.default_rng(0), False)
    out = np.zeros_like(q)
    if which == "torch":
        import torch
        torch.set_num_threads(2)
        t = [torch.from_numpy(x) for x in (q, k, v, rh, rw)]
        _torch_rel_pos_sdpa(torch, *(x[:, :, :64] for x in t[:3]), t[3][:, :, :64, :1],
                            t[4][:, :, :64])  # threads, lazy init
        call = lambda: _torch_rel_pos_sdpa(torch, *t)
    else:
        import fastattn
        fastattn.attention(q[:, :, :64], k[:, :, :64], v[:, :, :64],
                           rel_pos=(rh[:, :, :64, :1], rw[:, :, :64]))
        call = lambda: fastattn.attention(q, k, v, rel_pos=(rh, rw), out=out)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    call()
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024, dt)
""")


def rel_pos_memory(which: str = "fastattn") -> tuple[float, float]:
    """(peak RSS growth in MiB beyond the inputs and out, seconds) of one SAM global-block call
    (B1 H12 L4096 D64, rel_pos) in a fresh process: "fastattn" (in-kernel bias) or "torch"
    (SDPA with the materialised bias)."""
    r = subprocess.run([sys.executable, "-c", _REL_POS_MEMORY_SCRIPT, which],
                       capture_output=True, text=True, check=True)
    growth, seconds = r.stdout.split()
    return float(growth), float(seconds)


if __name__ == "__main__":
    g, t = memory_growth()
    print(f"attention causal L=16384 H=16 D=64: peak RSS growth {g:.1f} MiB beyond q, k, v, out "
          f"(the scores would need {16 * 16384 * 16384 * 4 / 2**30:.0f} GiB); {t:.1f} s")
    for which in ("fastattn", "torch") if try_import_torch() is not None else ("fastattn",):
        g, t = rel_pos_memory(which)
        print(f"attention rel_pos B1 H12 L4096 D64 (SAM global), {which}: peak RSS growth "
              f"{g:.1f} MiB beyond q, k, v, tables, out; {t:.2f} s")
