"""``embed_corpus``: files in, Parquet shards out, on a Ray cluster (what ``fastattn
embed-corpus`` runs).

The unit of work is a chunk: ``shard_rows`` consecutive rows of one input (lines of a text or
JSONL file, row groups of a Parquet file, images). The driver plans the chunks (it counts the
rows; byte offsets of a text file's chunk boundaries, a Parquet file's row groups), and one
Ray Data row per pending chunk goes to a pool of ``ShardWorker`` actors (``map_batches``,
one chunk per call). An actor reads its chunk, runs the task's callable on it (EmbedBatches,
...), and writes the chunk's shard: to a hidden temporary name first, then ``os.replace`` to
the shard's name, which is the chunk's alone (input number, input stem, chunk number).

Exactly once. A shard's name exists only when the whole shard is written (rename is atomic
on one file system), and a chunk always gets the same name and the same rows. So a worker
killed at any point leaves either no shard (Ray restarts the actor and runs the chunk again:
``max_restarts`` / ``max_task_retries``) or the whole shard (written again with the same
rows if the chunk is retried, replacing it); a rerun skips the chunks whose shard exists.
Every input row is in exactly one shard, once. The manifest ``_fastattn_corpus.json``
records the task, model, settings and inputs (with their row counts) of the first run; a
rerun with anything else is refused instead of mixing two plans in one folder.

Output columns: ``source`` (the input path as given), ``row`` (0-based row within it: line
number, Parquet row, image index), the task's columns (``text`` + ``embedding``; ``text`` +
``labels`` / ``scores``; for images ``embedding`` + sizes, or ``labels`` / ``scores``), and
``error`` (null, or why the row failed: undecodable text, bad JSON, corrupt image).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import uuid
import warnings

MANIFEST = "_fastattn_corpus.json"
MANIFEST_FORMAT = "fastattn.embed_corpus"
TASKS = ("embed", "classify-text", "classify-image", "sam-embed")
TEXT_TASKS = ("embed", "classify-text")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


# -- planning (driver) ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Chunk:
    """One shard's worth of input: rows [start, stop) of ``source``. Text / JSONL: the bytes
    [byte_start, byte_stop) hold exactly those lines; Parquet: ``row_groups``; images:
    ``paths``."""
    shard: str
    kind: str                 # "text" | "jsonl" | "parquet" | "images"
    source: str
    start: int
    stop: int
    byte_start: int = 0
    byte_stop: int = 0
    row_groups: tuple = ()
    paths: tuple = ()


def input_kind(path: str, task: str) -> str:
    if task not in TEXT_TASKS:
        return "images"
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".parquet"):
        return "parquet"
    return "text"


def _stem(path: str) -> str:
    name = os.path.basename(os.path.normpath(path)) or "input"
    name = name.split(".")[0] or "input"
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:40]


def _line_chunks(path: str, index: int, kind: str, shard_rows: int) -> tuple[list, int]:
    """Chunks of ``shard_rows`` lines of a text / JSONL file, with the byte offset of each
    chunk's first line; a last line without its newline counts."""
    chunks, offsets, rows, pos = [], [0], 0, 0
    with open(path, "rb") as f:
        for line in f:
            pos += len(line)
            rows += 1
            if rows % shard_rows == 0:
                offsets.append(pos)
    if rows % shard_rows:
        offsets.append(pos)
    for c in range(len(offsets) - 1):
        chunks.append(Chunk(f"{index:04d}-{_stem(path)}-{c:06d}.parquet", kind, path,
                            c * shard_rows, min((c + 1) * shard_rows, rows),
                            offsets[c], offsets[c + 1]))
    return chunks, rows


def _parquet_chunks(path: str, index: int, shard_rows: int,
                    text_column: str) -> tuple[list, int]:
    """Chunks of whole row groups of a Parquet file, at least ``shard_rows`` rows each (a
    row group is not split: reading part of one reads all of it)."""
    import pyarrow.parquet as pq
    f = pq.ParquetFile(path)
    if text_column not in f.schema_arrow.names:
        raise ValueError(f"embed_corpus: {path!r} has no column {text_column!r} (columns: "
                         f"{f.schema_arrow.names}); name it with text_column= / --text-column")
    meta = f.metadata
    chunks, groups, start, row = [], [], 0, 0
    for g in range(meta.num_row_groups):
        groups.append(g)
        row += meta.row_group(g).num_rows
        if row - start >= shard_rows or g == meta.num_row_groups - 1:
            chunks.append(Chunk(f"{index:04d}-{_stem(path)}-{len(chunks):06d}.parquet",
                                "parquet", path, start, row, row_groups=tuple(groups)))
            groups, start = [], row
    return chunks, row


