"""Benchmark cases of fastattn.distributed (issue 18): sentence embeddings of a corpus end to
end, a text file in, Parquet shards out, on Ray Data against one process.

Model: MiniLM-L6 shape (BERT, hidden 384, 6 layers, 12 heads, intermediate 1536, vocab 30522),
random weights (transformers' init, fastattn.testing.random_checkpoint) written to a model
directory with a WordPiece vocabulary of made-up one-token words; lines of 30 words (32 tokens
with [CLS] [SEP]). Rows, each timed call a new job (the time of a row is the job's):

- ``ray 1x1``: ``embed_corpus`` with 1 actor x 1 thread;
- ``ray 2x1``: 2 actors x 1 thread;
- ``1 process``: no Ray: read the lines, ``SentenceEmbedder`` on every core's thread
  (``fastattn.get_num_threads()``), write the same Parquet columns.

Goals (2-core machine): ray 2x1 >= 1.8x the rows/s of ray 1x1, and >= 0.9x the single
process (the engine's overhead is small). A job's time includes starting its actors and loading
the model in each (seconds, once per job: a real corpus amortises it over millions of rows);
the local Ray instance itself is started once, before the first Ray row is timed, and shut
down before the single-process row (which needs the cores to itself). ``--quick``: a hidden-64
2-layer model, 32 lines.

Needs Ray Data (``pip install fastattn[ray]``); without it the suite has no case.
``python -m fastattn.bench.distributed [--rows N] [--repeats R]`` prints rows/s and the goals,
in rounds of one job per row (so a drifting load from other processes lands on every row
alike), and rows per CPU-second (the actors' and the driver's process CPU time; Ray's own
raylet / GCS processes not counted): on a shared machine the rows/s depend on what else runs,
the CPU time per row much less, and their ratio is the engine's overhead.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

import numpy as np

from . import Case
from .bert import forward_flops

WORDS_PER_LINE = 30          # + [CLS] [SEP] = 32 tokens
FULL_ROWS, QUICK_ROWS = 2048, 32
GOAL = "ray 2x1 >= 1.8x ray 1x1 rows/s and >= 0.9x 1 process"
_started_ray = False


def _shapes(quick: bool) -> dict:
    if quick:
        return dict(hidden=64, layers=2, heads=4, intermediate=128, vocab_size=1000)
    return dict(hidden=384, layers=6, heads=12, intermediate=1536, vocab_size=30522)


def make_corpus(directory: str, quick: bool, rows: int) -> tuple[str, str, dict]:
    """(model_dir, text file, config) under ``directory``."""
    from ..io import save_checkpoint
    from ..testing import encoder_config, random_checkpoint
    from ..tokenizers import WordPieceTokenizer
    from .text_classification import _texts, _word_vocab
    shapes = dict(_shapes(quick))
    vocab = _word_vocab(shapes.pop("vocab_size"))
    config = encoder_config("bert", None, vocab_size=len(vocab), max_length=128, **shapes)
    model_dir = os.path.join(directory, "model")
    save_checkpoint(model_dir, config, random_checkpoint(config))
    WordPieceTokenizer(vocab).save_pretrained(model_dir)
    path = os.path.join(directory, "lines.txt")
    with open(path, "w", encoding="utf-8") as f:
        for line in _texts(np.random.default_rng(0), vocab, rows, WORDS_PER_LINE):
            f.write(line + "\n")
    return model_dir, path, config


def _ensure_ray():
    """A local Ray instance on every core, started once for the suite (and at exit at the
    latest, shut down)."""
    global _started_ray
    import ray
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        _started_ray = True
        atexit.register(_stop_ray)


def _stop_ray():
    global _started_ray
    if _started_ray:
        import ray
        ray.shutdown()
        _started_ray = False


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def ray_job(model_dir: str, path: str, actors: int, threads: int, shard_rows: int) -> float:
    """One embed_corpus job into a new folder (removed after). Returns the CPU seconds of
    its actors (start-up, imports and model load included) and of this driver process
    (Ray's raylet and GCS processes not counted)."""
    from ..distributed import embed_corpus
    _ensure_ray()
    out = tempfile.mkdtemp(prefix="fastattn-bench-ray-")
    cpu = _cpu()
    try:
        s = embed_corpus(model_dir, [path], out, actors=actors, threads_per_actor=threads,
                         shard_rows=shard_rows, batch_size=32)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return _cpu() - cpu + sum(a["cpu_seconds"] for a in s["actors"].values())


def single_process(model_dir: str, path: str, stop_ray: bool = True) -> float:
    """The same job in this process, no Ray: lines in, SentenceEmbedder (fastattn's threads),
    one Parquet file with the same columns out. ``stop_ray``: first shut down the Ray instance
    the suite started (its idle processes would share the cores). Returns the CPU seconds of
    this process (all its threads) for the job."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..distributed.columns import fixed_size_vectors
    from ..pipelines.embeddings import SentenceEmbedder
    if stop_ray:
        _stop_ray()
    cpu = _cpu()
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    vectors = SentenceEmbedder(model_dir)(lines, batch_size=32)
    out = tempfile.mkdtemp(prefix="fastattn-bench-1p-")
    try:
        pq.write_table(pa.table({
            "source": pa.array([path] * len(lines), pa.string()),
            "row": pa.array(range(len(lines)), pa.int64()),
            "text": pa.array(lines, pa.string()),
            "embedding": fixed_size_vectors(vectors),
            "error": pa.array([None] * len(lines), pa.string())}),
            os.path.join(out, "part.parquet"))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return _cpu() - cpu


def available() -> bool:
    try:
        import pyarrow  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def cases(quick: bool = False, rows: int | None = None):
    if not available():
        print("# distributed: skipped (needs Ray Data: pip install fastattn[ray])",
              file=sys.stderr)
        return
    from .. import get_num_threads
    rows = rows or (QUICK_ROWS if quick else FULL_ROWS)
    directory = tempfile.mkdtemp(prefix="fastattn-bench-corpus-")
    atexit.register(shutil.rmtree, directory, True)
    model_dir, path, config = make_corpus(directory, quick, rows)
    # 8 shards per actor of the 2x1 row (load balance; shard writes are a small part)
    shard_rows = max(1, rows // 16)
    flops = forward_flops(config, rows, WORDS_PER_LINE + 2)
    name = "hidden 64 x 2" if quick else "MiniLM-L6"
    threads = get_num_threads()
    for actors in (1, 2):
        yield Case(f"ray embed {actors}x1", f"{name} N{rows} L32",
                   {"fastattn": lambda actors=actors: ray_job(model_dir, path, actors, 1,
                                                              shard_rows)},
                   flops=flops, goal=GOAL if actors == 2 else "",
                   extra={"rows": rows, "actors": actors, "threads_per_actor": 1})
    yield Case(f"1 process {threads}t", f"{name} N{rows} L32",
               {"fastattn": lambda: single_process(model_dir, path)},
               flops=flops, extra={"rows": rows, "threads": threads})


def main(argv=None) -> int:
    """Rows/s of the three rows and the goals' ratios: medians of ``--repeats`` rounds, each
    round one job of each row (order reversed every other round, so a drifting load from
    other processes lands on every row alike; one untimed job first). The Ray instance stays up
    through the rounds (idle during the single-process job); the load average is printed:
    this is a throughput on a machine that may be shared."""
    import argparse
    import statistics
    import time

    from .. import get_num_threads
    p = argparse.ArgumentParser(prog="python -m fastattn.bench.distributed")
    p.add_argument("--rows", type=int, help=f"lines (default {FULL_ROWS}, --quick {QUICK_ROWS})")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if not available():
        print("needs Ray Data: pip install fastattn[ray]", file=sys.stderr)
        return 2
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    directory = tempfile.mkdtemp(prefix="fastattn-bench-corpus-")
    try:
        model_dir, path, _ = make_corpus(directory, args.quick, rows)
        shard_rows = max(1, rows // 16)
        jobs = {"ray 1 actor x 1 thread": lambda: ray_job(model_dir, path, 1, 1, shard_rows),
                "ray 2 actors x 1 thread": lambda: ray_job(model_dir, path, 2, 1, shard_rows),
                f"1 process x {get_num_threads()} threads":
                    lambda: single_process(model_dir, path, stop_ray=False)}
        load = os.getloadavg()[0]
        jobs["ray 2 actors x 1 thread"]()                    # warm-up, untimed
        times = {name: [] for name in jobs}
        cpu = {name: [] for name in jobs}
        for r in range(args.repeats):
            for name in (list(jobs) if r % 2 == 0 else list(jobs)[::-1]):
                t0 = time.perf_counter()
                cpu[name].append(jobs[name]())
                times[name].append(time.perf_counter() - t0)
        rate = {name: rows / statistics.median(t) for name, t in times.items()}
        per_cpu = {name: rows / statistics.median(c) for name, c in cpu.items()}
        model = "hidden 64 x 2 layers" if args.quick else "MiniLM-L6 shape"
        print(f"# {rows} lines of 32 tokens, {model}, text file -> Parquet; medians of "
              f"{args.repeats} rounds; load average {load:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
        for name, t in times.items():
            print(f"{name:<26} {statistics.median(t):7.2f} s/job {rate[name]:8.1f} rows/s "
                  f"{per_cpu[name]:8.1f} rows/CPU-s   (jobs: {', '.join(f'{x:.2f}' for x in t)} s)")
        one, two, single = rate.values()
        print(f"ray 2x1 / ray 1x1 = {two / one:.2f}x (goal >= 1.8x); ray 2x1 / 1 process = "
              f"{two / single:.2f}x (goal >= 0.9x)")
        one, two, single = per_cpu.values()
        print(f"rows per CPU-second (what the load of other processes changes least): ray 2x1 / "
              f"1 process = {two / single:.2f}x, ray 1x1 / 1 process = {one / single:.2f}x")
    finally:
        _stop_ray()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
