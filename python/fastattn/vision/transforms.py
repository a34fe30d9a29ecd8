"""The pixel steps after resizing: center crop, rescale, normalise, and stacking HWC images
into the NCHW float32 batch a vision model takes.

    crop:       out[i, j] = image[top + i, left + j]   (zeros where that lies outside the image)
    rescale:    x * rescale_factor                       (1/255: uint8 levels -> [0, 1])
    normalise:  (x - mean[c]) / std[c]                   per channel
"""
from __future__ import annotations

import math

import numpy as np

from .resampling import check_image, check_size

# Where a center crop starts when (image - crop) is odd:
#   "floor": transformers' center_crop, top = (H - h) // 2, and an image smaller than the crop
#            gets ceil((h - H) / 2) zero rows above it;
#   "round": torchvision's CenterCrop (timm's eval transform), top = round((H - h) / 2) with
#            Python's round (half to even), and (h - H) // 2 zero rows above a smaller image.
CROP_ROUNDING = ("floor", "round")


def _crop_start(n: int, crop: int, rounding: str) -> int:
    """First image row (or column) of the crop window; negative: the window starts above
    the image (zero padding)."""
    if crop <= n:
        return (n - crop) // 2 if rounding == "floor" else int(round((n - crop) / 2.0))
    return -math.ceil((crop - n) / 2) if rounding == "floor" else -((crop - n) // 2)


def center_crop(image: np.ndarray, size, rounding: str = "floor") -> np.ndarray:
    """The central ``size = (height, width)`` window of ``image`` (H, W, C) or (H, W); where
    the window reaches past the image (a crop larger than the image) the result is 0, as
    both transformers and torchvision pad. ``rounding`` ('floor' for transformers, 'round'
    for torchvision/timm) places the window when the margin is odd (CROP_ROUNDING)."""
    op = "center_crop"
    image = check_image(op, image)
    height, width = check_size(op, size)
    if rounding not in CROP_ROUNDING:
        raise ValueError(f"{op}: rounding must be 'floor' or 'round', got {rounding!r}")
    top = _crop_start(image.shape[0], height, rounding)
    left = _crop_start(image.shape[1], width, rounding)
    if (top >= 0 and left >= 0 and top + height <= image.shape[0]
            and left + width <= image.shape[1]):
        return image[top:top + height, left:left + width].copy()
    out = np.zeros((height, width) + image.shape[2:], image.dtype)
    # the overlap of the window [top, top + height) with the image [0, H), per axis
    y0, y1 = max(top, 0), min(top + height, image.shape[0])
    x0, x1 = max(left, 0), min(left + width, image.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return out


def rescale_and_normalize(image: np.ndarray, rescale_factor: float | None,
                          mean=None, std=None) -> np.ndarray:
    """``(image * rescale_factor - mean) / std`` per channel (last axis), float32 out; either
    step is skipped when its argument is None. Computed in float64 and rounded once, so the
    result is within 1 float32 ulp of the exact value (transformers rounds after the rescale
    and again after the normalisation, torchvision divides in float32: both within ~2 ulp)."""
    x = image.astype(np.float64)
    if rescale_factor is not None:
        x = x * rescale_factor
    if mean is not None:
        mean = np.asarray(mean, np.float64)
        std = np.asarray(std, np.float64)
        if x.shape[-1] != mean.shape[0]:
            raise ValueError(f"normalize: the image has {x.shape[-1]} channels, image_mean and "
                             f"image_std have {mean.shape[0]} values")
        x = (x - mean) / std
    return x.astype(np.float32)


def to_batch(images) -> np.ndarray:
    """A list of (H, W, C) float arrays of one size as the NCHW float32 batch (N, C, H, W)."""
    images = list(images)
    if not images:
        raise ValueError("to_batch: no images")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"to_batch: the processed images differ in size ({sorted(shapes)}); "
                         "resize them to one size (height and width) or center-crop them")
    # HWC -> CHW per image, then stack: (N, C, H, W)
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32)
