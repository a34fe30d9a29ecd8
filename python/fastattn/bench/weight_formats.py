"""Benchmark cases for matmul with low-precision weights (issue 15, docs/weight_formats.md).

Rows, per weight format (float32, bfloat16, float16, q8, q4):
- decode GEMV at the TinyLlama-1.1B shapes (1 x K @ K x N for (K, N) = (2048, 2048) attention,
  (2048, 5632) gate / up, (5632, 2048) down): bytes = the format's storage (scales included),
  read once per call. Each call takes the next of several copies of the weight, together
  >= 256 MiB (8x a 32 MiB L3), so every call streams its weight from memory as in a decode
  step. The issue's goal: >= 80% of the format's own bandwidth bound.
- prefill: 128 x 2048 @ 2048 x 2048 (one token block through a TinyLlama projection); goal
  within 10% of float32.
The "numpy" column is np.matmul with the float32 weight (what the format replaces; one copy,
so partly cached: the formats' own report below compares against fastattn's float32 on copies).

The suite's own report, ``python -m fastattn.bench.weight_formats [--quick]``, times all
formats of a shape in one block (time_blocks: settled blocks, A B C then C B A) and prints each
format against float32 and its GB/s as a fraction of the read bandwidth measured in the same run
(analysis.machine.measure_bandwidth: a float32 GEMV over 256 MiB). ``--quick``: one GEMV shape
over 16 MiB of copies and a 32-row prefill, a smoke run of seconds (16 MiB may sit in L3: its
bandwidth figures then mean nothing). ``--cpu-time --threads 1``: the least CPU seconds of a
call instead of wall-clock medians, for a machine shared with other work (cpu_seconds).
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np

import fastattn
from fastattn.weight_formats import WEIGHT_FORMATS

from . import Case, time_blocks

GEMV_SHAPES = ((2048, 2048), (2048, 5632), (5632, 2048))  # (K, N): TinyLlama-1.1B
PREFILL = (128, 2048, 2048)                                 # (M, K, N)
QUICK_PREFILL = (32, 512, 512)


def _copies(w_nk: np.ndarray, fmt: str, total: int) -> list:
    """PackedMatrix copies of w (N, K) in `fmt`, together >= total bytes (one quantisation,
    the storage arrays copied)."""
    pm = fastattn.PackedMatrix(w_nk, transpose=True, weights=fmt)
    n = max(1, -(-total // pm.nbytes))
    if fmt == "float32":
        return [pm] + [fastattn.PackedMatrix(w_nk, transpose=True) for _ in range(n - 1)]
    k, nn = pm.shape
    st = pm.storage()
    return [pm] + [fastattn.PackedMatrix.from_storage({key: a.copy() for key, a in st.items()},
                                                      (k, nn), fmt) for _ in range(n - 1)]


def gemv_calls(K: int, N: int, total: int, formats=WEIGHT_FORMATS, seed: int = 0):
    """format -> (one GEMV call cycling through the copies, bytes of one weight)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((N, K), dtype=np.float32) * np.float32(K ** -0.5)
    x = rng.standard_normal((1, K), dtype=np.float32)
    y = np.empty((1, N), np.float32)
    calls = {}
    for fmt in formats:
        packs = _copies(w, fmt, total)
        nxt = itertools.cycle(packs).__next__
        calls[fmt] = ((lambda nxt=nxt: fastattn.matmul(x, nxt(), out=y)), packs[0].nbytes)
    return calls


