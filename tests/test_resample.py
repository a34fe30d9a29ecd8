"""max_pool2d and adaptive_avg_pool2d (the separable resample kernel with max / box taps)
against the float64 references and PyTorch: strides, paddings, dilations, ceil mode, odd sizes,
batch > 1, CHW input, NaN, strided inputs and out=, errors; every ISA path, threads 1-3."""
import numpy as np
import pytest

import fastattn
from fastattn import reference
from conftest import assert_thread_invariant

U = 2.0**-24  # float32 unit roundoff

# (kernel_size, stride, padding, dilation): square and rectangular windows, strides 1-3,
# padding up to half the dilated kernel, dilation 1-2.
POOLS = [(1, None, 0, 1), (2, None, 0, 1), (3, 2, 1, 1), (3, 1, 1, 1), ((3, 2), (2, 1), (1, 0), 1),
         (2, 3, 1, 2), (3, 2, 0, 2), ((5, 3), 2, (2, 1), 1), (4, 4, 2, 1)]
# odd sizes around the vector widths (4, 8, 16 lanes)
POOL_SHAPES = [(2, 3, 7, 9), (1, 2, 16, 17), (1, 1, 5, 33), (3, 1, 8, 15)]


def check_max_pool(x, *args, **kw):
    got = fastattn.max_pool2d(x, *args, **kw)
    expected = reference.max_pool2d(x.astype(np.float64), *args, **kw)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # a max rounds nothing: exact
    return got


@pytest.mark.parametrize("shape", POOL_SHAPES)
@pytest.mark.parametrize("k,s,p,d", POOLS)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool2d_matches_reference(isa, rng, shape, k, s, p, d, ceil_mode):
    x = rng.standard_normal(shape).astype(np.float32)
    check_max_pool(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)


def test_max_pool2d_chw_and_batch_agree(isa, rng):
    x = rng.standard_normal((4, 3, 11, 10)).astype(np.float32)
    batched = fastattn.max_pool2d(x, 3, 2, 1)
    for n in range(4):
        np.testing.assert_array_equal(fastattn.max_pool2d(x[n], 3, 2, 1), batched[n])


def test_max_pool2d_nan_and_inf(isa, rng):
    # torch's rule: any NaN in a window makes the output NaN; -inf and inf are ordinary values
    x = rng.standard_normal((1, 2, 9, 21)).astype(np.float32)
    x[0, 0, 4, 5] = np.nan
    x[0, 1, 0, 0] = np.inf
    x[0, 1, 8, :] = -np.inf
    x[0, 0, 0, 17:] = np.nan
    got = check_max_pool(x, 3, stride=2, padding=1)
    assert np.isnan(got[0, 0, 2, 2]) and np.isnan(got[0, 0, 2, 3])
    assert got[0, 1, 0, 0] == np.inf


def test_max_pool2d_window_only_in_padding_is_minus_inf(isa):
    # H = W = 1, padding 1, kernel 2, dilation 2: the taps -1 and 1 both miss the input
    x = np.ones((1, 1, 1, 1), np.float32)
    got = check_max_pool(x, 2, stride=1, padding=1, dilation=2)
    assert got.shape == (1, 1, 1, 1) and got[0, 0, 0, 0] == -np.inf


def test_max_pool2d_threads(isa, rng):
    x = rng.standard_normal((2, 16, 57, 61)).astype(np.float32)
    y = assert_thread_invariant(lambda: fastattn.max_pool2d(x, 3, 2, 1, ceil_mode=True))
    np.testing.assert_array_equal(y, reference.max_pool2d(x.astype(np.float64), 3, 2, 1,
                                                          ceil_mode=True))


def test_max_pool2d_vs_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape in POOL_SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        x.reshape(-1)[::13] = np.nan
        for k, s, p, d in POOLS:
            for ceil_mode in (False, True):
                kw = dict(stride=s if s is not None else k, padding=p, dilation=d,
                          ceil_mode=ceil_mode)
                expected = F.max_pool2d(torch.from_numpy(x), k, **kw).numpy()
                np.testing.assert_array_equal(fastattn.max_pool2d(x, k, **kw), expected)


def test_max_pool2d_strided_input_and_out(isa, rng):
    base = rng.standard_normal((2, 9, 3, 20)).astype(np.float32)
    x = base.transpose(0, 2, 1, 3)[..., ::2]          # (2, 3, 9, 10), not contiguous
    expected = fastattn.max_pool2d(np.ascontiguousarray(x), 2, 1)
    np.testing.assert_array_equal(fastattn.max_pool2d(x, 2, 1), expected)
    out_base = np.full((2, 3, 8, 18), 7.0, np.float32)
    out = out_base[..., ::2]                          # strided out: filled through a temporary
    assert fastattn.max_pool2d(x, 2, 1, out=out) is out
    np.testing.assert_array_equal(out, expected)
    assert np.all(out_base[..., 1::2] == 7.0)


