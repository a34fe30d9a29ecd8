"""Image resizing that reproduces Pillow's ``Image.resize`` (what Hugging Face's image
processors and timm's eval transforms call on PIL images).

Pillow's convolution-based resampling (bilinear, bicubic, box, hamming, lanczos) is separable:
a horizontal pass, then a vertical pass, each a 1-D filter. For an axis of ``n_in`` pixels
resized to ``n_out``:

    scale   = n_in / n_out                      (> 1: downscaling)
    fscale  = max(scale, 1)                     (the filter widens when downscaling: antialias)
    support = filter.support * fscale
    centre_j = (j + 0.5) * scale                (pixel centres, in input coordinates)
    taps_j  = [trunc(centre_j - support + 0.5), trunc(centre_j + support + 0.5)) clipped to the image
    w_ji    = filter((i - centre_j + 0.5) / fscale),  renormalised so sum_i w_ji = 1

    filters: bilinear (triangle) 1 - |x| on |x| < 1; bicubic (Keys, a = -0.5)
             (a+2)|x|^3 - (a+3)|x|^2 + 1 on |x| < 1, a(|x|^3 - 5|x|^2 + 8|x| - 4) on 1 <= |x| < 2;
             box 1 on (-0.5, 0.5]; hamming sinc(x)(0.54 + 0.46 cos(pi x)) on |x| < 1;
             lanczos sinc(x) sinc(x/3) on [-3, 3).

For uint8 images Pillow works in fixed point, and so do we, bit for bit: each weight becomes
``round_half_away(w * 2^22)`` (an int32), a pass computes ``2^21 + sum_i k_ji p_i`` and keeps
``clip(acc >> 22, 0, 255)``; the horizontal pass's output is stored as uint8 before the vertical
pass reads it. An axis whose size does not change is not filtered at all. Float images use
the same float64 weights without quantisation (Pillow's "F" mode) and are not rounded.

``nearest`` is not a convolution in Pillow: output pixel j takes input pixel
``floor((j + 0.5) * scale)``.

Vectorised with NumPy: per axis, a (n_out, taps) index table and weight table (taps = the
widest window); a pass is ``taps`` gathers-and-multiply-adds over the whole image.
"""
from __future__ import annotations

import numpy as np

# Pillow's PRECISION_BITS for 8-bit images: 32 - 8 (pixel) - 2 (headroom for negative lobes).
_PRECISION_BITS = 22


def _bilinear(x):
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _bicubic(x, a=-0.5):
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _box(x):
    return np.where((x > -0.5) & (x <= 0.5), 1.0, 0.0)


def _sinc(x):
    # np.sinc is sin(pi x) / (pi x) with sinc(0) = 1, as Pillow's sinc_filter.
    return np.sinc(x)


def _hamming(x):
    x = np.abs(x)
    # Pillow multiplies by (0.54f + 0.46f * cos): float constants promoted to double.
    window = np.float64(np.float32(0.54)) + np.float64(np.float32(0.46)) * np.cos(np.pi * x)
    return np.where(x >= 1.0, 0.0, _sinc(x) * window)


def _lanczos(x):
    return np.where((x >= -3.0) & (x < 3.0), _sinc(x) * _sinc(x / 3.0), 0.0)


# name -> (filter, support in input pixels at scale 1)
FILTERS = {
    "box": (_box, 0.5),
    "bilinear": (_bilinear, 1.0),
    "hamming": (_hamming, 1.0),
    "bicubic": (_bicubic, 2.0),
    "lanczos": (_lanczos, 3.0),
}
RESAMPLE_MODES = ("nearest", *FILTERS)

# PIL.Image.Resampling codes, as preprocessor_config.json stores them.
PIL_RESAMPLE_CODES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box",
                      5: "hamming"}


