"""ResNet (model_type "resnet"): config parsing, the checkpoint schema against transformers'
names, BatchNorm folding, random tiny checkpoints (bottleneck and basic blocks, both downsample
flags, with and without the classifier) against the float64 reference forward
(fastattn.reference.models.resnet, BatchNorm unfolded), hidden states, thread invariance,
transformers' ResNetForImageClassification (when installed) and bad input.

Tolerances. The model runs in float32 with BatchNorm folded; the reference in float64 with
BatchNorm as its formula, on the same (float32-valued) weights. The tiny models are scaled so
that every stage is O(1): convolution weights N(0, 2 / fan_in) (He), BatchNorm gamma 1 +/- 0.2,
beta and running_mean N(0, 0.1^2), running_var exp(N(0, 0.2^2)). A float32 convolution output
is a dot product of K <= 147 terms (the 7x7x3 stem; 3x3x16 inside): its rounding error is
about sqrt(K) u = 12 * 6e-8 = 7e-7 of the output's scale (u = 2^-24); folding adds half an ulp
per weight (u/2 relative, see test_fold_batch_norm_*). The longest path of the deepest test
model has 13 convolutions, each passing the error it receives on with a gain ~1 (He weights,
BatchNorm, relu) and adding its own: 13 * 7e-7 ~ 1e-5 of the activations' scale. REL = 2e-5
(x2 margin) relative to the largest magnitude of the compared array (measured: 2e-7 to
7e-7; the same reference run in float32, BatchNorm unfolded: 1e-7 to 6e-7).
Against transformers (float32 too, other summation orders) the two errors add: 2 * REL.
"""
import dataclasses
import json
import types

import numpy as np
import pytest

import fastattn
from fastattn import save_checkpoint
from fastattn.models.resnet import (ResNetConfig, ResNetModel, ResNetOutput, fold_batch_norm,
                                    resnet_blocks, resnet_tensor_shapes)
from fastattn.io.json_fields import config_dict
from fastattn.reference import models as ref
from fastattn.reference.models.resnet import conv_bn
from fastattn.testing import random_checkpoint

from conftest import assert_classify_matches_logits, assert_thread_invariant

REL = 2e-5
U = 2.0 ** -24   # float32 unit roundoff

BOTTLENECK = dict(embedding_size=8, hidden_sizes=[16, 24, 32], depths=[2, 1, 2])
BASIC = dict(layer_type="basic", embedding_size=8, hidden_sizes=[8, 16, 24], depths=[2, 1, 1])

# name -> (config entries, schema prefix): bottleneck and basic blocks, both downsample flags,
# a basic stage that keeps the width (identity shortcuts only), ResNetModel's names
CASES = {
    "bottleneck": (BOTTLENECK, "resnet."),
    "bottleneck_downsample_flags": (dict(BOTTLENECK, downsample_in_first_stage=True,
                                         downsample_in_bottleneck=True), "resnet."),
    "basic": (BASIC, "resnet."),
    "basic_downsample_first": (dict(BASIC, downsample_in_first_stage=True), "resnet."),
    "no_classifier": (dict(BOTTLENECK, depths=[1, 1, 1]), ""),
}
LABELS = 7


def resnet_config(**entries):
    """A Hugging Face style config.json dict (3 channels, 7 labels)."""
    return {"model_type": "resnet", "architectures": ["ResNetForImageClassification"],
            "num_channels": 3, "hidden_act": "relu",
            "id2label": {str(i): f"class {i}" for i in range(LABELS)},
            "label2id": {f"class {i}": i for i in range(LABELS)}, **entries}


def he_std(name, shape):
    """N(0, 2 / fan_in) for convolutions (He), N(0, 1 / fan_in) for the classifier."""
    fan_in = int(np.prod(shape[1:]))
    return (2.0 / fan_in) ** 0.5 if len(shape) == 4 else fan_in ** -0.5


def resnet_tensors(config, seed=0, prefix="resnet."):
    return random_checkpoint(config, seed, prefix=prefix, std=he_std, bias_std=0.1,
                             gain_std=0.2)


def as64(tensors):
    return {k: v.astype(np.float64) for k, v in tensors.items()}


