"""fastattn.distributed on a local Ray cluster (issue 18): the map_batches callables and
``embed_corpus`` / ``fastattn embed-corpus``.

One Ray instance for the module (num_cpus=2, no dashboard), shut down at the end. The models
are tiny (hidden 32, 2 layers), so each pipeline run is a few seconds, most of it Ray starting
its actors. What is checked: outputs equal to the single-process pipeline row for row; one
model load per actor (the test callables append their pid to a file in __init__); the
kernel threads of each actor are its num_cpus; a rerun writes only the missing shards; a
worker killed in the middle of a chunk (SIGKILL of its own process, once) is restarted and
every row still lands exactly once; bad rows (not UTF-8, not JSON, corrupt image) are error
rows, not failures; without Ray the package raises an ImportError naming the extra.

Tolerance: the pipeline sorts a call's texts by length and pads each forward batch to its
longest text; a Ray batch holds other texts than the single-process call, so a text can be
padded to another length, which changes the attention kernel's blocking and so float32
rounding (test_bert: hidden states within HIDDEN_ATOL = 2e-5 of each other for 2 layers).
Mean pooling averages those rows and the L2 normalisation divides by a norm of ~sqrt(32)
times an O(1) entry; both only shrink an absolute error, so the unit vectors agree within
2e-5 as well.
"""
import functools
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
import pyarrow.dataset as pds  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import fastattn  # noqa: E402
from fastattn.distributed import (ClassifyImageBatches, ClassifyTextBatches,  # noqa: E402
                                  EmbedBatches, SamEmbedBatches, embed_corpus)
from fastattn.distributed.columns import vectors_of  # noqa: E402
from fastattn.pipelines import SentenceEmbedder, TextClassifier  # noqa: E402
from fastattn.testing import write_encoder_checkpoint  # noqa: E402

ATOL = 2e-5      # see the module docstring
WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "in", "park", "hello", "world"]


def sentence(i: int) -> str:
    """Deterministic texts of 1..12 words, so batches mix lengths."""
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(1 + i % 12))


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():       # another module's instance: this one needs 2 CPUs
        ray.shutdown()
    # The test callables below are defined in this module, which Ray's workers cannot import
    # (tests/ is not on their path): ship them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bert-ray")
    write_encoder_checkpoint(directory, "bert", hidden=32, layers=2, heads=4, intermediate=64)
    return str(directory)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three inputs: a text file (with a line that is not UTF-8), a JSONL file (with a line
    that is not JSON and one without a text), a Parquet file (two row groups, a null)."""
    d = tmp_path_factory.mktemp("corpus")
    txt = d / "lines.txt"
    with open(txt, "wb") as f:
        for i in range(20):
            f.write(sentence(i).encode() + (b"\r\n" if i == 3 else b"\n"))
        f.write(b"caf\xe9 latin-1\n")                    # row 20: not UTF-8
        f.write(sentence(21).encode())                   # row 21: no final newline
    jsonl = d / "docs.jsonl"
    with open(jsonl, "w", encoding="utf-8") as f:
        for i in range(9):
            f.write(json.dumps({"id": i, "text": sentence(100 + i)}) + "\n")
        f.write("{broken\n")                             # row 9: not JSON
        f.write(json.dumps({"title": "no text"}) + "\n")  # row 10: no text field
    parquet = d / "table.parquet"
    texts = [sentence(200 + i) for i in range(13)] + [None]
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), parquet, row_group_size=7)
    expected = {}
    for i in range(22):
        expected[(str(txt), i)] = None if i == 20 else sentence(i)
    for i in range(11):
        expected[(str(jsonl), i)] = sentence(100 + i) if i < 9 else None
    for i, t in enumerate(texts):
        expected[(str(parquet), i)] = t
    return [str(txt), str(jsonl), str(parquet)], expected


class CountingEmbed(EmbedBatches):
    """EmbedBatches that records each model load (a line per __init__: pid and kernel
    threads) in the file ``loads_file``."""

    def __init__(self, *args, loads_file, **kwargs):
        super().__init__(*args, **kwargs)
        with open(loads_file, "a") as f:
            f.write(f"{os.getpid()} {fastattn.get_num_threads()}\n")


class KillOnce(CountingEmbed):
    """Kills its own process (SIGKILL: no cleanup, as an OOM kill or a lost node) in the
    middle of the first chunk that finds the ``marker`` file; renaming the marker claims it,
    so exactly one call dies and the retry goes through."""

    def __init__(self, *args, marker, **kwargs):
        super().__init__(*args, **kwargs)
        self.marker = marker

    def __call__(self, batch):
        try:
            os.rename(self.marker, self.marker + ".claimed")
        except FileNotFoundError:
            return super().__call__(batch)
        os.kill(os.getpid(), signal.SIGKILL)


def loads(path) -> list[tuple[int, int]]:
    with open(path) as f:
        return [tuple(int(x) for x in line.split()) for line in f]


def read_output(out_dir):
    table = pds.dataset(out_dir, format="parquet").to_table()
    return table.sort_by([("source", "ascending"), ("row", "ascending")])


def check_rows_once(table, expected, embedder):
    """Every input row exactly once; good rows' embeddings equal the single-process
    pipeline's; bad rows null with an error."""
    keys = list(zip(table.column("source").to_pylist(), table.column("row").to_pylist()))
    assert len(keys) == len(set(keys)), "a row was written twice"
    assert set(keys) == set(expected), "rows missing or extra"
    errors = table.column("error").to_pylist()
    texts = table.column("text").to_pylist()
    good = [i for i, k in enumerate(keys) if expected[k] is not None]
    assert all(errors[i] is None for i in good)
    assert all(errors[i] for i in range(len(keys)) if i not in good)
    assert [texts[i] for i in good] == [expected[keys[i]] for i in good]
    embedding = table.column("embedding")
    assert embedding.type == pa.list_(pa.float32(), 32)
    assert embedding.null_count == len(keys) - len(good)
    got = vectors_of(embedding.take(good))
    want = embedder([expected[keys[i]] for i in good])
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    return {k: e for k, e in zip(keys, errors) if e}


