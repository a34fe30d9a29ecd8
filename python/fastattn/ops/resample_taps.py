"""Per-axis tap tables of the resampling ops: for each output coordinate, which input
coordinates it reads and with which weights (PyTorch's rules, docs/resample.md).

Each builder returns ``(index, weight)``: ``index`` int64 ``(n_out, k)`` with ``-1`` for "no
tap", ``weight`` float32 of the same shape (None for max pooling). The kernel
(``fastattn._core.resample``) applies a row table and a column table separably:
``out[i, j] = sum_a sum_b wy[i, a] wx[j, b] x[iy[i, a], ix[j, b]]`` (or the max).

Weights are computed in float64 and rounded once to float32; the index choices follow torch
exactly (legacy ``nearest`` even in float32 arithmetic, as its kernel computes it), so the
pixels read are the same and only the weights' last bits differ from torch's float32 ones.
"""
from __future__ import annotations

import math

import numpy as np

CUBIC_A = -0.75            # torch's bicubic (Keys' cubic convolution with A = -0.75)
CUBIC_A_ANTIALIAS = -0.5   # torch's antialiased bicubic (PIL's filter)


def _tables(index: np.ndarray, weight: np.ndarray | None):
    index = np.ascontiguousarray(index, dtype=np.int64)
    if weight is not None:
        weight = np.ascontiguousarray(weight, dtype=np.float32)
    return index, weight


# -- pooling ------------------------------------------------------------------------------------

def max_pool_taps(size: int, out_size: int, kernel: int, stride: int, padding: int,
                  dilation: int):
    """Window of output o: inputs ``o * stride - padding + t * dilation``, t < kernel; taps in
    the padding are -1 (torch skips them; its padding never wins a max)."""
    index = (np.arange(out_size)[:, None] * stride - padding
             + np.arange(kernel)[None, :] * dilation)
    index[(index < 0) | (index >= size)] = -1
    return _tables(index, None)


