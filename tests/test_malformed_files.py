"""Malformed inputs, all in one table: broken safetensors files, config.json files and
model.safetensors.index.json files (issue 16: no input crashes the process, hangs, or loads
silently). Each case must raise one exact exception type with a message that names the file
(or the model directory), within a time bound.

Every case is opened in one child process, one after the other, each reporting as it finishes:
should an open crash the interpreter (SIGBUS, SIGSEGV, a stack overflow) or hang, the cases
it did not report fail here with the child's exit status, instead of taking the test run with
them. Behaviour on good files (round trips, views, metadata) is tested in test_safetensors.py,
test_checkpoint.py and test_config.py; a file changed while a model maps it, in
test_loading.py.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from fastattn.io import save_checkpoint, save_safetensors

from conftest import LLAMA, TINY_GPT2, random_tensors
from test_safetensors import entry, write_raw

# Every case is a parse of at most a few MB: milliseconds. One second leaves room for a loaded
# machine and still catches the quadratic cases (a shape of 100 000 dimensions of 2**63 took
# half a minute before its length was checked first).
SECONDS = 1.0

CASES = {}   # id -> (make(directory) -> (opener, path to open, path the message must name),
#                    exception type name, message pattern)


def case(case_id, error, pattern):
    def register(make):
        CASES[case_id] = (make, error, pattern)
        return make
    return register


# -- safetensors files ---------------------------------------------------------------------------

def safetensors_case(case_id, pattern, header=None, data=b"\0" * 8, length=None):
    """A file with `header` (one tensor 'w' when it is an entry dict) opened by
    SafetensorsFile: ValueError naming the file (and 'w' for entry cases)."""
    if isinstance(header, dict) and {"dtype", "shape", "data_offsets"} & set(header):
        header, pattern = {"w": header}, rf"tensor 'w': .*{pattern}"

    @case(case_id, "ValueError", pattern)
    def make(d):
        path = write_raw(os.path.join(d, "bad.safetensors"), header, data, length)
        return "safetensors", path, path


safetensors_case("header-length-past-the-end", r"header length \d+ exceeds the \d+ bytes after",
                 header=b"{}", length=1 << 62)
safetensors_case("header-not-utf8", "the header is not UTF-8", header=b"\xff\xfe{}      ")
safetensors_case("header-not-json", "not valid JSON", header=b"{not json}")
safetensors_case("header-not-an-object", "must be a JSON object, got list", header=b"[1, 2]  ")
safetensors_case("header-duplicate-key", "duplicate key 'a'", header=b'{"a": 1, "a": 2}')
safetensors_case("header-nested-too-deeply", "nested too deeply",
                 header=b"[" * 100_000 + b"]" * 100_000)
safetensors_case("metadata-not-str-to-str", "__metadata__", header={"__metadata__": {"k": 1}})
safetensors_case("entry-not-an-object", "must be an object", header={"w": "F32"})
safetensors_case("entry-without-dtype", "no 'dtype'",
                 header={"shape": [2], "data_offsets": [0, 8]})
safetensors_case("entry-without-shape", "no 'shape'",
                 header={"dtype": "F32", "data_offsets": [0, 8]})
safetensors_case("entry-without-data_offsets", "no 'data_offsets'",
                 header={"dtype": "F32", "shape": [2]})
safetensors_case("dtype-unsupported", "unsupported dtype 'F8_E4M3'", entry(dtype="F8_E4M3"))
safetensors_case("dtype-unknown", "unsupported dtype 'Q4'", entry(dtype="Q4"))
safetensors_case("dtype-as-list", r"unsupported dtype \['F32'\]", entry(dtype=["F32"]))
safetensors_case("dtype-as-object", "unsupported dtype", entry(dtype={"F32": 1}))
safetensors_case("shape-not-a-list", "shape must be a list", entry(shape="2"))
safetensors_case("shape-negative", r"shape must be a list of integers in \[0, 2\*\*63\)",
                 entry(shape=(-2,)))
safetensors_case("shape-float", "shape must be a list of integers", entry(shape=(2.0,)))
safetensors_case("shape-65-dimensions", "65 dimensions, more than NumPy's limit of 64",
                 entry(shape=(1,) * 65, offsets=(0, 4)))
safetensors_case("shape-600-dimensions", "600 dimensions",
                 entry(shape=(10**9,) * 600, offsets=(0, 8)))
safetensors_case("shape-huge-list", "100000 dimensions",
                 entry(shape=(2**63,) * 100_000, offsets=(0, 8)))
safetensors_case("shape-dimension-2**63", r"integers in \[0, 2\*\*63\)",
                 entry(shape=(0, 2**63), offsets=(0, 0)))
safetensors_case("shape-zero-times-10**20", r"integers in \[0, 2\*\*63\)",
                 entry(shape=(0, 10**20), offsets=(0, 0)))
# NumPy bounds the product of the non-zero dimensions even when the array is empty
safetensors_case("shape-zero-times-2**124", r"more than 2\*\*63 - 1 bytes",
                 entry(shape=(0, 2**62, 2**62), offsets=(0, 0)))
safetensors_case("shape-product-overflows-int64", r"more than 2\*\*63 - 1 bytes",
                 entry(shape=(1 << 62, 1 << 62), offsets=(0, 8)))
safetensors_case("offsets-one-number", "data_offsets must be", entry(offsets=(0,)))
safetensors_case("offsets-reversed", "data_offsets must be", entry(offsets=(8, 0)))
safetensors_case("offsets-negative", "data_offsets must be", entry(offsets=(-8, 0)))
safetensors_case("offsets-span-too-long", "span 12 bytes but shape", entry(offsets=(0, 12)))
safetensors_case("offsets-span-too-short", "needs 12", entry(shape=(3,)))
safetensors_case("offsets-past-the-end", r"end past the data buffer \(8 bytes\)",
                 entry(offsets=(8, 16)))
safetensors_case("offsets-huge", "end past the data buffer",
                 entry(shape=(2**60,), offsets=(0, 2**62)))
safetensors_case("offsets-overlap", "tensors 'a' and 'b' overlap",
                 {"a": entry(offsets=(0, 8)), "b": entry(offsets=(4, 12))}, b"\0" * 12)


@case("short-file", "ValueError", "the file has 3 bytes, fewer than the 8-byte header length")
def _(d):
    path = os.path.join(d, "bad.safetensors")
    with open(path, "wb") as f:
        f.write(b"\x01\x02\x03")
    return "safetensors", path, path


@case("header-above-100-MB", "ValueError", "header length 100000001 exceeds the "
                                           "100000000-byte limit")
def _(d):
    # a file long enough to hold the header, sparse: no 100 MB written
    path = write_raw(os.path.join(d, "bad.safetensors"), b"{", length=100_000_001)
    os.truncate(path, 8 + 100_000_001 + 8)
    return "safetensors", path, path


@case("truncated-in-the-data", "ValueError", r"tensor 'b': data_offsets \[40, 52\] end past "
                                             r"the data buffer \(48 bytes\)")
def _(d):
    path = os.path.join(d, "model.safetensors")
    save_safetensors(path, {"a": np.arange(10, dtype=np.float32),
                            "b": np.arange(3, dtype=np.float32)})
    os.truncate(path, os.path.getsize(path) - 4)
    return "safetensors", path, path


# -- config.json -----------------------------------------------------------------------------

def config_case(case_id, error, pattern, text, opener="config", weights=None):
    """A model directory whose config.json holds `text` (bytes, str, or a dict to dump)."""
    @case(case_id, error, pattern)
    def make(d):
        if weights is not None:
            save_checkpoint(d, TINY_GPT2, weights)
        raw = text if isinstance(text, (bytes, str)) else json.dumps(text)
        with open(os.path.join(d, "config.json"), "wb") as f:
            f.write(raw if isinstance(raw, bytes) else raw.encode())
        return opener, d, os.path.join(d, "config.json") if opener == "config" else d


@case("config-above-100-MB", "ValueError", "100000001 bytes exceeds the 100000000-byte limit")
def _(d):
    path = os.path.join(d, "config.json")
    with open(path, "wb") as f:
        f.write(b"{")
    os.truncate(path, 100_000_001)   # sparse: no 100 MB written
    return "config", d, path


config_case("config-not-utf8", "ValueError", "not valid UTF-8 JSON", b'{"model_type": "\xff"}')
config_case("config-not-json", "ValueError", "not valid UTF-8 JSON", '{"model_type": llama}')
config_case("config-not-an-object", "ValueError", "must be a JSON object, got list", "[]")
config_case("config-duplicate-key", "ValueError", "duplicate key 'hidden_size'",
            json.dumps(LLAMA)[:-1] + ', "hidden_size": 128}')
config_case("config-nested-too-deeply", "ValueError", "not valid UTF-8 JSON",
            '{"model_type": "llama", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
config_case("config-without-model_type", "MissingKeyError", "'model_type' is required",
            {k: v for k, v in LLAMA.items() if k != "model_type"})
config_case("config-model_type-not-a-string", "ValueError", "'model_type' must be a string",
            {**LLAMA, "model_type": ["llama"]})
config_case("config-size-a-string", "ValueError", "'hidden_size' must be an integer, got '64'",
            {**LLAMA, "hidden_size": "64"})
config_case("config-size-a-bool", "ValueError", "'num_hidden_layers' must be an integer",
            {**LLAMA, "num_hidden_layers": True})
config_case("config-size-10**30", "ValueError", "'hidden_size' must fit in 64 bits",
            {**LLAMA, "hidden_size": 10**30})
config_case("config-size-5000-digits", "ValueError", "not valid UTF-8 JSON",
            json.dumps(LLAMA)[:-1] + ', "vocab_size": ' + "9" * 5000 + "}")
config_case("config-1e999", "ValueError", "'rms_norm_eps' must be a finite number, got inf",
            json.dumps(LLAMA)[:-1] + ', "rms_norm_eps": 1e999}')
config_case("config-NaN", "ValueError", "'rms_norm_eps' must be a finite number, got nan",
            json.dumps(LLAMA)[:-1] + ', "rms_norm_eps": NaN}')
config_case("config-Infinity-as-a-size", "ValueError", "'vocab_size' must be an integer, got inf",
            json.dumps({k: v for k, v in LLAMA.items() if k != "vocab_size"})[:-1]
            + ', "vocab_size": Infinity}')
config_case("config-2**40-layers", "ValueError",
            "config.json's n_layer is 1099511627776, but the checkpoint holds only 2 tensors",
            {**TINY_GPT2, "n_layer": 2**40}, opener="load",
            weights=random_tensors(np.random.default_rng(0), 2))
config_case("config-disagrees-with-the-weights", "ValueError",
            "checkpoint: missing tensor", TINY_GPT2, opener="load",
            weights=random_tensors(np.random.default_rng(0), 2))


# -- model.safetensors.index.json ------------------------------------------------------------

def index_case(case_id, error, pattern, index, names="index"):
    """A sharded directory (two shards of tensors layer.0 and layer.1) whose index holds
    `index` (text, or a dict to dump). The message must name the index, or the shard file."""
    @case(case_id, error, pattern)
    def make(d):
        save_checkpoint(d, TINY_GPT2, random_tensors(np.random.default_rng(0), 2), shards=2)
        index_path = os.path.join(d, "model.safetensors.index.json")
        with open(index_path, "w") as f:
            f.write(index if isinstance(index, str) else json.dumps(index))
        return "checkpoint", d, index_path if names == "index" else os.path.join(d, names)


SHARD1, SHARD2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
@case("index-above-100-MB", "ValueError", "100000001 bytes exceeds the 100000000-byte limit")
def _(d):
    path = os.path.join(d, "model.safetensors.index.json")
    with open(path, "wb") as f:
        f.write(b"{")
    os.truncate(path, 100_000_001)
    return "checkpoint", d, path


index_case("index-not-json", "ValueError", "not valid UTF-8 JSON", "{oops")
index_case("index-not-an-object", "ValueError", "must be a JSON object", '["weight_map"]')
index_case("index-without-weight_map", "ValueError", "weight_map", {"metadata": {}})
index_case("index-weight_map-not-an-object", "ValueError", "needs a \"weight_map\" object",
           {"weight_map": [["layer.0.weight", SHARD1]]})
index_case("index-duplicate-key", "ValueError", "duplicate key 'layer.0.weight'",
           '{"weight_map": {"layer.0.weight": "%s", "layer.0.weight": "%s"}}' % (SHARD1, SHARD2))
index_case("index-shard-outside-the-directory", "ValueError", "not a file name",
           {"weight_map": {"layer.0.weight": "../model.safetensors"}})
index_case("index-shard-an-absolute-path", "ValueError", "not a file name",
           {"weight_map": {"layer.0.weight": "/etc/passwd"}})
index_case("index-shard-a-number", "ValueError", "not a file name",
           {"weight_map": {"layer.0.weight": 3}})
index_case("index-missing-shard", "FileNotFoundError", "shard 'model-00009-of-00009.safetensors' "
           "named by model.safetensors.index.json is missing",
           {"weight_map": {"layer.0.weight": "model-00009-of-00009.safetensors"}},
           names="model-00009-of-00009.safetensors")
index_case("index-tensor-absent-from-its-shard", "ValueError", "'ghost.weight' is listed in shard",
           {"weight_map": {"layer.0.weight": SHARD1, "layer.1.weight": SHARD2,
                           "ghost.weight": SHARD1}})


@case("index-tensor-in-two-shards", "ValueError",
      f"tensor 'layer.0.weight' is in two shards, '{SHARD1}' and '{SHARD2}'")
def _(d):
    tensors = random_tensors(np.random.default_rng(0), 2)
    save_checkpoint(d, TINY_GPT2, tensors, shards=2)
    # the second shard holds layer.0 too (the index still maps it to the first)
    save_safetensors(os.path.join(d, SHARD2), tensors, {"format": "pt"})
    return "checkpoint", d, os.path.join(d, "model.safetensors.index.json")


@case("index-shard-truncated", "ValueError", "end past the data buffer")
def _(d):
    save_checkpoint(d, TINY_GPT2, random_tensors(np.random.default_rng(0), 2), shards=2)
    shard = os.path.join(d, SHARD2)
    os.truncate(shard, os.path.getsize(shard) - 4)
    return "checkpoint", d, shard


# -- the child process -----------------------------------------------------------------------

CHILD = """
import json, sys, time
import fastattn
from fastattn.io import Checkpoint, SafetensorsFile

