"""SamPredictor (pipelines/sam_predictor.py): the reference's ResizeLongestSide, preprocessing
and mask postprocessing against Pillow / PyTorch; then, on a tiny random SAM checkpoint
(fastattn.testing.write_sam_checkpoint): the encoder cache, single and batched prompts
(padded point sets answer as the set alone), mask input, embeddings saved and loaded,
bad input, threads, and transformers' SamModel + SamProcessor end to end.

The pipeline's own arithmetic is NumPy plus fastattn.interpolate; the model's kernels are
tested in the model's test files, so nothing here is parametrised over ISA paths.
"""
import threading

import numpy as np
import pytest

from fastattn.pipelines.sam_predictor import (PIXEL_MEAN, PIXEL_STD, apply_boxes, apply_coords,
                                              prepare_image, preprocess_shape, upscale_masks)

EPS32 = 2.0 ** -24   # float32 unit roundoff


def photo(rng, h, w):
    """A smooth uint8 RGB image (random walks along rows): resizing it is not trivial."""
    steps = rng.integers(-20, 21, (h, w, 3))
    return np.clip(np.cumsum(steps, axis=1) + rng.integers(0, 256, (h, 1, 3)), 0,
                   255).astype(np.uint8)


# --- the reference's transforms ---------------------------------------------------------

@pytest.mark.parametrize("hw, long_side, expected", [
    ((480, 640), 1024, (768, 1024)),        # 4:3 landscape
    ((1500, 2250), 1024, (683, 1024)),    # 1024 * 2/3 = 682.67 -> 683
    ((333, 1000), 1024, (341, 1024)),       # 340.99 -> 341
    ((1, 1000), 1024, (1, 1024)),           # 1.024 -> 1: a side never rounds to 0 here
    ((64, 64), 128, (128, 128)),            # upscaling a square
    ((100, 3), 64, (64, 2)),                # 1.92 -> 2
])
def test_preprocess_shape_rounds_half_up(hw, long_side, expected):
    # ResizeLongestSide.get_preprocess_shape: int(side * long / max(H, W) + 0.5)
    assert preprocess_shape(*hw, long_side) == expected


def test_apply_coords_and_boxes_scale_each_axis():
    original = (480, 640)                   # -> (768, 1024): both axes scale by 1.6
    pts = np.array([[[10.0, 20.0], [639.0, 479.0]]])
    np.testing.assert_array_equal(apply_coords(pts, original, 1024),
                                  np.float32(pts * 1.6))
    # unequal per-axis factors after rounding: (333, 1000) -> (341, 1024)
    xy = apply_coords(np.array([[1000.0, 333.0]]), (333, 1000), 1024)
    np.testing.assert_array_equal(xy, np.float32([[1024.0, 341.0]]))
    boxes = apply_boxes(np.array([[0, 0, 1000, 333], [10, 20, 30, 40]]), (333, 1000), 1024)
    np.testing.assert_array_equal(boxes[0], np.float32([0, 0, 1024, 341]))
    assert boxes.shape == (2, 4) and boxes.dtype == np.float32
    np.testing.assert_allclose(boxes[1], [10 * 1.024, 20 * 341 / 333, 30 * 1.024,
                                          40 * 341 / 333], rtol=EPS32)


@pytest.mark.parametrize("hw", [(48, 64), (64, 40), (200, 150), (64, 64)])
def test_prepare_image_matches_pillow_resize_normalise_pad(hw):
    Image = pytest.importorskip("PIL.Image")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(sum(hw))
    image = photo(rng, *hw)
    S = 64
    pixel_values, input_size = prepare_image(image, S)
    h, w = preprocess_shape(*hw, S)
    assert input_size == (h, w) and pixel_values.shape == (1, 3, S, S)
    # the reference: np.array(resize(to_pil_image(image), (h, w))) (PIL bilinear), then
    # Sam.preprocess in float32 torch: (x - mean) / std, F.pad(..., (0, S - w, 0, S - h))
    resized = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    x = torch.as_tensor(resized.copy()).permute(2, 0, 1)[None]
    x = (x - torch.tensor(PIXEL_MEAN).view(-1, 1, 1)) / torch.tensor(PIXEL_STD).view(-1, 1, 1)
    x = torch.nn.functional.pad(x, (0, S - w, 0, S - h))
    # same uint8 pixels (bit-exact resize), same float32 operations: equal bits
    np.testing.assert_array_equal(pixel_values, x.numpy())
    assert not pixel_values[0, :, h:, :].any() and not pixel_values[0, :, :, w:].any()


def torch_postprocess(torch, low_res, S, input_size, original_size):
    """Sam.postprocess_masks, verbatim in its operations."""
    F = torch.nn.functional
    m = F.interpolate(torch.as_tensor(low_res), (S, S), mode="bilinear", align_corners=False)
    m = m[..., :input_size[0], :input_size[1]]
    return F.interpolate(m, original_size, mode="bilinear", align_corners=False).numpy()