def adaptive_avg_taps(size: int, out_size: int):
    """Window of output o: ``[floor(o size / out), ceil((o + 1) size / out))`` (torch's
    start_index / end_index), each tap weighted 1 / (window length)."""
    o = np.arange(out_size)
    start = o * size // out_size
    end = -(-(o + 1) * size // out_size)
    k = int(np.max(end - start)) if out_size else 0
    index = start[:, None] + np.arange(k)[None, :]
    inside = index < end[:, None]
    weight = np.where(inside, 1.0 / (end - start)[:, None], 0.0)
    return _tables(np.where(inside, index, -1), weight)


# -- interpolation ------------------------------------------------------------------------------

def area_scale(size: int, out_size: int, align_corners: bool, scale_factor: float | None):
    """torch's area_pixel_compute_scale: the input step per output step."""
    if align_corners:
        return (size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / scale_factor if scale_factor else size / out_size


def nearest_taps(size: int, out_size: int, scale_factor: float | None):
    """torch's legacy ``nearest``: ``min(floor(o * scale), size - 1)`` with ``scale`` and the
    product in float32 as its kernel computes them (the float64 product can floor to the other
    side of an integer); sizes equal or doubled take torch's shortcuts o and o // 2."""
    o = np.arange(out_size)
    if out_size == size:
        index = o
    elif out_size == 2 * size:
        index = o >> 1
    else:
        scale = (np.float32(1.0 / scale_factor) if scale_factor
                 else np.float32(size) / np.float32(out_size))
        index = np.minimum(np.floor(o.astype(np.float32) * scale).astype(np.int64), size - 1)
    return _tables(index[:, None], np.ones((out_size, 1)))


def linear_taps(size: int, out_size: int, align_corners: bool, scale_factor: float | None):
    """torch's bilinear, per axis: source ``s = scale o`` (align_corners) or
    ``max(scale (o + 1/2) - 1/2, 0)``; taps ``i0 = min(floor(s), size - 1)`` and
    ``i1 = min(i0 + 1, size - 1)`` weighted ``1 - l`` and ``l = clamp(s - i0, 0, 1)``. Equal
    sizes copy (torch's shortcut, also when a scale_factor rounds back to the same size)."""
    o = np.arange(out_size, dtype=np.float64)
    if out_size == size:
        index = np.stack([o, o], axis=1).astype(np.int64)
        return _tables(index, np.tile([1.0, 0.0], (out_size, 1)))
    scale = area_scale(size, out_size, align_corners, scale_factor)
    s = scale * o if align_corners else np.maximum(scale * (o + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(s), size - 1)
    lam = np.clip(s - i0, 0.0, 1.0)
    i1 = np.minimum(i0 + 1, size - 1)
    return _tables(np.stack([i0, i1], axis=1), np.stack([1.0 - lam, lam], axis=1))


def cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution weights of the 4 taps at distances 1 + t, t, 1 - t, 2 - t:
    ``|d| <= 1: ((a + 2)|d| - (a + 3)) d^2 + 1``, ``1 < |d| < 2: a(|d|^3 - 5|d|^2 + 8|d| - 4)``."""
    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return np.stack([far(1 + t), near(t), near(1 - t), far(2 - t)], axis=-1)


def cubic_taps(size: int, out_size: int, align_corners: bool, scale_factor: float | None):
    """torch's bicubic, per axis: source ``s = scale o`` or ``scale (o + 1/2) - 1/2`` (not
    clamped), ``i = min(floor(s), size - 1)``, ``t = clamp(s - i, 0, 1)``, taps i - 1 .. i + 2
    each clamped to [0, size - 1] (border replicated) with Keys' weights, A = -0.75."""
    o = np.arange(out_size, dtype=np.float64)
    scale = area_scale(size, out_size, align_corners, scale_factor)
    s = scale * o if align_corners else scale * (o + 0.5) - 0.5
    i = np.minimum(np.floor(s), size - 1)
    t = np.clip(s - i, 0.0, 1.0)
    index = np.clip(i[:, None] + np.arange(-1, 3)[None, :], 0, size - 1)
    return _tables(index, cubic_weights(t, CUBIC_A))


def triangle_filter(x: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(x))


def cubic_filter(x: np.ndarray, a: float = CUBIC_A_ANTIALIAS) -> np.ndarray:
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def antialias_taps(size: int, out_size: int, mode: str, align_corners: bool,
                   scale_factor: float | None):
    """torch's antialiased bilinear / bicubic (PIL's resampling), per axis: the filter (a
    triangle of support 1, or the cubic with A = -0.5 of support 2) is stretched by the
    downscale factor ``scale`` when > 1; output o centred at ``c = scale (o + 1/2)`` reads the
    inputs ``j`` in ``[max(int(c - support + 1/2), 0), min(int(c + support + 1/2), size))``
    with weights ``filter((j - c + 1/2) / max(scale, 1))``, normalised to sum 1. Equal sizes
    copy (torch skips such an axis, also when a scale_factor rounds back to the same size)."""
    if out_size == size:
        return _tables(np.arange(size)[:, None], np.ones((size, 1)))
    interp = 2 if mode == "bilinear" else 4
    scale = area_scale(size, out_size, align_corners, scale_factor)
    support = interp / 2 * scale if scale >= 1.0 else interp / 2
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    max_taps = int(math.ceil(support)) * 2 + 1
    centre = scale * (np.arange(out_size) + 0.5)
    xmin = np.maximum((centre - support + 0.5).astype(np.int64), 0)   # int(): toward zero
    xsize = np.clip(np.minimum((centre + support + 0.5).astype(np.int64), size) - xmin,
                    0, max_taps)
    k = max(int(np.max(xsize)) if out_size else 0, 1)
    j = np.arange(k)[None, :]
    inside = j < xsize[:, None]
    filt = triangle_filter if mode == "bilinear" else cubic_filter
    w = np.where(inside, filt((j + xmin[:, None] - centre[:, None] + 0.5) * invscale), 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=w.copy(), where=total != 0)
    return _tables(np.where(inside, j + xmin[:, None], -1), w)


def interpolate_taps(size: int, out_size: int, mode: str, align_corners: bool,
                     antialias: bool, scale_factor: float | None):
    """The tap table of one axis for ``fastattn.interpolate``."""
    if mode == "nearest":
        return nearest_taps(size, out_size, scale_factor)
    if antialias:
        return antialias_taps(size, out_size, mode, align_corners, scale_factor)
    if mode == "bilinear":
        return linear_taps(size, out_size, align_corners, scale_factor)
    return cubic_taps(size, out_size, align_corners, scale_factor)
