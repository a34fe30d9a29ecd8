"""Pooling and resizing of (..., H, W) images, as PyTorch defines them, in plain NumPy.

max_pool2d and adaptive_avg_pool2d loop over the windows. interpolate is linear and
separable: ``out = Ry @ x @ Rx^T`` with one dense resampling matrix per axis whose row o
holds output o's weights on the input pixels (not for NaN inputs: a dense product spreads a
NaN through zero weights to every output of its row)."""
import math

import numpy as np


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """out[..., i, j] = max over a < k_h, b < k_w of
    x[..., i s_h - p_h + a d_h, j s_w - p_w + b d_w], taps outside the input skipped (they are
    -inf here)."""
    (kh, kw), (ph, pw), (dh, dw) = _pair(kernel_size), _pair(padding), _pair(dilation)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    H, W = x.shape[-2:]

    def out_size(n, k, s, p, d):
        size = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        # ceil mode: the last window must start inside the input or its left padding
        return size - 1 if ceil_mode and (size - 1) * s >= n + p else size

    OH, OW = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    # -inf padding, wide enough for ceil mode's last window
    Hp = max(H + 2 * ph, (OH - 1) * sh + (kh - 1) * dh + 1)
    Wp = max(W + 2 * pw, (OW - 1) * sw + (kw - 1) * dw + 1)
    xp = np.full(x.shape[:-2] + (Hp, Wp), -np.inf, dtype=x.dtype)
    xp[..., ph:ph + H, pw:pw + W] = x
    out = np.full(x.shape[:-2] + (OH, OW), -np.inf, dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            rows = slice(a * dh, a * dh + (OH - 1) * sh + 1, sh)
            cols = slice(b * dw, b * dw + (OW - 1) * sw + 1, sw)
            tap = xp[..., rows, cols]
            out = np.maximum(out, tap)  # np.maximum propagates NaN, as torch
    return out


def adaptive_avg_pool2d(x, output_size):
    """out[..., i, j] = mean of x[..., floor(i H / OH) : ceil((i + 1) H / OH), (same for W)]."""
    H, W = x.shape[-2:]
    OH, OW = (n if s is None else s for s, n in zip(_pair(output_size), (H, W)))
    out = np.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)
    for i in range(OH):
        h0, h1 = (i * H) // OH, -(-((i + 1) * H) // OH)
        for j in range(OW):
            w0, w1 = (j * W) // OW, -(-((j + 1) * W) // OW)
            out[..., i, j] = x[..., h0:h1, w0:w1].mean(axis=(-2, -1))
    return out


# -- interpolate: one resampling matrix per axis ------------------------------------------------

def _scale(n_in, n_out, align_corners, scale_factor):
    """Input step per output step: (n_in - 1) / (n_out - 1) aligning corners, else
    1 / scale_factor when one is given (torch's recompute_scale_factor=None), else n_in / n_out."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale_factor if scale_factor else n_in / n_out


def _keys_cubic(d, a):
    """Keys' cubic convolution kernel at distance d."""
    d = abs(d)
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    if d < 2:
        return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a
    return 0.0


def _matrix(n_in, n_out, mode, align_corners, antialias, scale_factor):
    R = np.zeros((n_out, n_in))
    if mode == "nearest":
        # torch's legacy rule, computed in float32 as its kernel does
        scale = (np.float32(1.0 / scale_factor) if scale_factor
                 else np.float32(n_in) / np.float32(n_out))
        for o in range(n_out):
            src = o if n_out == n_in else o // 2 if n_out == 2 * n_in else \
                min(math.floor(np.float32(o) * scale), n_in - 1)
            R[o, src] = 1.0
        return R
    scale = _scale(n_in, n_out, align_corners, scale_factor)
    if antialias and n_in == n_out:  # torch skips an axis whose size does not change
        return np.eye(n_in)
    if antialias:
        # the filter (triangle, or cubic with a = -0.5) stretched by the downscale factor,
        # centred on scale (o + 1/2) in pixel-edge coordinates, weights normalised
        stretch = max(scale, 1.0)
        for o in range(n_out):
            centre = scale * (o + 0.5)
            for j in range(n_in):
                d = (j + 0.5 - centre) / stretch
                R[o, j] = max(0.0, 1 - abs(d)) if mode == "bilinear" else _keys_cubic(d, -0.5)
            if R[o].sum() != 0:
                R[o] /= R[o].sum()
        return R
    for o in range(n_out):
        if mode == "bilinear":
            if n_in == n_out:   # torch copies when the sizes are equal
                R[o, o] = 1.0
                continue
            s = scale * o if align_corners else max(scale * (o + 0.5) - 0.5, 0.0)
            i0 = min(math.floor(s), n_in - 1)
            lam = min(max(s - i0, 0.0), 1.0)
            R[o, i0] += 1 - lam
            R[o, min(i0 + 1, n_in - 1)] += lam
        else:  # bicubic: 4 taps, each clamped to the border
            s = scale * o if align_corners else scale * (o + 0.5) - 0.5
            i = min(math.floor(s), n_in - 1)
            t = min(max(s - i, 0.0), 1.0)
            for m, d in zip(range(-1, 3), (1 + t, t, 1 - t, 2 - t)):
                R[o, min(max(i + m, 0), n_in - 1)] += _keys_cubic(d, -0.75)
    return R


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                antialias=False):
    """out = Ry @ x @ Rx^T over the last two axes; output size ``size``, or
    floor(n * scale_factor) with the coordinate transform using 1 / scale_factor."""
    H, W = x.shape[-2:]
    align_corners = bool(align_corners)
    if size is not None:
        (OH, OW), scales = _pair(size), (None, None)
    else:
        scales = _pair(scale_factor)
        OH, OW = math.floor(H * scales[0]), math.floor(W * scales[1])
    Ry = _matrix(H, OH, mode, align_corners, antialias, scales[0])
    Rx = _matrix(W, OW, mode, align_corners, antialias, scales[1])
    return Ry @ x @ Rx.T
