"""fastattn.vision: Pillow-exact resizing, center crop, rescale/normalise, ImageProcessor read
from Hugging Face / timm files, load_image.

Pillow and transformers are optional: the comparisons with them are skipped when they are
missing; the hand-computed cases run everywhere. Preprocessing is NumPy only (no kernels), so
these tests are not parametrised over ISA paths.
"""
import json
import sys
import types

import numpy as np
import pytest

from fastattn.vision import (ImageProcessor, center_crop, load_image, rescale_and_normalize,
                             resize, resize_shortest_edge, shortest_edge_size, to_batch)
from fastattn.vision.resampling import PIL_RESAMPLE_CODES, filter_weights

MODES = ["nearest", "bilinear", "bicubic", "box", "hamming", "lanczos"]
CODES = {name: code for code, name in PIL_RESAMPLE_CODES.items()}


def smooth_image(rng, h, w, c=3):
    """A photo-like uint8 image (random walks along rows, clipped) — values near 0 and 255
    too, where bicubic/lanczos overshoot is clipped."""
    steps = rng.integers(-24, 25, (h, w, c))
    return np.clip(np.cumsum(steps, axis=1) + rng.integers(0, 256, (h, 1, c)), 0,
                   255).astype(np.uint8)


def pillow_tolerance(PIL):
    # Pillow >= 13 runs the vertical pass first when the height shrinks much more than the
    # width (python-pillow/Pillow#9549); we follow it and match bit for bit. Older Pillows
    # always start with the horizontal pass: the uint8 intermediate then rounds differently,
    # by at most one level on these images.
    return 0 if int(PIL.__version__.split(".")[0]) >= 13 else 1


# --- resize against Pillow ---------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_resize_matches_pillow_rgb(mode):
    PIL = pytest.importorskip("PIL")
    from PIL import Image
    rng = np.random.default_rng(CODES[mode])
    tol = pillow_tolerance(PIL)
    sizes = [(37, 53, 224, 224), (301, 257, 224, 224), (224, 224, 224, 224), (50, 40, 7, 90),
             (12, 200, 80, 3), (256, 341, 256, 341), (5, 5, 1, 1), (1, 9, 4, 4)]
    sizes += [tuple(int(v) for v in rng.integers(1, 70, 4)) for _ in range(30)]
    for h, w, oh, ow in sizes:
        img = smooth_image(rng, h, w) if h * w > 64 else rng.integers(0, 256, (h, w, 3),
                                                                      dtype=np.uint8)
        ref = np.asarray(Image.fromarray(img).resize((ow, oh), CODES[mode]))
        got = resize(img, (oh, ow), mode)
        assert got.dtype == np.uint8 and got.shape == (oh, ow, 3)
        diff = np.abs(ref.astype(np.int16) - got).max()
        assert diff <= tol, (mode, (h, w), (oh, ow), diff)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_resize_matches_pillow_grayscale_and_noise(mode):
    PIL = pytest.importorskip("PIL")
    from PIL import Image
    rng = np.random.default_rng(7)
    tol = pillow_tolerance(PIL)
    for _ in range(20):
        h, w, oh, ow = (int(v) for v in rng.integers(1, 40, 4))
        img = rng.integers(0, 256, (h, w), dtype=np.uint8)   # noise: maximal overshoot
        ref = np.asarray(Image.fromarray(img).resize((ow, oh), CODES[mode]))
        got = resize(img, (oh, ow), mode)
        assert got.shape == (oh, ow)
        assert np.abs(ref.astype(np.int16) - got).max() <= tol


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "lanczos"])
def test_resize_float_matches_pillow_f_mode(mode):
    pytest.importorskip("PIL")
    from PIL import Image
    rng = np.random.default_rng(3)
    img = rng.standard_normal((23, 31)).astype(np.float32) * 50
    for oh, ow in ((11, 40), (40, 11), (7, 7)):
        ref = np.asarray(Image.fromarray(img, mode="F").resize((ow, oh), CODES[mode]))
        got = resize(img, (oh, ow), mode)
        assert got.dtype == np.float32
        # both accumulate in float64 and store float32 after each pass; only the summation
        # order may differ: a few float32 ulps of values up to ~200
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)


