"""Benchmark cases for attention (issue 4). Goals, 2 threads, same run:

- causal self-attention B=1, H=16, D in {64, 128}, L in {1024, 2048}: >= 1.5x PyTorch SDPA;
  L = 4096: >= 1.2x; all >= 20x the NumPy reference;
- non-causal L=4096, D=128: >= 80% of NumPy sgemm's GFLOP/s (the "numpy" column here is NumPy
  doing exactly the two matrix products of attention, S = Q K^T and S V, per head, without
  the softmax: the ratio is attention's GFLOP/s over sgemm's on the same products);
- decode Lq=1, Lk in {4096, 32768}, Hq=32, Hkv=8, D=128: K and V read at >= 70% of the measured
  copy bandwidth (the %copy column).

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


if __name__ == "__main__":
    g, t = memory_growth()
    print(f"attention causal L=16384 H=16 D=64: peak RSS growth {g:.1f} MiB beyond q, k, v, out "
          f"(the scores would need {16 * 16384 * 16384 * 4 / 2**30:.0f} GiB); {t:.1f} s")