def image_files(inputs) -> list[str]:
    """Image paths of ``inputs`` in order: a file as given, a folder's image files (by
    extension) sorted by name."""
    out = []
    for path in inputs:
        if os.path.isdir(path):
            out += sorted(os.path.join(path, n) for n in os.listdir(path)
                          if n.lower().endswith(IMAGE_EXTENSIONS))
        else:
            out.append(path)
    return out


def plan(inputs, task: str, shard_rows: int,
         text_column: str = "text") -> tuple[list[Chunk], list[dict]]:
    """(chunks, inputs as recorded in the manifest: path and row count)."""
    if task not in TEXT_TASKS:
        paths = image_files(inputs)
        for p in paths:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"embed_corpus: no such image file: {p!r}")
        chunks = [Chunk(f"images-{c:06d}.parquet", "images", "", start,
                        min(start + shard_rows, len(paths)),
                        paths=tuple(paths[start:start + shard_rows]))
                  for c, start in enumerate(range(0, len(paths), shard_rows))]
        return chunks, [{"path": os.path.abspath(p), "rows": 1} for p in paths]
    chunks, recorded = [], []
    for i, path in enumerate(inputs):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"embed_corpus: no such input file: {path!r}")
        kind = input_kind(path, task)
        if kind == "parquet":
            c, rows = _parquet_chunks(path, i, shard_rows, text_column)
        else:
            c, rows = _line_chunks(path, i, kind, shard_rows)
        chunks += c
        recorded.append({"path": os.path.abspath(path), "rows": rows})
    return chunks, recorded


def check_manifest(out_dir: str, manifest: dict) -> None:
    """Writes the manifest of a new output folder, or checks that the folder's is this
    job's (same task, model, settings, inputs and row counts): ValueError naming what
    differs."""
    path = os.path.join(out_dir, MANIFEST)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        diffs = [k for k in sorted(set(old) | set(manifest)) if old.get(k) != manifest.get(k)]
        if diffs:
            raise ValueError(
                f"embed_corpus: {out_dir!r} holds the shards of another job ({MANIFEST} "
                f"differs in: {', '.join(diffs)}); resuming needs the same model, inputs and "
                f"settings. Use a new --out folder, or delete this one to start again")
        return
    _write_atomically(path, json.dumps(manifest, indent=2).encode())


def _write_atomically(path: str, data: bytes) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def remove_temporaries(out_dir: str) -> int:
    """Deletes the hidden temporaries of shards whose writer died (``.<shard>.<id>.tmp``)."""
    n = 0
    for name in os.listdir(out_dir):
        if name.startswith(".") and name.endswith(".tmp"):
            try:
                os.remove(os.path.join(out_dir, name))
                n += 1
            except FileNotFoundError:
                pass
    return n


# -- reading a chunk and writing its shard (actors) ----------------------------------------------

def read_chunk(chunk: dict, text_column: str = "text"):
    """The rows of a chunk as a pyarrow Table: ``source``, ``row``, the input column (``text``
    as raw bytes for text files, decoded by the task; ``image`` paths for images) and
    ``read_error`` (a JSONL line that is not a JSON object with a string ``text_column``)."""
    import pyarrow as pa
    kind, start, stop = chunk["kind"], chunk["start"], chunk["stop"]
    errors = [None] * (stop - start)
    if kind == "images":
        paths = list(chunk["paths"])
        return pa.table({"source": pa.array(paths, pa.string()),
                         "row": pa.array([0] * len(paths), pa.int64()),
                         "image": pa.array(paths, pa.string()),
                         "read_error": pa.array(errors, pa.string())})
    if kind == "parquet":
        import pyarrow.parquet as pq
        table = pq.ParquetFile(chunk["source"]).read_row_groups(list(chunk["row_groups"]),
                                                                  columns=[text_column])
        values = table.column(text_column)
    else:
        with open(chunk["source"], "rb") as f:
            f.seek(chunk["byte_start"])
            data = f.read(chunk["byte_stop"] - chunk["byte_start"])
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        if len(lines) != stop - start:
            raise RuntimeError(f"embed_corpus: {chunk['source']!r} changed since the job was "
                               f"planned (chunk {chunk['shard']}: {len(lines)} lines, expected "
                               f"{stop - start})")
        if kind == "jsonl":
            values = []
            for i, line in enumerate(lines):
                value, errors[i] = _json_text(line, text_column)
                values.append(value)
            values = pa.array(values, pa.string())
        else:
            values = pa.array(lines, pa.binary())
    return pa.table({"source": pa.array([chunk["source"]] * (stop - start), pa.string()),
                     "row": pa.array(range(start, stop), pa.int64()),
                     text_column: values, "read_error": pa.array(errors, pa.string())})


