"""Benchmarks: fastattn against NumPy (and PyTorch when importable), measured in one run.

Each op has a module here named after it (``softmax``, ``norm``, ``activation``, ``matmul``,
``attention``, ``rope``, ``kv_cache``, ``resample``; then ``tokenizer`` and the models) whose ``cases(quick)`` yields
:class:`Case` objects; ``fastattn bench`` (cli.py) and the pytest-benchmark files in ``bench/``
both draw on them, so the shapes are defined once.

How the timer is fair (see :func:`time_blocks`): each implementation is timed in its own block
of samples, after a pause that lets the previous library's worker threads go idle, and the
blocks run in the order A B C then C B A, so a slow drift of a noisy neighbour lands on every
column alike. Medians are reported.
"""
from __future__ import annotations

import importlib
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

# Modules of cases, in the order `fastattn bench` runs them.
SUITES = ["softmax", "norm", "activation", "matmul", "attention", "rope", "kv_cache", "conv",
          "resample", "tokenizer", "models", "decode_formats", "weight_formats", "bert",
          "text_classification", "vit", "resnet", "sam", "sam_auto", "distributed"]


@dataclass
class Case:
    op: str
    shape: str
    impls: dict[str, Callable[[], object]]   # "fastattn", "numpy", "torch" -> one call
    bytes: int = 0          # bytes one call must read + write (for GB/s)
    flops: float = 0.0      # floating-point operations of one call (for GFLOP/s)
    goal: str = ""          # the goal for this row, in words
    extra: dict = field(default_factory=dict)


@dataclass
class Result:
    op: str
    shape: str
    seconds: dict[str, float]
    bytes: int
    flops: float
    goal: str
    extra: dict

    def ratio(self, other: str) -> float | None:
        a, b = self.seconds.get("fastattn"), self.seconds.get(other)
        return b / a if a and b else None

    def as_dict(self) -> dict:
        d = {"op": self.op, "shape": self.shape, "seconds": self.seconds, "bytes": self.bytes,
             "flops": self.flops, "goal": self.goal, **self.extra}
        for other in ("numpy", "torch"):
            r = self.ratio(other)
            if r is not None:
                d[f"speedup_vs_{other}"] = r
        t = self.seconds.get("fastattn")
        if t and self.bytes:
            d["gb_per_s"] = self.bytes / t / 1e9
        if t and self.flops:
            d["gflop_per_s"] = self.flops / t / 1e9
        return d


def try_import_torch():
    """torch if importable (benchmarks only; never a dependency), with fastattn's threads."""
    try:
        import torch
    except Exception:
        return None
    from .. import get_num_threads
    torch.set_num_threads(get_num_threads())
    return torch


def with_torch(torch, impls: dict, torch_call) -> dict:
    """``impls`` with ``torch_call`` added as the "torch" column when torch is importable."""
    if torch is not None:
        impls["torch"] = torch_call
    return impls


@dataclass
class RowInputs:
    """The row-wise ops' shared inputs (softmax, norm, activation suites): ``rows`` x ``n``
    float32 rows x and g, (n,) weights w and b, an ``out`` buffer, torch views (None without
    torch). 4096 x 4096 (64 MiB) streams from memory; --quick 256 x 4096 (4 MiB) is a smoke
    test."""
    x: np.ndarray
    g: np.ndarray
    w: np.ndarray
    b: np.ndarray
    out: np.ndarray
    torch: object = None
    t: dict = field(default_factory=dict)   # "x", "g", "w", "b" -> torch tensors

    @classmethod
    def make(cls, quick: bool) -> "RowInputs":
        rows, n = (256, 4096) if quick else (4096, 4096)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((rows, n), dtype=np.float32)
        g = rng.standard_normal((rows, n), dtype=np.float32)
        w = rng.standard_normal(n, dtype=np.float32)
        b = rng.standard_normal(n, dtype=np.float32)
        torch = try_import_torch()
        t = {} if torch is None else {k: torch.from_numpy(a) for k, a in
                                      (("x", x), ("g", g), ("w", w), ("b", b))}
        return cls(x, g, w, b, np.empty_like(x), torch, t)

    @property
    def shape(self) -> str:
        return f"{self.x.shape[0]}x{self.x.shape[1]}"

    @property
    def nbytes(self) -> int:
        """Bytes one unary row-wise call moves: read x, write out."""
        return 2 * self.x.nbytes


# Goal of the row-wise ops (issue 2): on 4096 x 4096 float32, >= 60% of the measured copy
# bandwidth (they read and write each element once) and >= 5x the NumPy reference.
ROWWISE_GOAL = ">= 60% copy BW, >= 5x numpy"


def _calibrate(fn: Callable[[], object], min_sample_s: float) -> int:
    """Calls per timed sample so that one sample lasts at least min_sample_s."""
    fn()  # warm-up: first-touch pages, caches, lazy init
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, math.ceil(min_sample_s / max(dt, 1e-9)))