def filter_weights(n_in: int, n_out: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The float64 weights of one axis: ``(index, weight)``, both (n_out, taps); output j is
    ``sum_t weight[j, t] * input[index[j, t]]``. Unused taps have weight 0 and a valid index."""
    fn, base_support = FILTERS[mode]
    scale = n_in / n_out
    fscale = max(scale, 1.0)
    support = base_support * fscale
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    # int() truncates toward zero as C's (int) cast does; the clip makes negatives 0 anyway.
    lo = np.clip(np.trunc(centre - support + 0.5), 0, n_in).astype(np.int64)
    hi = np.clip(np.trunc(centre + support + 0.5), 0, n_in).astype(np.int64)
    taps = max(int((hi - lo).max()), 1)
    index = lo[:, None] + np.arange(taps)[None, :]
    valid = index < hi[:, None]
    # Pillow multiplies by the reciprocal 1/fscale (not a division): the same rounding here.
    w = np.where(valid, fn((index - centre[:, None] + 0.5) * (1.0 / fscale)), 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=w, where=total != 0.0)
    return np.minimum(index, n_in - 1), w


def _fixed_point(w: np.ndarray) -> np.ndarray:
    # Pillow: (int)(w * 2^22 + 0.5) for w >= 0, (int)(w * 2^22 - 0.5) for w < 0 (half away
    # from zero, then truncation).
    scaled = w * (1 << _PRECISION_BITS)
    return np.trunc(np.where(scaled < 0, scaled - 0.5, scaled + 0.5)).astype(np.int32)


def _filter_axis(image: np.ndarray, axis: int, n_out: int, mode: str) -> np.ndarray:
    if axis == 1:
        # Gathering whole rows is ~30x faster than gathering 3-byte pixels along a row: filter
        # the transposed image along its first axis (two copies, cheap beside the taps).
        moved = np.ascontiguousarray(image.swapaxes(0, 1))
        return np.ascontiguousarray(_filter_rows(moved, n_out, mode).swapaxes(0, 1))
    return _filter_rows(image, n_out, mode)


def _filter_rows(image: np.ndarray, n_out: int, mode: str) -> np.ndarray:
    """One pass along axis 0: ``out[j] = sum_t k[j, t] * image[index[j, t]]``."""
    index, w = filter_weights(image.shape[0], n_out, mode)
    out_shape = (n_out,) + image.shape[1:]
    bshape = (n_out,) + (1,) * (image.ndim - 1)       # a weight column over the other axes
    if image.dtype == np.uint8:
        # int32, the same arithmetic as Pillow's: |acc| <= 255 * sum|k| * 2^22 = 1.7e9 < 2^31
        # with sum|k| <= 1.58 (lanczos on a window cut by the image edge; bicubic <= 1.27).
        k = _fixed_point(w)
        acc = np.full(out_shape, 1 << (_PRECISION_BITS - 1), np.int32)
    else:
        k = w
        acc = np.zeros(out_shape, np.float64)
    for t in range(index.shape[1]):
        acc += image[index[:, t]] * k[:, t].reshape(bshape)
    if image.dtype == np.uint8:
        # clip8: acc >> 22 clamped to [0, 255] (an arithmetic shift floors negatives).
        return np.clip(acc >> _PRECISION_BITS, 0, 255).astype(np.uint8)
    return acc.astype(image.dtype if image.dtype in (np.float32, np.float64) else np.float32)


def _nearest_axis(image: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    # Pillow's ImagingScaleAffine: the source coordinate starts at scale / 2 and is advanced by
    # `scale` per output pixel in double precision (a running sum, which np.cumsum reproduces
    # bit for bit), then truncated.
    n_in = image.shape[axis]
    scale = n_in / n_out
    coord = np.cumsum(np.concatenate([[0.5 * scale], np.full(n_out - 1, scale)]))
    return np.take(image, np.minimum(coord.astype(np.int64), n_in - 1), axis=axis)


def _vertical_first(height: int, width: int, new_height: int, new_width: int) -> bool:
    # Pillow >= 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height
    # shrinks by more than twice as many pixels as the width does; earlier versions always run
    # the horizontal pass first. The order changes uint8 results by at most a level or so
    # (where the intermediate image is rounded), so both Pillows agree with us within 1 level
    # on ordinary images; we follow the current one.
    return new_height < height and (height - new_height) > 2 * (width - new_width)


def resize(image: np.ndarray, size, resample: str = "bilinear") -> np.ndarray:
    """``image`` (H, W, C) or (H, W), uint8 or float, resized to ``size = (height, width)``
    as Pillow's ``Image.resize((width, height), resample)``: uint8 results equal Pillow
    13's bit for bit (tests/test_vision_preprocess.py); float images are filtered with the same
    weights in float64 and keep their dtype (float32 or float64; other floats come back
    float32). ``resample``: 'nearest', 'bilinear', 'bicubic', 'box', 'hamming', 'lanczos' or
    a PIL resampling code (0-5)."""
    op = "resize"
    image = check_image(op, image)
    resample = resample_name(op, resample)
    height, width = check_size(op, size)
    if resample == "nearest":
        def one_pass(x, axis, n):
            return _nearest_axis(x, axis, n)
    else:
        def one_pass(x, axis, n):
            return _filter_axis(x, axis, n, resample)
    # (axis, new size) in Pillow's order; an unchanged axis is skipped.
    passes = [(1, width), (0, height)]
    if _vertical_first(image.shape[0], image.shape[1], height, width):
        passes.reverse()
    out = image
    for axis, n in passes:
        if n != image.shape[axis]:
            out = one_pass(out, axis, n)
    return out if out is not image else image.copy()


def shortest_edge_size(height: int, width: int, shortest_edge: int) -> tuple[int, int]:
    """(new_height, new_width) with the shorter side ``shortest_edge`` and the aspect ratio
    kept, the longer side truncated: ``int(shortest_edge * long / short)`` (transformers'
    get_resize_output_image_size and torchvision's Resize(int) agree on this)."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(shortest_edge * long / short)
    return (new_long, shortest_edge) if width <= height else (shortest_edge, new_long)


def resize_shortest_edge(image: np.ndarray, shortest_edge: int,
                         resample: str = "bilinear") -> np.ndarray:
    """``image`` resized so that its shorter side is ``shortest_edge`` (aspect ratio kept,
    see ``shortest_edge_size``): Hugging Face's ``size={"shortest_edge": S}``."""
    image = check_image("resize_shortest_edge", image)
    if not (isinstance(shortest_edge, (int, np.integer)) and not isinstance(shortest_edge, bool)
            and shortest_edge >= 1):
        raise ValueError(f"resize_shortest_edge: shortest_edge must be an int >= 1, "
                         f"got {shortest_edge!r}")
    size = shortest_edge_size(image.shape[0], image.shape[1], int(shortest_edge))
    return resize(image, size, resample)


def resample_name(op: str, resample) -> str:
    """A resampling mode as its name: the names themselves or PIL's integer codes."""
    if isinstance(resample, (int, np.integer)) and not isinstance(resample, bool):
        if int(resample) not in PIL_RESAMPLE_CODES:
            raise ValueError(f"{op}: resample code must be one of "
                             f"{sorted(PIL_RESAMPLE_CODES)} (PIL.Image.Resampling), got {resample}")
        return PIL_RESAMPLE_CODES[int(resample)]
    if resample not in RESAMPLE_MODES:
        raise ValueError(f"{op}: resample must be one of {', '.join(map(repr, RESAMPLE_MODES))} "
                         f"or a PIL code 0-5, got {resample!r}")
    return resample


def check_image(op: str, image) -> np.ndarray:
    """``image`` if it is an (H, W, C) or (H, W) uint8 or floating array of at least 1x1;
    TypeError / ValueError naming ``op`` otherwise."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{op}: image must be a numpy.ndarray (H, W, C) or (H, W), "
                        f"got {type(image).__name__}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"{op}: image must be uint8 or floating point, got {image.dtype}")
    if image.ndim not in (2, 3):
        raise ValueError(f"{op}: image must have shape (H, W, C) or (H, W), "
                         f"got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{op}: image must be at least 1x1 pixels, got shape {image.shape}")
    return image


def check_size(op: str, size) -> tuple[int, int]:
    """``size`` as (height, width), two ints >= 1; ValueError naming ``op`` otherwise."""
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ValueError(f"{op}: size must be a pair (height, width), got {size!r}") from None
    for v in (height, width):
        if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1):
            raise ValueError(f"{op}: size must be two ints >= 1 (height, width), got {size!r}")
    return int(height), int(width)
