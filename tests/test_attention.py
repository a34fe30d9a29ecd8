"""attention against the float64 reference, on every ISA path.

Tolerance (flash-attention's rule): the kernel's max error against the float64 reference must
stay within 2x the max error of the plain float32 textbook implementation (the same reference
evaluated in float32: materialised scores, stable softmax, two sgemms), plus a small floor.
Both are float32 computations of the same sums (a D-term dot product, an Lk-term softmax sum,
an Lk-term weighted sum of V), so their rounding errors are of the same order; 2x leaves room
for the kernel's different summation order (sequential FMA over D, blocked sums over keys) and
its ~2 ulp SIMD exp. On the baseline path (SSE2, no FMA instruction) every product of a dot
product is rounded before it is added: twice the rounding steps of the FMA-based float32
textbook (NumPy's sgemm uses FMA here), so the factor there is 4. The floor, 1e-6 * max|v| (~16 float32 ulps of the output scale), covers
cases where the textbook result happens to be exact (e.g. a single key)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastattn
from fastattn import reference
from conftest import assert_thread_invariant

F64 = np.float64


def make_qkv(rng, b, hq, hkv, lq, lk, d, dv=None, scale=1.0):
    dv = d if dv is None else dv
    q = (rng.standard_normal((b, hq, lq, d)) * scale).astype(np.float32)
    k = rng.standard_normal((b, hkv, lk, d)).astype(np.float32)
    v = rng.standard_normal((b, hkv, lk, dv)).astype(np.float32)
    return q, k, v


def check_against_reference(out, q, k, v, **kw):
    """Flash-attention's rule: err(kernel) <= 2 err(float32 textbook) + floor."""
    ref64 = reference.attention(q.astype(F64), k.astype(F64), v.astype(F64), **kw)
    ref32 = reference.attention(q, k, v, **kw)
    assert out.shape == ref64.shape and out.dtype == np.float32
    assert not np.any(np.isnan(out))
    err = float(np.max(np.abs(out - ref64), initial=0.0))
    err32 = float(np.max(np.abs(ref32 - ref64), initial=0.0))
    floor = 1e-6 * float(np.max(np.abs(v), initial=1.0))
    factor = 4 if fastattn.get_isa() == "baseline" else 2
    assert err <= factor * err32 + floor, f"error {err:.3g} vs float32 textbook {err32:.3g}"
    return ref64


# (Lq, Lk, D): every D of {1, 16, 63, 64, 80, 128, 256} and every L of {1, 7, 64, 65, 333, 1024}
# appears, on both sides, with Lq < Lk, Lq == Lk and Lq > Lk; around the 6-row micro-kernel,
# the 8/16-lane panels, the 96-row tile and the 128-key block.
SHAPES = [
    (1, 1, 1), (7, 7, 16), (64, 64, 63), (65, 65, 64), (333, 333, 80), (7, 65, 128),
    (65, 7, 256), (1, 333, 64), (64, 1024, 128), (1024, 64, 16), (333, 1024, 64),
    (1024, 1024, 64), (65, 333, 1), (1, 1024, 256), (97, 129, 63),
]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lq,lk,d", SHAPES)
def test_matches_reference(isa, rng, lq, lk, d, causal):
    q, k, v = make_qkv(rng, 1, 2, 1, lq, lk, d)
    check_against_reference(fastattn.attention(q, k, v, causal=causal), q, k, v, causal=causal)


@pytest.mark.parametrize("hq,hkv", [(4, 4), (4, 2), (6, 3), (8, 1), (5, 5)])
@pytest.mark.parametrize("lq", [1, 3, 65])
def test_mha_gqa_mqa(isa, rng, hq, hkv, lq):
    q, k, v = make_qkv(rng, 2, hq, hkv, lq, 200, 32)
    check_against_reference(fastattn.attention(q, k, v), q, k, v)
    check_against_reference(fastattn.attention(q, k, v, causal=True), q, k, v, causal=True)