def assert_close(actual, expected, rel=REL):
    """|actual - expected| <= rel * max|expected| (see the module docstring)."""
    assert actual.shape == expected.shape and actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0,
                               atol=rel * float(np.max(np.abs(expected))))


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
    entries, prefix = CASES[request.param]
    config = resnet_config(**entries)
    tensors = resnet_tensors(config, prefix=prefix)
    directory = tmp_path_factory.mktemp(request.param)
    save_checkpoint(directory, config, tensors)
    model = fastattn.load(directory)
    assert isinstance(model, ResNetModel)
    return types.SimpleNamespace(name=request.param, config=config, model=model,
                                 cfg=ResNetConfig.from_dict(config), w64=as64(tensors),
                                 tensors=tensors, prefix=prefix)


# ------------------------------------------------------------------------------- config
def test_config_defaults_are_resnet50():
    c = fastattn.load_config({"model_type": "resnet"})
    assert isinstance(c, ResNetConfig)
    assert (c.num_channels, c.embedding_size, c.hidden_sizes, c.depths) == (
        3, 64, (256, 512, 1024, 2048), (3, 4, 6, 3))
    assert (c.layer_type, c.hidden_act, c.downsample_in_first_stage,
            c.downsample_in_bottleneck) == ("bottleneck", "relu", False, False)
    assert (c.image_size, c.id2label, c.pretrained_cfg, c.num_blocks) == (224, {}, None, 16)


def test_config_reads_id2label_and_keeps_the_rest():
    c = ResNetConfig.from_dict(resnet_config(**BASIC, image_size=96))
    assert c.id2label == {i: f"class {i}" for i in range(LABELS)}
    assert c.image_size == 96 and c.hidden_sizes == (8, 16, 24)
    assert "label2id" in c.extra and "architectures" in c.extra
    # a config's own dict (tuples, int keys) parses to the same config
    assert ResNetConfig.from_dict(config_dict(c)) == c


@pytest.mark.parametrize("entries,message", [
    (dict(depths=[1, 1], hidden_sizes=[8]), "one depth and one width per stage"),
    (dict(depths=[], hidden_sizes=[]), "'hidden_sizes' must not be empty"),
    (dict(depths=[1, 0], hidden_sizes=[8, 8]), r"'depths\[1\]' must be >= 1"),
    (dict(hidden_sizes=[8, "16"], depths=[1, 1]), r"'hidden_sizes\[1\]' must be an integer"),
    (dict(layer_type="preact"), "'layer_type' must be one of basic, bottleneck"),
    (dict(hidden_sizes=[2, 8], depths=[1, 1]), "must be >= 4 for bottleneck"),
    (dict(hidden_act="tanh"), "unsupported activation 'tanh'"),
    (dict(id2label={"cat": "a cat"}), "'id2label' keys must be class indices"),
    (dict(id2label={"0": 3}), r"'id2label\[0\]' must be a string"),
    (dict(num_channels=0), "'num_channels' must be >= 1"),
    (dict(downsample_in_bottleneck="yes"), "must be true or false"),
])
def test_config_errors(entries, message):
    with pytest.raises(ValueError, match=message):
        ResNetConfig.from_dict({"model_type": "resnet", **entries})


