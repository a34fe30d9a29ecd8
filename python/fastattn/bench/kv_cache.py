"""Benchmark cases for the KV cache. Goals (issue 5): decode attend with Lk = 32768, Hq = 32,
Hkv = 8, D = 128 at >= 70% of the measured memory (read) bandwidth; append cost independent of
how many tokens were streamed before (1k vs 100k).

``python -m fastattn.bench.kv_cache`` prints the read bandwidth, then the rope and kv_cache
rows, all measured in the same run."""
from __future__ import annotations

import numpy as np

import fastattn

from . import Case, time_blocks, try_import_torch

ATTEND_GOAL = ">= 70% read BW"


def read_bandwidth(nbytes: int = 1 << 30, repeats: int = 5, threads: int = 1) -> float:
    """Bytes/s of ``numpy.sum`` over an ``nbytes`` float32 array: one thread by default (the
    plain ``a.sum()``), or ``threads`` threads each summing its contiguous slice (NumPy
    releases the GIL inside the reduction)."""
    from concurrent.futures import ThreadPoolExecutor
    a = np.ones(nbytes // 4, np.float32)
    if threads == 1:
        return a.nbytes / time_blocks({"sum": a.sum}, repeats, min_sample_s=0.0)["sum"]
    bounds = np.linspace(0, a.size, threads + 1).astype(int)
    parts = [a[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(threads) as pool:
        def read():
            list(pool.map(np.sum, parts))
        return a.nbytes / time_blocks({"sum": read}, repeats, min_sample_s=0.0)["sum"]


def numpy_decode(q, k, v, scale):
    """The NumPy competitor: GQA decode through BLAS matmuls on the logically ordered keys.
    q (B, Hq, 1, D); k, v (B, Hkv, N, D)."""
    B, Hq, T, D = q.shape
    Hkv = k.shape[1]
    qg = q.reshape(B, Hkv, (Hq // Hkv) * T, D)
    s = (qg @ k.transpose(0, 1, 3, 2)) * scale
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ v).reshape(B, Hq, T, D)


def _filled(layers, B, Hkv, D, capacity, n, window=None, chunk=None, seed=0):
    rng = np.random.default_rng(seed)
    cache = fastattn.KVCache(layers, B, Hkv, D, capacity, window=window)
    chunk = chunk or min(cache.max_chunk, 4096)
    block = rng.standard_normal((B, Hkv, chunk, D), dtype=np.float32)
    for t in range(0, n, chunk):
        T = min(chunk, n - t)
        cache.append(0, block[:, :, :T], block[:, :, :T])
    return cache


def cases(quick: bool = False):
    try_import_torch()
    Lk, Hq, Hkv, D = (4096, 32, 8, 128) if quick else (32768, 32, 8, 128)
    rng = np.random.default_rng(1)
    cache = _filled(1, 1, Hkv, D, Lk, Lk)
    q = rng.standard_normal((1, Hq, 1, D), dtype=np.float32)
    out = np.empty_like(q)
    k, v = cache.keys(0), cache.values(0)
    scale = float(1 / np.sqrt(D))  # a Python float keeps the NumPy competitor in float32
    kv_bytes = 2 * Lk * Hkv * D * 4
    yield Case("kv_attend decode", f"Lk{Lk} Hq{Hq} Hkv{Hkv} D{D}", {
        "fastattn": lambda: cache.attend(0, q, out=out),
        "numpy": lambda: numpy_decode(q, k, v, scale),
    }, bytes=kv_bytes, flops=4.0 * Hq * Lk * D, goal=ATTEND_GOAL)
    # Windowed ring that has wrapped: the same kernel reading two segments.
    W = Lk // 2
    ring = _filled(1, 1, Hkv, D, W + 63, W + Lk // 3, window=W, chunk=64)
    yield Case("kv_attend ring", f"W{W} wrapped Hq{Hq} Hkv{Hkv} D{D}", {
        "fastattn": lambda: ring.attend(0, q, out=out),
    }, bytes=2 * W * Hkv * D * 4, flops=4.0 * Hq * W * D, goal=ATTEND_GOAL)
    # Chunked prefill: 64 queries over a 4096-token window.
    qc = rng.standard_normal((1, Hq, 64, D), dtype=np.float32)
    outc = np.empty_like(qc)
    pre = _filled(1, 1, Hkv, D, 4096 + 63, 8192, window=4096, chunk=64)
    yield Case("kv_attend prefill64", f"W4096 Hq{Hq} Hkv{Hkv} D{D}", {
        "fastattn": lambda: pre.attend(0, qc, out=outc),
    }, bytes=2 * 4096 * Hkv * D * 4, flops=4.0 * Hq * 64 * 4096 * D, goal="")
    # append of one token after 1k and after 100k streamed tokens (ring of 4096 + 63 slots).
    tok = rng.standard_normal((1, Hkv, 1, D), dtype=np.float32)
    for streamed in (1_000, 5_000 if quick else 100_000):
        c = _filled(1, 1, Hkv, D, 4096 + 63, streamed, window=4096, chunk=64)
        yield Case("kv_append 1 token", f"after {streamed} Hkv{Hkv} D{D}", {
            "fastattn": (lambda c=c: c.append(0, tok, tok)),
        }, bytes=2 * tok.nbytes * 2, goal="independent of tokens streamed")


def main() -> None:
    from . import HEADER, copy_bandwidth, format_row, iter_cases, run
    info = fastattn.cpu_info()
    read_bw, copy_bw = read_bandwidth(), copy_bandwidth()
    read_mt = read_bandwidth(threads=info["threads"])
    print(f"# {info['cpu_model']} | isa {info['isa']} | threads {info['threads']} | "
          f"read bandwidth {read_bw / 1e9:.1f} GB/s (numpy sum of 1 GiB, 1 thread; "
          f"{read_mt / 1e9:.1f} GB/s with {info['threads']} threads on slices) | "
          f"copy bandwidth {copy_bw / 1e9:.1f} GB/s ({info['threads']} threads np.copyto "
          "64 MiB, read+write); %read below is against the higher read figure")
    ceiling = max(read_bw, read_mt)
    print(HEADER + f" {'%read':>6}")
    for r in run(iter_cases(["rope", "kv_cache"])):
        t = r.seconds["fastattn"]
        pct = f"{100 * r.bytes / t / ceiling:5.0f}%" if r.bytes else ""
        print(format_row(r, copy_bw) + f" {pct:>6}", flush=True)


if __name__ == "__main__":
    main()
