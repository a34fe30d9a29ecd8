"""Weight formats through the model layer: fastattn.load(weights=), Linear carrying a format,
`fastattn quantize` files, resident memory after a load, and each format's accuracy against
float32 on random-weight decoders and a BERT encoder.

Tolerances (see docs/quantization.md, "Accuracy"): a format perturbs each weight by a relative
error whose rms over Gaussian weights is RHO[fmt] (from docs/weight_formats.md's bounds:
bfloat16 |e| <= 2^-8 |w| and float16 2^-11 |w|, uniform: rms = bound / sqrt(3); q8 |e| <= d/2
with d = max|w| / 127 and q4 |e| <= d/2 (up to d at the clamp) with d = max|w| / 8, max|w| of
a block of 32 Gaussians <= 3 sigma: rms <= 3 / 127 / sqrt(12) sigma and 3 / 8 / sqrt(12) sigma,
q4 doubled for the clamped values). A matmul's output then carries a relative rms error
RHO (independent errors over K terms), n matmuls in series at most sqrt(n) RHO, and the
largest of V x T logits stays within 6 of its rms (6 sigma: V x T ~ 10^4 samples)."""
from __future__ import annotations

import json
import math
import mmap

import numpy as np
import pytest

import fastattn
from conftest import _owner
from fastattn.bench.decode_formats import load_memory, matrices
from fastattn.io import SafetensorsFile, save_checkpoint, save_safetensors
from fastattn.layers import Linear
from fastattn.quantize import quantize
from fastattn.testing import random_checkpoint

FORMATS = ("float32", "bfloat16", "float16", "q8", "q4")
LOW = FORMATS[1:]
RHO = {"float32": 0.0, "bfloat16": 2.0**-8 / math.sqrt(3), "float16": 2.0**-11 / math.sqrt(3),
       "q8": 3 / 127 / math.sqrt(12), "q4": 2 * 3 / 8 / math.sqrt(12)}
SIGMAS = 6.0

LLAMA = dict(model_type="llama", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=96,
             hidden_act="silu", tie_word_embeddings=False, max_position_embeddings=64)
LLAMA_TIED = dict(LLAMA, tie_word_embeddings=True)
GPT2 = dict(model_type="gpt2", n_embd=64, n_head=4, n_layer=2, n_positions=64, vocab_size=96,
            layer_norm_epsilon=1e-5, activation_function="gelu_new")
BERT = dict(model_type="bert", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=96, vocab_size=80, max_position_embeddings=64, type_vocab_size=2,
            layer_norm_eps=1e-12, hidden_act="gelu", architectures=["BertModel"])
# std 1/sqrt(fan_in): logits of order 1 with clear top-1 margins (transformers' 0.02 leaves
# them flat, so any rounding would flip them)
STD = (lambda name, shape: 1 / math.sqrt(shape[-1]))
# matmuls a logit passes through in series: per layer attention (qkv, o) and MLP (2), + head
SERIES = 2 * 4 + 1


def write(path, config, dtype="F32", **options):
    tensors = random_checkpoint(config, seed=1, std=STD, **options)
    save_checkpoint(path, config, tensors, dtype=dtype)
    return tensors


def formats_of(model) -> set:
    return {m.weights for m in matrices(model)}


