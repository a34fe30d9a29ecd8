"""rope against the float64 reference (both styles, partial rotary, every scaling type,
offsets, per-batch positions), the scaling formulas recomputed entry by entry, RoPE's
relative-position property, in place / strides / out=, errors, threads; every ISA path."""
import math

import numpy as np
import pytest

import fastattn
from fastattn import reference
from fastattn.ops.rope import STYLES, clear_rope_cache
from fastattn.rope_frequencies import rope_frequencies
from conftest import assert_thread_invariant
from test_rope_frequencies import SCALINGS

# Rotated pair counts around the SIMD widths (4, 8, 16 lanes): rot/2 = 1, 3, 4, 7, 8, 9, 16, 17.
ROTARY_DIMS = [2, 6, 8, 14, 16, 18, 32, 34]


def pair_magnitude(x, style, rot):
    """|x_a| + |x_b| for the pair each rotated feature belongs to (|x| for pass-through)."""
    m = np.abs(x).astype(np.float64)
    a = m[..., :rot]
    if style == "half":
        h = rot // 2
        pair = np.concatenate((a[..., h:], a[..., :h]), axis=-1)
    else:
        pair = np.stack((a[..., 1::2], a[..., 0::2]), axis=-1).reshape(a.shape)
    return np.concatenate((a + pair, m[..., rot:]), axis=-1)


def check(y, x, positions, style, rot, scaling=None, theta=10000.0):
    ref = reference.rope(x.astype(np.float64), positions, theta=theta, style=style,
                         rotary_dim=rot, scaling=scaling)
    _, attention = rope_frequencies(rot, theta, scaling, int(np.max(positions)) + 1)
    # cos and sin are rounded to float32 once (2^-24 relative each), then two products and a
    # fused add (<= 2 roundings): |y - exact| <= ~4 * 2^-24 * a * (|x_a| + |x_b|).
    bound = 4 * 2.0**-24 * max(attention, 1.0) * pair_magnitude(x, style, rot)
    assert np.all(np.abs(y - ref) <= bound), float(np.max(np.abs(y - ref) - bound))
    np.testing.assert_array_equal(y[..., rot:], x[..., rot:])  # pass-through is exact


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("rot", ROTARY_DIMS)
def test_matches_reference_full_rotary(isa, rng, style, rot):
    x = rng.standard_normal((2, 3, 11, rot)).astype(np.float32)
    pos = np.arange(11)
    check(fastattn.rope(x, pos, style=style), x, pos, style, rot)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("D,rot", [(8, 2), (19, 6), (64, 16), (80, 34), (128, 64)])
def test_partial_rotary(isa, rng, style, D, rot):
    x = rng.standard_normal((1, 2, 9, D)).astype(np.float32)
    pos = np.arange(100, 109)
    check(fastattn.rope(x, pos, style=style, rotary_dim=rot), x, pos, style, rot)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", list(SCALINGS))
def test_every_scaling_matches_reference(isa, rng, style, name):
    scaling = SCALINGS[name]
    x = rng.standard_normal((2, 2, 40, 32)).astype(np.float32)
    for pos in (np.arange(40), np.arange(200, 240)):  # dynamic: inside and beyond L0 = 64
        check(fastattn.rope(x, pos, style=style, scaling=scaling, theta=500.0), x, pos, style,
              32, scaling, theta=500.0)


@pytest.mark.parametrize("style", STYLES)
def test_positions_offsets_per_batch_and_gathers(isa, rng, style):
    x = rng.standard_normal((3, 2, 13, 24)).astype(np.float32)
    per_batch = np.stack([np.arange(13) + 5, rng.integers(0, 5000, 13), np.arange(13)[::-1]])
    check(fastattn.rope(x, per_batch, style=style), x, per_batch, style, 24)
    shuffled = rng.permutation(np.arange(7, 20))
    check(fastattn.rope(x, shuffled, style=style), x, shuffled, style, 24)
    negative = np.arange(-6, 7)  # computed per call, outside the cached [0, n) tables
    check(fastattn.rope(x, negative, style=style), x, negative, style, 24)
    huge = np.arange(10**7, 10**7 + 13, dtype=np.int32)  # beyond the table cap
    check(fastattn.rope(x, huge, style=style), x, huge, style, 24)
    per_batch_each = np.stack([fastattn.rope(x[b:b + 1], per_batch[b], style=style)[0]
                               for b in range(3)])
    np.testing.assert_array_equal(fastattn.rope(x, per_batch, style=style), per_batch_each)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", ["none", "yarn", "llama3"])