# ------------------------------------------------------------------------------- schema
@pytest.mark.parametrize("name", sorted(CASES))
def test_schema_is_transformers_state_dict(name):
    """Names, shapes and order of transformers' state dict (less num_batches_tracked)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    entries, prefix = CASES[name]
    cls = (transformers.ResNetForImageClassification if prefix
           else transformers.ResNetModel)
    with torch.device("meta"):
        hf = cls(transformers.ResNetConfig(**entries, num_labels=LABELS))
    expected = [(k, tuple(v.shape)) for k, v in hf.state_dict().items()
                if not k.endswith("num_batches_tracked")]
    assert list(resnet_tensor_shapes(resnet_config(**entries), prefix=prefix).items()) == expected


def test_block_plan_strides_and_shortcuts():
    c = ResNetConfig.from_dict(resnet_config(**BOTTLENECK))
    blocks = resnet_blocks(c)
    assert [(b.stage, b.index) for b in blocks] == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]
    first = blocks[0]   # 8 -> 16 channels, stage 0 keeps the resolution
    assert [s.stride for s in first.convs] == [1, 1, 1] and first.shortcut.stride == 1
    assert [(s.kernel, s.padding) for s in first.convs] == [(1, 0), (3, 1), (1, 0)]
    assert blocks[1].shortcut is None    # same width, stride 1: identity
    assert [s.stride for s in blocks[2].convs] == [1, 2, 1]      # v1.5: stride on the 3x3
    assert blocks[2].convs[0].out_channels == 24 // 4
    flags = resnet_blocks(dataclasses.replace(c, downsample_in_bottleneck=True,
                                              downsample_in_first_stage=True))
    assert [s.stride for s in flags[0].convs] == [2, 1, 1] and flags[0].shortcut.stride == 2
    with pytest.raises(ValueError, match="num_labels >= 1"):
        resnet_tensor_shapes({"model_type": "resnet"}, prefix="resnet.")


def test_random_checkpoint_batch_norm_statistics_are_valid(rng):
    """running_var > 0 even with large gains (a variance is positive), means like biases."""
    tensors = random_checkpoint(resnet_config(**BASIC), rng, prefix="resnet.", gain_std=3.0)
    variances = [v for k, v in tensors.items() if k.endswith("running_var")]
    assert variances and all((v > 0).all() for v in variances)
    assert all(not v.any() for k, v in tensors.items() if k.endswith("running_mean"))


# ------------------------------------------------------------------------------ folding
def test_fold_batch_norm_is_rounded_once(rng):
    """w' = w gamma / sqrt(var + eps) and b' = beta - mean gamma / sqrt(var + eps) computed in
    float64 and rounded once: each within half an ulp (u relative, u = 2^-24) of the exact
    value (float32 arithmetic would round three times: up to ~2u)."""
    out, cin = 64, 32
    w = rng.standard_normal((out, cin, 3, 3)).astype(np.float32)
    gamma, beta, mean = (rng.standard_normal(out).astype(np.float32) for _ in range(3))
    var = rng.exponential(1.0, out).astype(np.float32)
    wf, bf = fold_batch_norm(w, gamma, beta, mean, var)
    assert wf.dtype == bf.dtype == np.float32 and wf.shape == w.shape and bf.shape == (out,)
    s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + 1e-5)
    exact_w = w * s[:, None, None, None]
    exact_b = beta - mean * s
    # u relative: half an ulp of float32 (2^-24 relative at most) plus float64's own rounding
    assert np.all(np.abs(wf - exact_w) <= U * np.abs(exact_w) * (1 + 1e-9))
    assert np.all(np.abs(bf - exact_b) <= U * np.abs(exact_b) * (1 + 1e-9) + 1e-300)


def test_folded_convolution_equals_conv_then_batch_norm(rng):
    """conv(x, w') + b' = BN(conv(x, w)) up to the rounding of w' and b' (u relative each):
    |diff| <= u (sum |w' x| + |b'|), computed in float64."""
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    gamma, beta, mean = (rng.standard_normal(6).astype(np.float32) for _ in range(3))
    var = rng.exponential(1.0, 6).astype(np.float32)
    x = rng.standard_normal((2, 4, 9, 7))
    wf, bf = fold_batch_norm(w, gamma, beta, mean, var)
    names = {"c.convolution.weight": w, "c.normalization.weight": gamma,
             "c.normalization.bias": beta, "c.normalization.running_mean": mean,
             "c.normalization.running_var": var}
    bn = conv_bn(x, as64(names), "c", 1, 1)
    folded = fastattn.reference.conv2d(x, wf.astype(np.float64), bf.astype(np.float64),
                                       padding=1)
    bound = U * (fastattn.reference.conv2d(np.abs(x), np.abs(wf).astype(np.float64),
                                           padding=1) + np.abs(bf)[:, None, None])
    assert np.all(np.abs(folded - bn) <= 2 * bound)   # 2: float64's own sums, far below


# ------------------------------------------------------------------------------ forward
def test_forward_matches_reference(case, rng, isa):
    x = rng.standard_normal((2, 3, 37, 29)).astype(np.float32)   # odd, non-square
    out = case.model(x, output_hidden_states=True)
    expected = ref.resnet(case.w64, case.cfg, x.astype(np.float64))
    assert isinstance(out, ResNetOutput)
    if case.prefix:
        assert out.logits.shape == (2, LABELS)
        assert_close(out.logits, expected["logits"])
    else:
        assert out.logits is None and expected["logits"] is None
    assert_close(out.last_hidden_state, expected["last_hidden_state"])
    assert_close(out.pooler_output, expected["pooler_output"])
    assert len(out.hidden_states) == len(case.cfg.depths) + 1
    for got, want in zip(out.hidden_states, expected["hidden_states"]):
        assert_close(got, want)


def test_outputs_and_hidden_state_shapes(case, rng):
    x = rng.standard_normal((1, 3, 64, 48)).astype(np.float32)
    out = case.model(x, output_hidden_states=True)
    c = case.cfg
    # stem /4; stage 0 /2 more only with downsample_in_first_stage; each later stage /2
    sizes, (h, w) = [], (16, 12)
    widths = [c.embedding_size, *c.hidden_sizes]
    for s, width in enumerate(widths):
        if s == 1 and c.downsample_in_first_stage or s > 1:
            h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((1, width, h, w))
    assert [a.shape for a in out.hidden_states] == sizes
    assert out.last_hidden_state is out.hidden_states[-1]
    assert out.pooler_output.shape == (1, widths[-1], 1, 1)
    np.testing.assert_allclose(out.pooler_output[..., 0, 0],
                               out.last_hidden_state.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    assert out["pooler_output"] is out.pooler_output and out.attentions is None
    plain = case.model(x)
    assert plain.hidden_states is None
    np.testing.assert_array_equal(plain.last_hidden_state, out.last_hidden_state)
    with pytest.raises(KeyError):
        out["nope"]


def test_any_image_size_and_batch_rows_independent(case, rng):
    """Fully convolutional: a 1x1 image runs; each image's result does not depend on the
    others in the batch."""
    tiny = case.model(rng.standard_normal((1, 3, 1, 1)).astype(np.float32))
    assert tiny.last_hidden_state.shape[2:] == (1, 1)
    x = rng.standard_normal((3, 3, 33, 40)).astype(np.float32)
    batch = case.model(x).pooler_output
    for i in range(3):
        np.testing.assert_allclose(case.model(x[i:i + 1]).pooler_output, batch[i:i + 1],
                                   rtol=0, atol=REL * float(np.abs(batch).max()))


def test_thread_invariant(case, rng):
    x = rng.standard_normal((2, 3, 40, 40)).astype(np.float32)
    assert_thread_invariant(lambda: case.model(x).last_hidden_state)


# ------------------------------------------------------------------------- transformers
@pytest.mark.parametrize("name", sorted(CASES))
def test_equals_transformers(name, tmp_path, rng):
    """transformers' ResNetForImageClassification / ResNetModel in eval mode (BatchNorm uses
    the random running statistics) holding the same random weights, saved with
    save_pretrained (num_batches_tracked included) and loaded with fastattn.load."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    entries, prefix = CASES[name]
    cls = (transformers.ResNetForImageClassification if prefix
           else transformers.ResNetModel)
    hf = cls(transformers.ResNetConfig(**entries, num_labels=LABELS)).eval()
    tensors = resnet_tensors(resnet_config(**entries), seed=3, prefix=prefix)
    missing, unexpected = hf.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()},
                                             strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    hf.save_pretrained(tmp_path)
    model = fastattn.load(tmp_path)
    x = rng.standard_normal((2, 3, 45, 38)).astype(np.float32)
    with torch.inference_mode():
        expected = hf(torch.from_numpy(x), output_hidden_states=True)
    out = model(x, output_hidden_states=True)
    if prefix:
        assert_close(out.logits, expected.logits.numpy(), 2 * REL)
    else:
        assert_close(out.pooler_output, expected.pooler_output.numpy(), 2 * REL)
        assert_close(out.last_hidden_state, expected.last_hidden_state.numpy(), 2 * REL)
    hidden = expected.hidden_states
    assert len(out.hidden_states) == len(hidden)
    for got, want in zip(out.hidden_states, hidden):
        assert_close(got, want.numpy(), 2 * REL)
    assert model.config.id2label == {i: f"LABEL_{i}" for i in range(LABELS)}


