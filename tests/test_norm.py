"""layer_norm / rms_norm against the float64 reference, on every ISA path."""
import numpy as np
import pytest

import fastattn
from fastattn import reference
from conftest import assert_thread_invariant

LENGTHS = [1, 7, 15, 16, 17, 63, 64, 65, 1000, 4097]

# Output magnitude is O(|w| * |x - mean| / std) ~ O(1..4). Error sources: mean and variance
# each ~20 eps relative (compensated blocked sum), rstd one rounding, then 3 roundings in
# (x - mean) * rstd * w + b: a few 1e-7 relative to |y| plus ~1e-7 absolute; 2e-6 covers it
# with margin and still catches any one-ulp-per-term summation bug at these lengths.
ATOL, RTOL = 2e-6, 2e-6


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm(isa, rng, n, affine):
    x = (rng.standard_normal((6, n)) * 3 + 5).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32) if affine else None
    b = rng.standard_normal(n).astype(np.float32) if affine else None
    y = fastattn.layer_norm(x, w, b, eps=1e-5)
    ref = reference.layer_norm(x.astype(np.float64), None if w is None else w.astype(np.float64),
                               None if b is None else b.astype(np.float64), eps=1e-5)
    np.testing.assert_allclose(y, ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("affine", [False, True])
def test_rms_norm(isa, rng, n, affine):
    x = (rng.standard_normal((6, n)) * 2).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32) if affine else None
    y = fastattn.rms_norm(x, w, eps=1e-6)
    ref = reference.rms_norm(x.astype(np.float64), None if w is None else w.astype(np.float64),
                             eps=1e-6)
    np.testing.assert_allclose(y, ref, rtol=RTOL, atol=ATOL)


def test_layer_norm_large_mean_small_variance(isa, rng):
    # mean 1e4, std 1e-1: a one-pass E[x^2] - mean^2 would lose every digit in float32.
    x = (1e4 + 0.1 * rng.standard_normal((4, 1000))).astype(np.float32)
    y = fastattn.layer_norm(x)
    ref = reference.layer_norm(x.astype(np.float64))
    # The reference sees the same float32 inputs, so the only error is the statistics':
    # the corrected mean is good to ~eps * |mean| / n + eps * std, var to ~20 eps relative;
    # (x - mean) is exact, so y is good to a few 1e-6 absolute.
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_constant_rows(isa):
    x = np.full((2, 33), 7.0, np.float32)
    np.testing.assert_array_equal(fastattn.layer_norm(x, eps=1e-5), 0.0)
    y = fastattn.rms_norm(np.zeros((2, 33), np.float32))
    np.testing.assert_array_equal(y, 0.0)


def test_batched_3d_and_in_place(isa, rng):
    x = rng.standard_normal((2, 5, 64)).astype(np.float32)
    w = rng.standard_normal(64).astype(np.float32)
    expected = reference.rms_norm(x.astype(np.float64), w.astype(np.float64))
    out = fastattn.rms_norm(x, w, out=x)
    assert out is x
    np.testing.assert_allclose(x, expected, rtol=RTOL, atol=ATOL)


def test_thread_count_does_not_change_bits(isa, rng):
    x = rng.standard_normal((777, 129)).astype(np.float32)
    w = rng.standard_normal(129).astype(np.float32)
    assert_thread_invariant(lambda: fastattn.layer_norm(x, w, w))
    assert_thread_invariant(lambda: fastattn.rms_norm(x, w))


# -- rows too large to square in float32 (issue 16, case 9) ------------------------------------

@pytest.mark.parametrize("n", [1, 7, 17, 65, 1000])
@pytest.mark.parametrize("magnitude", [1e20, 3e38])
def test_rows_whose_squares_overflow_float32(isa, rng, n, magnitude):
    # |x| >= ~1.8e19: x^2 (and for 3e38 sum(x) too) overflows float32; such rows normalised to
    # 0 (or NaN). They are redone on x scaled by a power of two (exact), so they match the
    # float64 reference as closely as ordinary rows (same tolerance); the ordinary rows around
    # them keep their bits.
    x = (rng.uniform(-1, 1, (5, n)) * magnitude).astype(np.float32)
    x[0] = rng.standard_normal(n).astype(np.float32)  # an ordinary row
    x[3] = np.float32(magnitude)  # a constant row (layer_norm: 0; rms_norm: 1)
    w = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    y = assert_thread_invariant(lambda: fastattn.layer_norm(x, w, b))
    np.testing.assert_allclose(y, reference.layer_norm(x64, w64, b64, eps=1e-5), rtol=RTOL,
                               atol=ATOL)
    np.testing.assert_array_equal(y[0], fastattn.layer_norm(x[:1], w, b)[0])
    y = assert_thread_invariant(lambda: fastattn.rms_norm(x, w))
    np.testing.assert_allclose(y, reference.rms_norm(x64, w64, eps=1e-6), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(y[0], fastattn.rms_norm(x[:1], w)[0])


def test_rows_with_inf_or_nan_still_give_nan(isa):
    x = np.array([[1e30, np.inf, 1.0], [1e30, np.nan, 1.0]], np.float32)
    assert np.all(np.isnan(fastattn.layer_norm(x)))
    assert np.isnan(fastattn.rms_norm(x)[1]).all() and np.isnan(fastattn.rms_norm(x)[0, 1])


def test_eps_beyond_float32_is_refused():
    x = np.ones((2, 4), np.float32)
    for op in (fastattn.layer_norm, fastattn.rms_norm):
        with pytest.raises(ValueError, match=r"eps must be finite in float32"):
            op(x, eps=1e39)