OPENERS = {"safetensors": SafetensorsFile, "checkpoint": Checkpoint,
           "config": fastattn.load_config, "load": fastattn.load}
for case_id, opener, path in json.load(sys.stdin):
    start = time.perf_counter()
    try:
        OPENERS[opener](path)
        outcome = ["no error", ""]
    except Exception as e:
        outcome = [type(e).__name__, str(e)]
    print(json.dumps([case_id, *outcome, time.perf_counter() - start]), flush=True)
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """case id -> (exception type name, message, seconds, path the message must name), and
    the child's exit status and stderr for the cases it did not report."""
    jobs, named = [], {}
    for case_id, (make, _, _) in CASES.items():
        directory = tmp_path_factory.mktemp(case_id)
        opener, path, names = make(str(directory))
        jobs.append([case_id, opener, str(path)])
        named[case_id] = str(names)
    try:
        child = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(jobs),
                               capture_output=True, text=True, timeout=300)
        status, out, err = child.returncode, child.stdout, child.stderr
    except subprocess.TimeoutExpired as e:
        status, out, err = "killed after 300 s", e.stdout or "", e.stderr or ""
        out, err = (x.decode() if isinstance(x, bytes) else x for x in (out, err))
    results = {}
    for line in out.splitlines():
        case_id, error, message, seconds = json.loads(line)
        results[case_id] = (error, message, seconds, named[case_id])
    return results, status, err


