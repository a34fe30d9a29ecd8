"""This machine's roofline, measured with fastattn's own kernels: the float32 matmul peak and
the read bandwidth, at the current thread count, cached on disk.

- peak: ``fastattn.matmul`` of two N x N float32 matrices (N = 2048, the second packed once
  beforehand, as a model's weights are), 2 N^3 FLOPs per call; the best of the timed calls.
- bandwidth: ``fastattn.matmul`` of one row by a 256 MiB packed matrix, the shape of a decode
  step's projections (a matrix-vector product reads each weight once and does 2 FLOPs with
  it, so it runs at the memory's speed): bytes of the matrix / time, the best of the timed
  calls. It is the bandwidth a decode actually gets from the kernels, the number a
  weight-bound prediction needs (NumPy's sum over a large array, bench/models.py's bound,
  measures the same DRAM with another reader).
- call overhead: the seconds a kernel call costs whatever its size (the Python layers around
  it, argument checks, binding, dispatch, the small NumPy reshapes between calls): a decode
  step of a tiny LLaMA (hidden 64, 2 layers: microseconds of work) timed, divided by the
  kernel calls ``cost`` counts in it. It is what a single-token step of a small model spends
  beside its bytes.
- stream start-up: the seconds a kernel call that streams an operand from memory pays before
  the bandwidth applies (a matrix-vector product's time is ``t0 + bytes / bandwidth``, not
  ``bytes / bandwidth``: the hardware prefetchers ramp up on each new stream, the first
  touches of its pages miss the TLB, and with several threads each call forks and joins
  them). Measured as the intercept of the matrix-vector time against the bytes: a small
  matrix (768 x 768, 2.4 MB: GPT-2 small's output projection) cycled through enough copies
  that every call reads from memory, its best time per call minus bytes / bandwidth (the
  slope from the 1 GiB matrix above) minus the same call on a matrix that stays in cache
  (the binding's own cost, already in the call overhead). It is what makes a decode step of
  a small model slower than its bytes alone: 48 such matrices per GPT-2 token.

The cache is a JSON file under the user cache directory ($XDG_CACHE_HOME or ~/.cache, then
fastattn/machine.json; FASTATTN_CACHE_DIR overrides the directory), one entry per
(cpu model, ISA path, threads): a figure measured with 2 threads does not describe 1.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

PEAK_N = 2048
# beyond the caches of most CPUs (this one reports a 480 MiB L3 shared by its host)
BANDWIDTH_BYTES = 1 << 30
REPEATS = 5
OVERHEAD_CALLS = 2000
# stream start-up: the small matrix (768 x 768 float32) and the bytes of its copies (every call
# reads a copy no earlier call left in the caches: 8x a 32 MiB L3)
STARTUP_SHAPE = (768, 768)
STARTUP_BYTES = 256 << 20


@dataclasses.dataclass(frozen=True)
class Machine:
    """``peak_flops`` (FLOP/s of a large float32 matmul), ``bandwidth`` (bytes/s read by a
    matrix-vector product) and ``call_overhead`` (seconds per kernel call), measured at
    ``threads`` threads on the ``isa`` path of ``cpu_model``; ``stream_startup`` (seconds a
    call streaming an operand from memory pays before the bandwidth applies). ``ridge``: the
    arithmetic intensity (FLOPs / byte) where the two bounds meet; a part below it is
    memory-bound."""
    peak_flops: float
    bandwidth: float
    threads: int
    isa: str
    cpu_model: str
    measured: str = ""
    call_overhead: float = 0.0
    stream_startup: float = 0.0

    @property
    def ridge(self) -> float:
        return self.peak_flops / self.bandwidth

    def __str__(self) -> str:
        return (f"{self.cpu_model}, {self.isa}, {self.threads} threads: matmul peak "
                f"{self.peak_flops / 1e9:.1f} GFLOP/s, read bandwidth {self.bandwidth / 1e9:.1f} "
                f"GB/s, ridge {self.ridge:.1f} FLOP/B, {self.call_overhead * 1e6:.0f} us per "
                f"kernel call, {self.stream_startup * 1e6:.0f} us per streamed operand")


def cache_path() -> str:
    base = os.environ.get("FASTATTN_CACHE_DIR")
    if not base:
        root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".cache")
        base = os.path.join(root, "fastattn")
    return os.path.join(base, "machine.json")


def _key(info: dict) -> str:
    return f"{info.get('cpu_model', '?')}|{info['isa']}|{info['threads']}"


def _best_seconds(fn, repeats: int) -> float:
    from .measure import seconds
    return seconds(fn, repeats, best=True)


def measure_peak(n: int = PEAK_N, repeats: int = REPEATS) -> float:
    """FLOP/s of fastattn.matmul on (n, n) x (n, n) float32, the right operand packed."""
    import numpy as np

    from .. import PackedMatrix, matmul
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = PackedMatrix(rng.standard_normal((n, n), dtype=np.float32))
    out = np.empty((n, n), np.float32)
    return 2.0 * n ** 3 / _best_seconds(lambda: matmul(a, b, out=out), repeats)


def measure_bandwidth(nbytes: int = BANDWIDTH_BYTES, repeats: int = REPEATS) -> float:
    """Bytes/s of a matrix-vector product, fastattn.matmul of (1, K) by a packed (K, N)
    float32 matrix of ``nbytes``."""
    import numpy as np

    from .. import PackedMatrix, matmul
    k = 4096
    n = nbytes // (4 * k)
    w = np.random.default_rng(1).standard_normal((n, k), dtype=np.float32)
    b = PackedMatrix(w, transpose=True)    # (out, in) as a model's weights: y = x w^T
    del w
    x = np.ones((1, k), np.float32)
    out = np.empty((1, n), np.float32)
    return 4.0 * n * k / _best_seconds(lambda: matmul(x, b, out=out), repeats)


def measure_stream_startup(bandwidth: float, shape=STARTUP_SHAPE, total: int = STARTUP_BYTES,
                           repeats: int = REPEATS) -> float:
    """Seconds a matrix-vector product streaming its matrix from memory pays beyond
    bytes / ``bandwidth`` and beyond the same call on a cached matrix (module docstring);
    never below 0."""
    import numpy as np

    from .. import PackedMatrix, matmul
    n, k = shape
    rng = np.random.default_rng(2)
    w = rng.standard_normal((n, k), dtype=np.float32)
    copies = max(2, -(-total // w.nbytes))
    packs = [PackedMatrix(w, transpose=True) for _ in range(copies)]
    del w
    x = np.ones((1, k), np.float32)
    out = np.empty((1, n), np.float32)

    def stream():
        for p in packs:
            matmul(x, p, out=out)

    def cached():       # the same call, its matrix in cache: the binding's own cost
        for _ in range(copies):
            matmul(x, packs[0], out=out)
    per_call = _best_seconds(stream, repeats) / copies
    in_cache = _best_seconds(cached, repeats) / copies
    return max(0.0, per_call - max(in_cache, 4.0 * n * k / bandwidth))


def _read_entries(path: str) -> dict:
    try:
        with open(path) as f:
            entries = json.load(f)
        return entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        return {}   # no cache, or an unreadable one: measure again and rewrite it


def _from_entry(e: dict) -> Machine:
    return Machine(e["peak_flops"], e["bandwidth"], e["threads"], e["isa"], e["cpu_model"],
                   e.get("measured", ""), e.get("call_overhead", 0.0),
                   e.get("stream_startup", 0.0))


# the figures an entry must hold to be used; an older entry without one is measured again
FIELDS = ("peak_flops", "bandwidth", "call_overhead", "stream_startup")


def cached_machine() -> Machine | None:
    """The cached roofline of the current ISA path and thread count, or None (never
    measures: for answers that must come in well under a second)."""
    from .. import cpu_info
    e = _read_entries(cache_path()).get(_key(cpu_info()))
    return None if e is None or any(f not in e for f in FIELDS) else _from_entry(e)


TINY_DECODER = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "vocab_size": 64}


def measure_call_overhead(steps: int = 200, repeats: int = REPEATS) -> float:
    """Seconds per kernel call: a tiny decoder's single-token step (module docstring) over the
    calls cost() counts in it."""
    import numpy as np

    from ..loading import builder_for, load_config
    from ..testing import random_checkpoint
    from .cost import cost
    config = load_config(TINY_DECODER)
    model = builder_for("llama")(config, random_checkpoint(TINY_DECODER))
    context = 8
    cache = model.start_generation(1, context + steps)
    token = np.zeros((1, 1), np.int64)

    def decode():
        cache.reset()
        model.step(cache, np.zeros((1, context), np.int64), np.arange(context)[None], None)
        for i in range(steps):
            model.step(cache, token, np.array([[context + i]]), None)
    step = cost(config, seq_len=steps, mode="decode", context=context)
    return _best_seconds(decode, repeats) / sum(p.calls for p in step.parts)


def machine(*, refresh: bool = False, cache: bool = True) -> Machine:
    """This machine's roofline at the current ISA path and thread count (module docstring):
    read from the disk cache when measured before, else measured (a few seconds) and saved.
    ``refresh=True`` measures again; ``cache=False`` neither reads nor writes the file."""
    from .. import cpu_info
    info = cpu_info()
    key, path = _key(info), cache_path()
    entries = _read_entries(path) if cache else {}
    if not refresh and key in entries and all(f in entries[key] for f in FIELDS):
        return _from_entry(entries[key])
    peak = measure_peak()
    bandwidth = measure_bandwidth()
    m = Machine(peak, bandwidth, int(info["threads"]), info["isa"],
                str(info.get("cpu_model", "?")),
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), measure_call_overhead(),
                measure_stream_startup(bandwidth))
    if cache:
        entries[key] = dataclasses.asdict(m)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(entries, f, indent=1)
        os.replace(tmp, path)   # atomic: a concurrent reader sees the old or the new file
    return m
