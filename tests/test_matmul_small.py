"""The small-product path of matmul (one thread, K <= 256, M x N <= 256^2: no packing of A,
no thread team, an exact-row-count tile for the last rows, a one-vector tile for a last
narrow panel), on every ISA path.

Tolerance: the (K + 2) u (|A| @ |B|) bound of tests/test_matmul.py (each output one float32
FMA chain over k; u = 2^-24), widened by the epilogue's terms there. Bits: the small path
runs, for each output element, the same FMA chain from zero over k in order as the blocked
kernel's single K block, then the same epilogue, so the rows of a product computed by the
blocked kernel and the same rows computed as a small product of their own must be equal
bit for bit.
"""
import numpy as np
import pytest

import fastattn
from conftest import assert_thread_invariant
from test_matmul import check, operands

# Row counts 1..13 reach every exact-row tile of every path (MR = 4 / 6 / 12) and a full tile
# plus 1; 31 / 33 around 32. Column counts around the vector widths (4 / 8 / 16 lanes) and the
# panel widths NR = 8 / 16 / 32; K = 1, 31, 33 and the single-block maximum 256.
ROWS = list(range(1, 14)) + [16, 31, 33]
COLS = [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48]
DEPTHS = [1, 31, 33, 256]


def test_shapes(isa, rng):
    for m in ROWS:
        for n in COLS:
            k = DEPTHS[(m + n) % len(DEPTHS)]
            a, b = operands(rng, (m, k), (k, n))
            check(fastattn.matmul(a, b), a, b)


@pytest.mark.parametrize("k", DEPTHS)
def test_square_sizes(isa, rng, k):
    for n in (16, 31, 32, 33, 64, 96):
        a, b = operands(rng, (n, k), (k, n))
        check(fastattn.matmul(a, b), a, b)


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_transposed_and_strided_views(isa, rng, ta, tb):
    for m, n, k in [(13, 33, 31), (31, 17, 33), (5, 9, 1), (33, 1, 64), (1, 31, 33)]:
        a, b = operands(rng, (k, m) if ta else (m, k), (n, k) if tb else (k, n))
        check(fastattn.matmul(a, b, transpose_a=ta, transpose_b=tb), a, b, ta, tb)
    big_a, big_b = operands(rng, (70, 90), (90, 70))
    a = big_a[::-2, 5::2]     # (35, 43): negative row stride, column stride 2 (A copied)
    b = big_b[3:46, ::-3]     # (43, 24): negative column stride (B packed through strides)
    if ta:
        a = np.ascontiguousarray(a.T).T   # column-major: rows with stride 1 element apart
    check(fastattn.matmul(a, b), a, b)


@pytest.mark.parametrize("activation", [None, "relu", "gelu", "gelu_tanh", "silu"])
def test_epilogue(isa, rng, activation):
    for m, n, k in [(1, 33, 31), (7, 16, 33), (13, 31, 64), (12, 48, 256), (33, 9, 17)]:
        a, b = operands(rng, (m, k), (k, n))
        bias = rng.standard_normal(n).astype(np.float32)
        res = rng.standard_normal((m, n)).astype(np.float32)
        for kw in ({"bias": bias}, {"residual": res}, {"bias": bias, "residual": res}, {}):
            check(fastattn.matmul(a, b, activation=activation, **kw), a, b,
                  activation=activation, **kw)


