"""Property-based tests of attention (tests/fuzzing.py): random B, Hq / Hkv (MHA, GQA, MQA),
Lq, Lk (0 and 1 included; a single query over >= 1024 keys for the split-KV path), D and Dv,
3-D and 4-D, bool and float masks of every broadcast shape, causal, windows (up to 2**80 in
tests/hostile_cases.py),
scales from 1e-30 to 1e30 (and 0, negative), return_weights, layouts of q, k, v and mask,
out= modes (in place on q; overlapping any input refused), thread counts, on every ISA path.
In the regime of tests/test_attention.py the result is within its bound
(``check_against_reference``); at extreme scales it is still a convex combination of v's rows
(or zeros), never NaN. Always bit for bit the result of the same call on contiguous copies."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastattn
from fastattn import reference
from fuzzing import FUZZ, OUT_MODES, bad_kind_call, place, run_checked, values, view
from test_attention import check_against_reference
from test_kv_cache import attend_tolerance

LENGTHS = st.one_of(st.integers(0, 9), st.sampled_from([16, 17, 33, 64, 65, 97, 130]))
HEAD_DIMS = st.one_of(st.integers(0, 9), st.sampled_from([15, 16, 17, 63, 64, 65, 80, 128]))
# Windows from 1 to past Lq + Lk; those near int64's limits (which overflowed once, issue 16
# case 1) run in a child process: tests/hostile_cases.py.
WINDOWS = st.one_of(st.none(), st.integers(1, 40), st.sampled_from([100, 1000, 2**20]))
# Scales in the regime of check_against_reference, and extremes where ties between keys are
# broken by rounding (the float32 textbook is no yardstick there). Not beyond ~1e37: scale
# 1e38 gives NaN, issue 16 case 7 (test_extreme_scale_case_7 below).
REGULAR_SCALES = [None, None, 0.05, 0.3, 1.0]
EXTREME_SCALES = [0.0, -1.0, 1e-30, 1e30]


def mask_shape(data, target):
    """A shape that broadcasts to target (B, Hq, Lq, Lk) or (Hq, Lq, Lk): each axis kept or 1,
    leading axes sometimes dropped."""
    shape = tuple(d if data.draw(st.booleans()) else 1 for d in target)
    return shape[data.draw(st.integers(0, len(shape) - 1)):]


def convex_bound_check(out, v, hq):
    """Every output row is a convex combination of its kv head's value rows, or zeros."""
    v4 = v if v.ndim == 4 else v[None]
    o4 = out if out.ndim == 4 else out[None]
    if o4.size == 0:
        return
    assert not np.any(np.isnan(o4))
    group = hq // max(v4.shape[1], 1)
    vr = np.repeat(v4, group, axis=1).astype(np.float64)       # (B, Hq, Lk, Dv)
    lo = np.minimum(vr.min(axis=2, initial=0.0), 0)[:, :, None]
    hi = np.maximum(vr.max(axis=2, initial=0.0), 0)[:, :, None]
    # the weights sum to 1 within tests/test_kv_cache.py's bound on the normalisation (the
    # score terms aside: a convex combination stays one whatever the scores' error)
    slack = attend_tolerance(v4.shape[2], 0.0, float(np.abs(vr).max(initial=0.0)))
    assert np.all(o4 >= lo - slack) and np.all(o4 <= hi + slack)


@FUZZ
@given(data=st.data())
def test_matches_reference_any_layout(isa, data):
    three_d = data.draw(st.booleans(), label="3-D")
    b = 1 if three_d else data.draw(st.integers(0, 2), label="B")
    hkv = data.draw(st.integers(1, 3), label="Hkv")
    hq = hkv * data.draw(st.integers(1, 3), label="group")
    if data.draw(st.integers(0, 5), label="split-KV") == 0:
        lq, lk = data.draw(st.integers(1, 2)), data.draw(st.sampled_from([1024, 1500, 2100]))
    else:
        lq, lk = data.draw(LENGTHS, label="Lq"), data.draw(LENGTHS, label="Lk")
    d = data.draw(HEAD_DIMS, label="D")
    dv = d if data.draw(st.booleans(), label="Dv = D") else data.draw(HEAD_DIMS, label="Dv")
    lead = () if three_d else (b,)
    q_scale = data.draw(st.sampled_from([1.0, 1.0, 25.0, 2500.0]), label="|q|")
    q = (values(data, lead + (hq, lq, d)) * q_scale).astype(np.float32)
    k, v = values(data, lead + (hkv, lk, d)), values(data, lead + (hkv, lk, dv))
    target = lead + (hq, lq, lk)
    mask = None
    mask_kind = data.draw(st.sampled_from([None, None, "bool", "float"]), label="mask")
    if mask_kind == "bool":
        shape = mask_shape(data, target)
        seed = data.draw(st.integers(0, 2**32 - 1))
        mask = np.random.default_rng(seed).random(shape) < data.draw(st.sampled_from([0.3, 0.9]))
    elif mask_kind == "float":
        mask = values(data, mask_shape(data, target), scales=(2.0,), specials=False)
        rng = np.random.default_rng(data.draw(st.integers(0, 99)))
        mask[rng.random(mask.shape) < 0.2] = -np.inf
    causal = data.draw(st.booleans(), label="causal")
    window = data.draw(WINDOWS, label="window")
    extreme = data.draw(st.integers(0, 4), label="extreme scale?") == 0
    scale = data.draw(st.sampled_from(EXTREME_SCALES if extreme else REGULAR_SCALES),
                      label="scale")
    weights = lq * lk * hq * max(b, 1) <= 4000 and data.draw(st.booleans(), label="weights")
    mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")

    gq = place(data, q, writable=mode == "in_place")
    gk, gv = place(data, k), place(data, v)
    gm = None if mask is None else place(data, mask)
    q, k, v = np.array(gq.view), np.array(gk.view), np.array(gv.view)
    mask = None if gm is None else np.array(gm.view)
    kw = dict(mask=mask, causal=causal, window=window, scale=scale)

    plain = fastattn.attention(q.copy(), k, v, **kw)
    reference_applies = plain.size and lk  # (NumPy's max over no keys raises)
    if lk == 0:
        assert np.all(plain == 0)  # no keys: zeros
    elif extreme:
        convex_bound_check(plain, v, hq)
    elif reference_applies:
        # a window of Lq + Lk or more excludes nothing (and would overflow NumPy's int64)
        ref_window = None if window is not None and window >= lq + lk else window
        check_against_reference(plain, q, k, v, **dict(kw, window=ref_window))

    def call(out):
        r = fastattn.attention(gq.view, gk.view, gv.view, mask=view(gm), causal=causal,
                               window=window, scale=scale, return_weights=weights, out=out)
        if not weights:
            return r
        y, w = r
        assert w.shape == target and w.dtype == np.float32
        if not extreme and reference_applies:
            ref_window = None if window is not None and window >= lq + lk else window
            _, ref_w = reference.attention(q.astype(np.float64), k.astype(np.float64),
                                           v.astype(np.float64), return_weights=True,
                                           **dict(kw, window=ref_window))
            # tests/test_attention.py test_return_weights's bound
            np.testing.assert_allclose(w, ref_w, rtol=1e-5, atol=1e-7 * max(q_scale, 1) ** 2)
        return y

    in_place = gq if d == dv else None
    run_checked(data, mode, call, lead + (hq, lq, dv), inputs=[gq, gk, gv, gm],
                in_place=in_place, expected=plain)


