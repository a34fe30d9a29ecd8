"""conv2d (implicit-im2col GEMM, 1x1, patch and depthwise paths, fused epilogue) and
conv_transpose2d against the float64 references, on every ISA path, and against PyTorch when
it is installed.

Tolerance. Each conv2d output is a float32 FMA chain over its K = C / groups * kh * kw products
(K blocks of at most 256 added in order, never deeper than the plain chain; the depthwise path
one chain of kh kw terms): each step rounds once with unit roundoff u = 2^-24 relative to a
partial sum bounded by (|w| * |x|)[n, o, i, j] (the convolution of the absolute values), so
    |y - y_exact| <= (K + 2) u (|w| * |x|)          elementwise
(Higham's gamma_K for recursive summation, +2 for the final rounding and slack) - a bound for
any data. The epilogue adds one rounding for + bias, the activation's own error (a few 1e-7
relative on O(1) inputs), its slope (<= 1.13 for GELU) times the sum's error, and one rounding
for + residual, as in tests/test_matmul.py. conv_transpose2d: a chain over C / groups per tap,
then at most kh kw taps added, then + bias: (C / groups + kh kw + 3) u (|x| * |w|).
"""
import numpy as np
import pytest

import fastattn
from fastattn import reference
from conftest import assert_epilogue_within, assert_thread_invariant

U = 2.0 ** -24
ACTIVATIONS = [None, "relu", "gelu", "gelu_tanh", "silu"]


def f64(a):
    return None if a is None else np.asarray(a, np.float64)


def operands(rng, x_shape, w_shape):
    """Normal entries, the weights scaled by K^-1/2 so an output is O(1)."""
    k = int(np.prod(w_shape[1:]))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) / max(k, 1) ** 0.5).astype(np.float32)
    return x, w


def check_conv(y, x, w, bias=None, activation=None, residual=None, **geometry):
    """y against reference.conv2d in float64 within the bound above (epilogue included)."""
    x64, w64 = f64(x), f64(w)
    k = w.shape[1] * w.shape[2] * w.shape[3]
    s = reference.conv2d(x64, w64, **geometry)
    tol = (k + 2) * U * reference.conv2d(np.abs(x64), np.abs(w64), **geometry) + 1e-30
    expected = reference.conv2d(x64, w64, f64(bias), activation=activation,
                                residual=f64(residual), **geometry)
    z = s if bias is None else s + f64(bias)[:, None, None]
    assert_epilogue_within(y, expected, z, tol, residual=residual,
                           epilogue=bias is not None or activation is not None)


def check_transpose(y, x, w, bias=None, **geometry):
    x64, w64 = f64(x), f64(w)
    k = x.shape[1] // geometry.get("groups", 1) + w.shape[2] * w.shape[3] + 3
    expected = reference.conv_transpose2d(x64, w64, f64(bias), **geometry)
    tol = k * U * (reference.conv_transpose2d(np.abs(x64), np.abs(w64), **geometry)
                   + (0 if bias is None else np.abs(f64(bias))[:, None, None])) + 1e-30
    assert y.shape == expected.shape and y.dtype == np.float32
    err = np.abs(y.astype(np.float64) - expected)
    assert np.all(err <= tol), f"max err {err.max():.3g}, worst ratio {(err / tol).max():.3g}"


