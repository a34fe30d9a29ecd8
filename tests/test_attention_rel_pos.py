"""attention(..., rel_pos=(rel_h, rel_w)): the decomposed relative-position bias (SAM / ViTDet)
added inside the attention kernel, on every ISA path.

    score[b, h, i, j] = scale q.k + rel_h[b, h, i, j // Kw] + rel_w[b, h, i, j % Kw]

Two kinds of check:
- against the float64 reference (reference.attention(..., rel_pos=...)), with
  test_attention.py's rule: err(kernel) <= 2 err(float32 textbook) + floor (4x on baseline);
  the bias adds one float32 rounding per score in both, so the rule's reasoning is unchanged;
- bit for bit against the same call with the bias materialised as a float mask
  (mask = rel_h[..., j // Kw] + rel_w[..., j % Kw] in float32): the kernel adds the float32 sum
  rel_h + rel_w to the saturated score exactly as it adds a float mask entry, so the results
  must be identical, output and probabilities.
"""
import numpy as np
import pytest

import fastattn
from fastattn import reference
from fastattn.reference.attention import rel_pos_bias
from conftest import assert_thread_invariant
from test_attention import check_against_reference, make_qkv

F64 = np.float64


def tables(rng, lead, kh, kw, magnitude=1.0):
    """Random rel_h (*lead, Kh) and rel_w (*lead, Kw), of the size SAM's q . R terms take."""
    rh = (rng.standard_normal(lead + (kh,)) * magnitude).astype(np.float32)
    rw = (rng.standard_normal(lead + (kw,)) * magnitude).astype(np.float32)
    return rh, rw


def materialised(rh, rw, lead):
    """The bias as a float32 mask of shape (*lead, Kh * Kw): what the kernel must reproduce."""
    return np.broadcast_to(rel_pos_bias(rh, rw), lead + (rh.shape[-1] * rw.shape[-1],)) \
        .astype(np.float32)


def ref_tables(rh, rw, lead):
    return (np.broadcast_to(rh, lead + rh.shape[-1:]), np.broadcast_to(rw, lead + rw.shape[-1:]))


# (B, Hq, Hkv, Lq, Kh, Kw, D): SAM's windows (14 x 14 -> Lk = 196) and a small global grid;
# Lq != Lk (cross-attention over a grid); Kw = 1 and Kh = 1 (the table periods at their
# extremes, Kw > the 128-key block); a single query row and few rows over long keys (the decode
# kernel), few tiles over long keys (the tiled kernel's key split); GQA.
SHAPES = [
    (2, 3, 3, 196, 14, 14, 16),     # SAM window attention (several windows in the batch)
    (1, 2, 2, 256, 16, 16, 32),     # SAM global attention, small grid
    (1, 2, 1, 7, 5, 13, 8),         # cross-attention Lq != Lk, GQA
    (1, 1, 1, 40, 300, 1, 8),       # Kw = 1: one table column per key
    (1, 1, 1, 40, 1, 300, 8),       # Kh = 1, Kw > 128 keys: a row of rel_w spans blocks
    (1, 4, 2, 1, 20, 20, 16),       # Lq = 1: decode kernel
    (1, 2, 2, 3, 32, 40, 16),       # few rows over 1280 keys: decode kernel, split keys
    (1, 1, 1, 130, 32, 40, 8),      # few tiles over 1280 keys: tiled kernel, split keys
]


@pytest.mark.parametrize("b,hq,hkv,lq,kh,kw,d", SHAPES)
def test_matches_reference_and_materialised_bias(isa, rng, b, hq, hkv, lq, kh, kw, d):
    q, k, v = make_qkv(rng, b, hq, hkv, lq, kh * kw, d)
    lead = (b, hq, lq)
    rh, rw = tables(rng, lead, kh, kw)
    out = fastattn.attention(q, k, v, rel_pos=(rh, rw))
    check_against_reference(out, q, k, v, rel_pos=(rh, rw))
    assert np.array_equal(out, fastattn.attention(q, k, v, mask=materialised(rh, rw, lead)))


@pytest.mark.parametrize("causal,window", [(True, None), (False, 5), (True, 30)])
def test_with_causal_and_window(isa, rng, causal, window):
    q, k, v = make_qkv(rng, 1, 2, 2, 100, 120, 16)
    rh, rw = tables(rng, (1, 2, 100), 10, 12)
    out = fastattn.attention(q, k, v, rel_pos=(rh, rw), causal=causal, window=window)
    check_against_reference(out, q, k, v, rel_pos=(rh, rw), causal=causal, window=window)
    bias = materialised(rh, rw, (1, 2, 100))
    assert np.array_equal(out, fastattn.attention(q, k, v, mask=bias, causal=causal,
                                                  window=window))


