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