def test_gqa_head_mapping_is_h_floordiv_group(rng):
    # query head h must read kv head h // (Hq // Hkv) (repeat-interleave), not h % Hkv.
    q, k, v = make_qkv(rng, 1, 4, 2, 5, 9, 8)
    out = fastattn.attention(q, k, v)
    for h in range(4):
        expected = reference.attention(q[:, h:h + 1].astype(F64), k[:, h // 2:h // 2 + 1],
                                       v[:, h // 2:h // 2 + 1])
        np.testing.assert_allclose(out[:, h:h + 1], expected, atol=2e-6)


@pytest.mark.parametrize("dv", [1, 7, 17, 32, 100])
def test_value_dim_differs_from_key_dim(isa, rng, dv):
    q, k, v = make_qkv(rng, 1, 2, 2, 40, 150, 64, dv)
    check_against_reference(fastattn.attention(q, k, v, causal=True), q, k, v, causal=True)


def test_causal_is_bottom_right_aligned(rng):
    q, k, v = make_qkv(rng, 1, 1, 1, 3, 5, 4)
    _, w = fastattn.attention(q, k, v, causal=True, return_weights=True)
    # query i sits at position i + 2: it sees keys 0 .. i + 2
    assert np.array_equal(w[0, 0] > 0, np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0],
                                                  [1, 1, 1, 1, 1]], bool))
    # Lq == Lk: the ordinary lower triangle (PyTorch's is_causal agrees here)
    q, k, v = make_qkv(rng, 1, 1, 1, 6, 6, 4)
    _, w = fastattn.attention(q, k, v, causal=True, return_weights=True)
    assert np.array_equal(w[0, 0] > 0, np.tri(6, dtype=bool))


@pytest.mark.parametrize("window", [1, 5, 64, 200])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lq,lk", [(333, 333), (65, 333), (300, 40)])
def test_sliding_window(isa, rng, window, causal, lq, lk):
    q, k, v = make_qkv(rng, 1, 2, 1, lq, lk, 16)
    out = fastattn.attention(q, k, v, causal=causal, window=window)
    check_against_reference(out, q, k, v, causal=causal, window=window)


@pytest.mark.parametrize("window", [None, "lq+lk", 2**31, 2**62, 2**63 - 1, 2**80])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lq,lk", [(6, 4), (5, 5), (300, 40), (1, 2000), (4, 1100)])
def test_huge_window_is_no_window(isa, rng, window, causal, lq, lk):
    # |p - j| < Lq + Lk for every query position p = i + Lk - Lq and key j, so a window of
    # Lq + Lk or more excludes nothing: the same bits as no window. Windows near 2**63 used to
    # overflow p - W + 1 / p + W (a segfault for Lq > Lk, zero rows otherwise). Shapes: Lq > Lk,
    # Lq == Lk, and the split-KV decode path (Lq = 1, few tiles over long keys).
    q, k, v = make_qkv(rng, 1, 4, 2, lq, lk, 16)
    w = lq + lk if window == "lq+lk" else window
    expected = fastattn.attention(q, k, v, causal=causal)
    check_against_reference(expected, q, k, v, causal=causal)
    assert np.array_equal(fastattn.attention(q, k, v, causal=causal, window=w), expected)
    if lq * lk <= 1200:  # the row-wise weights kernel applies the same rule
        _, p = fastattn.attention(q, k, v, causal=causal, window=w, return_weights=True)
        _, p0 = fastattn.attention(q, k, v, causal=causal, return_weights=True)
        assert np.array_equal(p, p0)


def test_huge_window_reaches_the_kernel_safely(rng):
    # The C++ rule itself drops windows >= Lq + Lk (the wrapper does too): called directly.
    from fastattn import _core
    q, k, v = make_qkv(rng, 1, 2, 1, 6, 4, 8)
    for causal in (False, True):
        expected = fastattn.attention(q, k, v, causal=causal)
        out = np.empty_like(expected)
        _core.attention(q, k, v, out, None, causal, 2**63 - 1, 1 / np.sqrt(8), None)
        assert np.array_equal(out, expected)


