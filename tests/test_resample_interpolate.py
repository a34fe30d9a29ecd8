"""interpolate (nearest, bilinear, bicubic; align_corners; antialias; size or scale_factor)
against the float64 reference and PyTorch over odd sizes, up- and downscaling, batch > 1,
strided inputs, out=, NaN, errors; every ISA path, threads 1-3."""
import numpy as np
import pytest

import fastattn
from fastattn import reference
from fastattn.ops import resample_taps
from conftest import assert_thread_invariant

U = 2.0**-24  # float32 unit roundoff

# (mode, align_corners, antialias): every combination torch accepts
MODES = [("nearest", None, False)] + [(m, ac, aa) for m in ("bilinear", "bicubic")
                                      for ac in (False, True) for aa in (False, True)]
# up and down, odd, unchanged, to 1, and scale factors (one axis up, the other down)
RESIZES = [dict(size=(11, 4)), dict(size=(32, 29)), dict(size=(7, 9)), dict(size=(1, 2)),
           dict(size=5), dict(scale_factor=2.0), dict(scale_factor=(1.7, 0.55)),
           dict(scale_factor=1.01), dict(scale_factor=3.3)]
SHAPES = [(2, 3, 7, 9), (1, 2, 14, 14), (1, 1, 16, 17), (2, 1, 3, 33)]


def expected_and_bound(x, mode, align_corners, antialias, resize):
    """The float64 reference and the kernel's error bound per element:
    |err| <= (k_y + k_x + 3) 2^-24 sum |wy wx x|, k the tap counts per axis: the weights are
    rounded to float32 once each (2 u), the row and column passes are dot products of k_y and
    k_x terms (k u each), 1 u slack."""
    x64 = x.astype(np.float64)
    expected = reference.interpolate(x64, mode=mode, align_corners=align_corners,
                                     antialias=antialias, **resize)
    sf = resize.get("scale_factor")
    scales = sf if isinstance(sf, tuple) else (sf, sf)
    mats, ks = [], []
    for n, o, s in zip(x.shape[-2:], expected.shape[-2:], scales):
        mats.append(np.abs(reference.resample._matrix(n, o, mode, bool(align_corners),
                                                      antialias, s)))
        ks.append(resample_taps.interpolate_taps(n, o, mode, bool(align_corners), antialias,
                                                 s)[0].shape[1])
    return expected, (ks[0] + ks[1] + 3) * U * (mats[0] @ np.abs(x64) @ mats[1].T)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode,align_corners,antialias", MODES)
@pytest.mark.parametrize("resize", RESIZES, ids=str)
def test_interpolate_matches_reference(isa, rng, shape, mode, align_corners, antialias, resize):
    x = rng.standard_normal(shape).astype(np.float32)
    got = fastattn.interpolate(x, mode=mode, align_corners=align_corners, antialias=antialias,
                               **resize)
    expected, bound = expected_and_bound(x, mode, align_corners, antialias, resize)
    assert got.shape == expected.shape
    err = np.abs(got - expected)
    assert np.all(err <= bound), float(np.max(err - bound))


@pytest.mark.parametrize("mode,align_corners,antialias", MODES)
def test_interpolate_threads(isa, rng, mode, align_corners, antialias):
    # 3 planes over 70 output rows: several row blocks per plane, both pass orders
    x = rng.standard_normal((1, 3, 19, 23)).astype(np.float32)
    for size in [(70, 90), (6, 7)]:
        assert_thread_invariant(lambda: fastattn.interpolate(
            x, size=size, mode=mode, align_corners=align_corners, antialias=antialias))


def test_interpolate_vs_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape in SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        H, W = shape[-2:]
        for mode, align_corners, antialias in MODES:
            for resize in RESIZES:
                expected = F.interpolate(torch.from_numpy(x), mode=mode,
                                         align_corners=align_corners, antialias=antialias,
                                         **resize).numpy()
                got = fastattn.interpolate(x, mode=mode, align_corners=align_corners,
                                           antialias=antialias, **resize)
                assert got.shape == expected.shape, (mode, resize)
                if mode == "nearest":  # the same pixels: exact
                    np.testing.assert_array_equal(got, expected)
                    continue
                # torch computes source coordinates and weights in float32: the coordinate
                # s ~ max(H, W) carries up to 2 u max(H, W) absolute error, which moves each
                # weight by up to ~2x that (cubic's slope <= 1.5; antialias renormalises), for
                # every tap: 4 u max(H, W) k max|x| per axis, plus both sides' rounding.
                k = 4 if mode == "bicubic" else 2
                stretch = max(H / got.shape[-2], W / got.shape[-1], 1.0)
                tol = 8 * U * max(H, W) * k * stretch * np.abs(x).max() + 64 * U * np.abs(x).max()
                assert np.abs(got - expected).max() <= tol, (mode, align_corners, antialias,
                                                             resize)


