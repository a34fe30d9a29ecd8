"""gelu (exact / tanh), silu, relu, swiglu against the float64 reference, on every ISA path."""
import numpy as np
import pytest

import fastattn
from fastattn import reference
from conftest import assert_thread_invariant

SIZES = [1, 7, 15, 16, 17, 63, 64, 65, 1000, 4097]


def inputs(rng, n):
    # Mostly the range activations see (|x| < 6), plus the tails where naive formulas cancel.
    x = rng.standard_normal(n) * 3
    x[: n // 8] = rng.uniform(-30, 30, n // 8)
    return x.astype(np.float32)


# Tolerances. gelu exact (core/vec_math.h normal_tail_poly + exp_nonpositive): fit 1.2e-8
# (1 + x^2/2) + exp polynomial 9.1e-8 + roundings of w (division), P(w), the exponent (once,
# |x^2/2| 2^-24 relative: the x^2/2 term) and the products; measured max 2.8e-7 (1 + x^2/2)
# over every third float32 in [2^-30, 13.5] of both signs on all three ISA paths (baseline, no
# FMA, is the worst): rtol 3.2e-7 * (1 + x^2/2) plus a tiny atol for results that underflow
# (|x| > 13.1: off by < 2.3e-38). silu / gelu_tanh: sigmoid = 1/(1 + exp(-u)) is good to a few ulp
# everywhere; the cubic in gelu_tanh adds 2 roundings of u, |u| * 1.2e-7 relative to sigmoid.
def gelu_tolerance(x):
    return 3.2e-7 * (1 + x.astype(np.float64) ** 2 / 2)


def assert_within(y, ref, bound):
    """|y - ref| <= bound element-wise; on failure, report the worst element."""
    excess = np.abs(np.asarray(y, np.float64) - ref) - bound
    i = int(np.argmax(excess))
    assert excess.flat[i] <= 0, f"worst at {i}: got {y.flat[i]!r}, expected {ref.flat[i]!r}"


@pytest.mark.parametrize("n", SIZES)
def test_gelu_exact(isa, rng, n):
    x = inputs(rng, n)
    ref = reference.gelu(x.astype(np.float64))
    y = fastattn.gelu(x)
    assert_within(y, ref, gelu_tolerance(x) * np.abs(ref) + 1e-37)


@pytest.mark.parametrize("n", SIZES)
def test_gelu_tanh(isa, rng, n):
    x = inputs(rng, n)
    ref = reference.gelu(x.astype(np.float64), approximate="tanh")
    y = fastattn.gelu(x, approximate="tanh")
    x64 = x.astype(np.float64)
    u = np.abs(x64) * 1.6 * (1 + 0.045 * x64 ** 2)
    # The float64 reference's own 1 + tanh(u) cancels for u << 0: absolute error |x| * 1.1e-16.
    assert_within(y, ref, (6e-7 + 1.5e-7 * u) * np.abs(ref) + 1.2e-16 * np.abs(x64) + 1e-37)


@pytest.mark.parametrize("n", SIZES)
def test_silu_relu_swiglu(isa, rng, n):
    x, u = inputs(rng, n), rng.standard_normal(n).astype(np.float32)
    x64 = x.astype(np.float64)
    rtol = 6e-7 + 1.2e-7 * np.abs(x64)
    ref = reference.silu(x64)
    assert_within(fastattn.silu(x), ref, rtol * np.abs(ref) + 1e-37)
    np.testing.assert_array_equal(fastattn.relu(x), np.maximum(x, 0))
    ref_sw = reference.swiglu(x64, u.astype(np.float64))
    assert_within(fastattn.swiglu(x, u), ref_sw, (rtol + 1.2e-7) * np.abs(ref_sw) + 1e-37)


def test_special_values(isa):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 88.0, -88.0, -100.0],
                 np.float32)
    # Non-finite inputs follow the formula's IEEE arithmetic, like the NumPy reference:
    # gelu(-inf) = -inf/2 * erfc(inf) = -inf * 0 = NaN; silu(-inf) = -inf * 0 = NaN.
    g = fastattn.gelu(x)
    assert g[0] == 0 and g[2] == np.inf and np.isnan(g[3]) and np.isnan(g[4])
    with np.errstate(invalid="ignore"):
        assert np.isnan(reference.gelu(np.float64(-np.inf)))
    np.testing.assert_allclose(g[5:7], [5e-31, -5e-31], rtol=1e-6)
    s = fastattn.silu(x)
    assert s[2] == np.inf and np.isnan(s[4]) and s[7] == 88.0
    np.testing.assert_allclose(s[8], -88.0 * np.exp(-88.0), rtol=1e-5, atol=1e-37)
    assert abs(s[9]) < 1e-30  # true value -3.7e-42 (subnormal): flushed to -0 is fine
    assert np.isnan(fastattn.relu(x)[4]) and fastattn.relu(x)[3] == 0
    t = fastattn.gelu(x, approximate="tanh")
    assert t[2] == np.inf and np.isnan(t[3]) and np.isnan(t[4])
    assert np.isnan(fastattn.silu(x)[3])


def test_any_shape_strides_and_in_place(isa, rng):
    x = rng.standard_normal((4, 6, 10)).astype(np.float32)
    view = x[:, ::2, ::-1]
    expected = reference.silu(view.astype(np.float64))
    np.testing.assert_allclose(fastattn.silu(view), expected, rtol=2e-6)
    scalar = np.array(1.5, np.float32)
    np.testing.assert_allclose(fastattn.gelu(scalar), reference.gelu(1.5), rtol=1e-6)
    y = x.copy()
    assert fastattn.gelu(y, out=y) is y
    np.testing.assert_array_equal(y, fastattn.gelu(x))


def test_thread_count_does_not_change_bits(isa, rng):
    x = rng.standard_normal(300_001).astype(np.float32)
    for fn in (fastattn.gelu, fastattn.silu, lambda a: fastattn.gelu(a, "tanh")):
        assert_thread_invariant(lambda: fn(x))
    assert_thread_invariant(lambda: fastattn.swiglu(x, x))


def test_gelu_blocking_does_not_change_bits(isa, rng):
    # The kernel runs whole blocks of 4-8 vectors (VecN) and one vector at a time at the ends;
    # each lane goes through the same operations either way, so any slice (other alignment,
    # other blocking) gives the same bits. 4.2M floats (> 16 MiB) take the streaming-store path.
    x = (rng.standard_normal(4_200_003) * 4).astype(np.float32)
    y = fastattn.gelu(x)
    for start, stop in [(1, 1000), (3, 300_007), (17, 4_200_000), (4_199_000, 4_200_003)]:
        np.testing.assert_array_equal(fastattn.gelu(x[start:stop]), y[start:stop])
    assert_thread_invariant(lambda: fastattn.gelu(x))


def test_gelu_matmul_epilogue_gives_the_same_bits(isa, rng):
    # One formula (activation_math.h) for the row-wise kernel and the matmul epilogue: a
    # product with the identity is exact, so the fused GELU must equal gelu() bit for bit.
    x = (rng.standard_normal((37, 70)) * 4).astype(np.float32)
    y = fastattn.matmul(x, np.eye(70, dtype=np.float32), activation="gelu")
    np.testing.assert_array_equal(y, fastattn.gelu(x))