@pytest.mark.parametrize("original_size", [(48, 64), (100, 37), (64, 64), (23, 128)])
def test_upscale_masks_matches_postprocess_masks(original_size):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(original_size[1])
    S = 64
    input_size = preprocess_shape(*original_size, S)
    low_res = rng.standard_normal((2, 3, 16, 16)).astype(np.float32) * 4
    ref = torch_postprocess(torch, low_res, S, input_size, original_size)
    got = upscale_masks(low_res, S, input_size, original_size, return_logits=True)
    assert got.shape == (2, 3, *original_size) and got.dtype == np.float32
    # Two bilinear resamplings, each output a convex combination of 4 inputs (weights >= 0,
    # sum 1): each within ~6 eps max|x| of exact (fastattn's and torch's alike, docs/resample.md);
    # chained, 32 eps max|x| covers both sides of both steps.
    tol = 32 * EPS32 * np.abs(low_res).max()
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)
    masks = upscale_masks(low_res, S, input_size, original_size)
    assert masks.dtype == np.bool_
    decided = np.abs(ref) > tol            # away from 0 the sign is certain
    np.testing.assert_array_equal(masks[decided], (ref > 0)[decided])
    # leading axes are kept, and the chunked loop equals one call per mask
    one = upscale_masks(low_res[1, 2], S, input_size, original_size, return_logits=True)
    np.testing.assert_array_equal(one, got[1, 2])


# --- geometry, with a model double whose masks are known shapes ------------------------------

