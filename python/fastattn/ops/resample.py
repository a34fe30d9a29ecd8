"""Pooling and resizing of NCHW images: max_pool2d, adaptive_avg_pool2d, interpolate.

All three are one separable kernel (``fastattn._core.resample``) driven by per-axis tap tables
(``resample_taps``): which input rows / columns each output row / column reads, and with which
weights. This module validates arguments (PyTorch's rules and error cases), works out the
output size, builds the two tables and runs the kernel over the N*C planes.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _core
from .. import _layout
from .. import _validate as v
from . import resample_taps as taps

MODES = ("nearest", "bilinear", "bicubic")


def _pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as (height, width)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(v.integer(op, name, item, minimum) for item in items)


def _planes(op: str, x, ndims=(3, 4)) -> np.ndarray:
    """x as float32 (C, H, W) or (N, C, H, W) with C, H, W > 0."""
    x = v.float32_array(op, "x", x)
    if x.ndim not in ndims:
        expected = " or ".join(f"{d}-D" for d in ndims)
        layouts = {3: "(C, H, W)", 4: "(N, C, H, W)"}
        raise ValueError(f"{op}: x must be {expected} "
                         f"{' or '.join(layouts[d] for d in ndims)}, got shape "
                         f"{v.shape_str(x.shape)}")
    if 0 in x.shape[-3:]:
        raise ValueError(f"{op}: x must have non-zero channels, height and width, got shape "
                         f"{v.shape_str(x.shape)}")
    return x


def _run(op: str, x: np.ndarray, out_hw, rows, cols, reduce: str, out) -> np.ndarray:
    """Applies the row and column tables to every (H, W) plane of x into out (lead axes of x,
    then out_hw)."""
    shape = x.shape[:-2] + tuple(out_hw)
    out = v.prepare_out(op, out, shape, {"x": x})
    if out.size == 0:
        return out
    H, W = x.shape[-2:]
    xc = _layout.contiguous(x).reshape(-1, H, W)

    def target(o):
        # out may be x itself (same shape and view, allowed by prepare_out): the kernel needs
        # them apart, so that case goes through a temporary
        view = _layout.contiguous_or_none(o)
        if view is None or np.may_share_memory(view, xc):
            return None
        return view.reshape(-1, *out_hw)

    def kernel(o):
        _core.resample(xc, o, rows[0], rows[1], cols[0], cols[1], reduce)

    target_view = target(out)
    if target_view is not None:
        kernel(target_view)
        return out
    tmp = np.empty(shape, dtype=np.float32)
    kernel(tmp.reshape(-1, *out_hw))
    np.copyto(out, tmp)
    return out


# -- max_pool2d ---------------------------------------------------------------------------------

def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                     ceil_mode: bool) -> int:
    """torch's pooling_output_shape: floor (or ceil) of
    ``(size + 2 padding - dilation (kernel - 1) - 1) / stride + 1``, and in ceil mode one less
    when the last window would start beyond the input and its left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def max_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """2-D max pooling of ``x (N, C, H, W)`` or ``(C, H, W)``, as torch's ``max_pool2d``.

    ``out[n, c, i, j] = max_{a, b} x[n, c, i s_h - p_h + a d_h, j s_w - p_w + b d_w]`` over
    ``a < k_h, b < k_w`` with taps in the padding skipped (never a -inf that wins).
    ``kernel_size``, ``stride`` (default: ``kernel_size``), ``padding`` and ``dilation`` are
    ints or (height, width) pairs; ``padding`` at most half the dilated kernel. Output size
    ``floor((H + 2p - d (k - 1) - 1) / s) + 1`` (``ceil`` with ``ceil_mode``, where the last
    window must still start inside the input or its left padding). A NaN in a window makes the
    output NaN, as torch. Exact: a max rounds nothing."""
    op = "max_pool2d"
    x = _planes(op, x)
    kh, kw = _pair(op, "kernel_size", kernel_size, 1)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    sh, sw = (kh, kw) if no_stride else _pair(op, "stride", stride, 1)  # torch: [] = kernel
    ph, pw = _pair(op, "padding", padding, 0)
    dh, dw = _pair(op, "dilation", dilation, 1)
    ceil_mode = v.flag(op, "ceil_mode", ceil_mode)
    for name, p, k, d in (("height", ph, kh, dh), ("width", pw, kw, dw)):
        if p > ((k - 1) * d + 1) // 2:
            raise ValueError(f"{op}: padding must be at most half the dilated kernel size "
                             f"((k - 1) d + 1) // 2 = {((k - 1) * d + 1) // 2} along the {name}, "
                             f"got padding={p} (kernel_size={k}, dilation={d})")
    H, W = x.shape[-2:]
    OH = pool_output_size(H, kh, sh, ph, dh, ceil_mode)
    OW = pool_output_size(W, kw, sw, pw, dw, ceil_mode)
    if OH < 1 or OW < 1:
        raise ValueError(f"{op}: the output size ({OH}, {OW}) is too small: input (H, W) = "
                         f"({H}, {W}) with kernel_size=({kh}, {kw}), padding=({ph}, {pw}), "
                         f"dilation=({dh}, {dw}); the dilated kernel must fit the padded input")
    rows = taps.max_pool_taps(H, OH, kh, sh, ph, dh)
    cols = taps.max_pool_taps(W, OW, kw, sw, pw, dw)
    return _run(op, x, (OH, OW), rows, cols, "max", out)