# (N, C, H, W, Cout, kh, kw, geometry): tiles around MR = 4 / 6 / 12 output channels and
# NR = 8 / 16 / 32 pixels, K blocks around 256, odd sizes, every path (general im2col with
# strides, padding, dilation; 1x1; kernel == stride; groups; depthwise).
CASES = [
    (1, 1, 1, 1, 1, 1, 1, {}),
    (1, 3, 5, 5, 4, 3, 3, {}),
    (2, 3, 7, 9, 5, 3, 3, dict(padding=1)),
    (1, 4, 8, 8, 12, 3, 3, dict(padding=1, stride=2)),
    (2, 5, 11, 13, 13, 3, 2, dict(padding=(1, 0), stride=(2, 3))),
    (1, 6, 9, 10, 7, 3, 3, dict(padding=2, dilation=2)),
    (1, 3, 30, 31, 8, 7, 7, dict(stride=2, padding=3)),  # ResNet's stem: strided phases
    (1, 2, 17, 40, 5, 3, 9, dict(stride=(1, 4), padding=(1, 5), dilation=(1, 3))),
    (1, 2, 12, 11, 6, 5, 3, dict(padding=(2, 1), dilation=(1, 2), stride=(1, 2))),
    (1, 29, 6, 7, 33, 3, 3, dict(padding=1)),          # K = 261: two K blocks
    (1, 64, 5, 6, 17, 3, 3, dict(padding=1)),          # K = 576: three K blocks
    (2, 8, 7, 7, 24, 1, 1, {}),                        # 1x1
    (1, 300, 3, 5, 14, 1, 1, {}),                      # 1x1, K = 300
    (1, 8, 9, 9, 5, 1, 1, dict(stride=2)),             # 1x1 strided
    (1, 3, 32, 48, 16, 16, 16, dict(stride=16)),       # patch embedding
    (2, 3, 13, 19, 7, 4, 4, dict(stride=4)),           # patch, input not a multiple
    (1, 2, 9, 8, 3, 3, 2, dict(stride=(3, 2))),        # patch, rectangular
    (1, 3, 28, 150, 10, 14, 14, dict(stride=14)),      # patch 14: 8 x 8 transposes + rest
    (2, 2, 18, 27, 5, 9, 9, dict(stride=9)),
    (2, 6, 8, 9, 9, 3, 3, dict(padding=1, groups=3)),  # grouped
    (1, 8, 7, 7, 4, 3, 3, dict(groups=2)),
    (1, 1, 40, 41, 33, 3, 3, dict(padding=1)),         # C = 1 (K = 9); > 1024 pixels:
    (1, 5, 33, 34, 13, 3, 3, dict(padding=1)),         #   weights packed, not read in place
    (1, 2, 1, 40, 5, 1, 3, dict(padding=(0, 1))),
    (1, 20, 7, 7, 64, 3, 3, dict(padding=1)),          # 49 pixels: the narrow tile (AVX-512)
    (2, 40, 7, 7, 100, 1, 1, {}),
    (1, 3, 4, 4, 2, 4, 4, {}),                          # kernel == input: one pixel
    (1, 3, 3, 3, 2, 2, 2, dict(padding=5)),            # padding larger than the kernel
]


