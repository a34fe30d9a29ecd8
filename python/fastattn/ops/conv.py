"""conv2d and conv_transpose2d on NCHW float32, with PyTorch's semantics (arguments, output
sizes, what is refused), on the matmul micro-kernels (docs/conv.md)."""
from __future__ import annotations

import numpy as np

from .. import _core
from .. import _layout
from .. import _validate as v
from ..activation_names import KERNEL_ACTIVATIONS

_ACTIVATIONS = (None, *KERNEL_ACTIVATIONS)


def _pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    for item in items:
        if not v.is_integer(item):
            raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
        if item < minimum:
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(items[0]), int(items[1])


def _image(op: str, name: str, x) -> np.ndarray:
    """x as a 4-D (N, C, H, W) float32 array (a 3-D unbatched (C, H, W) one gets N = 1)."""
    x = v.float32_array(op, name, x)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: {name} must be 4-D (N, C, H, W) or 3-D (C, H, W), got "
                         f"shape {v.shape_str(x.shape)}")
    return x if x.ndim == 4 else x[None]


def _weight(op: str, w) -> np.ndarray:
    w = v.float32_array(op, "weight", w)
    if w.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D, got shape {v.shape_str(w.shape)}")
    if w.shape[2] < 1 or w.shape[3] < 1:
        raise ValueError(f"{op}: weight has shape {v.shape_str(w.shape)}, an empty kernel")
    return w