@FUZZ
@given(data=st.data())
def test_errors(isa, data):
    lq, lk, d = (data.draw(st.integers(1, 5)) for _ in range(3))
    q, k, v = values(data, (1, 2, lq, d)), values(data, (1, 1, lk, d)), values(data, (1, 1, lk, d))
    att = fastattn.attention
    bad = data.draw(st.sampled_from(["q kind", "k kind", "v kind", "out kind", "mask kind",
                                     "window", "window type", "scale", "scale type", "causal",
                                     "heads", "head dim", "mask shape"]))
    if bad in ("q kind", "k kind", "v kind"):
        x = {"q": q, "k": k, "v": v}[bad[0]]
        args = lambda a: [a if n == bad[0] else y for n, y in zip("qkv", (q, k, v))]  # noqa: E731
        bad_kind_call(data, lambda a: att(*args(a)), x, "attention", bad[0])
    elif bad == "out kind":
        bad_kind_call(data, lambda o: att(q, k, v, out=o), q, "attention", "out")
    elif bad == "mask kind":
        kind = data.draw(st.sampled_from(["int32", "float64", "float16", "list", ">f4"]))
        m = np.ones((lq, lk), np.float32)
        m = m.tolist() if kind == "list" else m.astype(kind)
        with pytest.raises(TypeError, match=r"attention: mask must be"):
            att(q, k, v, mask=m)
    elif bad == "window":
        w = data.draw(st.sampled_from([0, -1, -2**63, -2**80]))
        with pytest.raises(ValueError, match=r"attention: window must be >= 1"):
            att(q, k, v, window=w)
    elif bad == "window type":
        w = data.draw(st.sampled_from([2.0, "8", True, np.float32(3)]))
        with pytest.raises(TypeError, match=r"attention: window must be an int"):
            att(q, k, v, window=w)
    elif bad == "scale":
        s = data.draw(st.sampled_from([float("inf"), -float("inf"), float("nan")]))
        with pytest.raises(ValueError, match=r"attention: scale must be finite"):
            att(q, k, v, scale=s)
    elif bad == "scale type":
        s = data.draw(st.sampled_from(["1", True, [1.0], 1j]))
        with pytest.raises(TypeError, match=r"attention: scale must be a number"):
            att(q, k, v, scale=s)
    elif bad == "causal":
        c = data.draw(st.sampled_from([1, 0, "yes", None]))
        with pytest.raises(TypeError, match=r"attention: causal must be a bool"):
            att(q, k, v, causal=c)
    elif bad == "heads":
        with pytest.raises(ValueError, match=r"attention: Hq = 2 is not a multiple of Hkv = 3"):
            att(q, np.zeros((1, 3, lk, d), np.float32), np.zeros((1, 3, lk, d), np.float32))
    elif bad == "head dim":
        with pytest.raises(ValueError, match=r"attention: .* the head dim D"):
            att(q, np.zeros((1, 1, lk, d + 1), np.float32), v)
    else:
        with pytest.raises(ValueError, match=r"attention: mask has shape"):
            att(q, k, v, mask=np.ones((lq + 1, lk), bool))


def test_extreme_scale_case_7(isa, rng):
    q, k, v = (rng.standard_normal((1, 2, 5, 8)).astype(np.float32) for _ in range(3))
    convex_bound_check(fastattn.attention(q, k, v, scale=1e38), v, 2)
