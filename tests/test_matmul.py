"""matmul (blocked sgemm, GEMV path, batching, PackedMatrix, fused epilogue) against the
float64 reference, on every ISA path.

Tolerance. Every output is a float32 FMA chain over k (or chains over KC blocks added in order,
or for the M <= 4 dot form Vec::size interleaved chains and a pairwise hsum - never deeper than
the plain chain): each step rounds once with unit roundoff
u = 2^-24 relative to the partial sum, and a partial sum is bounded by (|A| @ |B|)[i, j], so
    |C - C_exact| <= (K + 2) u (|A| @ |B|)          elementwise
(Higham's gamma_K bound for recursive summation, +2 for the final rounding and slack). This is
the worst case; it scales with K and holds for any data, so the tests need no tuning. The
epilogue adds one rounding for + bias, the activation's own error (a few 1e-7 relative; inputs
are scaled so the pre-activation values are O(1)), its slope (<= 1.13 for GELU, 1.1 for SiLU)
times the product's error, and one rounding for + residual.
"""
import numpy as np
import pytest

import fastattn
from fastattn import reference
from conftest import assert_epilogue_within, assert_thread_invariant

U = 2.0 ** -24
ACTIVATIONS = [None, "relu", "gelu", "gelu_tanh", "silu"]


def operands(rng, *shapes):
    """Normal entries scaled by K^-1/4 each, so a product entry is O(1) (activations in range)."""
    k = shapes[0][-1]
    return [(rng.standard_normal(s) / max(k, 1) ** 0.25).astype(np.float32) for s in shapes]


def tolerance(a64, b64, k):
    return (k + 2) * U * np.matmul(np.abs(a64), np.abs(b64)) + 1e-30


def check(y, a, b, transpose_a=False, transpose_b=False, bias=None, activation=None,
          residual=None):
    """y against the float64 reference, with the bound above (epilogue terms included)."""
    f64 = (lambda x: None if x is None else np.asarray(x, np.float64))
    a64, b64 = f64(a), f64(b)
    if transpose_a and a64.ndim >= 2:
        a64 = np.swapaxes(a64, -1, -2)
    if transpose_b and b64.ndim >= 2:
        b64 = np.swapaxes(b64, -1, -2)
    k = a64.shape[-1]
    s = np.matmul(a64, b64)
    tol = tolerance(a64, b64, k)
    z = s if bias is None else s + f64(bias)
    expected = reference.matmul(a64, b64, bias=f64(bias), activation=activation,
                                residual=f64(residual))
    assert_epilogue_within(y, expected, z, tol, residual=residual,
                           epilogue=bias is not None or activation is not None)


# Sizes around every tile and block size: MR = 4 / 6 / 12 (baseline / AVX2 / AVX-512), NR = 8 /
# 16 / 32, KC = 256, MC = 240; 1, odd sizes and K = 1.
SHAPES = [(1, 1, 1), (1, 7, 1), (5, 3, 1), (3, 5, 7), (5, 15, 9), (6, 16, 17), (7, 17, 31),
          (11, 31, 13), (12, 32, 8), (13, 33, 64), (4, 8, 255), (6, 9, 256), (7, 8, 257),
          (12, 16, 40), (24, 64, 100), (18, 47, 256),
          (239, 18, 40), (240, 17, 33), (241, 47, 70), (2, 700, 300), (97, 130, 513)]


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_shapes(isa, rng, m, n, k):
    a, b = operands(rng, (m, k), (k, n))
    check(fastattn.matmul(a, b), a, b)


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("m,n,k", [(37, 29, 41), (3, 45, 70), (1, 19, 300)])
def test_transposes(isa, rng, ta, tb, m, n, k):
    a, b = operands(rng, (k, m) if ta else (m, k), (n, k) if tb else (k, n))
    check(fastattn.matmul(a, b, transpose_a=ta, transpose_b=tb), a, b, ta, tb)


@pytest.mark.parametrize("m", range(1, 9))
@pytest.mark.parametrize("layout", ["kn", "nk"])
def test_small_m(isa, rng, m, layout):
    # M <= 4 takes the GEMV path: axpy over rows of a (K, N) weight, dots along the rows of an
    # (N, K) weight; M > 4 the blocked kernel.
    a, w = operands(rng, (m, 301), (301, 67) if layout == "kn" else (67, 301))
    bias, r = rng.standard_normal(67).astype(np.float32), rng.standard_normal((m, 67)).astype(np.float32)
    tb = layout == "nk"
    check(fastattn.matmul(a, w, transpose_b=tb), a, w, transpose_b=tb)
    y = fastattn.matmul(a, w, transpose_b=tb, bias=bias, activation="gelu", residual=r)
    check(y, a, w, transpose_b=tb, bias=bias, activation="gelu", residual=r)


