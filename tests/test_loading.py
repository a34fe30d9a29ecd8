"""fastattn.load and the model registry (fastattn.loading.FAMILIES): dispatch on model_type,
errors, lazy resolution, load() giving the model the builders give from the same tensors, and
mmap=False models outliving changes to their files (through the pipelines and the CLI too)."""
import dataclasses
import mmap
import subprocess
import sys

import numpy as np
import pytest

import fastattn
from fastattn import loading, testing
from fastattn.io import bf16_to_float32, float32_to_bf16, load_config, save_checkpoint

from conftest import BERT, LARGE_INIT, LLAMA, TINY_GPT2, _owner, random_tensors


# -- fastattn.load ---------------------------------------------------------------------------------

def test_load_dispatches_on_model_type(tmp_path, rng, monkeypatch):
    tensors = random_tensors(rng, 4)
    save_checkpoint(tmp_path, TINY_GPT2, tensors, shards=2)
    calls = []

    def fake_build(config, source, weights):
        calls.append((config, weights))
        return {name: source[name] for name in source.keys()}

    monkeypatch.setitem(loading.FAMILIES, "gpt2",
                        dataclasses.replace(loading.FAMILIES["gpt2"], build=fake_build))
    model = fastattn.load(tmp_path)
    assert [c.model_type for c, _ in calls] == ["gpt2"] and calls[0][0].n_embd == 8
    assert calls[0][1] == "as-stored"     # load's default format reaches the builder
    assert sorted(model) == sorted(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(model[name], value)
        assert isinstance(_owner(model[name]), mmap.mmap)  # still mapped after load returns


def test_load_errors(tmp_path, rng, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no such model directory.*nowhere"):
        fastattn.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        fastattn.load(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        fastattn.load(tmp_path / "file")
    save_checkpoint(tmp_path, {"model_type": "t5"}, random_tensors(rng, 1))
    with pytest.raises(ValueError, match="model_type 't5' is not supported; supported: bert, "
                                         "deit, distilbert, electra, gpt2, llama, mistral, "
                                         "qwen2, resnet, roberta, sam, vit, xlm-roberta$"):
        fastattn.load(tmp_path)
    monkeypatch.setitem(loading.FAMILIES, "llama", dataclasses.replace(
        loading.FAMILIES["llama"], build=lambda config, source, weights: "built"))
    save_checkpoint(tmp_path, LLAMA, random_tensors(rng, 2))   # one tensor per layer at least
    assert fastattn.load(tmp_path) == "built"


def test_builder_registry_resolves_lazily(monkeypatch):
    toy = dataclasses.replace(loading.FAMILIES["gpt2"],
                              build="fastattn.io.safetensors:bf16_to_float32")
    monkeypatch.setitem(loading.FAMILIES, "toy", toy)
    assert loading.builder_for("toy") is bf16_to_float32
    monkeypatch.setitem(loading.FAMILIES, "toy2", dataclasses.replace(
        toy, build="fastattn.models.config:ModelConfig.to_dict"))
    assert loading.builder_for("toy2") is fastattn.models.config.ModelConfig.to_dict
    assert set(loading.FAMILIES) >= {"gpt2", "llama", "mistral", "qwen2", "bert"}
    assert loading.FAMILIES["bert"].build == "fastattn.models.bert:BertModel.from_weights"


# -- end to end: load() gives the model the builders give from the same tensors ----------------

def bert_checkpoint(rng, *, vocab=40, hidden=16, heads=2, inter=24, layers=2, positions=20):
    config = dict(BERT, hidden_size=hidden, num_attention_heads=heads, intermediate_size=inter,
                  num_hidden_layers=layers, max_position_embeddings=positions, vocab_size=vocab)
    return config, testing.random_checkpoint(config, rng, prefix="bert.", **LARGE_INIT)


def _to_rope_parameters(config):
    """The same config as transformers 5.x writes it: one rope_parameters dict."""
    config = dict(config)
    scaling = config.pop("rope_scaling") or {"rope_type": "default"}
    config["rope_parameters"] = {**scaling, "rope_theta": config.pop("rope_theta")}
    return config


def _decoder_cases():
    from conftest import gpt2_checkpoint, llama_checkpoint
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    return {
        "gpt2": lambda rng: gpt2_checkpoint(rng),
        "gpt2-untied-prefixed": lambda rng: gpt2_checkpoint(rng, tied=False,
                                                            prefix="transformer."),
        "llama-gqa-tied": lambda rng: llama_checkpoint(rng, kv_heads=1, tied=True),
        "llama3-scaling-5.x": lambda rng: (lambda c, t: (_to_rope_parameters(c), t))(
            *llama_checkpoint(rng, rope_theta=500000.0, rope_scaling=llama3)),
        "mistral-window": lambda rng: llama_checkpoint(rng, "mistral", window=5),
        "qwen2-bias": lambda rng: llama_checkpoint(rng, "qwen2", heads=4, kv_heads=4,
                                                   head_dim=16),
        "bert": bert_checkpoint,
    }


E2E_CASES = ["gpt2", "gpt2-untied-prefixed", "llama-gqa-tied", "llama3-scaling-5.x",
             "mistral-window", "qwen2-bias", "bert"]


@pytest.mark.parametrize("dtype, shards", [("F32", 1), ("F32", 3), ("BF16", 2)])
@pytest.mark.parametrize("case", E2E_CASES)
def test_load_equals_building_from_the_tensors(tmp_path, rng, case, dtype, shards):
    pytest.importorskip("fastattn.models")  # the layers need the matmul/attention/rope kernels
    from fastattn.models import BertModel, build_gpt2, build_llama
    config, tensors = _decoder_cases()[case](rng)
    save_checkpoint(tmp_path, config, tensors, dtype=dtype, shards=shards)
    model = fastattn.load(tmp_path)
    if dtype == "BF16":  # what the file holds: each value rounded to bfloat16
        tensors = {n: bf16_to_float32(float32_to_bf16(v)) for n, v in tensors.items()}
    c = load_config(config)
    build = {"gpt2": build_gpt2, "bert": BertModel.from_weights}.get(c.model_type, build_llama)
    direct = build(c, tensors)
    assert type(model) is type(direct)
    ids = rng.integers(0, c.vocab_size, (2, 9))
    # same float32 weights, same kernels: bit-identical outputs
    np.testing.assert_array_equal(model(ids), direct(ids))


# -- mmap=False: the model owns its weights ---------------------------------------------------

# Run in a child process: were the weights still mapped, touching them after the truncation
# would kill the interpreter with SIGBUS, and a crash must fail the test, not the test run.
# The child loads the model, truncates model.safetensors to its header (as a failed download
# or `truncate` would), then overwrites it in place with another checkpoint (what `cp` does:
# same inode, new bytes), and checks that the logits stay bit-identical throughout.
SURVIVES_CHANGED_FILES = """
import os, shutil, sys
import numpy as np
import fastattn

model_dir, victim, replacement = sys.argv[1:]
model = fastattn.load(model_dir, mmap=False)
ids = np.arange(9)[None] % 11
before = model(ids)
os.truncate(victim, 64)
after_truncation = model(ids)
shutil.copyfile(replacement, victim)   # in place, as cp does
after_overwrite = model(ids)
assert np.array_equal(before, after_truncation), "truncation changed the logits"
assert np.array_equal(before, after_overwrite), "overwriting changed the logits"
print("survived")
"""


@pytest.mark.parametrize("shards", [1, 2])
def test_no_mmap_model_survives_truncation_and_overwrite(tmp_path, rng, shards):
    pytest.importorskip("fastattn.models")
    from conftest import gpt2_checkpoint
    config, tensors = gpt2_checkpoint(rng, vocab=11, embd=16, heads=2, positions=16)
    _, other = gpt2_checkpoint(rng, vocab=11, embd=16, heads=2, positions=16)
    save_checkpoint(tmp_path / "model", config, tensors, shards=shards)
    save_checkpoint(tmp_path / "other", config, other, shards=shards)
    # the last shard: every file is read into memory, not only the first
    name = "model.safetensors" if shards == 1 else "model-00002-of-00002.safetensors"
    child = subprocess.run(
        [sys.executable, "-c", SURVIVES_CHANGED_FILES, str(tmp_path / "model"),
         str(tmp_path / "model" / name), str(tmp_path / "other" / name)],
        capture_output=True, text=True, timeout=120)
    assert child.returncode == 0 and child.stdout.strip() == "survived", (
        f"exit status {child.returncode} (negative: killed by that signal)\n"
        f"{child.stderr[-2000:]}")


def test_pipelines_and_cli_pass_mmap_to_load(tmp_path, monkeypatch):
    from fastattn import cli
    from fastattn.pipelines import FillMask, SentenceEmbedder, TextGenerator
    from fastattn.tokenizers import tokenizer_json

    calls = []

    class Stub:
        has_mlm_head = True

    def fake_load(path, *, mmap=True, weights="as-stored"):   # weights: test_cli_weights.py
        calls.append(mmap)
        return Stub()

    monkeypatch.setattr(loading, "load", fake_load)
    monkeypatch.setattr(fastattn, "load", fake_load)
    for pipeline in (TextGenerator, SentenceEmbedder, FillMask):
        pipeline(tmp_path, tokenizer=object())
        pipeline(tmp_path, tokenizer=object(), mmap=False)
    assert calls == [True, False] * 3

    calls.clear()
    monkeypatch.setattr(tokenizer_json, "load_tokenizer_json", lambda path: None)

    def stop(*args, **kwargs):   # generate stops after load: no tokenizer, no model to run
        raise SystemExit(0)

    monkeypatch.setattr("fastattn.pipelines.generate_text", stop)
    for flags in ([], ["--no-mmap"]):
        with pytest.raises(SystemExit):
            cli.main(["generate", str(tmp_path), "--prompt", "x", *flags])
    assert calls == [True, False]

    calls.clear()
    made = []
    monkeypatch.setattr("fastattn.pipelines.SentenceEmbedder",
                        lambda model, **kw: made.append(kw["mmap"]) or stop())
    (tmp_path / "lines.txt").write_text("a line\n")
    for flags in ([], ["--no-mmap"]):
        with pytest.raises(SystemExit):
            cli.main(["embed", str(tmp_path), "--file", str(tmp_path / "lines.txt"),
                      "--query", "x", *flags])
    assert made == [True, False]
