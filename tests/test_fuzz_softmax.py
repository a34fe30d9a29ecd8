"""Property-based tests of softmax / log_softmax (tests/fuzzing.py): random shapes (0 and 1
included), axes (out of range too), layouts, out= modes, thread counts, logits from 1e-30 to
1e30 with NaN / inf, on every ISA path. The result must equal the float64 reference within the
bounds of tests/test_softmax.py, bit for bit the result of the same call on contiguous copies;
wrong kinds of argument raise TypeError."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import fastattn
from fastattn import reference
from fuzzing import (FUZZ, OUT_MODES, assert_close, bad_kind_call, place, run_checked, shapes,
                     values)
from test_softmax import SOFTMAX_RTOL

OPS = {"softmax": (fastattn.softmax, reference.softmax),
       "log_softmax": (fastattn.log_softmax, reference.log_softmax)}
SCALES = (1.0, 1.0, 0.1, 4.0, 30.0, 1e3, 1e-30, 1e30)

# Per element, from tests/test_softmax.py: softmax is within SOFTMAX_RTOL relative for logits
# spread over < 8, and the rounding of x - max adds |x - max| 2^-24 relative beyond that
# (docs/ops.md); the kernel's exp flushes results below 2^-125 to 0 (docs/numerics.md), and
# y = exp(x - max) / sum <= exp(x - max), so results below 2^-125 may be 0.
# log_softmax: 4e-7 (|y| + log n + 1) + 2e-6 absolute (test_log_softmax_matches_reference).


def bound(op, x64, ref, axis):
    if op == "softmax":
        with np.errstate(invalid="ignore"):
            spread = np.max(x64, axis=axis, keepdims=True) - x64
        return (SOFTMAX_RTOL + 2.0**-24 * np.nan_to_num(spread)) * np.abs(ref) + 2.0**-125
    n = max(x64.shape[axis], 1)
    return 4e-7 * (np.abs(ref) + np.log(n) + 1) + 2e-6


@pytest.mark.parametrize("op", OPS)
@FUZZ
@given(data=st.data())
def test_matches_reference_any_layout(isa, op, data):
    fn, ref_fn = OPS[op]
    shape = shapes(data, 1, 4)
    ndim = len(shape)
    axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
    x = values(data, shape, scales=SCALES, specials=True)
    mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")
    gx = place(data, x, writable=mode == "in_place")
    x = np.array(gx.view)  # broadcast axes repeat one slice: the data is the view's
    plain = fn(x.copy(), axis=axis)
    if x.size:  # (NumPy's max of an empty axis raises)
        with np.errstate(all="ignore"):
            ref = ref_fn(x.astype(np.float64), axis=axis)
        assert_close(plain, ref, bound(op, x.astype(np.float64), ref, axis))
    run_checked(data, mode, lambda out: fn(gx.view, axis=axis, out=out), shape, inputs=[gx],
                in_place=gx, expected=plain)


@pytest.mark.parametrize("row", [[np.nan], [np.nan, -np.inf], [np.nan] * 5])
def test_slice_of_nan_and_minus_inf_gives_nan(isa, row):
    # Found by the fuzz test above (fixed): the row maximum ignores NaN, so a row whose other entries
    # are all -inf looks entirely masked. docs/ops.md: a slice containing NaN gives NaN.
    x = np.array([row, [0.0] * len(row)], np.float32)
    assert np.all(np.isnan(fastattn.softmax(x)[0]))
    assert np.all(np.isnan(fastattn.log_softmax(x)[0]))


@pytest.mark.parametrize("op", OPS)
@FUZZ
@given(data=st.data())
def test_errors(isa, op, data):
    fn, _ = OPS[op]
    shape = shapes(data, 0, 3, max_size=200)
    x = values(data, shape)
    ndim = len(shape)
    if ndim == 0:
        with pytest.raises(ValueError, match=rf"{op}: x must have at least 1 dimension"):
            fn(x)
        return
    bad = data.draw(st.sampled_from(["axis", "kind", "out kind"]))
    if bad == "axis":
        axis = data.draw(st.sampled_from([ndim, -ndim - 1, 2**31, -2**62, 2**100]))
        with pytest.raises(ValueError, match=rf"{op}: axis {axis} is out of range"):
            fn(x, axis=axis)
    elif bad == "kind":
        bad_kind_call(data, lambda a: fn(a), x, op, "x")
    else:
        bad_kind_call(data, lambda o: fn(x, out=o), x, op, "out")
