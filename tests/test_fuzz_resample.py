"""Property-based tests of max_pool2d, adaptive_avg_pool2d and interpolate (tests/fuzzing.py):
random N, C, H, W (1 and SIMD widths included, N = 0 too), windows, strides, paddings,
dilations, ceil mode, output sizes and scale factors, every interpolation mode, NaN and inf
in the pooled inputs, layouts, out= modes, thread counts, on every ISA path. Each result is
within the bound of tests/test_resample.py / test_resample_interpolate.py (max pooling: exact)
and bit for bit the result of the same call on a contiguous copy; wrong kinds of argument
raise TypeError."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastattn
from fastattn import reference
from fuzzing import (FUZZ, LEADING, OUT_MODES, assert_close, bad_kind_call, place, run_checked,
                     values)
from test_resample import box_bound
from test_resample_interpolate import MODES, expected_and_bound

SIDES = st.one_of(st.integers(1, 9), st.sampled_from([15, 16, 17, 31, 33]))


def image(data, ndims=(3, 4), specials=False):
    """(C, H, W) or (N, C, H, W) float32 values in a drawn layout: (Guarded, contiguous copy)."""
    ndim = data.draw(st.sampled_from(ndims), label="ndim")
    shape = ((data.draw(LEADING, label="N"),) if ndim == 4 else ()) + (
        data.draw(st.integers(1, 3), label="C"), data.draw(SIDES, label="H"),
        data.draw(SIDES, label="W"))
    g = place(data, values(data, shape, specials=specials))
    return g, np.array(g.view)


def pair(data, strategy, label):
    return tuple(data.draw(strategy, label=label) for _ in range(2))


@FUZZ
@given(data=st.data())
def test_max_pool2d_matches_reference_any_layout(isa, data):
    g, x = image(data, specials=True)
    k = pair(data, st.integers(1, 4), "kernel_size")
    s = pair(data, st.integers(1, 3), "stride")
    d = pair(data, st.integers(1, 2), "dilation")
    p = tuple(data.draw(st.integers(0, ((kk - 1) * dd + 1) // 2), label="padding")
              for kk, dd in zip(k, d))
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=data.draw(st.booleans()))
    try:
        expected = reference.max_pool2d(x.astype(np.float64), k, **kw)
    except ValueError:
        expected = None
    if expected is None or 0 in expected.shape[-2:] or min(expected.shape[-2:]) < 1:
        with pytest.raises(ValueError, match=r"max_pool2d: the output size .* is too small"):
            fastattn.max_pool2d(x, k, **kw)
        return
    plain = fastattn.max_pool2d(x.copy(), k, **kw)
    np.testing.assert_array_equal(plain, expected)  # a max rounds nothing; NaN where torch's
    mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")
    run_checked(data, mode, lambda out: fastattn.max_pool2d(g.view, k, out=out, **kw),
                expected.shape, inputs=[g], expected=plain)


@FUZZ
@given(data=st.data())
def test_adaptive_avg_pool2d_matches_reference_any_layout(isa, data):
    g, x = image(data, specials=True)
    H, W = x.shape[-2:]
    size = tuple(data.draw(st.one_of(st.none(), st.integers(0, n + 3)), label="output_size")
                 for n in (H, W))
    plain = fastattn.adaptive_avg_pool2d(x.copy(), size)
    with np.errstate(invalid="ignore"):  # inf - inf in a window: NaN, in both
        expected = reference.adaptive_avg_pool2d(x.astype(np.float64), size)
        bound = box_bound(np.nan_to_num(x, posinf=0, neginf=0), expected.shape[-2:]) \
            if expected.size else 0.0
    assert_close(plain, expected, bound)
    mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")
    run_checked(data, mode, lambda out: fastattn.adaptive_avg_pool2d(g.view, size, out=out),
                expected.shape, inputs=[g], expected=plain)


@FUZZ
@given(data=st.data())
def test_interpolate_matches_reference_any_layout(isa, data):
    g, x = image(data, ndims=(4,))
    H, W = x.shape[-2:]
    mode, align_corners, antialias = data.draw(st.sampled_from(MODES), label="mode")
    if data.draw(st.booleans(), label="by size"):
        resize = dict(size=pair(data, st.integers(1, 40), "size"))
    else:
        sf = pair(data, st.sampled_from([0.3, 0.5, 0.77, 1.0, 1.01, 1.5, 2.0, 3.3]), "scale")
        if min(int(n * s) for n, s in zip((H, W), sf)) < 1:
            with pytest.raises(ValueError, match=r"interpolate: scale_factor=.* gives"):
                fastattn.interpolate(x, scale_factor=sf, mode=mode,
                                     align_corners=align_corners, antialias=antialias)
            return
        resize = dict(scale_factor=sf)
    kw = dict(mode=mode, align_corners=align_corners, antialias=antialias, **resize)
    plain = fastattn.interpolate(x.copy(), **kw)
    expected, bound = expected_and_bound(x, mode, align_corners, antialias, resize)
    assert_close(plain, expected, bound)
    mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")
    same = plain.shape == x.shape
    run_checked(data, mode, lambda out: fastattn.interpolate(g.view, out=out, **kw),
                plain.shape, inputs=[g], in_place=g if same and g.view.flags.writeable else None,
                expected=plain)


@FUZZ
@given(data=st.data())
def test_errors(isa, data):
    x = values(data, (1, 2, 6, 7))
    calls = {
        "max_pool2d": lambda a, out=None: fastattn.max_pool2d(a, 2, out=out),
        "adaptive_avg_pool2d": lambda a, out=None: fastattn.adaptive_avg_pool2d(a, 3, out=out),
        "interpolate": lambda a, out=None: fastattn.interpolate(a, size=5, mode="bilinear",
                                                                out=out),
    }
    op = data.draw(st.sampled_from(sorted(calls)), label="op")
    call = calls[op]
    if data.draw(st.booleans(), label="out"):
        bad_kind_call(data, lambda o: call(x, out=o), call(x), op, "out")
    else:
        bad_kind_call(data, call, x, op, "x")