# --------------------------------------------------------------------------- loading
@pytest.mark.parametrize("config", [LLAMA, LLAMA_TIED, GPT2], ids=["llama", "tied", "gpt2"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_load_converts_every_linear(tmp_path, config, fmt):
    write(tmp_path, config)
    model = fastattn.load(tmp_path, weights=fmt)
    assert formats_of(model) == {fmt}
    # the LM head too (tied or not); the embeddings stay float32
    assert model.lm_head.weights == fmt
    assert model.embed.weight.dtype == np.float32


def test_as_stored_keeps_16_bit_checkpoints_zero_copy(tmp_path):
    write(tmp_path / "bf16", LLAMA, dtype="BF16")
    write(tmp_path / "f16", LLAMA, dtype="F16")
    write(tmp_path / "f32", LLAMA)
    assert formats_of(fastattn.load(tmp_path / "f32")) == {"float32"}
    for name, fmt in (("bf16", "bfloat16"), ("f16", "float16")):
        model = fastattn.load(tmp_path / name)           # default: as-stored
        assert formats_of(model) == {fmt}
        # o_proj is not fused: its storage is the file's bytes, mapped
        o = model.blocks[0].attn.o.weight.storage()["weight"]
        assert isinstance(_owner(o), mmap.mmap)
        # BF16 / F16 widen to float32 exactly: as-stored computes with float32's values
        ids = np.arange(12)[None] % LLAMA["vocab_size"]
        expanded = fastattn.load(tmp_path / name, weights="float32")(ids)
        # the same weights and float32 accumulation; only the summation order of the kernels
        # differs: a few float32 ulps of the logits' scale per K-term sum
        np.testing.assert_allclose(model(ids), expanded, rtol=0, atol=1e-4)


def test_load_refuses_unknown_formats_and_unsupported_families(tmp_path):
    write(tmp_path, LLAMA)
    with pytest.raises(ValueError, match="weights must be one of as-stored.*got 'int4'"):
        fastattn.load(tmp_path, weights="int4")
    resnet = {"model_type": "resnet", "num_channels": 3, "hidden_act": "relu",
              "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1],
              "layer_type": "basic"}
    write(tmp_path / "resnet", resnet)
    with pytest.raises(ValueError, match="weights='q8' is not available for 'resnet'"):
        fastattn.load(tmp_path / "resnet", weights="q8")
    assert fastattn.load(tmp_path / "resnet", weights="float32") is not None
    config = json.loads((tmp_path / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="quant_method is 'gptq'"):
        fastattn.load(tmp_path)


def test_linear_takes_a_packed_matrix_or_a_format(rng):
    w = rng.standard_normal((24, 40), dtype=np.float32)
    x = rng.standard_normal((3, 40), dtype=np.float32)
    for fmt in FORMATS:
        layer = Linear(w, weights=fmt)
        assert layer.weights == fmt and (layer.in_features, layer.out_features) == (40, 24)
        again = Linear(fastattn.PackedMatrix.from_storage(layer.weight.storage(), (40, 24), fmt))
        np.testing.assert_array_equal(again(x), layer(x))     # same storage, same result
    with pytest.raises(ValueError, match="PackedMatrix carries its own"):
        Linear(layer.weight, layout="in_out")
    with pytest.raises(ValueError, match="weights must be"):
        Linear(w, weights="q3")


# --------------------------------------------------------------------------- quantize files
@pytest.mark.parametrize("config", [LLAMA_TIED, GPT2], ids=["llama-tied", "gpt2"])
@pytest.mark.parametrize("fmt", LOW)
def test_quantize_writes_a_file_that_loads_without_conversion(tmp_path, config, fmt):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, config)
    (src / "tokenizer.json").write_text("{}")
    summary = quantize(src, out, fmt)
    assert summary["files"] == ["tokenizer.json"] and (out / "tokenizer.json").exists()
    written = json.loads((out / "config.json").read_text())
    q = written["quantization_config"]
    assert q["quant_method"] == "fastattn" and q["format"] == fmt
    assert q["fastattn_version"] == fastattn.__version__
    with SafetensorsFile(out / "model.safetensors") as f:
        names = set(f.keys())
        assert "lm_head.weight" in names          # the tied head, saved in the format
        scales = {n for n in names if n.endswith(".scales")}
        if fmt in ("q8", "q4"):
            assert scales and {f.dtype(n[:-len(".scales")]) for n in scales} == {
                "I8" if fmt == "q8" else "U8"}
        else:
            assert not scales
            assert f.dtype("lm_head.weight") == ("BF16" if fmt == "bfloat16" else "F16")
    model = fastattn.load(out)                     # as-stored: the file's format
    assert formats_of(model) == {fmt}
    reference = fastattn.load(src, weights=fmt)    # quantized at load: the same storage
    ids = np.arange(10)[None] % config["vocab_size"]
    np.testing.assert_array_equal(model(ids), reference(ids))
    if fmt in ("q8", "q4") and config is LLAMA_TIED:   # out_in: the mapped bytes themselves
        stored = model.blocks[0].attn.o.weight.storage()["weight"]
        assert isinstance(_owner(stored), mmap.mmap)
    # back to float32: the dequantized values, packed
    dequantized = fastattn.load(out, weights="float32")
    assert formats_of(dequantized) == {"float32"}
    expected = dequantized(ids)
    if fmt in ("q8", "q4"):
        # the same weights, but q8 / q4 products of up to 16 rows (10 here) quantize the
        # activations per block of 32 as well (weight_formats.md, llama.cpp's int8 x int8
        # dots): q8's rounding again, on the other operand
        atol = logit_tolerance("q8", expected)
    else:
        atol = 1e-4    # the same values; only the kernels' summation order differs
    np.testing.assert_allclose(expected, reference(ids), rtol=0, atol=atol)


def test_quantize_refuses(tmp_path):
    write(tmp_path / "src", LLAMA)
    quantize(tmp_path / "src", tmp_path / "q8", "q8")
    with pytest.raises(ValueError, match="already a fastattn q8 file"):
        quantize(tmp_path / "q8", tmp_path / "again", "q4")
    with pytest.raises(ValueError, match="weights must be one of"):
        quantize(tmp_path / "src", tmp_path / "x", "float32")
    with pytest.raises(ValueError, match="must differ"):
        quantize(tmp_path / "src", tmp_path / "src", "q8")


def test_quantize_cli(tmp_path, capsys):
    from fastattn.cli import main
    write(tmp_path / "src", GPT2)
    assert main(["quantize", str(tmp_path / "src"), str(tmp_path / "out"),
                 "--weights", "q4"]) == 0
    assert "q4" in capsys.readouterr().out
    assert formats_of(fastattn.load(tmp_path / "out")) == {"q4"}
    assert main(["quantize", str(tmp_path / "nowhere"), str(tmp_path / "o2"),
                 "--weights", "q8"]) == 2


def test_safetensors_writes_16_bit_patterns(tmp_path, rng):
    bits = rng.integers(0, 0x7F00, (3, 5)).astype(np.uint16)
    save_safetensors(tmp_path / "a.safetensors", {"b": bits, "h": bits}, codes={"b": "BF16",
                                                                              "h": "F16"})
    with SafetensorsFile(tmp_path / "a.safetensors") as f:
        assert (f.dtype("b"), f.dtype("h")) == ("BF16", "F16")
        np.testing.assert_array_equal(f.raw("b"), bits)
        np.testing.assert_array_equal(f.raw("h").view(np.uint16), bits)
    with pytest.raises(TypeError, match="must be uint16"):
        save_safetensors(tmp_path / "b.safetensors", {"b": bits.astype(np.int16)},
                         codes={"b": "BF16"})
    with pytest.raises(ValueError, match="must be 'BF16' or 'F16'"):
        save_safetensors(tmp_path / "b.safetensors", {"b": bits}, codes={"b": "F32"})


# --------------------------------------------------------------------------- memory
# The allowance beyond 10%: what a load allocates besides the weights: the interpreter's objects
# for the model (a few thousand), malloc's retained free lists after transient copies (a fused
# matrix is concatenated before packing: up to 2 x 1408 x 512 float32 = 5.5 MiB here), the
# kernel's fault-around (up to 64 KiB mapped per file fault) and the forward's activations.
ALLOWANCE = 12 << 20
# File pages still mapped after a load: only the edges of tensors read (fault-around maps up to
# 64 KiB around each fault) and a model's few pages touched in place; the 8 MiB BF16 (16 MiB
# F32) embedding, read once to convert or left unread, must not be among them.
FILE_ALLOWANCE = 4 << 20
MEMORY_MODEL = dict(LLAMA, hidden_size=512, intermediate_size=1408, num_attention_heads=8,
                    num_key_value_heads=2, vocab_size=8000, num_hidden_layers=3)


@pytest.mark.parametrize("fmt,dtype,mmap", [(f, "F32", True) for f in FORMATS] + [
    ("as-stored", "BF16", True), ("as-stored", "BF16", False), ("float32", "F32", False)])
def test_resident_memory_is_the_formats_bytes(tmp_path, fmt, dtype, mmap):
    """RSS growth of a load (and after a forward) within 10% of the bytes the model holds in
    its format + ALLOWANCE: the mapped checkpoint pages that packing read are given back; with
    mmap=False the file's buffer is freed after the load (the model copied what it keeps)."""
    tensors = random_checkpoint(MEMORY_MODEL, seed=0)
    save_checkpoint(tmp_path, MEMORY_MODEL, tensors, dtype=dtype)
    file_bytes = sum(a.nbytes for a in tensors.values()) // (2 if dtype == "BF16" else 1)
    del tensors
    m = load_memory(tmp_path, fmt, mmap)
    assert m["held"] > 0.15 * file_bytes           # (a model was measured: q4 holds ~22%)
    for when in ("load", "forward"):
        assert m[when]["VmRSS"] <= 1.10 * m["held"] + ALLOWANCE, (when, m)
    # the file pages read for copies were released, those used in place not read yet
    assert m["load"]["RssFile"] <= FILE_ALLOWANCE, m


# --------------------------------------------------------------------------- accuracy
def logit_tolerance(fmt: str, reference: np.ndarray) -> float:
    return SIGMAS * math.sqrt(SERIES) * RHO[fmt] * float(np.sqrt(np.mean(reference**2)))


@pytest.mark.parametrize("config", [LLAMA, GPT2], ids=["llama", "gpt2"])
def test_accuracy_against_float32(tmp_path, config):
    """max |logit difference| within the derived tolerance, and the greedy continuation's
    top-1 agrees wherever float32's margin exceeds twice the largest logit difference (there
    no perturbation that small can flip it)."""
    write(tmp_path, config)
    reference = fastattn.load(tmp_path, weights="float32")
    prompt = np.arange(8)[None] % config["vocab_size"]
    tokens = reference.generate(prompt, 24, eos_token_id=None)
    seq = np.concatenate([prompt, tokens], axis=1) if tokens.shape[1] == 24 else tokens
    expected = reference(seq)[0]
    top2 = np.sort(expected, axis=-1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    for fmt in LOW:
        logits = fastattn.load(tmp_path, weights=fmt)(seq)[0]
        diff = float(np.abs(logits - expected).max())
        assert 0 < diff <= logit_tolerance(fmt, expected), (fmt, diff)
        flips = np.argmax(logits, -1) != np.argmax(expected, -1)
        assert not np.any(flips & (margin > 2 * diff)), fmt


def test_bert_embeddings_cosine(tmp_path):
    """Mean-pooled sentence embeddings of a random BERT (the MiniLM checkpoint is not
    available offline): 1 - cos(a, a + e) <= |e|^2 / (2 |a|^2) for the relative error |e|/|a|
    bounded as the logits' (SERIES matmuls, SIGMAS)."""
    write(tmp_path, BERT)
    ids = np.arange(3, 23).reshape(2, 10) % BERT["vocab_size"]
    mask = np.ones_like(ids)

    def embed(model):
        return model(ids, mask).mean(axis=1)     # (B, hidden)
    a = embed(fastattn.load(tmp_path, weights="float32"))
    for fmt in LOW:
        b = embed(fastattn.load(tmp_path, weights=fmt))
        cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        relative = SIGMAS * math.sqrt(SERIES) * RHO[fmt]
        assert np.all(1 - cos <= relative**2 / 2), (fmt, cos)


VIT = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "hidden_size": 32,
       "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
       "hidden_act": "gelu", "layer_norm_eps": 1e-12, "image_size": 32, "patch_size": 8,
       "num_channels": 3, "qkv_bias": True, "id2label": {str(i): str(i) for i in range(5)}}


@pytest.mark.parametrize("fmt", LOW)
def test_encoders_load_every_format(tmp_path, fmt):
    """BERT (with a classifier head: pooler and head converted too) and ViT (with its
    classifier); outputs within the derived tolerance of float32's."""
    from fastattn.testing import write_encoder_checkpoint
    write_encoder_checkpoint(tmp_path / "bert", "bert", "sequence_classification",
                             tokenizer=False, num_labels=3)
    write(tmp_path / "vit", VIT)
    ids = np.arange(3, 15)[None]
    pixels = np.random.default_rng(0).standard_normal((1, 3, 32, 32), dtype=np.float32)
    for name, run in (("bert", lambda m: m(ids).logits), ("vit", lambda m: m(pixels).logits)):
        model = fastattn.load(tmp_path / name, weights=fmt)
        assert formats_of(model) == {fmt}
        expected = run(fastattn.load(tmp_path / name, weights="float32"))
        scale = float(np.abs(expected).max())
        # a classifier output after SERIES matmuls at most (2 layers x 4 + pooler + head)
        assert np.abs(run(model) - expected).max() <= SIGMAS * math.sqrt(SERIES + 2) * RHO[
            fmt] * max(scale, 1.0), name


def test_quantize_shards_and_renamed_encoders(tmp_path, monkeypatch):
    """A large output is sharded with an index (SHARD_BYTES lowered to see it on a tiny
    model); a RoBERTa masked-LM checkpoint (names renamed by the BERT builder) keeps its
    matrices under their own names and its tied MLM decoder float32."""
    import fastattn.quantize as q
    from fastattn.testing import write_encoder_checkpoint
    write_encoder_checkpoint(tmp_path / "src", "roberta", "masked_lm", tokenizer=False)
    monkeypatch.setattr(q, "SHARD_BYTES", 8 << 10)
    summary = quantize(tmp_path / "src", tmp_path / "out", "q8")
    assert (tmp_path / "out" / "model.safetensors.index.json").exists()
    assert not (tmp_path / "out" / "model.safetensors").exists()
    with fastattn.Checkpoint(tmp_path / "out") as c:
        scaled = sorted(n[:-len(".scales")] for n in c.keys() if n.endswith(".scales"))
    assert len(scaled) == summary["matrices"] and all(n.endswith(".weight") for n in scaled)
    model, reference = fastattn.load(tmp_path / "out"), fastattn.load(tmp_path / "src",
                                                                      weights="q8")
    assert formats_of(model) == {"q8"}
    ids = np.arange(3, 15)[None]
    np.testing.assert_array_equal(model.mlm_logits(model(ids)),
                                  reference.mlm_logits(reference(ids)))


@pytest.mark.parametrize("fmt", ["q8", "bfloat16"])
def test_sam_image_encoder_formats(tmp_path, fmt):
    """SAM converts its image encoder's block matrices (the official single file too); the
    image embeddings within the derived tolerance of float32's; no quantized file for SAM."""
    from fastattn.testing import write_sam_checkpoint
    official = write_sam_checkpoint(tmp_path / "sam.safetensors", official_names=True)
    model = fastattn.load(official, weights=fmt)
    assert formats_of(model.image_encoder.blocks) == {fmt}
    assert formats_of(model.mask_decoder) == {"float32"}
    pixels = np.random.default_rng(0).standard_normal((1, 3, 128, 128), dtype=np.float32)
    expected = fastattn.load(official).get_image_embeddings(pixels)
    got = model.get_image_embeddings(pixels)
    # blocks x (qkv, proj, 2 MLP) matmuls in series, then the float32 neck
    series = 4 * len(model.image_encoder.blocks)
    rms = float(np.sqrt(np.mean(expected**2)))
    assert 0 < np.abs(got - expected).max() <= SIGMAS * math.sqrt(series) * RHO[fmt] * rms
    directory = write_sam_checkpoint(tmp_path / "hf")
    with pytest.raises(ValueError, match="'sam' models have no quantized file format"):
        quantize(directory, tmp_path / "q", "q8")
