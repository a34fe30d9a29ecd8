"""KVCache: streamed appends (token by token and in chunks) with attend checked at every step
against the float64 reference over the whole history with the causal / sliding-window mask;
ring wrap, split-KV chunks, GQA/MQA, state left unchanged by every error, threads, ISA paths;
a window longer than the storage (a cache that never wraps). One cache shared by several
Python threads: tests/test_concurrency.py."""
import numpy as np
import pytest

import fastattn
from fastattn import reference
from conftest import assert_thread_invariant

EPS = 2.0**-24


def attend_tolerance(n_keys, max_score, max_v):
    """Bound on |attend - exact| per element. Scores: a D-term dot in float32 (pairwise lanes,
    <= ~4 eps |s| for these sizes) times scale; exp: 2 ulp; so each weight is off by
    ~(4 |s|max + 3) eps relative. Numerator and denominator sum <= 64 terms per key block and
    are rescaled once per block: (64 + n/64) eps. Both relative to max |v| (the output is a
    convex combination of v rows); x2 for numerator and denominator."""
    return 2 * (4 * max_score + 3 + 64 + n_keys / 64) * EPS * max_v


class Stream:
    """A random history of keys / values / queries, fed to a cache in chunks."""

    def __init__(self, rng, B, Hq, Hkv, D, N, q_scale=1.0):
        f32 = lambda a: a.astype(np.float32)  # noqa: E731
        self.k = f32(rng.standard_normal((B, Hkv, N, D)))
        self.v = f32(rng.standard_normal((B, Hkv, N, D)))
        self.q = f32(q_scale * rng.standard_normal((B, Hq, N, D)))
        self.D = D

    def run(self, cache, chunk, window, layer=0, check_every=1):
        """Appends the whole stream in chunks; checks each chunk's attend output."""
        N = self.k.shape[2]
        step = 0
        for t in range(0, N, chunk):
            T = min(chunk, N - t)
            cache.append(layer, self.k[:, :, t:t + T], self.v[:, :, t:t + T])
            assert cache.lengths[layer] == t + T
            step += 1
            if step % check_every and t + T < N:
                continue
            y = cache.attend(layer, self.q[:, :, t:t + T])
            ref = reference.cached_attention(
                self.q[:, :, t:t + T].astype(np.float64), self.k[:, :, :t + T].astype(np.float64),
                self.v[:, :, :t + T].astype(np.float64), np.arange(t, t + T), window=window)
            group = self.q.shape[1] // self.k.shape[1]
            scores = np.einsum("bhtd,bhnd->bhtn", self.q[:, :, t:t + T],
                               np.repeat(self.k[:, :, :t + T], group, axis=1)) / np.sqrt(self.D)
            tol = attend_tolerance(t + T, float(np.abs(scores).max()),
                                   float(np.abs(self.v).max()))
            err = float(np.max(np.abs(y - ref)))
            assert err <= tol, f"tokens {t}..{t + T}: error {err:.3g} > {tol:.3g}"


@pytest.mark.parametrize("chunk", [1, 7, 64])
@pytest.mark.parametrize("heads", [(4, 4), (8, 2), (3, 1)])  # MHA, GQA, MQA
def test_ring_stream_three_windows(isa, rng, chunk, heads):
    Hq, Hkv = heads
    W = 32
    cache = fastattn.KVCache(2, 2, Hkv, 19, W + chunk - 1, window=W)
    Stream(rng, 2, Hq, Hkv, 19, 3 * W, q_scale=0.7).run(cache, chunk, W, layer=1)
    assert cache.lengths.tolist() == [0, 3 * W]


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_full_cache_stream(isa, rng, chunk):
    cache = fastattn.KVCache(1, 1, 2, 16, 130)
    Stream(rng, 1, 4, 2, 16, 130).run(cache, chunk, None)
    assert cache.lengths[0] == 130


@pytest.mark.parametrize("D", [1, 7, 8, 9, 16, 17, 64, 128])
def test_head_dims_around_simd_widths(isa, rng, D):
    cache = fastattn.KVCache(1, 1, 2, D, 40, window=20)
    Stream(rng, 1, 4, 2, D, 60).run(cache, 9, 20, check_every=2)