class DiscSam:
    """A stand-in for SamModel with the same interface (config, get_image_embeddings,
    __call__ with image_embeddings and prompts in the S x S input frame) whose answers are
    known shapes: mask m is the union of discs of radius RADII[m] input pixels around the
    foreground points, or the box itself. It lets the tests check that the predictor's
    coordinate transform, crop and upscaling put the mask where the prompt was in the
    ORIGINAL image — which random weights cannot show. Labels -1 / -10 are ignored."""

    S, PATCH = 64, 4                      # g = 16, low-res masks 64 x 64: 1 per input pixel
    RADII = (6.0, 3.0, 6.0, 9.0)          # mask 0 (single output), masks 1-3 (multimask)

    def __init__(self):
        from fastattn.models.sam.config import (SamConfig, SamDecoderConfig, SamPromptConfig,
                                                SamVisionConfig)
        g = self.S // self.PATCH
        self.config = SamConfig(
            vision=SamVisionConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                                   mlp_dim=8, patch_size=self.PATCH, image_size=self.S,
                                   window_size=0, global_attn_indexes=(0,), output_channels=8),
            prompt=SamPromptConfig(hidden_size=8, image_size=self.S, image_embedding_size=g),
            decoder=SamDecoderConfig(hidden_size=8, mlp_dim=8, num_attention_heads=1,
                                     iou_head_hidden_dim=8))
        self.image_encoder = None
        self.encoder_calls = 0
        self.calls = []

    def get_image_embeddings(self, pixel_values):
        assert pixel_values.shape == (1, 3, self.S, self.S) and pixel_values.dtype == np.float32
        self.encoder_calls += 1
        g = self.S // self.PATCH
        pooled = pixel_values.reshape(1, 3, g, self.PATCH, g, self.PATCH).mean(axis=(3, 5))
        return np.concatenate([pooled, pooled[:, :1] * 0 + 1, pooled, pooled[:, :1]], axis=1)

    def __call__(self, pixel_values=None, *, image_embeddings=None, input_points=None,
                 input_labels=None, input_boxes=None, input_masks=None, multimask_output=True):
        from types import SimpleNamespace
        self.calls.append(dict(points=input_points, labels=input_labels, boxes=input_boxes,
                               masks=input_masks))
        P = next(len(a) for a in (input_points, input_boxes, input_masks) if a is not None)
        low = 4 * (self.S // self.PATCH)
        c = (np.arange(low) + 0.5) * self.S / low          # low-res pixel centres, input frame
        v, u = np.meshgrid(c, c, indexing="ij")
        radii = self.RADII[1:] if multimask_output else self.RADII[:1]
        logits = np.full((P, len(radii), low, low), -100.0, np.float32)
        iou = np.zeros((P, len(radii)), np.float32)
        for p in range(P):
            if input_points is not None:
                for (x, y), label in zip(input_points[p], input_labels[p]):
                    if label == 1:
                        d = np.hypot(u - x, v - y)
                        for m, r in enumerate(radii):
                            logits[p, m] = np.maximum(logits[p, m], r - d)
                iou[p] = (input_labels[p] == 1).sum() + 0.1 * np.arange(len(radii))
            if input_boxes is not None:
                x1, y1, x2, y2 = input_boxes[p]
                inside = np.minimum(np.minimum(u - x1, x2 - u), np.minimum(v - y1, y2 - v))
                logits[p] = np.maximum(logits[p], inside)
            if input_masks is not None:
                logits[p] += input_masks[p, 0]
        # a trace of the image (0.01 logit, far below the shapes' margins), so that answers
        # computed with another image's features differ
        logits += 0.01 * np.float32(image_embeddings.mean())
        return SimpleNamespace(pred_masks=logits, iou_scores=iou,
                               image_embeddings=image_embeddings)


@pytest.fixture
def disc():
    from fastattn.pipelines.sam_predictor import SamPredictor
    model = DiscSam()
    predictor = SamPredictor(model)
    predictor.set_image(photo(np.random.default_rng(0), 48, 80))   # -> input (38, 64)
    return predictor


def test_set_image_records_sizes_and_runs_the_encoder_once(disc):
    model = disc.model
    assert disc.is_image_set and disc.original_size == (48, 80) and disc.input_size == (38, 64)
    assert disc.features.shape == (1, 8, 16, 16) and not disc.features.flags.writeable
    for _ in range(3):
        disc.predict(point_coords=[[10, 10]], point_labels=[1])
    disc.predict_batch(boxes=[[0, 0, 10, 10], [5, 5, 20, 30]])
    assert model.encoder_calls == 1
    assert all(call["points"] is None or call["points"].dtype == np.float32
               for call in model.calls)


@pytest.mark.parametrize("xy", [(40.0, 24.0), (5.0, 3.0), (79.0, 47.0), (60.5, 10.25)])
def test_point_mask_lies_around_the_point_in_original_pixels(disc, xy):
    masks, scores, low_res = disc.predict(point_coords=np.array([xy]), point_labels=[1],
                                          multimask_output=False)
    assert masks.shape == (1, 48, 80) and masks.dtype == np.bool_
    assert scores.shape == (1,) and low_res.shape == (1, 64, 64)
    # the disc has radius 6 input pixels = 6 * 80 / 64 = 7.5 original pixels (both axes scale
    # by 64 / 80 and 38 / 48 ~ 0.79-0.8); bilinear upscaling blurs its edge by ~1 pixel
    r = 6 * 80 / 64
    yy, xx = np.mgrid[0:48, 0:80] + 0.5                    # pixel centres
    d = np.hypot(xx - xy[0], yy - xy[1])
    assert masks[0][d < r - 1.5].all()
    assert not masks[0][d > r + 1.5].any()


def test_box_mask_is_the_box_in_original_pixels(disc):
    box = np.array([12.0, 8.0, 50.0, 40.0])
    masks, _, _ = disc.predict(box=box, multimask_output=False)
    yy, xx = np.mgrid[0:48, 0:80] + 0.5
    inside = (xx > box[0] + 1.5) & (xx < box[2] - 1.5) & (yy > box[1] + 1.5) & (yy < box[3] - 1.5)
    outside = (xx < box[0] - 1.5) | (xx > box[2] + 1.5) | (yy < box[1] - 1.5) | (yy > box[3] + 1.5)
    assert masks[0][inside].all() and not masks[0][outside].any()


def test_return_logits_and_multimask(disc):
    logits, scores, low_res = disc.predict(point_coords=[[40, 24]], point_labels=[1],
                                           return_logits=True)
    masks, _, _ = disc.predict(point_coords=[[40, 24]], point_labels=[1])
    assert logits.shape == (3, 48, 80) and logits.dtype == np.float32
    np.testing.assert_array_equal(masks, logits > 0)
    # multimask: masks 1-3 of the decoder (radii 3, 6, 9 here), nested
    assert masks[0].sum() < masks[1].sum() < masks[2].sum()
    np.testing.assert_allclose(scores, [1.0, 1.1, 1.2])


def test_batched_point_sets_of_different_lengths_equal_single_calls(disc):
    sets = [np.array([[10.0, 12.0]]), np.array([[40.0, 24.0], [70.0, 40.0], [20, 30]]),
            np.array([[60.0, 8.0], [5.0, 44.0]])]
    labels = [np.array([1]), np.array([1, 0, 1]), np.array([1, -1])]
    boxes = np.array([[0, 0, 20, 20], [30, 10, 60, 40], [50, 0, 79, 47]])
    masks, scores, low_res = disc.predict_batch(sets, labels, boxes=boxes)
    assert masks.shape == (3, 3, 48, 80) and scores.shape == (3, 3)
    assert low_res.shape == (3, 3, 64, 64)
    padded = disc.model.calls[-1]
    assert padded["points"].shape == (3, 3, 2)
    np.testing.assert_array_equal(padded["labels"][0], [1, -10, -10])
    for i in range(3):
        m, s, lr = disc.predict(sets[i], labels[i], box=boxes[i])
        np.testing.assert_array_equal(masks[i], m)
        np.testing.assert_array_equal(scores[i], s)
        np.testing.assert_array_equal(low_res[i], lr)
    # the same as one (P, N, 2) array padded by hand
    xy = np.zeros((3, 3, 2))
    lab = np.full((3, 3), -10)
    for i, (c, l) in enumerate(zip(sets, labels)):
        xy[i, :len(c)], lab[i, :len(l)] = c, l
    again, _, _ = disc.predict_batch(xy, lab, boxes=boxes)
    np.testing.assert_array_equal(again, masks)


def test_mask_input_reaches_the_model_in_the_low_res_frame(disc):
    _, _, low_res = disc.predict(point_coords=[[40, 24]], point_labels=[1])
    disc.predict(point_coords=[[40, 24]], point_labels=[1], mask_input=low_res[1:2])
    np.testing.assert_array_equal(disc.model.calls[-1]["masks"], low_res[None, 1:2])
    disc.predict_batch(boxes=[[0, 0, 9, 9]] * 2, mask_input=np.stack([low_res[:1]] * 2))
    assert disc.model.calls[-1]["masks"].shape == (2, 1, 64, 64)


def test_predict_low_res_then_upscale_equals_predict_batch(disc):
    from fastattn.pipelines.sam_predictor import upscale_masks
    boxes = [[0, 0, 20, 20], [30, 10, 60, 40]]
    low_res, iou, state = disc.predict_low_res(boxes=boxes)
    masks, iou2, low_res2 = disc.predict_batch(boxes=boxes)
    np.testing.assert_array_equal(low_res, low_res2)
    np.testing.assert_array_equal(iou, iou2)
    np.testing.assert_array_equal(upscale_masks(low_res, *state), masks)
    np.testing.assert_array_equal(disc.upscale_masks(low_res[1]), masks[1])


# --- bad input ----------------------------------------------------------------------------

def test_predict_before_set_image_is_a_clear_error():
    from fastattn.pipelines.sam_predictor import SamPredictor
    predictor = SamPredictor(DiscSam())
    assert not predictor.is_image_set and predictor.original_size is None
    for call in (lambda: predictor.predict(point_coords=[[1, 1]], point_labels=[1]),
                 lambda: predictor.predict_batch(boxes=[[0, 0, 1, 1]]),
                 lambda: predictor.features, lambda: predictor.save_embedding("x")):
        with pytest.raises(RuntimeError, match=r"no image is set; call set_image"):
            call()


def test_sam_predictor_refuses_other_models():
    from fastattn.pipelines.sam_predictor import SamPredictor
    with pytest.raises(TypeError, match="must be a SAM model"):
        SamPredictor(object())


@pytest.mark.parametrize("image, error, message", [
    (np.zeros((20, 30), np.uint8), ValueError, r"shape \(H, W, 3\).*got shape \(20, 30\)"),
    (np.zeros((20, 30, 4), np.uint8), ValueError, r"got shape \(20, 30, 4\)"),
    (np.zeros((0, 30, 3), np.uint8), ValueError, r"got shape \(0, 30, 3\)"),
    (np.zeros((20, 30, 3), np.int32), TypeError, r"uint8 or floating point.*got int32"),
    (np.full((20, 30, 3), 1.5, np.float32) * 200, ValueError, r"0-255 scale.*\[300, 300\]"),
    (np.full((20, 30, 3), np.nan, np.float32), ValueError, "finite"),
    ([[1, 2, 3]], TypeError, "numpy.ndarray"),
])
def test_set_image_bad_images(image, error, message):
    from fastattn.pipelines.sam_predictor import SamPredictor
    with pytest.raises(error, match=message):
        SamPredictor(DiscSam()).set_image(image)


def test_set_image_bgr_and_float_images():
    from fastattn.pipelines.sam_predictor import SamPredictor
    image = photo(np.random.default_rng(1), 30, 40)
    model = DiscSam()
    p = SamPredictor(model)
    p.set_image(image)
    rgb = p.features
    p.set_image(np.ascontiguousarray(image[..., ::-1]), image_format="BGR")
    np.testing.assert_array_equal(p.features, rgb)
    # a float image on the 0-255 scale is resized in float (Pillow's "F" mode): within a
    # rounding (half a level) of the uint8 path's pixels, averaged by the pooling double
    p.set_image(image.astype(np.float32))
    np.testing.assert_allclose(p.features, rgb, atol=0.5 / 57)
    with pytest.raises(ValueError, match=r"image_format must be 'RGB' or 'BGR', got 'RGBA'"):
        p.set_image(image, image_format="RGBA")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(point_coords=[[1, 1]]), ValueError, "point_coords and point_labels go together"),
    (dict(point_labels=[1]), ValueError, "point_coords and point_labels go together"),
    (dict(point_coords=[[1, 1]], point_labels=[5]), ValueError,
     r"point_labels must be in \(-10, -1, 0, 1, 2, 3\).*got \[5\]"),
    (dict(point_coords=[[1, 1]], point_labels=[1.0, 1.0]), ValueError,
     r"point_labels has shape \(2,\), expected \(1,\)"),
    (dict(point_coords=[[1, 1]], point_labels=[True]), TypeError, "got dtype bool"),
    (dict(point_coords=[1, 1], point_labels=[1]), ValueError,
     r"point_coords must have shape \(N, 2\).*got shape \(2,\)"),
    (dict(point_coords=[["a", "b"]], point_labels=[1]), TypeError, "real numbers"),
    (dict(point_coords=[[np.nan, 1]], point_labels=[1]), ValueError, "must be finite"),
    (dict(point_coords=[[81, 10]], point_labels=[1]), ValueError,
     r"inside the image, 0 <= x <= 80 and 0 <= y <= 48.*\(81.0, 10.0\).*refused, not clipped"),
    (dict(point_coords=[[10, -0.5]], point_labels=[0]), ValueError, "inside the image"),
    (dict(box=[30, 10, 20, 40]), ValueError,
     r"box must have x1 <= x2 and y1 <= y2.*\[30.0, 10.0, 20.0, 40.0\]"),
    (dict(box=[0, 0, 10, 49]), ValueError, r"box must lie inside the image"),
    (dict(box=[[0, 0, 1, 1], [0, 0, 2, 2]]), ValueError, r"several boxes: predict_batch"),
    (dict(box=[0, 0, 1]), ValueError, r"box must have shape \(4,\) or \(1, 4\)"),
    (dict(mask_input=np.zeros((64, 64))), ValueError,
     r"mask_input must have shape \(1, 64, 64\).*got shape \(64, 64\)"),
    (dict(box=[0, 0, 1, 1], multimask_output="yes"), TypeError,
     "multimask_output must be a bool, got str"),
    (dict(box=[0, 0, 1, 1], return_logits=1), TypeError, "return_logits must be a bool"),
])
def test_predict_bad_prompts(disc, kwargs, error, message):
    with pytest.raises(error, match=message):
        disc.predict(**kwargs)