def _json_text(line: bytes, field: str) -> tuple[str | None, str | None]:
    try:
        obj = json.loads(line)
    except ValueError as e:          # not JSON, or not UTF-8 (UnicodeDecodeError)
        return None, f"embed_corpus: the line is not JSON ({e})"
    if not isinstance(obj, dict) or not isinstance(obj.get(field), str):
        return None, f"embed_corpus: the line is not a JSON object with a string {field!r}"
    return obj[field], None


def _summary_schema():
    import pyarrow as pa
    return pa.schema([("shard", pa.string()), ("rows", pa.int64()), ("error_rows", pa.int64()),
                      ("first_errors", pa.list_(pa.string())), ("pid", pa.int64()),
                      ("threads", pa.int64()), ("loads", pa.int64()),
                      ("cpu_seconds", pa.float64())])


class ShardWorker:
    """The actor of ``embed_corpus``: the task's callable (one model load), then per call one
    chunk read, processed and written as its shard. Returns one summary row per chunk:
    shard, rows, error rows (count and the first messages), and this actor's pid, threads and
    model loads."""

    def __init__(self, task: str, model_dir: str, out_dir: str, options: dict,
                 batches_class=None, num_threads: int | None = None):
        from . import batches
        cls = batches_class or {"embed": batches.EmbedBatches,
                                "classify-text": batches.ClassifyTextBatches,
                                "classify-image": batches.ClassifyImageBatches,
                                "sam-embed": batches.SamEmbedBatches}[task]
        self.model = cls(model_dir, num_threads=num_threads, **options)
        self.task, self.out_dir = task, out_dir
        self.text_column = options.get("text_column", "text")

    def __call__(self, batch):
        import pyarrow as pa
        from .columns import as_table
        summaries = [self.process(chunk) for chunk in as_table(batch).to_pylist()]
        return pa.Table.from_pylist(summaries, schema=_summary_schema())

    def process(self, chunk: dict) -> dict:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from .. import get_num_threads
        rows = read_chunk(chunk, self.text_column)
        read_errors = rows.column("read_error").to_pylist()
        out = self.model(rows.drop_columns(["read_error"]))
        errors = [r or e for r, e in zip(read_errors, out.column("error").to_pylist())]
        out = out.set_column(out.column_names.index("error"), "error",
                             pa.array(errors, pa.string()))
        if self.task not in TEXT_TASKS:
            out = out.drop_columns(["image"])            # the path is the source column
        final = os.path.join(self.out_dir, chunk["shard"])
        tmp = os.path.join(self.out_dir, f".{chunk['shard']}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as f:
            pq.write_table(out, f)
            f.flush()
            os.fsync(f.fileno())      # on disk before it has its name (a node that loses power)
        os.replace(tmp, final)        # atomic: the shard's name appears only when complete
        failed = [e for e in errors if e is not None]
        t = os.times()
        return {"shard": chunk["shard"], "rows": out.num_rows, "error_rows": len(failed),
                "first_errors": failed[:3], "pid": os.getpid(), "threads": get_num_threads(),
                "loads": getattr(self.model, "loads", 1),
                # this actor process's CPU time so far (start-up and model load included)
                "cpu_seconds": t.user + t.system}


# -- the job (driver) ----------------------------------------------------------------------------

def _connect(address: str | None, num_cpus: int | None) -> bool:
    """ray.init for this job unless Ray is already initialised; True when started here.
    ``address``: None / "local" -> a new local instance with ``num_cpus``; "auto" or
    "ray://host:port" / "host:port" -> join that cluster."""
    import ray
    if ray.is_initialized():
        return False
    if address in (None, "", "local"):
        # "local": a new instance even where RAY_ADDRESS names a cluster (ray.init's rule)
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)
    else:
        ray.init(address=address)
    return True


