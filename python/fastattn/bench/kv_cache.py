"""Benchmark cases for the KV cache. Goals (issue 5): decode attend with Lk = 32768, Hq = 32,
Hkv = 8, D = 128 at >= 70% of the measured memory (read) bandwidth; append cost independent of
how many tokens were streamed before (1k vs 100k). Issue 15: decode attention over a float16
KV cache at 32k context >= 1.8x the float32 cache, bfloat16 alongside, batch 1, at two GQA
shapes: TinyLlama's (Hq 32 / Hkv 4, D 64: 8 query rows per K/V row, 16 multiply-adds per
K/V element pair, so the kernel is compute bound near the float32 read bandwidth and 16 bits
gain less) and issue 5's decode shape (Hq 32 / Hkv 8, D 128, Mistral-7B's heads: 4 rows per
K/V row, bandwidth bound, where 16 bits halve the time).

``python -m fastattn.bench.kv_cache [--quick]`` prints the read bandwidth, then the rope and
kv_cache rows, then the cache dtypes compared (float32 / float16 / bfloat16 timed in one
interleaved loop), all measured in the same run."""
from __future__ import annotations

import numpy as np

import fastattn

from . import Case, time_blocks, try_import_torch

ATTEND_GOAL = ">= 70% read BW"
DTYPE_GOAL = "float16 >= 1.8x float32 cache"
# decode shapes compared across cache dtypes (batch 1, 32k context)
DTYPE_SHAPES = ({"Lk": 32768, "Hq": 32, "Hkv": 4, "D": 64},
                {"Lk": 32768, "Hq": 32, "Hkv": 8, "D": 128})
DTYPE_SHAPES_QUICK = ({"Lk": 2048, "Hq": 8, "Hkv": 2, "D": 64},)


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


def _filled(layers, B, Hkv, D, capacity, n, window=None, chunk=None, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    cache = fastattn.KVCache(layers, B, Hkv, D, capacity, window=window, dtype=dtype)
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
    yield from dtype_cases(quick)
    # append of one token after 1k and after 100k streamed tokens (ring of 4096 + 63 slots).
    tok = rng.standard_normal((1, Hkv, 1, D), dtype=np.float32)
    for streamed in (1_000, 5_000 if quick else 100_000):
        c = _filled(1, 1, Hkv, D, 4096 + 63, streamed, window=4096, chunk=64)
        yield Case("kv_append 1 token", f"after {streamed} Hkv{Hkv} D{D}", {
            "fastattn": (lambda c=c: c.append(0, tok, tok)),
        }, bytes=2 * tok.nbytes * 2, goal="independent of tokens streamed")


def dtype_decode(shape: dict, seed: int = 2):
    """{dtype: one decode attend call} over caches of the same Lk keys (random normal values)
    in float32, float16 and bfloat16, for ``shape`` (Lk, Hq, Hkv, D)."""
    Lk, Hq, Hkv, D = shape["Lk"], shape["Hq"], shape["Hkv"], shape["D"]
    q = np.random.default_rng(seed).standard_normal((1, Hq, 1, D), dtype=np.float32)
    out = np.empty_like(q)
    calls = {}
    for dtype in ("float32", "float16", "bfloat16"):
        cache = _filled(1, 1, Hkv, D, Lk, Lk, dtype=dtype)
        calls[dtype] = (lambda c=cache: c.attend(0, q, out=out))
    return calls


def dtype_cases(quick: bool = False):
    """One row per shape and cache dtype: decode attention (GB/s of its own bytes)."""
    for sh in DTYPE_SHAPES_QUICK if quick else DTYPE_SHAPES:
        label = f"Lk{sh['Lk']} Hq{sh['Hq']} Hkv{sh['Hkv']} D{sh['D']}"
        for dtype, call in dtype_decode(sh).items():
            size = 4 if dtype == "float32" else 2
            yield Case(f"kv_attend {dtype}", label, {"fastattn": call},
                       bytes=2 * sh["Lk"] * sh["Hkv"] * sh["D"] * size,
                       flops=4.0 * sh["Hq"] * sh["Lk"] * sh["D"],
                       goal=DTYPE_GOAL if dtype != "float32" else "",
                       extra={"kv_dtype": dtype})


def compare_dtypes(shape: dict, repeats: int = 9) -> dict:
    """Median seconds of decode attention per cache dtype at ``shape``, timed in one
    interleaved loop (time_blocks: A B C, C B A), and each 16-bit dtype's speedup over
    float32."""
    seconds = time_blocks(dtype_decode(shape), repeats)
    return {"shape": shape, "seconds": seconds,
            "speedup": {d: seconds["float32"] / seconds[d] for d in ("float16", "bfloat16")}}


def main(argv=None) -> None:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m fastattn.bench.kv_cache")
    parser.add_argument("--quick", action="store_true", help="tiny shapes (a smoke run)")
    quick = parser.parse_args(argv).quick
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
    for r in run(iter_cases(["rope", "kv_cache"], quick=quick)):
        t = r.seconds["fastattn"]
        pct = f"{100 * r.bytes / t / ceiling:5.0f}%" if r.bytes else ""
        print(format_row(r, copy_bw) + f" {pct:>6}", flush=True)
    for sh in DTYPE_SHAPES_QUICK if quick else DTYPE_SHAPES:
        cmp = compare_dtypes(sh)
        print(f"# decode attention by cache dtype, Lk{sh['Lk']} Hq{sh['Hq']} Hkv{sh['Hkv']} "
              f"D{sh['D']} batch 1, interleaved in one loop (goal: {DTYPE_GOAL})")
        for dtype, t in cmp["seconds"].items():
            ratio = cmp["speedup"].get(dtype, 1.0)
            size = 4 if dtype == "float32" else 2
            gbs = 2 * sh["Lk"] * sh["Hkv"] * sh["D"] * size / t / 1e9
            print(f"kv_attend {dtype:<9} {t * 1e3:9.3f} ms {gbs:7.1f} GB/s "
                  f"{ratio:6.2f}x float32", flush=True)


if __name__ == "__main__":
    main()
