"""KVCache(dtype="float16" | "bfloat16"): 16-bit storage (docs/kv_cache.md, "Storage dtype").

The exact tests: append rounds to nearest even (bits equal to NumPy's float16 cast / an
integer-rounding bfloat16 reference, every edge case: ties, subnormals, overflow to inf, inf,
NaN), keys()/values() convert back exactly, and attention over a 16-bit cache is float32
attention over the dequantized keys and values: the same bits as a float32 cache fed the
dequantized values (the kernel converts in registers, then runs the float32 arithmetic in the
same order), on every ISA path, any thread count, through rings, windows, chunked prefill and
decode. Then nbytes, repr, validation, the analysis byte count, and greedy generation with a
16-bit cache against float32 within a bound derived from the rounding."""
import numpy as np
import pytest

import fastattn
from fastattn import _core, analysis, reference
from fastattn import weight_formats as wf
from fastattn.io import bf16_to_float32, float32_to_bf16
from fastattn.loading import builder_for
from fastattn.testing import random_checkpoint
from conftest import assert_thread_invariant

DTYPES = ["float16", "bfloat16"]
# unit roundoff of each storage: relative rounding error <= 2^-(p), p = significand bits
UNIT = {"float16": 2.0**-11, "bfloat16": 2.0**-8}


# -- NumPy references of the conversion ---------------------------------------------------------
# float16: NumPy's cast (IEEE, with subnormals and overflow to inf); bfloat16: the integer
# rounding of the top half, NaN kept quiet (fastattn.io's, checked bit by bit against hand
# patterns in test_safetensors.py). The same helpers the weight formats use.
def to_bits(x: np.ndarray, dtype: str) -> np.ndarray:
    """float32 -> 16-bit patterns, round to nearest even."""
    x = np.asarray(x, np.float32)
    return wf.float16_bits(x) if dtype == "float16" else float32_to_bf16(x)


def from_bits(bits: np.ndarray, dtype: str) -> np.ndarray:
    return wf.float16_to_float32(bits) if dtype == "float16" else bf16_to_float32(bits)


def dequantized(x: np.ndarray, dtype: str) -> np.ndarray:
    return from_bits(to_bits(x, dtype), dtype)