def _conv_padding(padding, kernel, dilation, stride) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, a pair, "same" or "valid"."""
    op = "conv2d"
    if isinstance(padding, str):
        v.one_of(op, "padding", padding, ("same", "valid"))
        if padding == "valid":
            return 0, 0, 0, 0
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride {stride}), as in PyTorch")
        # total d (k - 1) per axis, the odd one extra at the bottom / right (as PyTorch)
        (th, tw) = (d * (k - 1) for k, d in zip(kernel, dilation))
        return th // 2, th - th // 2, tw // 2, tw - tw // 2
    ph, pw = _pair(op, "padding", padding, 0)
    return ph, ph, pw, pw


def _check_channels(op: str, c: int, groups: int, cout: int, per_group: int, weight_shape):
    if c % groups:
        raise ValueError(f"{op}: groups = {groups} must divide the input channels, got "
                         f"{c} channels")
    if per_group != c // groups:
        raise ValueError(f"{op}: weight has shape {v.shape_str(weight_shape)}, which expects "
                         f"{per_group * groups} input channels for groups = {groups}, but x has "
                         f"{c} channels")
    if cout % groups:
        raise ValueError(f"{op}: groups = {groups} must divide the output channels, got {cout}")


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *, stride=1,
           padding=0, dilation=1, groups: int = 1, activation: str | None = None,
           residual: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """2-D convolution (cross-correlation, as ``torch.nn.functional.conv2d``) with a fused
    epilogue: ``act(conv(x, weight) + bias) + residual``.

    x (N, C, H, W) or unbatched (C, H, W); weight (Cout, C / groups, kh, kw); bias (Cout,).
    ``stride`` and ``dilation``: an int or a pair (height, width), >= 1. ``padding``: an int, a
    pair, ``"valid"`` (none) or ``"same"`` (output size = input size; stride 1 only; an odd
    total padding puts the extra row / column at the bottom / right, as PyTorch). Output
    (N, Cout, OH, OW), OH = (H + 2 ph - dh (kh - 1) - 1) // sh + 1.

    ``activation`` (None, "relu", "gelu" (exact), "gelu_tanh", "silu") is applied after the
    bias, then ``residual`` (the output's shape) is added. ``out`` may be ``residual``.

    Accuracy: float32 FMA chains over the C / groups kh kw products of each output,
    |y - y_exact| <= (K + 2) 2^-24 (|w| * |x|) before the epilogue (docs/conv.md). Results do
    not depend on the thread count."""
    op = "conv2d"
    unbatched = isinstance(x, np.ndarray) and x.ndim == 3
    x4, weight = _image(op, "x", x), _weight(op, weight)
    bias = v.optional_float32(op, "bias", bias)
    residual = v.optional_float32(op, "residual", residual)
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"{op}: activation must be None or a str, got {type(activation).__name__}")
    v.one_of(op, "activation", activation, _ACTIVATIONS)
    stride = _pair(op, "stride", stride, 1)
    dilation = _pair(op, "dilation", dilation, 1)
    groups = v.integer(op, "groups", groups, 1)
    n, c, h, w = x4.shape
    cout, per_group, kh, kw = weight.shape
    if cout < 1:
        raise ValueError(f"{op}: weight has shape {v.shape_str(weight.shape)}: no output channels")
    _check_channels(op, c, groups, cout, per_group, weight.shape)
    pt, pb, pl, pr = _conv_padding(padding, (kh, kw), dilation, stride)
    ek = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    if ek[0] > h + pt + pb or ek[1] > w + pl + pr:
        raise ValueError(f"{op}: the kernel ({ek[0]} x {ek[1]} with dilation) is larger than the "
                         f"padded input ({h + pt + pb} x {w + pl + pr})")
    oh = (h + pt + pb - ek[0]) // stride[0] + 1
    ow = (w + pl + pr - ek[1]) // stride[1] + 1
    shape4 = (n, cout, oh, ow)
    shape = shape4[1:] if unbatched else shape4
    if bias is not None:
        v.require_shape(op, "bias", bias, (cout,))
    if residual is not None:
        v.require_shape(op, "residual", residual, shape, "(the shape of the output)")
    out = v.prepare_out(op, out, shape, {"residual": residual})
    for name, arr in (("x", x), ("weight", weight), ("bias", bias)):
        if arr is not None and np.may_share_memory(out, arr):
            raise ValueError(f"{op}: out overlaps {name}; pass a separate array")
    if out.size == 0:
        return out
    if residual is not None:
        # in place on the residual: the kernel keeps partial sums in out, so read a copy
        residual = (residual.copy() if np.may_share_memory(out, residual)
                    else _layout.contiguous(residual)).reshape(shape4)
    x_k, w_k = _layout.contiguous(x4), _layout.contiguous(weight)
    b_k = None if bias is None else _layout.contiguous(bias)

    def run(target):
        _core.conv2d(x_k, w_k, b_k, residual, target.reshape(shape4), stride[0], stride[1],
                     pt, pb, pl, pr, dilation[0], dilation[1], groups, activation)

    return _layout.run_into(out, run, _layout.contiguous_or_none)


def conv_transpose2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
                     stride=1, padding=0, output_padding=0, groups: int = 1, dilation=1,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Transposed 2-D convolution, as ``torch.nn.functional.conv_transpose2d`` (the gradient
    of conv2d with respect to its input; an upsampler for stride > 1).

    x (N, C, H, W) or unbatched (C, H, W); weight (C, Cout / groups, kh, kw); bias (Cout,).
    ``stride``, ``padding`` (>= 0: removed from each side of the output), ``output_padding``
    (added at the bottom / right; each below its stride or its dilation, as PyTorch requires)
    and ``dilation``: an int or a pair. Output size
    OH = (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1.

    Kernel == stride (2x2 stride 2 upsamplers) is a matmul and a copy; other geometries add
    the taps' contributions in a fixed order (docs/conv.md). Results do not depend on the
    thread count."""
    op = "conv_transpose2d"
    unbatched = isinstance(x, np.ndarray) and x.ndim == 3
    x4, weight = _image(op, "x", x), _weight(op, weight)
    bias = v.optional_float32(op, "bias", bias)
    stride = _pair(op, "stride", stride, 1)
    dilation = _pair(op, "dilation", dilation, 1)
    if isinstance(padding, str):
        raise TypeError(f"{op}: padding must be an int or a pair of ints, got {padding!r}")
    padding = _pair(op, "padding", padding, 0)
    output_padding = _pair(op, "output_padding", output_padding, 0)
    groups = v.integer(op, "groups", groups, 1)
    n, c, h, w = x4.shape
    cin, per_group, kh, kw = weight.shape
    if cin != c:
        raise ValueError(f"{op}: weight has shape {v.shape_str(weight.shape)}, expected "
                         f"{c} input channels first (x has {c} channels)")
    if c % groups:
        raise ValueError(f"{op}: groups = {groups} must divide the input channels, got {c}")
    if per_group < 1:
        raise ValueError(f"{op}: weight has shape {v.shape_str(weight.shape)}: no output channels")
    for axis in range(2):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(f"{op}: output_padding must be smaller than either stride or "
                             f"dilation, got output_padding {output_padding}, stride {stride}, "
                             f"dilation {dilation}")
    if h < 1 or w < 1:
        raise ValueError(f"{op}: x has shape {v.shape_str(x.shape)}: no input pixels")
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    ow = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: the output size would be {oh} x {ow} for an input of {h} x {w}: "
                         f"padding {padding} is too large")
    cout = per_group * groups
    shape4 = (n, cout, oh, ow)
    shape = shape4[1:] if unbatched else shape4
    if bias is not None:
        v.require_shape(op, "bias", bias, (cout,))
    out = v.prepare_out(op, out, shape, {})
    for name, arr in (("x", x), ("weight", weight), ("bias", bias)):
        if arr is not None and np.may_share_memory(out, arr):
            raise ValueError(f"{op}: out overlaps {name}; pass a separate array")
    if out.size == 0:
        return out
    x_k, w_k = _layout.contiguous(x4), _layout.contiguous(weight)
    b_k = None if bias is None else _layout.contiguous(bias)

    def run(target):
        _core.conv_transpose2d(x_k, w_k, b_k, target.reshape(shape4), stride[0], stride[1],
                               padding[0], padding[1], output_padding[0], output_padding[1],
                               dilation[0], dilation[1], groups)

    return _layout.run_into(out, run, _layout.contiguous_or_none)