def test_interpolate_nan_propagation_matches_torch(isa, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((1, 2, 9, 11)).astype(np.float32)
    x[0, 0, 4, 5] = np.nan
    x[0, 1, 0, 10] = np.nan
    for mode, align_corners, antialias in MODES:
        for size in [(20, 23), (4, 5)]:
            expected = F.interpolate(torch.from_numpy(x), size=size, mode=mode,
                                     align_corners=align_corners, antialias=antialias).numpy()
            got = fastattn.interpolate(x, size=size, mode=mode, align_corners=align_corners,
                                       antialias=antialias)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))


def test_interpolate_position_embedding_and_mask_shapes(isa, rng):
    # the two uses this op exists for: ViT's position grid (bicubic, scale_factor or size) and
    # mask upsampling (bilinear)
    grid = rng.standard_normal((1, 64, 14, 14)).astype(np.float32)
    by_size = fastattn.interpolate(grid, size=(32, 32), mode="bicubic", align_corners=False)
    by_scale = fastattn.interpolate(grid, scale_factor=32 / 14, mode="bicubic",
                                    align_corners=False)
    assert by_size.shape == by_scale.shape == (1, 64, 32, 32)
    expected = reference.interpolate(grid.astype(np.float64), scale_factor=32 / 14,
                                     mode="bicubic")
    np.testing.assert_allclose(by_scale, expected, atol=32 * U * np.abs(grid).max())
    masks = rng.standard_normal((2, 3, 64, 48)).astype(np.float32)
    up = fastattn.interpolate(masks, size=(256, 192), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(up, reference.interpolate(masks.astype(np.float64),
                                                         size=(256, 192), mode="bilinear"),
                               atol=16 * U * np.abs(masks).max())


def test_interpolate_strided_input_and_out(isa, rng):
    base = rng.standard_normal((2, 10, 3, 24)).astype(np.float32)
    x = base.transpose(0, 2, 1, 3)[..., ::-2]   # (2, 3, 10, 12), reversed and stepped
    expected = fastattn.interpolate(np.ascontiguousarray(x), size=(15, 7), mode="bicubic")
    np.testing.assert_array_equal(fastattn.interpolate(x, size=(15, 7), mode="bicubic"), expected)
    out = np.zeros((2, 3, 7, 15), np.float32).transpose(0, 1, 3, 2)
    assert fastattn.interpolate(x, size=(15, 7), mode="bicubic", out=out) is out
    np.testing.assert_array_equal(out, expected)


def test_interpolate_same_size_in_place(isa, rng):
    x = rng.standard_normal((1, 2, 6, 5)).astype(np.float32)
    expected = x.copy()
    assert fastattn.interpolate(x, size=(6, 5), mode="bilinear", out=x) is x
    np.testing.assert_array_equal(x, expected)  # torch's equal-size shortcut: a copy


def test_interpolate_errors():
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(TypeError, match=r"interpolate: x must be float32, got float64"):
        fastattn.interpolate(x.astype(np.float64), size=3)
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\), got shape \(2, 5, 5\)"):
        fastattn.interpolate(x[0], size=3)
    with pytest.raises(ValueError, match=r"size must be >= 1, got 0"):
        fastattn.interpolate(x, size=(0, 3))
    with pytest.raises(ValueError, match=r"size must be >= 1, got -2"):
        fastattn.interpolate(x, size=-2)
    with pytest.raises(ValueError, match=r"exactly one of size and scale_factor"):
        fastattn.interpolate(x, size=3, scale_factor=2.0)
    with pytest.raises(ValueError, match=r"exactly one of size and scale_factor"):
        fastattn.interpolate(x)
    with pytest.raises(ValueError, match=r"scale_factor must be finite and > 0, got -1"):
        fastattn.interpolate(x, scale_factor=-1)
    with pytest.raises(ValueError, match=r"scale_factor=0.1 gives the output size \(0, 0\)"):
        fastattn.interpolate(x, scale_factor=0.1)
    with pytest.raises(ValueError, match=r"align_corners can only be set with mode 'bilinear'"):
        fastattn.interpolate(x, size=3, mode="nearest", align_corners=False)
    with pytest.raises(ValueError, match=r"antialias=True needs mode 'bilinear' or 'bicubic'"):
        fastattn.interpolate(x, size=3, antialias=True)
    with pytest.raises(ValueError, match=r"mode must be 'nearest', 'bilinear' or 'bicubic', "
                                         r"got 'area'"):
        fastattn.interpolate(x, size=3, mode="area")
    with pytest.raises(TypeError, match=r"align_corners must be None or a bool, got int"):
        fastattn.interpolate(x, size=3, mode="bilinear", align_corners=1)
    with pytest.raises(ValueError, match=r"size must be an int or a pair"):
        fastattn.interpolate(x, size=(3, 3, 3))
    with pytest.raises(ValueError, match=r"non-zero channels, height and width"):
        fastattn.interpolate(np.zeros((1, 2, 0, 5), np.float32), size=3)
