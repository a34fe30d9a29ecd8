"""Segment Anything as a whole: SamConfig from Hugging Face config.json dicts (defaults,
SlimSAM widths, errors) and from official state-dict shapes (vit_b / vit_l / vit_h inferred
without allocating them), the official <-> Hugging Face name translation, checkpoints loaded
through fastattn.load (a Hugging Face directory as transformers saves it, an official-name
.safetensors file, tied positional matrices, pixel_mean buffers, unknown tensors refused by
name), SamModel's argument checks, and the full model against transformers' SamModel on the
same weights for points, boxes, points + box, masks, multimask on / off.

Tolerances. The tiny random model (fastattn.testing.write_sam_checkpoint: weights N(0,
1/fan_in), every stage O(1)) runs in float32 here and in transformers: the image embeddings
agree within the encoder's bound (test_sam_encoder: 1e-4 against transformers); the decoder
then runs ~20 more float32 stages (two-way blocks, upscaling, hypernetwork MLPs) of dot
products of length <= 64 on O(1) values, each adding ~sqrt(64) 2^-24 ~ 5e-7 relative, and
amplifies the embedding difference by its O(1) Lipschitz constant. Measured: low-res mask
logits of magnitude ~1 within 2.2e-5 (the three-box case), IoU scores within 6e-6;
MASK_ATOL = 2e-4 and IOU_ATOL = 5e-5 leave ~10x, and a real error (a wrong eps, a missing
residual, a swapped token) moves them by 1e-3 and more.
"""
import json
import os

import numpy as np
import pytest

import fastattn
import fastattn.analysis
from fastattn.io import SafetensorsFile, save_safetensors
from fastattn.models.sam import SamConfig, SamModel, SamOutput
from fastattn.models.sam.config import OFFICIAL_VARIANTS
from fastattn.models.sam.schema import (hf_to_official, official_tensor_names, official_to_hf,
                                        sam_tensor_shapes)
from fastattn.testing import TINY_SAM, write_sam_checkpoint

MASK_ATOL = 2e-4
IOU_ATOL = 5e-5


# -- config -----------------------------------------------------------------------------------

def test_defaults_are_transformers_vit_b():
    c = SamConfig.from_dict({"model_type": "sam"})
    assert c == SamConfig()
    v = c.vision
    assert (v.hidden_size, v.num_hidden_layers, v.num_attention_heads, v.mlp_dim) == \
        (768, 12, 12, 3072)
    assert v.global_attn_indexes == (2, 5, 8, 11) and v.window_size == 14 and v.grid == 64
    assert c.variant == "vit_b"
    assert c.decoder.layer_norm_eps == 1e-6 and c.decoder.num_attention_heads == 8


def test_transformers_config_dict_round_trip():
    transformers = pytest.importorskip("transformers")
    raw = json.loads(json.dumps(transformers.SamConfig().to_dict()))
    c = SamConfig.from_dict(raw)
    assert c == SamConfig()
    assert "transformers_version" in c.extra
    assert SamConfig.from_dict(c.to_dict()) == c


def test_slimsam_widths():
    # SlimSAM-77: the transformers convert script's vision config (mlp_dim given explicitly)
    raw = {"model_type": "sam", "vision_config": {"hidden_size": 168, "mlp_dim": 696,
                                                  "num_hidden_layers": 12,
                                                  "num_attention_heads": 12}}
    c = SamConfig.from_dict(raw)
    assert (c.vision.hidden_size, c.vision.mlp_dim, c.vision.head_dim) == (168, 696, 14)
    assert c.variant is None
    shapes = sam_tensor_shapes(c)
    assert shapes["vision_encoder.layers.2.attn.rel_pos_h"] == (127, 14)
    assert shapes["vision_encoder.layers.0.attn.rel_pos_h"] == (27, 14)
    # mlp_ratio when mlp_dim is absent, as transformers
    c = SamConfig.from_dict({"vision_config": {"hidden_size": 64, "num_attention_heads": 4,
                                               "mlp_ratio": 2.5}})
    assert c.vision.mlp_dim == 160