def test_same_bits_as_the_blocked_kernel(isa, rng):
    # 300 x 256 outputs (> 256^2): the blocked kernel; its first m rows again as an m-row
    # product (the small path) must agree exactly, with and without an epilogue, for a
    # transposed A (copied by the small path, packed by the blocked one) too.
    for k in (1, 33, 200):
        a, b = operands(rng, (300, k), (k, 256))
        bias = rng.standard_normal(256).astype(np.float32)
        res = rng.standard_normal((300, 256)).astype(np.float32)
        at = np.ascontiguousarray(a.T)
        full = fastattn.matmul(a, b)
        full_epi = fastattn.matmul(a, b, bias=bias, activation="gelu", residual=res)
        full_add = fastattn.matmul(a, b, bias=bias, residual=res)  # the inline adds
        for m in (1, 5, 11, 12, 13, 31, 33, 64):
            np.testing.assert_array_equal(
                fastattn.matmul(a[:m], b, bias=bias, residual=res[:m]), full_add[:m])
            np.testing.assert_array_equal(fastattn.matmul(a[:m], b), full[:m])
            np.testing.assert_array_equal(
                fastattn.matmul(at[:, :m], b, transpose_a=True), full[:m])
            np.testing.assert_array_equal(
                fastattn.matmul(a[:m], b, bias=bias, activation="gelu", residual=res[:m]),
                full_epi[:m])
        # a tall transposed A (M x K > 512^2: the blocked kernel, not copied) against the
        # one-K-block path reading the same A with contiguous rows
        if k == 200:
            tall = operands(rng, (1400, k))[0]
            np.testing.assert_array_equal(
                fastattn.matmul(np.ascontiguousarray(tall.T), b[:, :9], transpose_a=True),
                fastattn.matmul(tall, b[:, :9]))
        # a narrow last panel (one vector tile): columns sliced off the same product
        for n in (1, 8, 17, 33):
            np.testing.assert_array_equal(fastattn.matmul(a[:40], b[:, :n]), full[:40, :n])


def test_extent_one_axes(isa, rng):
    # stride-0 axes of extent 1 (as the bindings pass them) take the small / GEMV paths
    for m, n, k in [(1, 1, 1), (9, 1, 1), (1, 9, 1), (9, 7, 1), (9, 1, 40), (1, 1, 40)]:
        a, b = operands(rng, (m, k), (k, n))
        check(fastattn.matmul(a, b), a, b)
        bias = rng.standard_normal(n).astype(np.float32)
        out = np.empty((m, n), np.float32)
        assert fastattn.matmul(a, b, bias=bias, activation="relu", out=out) is out
        check(out, a, b, bias=bias, activation="relu")


def test_misaligned_operand_is_copied(isa, rng):
    a, b = operands(rng, (20, 24), (24, 18))
    raw = np.zeros(a.size * 4 + 1, np.uint8)[1:].view(np.float32)
    raw[:] = a.ravel()
    mis = raw.reshape(a.shape)
    assert not mis.flags.aligned
    check(fastattn.matmul(mis, b), mis, b)


def test_thread_invariant(isa, rng):
    a, b = operands(rng, (33, 31), (31, 48))
    bias = rng.standard_normal(48).astype(np.float32)
    assert_thread_invariant(lambda: fastattn.matmul(a, b, bias=bias, activation="silu"))
    assert_thread_invariant(lambda: fastattn.matmul(a.T.copy(), b, transpose_a=True))


def test_b_read_in_place(isa, rng):
    # up to 2 MR rows read full B panels in place (rows contiguous, any row stride), edge
    # panels packed; same bits as the packed reading (more rows) of the same B
    big = operands(rng, (200, 300))[0]
    for m in (1, 5, 7, 8, 13, 24, 25):
        for n in (32, 37, 64):
            b = big[3:3 + 120, 7:7 + n]        # row stride 300, unit column stride
            a = operands(rng, (m, 120))[0]
            y = fastattn.matmul(a, b)
            check(y, a, b)
            tall = np.concatenate([a, operands(rng, (40, 120))[0]])
            np.testing.assert_array_equal(y, fastattn.matmul(tall, b)[:m])


@pytest.mark.parametrize("k", [257, 700])
def test_few_rows_long_k(isa, rng, k):
    # up to 2 MR rows with K > 256 (a few tokens through a layer): the one-K-block path's
    # tiles per K block of 256, each block's chain added to C in order as the blocked
    # kernel does: the same bits as rows of a tall (blocked) product
    a, b = operands(rng, (300, k), (k, 70))
    bias = rng.standard_normal(70).astype(np.float32)
    full = fastattn.matmul(a, b, bias=bias, activation="silu")
    for m in (5, 7, 13, 24):
        y = fastattn.matmul(a[:m], b, bias=bias, activation="silu")
        check(y, a[:m], b, bias=bias, activation="silu")
        np.testing.assert_array_equal(y, full[:m])
