"""Vision Transformer: random tiny checkpoints in both layouts (Hugging Face, timm) against the
float64 NumPy reference forward (fastattn.reference.models.vit), the timm layout against the
Hugging Face one on the same weights, DeiT's distillation token, interpolated position
embeddings, attention probabilities and hidden states, bad input, timm config parsing, and
Hugging Face transformers (when installed) on the same weights.

Models go the user's way where it matters: save_checkpoint(dir, config, tensors) +
fastattn.load(dir); variants build from in-memory tensors with ViTModel.from_weights.

Tolerances. The model runs in float32, the reference in float64 on the same (float32-valued)
weights. Weights are N(0, 1/fan_in) (the patch projection's fan-in is C * p * p), [CLS] and
the positions N(0, 1), LayerNorm gains 1 +/- 0.1, biases 0.1, pixels N(0, 1): every stage is
O(1). Each stage (patch matmul over K = 192, q/k/v, scores, softmax, P V, output projection,
LayerNorm, GELU matmul, output projection) rounds a handful of times; a float32 dot product of
length K <= 192 is off by about sqrt(K) u |terms| with u = 2^-24 = 6e-8 and |terms| <= ~3:
~2.5e-6 per stage. Pre-norm blocks add each sublayer to the residual stream, so errors add up
over the 2 layers' 4 sublayers and the final LayerNorm (x 1/std ~ 1): below HIDDEN_ATOL = 4e-5
(measured ~2e-6). Logits are one more O(1) dot product of length 32 of those: LOGIT_ATOL =
4e-5. Attention probabilities are softmaxes of O(1) scores: an error d in a score changes p by
at most p d, PROB_ATOL = 1e-5. transformers computes in float32 too: its error and ours add,
so the comparisons with it use twice those.
"""
import numpy as np
import pytest

import fastattn
from fastattn import save_checkpoint
from fastattn.io.json_fields import config_dict
from fastattn.models.vit import ViTConfig, ViTModel, ViTOutput, vit_tensor_shapes
from fastattn.reference import models as ref
from fastattn.testing import random_checkpoint

from conftest import assert_classify_matches_logits, assert_thread_invariant

HIDDEN_ATOL = 4e-5
LOGIT_ATOL = 4e-5
PROB_ATOL = 1e-5

HIDDEN, LAYERS, HEADS, INTER, IMAGE, PATCH, LABELS = 32, 2, 4, 64, 32, 8, 5


def vit_config(model_type="vit", eps=1e-12, image=IMAGE, patch=PATCH, labels=LABELS, **extra):
    """A Hugging Face style config.json dict (ViTForImageClassification's)."""
    return {"model_type": model_type, "architectures": ["ViTForImageClassification"],
            "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "intermediate_size": INTER, "hidden_act": "gelu", "layer_norm_eps": eps,
            "image_size": image, "patch_size": patch, "num_channels": 3, "qkv_bias": True,
            "id2label": {str(i): f"class {i}" for i in range(labels)}, **extra}


def _std(name, shape):
    # tokens and positions (1, T, D): N(0, 1); matrices N(0, 1/fan_in), fan_in = C * p * p
    # for the patch projection (D, C, p, p)
    return 1.0 if len(shape) == 3 else float(np.prod(shape[1:])) ** -0.5


def vit_tensors(config, seed=0, **schema_options):
    """Random float32 tensors with the checkpoint's names, every stage O(1) (see the module
    docstring)."""
    return random_checkpoint(config, seed, std=_std, bias_std=0.1, gain_std=0.1,
                             **schema_options)