# -- the callables, called directly (no Ray execution) ------------------------------------------

def test_embed_batches_takes_every_batch_format(model_dir):
    import pandas as pd
    embedder = SentenceEmbedder(model_dir)
    fn = EmbedBatches(model_dir, num_threads=1)
    assert fn.loads == 1 and fn.num_threads == 1 and fastattn.get_num_threads() == 1
    texts = [sentence(i) for i in range(5)]
    want = embedder(texts)
    ids = np.arange(5)
    for batch in (pa.table({"id": ids, "text": texts}), pd.DataFrame({"id": ids, "text": texts}),
                  {"id": ids, "text": np.array(texts, dtype=object)},
                  {"id": ids, "text": np.array([t.encode() for t in texts], dtype=object)}):
        out = fn(batch)
        assert out.column_names == ["id", "text", "embedding", "error"]
        assert out.column("id").to_pylist() == list(range(5))     # passed through
        assert out.column("text").to_pylist() == texts            # bytes decoded
        assert out.column("error").null_count == 5
        # one call, the same texts: the same batches, the same bits
        np.testing.assert_array_equal(vectors_of(out.column("embedding")), want)
    bad = fn({"text": np.array([b"ok", b"\xff\xfe", None, b"fine"], dtype=object)})
    errors = bad.column("error").to_pylist()
    assert errors[0] is None and errors[3] is None
    assert "not UTF-8" in errors[1] and "missing" in errors[2]
    assert bad.column("text").to_pylist() == ["ok", "\\xff\\xfe", None, "fine"]
    assert bad.column("embedding").is_null().to_pylist() == [False, True, True, False]
    np.testing.assert_array_equal(vectors_of(bad.column("embedding").take([0, 3])),
                                  embedder(["ok", "fine"]))
    assert "is a int" in fn({"text": np.arange(2)}).column("error")[1].as_py()
    with pytest.raises(KeyError, match="no column 'sentence'"):
        EmbedBatches(model_dir, text_column="sentence", num_threads=1)({"text": ["a"]})
    with pytest.raises(ValueError, match="pooling"):
        EmbedBatches(model_dir, pooling="max")


def test_classify_text_batches(tmp_path):
    write_encoder_checkpoint(tmp_path, "bert", "sequence_classification", hidden=32, layers=2,
                             heads=4, intermediate=64, num_labels=3)
    fn = ClassifyTextBatches(tmp_path, top_k=2, num_threads=1)
    texts = [sentence(i) for i in range(4)]
    out = fn({"text": np.array(texts + [b"\xff"], dtype=object)})
    want = TextClassifier(tmp_path)(texts, top_k=2)
    assert out.column("labels").to_pylist()[:4] == [[d["label"] for d in w] for w in want]
    np.testing.assert_allclose(np.array(out.column("scores").to_pylist()[:4]),
                               [[d["score"] for d in w] for w in want], rtol=0, atol=1e-6)
    assert out.column("labels")[4].as_py() is None and "not UTF-8" in out.column("error")[4].as_py()