def test_relative_position_property(rng, style, name):
    # After rotation, q_m . k_n depends only on m - n: the same pair of vectors at positions
    # (m, n) and (m + 1000, n + 1000) gives the same score (to float32 rounding of the
    # rotated vectors, ~4 eps |q| |k|).
    q = rng.standard_normal((1, 1, 1, 64)).astype(np.float32)
    k = rng.standard_normal((1, 1, 1, 64)).astype(np.float32)
    scaling = SCALINGS[name]
    scores = []
    for offset in (0, 37, 1000):
        qr = fastattn.rope(q, np.array([12 + offset]), style=style, scaling=scaling)
        kr = fastattn.rope(k, np.array([5 + offset]), style=style, scaling=scaling)
        scores.append(float(np.dot(qr.ravel().astype(np.float64), kr.ravel())))
    _, a = rope_frequencies(64, 10000.0, scaling)
    tol = 8 * 2.0**-24 * a * a * np.linalg.norm(q) * np.linalg.norm(k) * math.sqrt(64)
    assert max(scores) - min(scores) <= tol
    # and it is not trivially constant: a different distance gives a different score
    far = fastattn.rope(k, np.array([40]), style=style, scaling=scaling)
    qr = fastattn.rope(q, np.array([12]), style=style, scaling=scaling)
    assert abs(float(np.dot(qr.ravel(), far.ravel())) - scores[0]) > 100 * tol


def test_interleaved_is_half_on_permuted_features(rng):
    # Hugging Face's LLaMA conversion permutes q/k weights so that rotate_half on the permuted
    # features equals the interleaved rotation on the original ones.
    x = rng.standard_normal((1, 2, 5, 16)).astype(np.float32)
    pos = np.arange(3, 8)
    perm = np.concatenate((np.arange(0, 16, 2), np.arange(1, 16, 2)))
    inter = fastattn.rope(x, pos, style="interleaved")
    half = fastattn.rope(np.ascontiguousarray(x[..., perm]), pos, style="half")
    np.testing.assert_allclose(inter[..., perm], half, rtol=0, atol=1e-6)


def test_in_place_strides_and_out(isa, rng):
    x = rng.standard_normal((2, 3, 10, 20)).astype(np.float32)
    pos = np.arange(4, 14)
    expected = fastattn.rope(x, pos, rotary_dim=12)
    y = x.copy()
    assert fastattn.rope(y, pos, rotary_dim=12, out=y) is y
    np.testing.assert_array_equal(y, expected)
    big = rng.standard_normal((2, 6, 10, 40)).astype(np.float32)
    view = big[:, ::2, :, ::2]  # non-contiguous input and, in place, non-contiguous out
    ref = fastattn.rope(np.ascontiguousarray(view), pos)
    np.testing.assert_array_equal(fastattn.rope(view, pos), ref)
    fastattn.rope(view, pos, out=view)
    np.testing.assert_array_equal(big[:, ::2, :, ::2], ref)
    out = np.empty_like(x)
    assert fastattn.rope(x, pos, out=out) is out
    with pytest.raises(ValueError, match=r"rope: out overlaps x"):
        fastattn.rope(big[..., :20], pos, out=big[..., 1:21])


@pytest.mark.parametrize("style,D,rot", [("half", 128, None), ("interleaved", 130, None),
                                         ("half", 129, 64), ("interleaved", 129, 64)])
def test_large_out_of_place_equals_in_place(isa, rng, style, D, rot):
    # > 16 MiB of output (beyond the cache); odd D makes rows start at odd float offsets, as
    # does an out= shifted by one float.
    x = rng.standard_normal((1, 16, 2100, D)).astype(np.float32)
    pos = np.arange(2100)
    y = fastattn.rope(x, pos, style=style, rotary_dim=rot)
    in_place = x.copy()
    fastattn.rope(in_place, pos, style=style, rotary_dim=rot, out=in_place)
    np.testing.assert_array_equal(y, in_place)
    buf = np.empty(x.size + 1, np.float32)
    shifted = buf[1:].reshape(x.shape)
    fastattn.rope(x, pos, style=style, rotary_dim=rot, out=shifted)
    np.testing.assert_array_equal(shifted, y)
    r = D if rot is None else rot
    check(y[:, ::5, ::97], x[:, ::5, ::97], pos[::97], style, r)


def test_empty_and_cache_reuse(rng):
    assert fastattn.rope(np.zeros((0, 2, 3, 8), np.float32), np.arange(3)).shape == (0, 2, 3, 8)
    assert fastattn.rope(np.zeros((1, 2, 0, 8), np.float32), np.arange(0)).shape == (1, 2, 0, 8)
    clear_rope_cache()
    x = rng.standard_normal((1, 1, 4, 8)).astype(np.float32)
    first = fastattn.rope(x, np.arange(4))
    again = fastattn.rope(x, np.arange(4))        # from the cached table
    grown = fastattn.rope(x, np.arange(5000, 5004))  # table grown past 1024 positions
    np.testing.assert_array_equal(first, again)
    check(grown, x, np.arange(5000, 5004), "half", 8)


