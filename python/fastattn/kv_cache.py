"""KVCache: preallocated keys/values per layer (float32, or 16-bit float16 / bfloat16 storage
converted in the kernels), a ring buffer with a sliding window,
decode / chunked-prefill attention computed directly on the ring, and the policy that serves a
causal attention layer from it (``attend_new``: decode in place, or prefill over cached + new
keys) (docs/kv_cache.md). Safe to share between threads: every public method holds the
cache's lock (class docstring)."""
from __future__ import annotations

import functools
import threading

import numpy as np

from . import _core, _layout
from . import _validate as val  # not `v`: append's argument is v
from .ops.attention import attention

# Extra ring slots a streaming cache (KVCache.for_stream) gets beyond its window W: W slots
# serve one token per step; W + STREAM_CHUNK - 1 let a prompt be prefilled STREAM_CHUNK tokens
# per append (max_chunk = capacity - W + 1) for 63 more slots of memory.
STREAM_CHUNK = 64

# Storage dtypes: float32, or 16 bits per element held as uint16 bit patterns (IEEE binary16,
# or bfloat16: float32's top half). docs/kv_cache.md ("Storage dtype") gives the error bounds.
KV_DTYPES = ("float32", "float16", "bfloat16")


def kv_dtype(op: str, dtype) -> str:
    """``dtype`` as one of KV_DTYPES: the name, or numpy's float32 / float16 dtype (numpy has
    no bfloat16). TypeError for anything else than a str or a numpy dtype, ValueError for
    another name."""
    if isinstance(dtype, (np.dtype, type)) and not isinstance(dtype, str):
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            raise TypeError(f"{op}: dtype must be one of {', '.join(KV_DTYPES)}, got "
                            f"{dtype!r}") from None
    if not isinstance(dtype, str):
        raise TypeError(f"{op}: dtype must be a str (one of {', '.join(KV_DTYPES)}), got "
                        f"{type(dtype).__name__}")
    return val.one_of(op, "dtype", dtype, KV_DTYPES)