def _png(image) -> bytes:
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_image_batches_equal_their_pipelines(tmp_path):
    pytest.importorskip("PIL")
    from test_vit import vit_config, vit_tensors

    from fastattn.pipelines import ImageClassifier, SamPredictor
    from fastattn.testing import write_sam_checkpoint
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + 7 * i, 30, 3), dtype=np.uint8) for i in range(2)]
    corrupt = _png(images[0])[:40]                      # a truncated PNG
    column = np.array([_png(images[0]), corrupt, _png(images[1])], dtype=object)

    vit = tmp_path / "vit"
    config = vit_config()
    fastattn.save_checkpoint(vit, config, vit_tensors(config))
    out = ClassifyImageBatches(vit, top_k=3, num_threads=1)({"image": column})
    want = ImageClassifier.from_pretrained(vit).classify(images, top_k=3)
    assert out.column("labels").to_pylist() == [[l for l, _ in w] for w in want][:1] + [None] \
        + [[l for l, _ in want[1]]]
    assert "cannot read the image" in out.column("error")[1].as_py()
    np.testing.assert_allclose(np.array(out.column("scores").take([0, 2]).to_pylist()),
                               [[s for _, s in w] for w in want], rtol=0, atol=1e-6)

    sam = write_sam_checkpoint(tmp_path / "sam")
    fn = SamEmbedBatches(sam, num_threads=1)
    out = fn({"image": column})
    predictor = SamPredictor(fastattn.load(sam))
    assert out.column("error")[1].as_py() and out.column("embedding")[1].as_py() is None
    shape = tuple(out.column("embedding_shape")[0].as_py())
    for row, image in ((0, images[0]), (2, images[1])):
        predictor.set_image(image)
        # the same encoder on the same pixels: the same bits
        np.testing.assert_array_equal(
            vectors_of(out.column("embedding").take([row]))[0].reshape(shape),
            predictor.features[0])
        assert out.column("original_size")[row].as_py() == list(predictor.original_size)
        assert out.column("input_size")[row].as_py() == list(predictor.input_size)


def test_embed_corpus_refuses_bad_arguments_before_starting_ray(model_dir, corpus, tmp_path):
    inputs, _ = corpus
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="task must be one of"):
        embed_corpus(model_dir, inputs, out, task="translate")
    with pytest.raises(ValueError, match="actors must be an int >= 1"):
        embed_corpus(model_dir, inputs, out, actors=0)
    with pytest.raises(ValueError, match="shard_rows"):
        embed_corpus(model_dir, inputs, out, shard_rows=0)
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        embed_corpus(str(tmp_path), inputs, out)
    with pytest.raises(FileNotFoundError, match="no such input file"):
        embed_corpus(model_dir, [str(tmp_path / "missing.txt")], out)
    with pytest.raises(ValueError, match="no column 'body'"):
        embed_corpus(model_dir, inputs[2:], out, text_column="body")
    assert not os.path.exists(out)          # refused while planning: nothing written


# -- on Ray ----------------------------------------------------------------------------------------

def test_map_batches_on_actors_equals_the_pipeline(cluster, model_dir, tmp_path):
    """The documented use: ds.map_batches(EmbedBatches, ...) on 2 actors x 1 CPU, written
    with Ray's write_parquet and read back."""
    texts = [sentence(i) for i in range(24)]
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)],
                             override_num_blocks=6)
    ds = ds.map_batches(CountingEmbed, fn_constructor_args=(model_dir,), batch_size=4,
                        fn_constructor_kwargs={"loads_file": str(tmp_path / "loads")},
                        compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1)
    ds.write_parquet(str(tmp_path / "out"))
    table = pds.dataset(str(tmp_path / "out"), format="parquet").to_table().sort_by("id")
    assert table.column("id").to_pylist() == list(range(24))
    np.testing.assert_allclose(vectors_of(table.column("embedding")),
                               SentenceEmbedder(model_dir)(texts), rtol=0, atol=ATOL)
    # one load per actor (2 actors; none restarted), each with the 1 thread of its 1 CPU
    assert sorted(t for _, t in loads(tmp_path / "loads")) == [1, 1]
    assert len({pid for pid, _ in loads(tmp_path / "loads")}) == 2


