"""rope: rotary position embedding of (B, H, L, D) queries or keys."""
from __future__ import annotations

import collections
import threading

import numpy as np

from .. import _core
from .. import _layout
from .. import _validate as v
from ..rope_frequencies import (DEFAULT_THETA, dynamic_original_length, resolve_rope_config,
                                rope_frequencies, scaling_key)

STYLES = ("half", "interleaved")

# cos/sin tables for positions [0, n) per configuration (theta, rotary_dim, style, scaling),
# float32, kept in a small LRU. A contiguous range of positions is then a zero-copy slice;
# other positions are gathered (L x rotary_dim/2 floats, small next to x). n grows by doubling
# up to _MAX_TABLE_FLOATS per table; positions beyond it, negative positions and dynamic NTK
# past its original length (its frequencies depend on the length) are computed per call for
# exactly the positions given.
_CACHE_CONFIGS = 8
_MAX_TABLE_FLOATS = 1 << 23  # 32 MiB per table
_MIN_TABLE_POSITIONS = 1 << 10  # a first table covers 1024 positions, so short calls share it
_cache: collections.OrderedDict = collections.OrderedDict()
_cache_lock = threading.Lock()


def _tables(inv_freq: np.ndarray, attention: float, positions: np.ndarray, interleaved: bool):
    """float32 (cos, sin) rows for ``positions`` (any integer shape): the angles p * inv_freq
    and their cos / sin in float64, times the attention factor, then rounded once. Interleaved
    style gets each entry twice, sin signed (-s, s), to match the kernel's pair layout."""
    angles = positions.astype(np.float64)[..., None] * inv_freq
    cos = (np.cos(angles) * attention).astype(np.float32)
    sin = (np.sin(angles) * attention).astype(np.float32)
    if interleaved:
        cos = np.repeat(cos, 2, axis=-1)
        sin = np.stack((-sin, sin), axis=-1).reshape(cos.shape)
    return cos, sin


def _cached_tables(key, inv_freq, attention, interleaved, need: int):
    """Tables for positions [0, n), n >= need, from the LRU (grown or built as needed)."""
    with _cache_lock:
        entry = _cache.get(key)
        if entry is not None and entry[0].shape[0] >= need:
            _cache.move_to_end(key)
            return entry
    n = max(1 << int(need - 1).bit_length(), _MIN_TABLE_POSITIONS)
    entry = _tables(inv_freq, attention, np.arange(n), interleaved)
    with _cache_lock:
        _cache[key] = entry
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_CONFIGS:
            _cache.popitem(last=False)
    return entry


def clear_rope_cache() -> None:
    """Drops every cached cos/sin table."""
    with _cache_lock:
        _cache.clear()


def _positions(op: str, positions, B: int, L: int) -> np.ndarray:
    if not isinstance(positions, np.ndarray):
        raise TypeError(f"{op}: positions must be a numpy.ndarray of integers, "
                        f"got {type(positions).__name__}")
    if not np.issubdtype(positions.dtype, np.integer):
        raise TypeError(f"{op}: positions must have an integer dtype, got {positions.dtype}")
    if positions.shape not in ((L,), (B, L)):
        raise ValueError(f"{op}: positions has shape {v.shape_str(positions.shape)}, expected "
                         f"{v.shape_str((L,))} or {v.shape_str((B, L))}")
    # C order: the cos / sin tables gathered or computed from the positions follow their
    # layout, and the kernel reads them as C-contiguous rows (a Fortran-ordered (B, L) index
    # used to give a non-contiguous table). Positions are small: the copy costs nothing.
    return np.ascontiguousarray(positions, dtype=np.int64)


def _rotary_dim(op: str, rotary_dim, D: int) -> int:
    rotary_dim = v.integer(op, "rotary_dim", rotary_dim, optional=True)
    if rotary_dim is None:
        rotary_dim = D
    if not (0 < rotary_dim <= D and rotary_dim % 2 == 0):
        raise ValueError(f"{op}: rotary_dim must be even and in [2, {D}] (the head dim), "
                         f"got {rotary_dim}")
    return rotary_dim