def test_strided_and_negative_stride_views(isa, rng):
    big_a, big_b = operands(rng, (90, 200), (200, 90))
    a = big_a[::-2, 3::3]           # (45, 66), negative row stride, column stride 3
    b = big_b[5:71, ::-4]           # (66, 23), negative column stride
    check(fastattn.matmul(a, b), a, b)
    out = np.zeros((45, 46), np.float32)[:, ::2]  # non-contiguous out: written through a temp
    y = fastattn.matmul(a, b, out=out)
    assert y is out
    check(out, a, b)
    bb = np.broadcast_to(b[:1], (66, 23))  # zero row stride
    check(fastattn.matmul(a, bb), a, bb)
    check(fastattn.matmul(a[:3], b), a[:3], b)     # GEMV path through strides
    raw = np.zeros(66 * 23 * 4 + 1, np.uint8)[1:].view(np.float32)  # misaligned: copied
    raw[:] = b.ravel()
    mis = raw.reshape(66, 23)
    check(fastattn.matmul(a, mis), a, mis)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("m,n,k", [(3, 40, 70), (50, 37, 300), (13, 20, 600)])
def test_epilogue(isa, rng, activation, m, n, k):
    # K > KC = 256: the epilogue must run once, after the last K block
    a, b = operands(rng, (m, k), (k, n))
    bias = rng.standard_normal(n).astype(np.float32)
    res = rng.standard_normal((m, n)).astype(np.float32)
    for kw in ({"bias": bias}, {"residual": res}, {"bias": bias, "residual": res}, {}):
        y = fastattn.matmul(a, b, activation=activation, **kw)
        check(y, a, b, activation=activation, **kw)
    res_t = np.ascontiguousarray(res.T).T  # residual with strided rows
    check(fastattn.matmul(a, b, residual=res_t, bias=bias, activation=activation), a, b,
          bias=bias, activation=activation, residual=res_t)


def test_out_is_residual(isa, rng):
    a, b = operands(rng, (20, 300), (300, 30))
    r = rng.standard_normal((20, 30)).astype(np.float32)
    y = r.copy()
    assert fastattn.matmul(a, b, residual=y, out=y, activation="silu") is y
    check(y, a, b, activation="silu", residual=r)


@pytest.mark.parametrize("sa,sb", [((2, 1, 5, 7), (3, 7, 4)), ((4, 5, 6), (6, 3)),
                                   ((6,), (2, 6, 3)), ((5, 6), (6,)), ((3, 1, 4, 9), (1, 2, 9, 8)),
                                   ((32, 128, 64), (32, 64, 128))])
def test_batch_broadcasting(isa, rng, sa, sb):
    a, b = operands(rng, sa, sb)
    y = fastattn.matmul(a, b)
    assert y.shape == np.matmul(a, b).shape
    check(y, a, b)
    n = y.shape[-1] if len(sb) > 1 else None
    if n is not None and y.ndim >= 2:
        bias = rng.standard_normal(n).astype(np.float32)
        res = rng.standard_normal(y.shape).astype(np.float32)
        check(fastattn.matmul(a, b, bias=bias, activation="relu", residual=res), a, b,
              bias=bias, activation="relu", residual=res)


def test_batch_with_transposes(isa, rng):
    q, k = operands(rng, (4, 10, 16), (4, 12, 16))
    check(fastattn.matmul(q, k, transpose_b=True), q, k, transpose_b=True)
    v = operands(rng, (4, 12, 7))[0]
    check(fastattn.matmul(k, v, transpose_a=True), k, v, transpose_a=True)


@pytest.mark.parametrize("m,n", [(3, 5), (8, 9)])
def test_large_k(isa, rng, m, n):
    a, b = operands(rng, (m, 65536), (65536, n))
    check(fastattn.matmul(a, b), a, b)
    bt = np.ascontiguousarray(b.T)
    check(fastattn.matmul(a, bt, transpose_b=True), a, bt, transpose_b=True)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("m", [1, 3, 4, 5, 37])
def test_packed_matrix(isa, rng, transpose, m):
    a, w = operands(rng, (m, 300), (70, 300) if transpose else (300, 70))
    p = fastattn.PackedMatrix(w, transpose=transpose)
    assert p.shape == (300, 70)
    np.testing.assert_array_equal(p.unpacked(), w.T if transpose else w)
    bias = rng.standard_normal(70).astype(np.float32)
    y = fastattn.matmul(a, p, bias=bias, activation="gelu_tanh")
    check(y, a, w, transpose_b=transpose, bias=bias, activation="gelu_tanh")
    if m > 4:  # the blocked kernel, same operations as the unpacked call: same bits
        np.testing.assert_array_equal(
            y, fastattn.matmul(a, w, transpose_b=transpose, bias=bias, activation="gelu_tanh"))
    a3 = operands(rng, (2, 3, 300))[0]  # leading dimensions fold into rows
    check(fastattn.matmul(a3, p), a3, w, transpose_b=transpose)


def test_packed_matrix_under_another_isa(rng):
    a, w = operands(rng, (9, 40), (40, 21))
    p = fastattn.PackedMatrix(w)
    for isa in fastattn.available_isas():
        with fastattn.use_isa(isa):
            check(fastattn.matmul(a, p), a, w)