def test_embed_corpus_then_resume(cluster, model_dir, corpus, tmp_path):
    inputs, expected = corpus
    out = str(tmp_path / "out")
    counting = functools.partial(CountingEmbed, loads_file=str(tmp_path / "loads"))
    s = embed_corpus(model_dir, inputs, out, actors=2, shard_rows=6, batch_size=4,
                     batches_class=counting)
    shards = sorted(n for n in os.listdir(out) if n.endswith(".parquet"))
    # 22 lines -> 4 chunks, 11 lines -> 2, 14 Parquet rows in row groups of 7 -> 2
    assert len(shards) == s["shards"] == s["written"] == 8 and s["skipped"] == 0
    assert s["rows"] == len(expected) and s["error_rows"] == 4
    errors = check_rows_once(read_output(out), expected, SentenceEmbedder(model_dir))
    txt, jsonl, parquet = inputs
    assert "not UTF-8" in errors[(txt, 20)] and "not JSON" in errors[(jsonl, 9)]
    assert "string 'text'" in errors[(jsonl, 10)] and "missing" in errors[(parquet, 13)]
    # one model load per actor, each actor on 1 thread (its num_cpus)
    first = loads(tmp_path / "loads")
    assert len(first) == len({pid for pid, _ in first}) == len(s["actors"]) <= 2
    assert all(t == 1 for _, t in first)
    assert all((a["threads"], a["loads"]) == (1, 1) and a["cpu_seconds"] > 0
               for a in s["actors"].values())

    # resume: delete one shard, leave a dead writer's temporary; the rerun (1 actor x 2
    # threads) writes that shard alone and removes the temporary
    mtimes = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in shards}
    os.remove(os.path.join(out, shards[3]))
    with open(os.path.join(out, f".{shards[5]}.deadbeef.tmp"), "wb") as f:
        f.write(b"PAR1 half a shard")
    s = embed_corpus(model_dir, inputs, out, actors=1, threads_per_actor=2, shard_rows=6,
                     batch_size=4, batches_class=counting)
    assert (s["written"], s["skipped"]) == (1, 7)
    assert [a["threads"] for a in s["actors"].values()] == [2]
    assert loads(tmp_path / "loads")[len(first):][0][1] == 2
    assert sorted(os.listdir(out)) == sorted(shards + ["_fastattn_corpus.json"])
    for n in shards:
        if n != shards[3]:
            assert os.stat(os.path.join(out, n)).st_mtime_ns == mtimes[n]
    check_rows_once(read_output(out), expected, SentenceEmbedder(model_dir))
    # nothing left: no Ray work at all
    assert embed_corpus(model_dir, inputs, out, shard_rows=6)["written"] == 0
    # another plan in the same folder is refused, not mixed in
    with pytest.raises(ValueError, match="shard_rows"):
        embed_corpus(model_dir, inputs, out, shard_rows=5)
    with pytest.raises(ValueError, match="inputs"):
        embed_corpus(model_dir, inputs[:2], out, shard_rows=6)


def test_a_killed_worker_loses_and_duplicates_nothing(cluster, model_dir, corpus, tmp_path):
    inputs, expected = corpus
    out = str(tmp_path / "out")
    marker = tmp_path / "kill-once"
    marker.write_text("")
    kill_once = functools.partial(KillOnce, loads_file=str(tmp_path / "loads"),
                                  marker=str(marker))
    s = embed_corpus(model_dir, inputs, out, actors=2, shard_rows=6, batch_size=4,
                     batches_class=kill_once, max_retries=2)
    assert not marker.exists() and (tmp_path / "kill-once.claimed").exists()   # one died
    assert s["written"] == 8 and s["rows"] == len(expected)
    check_rows_once(read_output(out), expected, SentenceEmbedder(model_dir))
    # the dead actor was restarted: a load more than the live actors', each process once
    pids = [pid for pid, _ in loads(tmp_path / "loads")]
    assert len(pids) == len(set(pids)) >= len(s["actors"]) + 1
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