def test_long_ring_many_chunks_and_wraps(isa, rng):
    # 1300 keys visible of a 2750-token stream: the split-KV path uses several chunks, and the
    # ring (1399 slots) wraps, so a chunk's keys come from both segments.
    W, chunk = 1300, 100
    cache = fastattn.KVCache(1, 1, 1, 32, W + chunk - 1, window=W)
    Stream(rng, 1, 2, 1, 32, 2 * W + 150).run(cache, chunk, W, check_every=4)


def test_large_logits_stay_finite(isa, rng):
    # scores of several hundred: exp without max-subtraction would overflow
    cache = fastattn.KVCache(1, 1, 1, 16, 300)
    Stream(rng, 1, 2, 1, 16, 300, q_scale=30.0).run(cache, 50, None)


def test_keys_values_positions_reset(rng):
    W, S = 5, 8
    cache = fastattn.KVCache(2, 1, 1, 3, S, window=W)
    k = rng.standard_normal((1, 1, 20, 3)).astype(np.float32)
    for t in range(0, 12, 4):
        np.testing.assert_array_equal(cache.positions(4), np.arange(t, t + 4))
        for layer in (0, 1):
            cache.append(layer, k[:, :, t:t + 4], -k[:, :, t:t + 4])
    np.testing.assert_array_equal(cache.keys(0), k[:, :, 12 - W:12])  # ring has wrapped
    np.testing.assert_array_equal(cache.values(1), -k[:, :, 12 - W:12])
    cache.append(0, k[:, :, 12:13], k[:, :, 12:13])
    with pytest.raises(ValueError, match=r"layers have different lengths \[13, 12\]"):
        cache.positions()
    np.testing.assert_array_equal(cache.positions(2, layer=1), [12, 13])
    cache.reset()
    assert cache.lengths.tolist() == [0, 0] and cache.keys(0).shape == (1, 1, 0, 3)
    cache.append(0, k[:, :, :2], k[:, :, :2])
    np.testing.assert_array_equal(cache.keys(0), k[:, :, :2])
    full = fastattn.KVCache(1, 1, 1, 3, 10)
    full.append(0, k[:, :, :7], k[:, :, :7])
    np.testing.assert_array_equal(full.keys(0), k[:, :, :7])


def test_scale_and_out(rng):
    cache = fastattn.KVCache(1, 1, 2, 8, 16)
    s = Stream(rng, 1, 2, 2, 8, 16)
    cache.append(0, s.k, s.v)
    q = s.q[:, :, -3:]
    ref = reference.cached_attention(q.astype(np.float64), s.k.astype(np.float64),
                                     s.v.astype(np.float64), np.arange(13, 16), scale=0.05)
    np.testing.assert_allclose(cache.attend(0, q, scale=0.05), ref, atol=1e-6)
    out = np.zeros((1, 2, 3, 16), np.float32)[..., ::2]  # non-contiguous out
    assert cache.attend(0, q, scale=0.05, out=out) is out
    np.testing.assert_allclose(out, ref, atol=1e-6)
    q_strided = np.ascontiguousarray(np.repeat(q, 2, axis=-1))[..., ::2]
    np.testing.assert_array_equal(cache.attend(0, q_strided), cache.attend(0, q))


def test_thread_count_does_not_change_bits(isa, rng):
    cache = fastattn.KVCache(1, 2, 2, 40, 2000, window=1500)
    s = Stream(rng, 2, 8, 2, 40, 1800)
    for t in range(0, 1800, 300):
        cache.append(0, s.k[:, :, t:t + 300], s.v[:, :, t:t + 300])
    assert_thread_invariant(lambda: cache.attend(0, s.q[:, :, -1:]))
    assert_thread_invariant(lambda: cache.attend(0, s.q[:, :, -37:]))


# ---------------------------------------------------------------- errors leave state unchanged
def snapshot(cache):
    return cache.lengths, [cache.keys(i) for i in range(cache.num_layers)], \
        [cache.values(i) for i in range(cache.num_layers)]


def assert_unchanged(cache, before):
    after = snapshot(cache)
    np.testing.assert_array_equal(before[0], after[0])
    for a, b in zip(before[1] + before[2], after[1] + after[2]):
        np.testing.assert_array_equal(a, b)