def test_thread_count_does_not_change_bits(isa, rng):
    x = rng.standard_normal((2, 8, 300, 64)).astype(np.float32)
    assert_thread_invariant(lambda: fastattn.rope(x, np.arange(300), style="interleaved"))
    assert_thread_invariant(lambda: fastattn.rope(x, np.arange(300), rotary_dim=32))


def test_transformers5_rope_parameters(rng):
    # transformers 5.x keeps theta and the partial rotary factor inside rope_parameters
    x = rng.standard_normal((1, 2, 6, 32)).astype(np.float32)
    pos = np.arange(6)
    params = {"rope_type": "llama3", "rope_theta": 500000.0, "partial_rotary_factor": 0.5,
              "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 64}
    legacy = {k: v for k, v in params.items() if k not in ("rope_theta", "partial_rotary_factor")}
    expected = fastattn.rope(x, pos, theta=500000.0, rotary_dim=16, scaling=legacy)
    np.testing.assert_array_equal(fastattn.rope(x, pos, scaling=params), expected)
    check(fastattn.rope(x, pos, scaling=params), x, pos, "half", 16, legacy, theta=500000.0)
    with pytest.raises(ValueError, match=r"rope: theta=1000.0 contradicts "
                                         r"scaling\['rope_theta'\]=500000.0"):
        fastattn.rope(x, pos, theta=1000.0, scaling=params)
    with pytest.raises(ValueError, match=r"rope: rotary_dim=8 contradicts"):
        fastattn.rope(x, pos, rotary_dim=8, scaling=params)


# ---------------------------------------------------------------- errors
def test_errors():
    x = np.zeros((1, 2, 3, 8), np.float32)
    pos = np.arange(3)
    with pytest.raises(TypeError, match=r"rope: x must be float32, got float64"):
        fastattn.rope(x.astype(np.float64), pos)
    with pytest.raises(TypeError, match=r"rope: x must be a numpy.ndarray of float32, got list"):
        fastattn.rope(x.tolist(), pos)
    with pytest.raises(ValueError, match=r"rope: x must be 4-D"):
        fastattn.rope(x[0], pos)
    with pytest.raises(TypeError, match=r"rope: positions must have an integer dtype, got float"):
        fastattn.rope(x, pos.astype(np.float32))
    with pytest.raises(TypeError, match=r"rope: positions must be a numpy.ndarray"):
        fastattn.rope(x, [0, 1, 2])
    with pytest.raises(ValueError, match=r"rope: positions has shape \(4,\), expected \(3,\) "
                                         r"or \(1, 3\)"):
        fastattn.rope(x, np.arange(4))
    with pytest.raises(ValueError, match=r"rope: rotary_dim must be even and in \[2, 8\]"):
        fastattn.rope(x, pos, rotary_dim=3)
    with pytest.raises(ValueError, match=r"rope: rotary_dim must be even"):
        fastattn.rope(x, pos, rotary_dim=10)
    with pytest.raises(ValueError, match=r"rope: style must be 'half' or 'interleaved'"):
        fastattn.rope(x, pos, style="neox")
    with pytest.raises(ValueError, match=r"rope: theta must be finite and > 0"):
        fastattn.rope(x, pos, theta=0.0)
    with pytest.raises(ValueError, match=r"rope: unsupported scaling type 'longrope'"):
        fastattn.rope(x, pos, scaling={"rope_type": "longrope"})
    with pytest.raises(ValueError, match=r"rope: linear scaling needs 'factor'"):
        fastattn.rope(x, pos, scaling={"rope_type": "linear"})
    with pytest.raises(ValueError, match=r"rope: yarn scaling needs "
                                         r"'original_max_position_embeddings'"):
        fastattn.rope(x, pos, scaling={"rope_type": "yarn", "factor": 2.0})
    with pytest.raises(ValueError, match=r"rope: scaling\['factor'\] must be > 0"):
        fastattn.rope(x, pos, scaling={"rope_type": "linear", "factor": -1})
    with pytest.raises(TypeError, match=r"rope: scaling must be a dict"):
        fastattn.rope(x, pos, scaling="linear")
    with pytest.raises(ValueError, match=r"rope: out has shape"):
        fastattn.rope(x, pos, out=np.zeros((1, 2, 3, 9), np.float32))