def _locked(method):
    """Runs ``method`` holding the cache's lock for the whole call, kernel included. The
    kernels release the GIL, so without it an append's read of the length, its write into the
    storage and its update of the length could interleave with another thread's (appends
    lost, or an attend reading a slot while it is overwritten)."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


class KVCache:
    """Keys and values of ``num_layers`` attention layers for ``batch`` sequences.

    ``KVCache(num_layers, batch, kv_heads, head_dim, capacity, *, window=None,
    dtype="float32")`` allocates ``2 * num_layers * batch * kv_heads * capacity * head_dim``
    elements once (``nbytes``): float32, or with ``dtype="float16"`` / ``"bfloat16"`` 16 bits
    each, half the bytes. A 16-bit cache rounds what it stores to nearest (ties to even;
    float16 turns magnitudes of 65520 and more into inf), returns float32 from ``keys`` /
    ``values``, and attends over the stored (rounded) keys and values, converting them in
    registers: the result is float32 attention over the dequantized cache
    (docs/kv_cache.md, "Storage dtype").

    * Without ``window``: token ``j`` lives in slot ``j``; at most ``capacity`` tokens, and an
      append past it raises ValueError leaving the cache unchanged.
    * With ``window=W <= capacity``: a ring of ``capacity`` slots, token ``j`` in slot
      ``j % capacity``; the stream may run forever in constant memory, old tokens are
      overwritten in place (O(T) per append, nothing shifted), and attention sees only the last
      ``W`` tokens (itself included). A chunk of ``T`` queries needs the ``W - 1`` tokens before
      it as well as itself, so one append (and one attend) takes at most
      ``capacity - W + 1`` tokens: choose ``capacity = W + largest chunk - 1``
      (``capacity == W`` allows single-token steps only).
    * With ``window=W > capacity``: no ring (the cache never wraps), at most ``capacity``
      tokens as without a window, and the window never excludes a key (``length <= capacity
      < W``). ``for_stream`` makes one for a stream shorter than its window, so a model's
      window (Mistral's 4096, a config's 131072) keeps ``.window`` without sizing the storage.

    Lengths are counted per layer (each layer appends its own keys during a forward pass);
    ``positions()`` needs them equal, or names a layer. All sequences of the batch advance
    together. Keys are stored as given: rotate them (``fastattn.rope``) at their absolute
    positions before appending, so the ring never needs re-rotation.

    Threads: a cache may be shared between threads. Every public method (``append``,
    ``attend``, ``attend_new``, ``reset``, ``positions``, ``keys``, ``values``, ``lengths``)
    holds the cache's lock (a ``threading.RLock``) for the whole call, kernel included, so the
    calls on one cache run one at a time and each sees whole earlier calls: appends from
    several threads all land (in some order, each block contiguous), and an attend never reads
    a slot an append is writing (in a ring it may be the oldest visible one). Different caches
    never wait on each other. A forward pass is many calls (layer 0 appends, then layer 1, ...):
    threads sharing one cache interleave calls, not forward passes, so give each generation
    its own cache (``model.start_generation`` does). Errors leave the cache unchanged as
    before: everything is validated before anything is written, under the lock.
    """

    def __init__(self, num_layers: int, batch: int, kv_heads: int, head_dim: int,
                 capacity: int, *, window: int | None = None, dtype="float32"):
        op = "KVCache"
        self.num_layers = val.integer(op, "num_layers", num_layers, 1)
        self.batch = val.integer(op, "batch", batch, 1)
        self.kv_heads = val.integer(op, "kv_heads", kv_heads, 1)
        self.head_dim = val.integer(op, "head_dim", head_dim, 1)
        self.capacity = val.integer(op, "capacity", capacity, 1)
        self.window = None if window is None else val.integer(op, "window", window, 1)
        self.dtype = kv_dtype(op, dtype)
        # A ring only if the window fits in the storage; else the window never excludes a key.
        self._wraps = self.window is not None and self.window <= self.capacity
        self._max_chunk = self.capacity - self.window + 1 if self._wraps else self.capacity
        shape = (self.num_layers, self.batch, self.kv_heads, self.capacity, self.head_dim)
        storage = np.float32 if self.dtype == "float32" else np.uint16  # 16-bit bit patterns
        self._k = np.zeros(shape, storage)
        self._v = np.zeros(shape, storage)
        self._lengths = np.zeros(self.num_layers, np.int64)
        # Re-entrant: attend_new (locked) calls attend, keys and values (locked too).
        self._lock = threading.RLock()

    @classmethod
    def for_stream(cls, num_layers: int, batch: int, kv_heads: int, head_dim: int,
                   tokens: int, *, window: int | None = None, dtype="float32") -> "KVCache":
        """A cache for a stream of ``tokens`` tokens (prompt + generated), sized by the stream
        and never by the window alone: ``tokens`` slots, also with a sliding ``window`` longer
        than the stream (it never wraps; ``.window`` is still ``window``, what the model's
        attention layers check); otherwise a ring of ``window + STREAM_CHUNK - 1`` slots,
        constant in memory however long the stream, that takes prompt chunks of
        ``STREAM_CHUNK`` tokens. Either way ``min(window, tokens) + STREAM_CHUNK`` slots at
        most. ``dtype``: the storage, as for the constructor."""
        op = "KVCache.for_stream"
        tokens = val.integer(op, "tokens", tokens, 1)
        if window is not None:
            window = val.integer(op, "window", window, 1)
        if window is None or tokens < window:
            return cls(num_layers, batch, kv_heads, head_dim, tokens, window=window, dtype=dtype)
        return cls(num_layers, batch, kv_heads, head_dim, window + STREAM_CHUNK - 1,
                   window=window, dtype=dtype)

    # ------------------------------------------------------------------ state
    @property
    @_locked
    def lengths(self) -> np.ndarray:
        """Tokens appended so far to each layer (``(num_layers,)`` int64, a copy); this counts
        evicted tokens too: it is the next absolute position."""
        return self._lengths.copy()

    @property
    def nbytes(self) -> int:
        """Bytes of the key and value storage: 2 x layers x batch x kv_heads x capacity x
        head_dim x (4 for float32, 2 for float16 / bfloat16)."""
        return self._k.nbytes + self._v.nbytes

    @property
    def wraps(self) -> bool:
        """Whether this cache is a ring (a window that fits in the storage): tokens beyond
        ``capacity`` overwrite the oldest; otherwise an append past ``capacity`` raises."""
        return self._wraps

    @property
    def max_chunk(self) -> int:
        """Most tokens one append / attend may carry."""
        return self._max_chunk

    @_locked
    def positions(self, count: int = 1, *, layer: int | None = None) -> np.ndarray:
        """Absolute positions (int64) the next ``count`` tokens will take: what ``fastattn.rope``
        needs for them. With ``layer=None`` every layer must have the same length."""
        op = "KVCache.positions"
        count = val.integer(op, "count", count, 0)
        if layer is None:
            if np.any(self._lengths != self._lengths[0]):
                raise ValueError(f"{op}: layers have different lengths {self._lengths.tolist()} "
                                 "(mid forward pass?); pass layer=")
            start = int(self._lengths[0])
        else:
            start = int(self._lengths[self._layer(op, layer)])
        return np.arange(start, start + count, dtype=np.int64)

    @_locked
    def reset(self) -> None:
        """Forgets every token (lengths to 0). The storage is kept, not cleared."""
        self._lengths[:] = 0

    def _layer(self, op: str, layer) -> int:
        layer = val.integer(op, "layer", layer)
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"{op}: layer {layer} is out of range for {self.num_layers} layers")
        return layer

    def _tokens(self, op: str, name: str, x, heads_multiple: bool = False) -> np.ndarray:
        x = val.float32_array(op, name, x)
        if x.ndim != 4:
            raise ValueError(f"{op}: {name} must be 4-D (batch, heads, T, head_dim), "
                             f"got {x.ndim}-D")
        B, H, T, D = x.shape
        heads_ok = (H >= 1 and H % self.kv_heads == 0) if heads_multiple else H == self.kv_heads
        if B != self.batch or not heads_ok or D != self.head_dim or T < 1:
            heads = f"a multiple of {self.kv_heads}" if heads_multiple else str(self.kv_heads)
            raise ValueError(f"{op}: {name} has shape {val.shape_str(x.shape)}, expected "
                             f"({self.batch}, {heads}, T >= 1, {self.head_dim})")
        return _layout.contiguous(x)

    # ------------------------------------------------------------------ append / attend
    @_locked
    def append(self, layer: int, k: np.ndarray, v: np.ndarray) -> None:
        """Adds ``T >= 1`` tokens to every sequence: ``k, v (batch, kv_heads, T, head_dim)``.
        Everything is validated before anything is written: on error the cache is unchanged."""
        op = "KVCache.append"
        layer = self._layer(op, layer)
        k, vv = self._keys_values(op, k, v)
        T = k.shape[2]
        length = int(self._lengths[layer])
        self._check_room(op, layer, length, T)
        if T > self._max_chunk:
            raise ValueError(f"{op}: {T} tokens in one append, but with window {self.window} "
                             f"and capacity {self.capacity} at most {self.max_chunk} fit "
                             "(capacity - window + 1); split the chunk or raise capacity")
        self._write(layer, k, vv, length)

    def _keys_values(self, op: str, k, v):
        """k, v validated (float32, (batch, kv_heads, T >= 1, head_dim), the same shape) and
        C-contiguous."""
        k = self._tokens(op, "k", k)
        vv = self._tokens(op, "v", v)
        if vv.shape != k.shape:
            raise ValueError(f"{op}: v has shape {val.shape_str(vv.shape)}, expected "
                             f"{val.shape_str(k.shape)} (the shape of k)")
        return k, vv

    def _check_room(self, op: str, layer: int, length: int, T: int) -> None:
        """A cache that does not wrap must have room for T more tokens."""
        if not self._wraps and length + T > self.capacity:
            hint = ("use window= for a rolling cache" if self.window is None else
                    f"window {self.window} > capacity: this cache does not wrap")
            raise ValueError(f"{op}: layer {layer} holds {length} of {self.capacity} tokens; "
                             f"appending {T} would exceed the capacity ({hint})")

    def _scale(self, op: str, scale) -> float:
        """The attention scale: 1 / sqrt(head_dim) by default, else a number > 0 and finite in
        float32 (1e39 would reach the kernel as inf)."""
        if scale is None:
            return 1.0 / float(np.sqrt(self.head_dim))
        return val.positive_float(op, "scale", scale, float32=True)

    def _write(self, layer: int, k: np.ndarray, v: np.ndarray, length: int) -> None:
        """Stores validated k, v (T <= max_chunk tokens) at positions length.. (lock held)."""
        _core.kv_append(self._k, self._v, layer, k, v, length, self.dtype)
        self._lengths[layer] = length + k.shape[2]

    @_locked
    def attend(self, layer: int, q: np.ndarray, *, scale: float | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """Attention of the last ``T`` tokens' queries ``q (batch, Hq, T, head_dim)`` over this
        layer's cache (append their keys first). Query ``t`` sits at position
        ``length - T + t`` and sees the keys ``j <= p`` (causal by absolute position) within the
        window (``j > p - W``). ``Hq`` a multiple of ``kv_heads`` (MHA, GQA, MQA; head ``h``
        uses kv head ``h // (Hq // kv_heads)``). ``scale`` defaults to ``1 / sqrt(head_dim)``.

            out_t = sum_j softmax_j(scale q_t . k_j) v_j

        Computed on the ring's (at most) two contiguous segments, no reordering copy; equals
        ``fastattn.reference.cached_attention`` over the logically ordered history (a 16-bit
        cache: over the stored values, ``keys()`` / ``values()``, converted in registers)."""
        op = "KVCache.attend"
        layer = self._layer(op, layer)
        q_given = q   # out= is checked against the caller's q, not the contiguous copy
        q = self._tokens(op, "q", q, heads_multiple=True)
        T = q.shape[2]
        length = int(self._lengths[layer])
        if T > length:
            raise ValueError(f"{op}: {T} queries but layer {layer} holds {length} tokens; "
                             "append the chunk's keys and values first")
        if T > self.max_chunk:
            raise ValueError(f"{op}: {T} queries in one call, but with window {self.window} "
                             f"and capacity {self.capacity} at most {self.max_chunk} see "
                             "all their keys (capacity - window + 1)")
        scale = self._scale(op, scale)
        out = val.prepare_out(op, out, q.shape, {"q": q_given})
        window = 0 if self.window is None else self.window
        return _layout.run_into(
            out, lambda o: _core.kv_attend(self._k, self._v, layer, q, o, length, window,
                                           float(scale), self.dtype),
            _layout.contiguous_or_none)

    # ------------------------------------------------------------------ a layer's step
    @_locked
    def attend_new(self, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray, *,
                   key_mask: np.ndarray | None = None, scale: float | None = None) -> np.ndarray:
        """Causal attention of a chunk of new tokens over everything cached plus themselves,
        storing their keys and values: ``q (B, Hq, T, D)``, ``k, v (B, kv_heads, T, D)`` (rotated
        already) -> ``(B, Hq, T, D)``. Query ``t`` sits at position ``length + t``.

        ``key_mask (B, length + T)`` bool (or None): False for keys that are padding (left
        padding of a batched prompt), over all tokens so far including these.

        Decode (one token per sequence, no mask, a non-empty cache) appends first and attends
        on the ring in place (``attend``: reads K/V once, split-KV). Anything else (a prompt,
        or a padded batch) attends over (cached keys ++ new keys) BEFORE appending, so a
        sliding-window ring never drops keys that an early query of the chunk still needs;
        the chunk is then appended ``max_chunk`` tokens at a time. A 16-bit cache rounds the
        new keys and values to its storage first, so both paths attend over what the cache
        holds (a prompt then gives the bits of decoding it token by token, to float32
        attention's rounding)."""
        op = "KVCache.attend_new"
        layer = self._layer(op, layer)
        # Everything is validated before anything is written, so an error leaves the cache
        # unchanged: decode appends before it attends, a prompt is appended in pieces.
        q = self._tokens(op, "q", q, heads_multiple=True)
        k, v = self._keys_values(op, k, v)
        T = k.shape[2]
        if q.shape[2] != T:
            raise ValueError(f"{op}: q has {q.shape[2]} tokens, k and v {T}: one query per "
                             "new token")
        length = int(self._lengths[layer])
        self._check_room(op, layer, length, T)
        if T == 1 and key_mask is None and length > 0:
            scale = self._scale(op, scale)   # attend's rule, checked before the append
            self._write(layer, k, v, length)
            return self.attend(layer, q, scale=scale)
        k_new, v_new = self._rounded(k), self._rounded(v)
        if length > 0:
            k_all = np.concatenate([self.keys(layer), k_new], axis=2)
            v_all = np.concatenate([self.values(layer), v_new], axis=2)
        else:
            k_all, v_all = k_new, v_new
        mask = None
        if key_mask is not None:
            mask = np.ascontiguousarray(key_mask[:, -k_all.shape[2]:])[:, None, None, :]
        out = attention(q, k_all, v_all, mask=mask, causal=True, window=self.window,
                        scale=scale)
        step = self._max_chunk
        for start in range(0, T, step):
            self._write(layer, _layout.contiguous(k[:, :, start:start + step]),
                        _layout.contiguous(v[:, :, start:start + step]), length + start)
        return out

    # ------------------------------------------------------------------ inspection
    def _rounded(self, x: np.ndarray) -> np.ndarray:
        """float32 x (C-contiguous) as this cache stores it: rounded to the 16-bit storage and
        back (the identity for float32)."""
        if self.dtype == "float32":
            return x
        bits = np.empty(x.shape, np.uint16)
        _core.kv_from_float32(x, bits, self.dtype)
        return self._float32(bits)

    def _float32(self, bits: np.ndarray) -> np.ndarray:
        """A C-contiguous array of 16-bit storage as float32 (exact)."""
        out = np.empty(bits.shape, np.float32)
        _core.kv_to_float32(bits, out, self.dtype)
        return out

    def _ordered(self, store: np.ndarray, layer) -> np.ndarray:
        layer = self._layer("KVCache.keys", layer)
        length = int(self._lengths[layer])
        first = max(0, length - self.capacity)
        if self.window is not None:
            first = max(first, length - self.window)
        slots = np.arange(first, length) % self.capacity
        ordered = np.ascontiguousarray(store[layer][:, :, slots])   # a new array either way
        return ordered if self.dtype == "float32" else self._float32(ordered)

    @_locked
    def keys(self, layer: int) -> np.ndarray:
        """Logically ordered float32 copy ``(batch, kv_heads, n, head_dim)`` of the keys
        attention can still see: all tokens, or with a window the last ``min(length, W)``
        (a 16-bit cache's stored values, converted exactly)."""
        return self._ordered(self._k, layer)

    @_locked
    def values(self, layer: int) -> np.ndarray:
        """Like ``keys``, for the values."""
        return self._ordered(self._v, layer)

    @_locked
    def __repr__(self) -> str:
        return (f"KVCache(num_layers={self.num_layers}, batch={self.batch}, "
                f"kv_heads={self.kv_heads}, head_dim={self.head_dim}, "
                f"capacity={self.capacity}, window={self.window}, dtype={self.dtype!r}, "
                f"lengths={self._lengths.tolist()})")