def test_capacity_overflow_leaves_state_unchanged(rng):
    cache = fastattn.KVCache(2, 1, 2, 4, 10)
    k = rng.standard_normal((1, 2, 8, 4)).astype(np.float32)
    cache.append(0, k, k)
    before = snapshot(cache)
    with pytest.raises(ValueError, match=r"layer 0 holds 8 of 10 tokens; appending 3 would "
                                         r"exceed the capacity"):
        cache.append(0, k[:, :, :3], k[:, :, :3])
    assert_unchanged(cache, before)
    cache.append(0, k[:, :, :2], k[:, :, :2])  # exactly full is fine
    assert cache.lengths[0] == 10


def test_bad_inputs_leave_state_unchanged(rng):
    cache = fastattn.KVCache(2, 2, 2, 4, 12, window=8)
    good = rng.standard_normal((2, 2, 3, 4)).astype(np.float32)
    cache.append(0, good, good)
    before = snapshot(cache)
    cases = [
        (TypeError, r"KVCache.append: v must be float32, got float64",
         lambda: cache.append(0, good, good.astype(np.float64))),
        (TypeError, r"KVCache.append: k must be a numpy.ndarray of float32, got list",
         lambda: cache.append(0, good.tolist(), good)),
        (ValueError, r"KVCache.append: k has shape \(2, 3, 3, 4\), expected \(2, 2, T >= 1, 4\)",
         lambda: cache.append(0, np.zeros((2, 3, 3, 4), np.float32), good)),
        (ValueError, r"KVCache.append: v has shape \(2, 2, 3, 5\)",
         lambda: cache.append(0, good, np.zeros((2, 2, 3, 5), np.float32))),
        (ValueError, r"KVCache.append: v has shape \(2, 2, 2, 4\), expected \(2, 2, 3, 4\)",
         lambda: cache.append(0, good, good[:, :, :2])),
        (ValueError, r"KVCache.append: k has shape \(2, 2, 0, 4\)",
         lambda: cache.append(0, good[:, :, :0], good[:, :, :0])),
        (ValueError, r"KVCache.append: layer 2 is out of range for 2 layers",
         lambda: cache.append(2, good, good)),
        (TypeError, r"KVCache.append: layer must be an int, got float",
         lambda: cache.append(0.0, good, good)),
        (ValueError, r"KVCache.append: 6 tokens in one append, but with window 8 and capacity "
                     r"12 at most 5 fit",
         lambda: cache.append(0, np.zeros((2, 2, 6, 4), np.float32),
                              np.zeros((2, 2, 6, 4), np.float32))),
        (ValueError, r"KVCache.attend: q has shape \(2, 3, 1, 4\), expected "
                     r"\(2, a multiple of 2, T >= 1, 4\)",
         lambda: cache.attend(0, np.zeros((2, 3, 1, 4), np.float32))),
        (ValueError, r"KVCache.attend: 3 queries but layer 1 holds 0 tokens",
         lambda: cache.attend(1, good)),
        (ValueError, r"KVCache.attend: scale must be finite and > 0",
         lambda: cache.attend(0, good, scale=-1.0)),
        (ValueError, r"KVCache.keys: layer -1 is out of range",
         lambda: cache.keys(-1)),
    ]
    for exc, msg, call in cases:
        with pytest.raises(exc, match=msg):
            call()
        assert_unchanged(cache, before)


def test_chunk_larger_than_the_ring_allows(rng):
    # window 8 in 12 slots: a chunk's first query needs the 7 tokens before it, so at most 5
    # queries (and appended tokens) per call.
    cache = fastattn.KVCache(1, 1, 1, 4, 12, window=8)
    k = rng.standard_normal((1, 1, 5, 4)).astype(np.float32)
    cache.append(0, k, k)
    cache.append(0, k, k)
    before = snapshot(cache)
    with pytest.raises(ValueError, match=r"KVCache.attend: 6 queries in one call, but with "
                                         r"window 8 and capacity 12 at most 5"):
        cache.attend(0, np.zeros((1, 1, 6, 4), np.float32))
    assert_unchanged(cache, before)
    assert cache.attend(0, np.zeros((1, 1, 5, 4), np.float32)).shape == (1, 1, 5, 4)


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"KVCache: capacity must be >= 1, got 0"):
        fastattn.KVCache(1, 1, 1, 4, 0)
    with pytest.raises(TypeError, match=r"KVCache: head_dim must be an int, got float"):
        fastattn.KVCache(1, 1, 1, 4.0, 8)