def test_thread_count_does_not_change_bits(isa, rng):
    a, b = operands(rng, (300, 280), (280, 200))
    assert_thread_invariant(lambda: fastattn.matmul(a, b, activation="gelu"))
    x, w = operands(rng, (2, 600), (5000, 600))
    assert_thread_invariant(lambda: fastattn.matmul(x, w, transpose_b=True))
    assert_thread_invariant(lambda: fastattn.matmul(x, w.T))
    p = fastattn.PackedMatrix(w, transpose=True)
    assert_thread_invariant(lambda: fastattn.matmul(x[:1], p))
    q, k = operands(rng, (8, 100, 64), (8, 64, 120))
    assert_thread_invariant(lambda: fastattn.matmul(q, k))
    # one thread: small-product path reading A and B in place; two: the blocked kernel
    s1, s2 = operands(rng, (256, 200), (200, 256))
    assert_thread_invariant(lambda: fastattn.matmul(s1, s2, bias=s2[0], activation="silu"))


def test_empty_and_k_zero(isa, rng):
    assert fastattn.matmul(np.zeros((0, 5), np.float32), np.ones((5, 3), np.float32)).shape == (0, 3)
    assert fastattn.matmul(np.zeros((4, 5), np.float32), np.ones((5, 0), np.float32)).shape == (4, 0)
    bias = np.array([-1.0, 2.0, 0.5], np.float32)
    y = fastattn.matmul(np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32), bias=bias,
                        activation="relu")
    np.testing.assert_array_equal(y, np.maximum(np.broadcast_to(bias, (2, 3)), 0))


def test_special_values(isa):
    a = np.ones((7, 20), np.float32)
    b = np.ones((20, 18), np.float32)
    a[2, 3] = np.nan
    b[4, 5] = np.inf
    y = fastattn.matmul(a, b)
    assert np.all(np.isnan(y[2])) and np.isinf(y[0, 5]) and y[0, 0] == 20
    y1 = fastattn.matmul(a[2:3], b)
    assert np.all(np.isnan(y1))
    big = np.full((3, 4), 1e30, np.float32)
    assert np.all(np.isinf(fastattn.matmul(big, big.T)))


def test_errors():
    a = np.ones((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"matmul: a has shape \(3, 5\) and b has shape \(4, 2\): "
                                         r"inner dimensions 5 and 4 differ"):
        fastattn.matmul(a, np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="matmul: b must be float32, got float64"):
        fastattn.matmul(a, np.ones((5, 2)))
    with pytest.raises(TypeError, match="matmul: a must be a numpy.ndarray"):
        fastattn.matmul([[1.0]], np.ones((1, 1), np.float32))
    b = np.ones((5, 2), np.float32)
    with pytest.raises(ValueError, match=r"matmul: bias has shape \(3,\), expected \(2,\)"):
        fastattn.matmul(a, b, bias=np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"matmul: residual has shape \(2, 3\), expected \(3, 2\)"):
        fastattn.matmul(a, b, residual=np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="matmul: activation must be None, 'relu'"):
        fastattn.matmul(a, b, activation="tanh")
    with pytest.raises(TypeError, match="matmul: transpose_b must be a bool"):
        fastattn.matmul(a, b, transpose_b=1)
    out = np.empty((3, 2), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="matmul: out is read-only"):
        fastattn.matmul(a, b, out=out)
    with pytest.raises(ValueError, match=r"matmul: out has shape \(2, 2\), expected \(3, 2\)"):
        fastattn.matmul(a, b, out=np.empty((2, 2), np.float32))
    sq = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="matmul: out overlaps a"):
        fastattn.matmul(sq, sq, out=sq)
    with pytest.raises(ValueError, match="batch dimensions \\(2,\\) and \\(3,\\) do not broadcast"):
        fastattn.matmul(np.ones((2, 3, 5), np.float32), np.ones((3, 5, 2), np.float32))
    with pytest.raises(ValueError, match="matmul: a must have at least 1 dimension"):
        fastattn.matmul(np.ones((), np.float32), b)
    with pytest.raises(TypeError, match="PackedMatrix: w must be float32"):
        fastattn.PackedMatrix(np.ones((3, 3)))
    with pytest.raises(ValueError, match="inner dimensions 5 and 3 differ"):
        fastattn.matmul(a, fastattn.PackedMatrix(np.ones((3, 2), np.float32)))


def test_reference_is_the_unfused_composition(rng):
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 5))
    bias, res = rng.standard_normal(5), rng.standard_normal((4, 5))
    y = reference.matmul(a, b, bias=bias, activation="relu", residual=res)
    np.testing.assert_allclose(y, np.maximum(a @ b + bias, 0) + res)
    np.testing.assert_allclose(reference.matmul(b, a, transpose_a=True, transpose_b=True),
                               (a @ b).T)