# ------------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def small():
    config = resnet_config(**dict(BASIC, depths=[1, 1, 1]))
    tensors = resnet_tensors(config)
    return config, tensors, ResNetModel.from_weights(config, tensors)


@pytest.mark.parametrize("x,kind,message", [
    (np.zeros((1, 3, 8, 8), np.float64), TypeError, "must be a numpy.ndarray of float32"),
    (np.zeros((1, 3, 8, 8), np.int32), TypeError, "got int32"),
    ([[[[0.0]]]], TypeError, "got list"),
    (np.zeros((3, 8, 8), np.float32), ValueError, r"must be 4-D \(B, C, H, W\), got shape"),
    (np.zeros((1, 1, 8, 8), np.float32), ValueError, "has 1 channels.*expected num_channels 3"),
    (np.zeros((1, 3, 0, 8), np.float32), ValueError, "image is empty"),
])
def test_bad_pixel_values(small, x, kind, message):
    with pytest.raises(kind, match=message):
        small[2](x)


def test_output_attentions_gives_none(small, rng):
    """Accepted and ignored, as transformers' ResNet does: a CNN has no attention (the
    vision pipelines see attentions None and say so)."""
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    out = small[2](x, output_attentions=True)
    assert out.attentions is None
    np.testing.assert_array_equal(out.logits, small[2](x).logits)