def test_resize_hand_computed_bilinear():
    # 4 -> 2, scale 2: the triangle filter widens to support 2 (antialiasing). Output 0 has
    # centre 1.0, taps x = 0, 1, 2 with weights tri((x + 0.5 - 1) / 2) = .75, .75, .25 -> 3/7,
    # 3/7, 1/7: (0*3 + 100*3 + 200) / 7 = 71.4 -> 71. Output 1, centre 3.0, taps 1, 2, 3:
    # .25, .75, .75: (100*.25 + 200*.75 + 255*.75) / 1.75 = 209.3 -> 209.
    img = np.array([[0, 100, 200, 255]], np.uint8)
    np.testing.assert_array_equal(resize(img, (1, 2), "bilinear"), [[71, 209]])
    index, w = filter_weights(4, 2, "bilinear")
    np.testing.assert_allclose(w[0, :3], [3 / 7, 3 / 7, 1 / 7])
    np.testing.assert_array_equal(index[0, :3], [0, 1, 2])


@pytest.mark.parametrize("mode", MODES)
def test_resize_uniform_image_stays_uniform(mode):
    # weights sum to 1 (fixed point: to 2^22 within a few units, far below the 2^21 rounding
    # margin), so a flat image stays flat under any filter and size
    img = np.full((17, 29, 3), 201, np.uint8)
    for size in ((5, 3), (40, 61), (17, 8)):
        assert (resize(img, size, mode) == 201).all()


def test_resize_same_size_is_a_copy_and_nearest_integer_factor():
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    out = resize(img, (4, 4), "bicubic")
    np.testing.assert_array_equal(out, img)
    assert not np.shares_memory(out, img)
    # nearest 4 -> 2 picks pixel floor((j + 0.5) * 2) = 1, 3
    np.testing.assert_array_equal(resize(img, (2, 2), 0), img[1::2, 1::2])


def test_resize_errors():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(TypeError, match="uint8 or floating"):
        resize(img.astype(np.int32), (2, 2))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        resize([[1, 2]], (2, 2))
    with pytest.raises(ValueError, match=r"shape \(H, W, C\)"):
        resize(np.zeros((2, 2, 2, 2), np.uint8), (2, 2))
    with pytest.raises(ValueError, match="at least 1x1"):
        resize(np.zeros((0, 4, 3), np.uint8), (2, 2))
    with pytest.raises(ValueError, match="two ints >= 1"):
        resize(img, (0, 2))
    with pytest.raises(ValueError, match="pair"):
        resize(img, 3)
    with pytest.raises(ValueError, match="resample must be"):
        resize(img, (2, 2), "cubic")
    with pytest.raises(ValueError, match="resample code"):
        resize(img, (2, 2), 9)


def test_shortest_edge():
    # the longer side truncated: int(256 * 640 / 480) = 341
    assert shortest_edge_size(480, 640, 256) == (256, 341)
    assert shortest_edge_size(640, 480, 256) == (341, 256)
    assert shortest_edge_size(300, 300, 224) == (224, 224)
    assert resize_shortest_edge(np.zeros((30, 60, 3), np.uint8), 10).shape == (10, 20, 3)
    with pytest.raises(ValueError, match="shortest_edge"):
        resize_shortest_edge(np.zeros((3, 3), np.uint8), 0)


# --- crop, rescale, normalise, batch -----------------------------------------------------

