"""Property-based tests of matmul and PackedMatrix (tests/fuzzing.py): random M, N, K (0 and 1
included, around the tile sizes), 2-D, batched with broadcasting, 1-D operands, transposes,
PackedMatrix, the fused epilogue, layouts of every operand (broadcast and misaligned ones
included), out= modes (in place on the residual; overlapping out refused), thread counts,
operand scales from 1e-12 to 1e12, on every ISA path. Every result must be within the bound of
tests/test_matmul.py (``check``); wrong kinds of argument raise TypeError."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastattn
from fuzzing import FUZZ, OUT_MODES, bad_kind_call, place, run_checked, values, view
from test_matmul import ACTIVATIONS, check

# Sizes around the micro-kernel tiles (MR 4 / 6 / 12, NR 8 / 16 / 32) and KC = 256.
SIZES = st.one_of(st.integers(0, 8), st.sampled_from([12, 13, 16, 17, 31, 33, 64, 65]))
K_SIZES = st.one_of(SIZES, st.sampled_from([255, 256, 257]))
FORMS = ["2d", "2d", "batched", "a_1d", "b_1d", "packed"]


def operand_shapes(data, form, m, n, k):
    """Stored shapes of a and b for op(a) (.., M, K) and op(b) (.., K, N), and the transposes."""
    ta = data.draw(st.booleans(), label="transpose_a") if form != "a_1d" else False
    tb = data.draw(st.booleans(), label="transpose_b") if form not in ("b_1d",) else False
    a_shape = (k,) if form == "a_1d" else ((k, m) if ta else (m, k))
    b_shape = (k,) if form == "b_1d" else ((n, k) if tb else (k, n))
    if form == "batched":
        # batch axes broadcast: each side gets 0..2 axes of 1..3, or 1
        lead = [data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(1, 2)))]
        a_lead = tuple(d if data.draw(st.booleans()) else 1 for d in lead)
        b_lead = tuple(d if data.draw(st.booleans()) else 1 for d in lead)
        b_lead = b_lead[data.draw(st.integers(0, len(b_lead))):]  # fewer axes broadcast too
        a_shape, b_shape = a_lead + a_shape, b_lead + b_shape
    return a_shape, b_shape, ta, tb


@FUZZ
@given(data=st.data())
def test_matches_reference_any_layout(isa, data):
    form = data.draw(st.sampled_from(FORMS), label="form")
    m, n = data.draw(SIZES, label="M"), data.draw(SIZES, label="N")
    k = data.draw(K_SIZES, label="K")
    a_shape, b_shape, ta, tb = operand_shapes(data, form, m, n, k)
    activation = data.draw(st.sampled_from(ACTIVATIONS), label="activation")
    has_n = form != "b_1d"
    use_bias = has_n and data.draw(st.booleans(), label="bias")
    use_residual = data.draw(st.booleans(), label="residual")
    # operands scaled by K^-1/4 (an O(1) product, activations in range, as test_matmul's), then
    # by s and 1/s; without an epilogue the product itself may be scaled by up to 1e12 too
    s = data.draw(st.sampled_from([1.0, 1.0, 1e-12, 1e12]), label="scale a / b")
    plain_product = activation is None and not use_bias and not use_residual
    t = data.draw(st.sampled_from([1.0, 1e-12, 1e12]), label="scale c") if plain_product else 1.0
    unit = max(k, 1) ** -0.25
    a = (values(data, a_shape) * (unit * s)).astype(np.float32)
    b = (values(data, b_shape) * (unit * t / s)).astype(np.float32)
    bias = values(data, (n,)) if use_bias else None
    expected_shape = np.matmul(np.swapaxes(a, -1, -2) if ta and a.ndim >= 2 else a,
                               np.swapaxes(b, -1, -2) if tb and b.ndim >= 2 else b).shape
    residual = values(data, expected_shape) if use_residual else None
    mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")

    ga, gb = place(data, a), place(data, b)
    gbias = None if bias is None else place(data, bias)
    gres = None if residual is None else place(data, residual, writable=mode == "in_place")
    a, b = np.array(ga.view), np.array(gb.view)
    bias = None if gbias is None else np.array(gbias.view)
    residual = None if gres is None else np.array(gres.view)
    kw = dict(bias=bias, activation=activation, residual=residual)

    packed = None
    if form == "packed":
        packed = fastattn.PackedMatrix(gb.view, transpose=tb)
        if k:  # K = 0: test_packed_matrix_with_k_zero below
            np.testing.assert_array_equal(packed.unpacked(), b.T if tb else b)

    def matmul(a_, b_, bias_, residual_, out=None):
        if packed is not None:  # packed in the orientation chosen: no transpose_b
            return fastattn.matmul(a_, packed, transpose_a=ta, bias=bias_, activation=activation,
                                   residual=residual_, out=out)
        return fastattn.matmul(a_, b_, transpose_a=ta, transpose_b=tb, bias=bias_,
                               activation=activation, residual=residual_, out=out)

    plain = matmul(a, b, bias, residual)
    check(plain, a, b, ta, tb, **kw)
    y = run_checked(data, mode, lambda out: matmul(ga.view, gb.view, view(gbias), view(gres), out),
                    expected_shape, inputs=[ga, gb, gbias, gres], in_place=gres,
                    # a PackedMatrix is a copy: out may share memory with the packed weight
                    overlaps=[g for g in (ga, None if packed else gb, gbias, gres)
                              if g is not None])
    if y is not None:
        check(y, a, b, ta, tb, **kw)


@FUZZ
@given(data=st.data())
def test_errors(isa, data):
    m, n, k = (data.draw(st.integers(1, 6)) for _ in range(3))
    a, b = values(data, (m, k)), values(data, (k, n))
    mm = fastattn.matmul
    bad = data.draw(st.sampled_from(["a kind", "b kind", "bias kind", "residual kind",
                                     "out kind", "inner", "bias shape", "residual shape",
                                     "activation", "flag", "batch", "0-d", "packed kind"]))
    if bad == "a kind":
        bad_kind_call(data, lambda x: mm(x, b), a, "matmul", "a")
    elif bad == "b kind":
        bad_kind_call(data, lambda x: mm(a, x), b, "matmul", "b")
    elif bad == "bias kind":
        bad_kind_call(data, lambda x: mm(a, b, bias=x), np.ones(n, np.float32), "matmul", "bias")
    elif bad == "residual kind":
        bad_kind_call(data, lambda x: mm(a, b, residual=x), np.ones((m, n), np.float32),
                      "matmul", "residual")
    elif bad == "out kind":
        bad_kind_call(data, lambda x: mm(a, b, out=x), np.ones((m, n), np.float32), "matmul",
                      "out")
    elif bad == "packed kind":
        bad_kind_call(data, lambda x: fastattn.PackedMatrix(x), b, "PackedMatrix", "w")
    elif bad == "inner":
        with pytest.raises(ValueError, match=r"matmul: .* inner dimensions"):
            mm(a, values(data, (k + 1, n)))
    elif bad == "bias shape":
        with pytest.raises(ValueError, match=r"matmul: bias has shape"):
            mm(a, b, bias=np.ones(n + 1, np.float32))
    elif bad == "residual shape":
        with pytest.raises(ValueError, match=r"matmul: residual has shape"):
            mm(a, b, residual=np.ones((m, n + 1), np.float32))
    elif bad == "activation":
        act = data.draw(st.sampled_from(["tanh", "GELU", "", "gelu_new"]))
        with pytest.raises(ValueError, match=r"matmul: activation must be None, 'relu'"):
            mm(a, b, activation=act)
    elif bad == "flag":
        flag = data.draw(st.sampled_from([0, 1, "yes", None, 1.0]))
        with pytest.raises(TypeError, match=r"matmul: transpose_(a|b) must be a bool"):
            mm(a, b, **{data.draw(st.sampled_from(["transpose_a", "transpose_b"])): flag})
    elif bad == "batch":
        with pytest.raises(ValueError, match=r"matmul: .* do not broadcast"):
            mm(values(data, (2, m, k)), values(data, (3, k, n)))
    else:
        with pytest.raises(ValueError, match=r"matmul: (a|b) must have at least 1 dimension"):
            scalar = np.ones((), np.float32)
            mm(scalar, b) if data.draw(st.booleans()) else mm(a, scalar)


def test_packed_matrix_with_k_zero(isa):
    # Found by the fuzz test above: unpacked() reshapes the panels with -1 and K = 0.
    p = fastattn.PackedMatrix(np.zeros((0, 12), np.float32))
    np.testing.assert_array_equal(p.unpacked(), np.zeros((0, 12), np.float32))
    for other in fastattn.available_isas():
        with fastattn.use_isa(other):
            np.testing.assert_array_equal(fastattn.matmul(np.zeros((3, 0), np.float32), p), 0)


@pytest.mark.parametrize("activation", [0, np.zeros(3, np.float32)])
def test_core_activation_of_wrong_type(activation):
    # Found by tests/hostile_cases.py. The public wrapper checks first (TypeError); the
    # private binding must still raise TypeError or ValueError, as for its other arguments.
    from fastattn import _core
    a, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    out = np.empty((2, 4), np.float32)
    with pytest.raises((TypeError, ValueError)):
        _core.matmul(a, b, out, None, activation, None)
