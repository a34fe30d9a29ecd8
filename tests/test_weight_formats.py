"""Weight formats (docs/weight_formats.md): PackedMatrix(weights=...) and matmul on every ISA path.

Two bounds, both from the math:
- the product. The kernels convert every weight exactly to float32 (bf16 / f16 are float32
  numbers; q d has an 8-bit q and an 11-bit d) and run float32 FMA chains over k, so against
  the float64 product of a with the *dequantised* weight wd (``pm.unpacked()``) the error is
  matmul's classical bound (tests/test_matmul.py): |C - a @ wd| <= (K + 2) 2^-24 (|a| @ |wd|).
- the format. Against the float32 weight w, each dequantised weight is off by at most the
  format's bound e (weight_formats.error_bound: 2^-8 |w| bf16, 2^-11 |w| f16, d / 2 q8, q4
  d / 2 or ~|d| where clamped at +7), so |a @ wd - a @ w| <= |a| @ e.
"""
import sys

import numpy as np
import pytest

import fastattn
from fastattn import _core
from fastattn import weight_formats as wf
from fastattn.io import bf16_to_float32, float32_to_bf16
from conftest import assert_epilogue_within, assert_thread_invariant

U = 2.0 ** -24
LOWP = ("bfloat16", "float16", "q8", "q4")
FORMATS = fastattn.WEIGHT_FORMATS


def product_tolerance(a64, wd64, fmt="float32"):
    """The product's float32 bound; for q8 / q4 at M <= the streaming threshold the kernel
    also rounds the activations to int8 per block (weight_formats.quantize_activations,
    llama.cpp's way): their error bound is added (weight_formats.activation_error_bound)."""
    k = a64.shape[-1]
    tol = (k + 2) * U * (np.abs(a64) @ np.abs(wd64)) + 1e-30
    a2 = a64.reshape(-1, k)
    if fmt in ("q8", "q4") and a2.shape[0] <= _core.matmul_lowp_gemv_max_m() and k:
        tol = tol + wf.activation_error_bound(a2.astype(np.float32), wd64).reshape(tol.shape)
    return tol


def weight(rng, k, n):
    return (rng.standard_normal((k, n)) / max(k, 1) ** 0.25).astype(np.float32)


def test_format_table():
    assert fastattn.WEIGHT_FORMATS == ("float32", "bfloat16", "float16", "q8", "q4")
    assert wf.BYTES_PER_WEIGHT == {"float32": 4, "bfloat16": 2, "float16": 2,
                                   "q8": 34 / 32, "q4": 18 / 32}