def test_window_definition():
    m = reference.attention_mask(3, 5, causal=True, window=2)
    assert np.array_equal(m, np.array([[0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]], bool))
    m = reference.attention_mask(3, 5, window=2)  # |p - j| < 2 with p = i + 2
    assert np.array_equal(m, np.array([[0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 0, 1, 1]], bool))


# Every broadcast shape of (B, Hq, Lq, Lk) = (2, 4, 33, 70): each axis kept or 1, plus the
# lower-rank forms NumPy broadcasting allows.
B, HQ, LQ, LK = 2, 4, 33, 70
MASK_SHAPES = [tuple(dim if (bits >> i) & 1 else 1 for i, dim in enumerate((B, HQ, LQ, LK)))
               for bits in range(16)] + [(LK,), (LQ, LK), (HQ, 1, LK), (1, LK)]


@pytest.mark.parametrize("shape", MASK_SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks_of_every_broadcast_shape(isa, rng, shape, kind):
    q, k, v = make_qkv(rng, B, HQ, 2, LQ, LK, 24)
    if kind == "bool":
        mask = rng.random(shape) < 0.7
    else:
        mask = (rng.standard_normal(shape) * 2).astype(np.float32)
        mask[rng.random(shape) < 0.2] = -np.inf
    out = fastattn.attention(q, k, v, mask=mask)
    check_against_reference(out, q, k, v, mask=mask)
    out_c = fastattn.attention(q, k, v, mask=mask, causal=True, window=20)
    check_against_reference(out_c, q, k, v, mask=mask, causal=True, window=20)


def test_key_padding_mask_is_not_expanded(rng, monkeypatch):
    # The kernel receives a stride-0 view of a (B, 1, 1, Lk) mask, never an expanded copy.
    q, k, v = make_qkv(rng, 2, 4, 4, 50, 60, 8)
    mask = rng.random((2, 1, 1, 60)) < 0.5
    mask[:, :, :, 0] = True
    seen = {}
    real = fastattn._core.attention

    def spy(*args):
        seen["mask"] = args[4]
        return real(*args)

    monkeypatch.setattr(fastattn._core, "attention", spy)
    out = fastattn.attention(q, k, v, mask=mask)
    m = seen["mask"]
    assert m.shape == (2, 4, 50, 60) and m.strides[1] == 0 and m.strides[2] == 0
    assert np.shares_memory(m, mask)
    check_against_reference(out, q, k, v, mask=mask)


def test_fully_masked_rows_give_zeros(isa, rng):
    q, k, v = make_qkv(rng, 1, 2, 1, 40, 300, 16)
    mask = rng.random((40, 300)) < 0.5
    mask[[0, 7, 39]] = False
    out, w = fastattn.attention(q, k, v, mask=mask, return_weights=True)
    assert np.all(out[:, :, [0, 7, 39]] == 0) and np.all(w[:, :, [0, 7, 39]] == 0)
    check_against_reference(out, q, k, v, mask=mask)
    fmask = np.where(mask, np.float32(0), np.float32(-np.inf))
    out_f = fastattn.attention(q, k, v, mask=fmask)
    assert np.all(out_f[:, :, [0, 7, 39]] == 0) and not np.any(np.isnan(out_f))
    # causal with Lq > Lk: the first Lq - Lk queries precede every key
    q, k, v = make_qkv(rng, 1, 1, 1, 300, 100, 16)
    out = fastattn.attention(q, k, v, causal=True)
    assert np.all(out[:, :, :200] == 0) and not np.any(np.isnan(out))
    check_against_reference(out, q, k, v, causal=True)
    # no keys at all
    q, k, v = make_qkv(rng, 1, 2, 2, 5, 0, 8)
    assert np.array_equal(fastattn.attention(q, k, v), np.zeros((1, 2, 5, 8), np.float32))


def test_rows_masked_only_in_early_blocks(isa, rng):
    # A row whose first allowed key comes after several all-masked 128-key blocks, with very
    # negative scores: the running max must not have been replaced by 0 in the empty blocks.
    q, k, v = make_qkv(rng, 1, 1, 1, 4, 700, 16)
    mask = np.zeros((4, 700), bool)
    mask[:, 500:] = True
    bias = np.full((4, 700), -1e4, np.float32)
    out = fastattn.attention(q, k, v, mask=np.where(mask, bias, np.float32(-np.inf)))
    check_against_reference(out, q, k, v, mask=np.where(mask, bias, np.float32(-np.inf)))


@pytest.mark.parametrize("magnitude", [1e2, 1e4])
def test_large_scores_do_not_overflow(isa, rng, magnitude):
    q, k, v = make_qkv(rng, 1, 2, 1, 70, 300, 16)
    q *= magnitude / 4  # |scores| ~ magnitude: exp without max-subtraction would overflow
    out = fastattn.attention(q, k, v, causal=True)
    assert np.all(np.isfinite(out))
    check_against_reference(out, q, k, v, causal=True)
    bias = (rng.standard_normal((70, 300)) * magnitude).astype(np.float32)
    check_against_reference(fastattn.attention(q, k, v, mask=bias), q, k, v, mask=bias)


@pytest.mark.parametrize("lk", [700, 4096])
def test_decode_split_keys(isa, rng, lk):
    # Lq = 1 with few heads: the keys are split into chunks merged by log-sum-exp.
    q, k, v = make_qkv(rng, 1, 8, 2, 1, lk, 128)
    check_against_reference(fastattn.attention(q, k, v), q, k, v)
    mask = rng.random((1, 1, 1, lk)) < 0.3
    check_against_reference(fastattn.attention(q, k, v, mask=mask), q, k, v, mask=mask)
    check_against_reference(fastattn.attention(q, k, v, window=300, causal=True), q, k, v,
                            window=300, causal=True)


@pytest.mark.parametrize("hq,lq", [(2, 4), (1, 9), (2, 64)])
def test_few_tiles_over_long_keys(isa, rng, hq, lq):
    # Few tiles over >= 1024 keys: <= 8 rows per kv head go to the split-KV decode kernel
    # (2 heads x 4 queries), more rows stay on the tiled kernel, which then splits its keys by
    # the decode kernel's policy and merges the chunks with its log-sum-exp rule.
    q, k, v = make_qkv(rng, 1, hq, 1, lq, 2100, 32)
    for kw in (dict(), dict(causal=True), dict(causal=True, window=700)):
        check_against_reference(fastattn.attention(q, k, v, **kw), q, k, v, **kw)
    bias = rng.standard_normal((lq, 2100)).astype(np.float32)
    check_against_reference(fastattn.attention(q, k, v, mask=bias), q, k, v, mask=bias)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window", [None, 1, 299, 1000, 5000])
def test_decode_dense_and_strided_paths(isa, rng, causal, window):
    # Lq = 1 runs on the split-KV decode kernel shared with the KV cache, over densely stored
    # keys and over the same keys seen through a strided view. Both match the reference,
    # for windows inside, at and beyond Lk (= 1000), causal or not (the single query is the
    # last position, so both see the same keys), in place on q too.
    q, k, v = make_qkv(rng, 2, 8, 2, 1, 1000, 64)
    kw = dict(causal=causal, window=window)
    dense = fastattn.attention(q, k, v, **kw)
    check_against_reference(dense, q, k, v, **kw)
    k_wide = np.zeros((2, 2, 1000, 2, 64), np.float32)
    k_wide[:, :, :, 0] = k
    k_strided = k_wide[:, :, :, 0]          # row stride 2 D: not the dense layout
    strided = fastattn.attention(q, k_strided, v, **kw)
    check_against_reference(strided, q, k, v, **kw)
    q_inplace = q.copy()
    assert fastattn.attention(q_inplace, k, v, out=q_inplace, **kw) is q_inplace
    assert np.array_equal(q_inplace, dense)


@pytest.mark.parametrize("config", [
    dict(shape=(1, 4, 2, 300, 300, 64), causal=True),
    dict(shape=(2, 3, 1, 97, 500, 80), window=50),
    dict(shape=(1, 8, 2, 1, 5000, 128)),             # decode: split keys
    dict(shape=(1, 4, 4, 2, 3000, 16), causal=True),
    dict(shape=(1, 2, 1, 40, 3000, 32), causal=True),  # tiled, keys split (few tiles)
    dict(shape=(1, 2, 2, 200, 200, 32), mask=True),
])
def test_thread_count_does_not_change_bits(isa, rng, config):
    b, hq, hkv, lq, lk, d = config["shape"]
    q, k, v = make_qkv(rng, b, hq, hkv, lq, lk, d)
    mask = (rng.standard_normal((lq, lk)).astype(np.float32) if config.get("mask") else None)
    assert_thread_invariant(lambda: fastattn.attention(
        q, k, v, mask=mask, causal=config.get("causal", False), window=config.get("window")))


def test_return_weights(isa, rng):
    q, k, v = make_qkv(rng, 2, 4, 2, 33, 90, 16)
    mask = rng.random((2, 1, 33, 90)) < 0.8
    out, w = fastattn.attention(q, k, v, mask=mask, causal=True, return_weights=True)
    ref_out, ref_w = reference.attention(q.astype(F64), k.astype(F64), v.astype(F64), mask=mask,
                                         causal=True, return_weights=True)
    assert w.shape == (2, 4, 33, 90) and w.dtype == np.float32
    np.testing.assert_allclose(w, ref_w, rtol=1e-5, atol=1e-7)
    assert np.array_equal(out, fastattn.attention(q, k, v, mask=mask, causal=True))
    out3, w3 = fastattn.attention(q[0], k[0], v[0], return_weights=True)
    assert out3.shape == (4, 33, 16) and w3.shape == (4, 33, 90)


def test_3d_inputs_are_a_batch_of_one(rng):
    q, k, v = make_qkv(rng, 1, 4, 2, 20, 30, 8)
    out = fastattn.attention(q[0], k[0], v[0], causal=True, mask=np.ones((20, 30), bool))
    assert out.shape == (4, 20, 8)
    assert np.array_equal(out, fastattn.attention(q, k, v, causal=True)[0])


def test_strided_inputs_out_and_in_place(rng):
    q, k, v = make_qkv(rng, 1, 3, 3, 40, 50, 16)
    expected = fastattn.attention(q, k, v)
    # transposed (L, H, D) storage viewed as (H, L, D), reversed axes, a non-contiguous last axis
    qt = np.ascontiguousarray(q[0].transpose(1, 0, 2)).transpose(1, 0, 2)
    kr = np.ascontiguousarray(k[:, :, ::-1])[:, :, ::-1]
    vs = np.repeat(v, 2, axis=-1)[..., ::2]
    assert np.array_equal(fastattn.attention(qt[None], kr, vs), expected)
    holder = np.zeros((1, 3, 40, 32), np.float32)
    out = holder[..., ::2]
    assert fastattn.attention(q, k, v, out=out) is out
    assert np.array_equal(holder[..., ::2], expected) and np.all(holder[..., 1::2] == 0)
    qc = q.copy()
    assert fastattn.attention(qc, k, v, out=qc) is qc
    assert np.array_equal(qc, expected)


def test_empty_and_nan_inputs(rng):
    q, k, v = make_qkv(rng, 1, 2, 1, 0, 5, 4)
    assert fastattn.attention(q, k, v).shape == (1, 2, 0, 4)
    q, k, v = make_qkv(rng, 0, 2, 1, 3, 5, 4)
    assert fastattn.attention(q, k, v).shape == (0, 2, 3, 4)
    q, k, v = make_qkv(rng, 1, 2, 1, 3, 5, 0)
    assert fastattn.attention(q, k, v).shape == (1, 2, 3, 0)
    q, k, v = make_qkv(rng, 1, 1, 1, 3, 5, 4)
    q[0, 0, 1, 2] = np.nan
    out = fastattn.attention(q, k, v)
    assert np.all(np.isnan(out[0, 0, 1])) and np.all(np.isfinite(out[0, 0, [0, 2]]))


def test_bad_input_errors(rng):
    q, k, v = make_qkv(rng, 1, 4, 2, 5, 6, 8)
    att = fastattn.attention
    with pytest.raises(ValueError, match=r"attention: q has shape \(1, 4, 5, 8\) and k has shape "
                                         r"\(1, 2, 6, 7\): the head dim D"):
        att(q, k[..., :7], v)
    with pytest.raises(ValueError, match=r"Hq = 4 is not a multiple of Hkv = 3"):
        att(q, np.zeros((1, 3, 6, 8), np.float32), np.zeros((1, 3, 6, 8), np.float32))
    with pytest.raises(ValueError, match=r"mask has shape \(3, 6\), which does not broadcast to "
                                         r"\(B, Hq, Lq, Lk\) = \(1, 4, 5, 6\)"):
        att(q, k, v, mask=np.ones((3, 6), bool))
    with pytest.raises(ValueError, match=r"mask has shape \(1, 1, 1, 1, 6\)"):
        att(q, k, v, mask=np.ones((1, 1, 1, 1, 6), bool))
    with pytest.raises(TypeError, match=r"attention: q must be float32, got float64"):
        att(q.astype(F64), k, v)
    with pytest.raises(TypeError, match=r"attention: v must be a numpy.ndarray of float32"):
        att(q, k, v.tolist())
    with pytest.raises(TypeError, match=r"mask must be bool \(True = may attend\) or float32"):
        att(q, k, v, mask=np.ones((5, 6), np.int64))
    with pytest.raises(TypeError, match=r"mask must be bool .* got float64"):
        att(q, k, v, mask=np.zeros((5, 6)))
    with pytest.raises(ValueError, match=r"window must be >= 1"):
        att(q, k, v, window=0)
    with pytest.raises(TypeError, match=r"window must be an int"):
        att(q, k, v, window=2.5)
    with pytest.raises(ValueError, match=r"scale must be finite"):
        att(q, k, v, scale=float("inf"))
    with pytest.raises(ValueError, match=r"v has shape \(1, 2, 7, 8\) and k has shape"):
        att(q, k, np.zeros((1, 2, 7, 8), np.float32))
    with pytest.raises(ValueError, match=r"batch sizes differ"):
        att(np.zeros((2, 4, 5, 8), np.float32), k, v)
    with pytest.raises(ValueError, match=r"all be 4-D .* or all 3-D"):
        att(q[0], k, v)
    with pytest.raises(ValueError, match=r"attention: out has shape \(1, 4, 5, 7\), expected "
                                         r"\(1, 4, 5, 8\)"):
        att(q, k, v, out=np.empty((1, 4, 5, 7), np.float32))
    buf = np.zeros(300, np.float32)
    kk = buf[:96].reshape(1, 2, 6, 8)
    with pytest.raises(ValueError, match=r"out overlaps k"):
        att(q, kk, v, out=buf[50:210].reshape(1, 4, 5, 8))
    with pytest.raises(TypeError, match=r"causal must be a bool"):
        att(q, k, v, causal=1)


def test_kernel_binding_refuses_bad_views(rng):
    # The private binding is the second line of defence: it never reads out of bounds.
    q, k, v = make_qkv(rng, 1, 2, 2, 4, 6, 8)
    out = np.empty((1, 2, 4, 8), np.float32)
    with pytest.raises(ValueError, match=r"k has shape"):
        fastattn._core.attention(q, k[..., :7], v, out, None, False, 0, 1.0, None)
    with pytest.raises(ValueError, match=r"mask has shape"):
        fastattn._core.attention(q, k, v, out, np.ones((1, 2, 4, 5), bool), False, 0, 1.0, None)
    with pytest.raises(ValueError, match=r"contiguous last axis"):
        fastattn._core.attention(q[..., ::2], k[..., ::2], v, out, None, False, 0, 1.0, None)


_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import fastattn
    L, H, D = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, H, L, D), dtype=np.float32) for _ in range(3))
    out = np.zeros_like(q)  # touched: its pages count before the baseline
    fastattn.attention(q[:, :, :8], k[:, :, :8], v[:, :, :8], causal=True)  # threads, scratch
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fastattn.attention(q, k, v, causal=True, out=out)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024)  # MiB (ru_maxrss is in KiB on Linux)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss units differ")
def test_memory_does_not_grow_with_lq_times_lk():
    # L = 8192, H = 2: the score matrices would take 2 x 8192^2 x 4 B = 512 MiB. The full goal
    # shape (L = 16384, H = 16) is measured by bench/bench_attention.py and
    # `python -m fastattn.bench.attention` (docs/attention.md#memory).
    r = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, "8192", "2", "64"],
                       capture_output=True, text=True, check=True, env=dict(os.environ))
    growth_mib = float(r.stdout.strip())
    assert growth_mib < 64, f"peak RSS grew by {growth_mib:.1f} MiB"