def test_points_on_the_edge_and_coordinate_free_labels_are_accepted(disc):
    # the frame is [0, W] x [0, H] edges included; a -1 point's coordinates are ignored by
    # the model, so they are not checked (the reference pads with (0, 0) label -1)
    disc.predict(point_coords=[[80, 48], [0, 0], [500, -3]], point_labels=[1, 1, -1])
    disc.predict(box=[0, 0, 80, 48])
    disc.predict(box=[5, 5, 5, 9])            # a degenerate (zero-width) box is a valid box


@pytest.mark.parametrize("kwargs, message", [
    (dict(boxes=[[0, 0, 1, 1]] * 2, point_coords=[[[1, 1]]] * 3, point_labels=[[1]] * 3),
     r"counts must agree, got 3 point sets, 2 boxes"),
    (dict(point_coords=[[[1, 1]], [[2, 2]]], point_labels=[1, 1]), r"point_labels"),
    (dict(point_coords=[[[1, 1]], [[2, 2]]], point_labels=7), r"as many label sets"),
    (dict(point_coords=[], point_labels=[]), r"empty list"),
    (dict(point_coords=np.zeros((2, 0, 2)), point_labels=np.zeros((2, 0))),
     r"shape \(P, N, 2\)"),
    (dict(boxes=[[0, 0, 1, 1], [5, 5, 4, 6]]), r"x1 <= x2.*at index 1"),
    (dict(boxes=np.zeros((0, 4))), r"boxes must have shape \(P, 4\)"),
    (dict(boxes=[[0, 0, 1, 1]], mask_input=np.zeros((1, 64, 64))),
     r"mask_input must have shape \(P, 1, 64, 64\)"),
])
def test_predict_batch_bad_prompts(disc, kwargs, message):
    with pytest.raises(ValueError, match=message):
        disc.predict_batch(**kwargs)