@pytest.mark.parametrize("case_id", list(CASES))
def test_malformed_input_fails_cleanly(outcomes, case_id):
    results, status, err = outcomes
    assert case_id in results, (f"the child process did not report {case_id!r}: exit status "
                                f"{status} (negative: killed by that signal)\n{err[-2000:]}")
    error, message, seconds, named = results[case_id]
    _, expected_error, pattern = CASES[case_id]
    assert (error, bool(re.search(pattern, message))) == (expected_error, True), message
    assert named in message, f"the message does not name {named!r}: {message}"
    assert seconds < SECONDS, f"{case_id} took {seconds:.2f} s"
    assert len(message) < 1000, f"a {len(message)}-character message"


# -- random corruptions ----------------------------------------------------------------------

# A valid file, then many seeded corruptions of it: a header value replaced by another of any
# JSON type (including the troublesome sizes), a byte of the header flipped, the file cut.
# Opening and reading every tensor must succeed or raise ValueError: any other exception is a
# missed check, a crash ends the child before it prints.
FUZZ = """
import json, struct, sys
import numpy as np
from fastattn.io import SafetensorsFile, save_safetensors

path, rounds = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(16)
save_safetensors(path, {"a": np.ones((3, 4), np.float32), "b": np.arange(5, dtype=np.int64),
                        "c": np.zeros((2, 0, 3), np.float16)}, dtype=None)
good = open(path, "rb").read()
(n,) = struct.unpack("<Q", good[:8])
header, data = json.loads(good[8:8 + n]), good[8 + n:]
VALUES = [-1, 0, 1, 7, 2**31, 2**63 - 1, 2**63, 2**64, 10**20, 1.5, float("nan"), "F32", "BF16",
          "", None, True, [], {}, [0], [1] * 65, [2**62, 4], [0, 10**20], {"F32": 1}, ["F32"]]

def corrupt():
    kind = rng.integers(3)
    if kind == 0:   # one header value replaced
        h = json.loads(json.dumps(header))
        name = ["a", "b", "c", "__metadata__"][rng.integers(4)]
        field = ["dtype", "shape", "data_offsets", None][rng.integers(4)]
        value = VALUES[rng.integers(len(VALUES))]
        if field is None or not isinstance(h.get(name), dict):
            h[name] = value
        elif isinstance(h[name].get(field), list) and h[name][field] and rng.integers(2):
            h[name][field][rng.integers(len(h[name][field]))] = value
        else:
            h[name][field] = value
        text = json.dumps(h).encode()
        return struct.pack("<Q", len(text)) + text + data
    if kind == 1:   # one header byte changed
        raw = bytearray(good)
        raw[8 + rng.integers(n)] = rng.integers(256)
        return bytes(raw)
    return good[:rng.integers(len(good))]   # cut

outcomes = {}
for _ in range(rounds):
    with open(path, "wb") as f:
        f.write(corrupt())
    for mapped in (True, False):
        try:
            with SafetensorsFile(path, mmap=mapped) as f:
                for name in f:
                    f[name], f.raw(name)
            outcome = "opened"
        except ValueError:
            outcome = "ValueError"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
print(json.dumps(outcomes))
"""


def test_random_corruptions_open_or_raise_value_error(tmp_path):
    child = subprocess.run([sys.executable, "-c", FUZZ, str(tmp_path / "f.safetensors"), "1500"],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, (f"exit status {child.returncode} (negative: killed by that "
                                   f"signal)\n{child.stderr[-3000:]}")
    outcomes = json.loads(child.stdout)
    assert set(outcomes) <= {"opened", "ValueError"}
    assert outcomes["ValueError"] > 1000   # most corruptions are caught, not all harmless
