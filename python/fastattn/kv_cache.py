"""KVCache: preallocated float32 keys/values per layer, a ring buffer with a sliding window,
and decode / chunked-prefill attention computed directly on the ring (docs/kv_cache.md)."""
from __future__ import annotations

import numbers

import numpy as np

from . import _core
from . import _validate as val  # not `v`: append's argument is v


def _count(op: str, name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")
    return int(value)


class KVCache:
    """Keys and values of ``num_layers`` attention layers for ``batch`` sequences.

    ``KVCache(num_layers, batch, kv_heads, head_dim, capacity, *, window=None)`` allocates
    ``2 * num_layers * batch * kv_heads * capacity * head_dim`` float32 once.

    * Without ``window``: token ``j`` lives in slot ``j``; at most ``capacity`` tokens, and an
      append past it raises ValueError leaving the cache unchanged.
    * With ``window=W`` (``W <= capacity``): a ring of ``capacity`` slots, token ``j`` in slot
      ``j % capacity``; the stream may run forever in constant memory, old tokens are
      overwritten in place (O(T) per append, nothing shifted), and attention sees only the last
      ``W`` tokens (itself included). A chunk of ``T`` queries needs the ``W - 1`` tokens before
      it as well as itself, so one append (and one attend) takes at most
      ``capacity - W + 1`` tokens: choose ``capacity = W + largest chunk - 1``
      (``capacity == W`` allows single-token steps only).

    Lengths are counted per layer (each layer appends its own keys during a forward pass);
    ``positions()`` needs them equal, or names a layer. All sequences of the batch advance
    together. Keys are stored as given: rotate them (``fastattn.rope``) at their absolute
    positions before appending, so the ring never needs re-rotation.
    """

    def __init__(self, num_layers: int, batch: int, kv_heads: int, head_dim: int,
                 capacity: int, *, window: int | None = None):
        op = "KVCache"
        self.num_layers = _count(op, "num_layers", num_layers, 1)
        self.batch = _count(op, "batch", batch, 1)
        self.kv_heads = _count(op, "kv_heads", kv_heads, 1)
        self.head_dim = _count(op, "head_dim", head_dim, 1)
        self.capacity = _count(op, "capacity", capacity, 1)
        self.window = None if window is None else _count(op, "window", window, 1)
        if self.window is not None and self.window > self.capacity:
            raise ValueError(f"{op}: window ({self.window}) must be <= capacity "
                             f"({self.capacity}), the ring's slot count")
        shape = (self.num_layers, self.batch, self.kv_heads, self.capacity, self.head_dim)
        self._k = np.zeros(shape, np.float32)
        self._v = np.zeros(shape, np.float32)
        self._lengths = np.zeros(self.num_layers, np.int64)

    # ------------------------------------------------------------------ state
    @property
    def lengths(self) -> np.ndarray:
        """Tokens appended so far to each layer (``(num_layers,)`` int64, a copy); this counts
        evicted tokens too: it is the next absolute position."""
        return self._lengths.copy()

    @property
    def max_chunk(self) -> int:
        """Most tokens one append / attend may carry."""
        return self.capacity if self.window is None else self.capacity - self.window + 1

    def positions(self, count: int = 1, *, layer: int | None = None) -> np.ndarray:
        """Absolute positions (int64) the next ``count`` tokens will take: what ``fastattn.rope``
        needs for them. With ``layer=None`` every layer must have the same length."""
        op = "KVCache.positions"
        count = _count(op, "count", count, 0)
        if layer is None:
            if np.any(self._lengths != self._lengths[0]):
                raise ValueError(f"{op}: layers have different lengths {self._lengths.tolist()} "
                                 "(mid forward pass?); pass layer=")
            start = int(self._lengths[0])
        else:
            start = int(self._lengths[self._layer(op, layer)])
        return np.arange(start, start + count, dtype=np.int64)

    def reset(self) -> None:
        """Forgets every token (lengths to 0). The storage is kept, not cleared."""
        self._lengths[:] = 0

    def _layer(self, op: str, layer) -> int:
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
            raise TypeError(f"{op}: layer must be an int, got {type(layer).__name__}")
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"{op}: layer {layer} is out of range for {self.num_layers} layers")
        return int(layer)

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
        return np.ascontiguousarray(x)

    # ------------------------------------------------------------------ append / attend
    def append(self, layer: int, k: np.ndarray, v: np.ndarray) -> None:
        """Adds ``T >= 1`` tokens to every sequence: ``k, v (batch, kv_heads, T, head_dim)``.
        Everything is validated before anything is written: on error the cache is unchanged."""
        op = "KVCache.append"
        layer = self._layer(op, layer)
        k = self._tokens(op, "k", k)
        vv = self._tokens(op, "v", v)
        if vv.shape != k.shape:
            raise ValueError(f"{op}: v has shape {val.shape_str(vv.shape)}, expected "
                             f"{val.shape_str(k.shape)} (the shape of k)")
        T = k.shape[2]
        length = int(self._lengths[layer])
        if self.window is None and length + T > self.capacity:
            raise ValueError(f"{op}: layer {layer} holds {length} of {self.capacity} tokens; "
                             f"appending {T} would exceed the capacity (use window= for a "
                             "rolling cache)")
        if T > self.max_chunk:
            raise ValueError(f"{op}: {T} tokens in one append, but with window {self.window} "
                             f"and capacity {self.capacity} at most {self.max_chunk} fit "
                             "(capacity - window + 1); split the chunk or raise capacity")
        _core.kv_append(self._k, self._v, layer, k, vv, length)
        self._lengths[layer] = length + T

    def attend(self, layer: int, q: np.ndarray, *, scale: float | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """Attention of the last ``T`` tokens' queries ``q (batch, Hq, T, head_dim)`` over this
        layer's cache (append their keys first). Query ``t`` sits at position
        ``length - T + t`` and sees the keys ``j <= p`` (causal by absolute position) within the
        window (``j > p - W``). ``Hq`` a multiple of ``kv_heads`` (MHA, GQA, MQA; head ``h``
        uses kv head ``h // (Hq // kv_heads)``). ``scale`` defaults to ``1 / sqrt(head_dim)``.

            out_t = sum_j softmax_j(scale q_t . k_j) v_j

        Computed on the ring's (at most) two contiguous segments, no reordering copy; equals
        ``fastattn.reference.cached_attention`` over the logically ordered history."""
        op = "KVCache.attend"
        layer = self._layer(op, layer)
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
        scale = (1.0 / np.sqrt(self.head_dim) if scale is None
                 else val.positive_float(op, "scale", scale))
        out = val.prepare_out(op, out, q.shape, {"q": q})
        window = 0 if self.window is None else self.window
        return val.run_into(out, lambda o: _core.kv_attend(self._k, self._v, layer, q, o, length,
                                                         window, float(scale)),
                          val.contiguous_or_none)

    # ------------------------------------------------------------------ inspection
    def _ordered(self, store: np.ndarray, layer) -> np.ndarray:
        layer = self._layer("KVCache.keys", layer)
        length = int(self._lengths[layer])
        first = max(0, length - self.capacity)
        if self.window is not None:
            first = max(first, length - self.window)
        slots = np.arange(first, length) % self.capacity
        return store[layer][:, :, slots].copy()

    def keys(self, layer: int) -> np.ndarray:
        """Logically ordered copy ``(batch, kv_heads, n, head_dim)`` of the keys attention can
        still see: all tokens, or with a window the last ``min(length, W)``."""
        return self._ordered(self._k, layer)

    def values(self, layer: int) -> np.ndarray:
        """Like ``keys``, for the values."""
        return self._ordered(self._v, layer)

    def __repr__(self) -> str:
        return (f"KVCache(num_layers={self.num_layers}, batch={self.batch}, "
                f"kv_heads={self.kv_heads}, head_dim={self.head_dim}, "
                f"capacity={self.capacity}, window={self.window}, "
                f"lengths={self._lengths.tolist()})")