# --- threads --------------------------------------------------------------------------------

def test_threads_each_predict_uses_one_whole_image():
    """Threads setting two images of different sizes and predicting at once: every result is
    exactly image A's or image B's answer (a predict never mixes one image's features with the
    other's sizes), and concurrent predicts on one image equal the predict alone."""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from fastattn.pipelines.sam_predictor import SamPredictor
    rng = np.random.default_rng(5)
    images = {"a": photo(rng, 48, 80), "b": photo(rng, 70, 30)}
    predictor = SamPredictor(DiscSam())
    point = dict(point_coords=[[20, 20]], point_labels=[1])
    alone = {}
    for key, image in images.items():
        predictor.set_image(image)
        alone[key] = predictor.predict(**point)
    start = threading.Barrier(6)

    def worker(i):
        start.wait()
        results = []
        for j in range(8):
            if (i + j) % 3 == 0:
                predictor.set_image(images["ab"[(i + j) % 2]])
            else:
                results.append(predictor.predict(**point))
        return results

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(6) as pool:
            results = [r for part in pool.map(worker, range(6)) for r in part]
    finally:
        sys.setswitchinterval(interval)
    assert len(results) > 20
    for masks, scores, low_res in results:
        key = "a" if masks.shape[1:] == (48, 80) else "b"
        for got, want in zip((masks, scores, low_res), alone[key]):
            np.testing.assert_array_equal(got, want)