def test_max_pool2d_errors():
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(TypeError, match=r"max_pool2d: x must be float32, got float64"):
        fastattn.max_pool2d(x.astype(np.float64), 2)
    with pytest.raises(TypeError, match=r"x must be a numpy.ndarray"):
        fastattn.max_pool2d(x.tolist(), 2)
    with pytest.raises(ValueError, match=r"x must be 3-D or 4-D .*got shape \(5, 5\)"):
        fastattn.max_pool2d(x[0, 0], 2)
    with pytest.raises(ValueError, match=r"padding must be at most half .* got padding=2"):
        fastattn.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"output size \(0, 0\) is too small"):
        fastattn.max_pool2d(x, 7)
    with pytest.raises(ValueError, match=r"kernel_size must be >= 1, got 0"):
        fastattn.max_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"stride must be >= 1, got 0"):
        fastattn.max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match=r"dilation must be >= 1, got 0"):
        fastattn.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match=r"padding must be >= 0, got -1"):
        fastattn.max_pool2d(x, 2, padding=-1)
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a pair"):
        fastattn.max_pool2d(x, (2, 2, 2))
    with pytest.raises(TypeError, match=r"kernel_size must be an int, got float"):
        fastattn.max_pool2d(x, 2.0)
    with pytest.raises(ValueError, match=r"non-zero channels, height and width"):
        fastattn.max_pool2d(np.zeros((1, 0, 5, 5), np.float32), 2)
    with pytest.raises(ValueError, match=r"out has shape \(1, 2, 3, 3\), expected \(1, 2, 2, 2\)"):
        fastattn.max_pool2d(x, 2, out=np.zeros((1, 2, 3, 3), np.float32))


# -- adaptive_avg_pool2d ------------------------------------------------------------------------

def box_bound(x, out_hw):
    """|err| <= (k_h + k_w + 3) 2^-24 mean|x| over the window: the two weights 1/k are rounded
    once each (2 u), the row pass sums k_h products (k_h u) and the column pass k_w (k_w u)."""
    H, W = x.shape[-2:]
    OH, OW = out_hw
    kh = max(-(-((i + 1) * H) // OH) - (i * H) // OH for i in range(OH))
    kw = max(-(-((j + 1) * W) // OW) - (j * W) // OW for j in range(OW))
    return (kh + kw + 3) * U * reference.adaptive_avg_pool2d(np.abs(x.astype(np.float64)), out_hw)


@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 4, 16, 17), (8, 5, 7, 7), (1, 2, 1, 30)])
@pytest.mark.parametrize("output_size", [1, (1, 1), 3, (2, 5), (7, None), (None, 4), (10, 20),
                                         (16, 17)])
def test_adaptive_avg_pool2d_matches_reference(isa, rng, shape, output_size):
    x = (rng.standard_normal(shape) + 3.0).astype(np.float32)
    got = fastattn.adaptive_avg_pool2d(x, output_size)
    expected = reference.adaptive_avg_pool2d(x.astype(np.float64), output_size)
    assert got.shape == expected.shape
    assert np.all(np.abs(got - expected) <= box_bound(x, expected.shape[-2:]))


def test_adaptive_avg_pool2d_threads_chw_and_empty(isa, rng):
    x = rng.standard_normal((3, 64, 13, 11)).astype(np.float32)
    y = assert_thread_invariant(lambda: fastattn.adaptive_avg_pool2d(x, (5, 4)))
    assert np.all(np.abs(y - reference.adaptive_avg_pool2d(x.astype(np.float64), (5, 4)))
                  <= box_bound(x, (5, 4)))
    np.testing.assert_array_equal(fastattn.adaptive_avg_pool2d(x[1], (5, 4)), y[1])
    assert fastattn.adaptive_avg_pool2d(x, (0, 3)).shape == (3, 64, 0, 3)
    assert fastattn.adaptive_avg_pool2d(x[:0], 2).shape == (0, 64, 2, 2)


def test_adaptive_avg_pool2d_same_size_out_is_x(isa, rng):
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    expected = x.copy()
    y = fastattn.adaptive_avg_pool2d(x, (5, 6), out=x)  # identity windows, computed in place
    assert y is x
    np.testing.assert_array_equal(x, expected)


def test_adaptive_avg_pool2d_vs_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape in [(2, 3, 7, 9), (8, 16, 7, 7), (1, 2, 15, 4)]:
        x = rng.standard_normal(shape).astype(np.float32)
        for output_size in [1, (3, 2), (5, None), (20, 9)]:
            expected = F.adaptive_avg_pool2d(torch.from_numpy(x), output_size).numpy()
            got = fastattn.adaptive_avg_pool2d(x, output_size)
            # both within box_bound of the exact mean (torch: one sum, one division)
            assert np.all(np.abs(got - expected) <= 2 * box_bound(x, got.shape[-2:]))


def test_adaptive_avg_pool2d_errors():
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(TypeError, match=r"adaptive_avg_pool2d: x must be float32, got int32"):
        fastattn.adaptive_avg_pool2d(x.astype(np.int32), 1)
    with pytest.raises(ValueError, match=r"output_size must be >= 0, got -1"):
        fastattn.adaptive_avg_pool2d(x, (-1, 2))
    with pytest.raises(ValueError, match=r"output_size must be an int or a pair"):
        fastattn.adaptive_avg_pool2d(x, (1, 2, 3))
    with pytest.raises(TypeError, match=r"output_size must be an int, got float"):
        fastattn.adaptive_avg_pool2d(x, 1.5)
    with pytest.raises(ValueError, match=r"x must be 3-D or 4-D"):
        fastattn.adaptive_avg_pool2d(x[None], 1)
    with pytest.raises(ValueError, match=r"out overlaps x"):
        buf = np.zeros(100, np.float32)
        fastattn.adaptive_avg_pool2d(buf[:50].reshape(1, 2, 5, 5), 2,
                                     out=buf[1:9].reshape(1, 2, 2, 2))