@pytest.mark.parametrize("section,entry,words", [
    ("vision_config", {"hidden_size": 100}, "multiple of num_attention_heads"),
    ("vision_config", {"global_attn_indexes": [12]}, "is not a layer"),
    ("vision_config", {"output_channels": 128}, "image embedding width must be one"),
    ("vision_config", {"num_pos_feats": 100}, "num_pos_feats"),
    ("vision_config", {"patch_size": 2048}, "larger than image_size"),
    ("vision_config", {"hidden_act": "nope"}, "unsupported activation"),
    ("vision_config", {"window_size": -1}, "window_size"),
    ("prompt_encoder_config", {"image_size": 512}, "image embedding grid must be one"),
    ("prompt_encoder_config", {"num_point_embeddings": 3}, "num_point_embeddings must be 4"),
    ("mask_decoder_config", {"attention_downsample_rate": 4}, "attention_downsample_rate"),
    ("mask_decoder_config", {"num_attention_heads": 7}, "num_attention_heads"),
    ("mask_decoder_config", {"layer_norm_eps": 0}, "layer_norm_eps"),
])
def test_bad_configs(section, entry, words):
    with pytest.raises(ValueError, match=words):
        SamConfig.from_dict({"model_type": "sam", section: entry})


def test_wrong_model_type():
    with pytest.raises(ValueError, match="model_type 'vit' is not 'sam'"):
        SamConfig.from_dict({"model_type": "vit"})


# -- official names ---------------------------------------------------------------------------

def official_shapes(config):
    """{official name: shape} of config's checkpoint (no arrays allocated)."""
    hf = sam_tensor_shapes(config)
    return {official: hf[name] for official, name in
            hf_to_official({n: n for n in hf}, config).items()}


@pytest.mark.parametrize("variant", OFFICIAL_VARIANTS)
def test_official_variants_inferred_from_shapes(variant):
    dim, depth, heads, glob = OFFICIAL_VARIANTS[variant]
    c = SamConfig.from_dict({"vision_config": {"hidden_size": dim, "num_hidden_layers": depth,
                                               "num_attention_heads": heads,
                                               "global_attn_indexes": list(glob)}})
    shapes = official_shapes(c)
    assert "image_encoder.blocks.0.norm1.weight" in shapes
    assert "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix" in shapes
    assert "mask_decoder.iou_prediction_head.layers.2.weight" in shapes
    assert "mask_decoder.output_upscaling.3.weight" in shapes
    inferred = SamConfig.from_official_shapes(shapes)
    assert inferred.variant == variant
    assert inferred.vision == c.vision
    assert inferred.prompt == c.prompt
    # the official decoder: 8 heads (as transformers'), LayerNorm eps 1e-5 (torch's default)
    assert inferred.decoder.layer_norm_eps == 1e-5
    assert inferred.decoder == type(c.decoder)(**{**c.decoder.__dict__, "layer_norm_eps": 1e-5})


def test_official_name_translation_is_transformers_mapping():
    # spot checks against transformers' convert_sam_to_hf.py mapping
    c = SamConfig.of(TINY_SAM)
    names = official_tensor_names(c)
    hf = official_to_hf({n: n for n in names}, c)
    expect = {
        "vision_encoder.patch_embed.projection.weight": "image_encoder.patch_embed.proj.weight",
        "vision_encoder.layers.1.layer_norm2.bias": "image_encoder.blocks.1.norm2.bias",
        "vision_encoder.neck.layer_norm2.weight": "image_encoder.neck.3.weight",
        "prompt_encoder.mask_embed.conv3.bias": "prompt_encoder.mask_downscaling.6.bias",
        "prompt_encoder.point_embed.3.weight": "prompt_encoder.point_embeddings.3.weight",
        "shared_image_embedding.positional_embedding":
            "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
        "mask_decoder.transformer.layers.0.layer_norm4.weight":
            "mask_decoder.transformer.layers.0.norm4.weight",
        "mask_decoder.transformer.layer_norm_final_attn.bias":
            "mask_decoder.transformer.norm_final_attn.bias",
        "mask_decoder.upscale_layer_norm.weight": "mask_decoder.output_upscaling.1.weight",
        "mask_decoder.output_hypernetworks_mlps.2.proj_out.weight":
            "mask_decoder.output_hypernetworks_mlps.2.layers.2.weight",
        "mask_decoder.iou_prediction_head.layers.0.bias":
            "mask_decoder.iou_prediction_head.layers.1.bias",
    }
    for name, official in expect.items():
        assert hf[name] == official
    assert set(hf) == set(sam_tensor_shapes(c))
    assert len(names) == len(set(names))