def to_timm(t, layers=LAYERS):
    """The same weights under timm's names (q, k, v fused into qkv, rows [q; k; v])."""
    p = next((x for x in ("vit.", "deit.") if any(k.startswith(x) for k in t)), "")
    e = p + "embeddings."
    out = {"cls_token": t[e + "cls_token"], "pos_embed": t[e + "position_embeddings"],
           "patch_embed.proj.weight": t[e + "patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": t[e + "patch_embeddings.projection.bias"],
           "norm.weight": t[p + "layernorm.weight"], "norm.bias": t[p + "layernorm.bias"]}
    if e + "distillation_token" in t:
        out["dist_token"] = t[e + "distillation_token"]
    for i in range(layers):
        h, b = f"{p}encoder.layer.{i}.", f"blocks.{i}."
        for kind in ("weight", "bias"):
            out[b + "attn.qkv." + kind] = np.concatenate(
                [t[h + f"attention.attention.{n}.{kind}"] for n in ("query", "key", "value")])
            for hf, timm in (("attention.output.dense", "attn.proj"),
                             ("layernorm_before", "norm1"), ("layernorm_after", "norm2"),
                             ("intermediate.dense", "mlp.fc1"), ("output.dense", "mlp.fc2")):
                out[b + timm + "." + kind] = t[h + hf + "." + kind]
    for hf, timm in (("classifier", "head"), ("cls_classifier", "head"),
                     ("distillation_classifier", "head_dist")):
        for kind in ("weight", "bias"):
            if f"{hf}.{kind}" in t:
                out[f"{timm}.{kind}"] = t[f"{hf}.{kind}"]
    return out


def timm_config(architecture="vit_tiny_patch16_224", labels=LABELS, image=IMAGE, **args):
    """A timm config.json dict for the tiny test sizes (model_args override the name's)."""
    return {"architecture": architecture, "num_classes": labels, "num_features": HIDDEN,
            "global_pool": "token",
            "model_args": {"embed_dim": HIDDEN, "depth": LAYERS, "num_heads": HEADS,
                           "mlp_ratio": INTER / HIDDEN, "patch_size": PATCH, "img_size": image,
                           **args},
            "pretrained_cfg": {"input_size": [3, image, image], "interpolation": "bicubic",
                               "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                               "crop_pct": 0.9, "num_classes": labels, "classifier": "head"},
            "label_names": [f"class {i}" for i in range(labels)]}


def as64(tensors):
    return {k: v.astype(np.float64) for k, v in tensors.items()}


def load_model(directory, config, tensors):
    save_checkpoint(directory, config, tensors)
    model = fastattn.load(directory)
    assert isinstance(model, ViTModel)
    return model


def pixels(rng, batch=2, size=(IMAGE, IMAGE), channels=3):
    return rng.standard_normal((batch, channels, *size), dtype=np.float32)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    config = vit_config()
    tensors = vit_tensors(config)
    model = load_model(tmp_path_factory.mktemp("vit"), config, tensors)
    return model, ViTConfig.from_dict(config), tensors, as64(tensors)


# ----------------------------------------------------------------------------- forward
def test_forward_matches_reference(small, rng, isa):
    model, cfg, _, w64 = small
    x = pixels(rng, 3)
    out = model(x)
    logits, z = ref.vit(w64, cfg, x.astype(np.float64))
    assert isinstance(out, ViTOutput)
    assert out.logits.dtype == np.float32 and out.logits.shape == (3, LABELS)
    assert out.last_hidden_state.shape == (3, 1 + (IMAGE // PATCH) ** 2, HIDDEN)
    np.testing.assert_allclose(out.last_hidden_state, z, rtol=0, atol=HIDDEN_ATOL)
    np.testing.assert_allclose(out.logits, logits, rtol=0, atol=LOGIT_ATOL)
    assert out.pooler_output is None and out.hidden_states is None and out.attentions is None
    assert out["logits"] is out.logits
    with pytest.raises(KeyError):
        out["loss"]


def test_config_and_images_are_independent(small, rng):
    model, cfg, _, _ = small
    assert model.config.model_type == "vit" and model.config.id2label[4] == "class 4"
    assert model.config.num_prefix_tokens == 1 and model.config.pretrained_cfg is None
    assert model.config.image_size == IMAGE and model.config.patch_size == PATCH
    x = pixels(rng, 3)
    batched = model(x).logits
    for i in range(3):   # float32 rounding only (another row count blocks the matmuls alike)
        np.testing.assert_allclose(model(x[i:i + 1]).logits[0], batched[i], atol=1e-6)


def test_attentions_and_hidden_states(small, rng):
    model, cfg, _, w64 = small
    x = pixels(rng)
    out = model(x, output_attentions=True, output_hidden_states=True)
    _, z, hidden, attentions, _ = ref.vit(w64, cfg, x.astype(np.float64), return_all=True)
    t = 1 + (IMAGE // PATCH) ** 2
    assert len(out.attentions) == LAYERS and len(out.hidden_states) == LAYERS + 1
    for a, e in zip(out.attentions, attentions):
        assert a.shape == (2, HEADS, t, t) and a.dtype == np.float32
        # each row is a distribution: a sum of t float32 terms <= 1, off by <= t u
        np.testing.assert_allclose(a.sum(-1), 1.0, rtol=0, atol=t * 2**-24 * 4)
        np.testing.assert_allclose(a, e, rtol=0, atol=PROB_ATOL)
    for h, e in zip(out.hidden_states, hidden):
        np.testing.assert_allclose(h, e, rtol=0, atol=HIDDEN_ATOL)
    # asking for them changes nothing else
    np.testing.assert_array_equal(out.logits, model(x).logits)


def test_thread_invariant(small, rng):
    model = small[0]
    x = pixels(rng, 2)
    assert_thread_invariant(lambda: model(x).logits)


def test_strided_input(small, rng):
    model = small[0]
    x = pixels(rng, 2, (2 * IMAGE, IMAGE))[:, ::-1, ::2, :]    # negative and step strides
    np.testing.assert_array_equal(model(x).logits, model(np.ascontiguousarray(x)).logits)


def test_vitmodel_layout_with_pooler(rng):
    config = vit_config()
    tensors = vit_tensors(config, 1, prefix="", pooler=True, classifier=False)
    assert "pooler.dense.weight" in tensors and "embeddings.cls_token" in tensors
    model = ViTModel.from_weights(config, tensors)
    x = pixels(rng)
    out = model(x)
    logits, z, _, _, pooled = ref.vit(as64(tensors), ViTConfig.from_dict(config),
                                      x.astype(np.float64), return_all=True)
    assert out.logits is None and logits is None
    np.testing.assert_allclose(out.last_hidden_state, z, atol=HIDDEN_ATOL)
    # tanh(W z0 + b): W's rows ~ 1/sqrt(32) over O(1) entries, tanh' <= 1
    np.testing.assert_allclose(out.pooler_output, pooled, atol=LOGIT_ATOL)


def test_no_qkv_bias(rng):
    config = vit_config(qkv_bias=False)
    tensors = vit_tensors(config, 2)
    assert "vit.encoder.layer.0.attention.attention.query.bias" not in tensors
    model = ViTModel.from_weights(config, tensors)
    x = pixels(rng)
    logits, _ = ref.vit(as64(tensors), ViTConfig.from_dict(config), x.astype(np.float64))
    np.testing.assert_allclose(model(x).logits, logits, atol=LOGIT_ATOL)


def test_checkpoint_errors():
    config = vit_config()
    tensors = vit_tensors(config)
    bad = dict(tensors)
    del bad["vit.layernorm.weight"]
    with pytest.raises(ValueError, match="missing tensor 'vit.layernorm.weight'"):
        ViTModel.from_weights(config, bad)
    bad = dict(tensors, **{"vit.embeddings.position_embeddings": np.zeros((1, 5, HIDDEN))})
    with pytest.raises(ValueError, match="position_embeddings.*shape"):
        ViTModel.from_weights(config, bad)
    bad = dict(tensors, **{"vit.encoder.layer.9.output.dense.weight": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="unexpected tensor"):
        ViTModel.from_weights(config, bad)
    # ViTModel(use_mask_token=True)'s mask token is accepted and unused
    ViTModel.from_weights(config, dict(tensors, **{
        "vit.embeddings.mask_token": np.zeros((1, 1, HIDDEN), np.float32)}))


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("shape,match", [
    ((2, 1, IMAGE, IMAGE), "1 channels .* expects 3"),
    ((2, 4, IMAGE, IMAGE), "4 channels"),
    ((1, 3, PATCH - 1, IMAGE), "multiple of the patch size"),
    ((1, 3, IMAGE, IMAGE + 3), "multiple of the patch size"),
    ((3, IMAGE, IMAGE), r"\(batch, channels, height, width\)"),
    ((1, 1, 3, IMAGE, IMAGE), r"\(batch, channels, height, width\)"),
    ((0, 3, IMAGE, IMAGE), "no image"),
])
def test_bad_shapes(small, shape, match):
    with pytest.raises(ValueError, match=match):
        small[0](np.zeros(shape, np.float32))


def test_bad_types(small):
    model = small[0]
    with pytest.raises(TypeError, match="float32, got float64"):
        model(np.zeros((1, 3, IMAGE, IMAGE)))
    with pytest.raises(TypeError, match="float32, got uint8"):
        model(np.zeros((1, 3, IMAGE, IMAGE), np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        model([[[[0.0]]]])


def test_interpolate_false_refuses_other_sizes(small):
    with pytest.raises(ValueError, match="interpolate_pos_encoding is False"):
        small[0](np.zeros((1, 3, IMAGE + PATCH, IMAGE), np.float32),
                 interpolate_pos_encoding=False)
    # the trained size is fine
    small[0](np.zeros((1, 3, IMAGE, IMAGE), np.float32), interpolate_pos_encoding=False)
    with pytest.raises(TypeError, match="interpolate_pos_encoding must be None, True or False"):
        small[0](np.zeros((1, 3, IMAGE, IMAGE), np.float32), interpolate_pos_encoding="yes")


# ----------------------------------------------------------------------------- timm layout
def test_timm_layout_gives_the_same_logits(tmp_path, rng):
    # timm's LayerNorm eps is 1e-6: the Hugging Face twin uses the same
    config = vit_config(eps=1e-6)
    tensors = vit_tensors(config, 3)
    hf = load_model(tmp_path / "hf", config, tensors)
    tc = timm_config()
    timm = load_model(tmp_path / "timm", tc, to_timm(tensors))
    c = timm.config
    assert (c.layout, c.model_type, c.layer_norm_eps) == ("timm", "vit", 1e-6)
    assert c.id2label == hf.config.id2label and c.pretrained_cfg["crop_pct"] == 0.9
    x = pixels(rng, 3)
    # the same float32 operations on the same numbers: bit-identical
    a, b = hf(x, output_attentions=True), timm(x, output_attentions=True)
    np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(a.attentions[-1], b.attentions[-1])
    logits, _ = ref.vit(as64(tensors), ViTConfig.from_dict(config), x.astype(np.float64))
    np.testing.assert_allclose(b.logits, logits, atol=LOGIT_ATOL)


def test_timm_random_checkpoint_and_load_config(tmp_path):
    tc = timm_config(labels=0)
    tensors = vit_tensors(tc)
    assert "head.weight" not in tensors and "blocks.1.attn.qkv.weight" in tensors
    assert tensors["blocks.1.attn.qkv.weight"].shape == (3 * HIDDEN, HIDDEN)
    save_checkpoint(tmp_path, tc, tensors)
    assert isinstance(fastattn.load_config(tmp_path), ViTConfig)
    model = fastattn.load(tmp_path)
    out = model(np.zeros((1, 3, IMAGE, IMAGE), np.float32))
    assert out.logits is None and out.last_hidden_state.shape == (1, 17, HIDDEN)


def test_timm_config_from_architecture_name():
    c = ViTConfig.from_dict({"architecture": "vit_base_patch16_224", "num_classes": 1000,
                             "pretrained_cfg": {"input_size": [3, 224, 224]}})
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size,
            c.patch_size, c.image_size, c.layer_norm_eps, c.num_labels, c.id2label) == \
        (768, 12, 12, 3072, 16, 224, 1e-6, 1000, {})
    c = ViTConfig.from_dict({"architecture": "vit_small_patch32_384", "num_classes": 10})
    assert (c.hidden_size, c.num_attention_heads, c.patch_size, c.image_size) == (384, 6, 32, 384)
    c = ViTConfig.from_dict({"architecture": "deit_tiny_distilled_patch16_224"})
    assert (c.hidden_size, c.num_attention_heads, c.num_prefix_tokens) == (192, 3, 2)
    c = ViTConfig.from_dict({"architecture": "vit_large_patch16_384",
                             "pretrained_cfg": {"input_size": [3, 384, 320]}})
    assert (c.hidden_size, c.num_hidden_layers, c.image_size, c.grid) == \
        (1024, 24, (384, 320), (24, 20))
    # the round trip through to_dict (what random_checkpoint and save_checkpoint see)
    assert ViTConfig.from_dict(config_dict(c)) == c


@pytest.mark.parametrize("change,match", [
    ({"architecture": "vit_base_patch16_clip_224"}, "not a timm ViT this loader knows"),
    ({"architecture": "vit_base_patch16_224", "global_pool": "avg"}, "global_pool 'avg'"),
    ({"model_args": {"class_token": False}}, "class_token = False is not supported"),
    ({"model_args": {"reg_tokens": 4}}, "reg_tokens"),
    ({"model_args": {"init_values": 1e-5}}, "init_values"),
    ({"pretrained_cfg": {"input_size": [3, 224]}}, "input_size"),
    ({"label_names": ["a", "b"], "num_classes": 3}, "label_names must be 3 strings"),
    ({"model_args": {"embed_dim": 30, "num_heads": 4}}, "multiple of num_heads"),
])
def test_timm_config_errors(change, match):
    raw = {"architecture": "vit_tiny_patch16_224"} | change
    with pytest.raises(ValueError, match=match):
        ViTConfig.from_dict(raw)


@pytest.mark.parametrize("change,match", [
    ({"hidden_size": 30}, "multiple of num_attention_heads"),
    ({"hidden_act": "nope"}, "unsupported activation 'nope'"),
    ({"pooler_act": "relu"}, "pooler_act 'relu'"),
    ({"patch_size": 64}, "larger than image_size"),
    ({"image_size": [32, 0]}, "image_size"),
    ({"id2label": {"x": "a"}}, "id2label"),
    ({"num_labels": 3}, "num_labels \\(3\\) differs"),
    ({"model_type": "vit_mae"}, "model_type 'vit_mae'"),
])
def test_hf_config_errors(change, match):
    with pytest.raises(ValueError, match=match):
        ViTConfig.from_dict(vit_config() | change)


# --------------------------------------------------------------------------------- DeiT
@pytest.mark.parametrize("teacher", [True, False])
def test_deit_distillation_token(tmp_path, rng, teacher):
    config = vit_config(model_type="deit", eps=1e-6)
    tensors = vit_tensors(config, 4, distillation_head=teacher)
    assert "deit.embeddings.distillation_token" in tensors
    assert ("distillation_classifier.weight" in tensors) == teacher
    assert tensors["deit.embeddings.position_embeddings"].shape == (1, 18, HIDDEN)
    model = ViTModel.from_weights(config, tensors)
    assert model.config.num_prefix_tokens == 2
    x = pixels(rng)
    out = model(x, output_attentions=True)
    logits, z = ref.vit(as64(tensors), ViTConfig.from_dict(config), x.astype(np.float64))
    assert out.attentions[0].shape == (2, HEADS, 18, 18)
    np.testing.assert_allclose(out.logits, logits, atol=LOGIT_ATOL)
    if teacher:   # timm's distilled DeiT: head and head_dist, the same average
        tc = timm_config("deit_tiny_distilled_patch16_224")
        timm = load_model(tmp_path, tc, to_timm(tensors))
        assert timm.config.num_prefix_tokens == 2
        np.testing.assert_array_equal(timm(x).logits, out.logits)


# -------------------------------------------------------------------- position interpolation
@pytest.mark.parametrize("size", [(48, 48), (16, 40), (IMAGE, IMAGE + PATCH)])
def test_interpolated_positions_match_reference(small, rng, size):
    model, cfg, _, w64 = small
    x = pixels(rng, 2, size)
    out = model(x)
    logits, z = ref.vit(w64, cfg, x.astype(np.float64))
    assert z.shape[1] == 1 + (size[0] // PATCH) * (size[1] // PATCH)
    np.testing.assert_allclose(out.last_hidden_state, z, atol=HIDDEN_ATOL)
    np.testing.assert_allclose(out.logits, logits, atol=LOGIT_ATOL)
    np.testing.assert_array_equal(model(x, interpolate_pos_encoding=True).logits, out.logits)


@pytest.mark.parametrize("grid", [(6, 6), (2, 5), (9, 3)])
def test_position_embeddings_match_reference(small, grid, isa):
    model, cfg, _, w64 = small
    d = HIDDEN
    expected = ref.vit_position_embeddings(
        w64["vit.embeddings.position_embeddings"].reshape(-1, d), 1, cfg.grid, grid)
    got = model.position_embeddings(*grid)
    assert got.shape == (1 + grid[0] * grid[1], d) and got.dtype == np.float32
    # 16 bicubic taps of N(0, 1) values (|values| <= ~4) with sum |weights| <= 1.3: a float32
    # sum of 16 products is off by <= 16 u * 1.3 * 4 ~ 5e-6
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-6)
    np.testing.assert_array_equal(got[0], model.positions[0])   # [CLS]'s row is kept


def test_same_grid_keeps_positions(small):
    model = small[0]
    assert model.position_embeddings(IMAGE // PATCH, IMAGE // PATCH) is model.positions


# ------------------------------------------------------------------------- transformers
def _hf_from_dir(directory, cls_name, **kw):
    transformers = pytest.importorskip("transformers")
    return getattr(transformers, cls_name).from_pretrained(
        directory, attn_implementation="eager", **kw).eval()


@pytest.mark.parametrize("model_type,cls_name", [
    ("vit", "ViTForImageClassification"), ("deit", "DeiTForImageClassificationWithTeacher")])
def test_matches_transformers(tmp_path, rng, model_type, cls_name):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    config = vit_config(model_type=model_type)
    tensors = vit_tensors(config, 5)
    save_checkpoint(tmp_path / "ours", config, tensors)
    hf = _hf_from_dir(tmp_path / "ours", cls_name)
    # and back: transformers writes the checkpoint fastattn loads
    hf.save_pretrained(tmp_path / "theirs")
    model = fastattn.load(tmp_path / "theirs")     # "deit" is registered beside "vit"
    x = pixels(rng, 2)
    with torch.no_grad():
        expected = hf(torch.from_numpy(x), output_attentions=True, output_hidden_states=True)
    out = model(x, output_attentions=True, output_hidden_states=True)
    np.testing.assert_allclose(out.logits, expected.logits.numpy(), atol=2 * LOGIT_ATOL)
    assert len(out.hidden_states) == len(expected.hidden_states)
    for a, e in zip(out.hidden_states, expected.hidden_states):
        np.testing.assert_allclose(a, e.numpy(), atol=2 * HIDDEN_ATOL)
    for a, e in zip(out.attentions, expected.attentions):
        np.testing.assert_allclose(a, e.numpy(), atol=2 * PROB_ATOL)
    # other image sizes: transformers' interpolate_pos_encoding
    for size in [(48, 40), (16, 24)]:
        y = pixels(rng, 1, size)
        with torch.no_grad():
            e = hf(torch.from_numpy(y), interpolate_pos_encoding=True).logits.numpy()
        np.testing.assert_allclose(model(y).logits, e, atol=2 * LOGIT_ATOL)


def test_matches_transformers_vitmodel_pooler(tmp_path, rng):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    config = vit_config() | {"architectures": ["ViTModel"]}
    tensors = vit_tensors(config, 6, prefix="", pooler=True, classifier=False)
    model = load_model(tmp_path, config, tensors)
    hf = _hf_from_dir(tmp_path, "ViTModel")
    x = pixels(rng)
    with torch.no_grad():
        expected = hf(torch.from_numpy(x))
    out = model(x)
    np.testing.assert_allclose(out.last_hidden_state, expected.last_hidden_state.numpy(),
                               atol=2 * HIDDEN_ATOL)
    np.testing.assert_allclose(out.pooler_output, expected.pooler_output.numpy(),
                               atol=2 * LOGIT_ATOL)


def test_schema_lists_what_transformers_saves(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from fastattn.io import Checkpoint
    config = vit_config(qkv_bias=False, image=[32, 24], patch=[8, 4])
    hf_config = transformers.ViTConfig(**{k: v for k, v in config.items()
                                          if k not in ("model_type", "architectures")})
    transformers.ViTForImageClassification(hf_config).save_pretrained(tmp_path)
    with Checkpoint(tmp_path) as ckpt:
        saved = {name: tuple(ckpt[name].shape) for name in ckpt.keys()}
    assert saved == vit_tensor_shapes(fastattn.load_config(tmp_path))


# ------------------------------------------------------------------------------ classify
def test_classify_delegates_to_the_pipeline(small, rng):
    assert_classify_matches_logits(small[0], pixels(rng, 2))