@pytest.mark.parametrize("n,c,h,w,cout,kh,kw,geometry", CASES)
def test_conv2d(isa, rng, n, c, h, w, cout, kh, kw, geometry):
    groups = geometry.get("groups", 1)
    x, wt = operands(rng, (n, c, h, w), (cout, c // groups, kh, kw))
    check_conv(fastattn.conv2d(x, wt, **geometry), x, wt, **geometry)


DEPTHWISE = [
    (1, 4, 7, 9, 4, 3, 3, dict(padding=1)),
    (2, 5, 16, 17, 5, 3, 3, dict(padding=1, stride=2)),
    (1, 3, 20, 33, 6, 5, 5, dict(padding=2)),                 # channel multiplier 2
    (1, 2, 9, 12, 2, 3, 3, dict(padding=2, dilation=2)),
    (1, 3, 10, 11, 3, 7, 7, dict(padding=3, stride=(1, 3))),
    (1, 2, 5, 5, 2, 3, 3, {}),
    (1, 2, 4, 4, 2, 3, 3, dict(padding=4)),
    (1, 2, 4, 150, 4, 3, 5, dict(padding=(1, 2), dilation=(1, 2))),  # 4 chains in registers
]


@pytest.mark.parametrize("n,c,h,w,cout,kh,kw,geometry", DEPTHWISE)
def test_depthwise(isa, rng, n, c, h, w, cout, kh, kw, geometry):
    x, wt = operands(rng, (n, c, h, w), (cout, 1, kh, kw))
    check_conv(fastattn.conv2d(x, wt, groups=c, **geometry), x, wt, groups=c, **geometry)


@pytest.mark.parametrize("padding", ["same", "valid", 0, 1, (2, 0), (0, 3)])
@pytest.mark.parametrize("kernel,dilation", [((3, 3), 1), ((2, 4), 1), ((3, 2), (2, 1)),
                                             ((1, 5), 2)])
def test_padding_modes(isa, rng, padding, kernel, dilation):
    x, w = operands(rng, (2, 3, 9, 10), (4, 3) + kernel)
    y = fastattn.conv2d(x, w, padding=padding, dilation=dilation)
    check_conv(y, x, w, padding=padding, dilation=dilation)
    if padding == "same":
        assert y.shape[2:] == x.shape[2:]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape,geometry", [
    ((2, 5, 9, 11, 13, 3, 3), dict(padding=1)),
    ((1, 6, 8, 8, 6, 3, 3), dict(padding=1, groups=6)),   # depthwise
    ((1, 16, 7, 9, 20, 1, 1), {}),                       # 1x1
    ((1, 3, 16, 16, 8, 4, 4), dict(stride=4)),           # patch
])
def test_epilogue(isa, rng, activation, shape, geometry):
    n, c, h, w, cout, kh, kw = shape
    groups = geometry.get("groups", 1)
    x, wt = operands(rng, (n, c, h, w), (cout, c // groups, kh, kw))
    bias = rng.standard_normal(cout).astype(np.float32)
    y0 = fastattn.conv2d(x, wt, **geometry)
    residual = rng.standard_normal(y0.shape).astype(np.float32)
    for b, r in [(bias, None), (None, residual), (bias, residual)]:
        y = fastattn.conv2d(x, wt, b, activation=activation, residual=r, **geometry)
        check_conv(y, x, wt, b, activation, r, **geometry)
    # out= residual: in place on the residual
    r = residual.copy()
    y = fastattn.conv2d(x, wt, bias, activation=activation, residual=r, out=r, **geometry)
    assert y is r
    check_conv(y, x, wt, bias, activation, residual, **geometry)


@pytest.mark.parametrize("shape,geometry", [
    ((2, 16, 21, 23, 24, 3, 3), dict(padding=1)),             # general
    ((2, 32, 40, 44, 32, 3, 3), dict(padding=1, groups=32)),  # depthwise
    ((1, 64, 30, 30, 40, 1, 1), {}),                          # 1x1
    ((1, 3, 64, 96, 48, 8, 8), dict(stride=8)),               # patch
])
def test_thread_invariance(isa, rng, shape, geometry):
    n, c, h, w, cout, kh, kw = shape
    groups = geometry.get("groups", 1)
    x, wt = operands(rng, (n, c, h, w), (cout, c // groups, kh, kw))
    bias = rng.standard_normal(cout).astype(np.float32)
    y = assert_thread_invariant(lambda: fastattn.conv2d(x, wt, bias, activation="gelu",
                                                        **geometry))
    check_conv(y, x, wt, bias, "gelu", **geometry)


TRANSPOSE = [
    (1, 4, 5, 5, 3, 2, 2, dict(stride=2)),                    # SAM's upsampler shape
    (2, 8, 7, 6, 5, 2, 2, dict(stride=2)),
    (1, 3, 4, 5, 2, 3, 3, {}),
    (1, 3, 4, 5, 2, 3, 3, dict(stride=2, padding=1)),
    (1, 3, 4, 5, 2, 3, 3, dict(stride=2, padding=1, output_padding=1)),
    (1, 4, 6, 3, 6, 3, 2, dict(stride=(2, 3), padding=(1, 0), dilation=(1, 2))),
    (1, 4, 5, 5, 4, 3, 3, dict(dilation=2, output_padding=1)),
    (2, 6, 3, 4, 3, 2, 3, dict(groups=3, stride=2)),
    (1, 2, 3, 3, 1, 4, 4, dict(stride=4, output_padding=2)),  # kernel == stride, extra rows
    (1, 29, 9, 11, 13, 2, 2, dict(stride=2, padding=1)),      # kernel == stride, cropped
    (1, 300, 3, 4, 5, 1, 1, {}),                              # K = 300: two K blocks
    (1, 24, 3, 3, 40, 2, 2, dict(stride=2)),                  # 9 pixels: the narrow tile
]


@pytest.mark.parametrize("n,c,h,w,mg,kh,kw,geometry", TRANSPOSE)
def test_conv_transpose2d(isa, rng, n, c, h, w, mg, kh, kw, geometry):
    x, wt = operands(rng, (n, c, h, w), (c, mg, kh, kw))
    bias = rng.standard_normal(mg * geometry.get("groups", 1)).astype(np.float32)
    check_transpose(fastattn.conv_transpose2d(x, wt, **geometry), x, wt, **geometry)
    check_transpose(fastattn.conv_transpose2d(x, wt, bias, **geometry), x, wt, bias, **geometry)


@pytest.mark.parametrize("geometry", [dict(stride=2), dict(stride=2, padding=1, dilation=2)])
def test_conv_transpose2d_thread_invariance(isa, rng, geometry):
    x, wt = operands(rng, (2, 64, 24, 20), (64, 32, 2, 2))
    bias = rng.standard_normal(32).astype(np.float32)
    y = assert_thread_invariant(lambda: fastattn.conv_transpose2d(x, wt, bias, **geometry))
    check_transpose(y, x, wt, bias, **geometry)


def test_layouts_unbatched_and_out(rng):
    x, w = operands(rng, (2, 4, 9, 10), (6, 4, 3, 3))
    expected = fastattn.conv2d(x, w, padding=1)
    # strided / reversed inputs are copied, a strided out receives the result
    xs = np.ascontiguousarray(x[:, :, ::-1])[:, :, ::-1]
    big = np.zeros((2, 6, 9, 20), np.float32)
    y = fastattn.conv2d(np.asfortranarray(xs), w[..., ::1], padding=1, out=big[..., ::2])
    assert np.array_equal(big[..., ::2], expected) and np.all(big[..., 1::2] == 0)
    assert np.shares_memory(y, big) and y.shape == (2, 6, 9, 10)
    # unbatched (C, H, W)
    y3 = fastattn.conv2d(x[1], w, padding=1)
    assert y3.shape == (6, 9, 10) and np.array_equal(y3, expected[1])
    yt = fastattn.conv_transpose2d(x[1], np.ascontiguousarray(w.transpose(1, 0, 2, 3)), stride=2)
    assert yt.shape == (6, 19, 21)


def test_empty(rng):
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    assert fastattn.conv2d(np.zeros((0, 3, 8, 8), np.float32), w).shape == (0, 5, 6, 6)
    # no input channels: the empty sum is 0, the epilogue still runs
    bias = np.arange(5, dtype=np.float32)
    y = fastattn.conv2d(np.zeros((2, 0, 4, 4), np.float32), np.zeros((5, 0, 3, 3), np.float32),
                        bias, activation="relu")
    assert np.array_equal(y, np.broadcast_to(bias[:, None, None], (2, 5, 2, 2)))
    yt = fastattn.conv_transpose2d(np.zeros((0, 3, 4, 4), np.float32),
                                   np.zeros((3, 2, 2, 2), np.float32), stride=2)
    assert yt.shape == (0, 2, 8, 8)


def test_against_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w = operands(rng, (2, 8, 15, 17), (12, 4, 3, 3))
    b = rng.standard_normal(12).astype(np.float32)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    for kw in [dict(padding=1), dict(padding="same", dilation=2), dict(stride=2, groups=2),
               dict(padding=(2, 1), stride=(2, 1), dilation=(1, 3)), dict(padding="valid")]:
        groups = kw.get("groups", 1)
        ww = w if groups == 2 else np.concatenate([w, w], axis=1)
        ours = fastattn.conv2d(x, ww, b, **kw)
        theirs = F.conv2d(t(x), t(ww), t(b), **kw).numpy()
        check_conv(ours, x, ww, b, **kw)
        # both within the bound of the exact result: within twice the bound of each other
        k = ww.shape[1] * 9 + 2
        bound = k * U * reference.conv2d(np.abs(f64(x)), np.abs(f64(ww)), **kw) + U * np.abs(b)[:, None, None]
        assert np.all(np.abs(ours - theirs) <= 2 * bound + 1e-30)
    dw = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    x16 = rng.standard_normal((1, 16, 10, 10)).astype(np.float32)
    ours = fastattn.conv2d(x16, dw, groups=16, stride=2, padding=1)
    theirs = F.conv2d(t(x16), t(dw), groups=16, stride=2, padding=1).numpy()
    assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)  # 9 terms of O(1): ~1e-6 apart
    wt = rng.standard_normal((8, 6, 2, 2)).astype(np.float32)
    for kw in [dict(stride=2), dict(stride=3, padding=1, output_padding=2, dilation=2),
               dict(stride=2, groups=2, output_padding=1)]:
        ours = fastattn.conv_transpose2d(x, wt, **kw)
        theirs = F.conv_transpose2d(t(x), t(wt), **kw).numpy()
        assert ours.shape == theirs.shape
        check_transpose(ours, x, wt, **kw)
        assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)  # 8 + 4 terms of O(1)


# -- bad input: clear errors naming the argument, the expected and the given ---------------

X = np.zeros((1, 4, 8, 8), np.float32)
W = np.zeros((6, 4, 3, 3), np.float32)


@pytest.mark.parametrize("call,error,pattern", [
    (lambda: fastattn.conv2d(X.astype(np.float64), W), TypeError, r"conv2d: x must be float32, got float64"),
    (lambda: fastattn.conv2d(X, W.astype(np.float16)), TypeError, r"weight must be float32"),
    (lambda: fastattn.conv2d(X.tolist(), W), TypeError, r"x must be a numpy.ndarray"),
    (lambda: fastattn.conv2d(X, W, np.zeros(6)), TypeError, r"bias must be float32"),
    (lambda: fastattn.conv2d(X[0, 0], W), ValueError, r"x must be 4-D .* got shape \(8, 8\)"),
    (lambda: fastattn.conv2d(X, W[0]), ValueError, r"weight must be 4-D"),
    (lambda: fastattn.conv2d(X[:, :3], W), ValueError, r"expects 4 input channels .* x has 3 channels"),
    (lambda: fastattn.conv2d(X, W, groups=3), ValueError, r"groups = 3 must divide the input channels"),
    (lambda: fastattn.conv2d(X, W[:5, :2], groups=2), ValueError, r"must divide the output channels"),
    (lambda: fastattn.conv2d(X, W[:0]), ValueError, r"no output channels"),
    (lambda: fastattn.conv2d(X[:, :, :2], W), ValueError, r"kernel \(3 x 3 with dilation\) is larger than the padded input \(2 x 8\)"),
    (lambda: fastattn.conv2d(X, W, dilation=4), ValueError, r"larger than the padded input"),
    (lambda: fastattn.conv2d(X, W, padding=-1), ValueError, r"padding must be >= 0, got -1"),
    (lambda: fastattn.conv2d(X, W, padding="full"), ValueError, r"padding must be 'same' or 'valid', got 'full'"),
    (lambda: fastattn.conv2d(X, W, padding="same", stride=2), ValueError, r"not supported for strided"),
    (lambda: fastattn.conv2d(X, W, padding=1.5), TypeError, r"padding must be an int or a pair"),
    (lambda: fastattn.conv2d(X, W, padding=(1, 2, 3)), ValueError, r"padding must be an int or a pair"),
    (lambda: fastattn.conv2d(X, W, stride=0), ValueError, r"stride must be >= 1, got 0"),
    (lambda: fastattn.conv2d(X, W, dilation=(1, 0)), ValueError, r"dilation must be >= 1"),
    (lambda: fastattn.conv2d(X, W, groups=0), ValueError, r"groups must be >= 1"),
    (lambda: fastattn.conv2d(X, W, groups=True), TypeError, r"groups must be an int"),
    (lambda: fastattn.conv2d(X, W, np.zeros(5, np.float32)), ValueError, r"bias has shape \(5,\), expected \(6,\)"),
    (lambda: fastattn.conv2d(X, W, activation="tanh"), ValueError, r"activation must be"),
    (lambda: fastattn.conv2d(X, W, activation=1), TypeError, r"activation must be None or a str"),
    (lambda: fastattn.conv2d(X, W, residual=np.zeros((1, 6, 8, 8), np.float32)), ValueError, r"residual has shape \(1, 6, 8, 8\), expected \(1, 6, 6, 6\)"),
    (lambda: fastattn.conv2d(X, W, out=np.zeros((1, 6, 8, 8), np.float32)), ValueError, r"out has shape"),
    (lambda: fastattn.conv2d(X, W, out=np.zeros((1, 6, 6, 6))), TypeError, r"out must be float32"),
    (lambda: fastattn.conv_transpose2d(X, W), ValueError, r"weight has shape \(6, 4, 3, 3\), expected 4 input channels first"),
    (lambda: fastattn.conv_transpose2d(X.astype(np.int32), W), TypeError, r"x must be float32, got int32"),
    (lambda: fastattn.conv_transpose2d(X, W[:4], stride=2, output_padding=2), ValueError, r"output_padding must be smaller than either stride or dilation"),
    (lambda: fastattn.conv_transpose2d(X, W[:4], padding=9), ValueError, r"output size would be .* padding \(9, 9\) is too large"),
    (lambda: fastattn.conv_transpose2d(X, W[:4], padding="same"), TypeError, r"padding must be an int or a pair"),
    (lambda: fastattn.conv_transpose2d(X, W[:4], groups=3), ValueError, r"groups = 3 must divide"),
    (lambda: fastattn.conv_transpose2d(X, W[:4], np.zeros(3, np.float32)), ValueError, r"bias has shape \(3,\), expected \(4,\)"),
    (lambda: fastattn.conv_transpose2d(X, W[:4], padding=-1), ValueError, r"padding must be >= 0"),
])
def test_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_out_overlaps_inputs():
    buf = np.zeros(1000, np.float32)
    x = buf[:256].reshape(1, 4, 8, 8)
    with pytest.raises(ValueError, match=r"out overlaps x"):
        fastattn.conv2d(x, W, out=buf[100:316].reshape(1, 6, 6, 6))
    with pytest.raises(ValueError, match=r"out overlaps weight"):
        w = buf[:216].reshape(6, 4, 3, 3)
        fastattn.conv2d(X, w, out=buf[200:416].reshape(1, 6, 6, 6))