def test_official_shapes_errors():
    c = SamConfig.of(TINY_SAM)
    shapes = official_shapes(c)
    with pytest.raises(ValueError, match="missing tensor 'mask_decoder.iou_token.weight'"):
        SamConfig.from_official_shapes({k: v for k, v in shapes.items()
                                        if k != "mask_decoder.iou_token.weight"})
    gap = {k: v for k, v in shapes.items() if not k.startswith("image_encoder.blocks.0.")}
    with pytest.raises(ValueError, match="are not 0..1"):
        SamConfig.from_official_shapes(gap)


# -- loading ----------------------------------------------------------------------------------



@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_sam_checkpoint(tmp_path_factory.mktemp("sam") / "tiny")


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return fastattn.load(tiny_dir)


def tiny_pixels(batch=1, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, 128, 128),
                                                       dtype=np.float32)


def test_load_hf_directory(tiny, tiny_dir):
    assert isinstance(tiny, SamModel)
    assert tiny.config == SamConfig.of(TINY_SAM)
    assert fastattn.load_config(tiny_dir) == tiny.config
    e = tiny.get_image_embeddings(tiny_pixels())
    assert e.shape == (1, 32, 8, 8) and e.dtype == np.float32
    out = tiny(image_embeddings=e, input_points=np.array([[[30.0, 70.0]]], np.float32),
               input_labels=np.array([[1]]))
    assert isinstance(out, SamOutput)
    assert out.pred_masks.shape == (1, 3, 32, 32) and out.iou_scores.shape == (1, 3)
    assert out["image_embeddings"] is e


def test_official_file_loads_the_same_model(tiny, tmp_path):
    path = write_sam_checkpoint(tmp_path, official_names=True)
    assert path.endswith(".safetensors")
    model = fastattn.load(path)
    assert model.config.vision == tiny.config.vision
    assert model.config.decoder.layer_norm_eps == 1e-5       # the official decoder's eps
    x = tiny_pixels()
    # same seed, same tensors: identical image embeddings
    np.testing.assert_array_equal(model.get_image_embeddings(x), tiny.get_image_embeddings(x))