# --- a tiny random SAM checkpoint -------------------------------------------------------------

@pytest.fixture(scope="module")
def sam_dirs(tmp_path_factory):
    """Two tiny random SAM checkpoints (HF layout) with the same config, seeds 0 and 1."""
    from fastattn.testing import write_sam_checkpoint
    root = tmp_path_factory.mktemp("sam")
    for seed in (0, 1):
        write_sam_checkpoint(root / f"seed{seed}", seed=seed)
    return root / "seed0", root / "seed1"


@pytest.fixture(scope="module")
def sam(sam_dirs):
    import fastattn
    return fastattn.load(sam_dirs[0])


@pytest.fixture(scope="module")
def sam_image():
    return photo(np.random.default_rng(11), 45, 70)


@pytest.fixture(scope="module")
def real(sam, sam_image):
    from fastattn.pipelines.sam_predictor import SamPredictor
    predictor = SamPredictor(sam)
    predictor.set_image(sam_image)
    return predictor


def decoder_tolerance(low_res):
    # The same prompt decoded alone or inside a batch (other P, other padding): the kernels
    # block their sums differently by shape, so each float32 result moves by a few ulps of
    # its operands' scale; through the two-way transformer's layers that can grow to ~1e-5 of
    # the logits' magnitude, so 1e-4 of max|logit| bounds it with room (on the tiny checkpoint
    # the batched and single answers are measured equal to the bit).
    return 1e-4 * float(np.abs(low_res).max())