def time_blocks(impls: dict[str, Callable[[], object]], repeats: int,
                min_sample_s: float = 0.02, settle_s: float = 0.25) -> dict[str, float]:
    """Median seconds per call of each implementation.

    Why blocks and not samples interleaved call by call: NumPy's OpenBLAS keeps its worker
    threads spinning for ~0.1-0.2 s after every call (torch's and our OpenMP pools spin for
    a shorter while). On a 2-core machine a call made inside that window shares its cores with
    the spinners, and a statically partitioned kernel then waits at each barrier for a
    descheduled thread: measured here, a 256^3 matmul took 15 ms right after a NumPy matmul
    and 0.3 ms after a 0.25 s pause. So every block starts with ``settle_s`` of sleep and an
    untimed warm-up of ``min_sample_s``; each library is then timed as a user running it alone
    would see it. Blocks run A B C, then C B A, ``repeats`` samples in all per implementation.
    """
    loops = {name: _calibrate(fn, min_sample_s) for name, fn in impls.items()}
    samples: dict[str, list[float]] = {name: [] for name in impls}
    order = list(impls)
    first = (repeats + 1) // 2
    for round_order, n in ((order, first), (order[::-1], repeats - first)):
        for name in round_order:
            if n == 0:
                continue
            fn = impls[name]
            if len(impls) > 1:
                time.sleep(settle_s)
            if loops[name] > 1:  # short calls: untimed warm-up wakes the thread pool
                t_end = time.perf_counter() + min_sample_s
                while time.perf_counter() < t_end:
                    fn()
            for _ in range(n):
                t0 = time.perf_counter()
                for _ in range(loops[name]):
                    fn()
                samples[name].append((time.perf_counter() - t0) / loops[name])
    return {name: statistics.median(s) for name, s in samples.items()}


def copy_bandwidth(nbytes: int = 64 << 20, repeats: int = 9, threads: int | None = None) -> float:
    """Measured copy bandwidth in bytes/s with as many threads as the kernels use: each thread
    np.copyto's its contiguous slice of an nbytes float32 array (NumPy releases the GIL while
    copying). Counts bytes read plus bytes written (2 * nbytes per copy), as the row-wise
    benchmarks count theirs."""
    from concurrent.futures import ThreadPoolExecutor

    from .. import get_num_threads
    threads = threads or get_num_threads()
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    bounds = np.linspace(0, src.size, threads + 1).astype(int)
    parts = [(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(threads) as pool:
        def copy():
            list(pool.map(lambda p: np.copyto(*p), parts))
        t = time_blocks({"copy": copy}, repeats)["copy"]
    return 2 * nbytes / t


def iter_cases(suites=None, quick: bool = False, name_filter: str | None = None) -> Iterator[Case]:
    for suite in suites or SUITES:
        module = importlib.import_module(f"{__name__}.{suite}")
        for case in module.cases(quick=quick):
            label = f"{case.op} {case.shape}"
            if name_filter and name_filter not in label:
                continue
            yield case


def run(cases, repeats: int = 7, impls=("fastattn", "numpy", "torch"),
        progress: Callable[[Result], None] | None = None) -> list[Result]:
    results = []
    for case in cases:
        chosen = {k: v for k, v in case.impls.items() if k in impls}
        seconds = time_blocks(chosen, repeats)
        r = Result(case.op, case.shape, seconds, case.bytes, case.flops, case.goal, case.extra)
        results.append(r)
        if progress:
            progress(r)
    return results


def format_row(r: Result, copy_bw: float | None) -> str:
    def ms(name):
        t = r.seconds.get(name)
        return f"{t * 1e3:10.3f}" if t else f"{'-':>10}"

    def ratio(name):
        x = r.ratio(name)
        return f"{x:8.2f}x" if x else f"{'-':>9}"

    t = r.seconds["fastattn"]
    gbs = f"{r.bytes / t / 1e9:7.1f}" if r.bytes else f"{'-':>7}"
    pct = f"{100 * r.bytes / t / copy_bw:5.0f}%" if (r.bytes and copy_bw) else f"{'-':>6}"
    gfl = f"{r.flops / t / 1e9:8.1f}" if r.flops else f"{'-':>8}"
    return (f"{r.op:<18} {r.shape:<24} {ms('fastattn')} {ms('numpy')} {ms('torch')} "
            f"{ratio('numpy')} {ratio('torch')} {gbs} {pct} {gfl}")


HEADER = (f"{'op':<18} {'shape':<24} {'fastattn ms':>10} {'numpy ms':>10} {'torch ms':>10} "
          f"{'vs numpy':>9} {'vs torch':>9} {'GB/s':>7} {'%copy':>6} {'GFLOP/s':>8}")