def test_center_crop_floor_and_round():
    img = np.arange(7 * 9, dtype=np.uint8).reshape(7, 9)
    # margin 3 rows: transformers' top = 3 // 2 = 1; torchvision's round(1.5) = 2 (half to
    # even); margin 5 columns: 2 and round(2.5) = 2
    np.testing.assert_array_equal(center_crop(img, (4, 4), "floor"), img[1:5, 2:6])
    np.testing.assert_array_equal(center_crop(img, (4, 4), "round"), img[2:6, 2:6])
    # margin 1 row (round(0.5) = 0), 7 columns (round(3.5) = 4)
    np.testing.assert_array_equal(center_crop(img, (6, 2), "round"), img[0:6, 4:6])


def test_center_crop_pads_a_small_image():
    img = np.full((3, 3, 1), 9, np.uint8)
    # 3 rows into 6: transformers puts ceil(3/2) = 2 zero rows above, torchvision 3 // 2 = 1
    hf = center_crop(img, (6, 6), "floor")[:, :, 0]
    tv = center_crop(img, (6, 6), "round")[:, :, 0]
    assert hf.shape == tv.shape == (6, 6)
    assert (hf[2:5, 2:5] == 9).all() and hf.sum() == 9 * 9
    assert (tv[1:4, 1:4] == 9).all() and tv.sum() == 9 * 9
    # one axis padded, the other cropped
    wide = np.arange(2 * 8, dtype=np.uint8).reshape(2, 8)
    out = center_crop(wide, (4, 4), "floor")
    np.testing.assert_array_equal(out[1:3], wide[:, 2:6])
    assert (out[[0, 3]] == 0).all()
    with pytest.raises(ValueError, match="rounding"):
        center_crop(img, (2, 2), "ceil")


