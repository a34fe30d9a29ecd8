"""Property-based tests of conv2d and conv_transpose2d (tests/fuzzing.py): random batch,
channels (0 input channels included), groups (depthwise included), image and kernel sizes,
strides, paddings ("same" / "valid" / pairs), dilations, output_padding, the fused epilogue,
layouts of every operand (strided, reversed, transposed, broadcast, misaligned, inside
sentinel-filled buffers), out= modes (in place on the residual; overlapping out refused),
thread counts 1-3, on every ISA path. Every result must be within the bound of
tests/test_conv.py and bit-identical to the same call on contiguous copies; wrong kinds of
argument raise TypeError."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import fastattn
from fuzzing import FUZZ, OUT_MODES, bad_kind_call, place, run_checked, values, view
from test_conv import ACTIVATIONS, check_conv, check_transpose


def scaled(data, shape, k):
    """Normal values scaled by k^-1/2: an output sums k terms, so it is O(1)."""
    return (values(data, shape) * max(k, 1) ** -0.5).astype(np.float32)


@FUZZ
@given(data=st.data())
def test_conv2d_matches_reference_any_layout(isa, data):
    n = data.draw(st.integers(0, 2), label="N")
    groups = data.draw(st.integers(1, 3), label="groups")
    depthwise = data.draw(st.booleans(), label="depthwise")
    cg = 1 if depthwise else data.draw(st.integers(0, 4), label="C / groups")
    mg = data.draw(st.integers(1, 4), label="Cout / groups")
    kh, kw = data.draw(st.integers(1, 4), label="kh"), data.draw(st.integers(1, 4), label="kw")
    stride = (data.draw(st.integers(1, 3), label="sh"), data.draw(st.integers(1, 3), label="sw"))
    dilation = (data.draw(st.integers(1, 2), label="dh"), data.draw(st.integers(1, 2), label="dw"))
    padding = data.draw(st.sampled_from(["same", "valid", 0, 1, 2, (0, 1), (2, 1)]),
                        label="padding")
    if padding == "same":
        stride = (1, 1)
    pads = {"same": (0, 0), "valid": (0, 0)}.get(padding, padding)
    ph, pw = (pads, pads) if isinstance(pads, int) else pads
    ek = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    h = max(data.draw(st.integers(1, 14), label="H"), ek[0] - 2 * ph)
    w = max(data.draw(st.integers(1, 14), label="W"), ek[1] - 2 * pw)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    c, cout = cg * groups, mg * groups
    activation = data.draw(st.sampled_from(ACTIVATIONS), label="activation")
    x = values(data, (n, c, h, w))
    wt = scaled(data, (cout, cg, kh, kw), cg * kh * kw)
    bias = values(data, (cout,)) if data.draw(st.booleans(), label="bias") else None
    out_shape = fastattn.conv2d(np.zeros((n, c, h, w), np.float32), wt, **geometry).shape
    residual = values(data, out_shape) if data.draw(st.booleans(), label="residual") else None
    mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")

    gx, gw = place(data, x), place(data, wt)
    gb = None if bias is None else place(data, bias)
    gr = None if residual is None else place(data, residual, writable=mode == "in_place")
    x, wt = np.array(gx.view), np.array(gw.view)
    bias = None if gb is None else np.array(gb.view)
    residual = None if gr is None else np.array(gr.view)
    plain = fastattn.conv2d(x, wt, bias, activation=activation, residual=residual, **geometry)
    check_conv(plain, x, wt, bias, activation, residual, **geometry)
    run_checked(data, mode, lambda out: fastattn.conv2d(
        gx.view, gw.view, view(gb), activation=activation, residual=view(gr), out=out,
        **geometry), out_shape, inputs=[gx, gw, gb, gr], in_place=gr, expected=plain)


@FUZZ
@given(data=st.data())
def test_conv_transpose2d_matches_reference_any_layout(isa, data):
    n = data.draw(st.integers(0, 2), label="N")
    groups = data.draw(st.integers(1, 3), label="groups")
    cg, mg = data.draw(st.integers(1, 4), label="C / groups"), data.draw(st.integers(1, 4))
    kh, kw = data.draw(st.integers(1, 4), label="kh"), data.draw(st.integers(1, 4), label="kw")
    stride = (data.draw(st.integers(1, 3), label="sh"), data.draw(st.integers(1, 3), label="sw"))
    dilation = (data.draw(st.integers(1, 2), label="dh"), data.draw(st.integers(1, 2), label="dw"))
    padding = (data.draw(st.integers(0, 2), label="ph"), data.draw(st.integers(0, 2), label="pw"))
    output_padding = tuple(data.draw(st.integers(0, max(s, d) - 1), label="output_padding")
                           for s, d in zip(stride, dilation))
    h, w = data.draw(st.integers(1, 9), label="H"), data.draw(st.integers(1, 9), label="W")
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    ow = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    assume(oh >= 1 and ow >= 1)
    geometry = dict(stride=stride, padding=padding, output_padding=output_padding,
                    groups=groups, dilation=dilation)
    x = values(data, (n, cg * groups, h, w))
    wt = scaled(data, (cg * groups, mg, kh, kw), cg * kh * kw)
    bias = values(data, (mg * groups,)) if data.draw(st.booleans(), label="bias") else None
    out_shape = (n, mg * groups, oh, ow)
    mode = data.draw(st.sampled_from([m for m in OUT_MODES if m != "in_place"]), label="out mode")
    gx, gw = place(data, x), place(data, wt)
    gb = None if bias is None else place(data, bias)
    x, wt = np.array(gx.view), np.array(gw.view)
    bias = None if gb is None else np.array(gb.view)
    plain = fastattn.conv_transpose2d(x, wt, bias, **geometry)
    check_transpose(plain, x, wt, bias, **geometry)
    run_checked(data, mode, lambda out: fastattn.conv_transpose2d(
        gx.view, gw.view, view(gb), out=out, **geometry), out_shape, inputs=[gx, gw, gb],
        expected=plain)


@FUZZ
@given(data=st.data())
def test_errors(isa, data):
    x, w = values(data, (1, 4, 6, 6)), values(data, (2, 4, 3, 3))
    conv = fastattn.conv2d
    bad = data.draw(st.sampled_from(["x kind", "weight kind", "bias kind", "residual kind",
                                     "out kind", "transpose kind", "channels", "too small",
                                     "negative padding", "groups"]))
    if bad == "x kind":
        bad_kind_call(data, lambda a: conv(a, w), x, "conv2d", "x")
    elif bad == "weight kind":
        bad_kind_call(data, lambda a: conv(x, a), w, "conv2d", "weight")
    elif bad == "bias kind":
        bad_kind_call(data, lambda a: conv(x, w, a), np.ones(2, np.float32), "conv2d", "bias")
    elif bad == "residual kind":
        bad_kind_call(data, lambda a: conv(x, w, residual=a), np.ones((1, 2, 4, 4), np.float32),
                      "conv2d", "residual")
    elif bad == "out kind":
        bad_kind_call(data, lambda a: conv(x, w, out=a), np.ones((1, 2, 4, 4), np.float32),
                      "conv2d", "out")
    elif bad == "transpose kind":
        bad_kind_call(data, lambda a: fastattn.conv_transpose2d(a, w.transpose(1, 0, 2, 3)), x,
                      "conv_transpose2d", "x")
    elif bad == "channels":
        with pytest.raises(ValueError, match=r"conv2d: weight has shape .* x has 5 channels"):
            conv(values(data, (1, 5, 6, 6)), w)
    elif bad == "too small":
        with pytest.raises(ValueError, match=r"conv2d: the kernel .* is larger than the padded"):
            conv(values(data, (1, 4, 2, 6)), w)
    elif bad == "negative padding":
        with pytest.raises(ValueError, match=r"conv2d: padding must be >= 0"):
            conv(x, w, padding=data.draw(st.sampled_from([-1, (0, -2)])))
    else:
        with pytest.raises(ValueError, match=r"conv2d: groups = 3 must divide"):
            conv(x, w, groups=3)