# -- scales at the edge of float32 (issue 16, case 7) ------------------------------------------

@pytest.mark.parametrize("scale", [1e39, -1e39, 3.5e38, float("inf")])
def test_scale_beyond_float32_is_refused(rng, scale):
    # 1e39 is a finite Python float but inf in float32: every score became inf, the output NaN.
    q, k, v = make_qkv(rng, 1, 1, 1, 4, 4, 8)
    with pytest.raises(ValueError, match=r"attention: scale must be finite"):
        fastattn.attention(q, k, v, scale=scale)
    with pytest.raises(ValueError, match=r"attention: scale must be finite in float32"):
        fastattn._core.attention(q[None, 0], k[None, 0], v[None, 0], np.empty_like(q), None,
                                 False, 0, scale, None)


@pytest.mark.parametrize("lq", [64, 1])  # the tiled kernel, the split-KV decode kernel
def test_scale_multiplies_the_dot_product_not_q(isa, rng, lq):
    # |q| up to ~15 with scale 1e38: q * scale overflows float32 (the tiled kernel used to
    # pre-scale Q and gave NaN rows), scale * (q . k) with small keys does not. The scores then
    # differ by >= ~1e35 between keys, so every row attends to its best key alone, exactly.
    q = (rng.standard_normal((1, 2, lq, 16)) * 4).astype(np.float32)
    k = (rng.standard_normal((1, 2, 20, 16)) * 0.01).astype(np.float32)
    v = rng.standard_normal((1, 2, 20, 16)).astype(np.float32)
    out, weights = fastattn.attention(q, k, v, scale=1e38, return_weights=True)
    best = np.argmax(q.astype(F64) @ np.swapaxes(k, -1, -2).astype(F64), axis=-1)
    expected = np.take_along_axis(v, best[..., None], axis=2)
    # one weight exp(0) / exp(0) (~2 ulp each), the others exp(-1e35) = 0
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(weights, np.eye(20)[best], rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("scale", [1e38, 3.4e38, -3.4e38])
@pytest.mark.parametrize("lq,lk,kw", [
    (64, 300, {}), (64, 300, {"causal": True}), (1, 300, {}), (1, 4096, {"window": 700}),
    (9, 2100, {}), (4, 2100, {"causal": True}), (64, 300, {"mask": "bias"}),
    (1, 300, {"mask": "bias"})])
def test_scores_beyond_float32_saturate_instead_of_nan(isa, rng, scale, lq, lk, kw):
    # Ordinary inputs with scale 1e38: most scores exceed float32. They saturate at +-FLT_MAX
    # (keys that saturate tie), so every output row is a convex combination of v rows: finite
    # and within v's range. Before, +inf scores made exp(inf - inf) = NaN rows.
    q, k, v = make_qkv(rng, 1, 2, 1, lq, lk, 16)
    if kw.get("mask") == "bias":
        kw = {"mask": (rng.uniform(-1, 1, (lq, lk)) * 3e38).astype(np.float32)}
    out = fastattn.attention(q, k, v, scale=scale, **kw)
    assert np.all(np.isfinite(out))
    lo, hi = v.min(axis=(0, 1, 2)), v.max(axis=(0, 1, 2))
    assert np.all(out >= lo - 1e-6 * np.abs(lo)) and np.all(out <= hi + 1e-6 * np.abs(hi))
    _, weights = fastattn.attention(q, k, v, scale=scale, return_weights=True, **kw)
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