def test_with_bool_and_float_masks(isa, rng):
    q, k, v = make_qkv(rng, 2, 4, 2, 50, 6 * 9, 16)
    lead = (2, 4, 50)
    rh, rw = tables(rng, lead, 6, 9)
    bias = materialised(rh, rw, lead)
    pad = rng.random((2, 1, 1, 54)) < 0.8  # key padding, broadcast over heads and queries
    pad[..., 0] = True
    out = fastattn.attention(q, k, v, rel_pos=(rh, rw), mask=pad)
    check_against_reference(out, q, k, v, rel_pos=(rh, rw), mask=pad)
    # bias, then the bool mask: masked keys are -inf either way, the others get bias exactly
    assert np.array_equal(out, fastattn.attention(q, k, v, mask=np.where(pad, bias, -np.inf)
                                                  .astype(np.float32)))
    extra = rng.standard_normal((50, 54)).astype(np.float32)
    out = fastattn.attention(q, k, v, rel_pos=(rh, rw), mask=extra)
    check_against_reference(out, q, k, v, rel_pos=(rh, rw), mask=extra)


def test_return_weights(isa, rng):
    q, k, v = make_qkv(rng, 1, 3, 1, 33, 7 * 11, 16)
    lead = (1, 3, 33)
    rh, rw = tables(rng, lead, 7, 11)
    out, w = fastattn.attention(q, k, v, rel_pos=(rh, rw), return_weights=True)
    ref_out, ref_w = reference.attention(q.astype(F64), k.astype(F64), v.astype(F64),
                                         rel_pos=(rh, rw), return_weights=True)
    # probabilities: the score error (a D-term float32 dot product plus the bias, ~D eps |s|)
    # becomes a relative error of the probability; 1e-5 covers D = 16, |s| < 20 with margin
    np.testing.assert_allclose(w, ref_w, rtol=1e-5, atol=1e-7)
    assert np.array_equal(out, fastattn.attention(q, k, v, rel_pos=(rh, rw)))
    out_m, w_m = fastattn.attention(q, k, v, mask=materialised(rh, rw, lead), return_weights=True)
    assert np.array_equal(w, w_m) and np.array_equal(out, out_m)


def test_3d_inputs_and_broadcast_tables(isa, rng):
    q, k, v = make_qkv(rng, 2, 4, 4, 20, 4 * 6, 8)
    rh, rw = tables(rng, (1, 4, 20), 4, 6)          # shared across the batch
    rw1 = rw[:, :1]                                  # shared across batch and heads
    out = fastattn.attention(q, k, v, rel_pos=(rh, rw1))
    full = ref_tables(rh, rw1, (2, 4, 20))
    check_against_reference(out, q, k, v, rel_pos=full)
    assert np.array_equal(out, fastattn.attention(q, k, v, rel_pos=tuple(np.ascontiguousarray(t)
                                                                         for t in full)))
    out3 = fastattn.attention(q[1], k[1], v[1], rel_pos=(rh[0], rw1[0]))
    assert out3.shape == (4, 20, 8) and np.array_equal(out3, out[1])


def test_any_strides(rng):
    q, k, v = make_qkv(rng, 1, 2, 2, 30, 5 * 6, 8)
    rh, rw = tables(rng, (1, 2, 30), 5, 6)
    expected = fastattn.attention(q, k, v, rel_pos=(rh, rw))
    # (Lq, H, K) storage seen as (H, Lq, K); a reversed table axis; a stepped one
    rh_t = np.ascontiguousarray(rh[0].transpose(1, 0, 2)).transpose(1, 0, 2)[None]
    rw_r = np.ascontiguousarray(rw[..., ::-1])[..., ::-1]
    assert np.array_equal(fastattn.attention(q, k, v, rel_pos=(rh_t, rw_r)), expected)
    rw_s = np.repeat(rw, 2, axis=-1)[..., ::2]
    assert np.array_equal(fastattn.attention(q, k, v, rel_pos=[rh, rw_s]), expected)


@pytest.mark.parametrize("shape", [
    (3, 2, 2, 196, 14, 14, 16),   # windows
    (1, 2, 2, 300, 20, 15, 16),   # several query tiles
    (1, 2, 1, 64, 40, 32, 16),    # few tiles over 1280 keys: split keys
    (1, 4, 1, 2, 40, 32, 16),     # decode kernel
])
def test_thread_count_does_not_change_bits(isa, rng, shape):
    b, hq, hkv, lq, kh, kw, d = shape
    q, k, v = make_qkv(rng, b, hq, hkv, lq, kh * kw, d)
    rh, rw = tables(rng, (b, hq, lq), kh, kw)
    assert_thread_invariant(lambda: fastattn.attention(q, k, v, rel_pos=(rh, rw)))
    assert_thread_invariant(lambda: fastattn.attention(q[:, :, :3], k, v, rel_pos=(
        rh[:, :, :3], rw[:, :, :3]), return_weights=True)[1])


