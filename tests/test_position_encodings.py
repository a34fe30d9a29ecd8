"""sinusoidal_positions, alibi_slopes / alibi_bias and RandomFourierEncoding against the
entry-by-entry references in fastattn.reference.position_encodings."""
import math

import numpy as np
import pytest

import fastattn
from fastattn import reference

# Each is float64 math rounded once to float32: within half an ulp of |value| <= 1 (sin, cos)
# plus the float64 evaluation error of the angle (~1e-16 relative): 2^-24 absolute.
F32 = 2.0**-24


@pytest.mark.parametrize("L,D", [(1, 1), (1, 2), (7, 8), (13, 33), (50, 64), (4, 0), (0, 4)])
def test_sinusoidal_matches_reference(L, D):
    pe = fastattn.sinusoidal_positions(L, D)
    assert pe.shape == (L, D) and pe.dtype == np.float32
    np.testing.assert_allclose(pe, reference.sinusoidal_positions(L, D), rtol=0, atol=F32)
    custom = fastattn.sinusoidal_positions(L, D, base=100.0)
    np.testing.assert_allclose(custom, reference.sinusoidal_positions(L, D, 100.0), atol=F32)


def test_sinusoidal_layout():
    pe = fastattn.sinusoidal_positions(3, 6)
    np.testing.assert_array_equal(pe[0], [0, 1, 0, 1, 0, 1])  # sin(0), cos(0) interleaved
    assert pe[1, 0] == np.float32(math.sin(1.0)) and pe[1, 1] == np.float32(math.cos(1.0))


@pytest.mark.parametrize("H", list(range(1, 41)) + [64, 80, 96])
def test_alibi_slopes_match_reference(H):
    s = fastattn.alibi_slopes(H)
    assert s.shape == (H,) and s.dtype == np.float32
    np.testing.assert_allclose(s, reference.alibi_slopes(H), rtol=F32)


def test_alibi_slopes_published_values():
    # Press et al.: 8 heads -> 1/2, 1/4, ..., 1/256; 12 heads (not a power of two) -> the 8-head
    # slopes, then the 16-head slopes 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5.
    np.testing.assert_array_equal(fastattn.alibi_slopes(8), 2.0 ** -np.arange(1, 9))
    expected12 = np.concatenate((2.0 ** -np.arange(1, 9), 2.0 ** -(np.arange(4) + 0.5)))
    np.testing.assert_allclose(fastattn.alibi_slopes(12), expected12, rtol=F32)


@pytest.mark.parametrize("Hq,Lq,Lk", [(1, 1, 1), (4, 1, 9), (6, 5, 5), (12, 3, 10), (3, 0, 4)])
def test_alibi_bias_matches_reference(Hq, Lq, Lk):
    b = fastattn.alibi_bias(Hq, Lq, Lk)
    assert b.shape == (Hq, Lq, Lk) and b.dtype == np.float32
    ref = reference.alibi_bias(Hq, Lq, Lk)
    np.testing.assert_allclose(b, ref, rtol=F32, atol=0)
    if Lq:  # bottom-right aligned: the last query is the last key, distance 0
        assert np.all(b[:, -1, -1] == 0)
        assert np.all(b[:, -1, :-1] < 0)


def test_random_fourier_grid_and_points():
    enc = fastattn.RandomFourierEncoding(num_feats=8, scale=2.0, seed=3)
    assert enc.gaussian_matrix.shape == (2, 8) and enc.num_feats == 8
    g = enc.grid(5, 7)
    assert g.shape == (16, 5, 7) and g.dtype == np.float32
    ii, jj = np.meshgrid(np.arange(5), np.arange(7), indexing="ij")
    coords = np.stack(((jj.ravel() + 0.5) / 7, (ii.ravel() + 0.5) / 5), axis=-1)
    ref = reference.random_fourier(coords, enc.gaussian_matrix).T.reshape(16, 5, 7)
    # the angle 2 pi c.G (|.| up to ~40) is formed in float64: error ~1e-14, then one rounding
    np.testing.assert_allclose(g, ref, atol=F32)
    xy = np.array([[[0, 0], [10, 20]], [[3.5, 1.0], [63, 31]]])
    p = enc.encode_points(xy, (32, 64))
    assert p.shape == (2, 2, 16)
    pts = ((xy.reshape(-1, 2) + 0.5) / np.array([64, 32]))
    np.testing.assert_allclose(p.reshape(-1, 16), reference.random_fourier(pts, enc.gaussian_matrix),
                               atol=F32)
    # a point at a pixel centre encodes like the grid entry of that pixel
    np.testing.assert_allclose(enc.encode_points(np.array([[6, 4]]), (5, 7))[0], g[:, 4, 6],
                               atol=F32)


def test_random_fourier_seed_scale_and_errors():
    a = fastattn.RandomFourierEncoding(4, seed=1).gaussian_matrix
    np.testing.assert_array_equal(a, fastattn.RandomFourierEncoding(4, seed=1).gaussian_matrix)
    assert not np.array_equal(a, fastattn.RandomFourierEncoding(4, seed=2).gaussian_matrix)
    # SAM: scale None or <= 0 means 1.0
    np.testing.assert_array_equal(a, fastattn.RandomFourierEncoding(4, scale=0, seed=1)
                                  .gaussian_matrix)
    enc = fastattn.RandomFourierEncoding(4)
    with pytest.raises(ValueError, match=r"encode_points: xy has shape \(3,\), expected \(..., 2\)"):
        enc.encode_points(np.zeros(3), (4, 4))
    with pytest.raises(TypeError, match=r"encode_points: xy must be a numeric numpy.ndarray"):
        enc.encode_points([[1, 2]], (4, 4))
    with pytest.raises(ValueError, match=r"image_size\[1\] must be finite and > 0"):
        enc.encode_points(np.zeros((1, 2)), (4, 0))
    with pytest.raises(ValueError, match=r"RandomFourierEncoding: num_feats must be >= 1"):
        fastattn.RandomFourierEncoding(0)


def test_errors():
    with pytest.raises(TypeError, match=r"sinusoidal_positions: L must be an int, got float"):
        fastattn.sinusoidal_positions(2.0, 4)
    with pytest.raises(ValueError, match=r"sinusoidal_positions: D must be >= 0, got -1"):
        fastattn.sinusoidal_positions(2, -1)
    with pytest.raises(ValueError, match=r"alibi_slopes: H must be >= 1, got 0"):
        fastattn.alibi_slopes(0)
    with pytest.raises(ValueError, match=r"alibi_bias: Lk must be >= 0"):
        fastattn.alibi_bias(2, 1, -3)