def test_cli_embed_corpus(cluster, model_dir, corpus, tmp_path, capsys):
    from fastattn.cli import main
    inputs, expected = corpus
    out = str(tmp_path / "out")
    assert main(["embed-corpus", model_dir, inputs[1], "--out", out, "--shard-rows", "4",
                 "--actors", "1", "--pooling", "cls", "--no-normalize"]) == 0
    text = capsys.readouterr()
    assert "3 shards (3 written now, 0 already there); 11 rows" in text.out
    assert "2 rows failed" in text.out and "# wrote 0000-docs-000002.parquet" in text.err
    table = read_output(out)
    good = [i for i, e in enumerate(table.column("error").to_pylist()) if e is None]
    want = SentenceEmbedder(model_dir, pooling="cls", normalize=False)(
        [sentence(100 + i) for i in range(9)])
    np.testing.assert_allclose(vectors_of(table.column("embedding").take(good)), want,
                               rtol=0, atol=ATOL)
    assert main(["embed-corpus", model_dir, inputs[1], "--out", out, "--shard-rows", "4"]) == 2
    assert "another job" in capsys.readouterr().err       # --pooling mean: not this plan
    assert main(["embed-corpus", model_dir, str(tmp_path / "nope.txt"), "--out", out]) == 2


def test_embed_corpus_classify_text(cluster, corpus, tmp_path):
    inputs, expected = corpus
    model = tmp_path / "classifier"
    write_encoder_checkpoint(model, "bert", "sequence_classification", hidden=32, layers=2,
                             heads=4, intermediate=64, num_labels=3)
    out = str(tmp_path / "out")
    s = embed_corpus(str(model), inputs[2:], out, task="classify-text", top_k=2, actors=1,
                     shard_rows=7)
    assert (s["written"], s["rows"], s["error_rows"]) == (2, 14, 1)
    table = read_output(out)
    assert table.column_names == ["source", "row", "text", "labels", "scores", "error"]
    texts = [expected[(inputs[2], i)] for i in range(13)]
    want = TextClassifier(model)(texts, top_k=2)
    assert table.column("labels").to_pylist()[:13] == [[d["label"] for d in w] for w in want]
    # other batches than the single call: logits within float32 rounding (~ATOL), and a
    # softmax probability moves by at most 1/2 of a logit's change; stored as float32
    np.testing.assert_allclose(np.array(table.column("scores").to_pylist()[:13]),
                               [[d["score"] for d in w] for w in want], rtol=0, atol=ATOL)
    assert table.column("labels")[13].as_py() is None and table.column("error")[13].as_py()


def test_cli_sam_embed_a_folder_of_images(cluster, tmp_path, capsys):
    pytest.importorskip("PIL")
    from fastattn.cli import main
    from fastattn.pipelines import SamPredictor
    from fastattn.testing import write_sam_checkpoint
    sam = write_sam_checkpoint(tmp_path / "sam")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    images = {f"{n}.png": rng.integers(0, 256, (24 + 8 * n, 40, 3), dtype=np.uint8)
              for n in range(3)}
    for name, image in images.items():
        (photos / name).write_bytes(_png(image))
    (photos / "1.png").write_bytes(_png(images["1.png"])[:50])       # truncated
    (photos / "notes.txt").write_text("not an image: not picked up from a folder")
    out = str(tmp_path / "out")
    assert main(["embed-corpus", sam, str(photos), "--out", out, "--task", "sam-embed",
                 "--shard-rows", "2", "--actors", "1"]) == 0
    assert "2 shards (2 written now, 0 already there); 3 rows" in capsys.readouterr().out
    table = pds.dataset(out, format="parquet").to_table().sort_by("source")
    assert [os.path.basename(p) for p in table.column("source").to_pylist()] == \
        ["0.png", "1.png", "2.png"]
    assert "cannot read the image" in table.column("error")[1].as_py()
    predictor = SamPredictor(fastattn.load(sam))
    shape = tuple(table.column("embedding_shape")[0].as_py())
    for row in (0, 2):
        predictor.set_image(images[f"{row}.png"])
        np.testing.assert_array_equal(
            vectors_of(table.column("embedding").take([row]))[0].reshape(shape),
            predictor.features[0])


# -- without Ray ---------------------------------------------------------------------------------

def test_importing_fastattn_does_not_import_ray():
    code = "import sys, fastattn, fastattn.cli; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())


def test_without_ray_a_clean_import_error(monkeypatch, capsys):
    for name in list(sys.modules):
        if name == "fastattn.distributed" or name.startswith("fastattn.distributed."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)          # `import ray` raises ImportError
    with pytest.raises(ImportError, match=r"pip install fastattn\[ray\]"):
        import fastattn.distributed  # noqa: F401
    from fastattn.cli import main
    assert main(["embed-corpus", "m", "in.txt", "--out", "o"]) == 2
    assert "pip install fastattn[ray]" in capsys.readouterr().err