def test_real_predict_is_the_model_plus_postprocessing(real, sam, sam_image):
    torch = pytest.importorskip("torch")
    S = sam.config.vision.image_size
    pixel_values, input_size = prepare_image(sam_image, S)
    assert real.input_size == input_size and real.original_size == sam_image.shape[:2]
    np.testing.assert_array_equal(real.features, sam.get_image_embeddings(pixel_values))
    pts, labels, box = np.array([[30.0, 20.0], [60.0, 40.0]]), np.array([1, 0]), \
        np.array([5.0, 5.0, 50.0, 40.0])
    for kwargs in (dict(point_coords=pts, point_labels=labels), dict(box=box),
                   dict(point_coords=pts, point_labels=labels, box=box)):
        for multimask in (True, False):
            logits, iou, low_res = real.predict(**kwargs, multimask_output=multimask,
                                                return_logits=True)
            out = sam(image_embeddings=real.features,
                      input_points=None if "point_coords" not in kwargs else
                      apply_coords(pts, real.original_size, S)[None],
                      input_labels=None if "point_labels" not in kwargs else labels[None],
                      input_boxes=None if "box" not in kwargs else
                      apply_boxes(box[None], real.original_size, S),
                      multimask_output=multimask)
            M = 3 if multimask else 1
            assert logits.shape == (M, 45, 70) and iou.shape == (M,)
            assert low_res.shape == (M, 4 * S // 16, 4 * S // 16)
            np.testing.assert_array_equal(low_res, out.pred_masks[0])
            np.testing.assert_array_equal(iou, out.iou_scores[0])
            ref = torch_postprocess(torch, out.pred_masks, S, input_size, sam_image.shape[:2])[0]
            tol = 32 * EPS32 * np.abs(low_res).max()        # as test_upscale_masks
            np.testing.assert_allclose(logits, ref, rtol=0, atol=tol)


def test_real_encoder_runs_once(sam, sam_image, monkeypatch):
    from fastattn.pipelines.sam_predictor import SamPredictor
    calls = []
    encode = sam.get_image_embeddings
    monkeypatch.setattr(sam, "get_image_embeddings", lambda x: calls.append(1) or encode(x))
    predictor = SamPredictor(sam)
    predictor.set_image(sam_image)
    for xy in ([10, 10], [60, 30], [35, 22]):
        predictor.predict(point_coords=[xy], point_labels=[1])
    predictor.predict_batch(boxes=[[0, 0, 20, 20], [10, 10, 60, 40]])
    assert len(calls) == 1


def test_real_batch_equals_single_prompts(real):
    sets = [np.array([[30.0, 20.0]]), np.array([[60.0, 40.0], [10.0, 5.0], [33.0, 33.0]]),
            np.array([[5.0, 40.0], [69.0, 1.0]])]
    labels = [np.array([1]), np.array([1, 0, 1]), np.array([0, 1])]
    boxes = np.array([[0.0, 0.0, 40.0, 30.0], [20.0, 10.0, 70.0, 45.0], [3.0, 3.0, 9.0, 9.0]])
    for kw in (dict(), dict(boxes=boxes)):
        for multimask in (True, False):
            logits, iou, low_res = real.predict_batch(sets, labels, **kw,
                                                      multimask_output=multimask,
                                                      return_logits=True)
            for i in range(3):
                one = real.predict(sets[i], labels[i], box=kw["boxes"][i] if kw else None,
                                   multimask_output=multimask, return_logits=True)
                tol = decoder_tolerance(one[2])
                np.testing.assert_allclose(low_res[i], one[2], rtol=0, atol=tol)
                np.testing.assert_allclose(iou[i], one[1], rtol=0,
                                           atol=1e-4 * np.abs(one[1]).max())
                np.testing.assert_allclose(logits[i], one[0], rtol=0, atol=tol)
    masks, _, _ = real.predict_batch(boxes=boxes)
    assert masks.shape == (3, 3, 45, 70) and masks.dtype == np.bool_


def test_real_mask_input_changes_the_answer(real):
    _, _, low_res = real.predict(point_coords=[[30, 20]], point_labels=[1])
    a = real.predict(point_coords=[[30, 20]], point_labels=[1], return_logits=True)
    b = real.predict(point_coords=[[30, 20]], point_labels=[1], mask_input=low_res[:1],
                     return_logits=True)
    assert not np.allclose(a[2], b[2])
    batch = real.predict_batch(point_coords=[[[30, 20]]] * 2, point_labels=[[1]] * 2,
                               mask_input=np.stack([low_res[:1], low_res[1:2]]),
                               return_logits=True)
    np.testing.assert_allclose(batch[2][0], b[2], rtol=0, atol=decoder_tolerance(b[2]))


# --- embeddings on disk -----------------------------------------------------------------------

def test_embedding_round_trip(real, sam, sam_image, tmp_path):
    from fastattn.pipelines.sam_predictor import SamPredictor, image_digest
    path = tmp_path / "emb.safetensors"
    real.save_embedding(path)
    fresh = SamPredictor(sam)
    fresh.load_embedding(path, image=sam_image)
    assert fresh.original_size == real.original_size and fresh.input_size == real.input_size
    assert fresh.image_digest == image_digest(sam_image) == real.image_digest
    np.testing.assert_array_equal(fresh.features, real.features)
    prompt = dict(point_coords=[[30, 20]], point_labels=[1], box=[5, 5, 50, 40])
    for got, want in zip(fresh.predict(**prompt), real.predict(**prompt)):
        np.testing.assert_array_equal(got, want)


def test_embedding_fingerprint_is_stable_and_specific(sam_dirs, sam):
    import fastattn
    from fastattn.pipelines.sam_predictor import SamPredictor
    same = SamPredictor(fastattn.load(sam_dirs[0], mmap=False)).model_fingerprint()
    assert same == SamPredictor(sam).model_fingerprint()
    assert SamPredictor(fastattn.load(sam_dirs[1])).model_fingerprint() != same


def test_embedding_refusals(real, sam_dirs, sam_image, tmp_path):
    import fastattn
    from fastattn.io import SafetensorsFile, save_safetensors
    from fastattn.pipelines.sam_predictor import SamPredictor
    path = tmp_path / "emb.safetensors"
    real.save_embedding(path)
    other = SamPredictor(fastattn.load(sam_dirs[1]))
    with pytest.raises(ValueError, match="computed by another model"):
        other.load_embedding(path)
    assert not other.is_image_set
    fresh = SamPredictor(real.model)
    with pytest.raises(ValueError, match="embedding of another image"):
        fresh.load_embedding(path, image=sam_image[::-1].copy())
    with SafetensorsFile(path, mmap=False) as f:
        features, meta = np.array(f["features"]), dict(f.metadata)

    def rewrite(name, tensors=None, **changes):
        p = tmp_path / name
        save_safetensors(p, tensors or {"features": features}, metadata={**meta, **changes})
        return p
    bad = {
        "not a SAM embedding": rewrite("fmt.safetensors", format="something"),
        "format version": rewrite("ver.safetensors", version="0"),
        r"metadata input_size must be 'height,width'": rewrite("size.safetensors",
                                                                input_size="12"),
        r"holds input_size \(10, 10\)": rewrite("mismatch.safetensors", input_size="10,10"),
        r"features has shape": rewrite("shape.safetensors",
                                       tensors={"features": features[:, :, :2]}),
        "not a SAM embedding ": rewrite("tensor.safetensors", tensors={"x": features}),
    }
    for message, p in bad.items():
        with pytest.raises(ValueError, match=message):
            fresh.load_embedding(p)
    assert not fresh.is_image_set


# --- transformers' SamModel + SamProcessor ----------------------------------------------------

def hf_sam(model_dir):
    """transformers' SamModel on the checkpoint's weights, and a SamProcessor whose image
    processor is the PIL backend (Pillow's bilinear, as the reference and fastattn.vision)
    sized for the tiny model."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil
    from fastattn.io import SafetensorsFile
    from fastattn.loading import load_config
    config = load_config(model_dir)
    hf = transformers.SamModel(transformers.SamConfig(
        **{k: v for k, v in config.to_dict().items() if k.endswith("_config")})).eval()
    with SafetensorsFile(model_dir / "model.safetensors", mmap=False) as f:
        state = {k: torch.from_numpy(np.array(f[k])) for k in f.keys()}
    result = hf.load_state_dict(state, strict=False)
    # the prompt encoder's random-Fourier matrix is the model's shared_image_embedding (one
    # tensor, saved once under that name)
    assert not result.unexpected_keys, result
    assert result.missing_keys == ["prompt_encoder.shared_embedding.positional_embedding"]
    assert torch.equal(hf.prompt_encoder.shared_embedding.positional_embedding,
                       state["shared_image_embedding.positional_embedding"])
    S = config.vision.image_size
    processor = transformers.SamProcessor(image_processor=SamImageProcessorPil(
        size={"longest_edge": S}, pad_size={"height": S, "width": S}))
    return torch, hf, processor


def test_real_matches_transformers_end_to_end(sam_dirs, real, sam_image):
    """The same image and prompts through transformers (SamProcessor -> SamModel ->
    post_process_masks) and through SamPredictor. Where the semantics differ, the test stays
    on the common ground: one prompt (transformers attends to its -10 padding; ours masks it
    out), and the PIL image processor (its default torchvision one resizes differently)."""
    torch, hf, processor = hf_sam(sam_dirs[0])
    pts, labels, box = [[30.0, 20.0], [60.0, 40.0]], [1, 0], [5.0, 5.0, 50.0, 40.0]
    prompts = [dict(input_points=[[pts]], input_labels=[[labels]]),
               dict(input_boxes=[[box]]),
               dict(input_points=[[pts]], input_labels=[[labels]], input_boxes=[[box]])]
    for prompt in prompts:
        for multimask in (True, False):
            inputs = processor(images=sam_image, **prompt, return_tensors="pt")
            with torch.no_grad():
                out = hf(**{k: v for k, v in inputs.items()
                            if k not in ("original_sizes", "reshaped_input_sizes")},
                         multimask_output=multimask)
            want_logits = processor.image_processor.post_process_masks(
                out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"],
                binarize=False)[0][0].numpy()
            want_low = out.pred_masks[0, 0].numpy()
            want_iou = out.iou_scores[0, 0].numpy()
            logits, iou, low_res = real.predict(
                point_coords=pts if "input_points" in prompt else None,
                point_labels=labels if "input_points" in prompt else None,
                box=box if "input_boxes" in prompt else None,
                multimask_output=multimask, return_logits=True)
            # Two float32 implementations of the whole network (encoder O(1) activations with
            # ~2e-6 rounding per stage, test_sam_encoder's TORCH_ATOL; the decoder's 2-layer
            # two-way transformer and hypernetwork MLPs add their own), plus transformers'
            # pixel values (rescale then normalise: a few ulps off ours) and coordinates
            # (scaled in float32): 1e-4 of max(1, |logits|) bounds them (measured 1e-5 on
            # logits of magnitude 0.4, IoU 3e-6).
            tol = 1e-4 * max(1.0, float(np.abs(want_low).max()))
            np.testing.assert_allclose(low_res, want_low, rtol=0, atol=tol)
            np.testing.assert_allclose(iou, want_iou, rtol=0, atol=tol)
            np.testing.assert_allclose(logits, want_logits, rtol=0, atol=tol)
            masks, _, _ = real.predict(
                point_coords=pts if "input_points" in prompt else None,
                point_labels=labels if "input_points" in prompt else None,
                box=box if "input_boxes" in prompt else None, multimask_output=multimask)
            decided = np.abs(want_logits) > tol
            np.testing.assert_array_equal(masks[decided], (want_logits > 0)[decided])


def test_real_concurrent_predicts_equal_alone(real):
    """Several threads decoding different prompts on one predictor at once (the kernels
    release the GIL, so they really overlap) get, bit for bit, what each gets alone."""
    from concurrent.futures import ThreadPoolExecutor
    prompts = [dict(point_coords=[[5 + 9 * i, 3 + 5 * i]], point_labels=[1]) for i in range(6)]
    prompts += [dict(box=[i, i, 40 + 4 * i, 30 + 2 * i]) for i in range(6)]
    alone = [real.predict(**p, return_logits=True) for p in prompts]
    start = threading.Barrier(4)

    def worker(i):
        start.wait()
        return [(j, real.predict(**prompts[j], return_logits=True))
                for j in range(i, len(prompts), 4)]

    with ThreadPoolExecutor(4) as pool:
        together = dict(pair for part in pool.map(worker, range(4)) for pair in part)
    for j, want in enumerate(alone):
        for got, w in zip(together[j], want):
            np.testing.assert_array_equal(got, w)