# M = 1, 2, 3 (streaming path), 5 and 64 (panels); K odd, below / at / above a 32-block and
# the vector widths; N around the panel widths 8 / 16 / 32 and not a multiple of 4.
SHAPES = [(1, 1, 1), (1, 45, 33), (2, 32, 17), (3, 70, 9), (4, 100, 31), (5, 33, 70),
          (64, 129, 65), (2, 300, 1), (13, 64, 32)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_matmul_against_float64_of_dequantised_weight(isa, rng, fmt, m, k, n):
    w, a = weight(rng, k, n), rng.standard_normal((m, k)).astype(np.float32)
    pm = fastattn.PackedMatrix(w, weights=fmt)
    assert pm.weights == fmt and pm.shape == (k, n)
    wd = pm.unpacked()
    assert wd.dtype == np.float32 and wd.shape == (k, n)
    y = fastattn.matmul(a, pm)
    a64, wd64 = a.astype(np.float64), wd.astype(np.float64)
    err = np.abs(y - a64 @ wd64)
    assert np.all(err <= product_tolerance(a64, wd64, fmt))
    # and against the float32 weight: the product's bound plus the format's (module doc)
    e = wf.error_bound(np.ascontiguousarray(w.T), pm.storage() if fmt != "float32" else {},
                       fmt).T
    err32 = np.abs(y - a64 @ w.astype(np.float64))
    tol = product_tolerance(a64, wd64, fmt)
    assert np.all(err32 <= tol + np.abs(a64) @ e + 1e-30)


@pytest.mark.parametrize("fmt", LOWP)
def test_quantisation_error_within_the_formats_bound(rng, fmt):
    # magnitudes over many binades (f16 stays inside its normal range, 2^-14 .. 65504)
    wt = (rng.standard_normal((7, 200)) * 2.0 ** rng.integers(-8, 8, (7, 200))).astype(np.float32)
    st = wf.encode(wt, fmt)
    err = np.abs(wf.decode(st, fmt, 200).astype(np.float64) - wt)
    bound = wf.error_bound(wt, st, fmt)
    assert np.all(err <= bound)
    if fmt in ("q8", "q4"):   # the bound is not loose: some error is near it
        assert (err / bound).max() > 0.5


def test_sixteen_bit_rounding_to_nearest_even():
    one = np.float32(1)
    # bfloat16 keeps 7 fraction bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> even (1);
    # 1 + 3 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6 -> even (1 + 2^-6)
    x = np.array([one + 2.0 ** -8, one + 3 * 2.0 ** -8, one + 2.0 ** -8 + 2.0 ** -20, -2.5,
                  np.inf, 3.4e38], np.float32)
    got = bf16_to_float32(float32_to_bf16(x))
    assert got.tolist() == [1.0, 1 + 2.0 ** -6, 1 + 2.0 ** -7, -2.5, np.inf, np.inf]
    assert np.isnan(bf16_to_float32(float32_to_bf16(np.array([np.nan], np.float32))))[0]
    # float16: 10 fraction bits; beyond 65504 (+ half a step) is inf
    y = np.array([one + 2.0 ** -11, one + 3 * 2.0 ** -11, 65504, 65519, 65520], np.float32)
    assert wf.float16_to_float32(wf.float16_bits(y)).tolist() == [1.0, 1 + 2.0 ** -9, 65504,
                                                                  65504, np.inf]


def test_q4_layout_and_clamp():
    # one block: element i in the low nibble of byte i, element i + 16 in the high nibble
    w = np.zeros((1, 32), np.float32)
    w[0, :] = np.arange(32) - 16            # largest magnitude -16 -> d = 2, q = w / 2
    st = wf.quantize_q4(w)
    assert st["scales"].dtype == np.float16 and float(st["scales"][0, 0]) == 2.0
    q = np.clip(np.rint(w[0] / 2), -8, 7).astype(int) + 8
    assert st["weight"][0].tolist() == [int(q[i]) | int(q[i + 16]) << 4 for i in range(16)]
    # +15 / 2 = 7.5 -> 8 clamps to 7: the error reaches |d| / 2 + ... (here 15 - 14 = 1 = d / 2)
    v = np.zeros((1, 32), np.float32)
    v[0, 0], v[0, 1] = -16, 16               # +16 / 2 = 8 -> 7: error |d| = 2 (documented)
    st = wf.quantize_q4(v)
    back = wf.dequantize_q4(st["weight"], st["scales"], 32)
    assert back[0, 0] == -16 and back[0, 1] == 14
    assert np.all(np.abs(back - v) <= wf.error_bound(v, st, "q4"))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("m", [1, 7])
@pytest.mark.parametrize("activation", [None, "gelu", "silu"])
def test_fused_epilogue(isa, rng, fmt, m, activation):
    k, n = 50, 37
    w, a = weight(rng, k, n), rng.standard_normal((m, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    res = rng.standard_normal((m, n)).astype(np.float32)
    pm = fastattn.PackedMatrix(np.ascontiguousarray(w.T), transpose=True, weights=fmt)
    out = np.full((m, n), np.nan, np.float32)
    y = fastattn.matmul(a, pm, bias=bias, activation=activation, residual=res, out=out)
    assert y is out
    a64, wd64 = a.astype(np.float64), pm.unpacked().astype(np.float64)
    z = a64 @ wd64 + bias
    expected = fastattn.reference.matmul(a64, wd64, bias=bias.astype(np.float64),
                                         activation=activation, residual=res.astype(np.float64))
    assert_epilogue_within(y, expected, z, product_tolerance(a64, wd64, fmt),
                           epilogue=True, residual=res)
    # in place on the residual
    r2 = res.copy()
    fastattn.matmul(a, pm, bias=bias, activation=activation, residual=r2, out=r2)
    np.testing.assert_array_equal(r2, y)


@pytest.mark.parametrize("fmt", LOWP)
@pytest.mark.parametrize("m", [1, 3, 64])
def test_thread_invariant(isa, rng, fmt, m):
    # N K big enough that the streaming path splits N over 3 threads (>= 128 KiB a thread)
    # and the panel path converts and multiplies in parallel
    k, n = 200, 3001 if m < 8 else 300
    pm = fastattn.PackedMatrix(weight(rng, k, n), weights=fmt)
    a = rng.standard_normal((m, k)).astype(np.float32)
    assert_thread_invariant(lambda: fastattn.matmul(a, pm, bias=np.ones(n, np.float32),
                                                    activation="relu"))


@pytest.mark.parametrize("fmt", LOWP)
def test_strided_and_batched_a(isa, rng, fmt):
    k, n = 40, 24
    pm = fastattn.PackedMatrix(weight(rng, k, n), weights=fmt)
    wd64 = pm.unpacked().astype(np.float64)
    big = rng.standard_normal((6, 2 * k)).astype(np.float32)
    for a in (big[:, ::2], big[::-2, :k], big[:3, :k].T.copy().T, big[:1, ::-2][:, :k]):
        assert not a.flags.c_contiguous or a.shape[0] == 1
        y = fastattn.matmul(a, pm)
        a64 = a.astype(np.float64)
        assert np.all(np.abs(y - a64 @ wd64) <= product_tolerance(a64, wd64, fmt))
    a3 = rng.standard_normal((2, 3, k)).astype(np.float32)
    y3 = fastattn.matmul(a3, pm)
    assert y3.shape == (2, 3, n)
    np.testing.assert_array_equal(y3.reshape(6, n), fastattn.matmul(a3.reshape(6, k), pm))
    y1 = fastattn.matmul(a3[0, 0], pm)             # a 1-D row
    assert y1.shape == (n,)


@pytest.mark.parametrize("fmt", LOWP)
def test_empty_shapes(fmt):
    pm0 = fastattn.PackedMatrix(np.zeros((0, 5), np.float32), weights=fmt)
    y = fastattn.matmul(np.zeros((3, 0), np.float32), pm0, bias=np.ones(5, np.float32))
    np.testing.assert_array_equal(y, np.ones((3, 5), np.float32))
    pm = fastattn.PackedMatrix(np.ones((4, 0), np.float32), weights=fmt)
    assert fastattn.matmul(np.ones((2, 4), np.float32), pm).shape == (2, 0)
    assert fastattn.matmul(np.ones((0, 4), np.float32), pm).shape == (0, 0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_storage_round_trip_and_nbytes(rng, fmt):
    k, n = 70, 9
    w = weight(rng, k, n)
    pm = fastattn.PackedMatrix(w, weights=fmt)
    st = pm.storage()
    kp = 96
    expected = {"float32": {"weight": (np.float32, (n, k))},
                "bfloat16": {"weight": (np.uint16, (n, k))},
                "float16": {"weight": (np.uint16, (n, k))},
                "q8": {"weight": (np.int8, (n, kp)), "scales": (np.float16, (n, kp // 32))},
                "q4": {"weight": (np.uint8, (n, kp // 2)), "scales": (np.float16, (n, kp // 32))}}
    assert {key: (x.dtype, x.shape) for key, x in st.items()} == {
        key: (np.dtype(d), s) for key, (d, s) in expected[fmt].items()}
    if fmt != "float32":
        assert pm.nbytes == sum(x.nbytes for x in st.values())
    assert {"bfloat16": 2 * k * n, "float16": 2 * k * n, "q8": n * (kp + 2 * kp // 32),
            "q4": n * (kp // 2 + 2 * kp // 32)}.get(fmt, pm.nbytes) == pm.nbytes
    back = fastattn.PackedMatrix.from_storage(st, (k, n), fmt)
    assert back.weights == fmt and back.shape == (k, n)
    np.testing.assert_array_equal(back.unpacked(), pm.unpacked())
    a = rng.standard_normal((3, k)).astype(np.float32)
    np.testing.assert_array_equal(fastattn.matmul(a, back), fastattn.matmul(a, pm))
    if fmt == "float32":
        np.testing.assert_array_equal(st["weight"], w.T)


@pytest.mark.parametrize("fmt", LOWP)
def test_from_storage_is_zero_copy_on_read_only_arrays(rng, fmt):
    k, n = 64, 10
    st = fastattn.PackedMatrix(weight(rng, k, n), weights=fmt).storage()
    frozen = {}
    for key, x in st.items():
        x = x.copy()
        x.flags.writeable = False                # as a read-only memory-mapped file
        frozen[key] = x
    pm = fastattn.PackedMatrix.from_storage(frozen, (k, n), fmt)
    for key, x in pm.storage().items():
        assert np.shares_memory(x, frozen[key]), key
    a = rng.standard_normal((2, k)).astype(np.float32)
    y = fastattn.matmul(a, pm)
    a64, wd64 = a.astype(np.float64), pm.unpacked().astype(np.float64)
    assert np.all(np.abs(y - a64 @ wd64) <= product_tolerance(a64, wd64, fmt))
    # safetensors gives F16 as float16 or uint16: both wrap without a copy
    if fmt in ("float16", "q8", "q4"):
        key = "weight" if fmt == "float16" else "scales"
        other = frozen[key].view(np.float16 if frozen[key].dtype == np.uint16 else np.uint16)
        pm2 = fastattn.PackedMatrix.from_storage({**frozen, key: other}, (k, n), fmt)
        assert np.shares_memory(pm2.storage()[key], other)
        np.testing.assert_array_equal(fastattn.matmul(a, pm2), y)


def test_storage_is_the_same_on_every_isa_path(rng):
    w = weight(rng, 40, 20)
    a = rng.standard_normal((1, 40)).astype(np.float32)
    for fmt in LOWP:
        with fastattn.use_isa("baseline"):
            pm = fastattn.PackedMatrix(w, weights=fmt)
        for isa in fastattn.available_isas():
            with fastattn.use_isa(isa):
                y = fastattn.matmul(a, pm)
            a64, wd64 = a.astype(np.float64), pm.unpacked().astype(np.float64)
            assert np.all(np.abs(y - a64 @ wd64) <= product_tolerance(a64, wd64, fmt))


# -- errors ------------------------------------------------------------------------------------

def test_errors_name_the_argument(rng):
    w = weight(rng, 8, 4)
    with pytest.raises(TypeError, match=r"PackedMatrix: w must be float32, got float64"):
        fastattn.PackedMatrix(w.astype(np.float64), weights="q8")
    with pytest.raises(ValueError, match=r"weights must be one of .*got 'q5'"):
        fastattn.PackedMatrix(w, weights="q5")
    with pytest.raises(TypeError, match=r"weights must be a str"):
        fastattn.PackedMatrix(w, weights=8)
    with pytest.raises(ValueError, match=r"w must be finite to quantise to q4"):
        fastattn.PackedMatrix(np.full((8, 4), np.inf, np.float32), weights="q4")
    with pytest.raises(ValueError, match=r"scale exceeds float16's largest value"):
        fastattn.PackedMatrix(np.full((8, 4), 1e8, np.float32), weights="q8")
    pm = fastattn.PackedMatrix(w, weights="q4")
    with pytest.raises(TypeError, match=r"matmul: a must be float32, got float64"):
        fastattn.matmul(np.ones((2, 8)), pm)
    with pytest.raises(ValueError, match=r"a has shape \(2, 7\).*inner dimensions 7 and 8"):
        fastattn.matmul(np.ones((2, 7), np.float32), pm)
    with pytest.raises(ValueError, match=r"bias has shape \(5,\), expected \(4,\)"):
        fastattn.matmul(np.ones((2, 8), np.float32), pm, bias=np.ones(5, np.float32))
    with pytest.raises(ValueError, match=r"transpose_b does not apply to a PackedMatrix"):
        fastattn.matmul(np.ones((2, 8), np.float32), pm, transpose_b=True)
    with pytest.raises(ValueError, match=r"no float32 panels"):
        pm.data()


def test_from_storage_errors_name_the_key(rng):
    st = fastattn.PackedMatrix(weight(rng, 40, 6), weights="q8").storage()
    f = fastattn.PackedMatrix.from_storage
    with pytest.raises(TypeError, match=r"storage\['weight'\] must be int8 for q8, got uint8"):
        f({**st, "weight": st["weight"].view(np.uint8)}, (40, 6), "q8")
    with pytest.raises(TypeError, match=r"storage\['scales'\] must be float16 \(or uint16\) "
                                        r"for q8, got float32"):
        f({**st, "scales": st["scales"].astype(np.float32)}, (40, 6), "q8")
    with pytest.raises(ValueError, match=r"storage\['weight'\] has shape \(6, 64\), expected "
                                         r"\(6, 32\)"):
        f(st, (20, 6), "q8")
    with pytest.raises(ValueError, match=r"storage\['scales'\] has shape \(6, 2\), expected "
                                         r"\(7, 2\)"):
        f({**st, "weight": np.zeros((7, 64), np.int8)}, (40, 7), "q8")
    with pytest.raises(ValueError, match=r"q8 storage has the keys \['scales', 'weight'\], "
                                         r"got \['weight'\]"):
        f({"weight": st["weight"]}, (40, 6), "q8")
    with pytest.raises(TypeError, match=r"storage\['weight'\] must be a numpy.ndarray, got list"):
        f({**st, "weight": st["weight"].tolist()}, (40, 6), "q8")
    with pytest.raises(TypeError, match=r"storage must be a dict"):
        f([st["weight"]], (40, 6), "q8")
    with pytest.raises(ValueError, match=r"shape must be \(K, N\)"):
        f(st, (40,), "q8")
    with pytest.raises(ValueError, match=r"shape\[0\] must be >= 0"):
        f(st, (-40, 6), "q8")
    with pytest.raises(TypeError, match=r"storage\['weight'\] must be uint16 for bfloat16, "
                                        r"got float16"):
        f({"weight": np.zeros((6, 40), np.float16)}, (40, 6), "bfloat16")


def test_gemv_threshold_is_reported():
    assert _core.matmul_lowp_gemv_max_m() >= 1


@pytest.mark.parametrize("fmt", ["q8", "q4"])
def test_int8_path_is_exact_integer_dots_of_quantised_activations(isa, rng, fmt):
    # the streaming path computes sum_b d_w d_a (q_w . q_a): with activations that are already
    # int8 multiples of d_a, the activation error term vanishes and only float rounding stays
    k, n = 96, 20
    pm = fastattn.PackedMatrix(weight(rng, k, n), weights=fmt)
    a = rng.integers(-127, 128, (1, k)).astype(np.float32)
    a[0, ::32] = 127                     # d_a = 1 in every block: q_a = a exactly
    q, d = wf.quantize_activations(a)
    np.testing.assert_array_equal(q[0], a[0].astype(np.int8))
    assert np.all(d == 1)
    wd64 = pm.unpacked().astype(np.float64)
    y = fastattn.matmul(a, pm)
    exact = a.astype(np.float64) @ wd64
    nb = 3    # the float sums only (activation_error_bound's second term)
    assert np.all(np.abs(y - exact) <= (nb + 5) * U * (np.abs(a) @ np.abs(wd64)))


@pytest.mark.parametrize("fmt", ["q8", "q4"])
def test_non_finite_activations_propagate(isa, rng, fmt):
    pm = fastattn.PackedMatrix(weight(rng, 40, 8), weights=fmt)
    a = rng.standard_normal((1, 40)).astype(np.float32)
    a[0, 5] = np.inf
    y = fastattn.matmul(a, pm)
    expected = a.astype(np.float64) @ pm.unpacked().astype(np.float64)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(y[np.isinf(expected)], expected[np.isinf(expected)])


def test_python_threads_sharing_a_matrix(rng):
    # per-thread scratch (A's quants, converted panels): concurrent calls on one PackedMatrix
    # give what each gives alone
    from concurrent.futures import ThreadPoolExecutor
    for fmt in LOWP:
        pm = fastattn.PackedMatrix(weight(rng, 96, 80), weights=fmt)
        inputs = [rng.standard_normal((m, 96)).astype(np.float32) for m in (1, 3, 40, 2, 24, 1)]
        alone = [fastattn.matmul(a, pm) for a in inputs]
        with ThreadPoolExecutor(3) as pool:
            together = list(pool.map(lambda a: fastattn.matmul(a, pm), inputs * 3))
        for i, y in enumerate(together):
            np.testing.assert_array_equal(y, alone[i % len(inputs)])


@pytest.mark.parametrize("fmt", LOWP)
def test_panel_path_is_float32_matmul_of_the_dequantised_weight(isa, rng, fmt):
    # above the streaming threshold the weight is converted into the float32 panels and the
    # float32 kernel runs on them: the same bits as a PackedMatrix of pm.unpacked()
    m = _core.matmul_lowp_gemv_max_m() + 1
    for k, n in ((45, 70), (300, 530), (64, 1)):
        pm = fastattn.PackedMatrix(weight(rng, k, n), weights=fmt)
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32)
        f32 = fastattn.PackedMatrix(pm.unpacked())
        np.testing.assert_array_equal(fastattn.matmul(a, pm, bias=b, activation="gelu"),
                                      fastattn.matmul(a, f32, bias=b, activation="gelu"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through ctypes")
@pytest.mark.parametrize("fmt", LOWP)
def test_no_read_past_the_storage(isa, rng, fmt):
    # weight, scales and a each end exactly at an unreadable page: a read past any of them
    # (a 16-bit row's tail, a q4 block, the last row of a) kills the process
    import ctypes
    import mmap
    libc = ctypes.CDLL(None)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    maps = []

    def at_page_end(x):
        pages = -(-x.nbytes // mmap.PAGESIZE) + 1
        m = mmap.mmap(-1, pages * mmap.PAGESIZE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        assert libc.mprotect(base + (pages - 1) * mmap.PAGESIZE, mmap.PAGESIZE, 0) == 0
        y = np.frombuffer(m, x.dtype, x.size, (pages - 1) * mmap.PAGESIZE - x.nbytes)
        y = y.reshape(x.shape)
        y[...] = x
        maps.append(m)
        return y

    for k, n in ((1, 1), (7, 3), (45, 9), (100, 37)):
        pm = fastattn.PackedMatrix(weight(rng, k, n), weights=fmt)
        guarded = fastattn.PackedMatrix.from_storage(
            {key: at_page_end(x) for key, x in pm.storage().items()}, (k, n), fmt)
        for m in (1, 3, _core.matmul_lowp_gemv_max_m() + 1):
            a = rng.standard_normal((m, k)).astype(np.float32)
            np.testing.assert_array_equal(fastattn.matmul(at_page_end(a), guarded),
                                          fastattn.matmul(a, pm))
