"""The image classification pipeline: ImageClassifier / classify (preprocessing, softmax,
top-k labels) and explain (attention maps at image resolution).

Most tests use a small fake model that follows the vision model contract (config with
id2label / num_channels / image_size / patch_size / num_prefix_tokens, __call__ returning
logits and attentions) and whose outputs are known in closed form; one end-to-end test
writes a random tiny ViT checkpoint and loads it with fastattn.load.
"""
import dataclasses
import json
import types

import numpy as np
import pytest

import fastattn
from fastattn.pipelines.image_classification import (ImageClassifier, classify, explain_map,
                                                     top_k_labels)
from fastattn.vision import ImageProcessor

SIZE, PATCH = 16, 4
GRID = SIZE // PATCH


@dataclasses.dataclass
class FakeOutput:
    logits: np.ndarray | None
    attentions: tuple | None = None


class FakeViT:
    """logits[c] = 4 * mean of channel c (three labels, one per colour channel); attention:
    every token attends to the patches in proportion to exp(8 * patch brightness) and a little
    to [CLS], so the brightest patch is where it "looks"."""

    def __init__(self, id2label=None, with_head=True, attentions=True):
        self.config = types.SimpleNamespace(
            model_type="vit", id2label={0: "red", 1: "green", 2: "blue"} if id2label is None
            else id2label, num_channels=3, image_size=SIZE, patch_size=PATCH,
            num_prefix_tokens=1, pretrained_cfg=None)
        self.with_head, self.attentions = with_head, attentions
        self.calls = []

    def __call__(self, pixel_values, output_attentions=False, output_hidden_states=False):
        self.calls.append(pixel_values)
        b = pixel_values.shape[0]
        logits = (4 * pixel_values.mean(axis=(2, 3))).astype(np.float32)
        if not output_attentions or not self.attentions:
            return FakeOutput(logits if self.with_head else None)
        patches = pixel_values.mean(1).reshape(b, GRID, PATCH, GRID, PATCH).mean((2, 4))
        scores = np.concatenate([np.zeros((b, 1)), 8 * patches.reshape(b, -1)], axis=1)
        p = np.exp(scores - scores.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        t = 1 + GRID * GRID
        att = np.broadcast_to(p[:, None, None, :], (b, 2, t, t)).astype(np.float32)
        return FakeOutput(logits, (att, att))


def coloured(channel, size=(20, 24), level=255):
    img = np.zeros(size + (3,), np.uint8)
    img[:, :, channel] = level
    return img


def softmax64(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def test_classify_top_k_and_probabilities():
    model = FakeViT()
    result = classify(model, coloured(2), top_k=2)
    # pixel values of a pure-blue image under mean = std = 0.5: blue +1, others -1; red and
    # green tie, the lower class index first
    assert len(result) == 1 and [label for label, _ in result[0]] == ["blue", "red"]
    probs = softmax64(np.array([-4.0, -4.0, 4.0]))
    np.testing.assert_allclose([p for _, p in result[0]], [probs[2], probs[0]], rtol=1e-6)
    everything = classify(model, [coloured(0), coloured(1)], top_k=10)   # k capped at 3
    assert [r[0][0] for r in everything] == ["red", "green"]
    assert all(len(r) == 3 for r in everything)
    np.testing.assert_allclose([sum(p for _, p in r) for r in everything], 1.0, rtol=1e-6)
    # ties: equal probabilities keep the lower class index first
    tie = classify(model, np.zeros((8, 8, 3), np.uint8), top_k=3)
    assert [label for label, _ in tie[0]] == ["red", "green", "blue"]


def test_classify_labels_fall_back_to_label_i():
    result = classify(FakeViT(id2label={}), coloured(1), top_k=1)
    assert result[0][0][0] == "LABEL_1"
    partial = classify(FakeViT(id2label={0: "zero"}), coloured(0), top_k=3)
    assert [label for label, _ in partial[0]] == ["zero", "LABEL_1", "LABEL_2"]


def test_classify_preprocesses_with_the_model_defaults_or_a_given_processor():
    model = FakeViT()
    classify(model, coloured(0, (40, 50)))
    x = model.calls[-1]
    assert x.shape == (1, 3, SIZE, SIZE) and x.dtype == np.float32
    np.testing.assert_array_equal(x, ImageProcessor.from_model_config(model.config)(
        coloured(0, (40, 50))))
    p = ImageProcessor(size=(8, 12), image_mean=(0.0, 0.0, 0.0), image_std=(1.0, 1.0, 1.0))
    classify(model, coloured(0), processor=p)
    assert model.calls[-1].shape == (1, 3, 8, 12) and model.calls[-1].max() == 1.0


def test_classify_takes_a_preprocessed_batch_as_is():
    model = FakeViT()
    batch = np.random.default_rng(0).standard_normal((3, 3, SIZE, SIZE)).astype(np.float32)
    result = classify(model, batch, top_k=1)
    assert len(result) == 3 and model.calls[-1] is batch
    expected = top_k_labels(4 * batch.mean(axis=(2, 3)), ["red", "green", "blue"], 1)
    assert result == expected


def test_classify_paths(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image
    Image.fromarray(coloured(1)).save(tmp_path / "g.png")
    model = FakeViT()
    assert classify(model, tmp_path / "g.png", top_k=1)[0][0][0] == "green"
    assert classify(model, [str(tmp_path / "g.png"), coloured(0)], top_k=1)[1][0][0] == "red"


def test_classify_errors():
    model = FakeViT()
    with pytest.raises(ValueError, match="top_k"):
        classify(model, coloured(0), top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        classify(model, coloured(0), top_k=True)
    with pytest.raises(TypeError, match="float32"):
        classify(model, np.zeros((1, 3, SIZE, SIZE)))
    with pytest.raises(ValueError, match=r"expected \(N, 3, H, W\)"):
        classify(model, np.zeros((1, SIZE, SIZE, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        classify(model, np.zeros((1, 1, 1, 1, 1), np.uint8))
    with pytest.raises(TypeError, match="images must be"):
        classify(model, 42)
    with pytest.raises(ValueError, match="no classifier head"):
        classify(FakeViT(with_head=False), coloured(0))


def bright_square(row, col, size=(32, 32)):
    """A dark image with one bright square where the model input's patch (row, col) falls."""
    img = np.full(size + (3,), 20, np.uint8)
    ph, pw = size[0] // GRID, size[1] // GRID
    img[row * ph:(row + 1) * ph, col * pw:(col + 1) * pw] = 250
    return img


@pytest.mark.parametrize("method", ["rollout", "cls"])
def test_explain_finds_the_bright_patch(method):
    clf = ImageClassifier(FakeViT())
    heat = clf.explain(bright_square(1, 3), method)
    assert heat.shape == (SIZE, SIZE) and heat.dtype == np.float32
    assert heat.min() == 0.0 and heat.max() == 1.0
    r, c = np.unravel_index(heat.argmax(), heat.shape)
    assert r // PATCH == 1 and c // PATCH == 3
    assert clf.model_view(bright_square(1, 3)).shape == (SIZE, SIZE, 3)


def test_explain_map_batch_and_options():
    model = FakeViT()
    x = ImageProcessor(size=(SIZE, SIZE))([bright_square(0, 0), bright_square(3, 2)])
    maps = explain_map(model, x, "rollout", head_fusion="max", discard_ratio=0.5)
    assert maps.shape == (2, SIZE, SIZE)
    assert np.unravel_index(maps[1].argmax(), maps[1].shape)[0] // PATCH == 3
    cls_maps = explain_map(model, x, "cls", layer=0, head=1)
    assert cls_maps.shape == (2, SIZE, SIZE)
    with pytest.raises(ValueError, match="method"):
        explain_map(model, x, "gradcam")


def test_explain_needs_attentions():
    clf = ImageClassifier(FakeViT(attentions=False))
    with pytest.raises(ValueError, match="no attention probabilities"):
        clf.explain(coloured(0))
    with pytest.raises(TypeError, match="one image"):
        ImageClassifier(FakeViT()).explain([coloured(0), coloured(1)])


# --- end to end: a random tiny ViT checkpoint ----------------------------------------------

VIT = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "hidden_size": 32,
       "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
       "hidden_act": "gelu", "layer_norm_eps": 1e-12, "image_size": 32, "patch_size": 8,
       "num_channels": 3, "qkv_bias": True,
       "id2label": {str(i): f"class {i}" for i in range(5)}}


def write_tiny_vit(directory, preprocessor=None):
    """A random tiny ViT checkpoint (and, given, its preprocessor_config.json) in
    ``directory``; std 0.2 so that the logits differ visibly between images."""
    pytest.importorskip("fastattn.models.vit")
    from fastattn.testing import random_checkpoint
    fastattn.save_checkpoint(directory, VIT, random_checkpoint(VIT, 0, std=0.2, bias_std=0.1))
    if preprocessor is not None:
        (directory / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return directory


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    return write_tiny_vit(tmp_path_factory.mktemp("tiny-vit"), {
        "image_processor_type": "ViTImageProcessor", "size": {"height": 32, "width": 32},
        "resample": 3, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]})


def test_end_to_end_tiny_vit(vit_dir):
    clf = ImageClassifier.from_pretrained(vit_dir)
    assert clf.processor.resample == "bicubic"                    # the file's, not defaults
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (45, 60, 3), dtype=np.uint8),
              rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)]
    result = clf.classify(images, top_k=3)
    # by hand: the processor, the model's logits, a float64 softmax
    logits = clf.model(clf.processor(images)).logits
    for row, got in zip(logits, result):
        probs = softmax64(row.astype(np.float64))
        best = np.argsort(-probs, kind="stable")[:3]
        assert [label for label, _ in got] == [f"class {i}" for i in best]
        # fastattn.softmax in float32: within 1e-6 relative (docs/numerics.md)
        np.testing.assert_allclose([p for _, p in got], probs[best], rtol=1e-5)
    # the models' delegate: the model type's defaults (bilinear, mean = std = 0.5) instead
    delegate = clf.model.classify(images[1], top_k=2)
    assert delegate == classify(clf.model, images[1], top_k=2)
    heat = clf.explain(images[0])
    assert heat.shape == (32, 32) and 0.0 <= heat.min() and heat.max() == 1.0


def test_timm_checkpoint_uses_its_pretrained_cfg(tmp_path):
    pytest.importorskip("fastattn.models.vit")
    from test_vit import timm_config, to_timm, vit_config, vit_tensors
    fastattn.save_checkpoint(tmp_path, timm_config(), to_timm(vit_tensors(vit_config())))
    clf = ImageClassifier.from_pretrained(tmp_path)
    # timm's eval transform for input 32, crop_pct 0.9: shortest edge floor(32 / 0.9) = 35,
    # torchvision's center crop 32, bicubic
    assert (clf.processor.shortest_edge, clf.processor.crop_size, clf.processor.crop_rounding,
            clf.processor.resample) == (35, (32, 32), "round", "bicubic")
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    # the model's own delegate reads the same pretrained_cfg from model.config
    assert clf.model.classify(img, top_k=2) == clf.classify(img, top_k=2)
    assert clf.explain(img, "cls", head=0).shape == (32, 32)