def test_core_rejects_out_of_bounds_direct_calls():
    # The second line of defence: the binding itself refuses what would read past the ring.
    from fastattn import _core
    ks = np.zeros((1, 1, 1, 4, 2), np.float32)
    q = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"some visible key is not stored"):
        _core.kv_attend(ks, ks.copy(), 0, q, q.copy(), 6, 0, 1.0)
    with pytest.raises(ValueError, match=r"need 1 <= T <= 4"):
        _core.kv_append(ks, ks.copy(), 0, np.zeros((1, 1, 5, 2), np.float32),
                        np.zeros((1, 1, 5, 2), np.float32), 0)


# -- attend_new: the policy a causal attention layer runs on (decode in place, else prefill) --

@pytest.mark.parametrize("window,chunks", [(None, [5, 1, 1, 3, 1]), (4, [9, 1, 1, 2, 1]),
                                           (3, [70, 1, 1]), (16, [9, 1, 1, 3, 1]),
                                           (10**6, [9, 1, 1, 3, 1])])
def test_attend_new_matches_reference_over_the_whole_history(window, chunks):
    """Prompt chunks (longer than the ring's max_chunk too) then single-token decode steps:
    every output equals the float64 reference over the logically ordered history. (Windows
    16 and 10**6 over 15 tokens: for_stream's cache is the stream's 15 slots and never wraps.)"""
    rng = np.random.default_rng(7)
    B, Hq, Hkv, D = 2, 4, 2, 8
    N = sum(chunks)
    s = Stream(rng, B, Hq, Hkv, D, N)
    cache = fastattn.KVCache.for_stream(1, B, Hkv, D, N, window=window)
    t = 0
    for T in chunks:
        out = cache.attend_new(0, s.q[:, :, t:t + T], s.k[:, :, t:t + T], s.v[:, :, t:t + T])
        want = reference.cached_attention(*(a.astype(np.float64) for a in
                                            (s.q[:, :, t:t + T], s.k[:, :, :t + T],
                                             s.v[:, :, :t + T])),
                                          np.arange(t, t + T), window=window)
        np.testing.assert_allclose(out, want, rtol=0, atol=attend_tolerance(t + T, 4 * D, 4))
        t += T
        assert cache.lengths[0] == t


def test_attend_new_with_key_mask_ignores_padded_keys():
    """A left-padded prompt: padded keys take no weight, for the prompt and for later steps."""
    rng = np.random.default_rng(8)
    B, H, D, L = 2, 2, 8, 6
    s = Stream(rng, B, H, H, D, L + 1)
    mask = np.ones((B, L + 1), bool)
    mask[1, :2] = False                           # row 1: two pads, then four real tokens
    cache = fastattn.KVCache.for_stream(1, B, H, D, L + 1)
    outs = [cache.attend_new(0, s.q[:, :, :L], s.k[:, :, :L], s.v[:, :, :L],
                             key_mask=mask[:, :L]),
            cache.attend_new(0, s.q[:, :, L:], s.k[:, :, L:], s.v[:, :, L:], key_mask=mask)]
    for b in range(B):
        real = np.flatnonzero(mask[b])
        q_pos = np.arange(L + 1)[real]
        want = reference.cached_attention(
            *(a[b:b + 1, :, real].astype(np.float64) for a in (s.q, s.k, s.v)),
            np.arange(real.size))
        got = np.concatenate(outs, axis=2)[b:b + 1, :, q_pos]
        np.testing.assert_allclose(got, want, rtol=0, atol=attend_tolerance(L + 1, 4 * D, 4))


def test_for_stream_sizes_the_ring_for_prompt_chunks():
    plain = fastattn.KVCache.for_stream(2, 1, 2, 8, 100)
    assert (plain.capacity, plain.window) == (100, None)
    ring = fastattn.KVCache.for_stream(2, 1, 2, 8, 10**9, window=16)
    assert ring.window == 16 and ring.max_chunk == fastattn.kv_cache.STREAM_CHUNK