def embed_corpus(model_dir, inputs, out_dir, *, task: str = "embed", actors: int | None = None,
                 threads_per_actor: int = 1, batch_size: int = 32, shard_rows: int = 1024,
                 pooling: str = "mean", normalize: bool = True, text_column: str = "text",
                 top_k: int = 5, max_length: int | None = None, max_retries: int = 3,
                 address: str | None = None, batches_class=None, on_shard=None) -> dict:
    """Runs ``task`` over ``inputs`` and writes ``out_dir``/*.parquet (see the module's
    docstring for the shards, the columns and the exactly-once argument).

    ``task``: "embed" (EmbedBatches: ``pooling``, ``normalize``), "classify-text"
    (ClassifyTextBatches: ``top_k``), "classify-image" (ClassifyImageBatches: ``top_k``),
    "sam-embed" (SamEmbedBatches). Text inputs: ``.jsonl`` / ``.ndjson`` (a ``text_column``
    field per line), ``.parquet`` (a ``text_column`` column), anything else a text file
    (one row per line, UTF-8); image inputs: files or folders of images.
    ``actors`` x ``threads_per_actor``: the actor pool (default actors: the cluster's CPUs /
    threads_per_actor); ``batch_size``: texts per forward pass; ``shard_rows``: rows per
    chunk and shard; ``max_retries``: restarts of a dead actor and retries of its chunk
    before the job fails. Ray: the instance already initialised in this process, else a
    local one (``address`` None or "local"), else the cluster at ``address`` ("auto").
    ``batches_class``: the class (or a factory with its signature) to use instead of the
    task's callable, e.g. a subclass (the tests count model loads with one);
    ``on_shard(summary)``: called on the driver per shard written.

    Returns a summary: shards written and skipped (already there), rows and error rows
    written by this run, the first error messages, and per actor (pid) its threads, model
    loads and CPU seconds (the process's, at its last shard)."""
    if task not in TASKS:
        raise ValueError(f"embed_corpus: task must be one of {TASKS}, got {task!r}")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(p) for p in inputs]
    if not inputs:
        raise ValueError("embed_corpus: no inputs")
    for name, value in (("threads_per_actor", threads_per_actor), ("batch_size", batch_size),
                        ("shard_rows", shard_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"embed_corpus: {name} must be an int >= 1, got {value!r}")
    if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int)
                               or actors < 1):
        raise ValueError(f"embed_corpus: actors must be an int >= 1, got {actors!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"embed_corpus: max_retries must be an int >= 0, got {max_retries!r}")
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise FileNotFoundError(f"embed_corpus: {model_dir!r} is not a model directory (no "
                                "config.json)")
    options = {"embed": {"pooling": pooling, "normalize": normalize, "text_column": text_column,
                         "batch_size": batch_size, "max_length": max_length},
               "classify-text": {"top_k": top_k, "text_column": text_column,
                                 "batch_size": batch_size, "max_length": max_length},
               "classify-image": {"top_k": top_k},
               "sam-embed": {}}[task]
    chunks, recorded = plan(inputs, task, shard_rows, text_column)
    os.makedirs(out_dir, exist_ok=True)
    # batch_size is not a setting of the plan: the results do not depend on it
    settings = {k: v for k, v in options.items() if k != "batch_size"}
    check_manifest(out_dir, {"format": MANIFEST_FORMAT, "version": 1, "task": task,
                             "model_dir": os.path.abspath(model_dir), "settings": settings,
                             "shard_rows": shard_rows, "inputs": recorded})
    remove_temporaries(out_dir)
    pending = [c for c in chunks if not os.path.exists(os.path.join(out_dir, c.shard))]
    summary = {"out": out_dir, "shards": len(chunks), "skipped": len(chunks) - len(pending),
               "written": 0, "rows": 0, "error_rows": 0, "first_errors": [], "actors": {},
               "seconds": 0.0}
    if not pending:
        return summary
    t0 = time.perf_counter()
    import ray
    started = _connect(address, None if actors is None else actors * threads_per_actor)
    try:
        if actors is None:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            actors = max(1, cpus // threads_per_actor)
        actors = min(actors, len(pending))
        items = [dataclasses.asdict(c) for c in pending]
        # one block per chunk, so that the chunks spread over the actors one call each
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        with warnings.catch_warnings():
            # Ray >= 2.5x deprecates remote args passed as **kwargs but still reads them, and
            # names no other way to bound an actor's restarts (its default: forever, so one
            # input that kills its worker every time would loop)
            warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
            ds = ds.map_batches(
                ShardWorker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=threads_per_actor,
                fn_constructor_args=(task, os.fspath(model_dir), os.path.abspath(out_dir),
                                     options),
                # num_threads None: the callable takes the CPUs Ray gives each actor (num_cpus)
                fn_constructor_kwargs={"batches_class": batches_class},
                max_restarts=max_retries, max_task_retries=max_retries)
        for row in ds.iter_rows():
            summary["written"] += 1
            summary["rows"] += row["rows"]
            summary["error_rows"] += row["error_rows"]
            summary["first_errors"] += list(row["first_errors"])[:3]
            actor = summary["actors"].setdefault(row["pid"], {"cpu_seconds": 0.0})
            actor.update(threads=row["threads"], loads=row["loads"],
                         cpu_seconds=max(actor["cpu_seconds"], row["cpu_seconds"]))
            if on_shard is not None:
                on_shard(row)
    finally:
        if started:
            ray.shutdown()
    summary["first_errors"] = summary["first_errors"][:10]
    summary["seconds"] = time.perf_counter() - t0
    return summary