def edge_values(dtype: str) -> np.ndarray:
    """Ties, subnormals, overflow, specials, and random values over many binades; 93 values (not
    a multiple of any vector width, so the tails are converted too)."""
    f16 = [2.0**-24, 2.0**-25, 3 * 2.0**-25, 5 * 2.0**-26, 2.0**-26, 1.5 * 2.0**-24,
           2.5 * 2.0**-24, 2.0**-14, 2.0**-14 - 2.0**-25, 2.0**-14 - 2.0**-26,
           1 + 2.0**-11, 1 + 3 * 2.0**-11, 1 + 2.0**-11 + 2.0**-20, 2048 + 1, 2048 + 3,
           65504.0, 65519.0, 65519.996, 65520.0, 65536.0, 1e5, 3e38]
    bf16 = [1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-8 + 2.0**-20, 3.3895314e38,
            np.finfo(np.float32).max, 2.0**-126, 2.0**-130, 2.0**-149, 1e-40]
    special = [0.0, np.inf, np.nan, 1.0, 1e-45]
    rng = np.random.default_rng(5)
    rand = rng.standard_normal(40) * 2.0 ** rng.integers(-30, 20, 40)
    x = np.array((f16 if dtype == "float16" else bf16) + special, np.float64)
    x = np.concatenate([x, -x, rand])
    return np.resize(x, 93).astype(np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_append_rounds_to_nearest_even_and_keys_convert_back(isa, dtype):
    x = edge_values(dtype)
    n = x.size
    cache = fastattn.KVCache(1, 1, 1, n, 3, dtype=dtype)
    assert cache._k.dtype == np.uint16
    k = x.reshape(1, 1, 1, n)
    cache.append(0, k, -k)
    expected = to_bits(x, dtype)
    got = cache._k[0, 0, 0, 0]
    nan = np.isnan(x)
    np.testing.assert_array_equal(got[~nan], expected[~nan])
    # NaN: a quiet NaN of the same sign (payload bits are the hardware's)
    back = cache.keys(0)[0, 0, 0]
    assert np.isnan(back[nan]).all() and np.array_equal(np.signbit(back[nan]), np.signbit(x[nan]))
    np.testing.assert_array_equal(back[~nan], from_bits(expected[~nan], dtype))
    np.testing.assert_array_equal(cache.values(0)[0, 0, 0][~nan], from_bits(to_bits(-x, dtype),
                                                                           dtype)[~nan])
    if dtype == "float16":   # the documented overflow: |x| >= 65520 -> inf, 65504 stays
        big = np.abs(x) >= 65520
        assert np.isinf(back[big]).all() and (back[np.abs(x) == 65504] != np.inf).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_core_conversions_match_the_reference(isa, dtype):
    x = np.concatenate([edge_values(dtype), np.float32([np.nan, -np.inf])])
    bits = np.empty(x.shape, np.uint16)
    _core.kv_from_float32(x, bits, dtype)
    ok = ~np.isnan(x)
    np.testing.assert_array_equal(bits[ok], to_bits(x, dtype)[ok])
    back = np.empty(x.shape, np.float32)
    _core.kv_to_float32(bits, back, dtype)
    np.testing.assert_array_equal(back, from_bits(bits, dtype))
    # every 16-bit pattern converts exactly and rounds back to itself (NaNs: stay NaN)
    every = np.arange(2**16, dtype=np.uint16)
    f = np.empty(every.shape, np.float32)
    _core.kv_to_float32(every, f, dtype)
    ref = from_bits(every, dtype)
    nan = np.isnan(ref)
    np.testing.assert_array_equal(f[~nan], ref[~nan])
    assert np.isnan(f[nan]).all()
    again = np.empty(every.shape, np.uint16)
    _core.kv_from_float32(f, again, dtype)
    np.testing.assert_array_equal(again[~nan], every[~nan])


# -- attention over a 16-bit cache == float32 attention over the dequantized values ------------
def twin_caches(dtype, *args, **kw):
    return (fastattn.KVCache(*args, dtype=dtype, **kw),
            fastattn.KVCache(*args, dtype="float32", **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads,D,window,chunk", [((4, 4), 16, None, 5),   # MHA, full cache
                                                  ((8, 2), 19, 24, 1),     # GQA ring, decode
                                                  ((3, 1), 64, 24, 9)])    # MQA ring, chunks
def test_attend_is_float32_attention_over_the_dequantized_cache(isa, rng, dtype, heads, D,
                                                               window, chunk):
    Hq, Hkv = heads
    N = 60
    capacity = N if window is None else window + chunk - 1
    half, f32 = twin_caches(dtype, 2, 1, Hkv, D, capacity, window=window)
    k = rng.standard_normal((1, Hkv, N, D)).astype(np.float32) * 3
    v = rng.standard_normal((1, Hkv, N, D)).astype(np.float32)
    q = rng.standard_normal((1, Hq, N, D)).astype(np.float32)
    kd, vd = dequantized(k, dtype), dequantized(v, dtype)
    for t in range(0, N, chunk):
        T = min(chunk, N - t)
        half.append(1, k[:, :, t:t + T], v[:, :, t:t + T])
        f32.append(1, kd[:, :, t:t + T], vd[:, :, t:t + T])
        got = half.attend(1, q[:, :, t:t + T])
        # the same float32 operations on the same values: the same bits
        np.testing.assert_array_equal(got, f32.attend(1, q[:, :, t:t + T]))
    np.testing.assert_array_equal(half.keys(1), f32.keys(1))
    np.testing.assert_array_equal(half.values(1), f32.values(1))
    # and that is attention over the dequantized history (tests/test_kv_cache.py's bound)
    from test_kv_cache import attend_tolerance
    ref = reference.cached_attention(q[:, :, -chunk:].astype(np.float64), kd.astype(np.float64),
                                     vd.astype(np.float64), np.arange(N - chunk, N),
                                     window=window)
    scores = np.abs(np.einsum("bhtd,bhnd->bhtn", q[:, :, -chunk:],
                              np.repeat(kd, Hq // Hkv, axis=1))).max() / np.sqrt(D)
    assert np.abs(half.attend(1, q[:, :, -chunk:]) - ref).max() <= attend_tolerance(
        N, float(scores), float(np.abs(vd).max()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_decode_split_kv_chunks_thread_invariant(isa, rng, dtype):
    # 2100 keys, 2 kv heads: split into 5 chunks of ~420 keys (decode.cpp's policy), a ring
    # that has wrapped; decode (1 query) and chunked prefill (37 queries over the ring)
    half, f32 = twin_caches(dtype, 1, 1, 2, 40, 2100 + 63, window=2100)
    k = rng.standard_normal((1, 2, 2400, 40)).astype(np.float32)
    v = rng.standard_normal((1, 2, 2400, 40)).astype(np.float32)
    for t in range(0, 2400, 60):
        half.append(0, k[:, :, t:t + 60], v[:, :, t:t + 60])
        f32.append(0, dequantized(k[:, :, t:t + 60], dtype), dequantized(v[:, :, t:t + 60], dtype))
    for T in (1, 37):
        q = rng.standard_normal((1, 8, T, 40)).astype(np.float32)
        got = assert_thread_invariant(lambda q=q: half.attend(0, q))
        np.testing.assert_array_equal(got, f32.attend(0, q))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("window", [None, 6])
def test_attend_new_prefill_and_decode_see_the_stored_values(rng, dtype, window):
    # attend_new: a prompt chunk attends over (cached ++ new keys) rounded to the storage, a
    # decode step over the cache in place; both equal a float32 cache fed the rounded values.
    half, f32 = (fastattn.KVCache.for_stream(1, 2, 2, 8, 30, window=window, dtype=d)
                 for d in (dtype, "float32"))
    mask = np.ones((2, 30), bool)
    mask[1, :3] = False   # the second sequence's prompt is left-padded by 3
    t = 0
    for T, masked in [(7, True), (1, True), (1, False), (5, False), (1, False), (1, False)]:
        q = rng.standard_normal((2, 4, T, 8)).astype(np.float32)
        k = rng.standard_normal((2, 2, T, 8)).astype(np.float32)
        v = rng.standard_normal((2, 2, T, 8)).astype(np.float32)
        km = mask[:, :t + T] if masked else None
        got = half.attend_new(0, q, k, v, key_mask=km)
        want = f32.attend_new(0, q, dequantized(k, dtype), dequantized(v, dtype), key_mask=km)
        np.testing.assert_array_equal(got, want)
        t += T
    np.testing.assert_array_equal(half.values(0), f32.values(0))


# -- the object: bytes, repr, validation, errors ------------------------------------------------
def test_nbytes_halves_and_repr_names_the_dtype():
    sizes = {d: fastattn.KVCache(3, 2, 4, 16, 50, window=20, dtype=d).nbytes
             for d in ("float32", "float16", "bfloat16")}
    assert sizes["float32"] == 2 * 3 * 2 * 4 * 50 * 16 * 4
    assert sizes["float16"] == sizes["bfloat16"] == sizes["float32"] // 2
    cache = fastattn.KVCache(1, 1, 1, 4, 8, dtype="bfloat16")
    assert "dtype='bfloat16'" in repr(cache) and cache.dtype == "bfloat16"
    assert fastattn.KVCache(1, 1, 1, 4, 8, dtype=np.float16).dtype == "float16"
    assert fastattn.KVCache.for_stream(1, 1, 1, 4, 100, window=8, dtype="float16").dtype == \
        "float16"


def test_dtype_errors():
    with pytest.raises(ValueError, match=r"KVCache: dtype must be 'float32', 'float16' or "
                                         r"'bfloat16', got 'int8'"):
        fastattn.KVCache(1, 1, 1, 4, 8, dtype="int8")
    with pytest.raises(TypeError, match="KVCache: dtype must be a str"):
        fastattn.KVCache(1, 1, 1, 4, 8, dtype=16)
    with pytest.raises(ValueError, match="dtype must be"):
        fastattn.KVCache(1, 1, 1, 4, 8, dtype=np.int8)
    model = _model("gpt2")
    with pytest.raises(ValueError, match="generate: dtype must be"):
        model.generate(np.array([[1, 2]]), 2, kv_dtype="half")


@pytest.mark.parametrize("dtype", DTYPES)
def test_errors_leave_a_16_bit_cache_unchanged(rng, dtype):
    cache = fastattn.KVCache(1, 1, 2, 4, 10, dtype=dtype)
    k = rng.standard_normal((1, 2, 8, 4)).astype(np.float32)
    cache.append(0, k, k)
    bits = cache._k.copy(), cache._v.copy()
    for bad in (lambda: cache.append(0, k[:, :, :3], k[:, :, :3]),            # no room
                lambda: cache.append(0, k[:, :1], k[:, :1]),                   # heads
                lambda: cache.append(0, k.astype(np.float64), k)):             # dtype
        with pytest.raises((TypeError, ValueError)):
            bad()
    np.testing.assert_array_equal(cache._k, bits[0])
    np.testing.assert_array_equal(cache._v, bits[1])
    assert cache.lengths[0] == 8


def test_core_refuses_a_store_of_the_wrong_dtype():
    f32 = np.zeros((1, 1, 1, 8, 4), np.float32)
    u16 = np.zeros((1, 1, 1, 8, 4), np.uint16)
    k = np.ones((1, 1, 1, 4), np.float32)
    q, out = np.ones((1, 1, 1, 4), np.float32), np.empty((1, 1, 1, 4), np.float32)
    with pytest.raises(TypeError, match=r"kstore must be uint16 \(native byte order: float16"):
        _core.kv_append(f32, f32.copy(), 0, k, k, 0, "float16")
    with pytest.raises(TypeError, match="kstore must be float32"):
        _core.kv_append(u16, u16.copy(), 0, k, k, 0, "float32")
    with pytest.raises(TypeError, match="kstore must be uint16"):
        _core.kv_attend(u16.astype(">u2"), u16, 0, q, out, 1, 0, 1.0, "bfloat16")
    with pytest.raises(TypeError, match="vstore must be uint16"):
        _core.kv_attend(u16, f32, 0, q, out, 1, 0, 1.0, "bfloat16")
    with pytest.raises(ValueError, match="dtype must be 'float32', 'float16' or 'bfloat16'"):
        _core.kv_append(u16, u16.copy(), 0, k, k, 0, "float8")
    with pytest.raises(TypeError, match="src must be uint16"):
        _core.kv_to_float32(f32, f32.copy(), "float16")
    with pytest.raises(TypeError, match="out must be uint16"):
        _core.kv_from_float32(f32, f32.copy(), "float16")
    with pytest.raises(ValueError, match="out has shape"):
        _core.kv_from_float32(f32, u16[..., :2].copy(), "bfloat16")
    with pytest.raises(ValueError, match="dtype must be 'float16' or 'bfloat16'"):
        _core.kv_to_float32(u16, f32, "float32")
    _core.kv_append(u16, u16.copy(), 0, k, k, 0, "float16")
    assert (u16[0, 0, 0, 0] == 0x3C00).all()   # 1.0 in float16


# -- models: start_generation, the analysis byte count, greedy generation -----------------------
GPT2 = dict(model_type="gpt2", n_embd=32, n_head=4, n_layer=2, n_positions=64, vocab_size=100)
LLAMA = dict(model_type="llama", hidden_size=32, intermediate_size=48, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, vocab_size=100)
MISTRAL = dict(LLAMA, model_type="mistral", sliding_window=8)
CONFIGS = {"gpt2": GPT2, "llama": LLAMA, "mistral": MISTRAL}


def _model(name, std=0.02):
    config = fastattn.load_config(CONFIGS[name])
    return builder_for(config.model_type)(config, random_checkpoint(CONFIGS[name], std=std))


@pytest.mark.parametrize("name", ["gpt2", "llama", "mistral"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_analysis_kv_bytes_equal_the_allocation_per_dtype(name, dtype):
    model = _model(name)
    for tokens, batch in [(1, 1), (7, 3), (30, 1), (64, 2)]:   # mistral: a ring from 8 tokens
        cache = model.start_generation(batch, tokens, kv_dtype=dtype)
        assert cache.dtype == dtype
        assert analysis.kv_cache_bytes(CONFIGS[name], tokens, batch=batch, dtype=dtype) == \
            cache.nbytes == cache._k.nbytes + cache._v.nbytes


@pytest.mark.parametrize("name", ["gpt2", "llama", "mistral"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_greedy_generation_with_a_16_bit_cache_tracks_float32(name, dtype):
    # Tolerance (first order in the unit roundoff u of the storage): every K/V element is
    # stored with relative error <= u, so each score moves by <= u sigma (sigma = scale
    # sum_i |q_i k_i|) and each attention output by <= ((e^(2 u sigma) - 1) + u) max|v|
    # ~ (2 sigma + 1) u max|v|. These models (std 0.2 weights, 2 layers) have sigma <= ~1, and
    # a pre-norm residual stack carries a relative perturbation of its attention outputs to
    # the logits at most additively per layer: |dlogits| <= 4 L u max|logits| (4 >= 2 sigma +
    # 1, with float32 rounding's slack). Measured: 0.1 - 1.2 u max|logits| (L = 2), i.e. this
    # bound holds with a margin of >= 6x. Tokens: teacher-forced on the float32 continuation,
    # each step's argmax must agree wherever float32's top-2 margin exceeds twice the bound.
    model = _model(name, std=0.2)
    ids = np.random.default_rng(3).integers(0, 100, (2, 6))
    new = 12
    ref = model.generate(ids, new)
    u, L = UNIT[dtype], 2
    c32 = model.start_generation(2, 6 + new)
    c16 = model.start_generation(2, 6 + new, kv_dtype=dtype)
    assert c16.dtype == dtype and c16.nbytes * 2 == c32.nbytes
    pos = np.broadcast_to(np.arange(6 + new), (2, 6 + new))
    steps = [(0, 6)] + [(t, t + 1) for t in range(6, 6 + new - 1)]
    for a, b in steps:
        l32 = model.step(c32, ref[:, a:b], pos[:, a:b], None)
        l16 = model.step(c16, ref[:, a:b], pos[:, a:b], None)
        tol = 4 * L * u * float(np.abs(l32).max())
        assert np.abs(l16 - l32).max() <= tol, (a, np.abs(l16 - l32).max(), tol)
        top2 = np.sort(l32, axis=-1)[:, -2:]
        sure = top2[:, 1] - top2[:, 0] > 2 * tol
        np.testing.assert_array_equal(l16.argmax(-1)[sure], l32.argmax(-1)[sure])
    out = model.generate(ids, new, kv_dtype=dtype)
    assert out.shape == ref.shape
    # through the text pipeline entry points too (the same loop, kv_dtype passed through)
    streamed = np.stack(list(fastattn.pipelines.iterate_generation(model, ids, new,
                                                                   kv_dtype=dtype)), axis=1)
    np.testing.assert_array_equal(streamed, out[:, 6:])


class _Letters:
    """A tokenizer of single characters (ids 0..99 <-> chr(32 + id)): enough for the text
    pipeline's plumbing."""

    class _Encoding:
        def __init__(self, ids):
            self.ids = ids

    def encode(self, text):
        return self._Encoding([ord(c) - 32 for c in text])

    def decode(self, ids):
        return "".join(chr(32 + i) for i in ids)


def test_text_generator_passes_kv_dtype_through(tmp_path):
    from fastattn.pipelines import TextGenerator
    model = _model("llama", std=0.2)
    model.config.eos_token_id = None
    asked = []
    start = model.start_generation
    model.start_generation = lambda *a, **kw: asked.append(kw.get("kv_dtype")) or start(*a, **kw)
    gen = TextGenerator(tmp_path, model=model, tokenizer=_Letters(), kv_dtype="bfloat16")
    text16 = gen("hello", 6)
    text32 = gen("hello", 6, kv_dtype="float32")
    assert asked == ["bfloat16", "float32"]   # the pipeline default, then the per-call override
    assert len(text16) == len(text32) == 6
    assert text16 == _Letters().decode(model.generate(
        np.array([_Letters().encode("hello").ids]), 6, kv_dtype="bfloat16")[0, 5:].tolist())
    with pytest.raises(ValueError, match="TextGenerator: dtype must be"):
        TextGenerator(tmp_path, model=model, tokenizer=_Letters(), kv_dtype="int4")