def test_rescale_and_normalize_formula():
    img = np.array([[[0, 128, 255]]], np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    got = rescale_and_normalize(img, 1 / 255, mean, std)
    expected = (np.array([0, 128, 255]) / 255 - np.array(mean)) / np.array(std)
    assert got.dtype == np.float32
    # one rounding to float32 at the end: 0.5 ulp of values below 2.7
    np.testing.assert_allclose(got[0, 0], expected, rtol=0, atol=2.5e-7)
    np.testing.assert_array_equal(rescale_and_normalize(img, None), img.astype(np.float32))
    with pytest.raises(ValueError, match="3 channels"):
        rescale_and_normalize(img, 1.0, (0.5,), (0.5,))


def test_to_batch_layout_and_size_mismatch():
    a = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    batch = to_batch([a, a + 1])
    assert batch.shape == (2, 3, 2, 3) and batch.flags.c_contiguous
    np.testing.assert_array_equal(batch[1, 2], a[:, :, 2] + 1)   # HWC -> CHW
    with pytest.raises(ValueError, match="differ in size"):
        to_batch([a, a[:1]])


# --- ImageProcessor ----------------------------------------------------------------------

def write_json(directory, name, data):
    (directory / name).write_text(json.dumps(data))
    return directory


VIT_CONFIG = {"image_processor_type": "ViTImageProcessor", "do_resize": True,
              "size": {"height": 224, "width": 224}, "resample": 2, "do_rescale": True,
              "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
              "image_std": [0.5, 0.5, 0.5]}
# microsoft/resnet-50's file (the legacy feature-extractor form: integer size, no do_rescale)
RESNET50_CONFIG = {"crop_pct": 0.875, "do_normalize": True, "do_resize": True,
                   "feature_extractor_type": "ConvNextFeatureExtractor",
                   "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
                   "resample": 3, "size": 224}


def test_processor_from_vit_file(tmp_path):
    p = ImageProcessor.from_pretrained(write_json(tmp_path, "preprocessor_config.json",
                                                  VIT_CONFIG))
    assert (p.size, p.shortest_edge, p.resample, p.do_center_crop) == ((224, 224), None,
                                                                       "bilinear", False)
    x = p(np.zeros((50, 80, 3), np.uint8))
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    np.testing.assert_array_equal(x, -1.0)      # (0 - 0.5) / 0.5


def test_processor_from_resnet50_file(tmp_path):
    p = ImageProcessor.from_pretrained(write_json(tmp_path, "preprocessor_config.json",
                                                  RESNET50_CONFIG))
    # shortest edge int(224 / 0.875) = 256, center crop 224 (transformers' ConvNext rule)
    assert (p.shortest_edge, p.crop_size, p.resample, p.crop_rounding) == (
        256, (224, 224), "bicubic", "floor")
    assert p.do_rescale and p.rescale_factor == pytest.approx(1 / 255)
    assert p(np.zeros((300, 500, 3), np.uint8)).shape == (1, 3, 224, 224)


def test_processor_convnext_large_size_warps(tmp_path):
    cfg = dict(RESNET50_CONFIG, size={"shortest_edge": 384})
    p = ImageProcessor.from_pretrained(write_json(tmp_path, "preprocessor_config.json", cfg))
    assert (p.size, p.do_center_crop) == ((384, 384), False)


@pytest.mark.parametrize("name", ["vit", "resnet50", "convnext384", "vit_crop"])
def test_processor_matches_transformers(tmp_path, name):
    pytest.importorskip("PIL")
    pytest.importorskip("transformers")
    from transformers.models.convnext.image_processing_pil_convnext import \
        ConvNextImageProcessorPil
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil
    cfg, hf_class = {
        "vit": (VIT_CONFIG, ViTImageProcessorPil),
        "resnet50": (RESNET50_CONFIG, ConvNextImageProcessorPil),
        "convnext384": (dict(RESNET50_CONFIG, size={"shortest_edge": 384}),
                        ConvNextImageProcessorPil),
        "vit_crop": (dict(VIT_CONFIG, size={"height": 256, "width": 256}, resample=3,
                          do_center_crop=True, crop_size={"height": 223, "width": 224}),
                     ViTImageProcessorPil),
    }[name]
    hf_kwargs = {k: v for k, v in cfg.items() if not k.endswith("_type")}
    if isinstance(hf_kwargs.get("size"), int):
        hf_kwargs["size"] = {"shortest_edge": hf_kwargs["size"]}
    hf = hf_class(**hf_kwargs)
    ours = ImageProcessor.from_pretrained(write_json(tmp_path, "preprocessor_config.json", cfg))
    rng = np.random.default_rng(0)
    for h, w in ((301, 257), (224, 224), (97, 413)):
        img = smooth_image(rng, h, w)
        ref = hf(img, return_tensors="np")["pixel_values"]
        got = ours(img)
        assert got.shape == ref.shape
        # same uint8 pixels after the resize (Pillow-exact); the float steps round once here,
        # twice there (after rescale, after normalise): <= 2 float32 ulps of |x| <= 2.7
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


TIMM_CFG = {"input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.9,
            "crop_mode": "center", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def test_processor_from_timm_config(tmp_path):
    write_json(tmp_path, "config.json", {"architecture": "vit_base_patch16_224",
                                         "num_classes": 10, "pretrained_cfg": TIMM_CFG})
    p = ImageProcessor.from_pretrained(tmp_path)
    # timm: shortest edge floor(224 / 0.9) = 248, then torchvision's CenterCrop(224)
    assert (p.shortest_edge, p.crop_size, p.crop_rounding, p.resample) == (
        248, (224, 224), "round", "bicubic")
    squash = ImageProcessor.from_model_config(types.SimpleNamespace(
        pretrained_cfg=dict(TIMM_CFG, crop_mode="squash", input_size=[3, 224, 160])))
    assert (squash.size, squash.crop_size) == ((248, 177), (224, 160))
    with pytest.raises(ValueError, match="crop_mode 'border'"):
        ImageProcessor.from_model_config(types.SimpleNamespace(
            pretrained_cfg=dict(TIMM_CFG, crop_mode="border")))


def test_processor_timm_pipeline_by_hand():
    pytest.importorskip("PIL")
    from PIL import Image
    p = ImageProcessor.from_model_config(types.SimpleNamespace(pretrained_cfg=TIMM_CFG))
    img = smooth_image(np.random.default_rng(1), 300, 451)
    # torchvision on a PIL image: Resize(248) -> (248, int(248 * 451 / 300) = 372), then
    # CenterCrop: top round(24 / 2) = 12, left round(148 / 2) = 74; ToTensor; Normalize
    small = np.asarray(Image.fromarray(img).resize((372, 248), Image.Resampling.BICUBIC))
    crop = small[12:236, 74:298]
    expected = ((crop / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(p(img), expected, rtol=0, atol=5e-7)  # 1 float32 rounding


def test_processor_defaults_without_a_preprocessor_file(tmp_path):
    vit_dir = tmp_path / "vit"
    vit_dir.mkdir()
    p = ImageProcessor.from_pretrained(write_json(vit_dir, "config.json",
                                                  {"model_type": "vit", "image_size": 32}))
    assert (p.size, p.resample, p.image_mean) == ((32, 32), "bilinear", (0.5, 0.5, 0.5))
    resnet = ImageProcessor.from_model_config(types.SimpleNamespace(
        model_type="resnet", image_size=224, pretrained_cfg=None))
    assert (resnet.shortest_edge, resnet.crop_size, resnet.image_mean) == (
        256, (224, 224), (0.485, 0.456, 0.406))
    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        ImageProcessor.from_pretrained(tmp_path / "missing")
    (vit_dir / "preprocessor_config.json").write_text("{")
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        ImageProcessor.from_pretrained(vit_dir)


def test_processor_inputs_and_errors(tmp_path):
    p = ImageProcessor(size=(8, 8))
    gray = np.full((5, 6), 255, np.uint8)
    np.testing.assert_array_equal(p(gray), 1.0)                 # repeated over 3 channels
    batch = p([np.zeros((5, 6, 3), np.uint8), np.zeros((9, 4, 3), np.float32)])
    assert batch.shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="4 channels"):
        p(np.zeros((5, 6, 4), np.uint8))
    with pytest.raises(TypeError, match="expected an image"):
        p(5)
    with pytest.raises(ValueError, match="no images"):
        p([])
    keep = ImageProcessor(size=None, shortest_edge=4)
    with pytest.raises(ValueError, match="differ in size"):
        keep([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 16, 3), np.uint8)])
    with pytest.raises(ValueError, match="exactly one of size"):
        ImageProcessor(size=(2, 2), shortest_edge=4)
    with pytest.raises(ValueError, match="image_std"):
        ImageProcessor(image_std=(0.5, 0.0, 0.5))
    with pytest.raises(ValueError, match="do_center_crop needs crop_size"):
        ImageProcessor(do_center_crop=True)
    with pytest.raises(ValueError, match="not supported"):
        ImageProcessor.from_pretrained(write_json(
            tmp_path, "preprocessor_config.json",
            dict(VIT_CONFIG, size={"shortest_edge": 224, "longest_edge": 1333})))
    with pytest.raises(Exception) as e:
        p.size = (1, 1)        # frozen
    assert "cannot assign" in str(e.value)


# --- load_image --------------------------------------------------------------------------

def test_load_image_round_trip(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image
    rgb = smooth_image(np.random.default_rng(2), 9, 13)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), rgb)
    rgba = np.dstack([rgb, np.full((9, 13), 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "b.png")
    np.testing.assert_array_equal(load_image(str(tmp_path / "b.png")), rgb)   # alpha dropped
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "c.png")
    gray = load_image(tmp_path / "c.png")
    assert gray.shape == (9, 13, 3) and (gray == rgb[:, :, :1]).all()
    p = ImageProcessor(size=(9, 13))
    np.testing.assert_array_equal(p(tmp_path / "a.png"), p(rgb))       # paths accepted
    np.testing.assert_array_equal(p(Image.fromarray(rgb)), p(rgb))     # PIL images too
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")
    with pytest.raises(TypeError, match="path"):
        load_image(3)


def test_load_image_without_pillow_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"fastattn\[image\]"):
        load_image(tmp_path / "a.png")