def test_official_file_errors(tmp_path):
    path = write_sam_checkpoint(tmp_path, official_names=True)
    tensors = dict(SafetensorsFile(path))
    bad = str(tmp_path / "extra.safetensors")
    save_safetensors(bad, {**tensors, "image_encoder.blocks.0.attn.extra": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match="unexpected tensor.*'image_encoder.blocks.0.attn.extra'"):
        fastattn.load(bad)
    # the official buffers: accepted with the official values, refused otherwise
    mean = np.array([123.675, 116.28, 103.53], np.float32).reshape(3, 1, 1)
    std = np.array([58.395, 57.12, 57.375], np.float32).reshape(3, 1, 1)
    ok = str(tmp_path / "buffers.safetensors")
    save_safetensors(ok, {**tensors, "pixel_mean": mean, "pixel_std": std})
    fastattn.load(ok)
    wrong = str(tmp_path / "wrong.safetensors")
    save_safetensors(wrong, {**tensors, "pixel_mean": mean * 0})
    with pytest.raises(ValueError, match="pixel_mean"):
        fastattn.load(wrong)
    other = str(tmp_path / "other.safetensors")
    save_safetensors(other, {"w": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match="official segment-anything"):
        fastattn.load(other)


def test_tied_positional_matrix(tiny_dir, tmp_path):
    tensors = dict(SafetensorsFile(os.path.join(tiny_dir, "model.safetensors")))
    config = SamConfig.of(TINY_SAM)
    pe = tensors["shared_image_embedding.positional_embedding"]
    both = {**tensors, "prompt_encoder.shared_embedding.positional_embedding": pe.copy()}
    SamModel.from_weights(config, both)
    only_prompt = {k: v for k, v in both.items()
                   if k != "shared_image_embedding.positional_embedding"}
    SamModel.from_weights(config, only_prompt)
    differ = {**both, "prompt_encoder.shared_embedding.positional_embedding": pe + 1}
    with pytest.raises(ValueError, match="tied"):
        SamModel.from_weights(config, differ)
    with pytest.raises(ValueError, match="unexpected tensor.*'stray.weight'"):
        SamModel.from_weights(config, {**tensors, "stray.weight": pe})
    with pytest.raises(ValueError, match="missing tensor"):
        SamModel.from_weights(config, {k: v for k, v in tensors.items()
                                       if k != "vision_encoder.neck.conv2.weight"})


def test_bad_model_arguments(tiny):
    e = tiny.get_image_embeddings(tiny_pixels())
    with pytest.raises(ValueError, match="exactly one of pixel_values and image_embeddings"):
        tiny()
    with pytest.raises(ValueError, match="exactly one"):
        tiny(tiny_pixels(), image_embeddings=e)
    with pytest.raises(TypeError, match="float32"):
        tiny(image_embeddings=e.astype(np.float64))
    with pytest.raises(ValueError, match=r"\(B, 32, 8, 8\)"):
        tiny(image_embeddings=e[:, :16])
    with pytest.raises(TypeError, match="multimask_output"):
        tiny(image_embeddings=e, multimask_output="yes")
    two = np.concatenate([e, e, e])
    pts = np.zeros((2, 1, 2), np.float32)
    with pytest.raises(ValueError, match="3 image embeddings for 2 prompts"):
        tiny(image_embeddings=two, input_points=pts, input_labels=np.ones((2, 1), np.int64))


# -- transformers -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hf_tiny(tiny_dir):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    return transformers.SamModel.from_pretrained(tiny_dir).eval()


def hf_run(hf, **kw):
    import torch
    args = {k: torch.from_numpy(np.asarray(v)) for k, v in kw.items()
            if k != "multimask_output" and v is not None}
    with torch.inference_mode():
        out = hf(**args, multimask_output=kw.get("multimask_output", True))
    return out.pred_masks.numpy(), out.iou_scores.numpy()


PROMPTS = {
    "one point": dict(points=[[[40.0, 70.0]]], labels=[[1]]),
    "points": dict(points=[[[40.0, 70.0], [100.0, 20.0], [64.0, 64.0]]], labels=[[1, 0, 1]]),
    "box": dict(boxes=[[10.0, 20.0, 90.0, 110.0]]),
    "points and box": dict(points=[[[40.0, 70.0]]], labels=[[1]],
                           boxes=[[10.0, 20.0, 90.0, 110.0]]),
    "several boxes": dict(boxes=[[10.0, 20.0, 90.0, 110.0], [0.0, 0.0, 127.0, 127.0],
                                 [50.0, 60.0, 70.0, 80.0]]),
    "mask": dict(points=[[[40.0, 70.0]]], labels=[[1]], masks=True),
}


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("name", PROMPTS)
def test_matches_transformers(tiny, hf_tiny, name, multimask):
    p = PROMPTS[name]
    x = tiny_pixels()
    e = tiny.get_image_embeddings(x)
    points = None if "points" not in p else np.array(p["points"], np.float32)
    labels = None if "labels" not in p else np.array(p["labels"], np.int64)
    boxes = None if "boxes" not in p else np.array(p["boxes"], np.float32)
    n = len(points if points is not None else boxes)
    masks = (np.random.default_rng(5).standard_normal((n, 1, 32, 32), dtype=np.float32)
             if p.get("masks") else None)
    out = tiny(image_embeddings=e, input_points=points, input_labels=labels,
               input_boxes=boxes, input_masks=masks, multimask_output=multimask)
    # transformers: a batch axis of images in front of the prompts; its input_masks (one
    # image, one prompt here) are (1, 1, 4h, 4w), as ours
    want_masks, want_iou = hf_run(
        hf_tiny, pixel_values=x,
        input_points=None if points is None else points[None],
        input_labels=None if labels is None else labels[None],
        input_boxes=None if boxes is None else boxes[None],
        input_masks=masks,
        multimask_output=multimask)
    m = 3 if multimask else 1
    assert out.pred_masks.shape == (n, m, 32, 32)
    np.testing.assert_allclose(out.pred_masks, want_masks[0], rtol=0, atol=MASK_ATOL)
    np.testing.assert_allclose(out.iou_scores, want_iou[0], rtol=0, atol=IOU_ATOL)


def test_pixels_path_equals_embeddings_path(tiny):
    x = tiny_pixels()
    pts, lab = np.array([[[40.0, 70.0]]], np.float32), np.array([[1]])
    a = tiny(x, input_points=pts, input_labels=lab)
    b = tiny(image_embeddings=tiny.get_image_embeddings(x), input_points=pts, input_labels=lab)
    np.testing.assert_array_equal(a.pred_masks, b.pred_masks)
    # labels default to 1 (positive), as transformers
    c = tiny(image_embeddings=a.image_embeddings, input_points=pts)
    np.testing.assert_array_equal(c.pred_masks, a.pred_masks)


# -- cost model (fastattn.analysis) -----------------------------------------------------------

def test_analysis_matches_flop_counter():
    # FlopCounterMode counts the convolutions (patch embedding, neck), the addmm's (qkv, proj,
    # MLP: the windows' qkv and proj on the padded grid, as transformers computes them too)
    # and the rel-pos einsums (bmm); transformers' SDPA attention is not counted by it, so
    # the comparison is with fastattn.analysis' matmul parts (rel_pos among them), exactly.
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from torch.utils.flop_counter import FlopCounterMode
    c = SamConfig.of(TINY_SAM)
    hf = transformers.SamModel(transformers.SamConfig(
        **{k: v for k, v in c.to_dict().items() if k.endswith("_config")})).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        hf.vision_encoder(torch.zeros(1, 3, 128, 128))
    cost = fastattn.analysis.cost(c)
    assert cost.matmul_flops == counter.get_total_flops()
    assert cost.params == sum(p.numel() for p in hf.parameters())


def test_analysis_vit_b():
    from fastattn.analysis.sam import sam_click_cost
    c = SamConfig()
    cost = fastattn.analysis.cost(c)
    assert cost.params == 93_735_728       # sam_vit_b's published 93.7M
    windowed = 2 * cost.part("attn_windowed_scores").flops
    glob = 2 * cost.part("attn_global_scores").flops
    # 8 windowed blocks: 25 windows x 196^2 pairs x 12 heads x 64 x 4 FLOPs; 4 global blocks:
    # 4096^2 pairs x 12 x 64 x 4
    assert windowed == 8 * 25 * 196 ** 2 * 12 * 64 * 4
    assert glob == 4 * 4096 ** 2 * 12 * 64 * 4
    assert 0.2 < glob / cost.flops < 0.22 and windowed / cost.flops < 0.03
    click = sam_click_cost(c)
    # the image side of the decoder dominates a click: the 4096 image tokens' k / v
    # projections of 3 token->image attentions, q / out of 2 image->token ones, 2 x 2 convT
    assert 3.4e9 < click.flops < 3.8e9


def test_loads_what_transformers_saves(hf_tiny, tiny, tmp_path):
    # save_pretrained writes the tied random-Fourier matrix once, config.json with
    # transformers' own entries in every sub-config
    hf_tiny.save_pretrained(tmp_path)
    model = fastattn.load(tmp_path)
    assert model.config == tiny.config
    x = tiny_pixels()
    np.testing.assert_array_equal(model.get_image_embeddings(x), tiny.get_image_embeddings(x))


def test_slimsam_like_widths_match_transformers(tmp_path):
    # a pruned image encoder (width 44, head dim 11, mlp_dim given), decoder unchanged: loads
    # unchanged, as SlimSAM's checkpoints do
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    raw = json.loads(json.dumps(TINY_SAM))
    raw["vision_config"].update(hidden_size=44, num_attention_heads=4, mlp_dim=70)
    path = write_sam_checkpoint(tmp_path / "slim", raw, seed=3)
    model = fastattn.load(path)
    hf = transformers.SamModel.from_pretrained(path).eval()
    x = tiny_pixels(seed=4)
    pts, lab = np.array([[[20.0, 90.0], [70.0, 30.0]]], np.float32), np.array([[1, 0]])
    out = model(x, input_points=pts, input_labels=lab)
    want_masks, want_iou = hf_run(hf, pixel_values=x, input_points=pts[None],
                                  input_labels=lab[None])
    np.testing.assert_allclose(out.pred_masks, want_masks[0], rtol=0, atol=MASK_ATOL)
    np.testing.assert_allclose(out.iou_scores, want_iou[0], rtol=0, atol=IOU_ATOL)