def prefill_calls(M: int, K: int, N: int, formats=WEIGHT_FORMATS, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((N, K), dtype=np.float32) * np.float32(K ** -0.5)
    x = rng.standard_normal((M, K), dtype=np.float32)
    y = np.empty((M, N), np.float32)
    calls = {}
    for fmt in formats:
        pm = fastattn.PackedMatrix(w, transpose=True, weights=fmt)
        calls[fmt] = ((lambda pm=pm: fastattn.matmul(x, pm, out=y)), pm.nbytes)
    return calls


def cases(quick: bool = False):
    total = 16 << 20 if quick else 256 << 20
    for K, N in GEMV_SHAPES[:1] if quick else GEMV_SHAPES:
        rng = np.random.default_rng(1)
        w32 = rng.standard_normal((N, K), dtype=np.float32)
        x = rng.standard_normal((1, K), dtype=np.float32)
        y = np.empty((1, N), np.float32)
        for fmt, (call, nbytes) in gemv_calls(K, N, total).items():
            yield Case(f"gemv {fmt}", f"1x{K}@{K}x{N}",
                       {"fastattn": call,
                        "numpy": lambda x=x, w32=w32, y=y: np.matmul(x, w32.T, out=y)},
                       bytes=nbytes, flops=2.0 * K * N,
                       goal=">= 80% of read bandwidth (format bytes)", extra={"format": fmt})
    M, K, N = QUICK_PREFILL if quick else PREFILL
    rng = np.random.default_rng(2)
    w32 = rng.standard_normal((N, K), dtype=np.float32)
    xp = rng.standard_normal((M, K), dtype=np.float32)
    yp = np.empty((M, N), np.float32)
    for fmt, (call, nbytes) in prefill_calls(M, K, N).items():
        yield Case(f"prefill {fmt}", f"{M}x{K}@{K}x{N}",
                   {"fastattn": call,
                    "numpy": lambda x=xp, w32=w32, y=yp: np.matmul(x, w32.T, out=y)},
                   flops=2.0 * M * K * N, goal="within 10% of float32", extra={"format": fmt})


def cpu_seconds(impls: dict, repeats: int) -> dict:
    """The least process CPU seconds a call of each implementation takes (time.process_time,
    all threads summed; after one warm-up call). For a machine shared with other work, where
    wall-clock medians mostly measure the neighbours: a call's CPU time is what it costs
    whoever else runs, though a core waiting on memory counts as busy. Use it with 1 thread."""
    import time
    out = {}
    for name, fn in impls.items():
        fn()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
        out[name] = best
    return out


def report(quick: bool = False, repeats: int = 7, cpu_time: bool = False) -> list[dict]:
    """All formats of each shape timed in one block; prints and returns the rows."""
    from fastattn.analysis.machine import measure_bandwidth
    if cpu_time:   # the bandwidth reference: a float32 GEMV over 256 MiB, CPU seconds too
        w = fastattn.PackedMatrix(np.ones((4096, (64 << 20 if quick else 256 << 20) // 16384),
                                          np.float32))
        x1 = np.ones((1, 4096), np.float32)
        bw = w.nbytes / cpu_seconds({"f32": lambda: fastattn.matmul(x1, w)}, repeats)["f32"]
        del w
    else:
        bw = measure_bandwidth(64 << 20 if quick else 256 << 20, repeats=3)
    total = 16 << 20 if quick else 256 << 20
    print(f"# {fastattn.get_isa()}, {fastattn.get_num_threads()} threads; read bandwidth "
          f"{bw / 1e9:.1f} GB/s (float32 GEMV over {(64 if quick else 256)} MiB); "
          f"{'least CPU seconds' if cpu_time else 'medians'} of {repeats}")
    print(f"{'case':<28} {'format':<9} {'ms':>9} {'vs f32':>7} {'GB/s':>7} {'% bw':>6} "
          f"{'MB':>7}")
    rows = []
    jobs = [(f"gemv 1x{K}@{K}x{N}", lambda K=K, N=N: gemv_calls(K, N, total), True)
            for K, N in (GEMV_SHAPES[:1] if quick else GEMV_SHAPES)]
    M, K, N = QUICK_PREFILL if quick else PREFILL
    jobs.append((f"prefill {M}x{K}@{K}x{N}", lambda: prefill_calls(M, K, N), False))
    for name, make, is_gemv in jobs:
        calls = make()
        timer = cpu_seconds if cpu_time else time_blocks
        sec = timer({f: c for f, (c, _) in calls.items()}, repeats)
        for fmt, (_, nbytes) in calls.items():
            t = sec[fmt]
            gbs = nbytes / t / 1e9
            row = {"case": name, "format": fmt, "seconds": t, "vs_float32": sec["float32"] / t,
                   "bytes": nbytes, "gb_per_s": gbs,
                   "fraction_of_bandwidth": nbytes / t / bw if is_gemv else None}
            rows.append(row)
            frac = f"{100 * row['fraction_of_bandwidth']:5.0f}%" if is_gemv else f"{'-':>6}"
            print(f"{name:<28} {fmt:<9} {t * 1e3:9.3f} {row['vs_float32']:6.2f}x "
                  f"{gbs if is_gemv else float('nan'):7.1f} {frac} {nbytes / 1e6:7.1f}",
                  flush=True)
        del calls
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastattn.bench.weight_formats",
                                description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--isa", default=None)
    p.add_argument("--cpu-time", action="store_true",
                   help="least process CPU seconds instead of wall-clock medians (a loaded "
                        "machine; use with --threads 1)")
    args = p.parse_args(argv)
    if args.threads:
        fastattn.set_num_threads(args.threads)
    if args.isa:
        fastattn.set_isa(args.isa)
    report(args.quick, args.repeats, args.cpu_time)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