def test_attention_layer_refuses_before_touching_the_cache():
    """A call the layer refuses (return_weights, or a window the cache does not have) raises
    before projecting or appending anything: the cache's lengths are unchanged."""
    from fastattn.layers import Attention, Linear
    rng = np.random.default_rng(9)
    e, heads = 16, 2
    layer = Attention(Linear(rng.standard_normal((3 * e, e)).astype(np.float32)),
                      Linear(rng.standard_normal((e, e)).astype(np.float32)), heads, heads,
                      e // heads, causal=True)
    cache = fastattn.KVCache(1, 1, heads, e // heads, 8, window=4)
    x = rng.standard_normal((1, 2, e)).astype(np.float32)
    with pytest.raises(ValueError, match="window"):
        layer(x, positions=np.arange(2), cache=cache)
    cache = fastattn.KVCache(1, 1, heads, e // heads, 8)
    with pytest.raises(ValueError, match="return_weights"):
        layer(x, positions=np.arange(2), cache=cache, return_weights=True)
    assert cache.lengths.tolist() == [0]


@pytest.mark.parametrize("window", [2**62, 2**63 - 1])
def test_core_huge_window_is_no_window(isa, rng, window):
    # A window of `length` or more keys excludes nothing; near 2**63 the binding's storage check
    # (T + W - 1 <= S) and the kernel's p - W + 1 used to overflow int64.
    from fastattn import _core
    ks = rng.standard_normal((1, 1, 2, 16, 8)).astype(np.float32)
    vs = rng.standard_normal((1, 1, 2, 16, 8)).astype(np.float32)
    q = rng.standard_normal((1, 4, 3, 8)).astype(np.float32)
    expected, out = np.empty_like(q), np.empty_like(q)
    _core.kv_attend(ks, vs, 0, q, expected, 10, 0, 0.5)
    _core.kv_attend(ks, vs, 0, q, out, 10, window, 0.5)
    assert np.array_equal(out, expected)
    with pytest.raises(ValueError, match=r"some visible key is not stored"):
        _core.kv_attend(ks, vs, 0, q, out, 17, window, 0.5)  # 17 tokens, 16 slots


# -- a window longer than the storage: sized by the stream, not the window (issue 16, case 8) --

def test_for_stream_is_sized_by_the_stream_not_the_window():
    # A config's sliding_window (131072) once sized the ring whatever the stream: 131135 slots
    # for a 20-token generation. A stream shorter than its window never wraps: its own length.
    short = fastattn.KVCache.for_stream(2, 1, 2, 8, 20, window=131072)
    assert (short.capacity, short.window, short.wraps) == (20, 131072, False)
    assert short._k.nbytes == short._v.nbytes == 2 * 1 * 2 * 20 * 8 * 4
    assert short.max_chunk == 20                  # a whole prompt in one append
    chunk = fastattn.kv_cache.STREAM_CHUNK
    for tokens in (100, 101, 10**9):              # the stream reaches the window: a ring
        ring = fastattn.KVCache.for_stream(2, 1, 2, 8, tokens, window=100)
        assert (ring.capacity, ring.window, ring.wraps) == (100 + chunk - 1, 100, True)
        assert ring.capacity <= min(100, tokens) + chunk
    assert fastattn.KVCache.for_stream(2, 1, 2, 8, 99, window=100).capacity == 99


@pytest.mark.parametrize("window", [16, 17, 10**6])
def test_window_longer_than_the_storage_fills_then_refuses(isa, window, rng):
    """A cache whose window exceeds its capacity (15 slots) never wraps: full, attend over all
    15 tokens is valid (the binding's storage check, length <= slots) and equals the
    reference with that window, which excludes nothing; one more token raises."""
    s = Stream(rng, 2, 4, 2, 8, 15)
    cache = fastattn.KVCache(1, 2, 2, 8, 15, window=window)
    assert cache.window == window and not cache.wraps and cache.max_chunk == 15
    cache.append(0, s.k, s.v)
    want = reference.cached_attention(*(a.astype(np.float64) for a in (s.q, s.k, s.v)),
                                      np.arange(15), window=window)
    np.testing.assert_allclose(cache.attend(0, s.q), want, rtol=0,
                               atol=attend_tolerance(15, 4 * 8, 4))
    before = snapshot(cache)
    with pytest.raises(ValueError, match=rf"layer 0 holds 15 of 15 tokens; appending 1 would "
                                         rf"exceed the capacity \(window {window} > capacity: "
                                         r"this cache does not wrap\)"):
        cache.append(0, s.k[:, :, :1], s.v[:, :, :1])
    assert_unchanged(cache, before)


def test_attend_new_errors_leave_state_unchanged(rng):
    """attend_new validates everything before it writes: decode appends before it attends and a
    prompt is appended in pieces, so a late error used to leave a token (or a prefix of the
    prompt) behind."""
    cache = fastattn.KVCache(1, 1, 2, 4, 6)
    z = np.zeros((1, 2, 2, 4), np.float32)
    cache.attend_new(0, np.zeros((1, 4, 2, 4), np.float32), z, z)
    one = np.zeros((1, 2, 1, 4), np.float32)
    q1 = np.zeros((1, 4, 1, 4), np.float32)
    before = snapshot(cache)
    cases = [
        (ValueError, r"KVCache.attend_new: q has shape \(1, 3, 1, 4\), expected "
                     r"\(1, a multiple of 2, T >= 1, 4\)",
         lambda: cache.attend_new(0, np.zeros((1, 3, 1, 4), np.float32), one, one)),
        (ValueError, r"KVCache.attend_new: scale must be finite and > 0, got -1.0",
         lambda: cache.attend_new(0, q1, one, one, scale=-1.0)),
        (ValueError, r"KVCache.attend_new: q has 1 tokens, k and v 2: one query per new token",
         lambda: cache.attend_new(0, q1, z, z)),
        (ValueError, r"KVCache.attend_new: layer 0 holds 2 of 6 tokens; appending 5 would "
                     r"exceed the capacity",
         lambda: cache.attend_new(0, np.zeros((1, 4, 5, 4), np.float32),
                                  np.zeros((1, 2, 5, 4), np.float32),
                                  np.zeros((1, 2, 5, 4), np.float32))),
        (TypeError, r"KVCache.attend_new: q must be a numpy.ndarray of float32, got list",
         lambda: cache.attend_new(0, [[0.0]], one, one)),
        (TypeError, r"KVCache.attend_new: q must be float32, got float64",
         lambda: cache.attend_new(0, np.zeros((1, 4, 2, 4)), z, z)),
        (ValueError, r"KVCache.attend_new: v has shape \(1, 2, 1, 4\), expected \(1, 2, 2, 4\)",
         lambda: cache.attend_new(0, np.zeros((1, 4, 2, 4), np.float32), z, one)),
    ]
    for exc, msg, call in cases:
        with pytest.raises(exc, match=msg):
            call()
        assert_unchanged(cache, before)
    # a prompt longer than an empty cache's capacity: nothing of it is stored
    empty = fastattn.KVCache(1, 1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"holds 0 of 4 tokens; appending 6 would exceed"):
        empty.attend_new(0, np.zeros((1, 4, 6, 4), np.float32), np.zeros((1, 2, 6, 4),
                         np.float32), np.zeros((1, 2, 6, 4), np.float32))
    assert empty.lengths.tolist() == [0]


# -- scales at the edge of float32 (issue 16, case 7) ------------------------------------------

@pytest.mark.parametrize("scale", [1e39, 3.5e38, float("inf")])
def test_attend_refuses_a_scale_that_is_inf_in_float32(rng, scale):
    # 1e39 is a finite Python float but inf in float32: attend returned all NaN.
    cache = fastattn.KVCache(1, 1, 1, 8, 16)
    s = Stream(rng, 1, 1, 1, 8, 4)
    cache.append(0, s.k, s.v)
    with pytest.raises(ValueError, match=r"KVCache.attend: scale must be finite"):
        cache.attend(0, s.q[:, :, -1:], scale=scale)
    from fastattn import _core
    with pytest.raises(ValueError, match=r"KVCache.attend: scale must be finite in float32"):
        _core.kv_attend(cache._k, cache._v, 0, s.q[:, :, -1:].copy(),
                        np.empty((1, 1, 1, 8), np.float32), 4, 0, scale)


def test_attend_with_a_huge_finite_scale_stays_finite(isa, rng):
    # scale 1e38: most scores exceed float32 and saturate (keys tie) instead of giving NaN.
    cache = fastattn.KVCache(1, 1, 2, 16, 600)
    s = Stream(rng, 1, 4, 2, 16, 600)
    cache.append(0, s.k, s.v)
    out = cache.attend(0, s.q[:, :, -5:], scale=1e38)
    assert np.all(np.isfinite(out))
    assert np.all(np.abs(out) <= np.abs(s.v).max())