def rope(x: np.ndarray, positions: np.ndarray, *, theta: float = DEFAULT_THETA,
         style: str = "half", rotary_dim: int | None = None, scaling: dict | None = None,
         out: np.ndarray | None = None) -> np.ndarray:
    """Rotary position embedding (Su et al., RoFormer) of ``x (B, H, L, D)``.

    Each pair of features is rotated by the angle ``p * inv_freq_i`` of its token's absolute
    position ``p`` (``positions``: integers, shape ``(L,)`` shared by the batch, or ``(B, L)``
    per sequence; any offsets, e.g. ``np.arange(start, start + L)`` while decoding):

        y_a = a (x_a cos(p w_i) - x_b sin(p w_i)),   y_b = a (x_b cos(p w_i) + x_a sin(p w_i))

    ``style="half"`` pairs (a, b) = (i, i + r/2) (GPT-NeoX, LLaMA in Hugging Face layout,
    ``rotate_half``); ``style="interleaved"`` pairs (2i, 2i + 1) (GPT-J, original RoFormer / Meta
    LLaMA). Only the first ``rotary_dim`` features (``r``, even, default D) rotate; the rest pass
    through (partial rotary: GPT-J, GPT-NeoX, Phi). ``w_i = theta ** (-2i / r)`` unless
    ``scaling``, a Hugging Face ``rope_scaling`` dict (``linear``, ``dynamic``, ``yarn``,
    ``llama3``), changes them; ``a`` is yarn's attention factor (1 otherwise). The formulas are
    in ``fastattn.rope_frequencies``. A transformers 5.x ``rope_parameters`` dict may carry
    ``rope_theta`` (used instead of the default theta) and ``partial_rotary_factor``
    (rotary_dim = int(D * factor)); explicit arguments contradicting them raise ValueError.

    cos and sin are computed in float64 and rounded to float32 once; tables for positions
    [0, n) are cached per configuration (docs/rope.md). ``out`` may be ``x`` (in place).
    Accuracy: within ~2 ulp of |x_a| + |x_b| of the float64 result."""
    op = "rope"
    x = v.float32_array(op, "x", x)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D (batch, heads, L, D), got {x.ndim}-D")
    B, _, L, D = x.shape
    pos = _positions(op, positions, B, L)
    theta = v.positive_float(op, "theta", theta)
    theta, rotary_dim = resolve_rope_config(op, theta, rotary_dim, D, scaling)
    v.one_of(op, "style", style, STYLES)
    interleaved = style == "interleaved"
    rot = _rotary_dim(op, rotary_dim, D) if D > 0 else 0
    key = scaling_key(op, scaling)
    out = v.prepare_out(op, out, x.shape, {"x": x})
    if x.size == 0:
        return out

    lo, hi = int(pos.min()), int(pos.max())
    L0 = dynamic_original_length(op, scaling)
    inv_freq, attention = rope_frequencies(rot, theta, scaling, hi + 1, op)
    width = rot if interleaved else rot // 2
    cacheable = lo >= 0 and (hi + 1) * width <= _MAX_TABLE_FLOATS and (L0 is None or hi + 1 <= L0)
    if cacheable:
        cos_t, sin_t = _cached_tables((theta, rot, style, key), inv_freq, attention, interleaved,
                                      hi + 1)
        if pos.ndim == 1 and hi - lo == L - 1 and np.array_equal(pos, np.arange(lo, hi + 1)):
            cos, sin = cos_t[lo:hi + 1], sin_t[lo:hi + 1]  # contiguous range: zero-copy
        else:
            cos, sin = cos_t[pos], sin_t[pos]
    else:
        cos, sin = _tables(inv_freq, attention, pos, interleaved)
    cos = cos.reshape((-1, L, width))
    sin = sin.reshape((-1, L, width))

    xc = _layout.contiguous(x)
    return _layout.run_into(out, lambda o: _core.rope(xc, cos, sin, o, rot, interleaved),
                            _layout.contiguous_or_none)