def test_bad_checkpoints(small):
    config, tensors, _ = small
    var = "resnet.encoder.stages.1.layers.0.layer.0.normalization.running_var"
    bad = dict(tensors)
    bad[var] = -tensors[var]
    with pytest.raises(ValueError, match="running_var has negative or NaN"):
        ResNetModel.from_weights(config, bad)
    bad[var] = np.full_like(tensors[var], np.nan)
    with pytest.raises(ValueError, match="running_var has negative or NaN"):
        ResNetModel.from_weights(config, bad)
    with pytest.raises(ValueError, match="has 7 rows but config.json's id2label 3 labels"):
        ResNetModel.from_weights(dict(config, id2label={"0": "a", "1": "b", "2": "c"}), tensors)
    bad = {k: v for k, v in tensors.items() if "shortcut" not in k}
    with pytest.raises(ValueError, match="missing tensor 'resnet.encoder.stages.1.layers.0."
                                         "shortcut.convolution.weight'"):
        ResNetModel.from_weights(config, bad)
    with pytest.raises(ValueError, match="unexpected tensor"):
        ResNetModel.from_weights(config, dict(tensors, **{"resnet.extra.weight": tensors[var]}))
    # a config with the wrong width: the shape check names the tensor
    with pytest.raises(ValueError, match="embedder.embedder.convolution.weight' has shape"):
        ResNetModel.from_weights(dict(config, embedding_size=4), tensors)
    # num_batches_tracked (int64 counters transformers saves) are ignored
    counters = {k.replace("running_var", "num_batches_tracked"): np.zeros((), np.int64)
                for k in tensors if k.endswith("running_var")}
    ResNetModel.from_weights(config, dict(tensors, **counters))


def test_load_refuses_more_blocks_than_tensors(tmp_path, small):
    config, tensors, _ = small
    save_checkpoint(tmp_path, dict(config, depths=[1, 1, 10**6]), tensors)
    with pytest.raises(ValueError, match="num_blocks is 1000002"):
        fastattn.load(tmp_path)


def test_config_json_round_trip(tmp_path, small):
    """A loaded model's config saved again loads to the same config (id2label's int keys
    become JSON strings and back)."""
    config, tensors, model = small
    save_checkpoint(tmp_path, model.config, tensors)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw["id2label"]["3"] == "class 3"
    assert fastattn.load(tmp_path).config == model.config


# ------------------------------------------------------------------------------ classify
def test_classify_delegates_to_the_pipeline(small, rng):
    assert_classify_matches_logits(small[2], rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