# -- adaptive_avg_pool2d ------------------------------------------------------------------------

def adaptive_avg_pool2d(x: np.ndarray, output_size, out: np.ndarray | None = None) -> np.ndarray:
    """Adaptive average pooling of ``x (N, C, H, W)`` or ``(C, H, W)`` to ``output_size``, as
    ``torch.nn.functional.adaptive_avg_pool2d``.

    ``output_size``: an int or an (OH, OW) pair whose None entries keep the input size. Output
    row i averages input rows ``[floor(i H / OH), ceil((i + 1) H / OH))``, columns likewise
    (windows overlap when OH does not divide H). Computed as ``sum_a sum_b (1/k_h)(1/k_w) x``:
    within ``(k_h + k_w + 2) 2^-24`` of the window mean's magnitude (docs/resample.md)."""
    op = "adaptive_avg_pool2d"
    x = _planes(op, x)
    H, W = x.shape[-2:]
    items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(items) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    OH, OW = (size if item is None else v.integer(op, "output_size", item, 0)
              for item, size in zip(items, (H, W)))
    rows, cols = taps.adaptive_avg_taps(H, OH), taps.adaptive_avg_taps(W, OW)
    return _run(op, x, (OH, OW), rows, cols, "sum", out)


# -- interpolate --------------------------------------------------------------------------------

def _scale_factors(op: str, scale_factor) -> tuple[float, float]:
    items = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
    if len(items) != 2:
        raise ValueError(f"{op}: scale_factor must be a number or a pair (height, width), got "
                         f"{scale_factor!r}")
    for s in items:
        if isinstance(s, bool) or not isinstance(s, numbers.Real):
            raise TypeError(f"{op}: scale_factor must be a number or a pair of numbers, got "
                            f"{type(s).__name__}")
    return tuple(v.positive_float(op, "scale_factor", s) for s in items)


def interpolate(x: np.ndarray, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, antialias: bool = False,
                out: np.ndarray | None = None) -> np.ndarray:
    """Resizes ``x (N, C, H, W)``, as ``torch.nn.functional.interpolate`` (4-D input).

    ``size`` (int or (OH, OW)) or ``scale_factor`` (number or pair; the output is
    ``floor(H * scale_factor)``, and the coordinate transform uses ``1 / scale_factor`` as
    torch does with ``recompute_scale_factor=None``), exactly one of the two.
    ``mode``: ``"nearest"`` (torch's legacy rule: input ``min(floor(i scale), H - 1)``),
    ``"bilinear"`` or ``"bicubic"`` (Keys' cubic, A = -0.75, border pixels replicated).
    ``align_corners`` (interpolating modes only; None means False) maps corner pixel centres
    onto each other. ``antialias=True`` (bilinear / bicubic) uses torch's antialiased kernels:
    the filter's support widened by the downscale factor, weights normalised (bicubic's
    A = -0.5 there, as PIL). Every output is a weighted sum of at most a few taps per axis:
    within ``(k_h + k_w + 2) 2^-24 sum |w x|`` of the exact value (docs/resample.md)."""
    op = "interpolate"
    x = _planes(op, x, ndims=(4,))
    v.one_of(op, "mode", mode, MODES)
    antialias = v.flag(op, "antialias", antialias)
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners can only be set with mode 'bilinear' or "
                             f"'bicubic', got mode='nearest' and align_corners={align_corners!r}")
        if antialias:
            raise ValueError(f"{op}: antialias=True needs mode 'bilinear' or 'bicubic', got "
                             f"mode='nearest'")
        align_corners = False
    else:
        align_corners = bool(v.flag(op, "align_corners", align_corners, optional=True))
    H, W = x.shape[-2:]
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size and scale_factor must be given, got "
                         f"size={size!r} and scale_factor={scale_factor!r}")
    if size is not None:
        items = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        if len(items) != 2:
            raise ValueError(f"{op}: size must be an int or a pair (OH, OW) for a 4-D input, "
                             f"got {size!r}")
        OH, OW = (v.integer(op, "size", s, 1) for s in items)
        scales = (None, None)
    else:
        scales = _scale_factors(op, scale_factor)
        OH, OW = (math.floor(n * s) for n, s in zip((H, W), scales))
        if OH < 1 or OW < 1:
            raise ValueError(f"{op}: scale_factor={scale_factor!r} gives the output size "
                             f"({OH}, {OW}) for input (H, W) = ({H}, {W}); it must be >= 1")
    rows = taps.interpolate_taps(H, OH, mode, align_corners, antialias, scales[0])
    cols = taps.interpolate_taps(W, OW, mode, align_corners, antialias, scales[1])
    return _run(op, x, (OH, OW), rows, cols, "sum", out)