def test_sam_bias_from_unscaled_q(rng):
    # SAM's use: rel_h[i, kh] = q_i . Rh[qh(i), kh], rel_w[i, kw] = q_i . Rw[qw(i), kw] with the
    # unscaled q, scale = 1/sqrt(D) on q.k only (the official get_decomposed_rel_pos).
    s, d = 6, 8
    q, k, v = make_qkv(rng, 1, 2, 2, s * s, s * s, d)
    table_h = rng.standard_normal((2 * s - 1, d)).astype(np.float32)
    table_w = rng.standard_normal((2 * s - 1, d)).astype(np.float32)
    coords = np.arange(s)[:, None] - np.arange(s)[None, :] + s - 1
    r_h, r_w = table_h[coords], table_w[coords]              # (S, S, D): [q row, k row]
    qg = q.reshape(1, 2, s, s, d)
    rel_h = np.einsum("bnhwc,hkc->bnhwk", qg, r_h).reshape(1, 2, s * s, s)
    rel_w = np.einsum("bnhwc,wkc->bnhwk", qg, r_w).reshape(1, 2, s * s, s)
    out = fastattn.attention(q, k, v, scale=d ** -0.5, rel_pos=(rel_h, rel_w))
    # the official formula, in float64: attn.view(B, qh, qw, kh, kw) + rel_h[..., None] +
    # rel_w[..., None, :]
    q64, k64 = q.astype(F64), k.astype(F64)
    attn = (q64 * d ** -0.5) @ np.swapaxes(k64, -1, -2)
    attn = attn.reshape(1, 2, s, s, s, s) + rel_h.reshape(1, 2, s, s, s, 1) \
        + rel_w.reshape(1, 2, s, s, 1, s)
    attn = attn.reshape(1, 2, s * s, s * s)
    p = np.exp(attn - attn.max(-1, keepdims=True))
    expected = (p / p.sum(-1, keepdims=True)) @ v.astype(F64)
    # float32 kernel vs float64: ~D eps on the scores, the softmax and a s*s-term sum of v
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_bad_input_errors(rng):
    q, k, v = make_qkv(rng, 2, 4, 2, 5, 6, 8)
    rh, rw = tables(rng, (2, 4, 5), 2, 3)
    att = fastattn.attention
    with pytest.raises(TypeError, match=r"rel_pos must be a pair \(rel_h, rel_w\)"):
        att(q, k, v, rel_pos=rh)
    with pytest.raises(TypeError, match=r"rel_pos must be a pair .* of length 3"):
        att(q, k, v, rel_pos=(rh, rw, rw))
    with pytest.raises(TypeError, match=r"rel_pos\[0\] \(rel_h\) must be float32, got float64"):
        att(q, k, v, rel_pos=(rh.astype(F64), rw))
    with pytest.raises(TypeError, match=r"rel_pos\[1\] \(rel_w\) must be a numpy.ndarray"):
        att(q, k, v, rel_pos=(rh, rw.tolist()))
    with pytest.raises(ValueError, match=r"rel_pos\[0\] \(rel_h\) has shape \(2, 4, 4, 2\), "
                                         r"expected \(B, Hq, Lq, Kh\) = \(2, 4, 5, Kh\)"):
        att(q, k, v, rel_pos=(rh[:, :, :4], rw))
    with pytest.raises(ValueError, match=r"rel_pos\[1\] \(rel_w\) has shape \(2, 2, 5, 3\)"):
        att(q, k, v, rel_pos=(rh, rw[:, :2]))
    with pytest.raises(ValueError, match=r"rel_pos\[1\] \(rel_w\) has shape \(4, 5, 3\), "
                                         r"expected \(B, Hq, Lq, Kw\)"):
        att(q, k, v, rel_pos=(rh, rw[0]))
    with pytest.raises(ValueError, match=r"rel_pos\[0\] \(rel_h\) has shape \(2, 4, 5, 2\), "
                                         r"expected \(Hq, Lq, Kh\) = \(4, 5, Kh\)"):
        att(q[0], k[0], v[0], rel_pos=(rh, rw))
    with pytest.raises(ValueError, match=r"need Kh \* Kw == Lk .* got Kh \* Kw = 4 and Lk = 6"):
        att(q, k, v, rel_pos=(rh, rw[..., :2]))
    with pytest.raises(ValueError, match=r"out overlaps rel_pos\[1\] \(rel_w\)"):
        buf = np.zeros(2 * 4 * 5 * 8, np.float32)
        att(q, k, v, rel_pos=(rh, buf[:120].reshape(2, 4, 5, 3)), out=buf.reshape(2, 4, 5, 8))


def test_empty_shapes(rng):
    q, k, v = make_qkv(rng, 1, 2, 2, 0, 6, 8)
    rh, rw = tables(rng, (1, 2, 0), 2, 3)
    assert fastattn.attention(q, k, v, rel_pos=(rh, rw)).shape == (1, 2, 0, 8)
    q, k, v = make_qkv(rng, 1, 2, 2, 3, 0, 8)
    rh, rw = tables(rng, (1, 2, 3), 0, 5)  # Lk = 0 = 0 * 5: no key, zeros
    out, w = fastattn.attention(q, k, v, rel_pos=(rh, rw), return_weights=True)
    assert np.array_equal(out, np.zeros((1, 2, 3, 8), np.float32)) and w.shape == (1, 2, 3, 0)
