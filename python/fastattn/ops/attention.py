"""Scaled dot-product attention (flash-style tiled kernel) with masks, GQA/MQA and decode."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _core
from .. import _layout
from .. import _validate as _v  # `v` is the value tensor here

_OP = "attention"


def _check_shapes(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> None:
    qs, ks, vs = q.shape, k.shape, v.shape
    if not (q.ndim == k.ndim == v.ndim and q.ndim in (3, 4)):
        raise ValueError(
            f"{_OP}: q, k, v must all be 4-D (B, H, L, D) or all 3-D (H, L, D), got shapes "
            f"{_v.shape_str(qs)}, {_v.shape_str(ks)}, {_v.shape_str(vs)}")
    if qs[-1] != ks[-1]:
        raise ValueError(
            f"{_OP}: {_v.shapes_str(q=qs, k=ks)}: the head dim D (last axis) must match, got "
            f"{qs[-1]} and {ks[-1]}")
    if q.ndim == 4 and qs[0] != ks[0]:
        raise ValueError(
            f"{_OP}: {_v.shapes_str(q=qs, k=ks)}: the batch sizes differ ({qs[0]} and {ks[0]})")
    if vs[:-1] != ks[:-1]:
        raise ValueError(
            f"{_OP}: {_v.shapes_str(v=vs, k=ks)}: v must share k's leading axes "
            f"{_v.shape_str(ks[:-1])} (only Dv may differ from D)")
    hq, hkv = qs[-3], ks[-3]
    if (hkv == 0 and hq != 0) or (hkv != 0 and hq % hkv != 0):
        raise ValueError(
            f"{_OP}: Hq = {hq} is not a multiple of Hkv = {hkv} (query head h reads kv head "
            f"h // (Hq // Hkv)); q has shape {_v.shape_str(qs)}, k has shape {_v.shape_str(ks)}")


def _broadcast_mask(mask, target: tuple, target4: tuple) -> np.ndarray | None:
    """mask as a (B, Hq, Lq, Lk) view: broadcast axes get stride 0, nothing is expanded."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{_OP}: mask must be a numpy.ndarray (bool or float32), got "
                        f"{type(mask).__name__}")
    if mask.dtype != np.bool_ and mask.dtype != np.float32:
        raise TypeError(f"{_OP}: mask must be bool (True = may attend) or float32 (added to "
                        f"the scores), got {mask.dtype}")
    names = "(B, Hq, Lq, Lk)" if len(target) == 4 else "(Hq, Lq, Lk)"
    try:
        if mask.ndim > len(target):
            raise ValueError
        m = np.broadcast_to(mask, target)
    except ValueError:
        raise ValueError(f"{_OP}: mask has shape {_v.shape_str(mask.shape)}, which does not "
                         f"broadcast to {names} = {_v.shape_str(target)}") from None
    if not _layout.whole_elements(m):  # only for hand-made unaligned views
        m = np.broadcast_to(np.ascontiguousarray(mask), target)
    return m.reshape(target4)  # 3-D inputs: a leading batch axis (a view)


def _rel_pos(rel_pos, target: tuple, target4: tuple):
    """rel_pos = (rel_h, rel_w) as (B, Hq, Lq, Kh) and (B, Hq, Lq, Kw) views (size-1 B and H
    broadcast with stride 0, nothing expanded), with Kh * Kw == Lk; or (None, None)."""
    if rel_pos is None:
        return None, None
    if not isinstance(rel_pos, (tuple, list)) or len(rel_pos) != 2:
        raise TypeError(f"{_OP}: rel_pos must be a pair (rel_h, rel_w) of float32 arrays or "
                        f"None, got {type(rel_pos).__name__}"
                        + (f" of length {len(rel_pos)}" if isinstance(rel_pos, (tuple, list))
                           else ""))
    rh = _v.float32_array(_OP, "rel_pos[0] (rel_h)", rel_pos[0])
    rw = _v.float32_array(_OP, "rel_pos[1] (rel_w)", rel_pos[1])
    three_d = len(target) == 3
    lead = target[:-1]  # (B, Hq, Lq) or (Hq, Lq)
    names = "(B, Hq, Lq, K)" if not three_d else "(Hq, Lq, K)"
    lk = target[-1]
    for name, x, what in (("rel_pos[0] (rel_h)", rh, "Kh"), ("rel_pos[1] (rel_w)", rw, "Kw")):
        ok = x.ndim == len(target) and x.shape[-2] == lead[-1] and all(
            s in (1, t) for s, t in zip(x.shape[:-2], lead[:-1]))
        if not ok:
            want = names.replace("K)", what + ")")
            raise ValueError(
                f"{_OP}: {name} has shape {_v.shape_str(x.shape)}, expected {want} = "
                f"({', '.join(str(int(n)) for n in lead)}, {what}) (size 1 allowed on the batch "
                f"and head axes)")
    kh, kw = rh.shape[-1], rw.shape[-1]
    if kh * kw != lk:
        raise ValueError(
            f"{_OP}: rel_pos tables of widths Kh = {kh} (rel_h) and Kw = {kw} (rel_w) need "
            f"Kh * Kw == Lk (keys on a Kh x Kw grid), got Kh * Kw = {kh * kw} and Lk = {lk}")
    views = []
    for x in (rh, rw):
        x = np.broadcast_to(x, lead + (x.shape[-1],))
        if not _layout.whole_elements(x):  # only for hand-made unaligned views
            x = np.ascontiguousarray(x)
        views.append(x.reshape(target4[:-1] + (x.shape[-1],)))  # 3-D inputs: a batch axis
    return views[0], views[1]


def _window(window) -> int:
    if window is None:
        return 0
    if isinstance(window, bool) or not isinstance(window, numbers.Integral):
        raise TypeError(f"{_OP}: window must be an int or None, got {type(window).__name__}")
    if window < 1:
        raise ValueError(f"{_OP}: window must be >= 1 (or None for no window), got {window}")
    return int(window)


def _scale(scale, d: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(d) if d > 0 else 1.0
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"{_OP}: scale must be a number or None, got {type(scale).__name__}")
    return _v.finite_float32(_OP, "scale", float(scale))


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, *, mask: np.ndarray | None = None,
              causal: bool = False, window: int | None = None, scale: float | None = None,
              return_weights: bool = False, out: np.ndarray | None = None,
              rel_pos: tuple | None = None):
    """Scaled dot-product attention, computed block by block (never the Lq x Lk matrix).

        S = scale * q k^T (+ mask if float),  P = softmax over keys of S (masked keys -> 0),
        out = P v

    Shapes: ``q (B, Hq, Lq, D)``, ``k (B, Hkv, Lk, D)``, ``v (B, Hkv, Lk, Dv)`` -> out
    ``(B, Hq, Lq, Dv)``; 3-D ``(H, L, D)`` inputs are a batch of one (out is 3-D). Query head
    h reads key/value head ``h // (Hq // Hkv)`` (MHA, GQA, MQA), without copying K/V.
    ``Lq != Lk`` (cross-attention, or new queries over a cache) and ``Dv != D`` are fine.

    - ``scale`` defaults to ``1 / sqrt(D)``.
    - ``mask``: broadcastable to ``(B, Hq, Lq, Lk)``. bool: True = may attend (PyTorch SDPA's
      convention). float32: added to the scores (relative-position bias, ALiBi; -inf masks).
      Broadcast axes are read with stride 0 (a ``(B, 1, 1, Lk)`` padding mask is never
      expanded).
    - Query i sits at absolute position ``p = i + (Lk - Lq)`` (bottom-right alignment).
      ``causal=True``: key j allowed iff ``j <= p``. PyTorch's ``is_causal`` aligns top-left
      (``j <= i``); the two agree when ``Lq == Lk``.
    - ``window=W``: with causal, key j allowed iff ``p - W < j <= p`` (the W most recent keys,
      Mistral-style); without causal iff ``|p - j| < W``. Combines with ``mask``.
    - ``rel_pos=(rel_h, rel_w)``: decomposed relative-position bias (SAM / ViTDet), keys laid
      out row-major on a ``Kh x Kw`` grid (``Kh * Kw == Lk``). float32 ``rel_h (B, Hq, Lq, Kh)``
      and ``rel_w (B, Hq, Lq, Kw)`` (size 1 allowed on B and Hq; 3-D inputs: no B axis) add
      ``rel_h[b, h, i, j // Kw] + rel_w[b, h, i, j % Kw]`` to score ``(i, j)``, before the mask.
    - A query row with no allowed key outputs zeros (never NaN).
    - ``return_weights=True`` returns ``(out, weights)`` with the probabilities
      ``(B, Hq, Lq, Lk)`` materialised by a separate row-by-row kernel (for inspection).
    - ``out``: a float32 array of the output's shape; may be ``q`` itself (in place).

    Results are bit-identical for any thread count. Accuracy: docs/attention.md, "Numerics"."""
    q = _v.float32_array(_OP, "q", q)
    k = _v.float32_array(_OP, "k", k)
    v = _v.float32_array(_OP, "v", v)
    _check_shapes(q, k, v)
    causal = _v.flag(_OP, "causal", causal)
    return_weights = _v.flag(_OP, "return_weights", return_weights)
    win = _window(window)
    sc = _scale(scale, q.shape[-1])
    three_d = q.ndim == 3
    q4, k4, v4 = (x[None] if three_d else x for x in (q, k, v))
    b, hq, lq, _ = q4.shape
    lk, dv = k4.shape[2], v4.shape[3]
    if win >= lq + lk:  # every |p - j| < Lq + Lk: no key excluded, and no int64 overflow
        win = 0
    target4 = (b, hq, lq, lk)
    m4 = _broadcast_mask(mask, target4[1:] if three_d else target4, target4)
    rh4, rw4 = _rel_pos(rel_pos, target4[1:] if three_d else target4, target4)

    out_shape = (hq, lq, dv) if three_d else (b, hq, lq, dv)
    rel = (None, None) if rel_pos is None else rel_pos
    for name, x in (("k", k), ("v", v), ("mask", mask), ("rel_pos[0] (rel_h)", rel[0]),
                    ("rel_pos[1] (rel_w)", rel[1])):
        if out is not None and isinstance(out, np.ndarray) and x is not None \
                and np.may_share_memory(out, x):
            raise ValueError(f"{_OP}: out overlaps {name}; only out=q (in place) may share "
                             f"memory with an input")
    out = _v.prepare_out(_OP, out, out_shape, {"q": q})
    weights = np.empty(target4, np.float32) if return_weights else None

    q4, k4, v4 = (_layout.unit_rows_or_copy(x) for x in (q4, k4, v4))
    o4 = out[None] if three_d else out

    def run(target):
        _core.attention(q4, k4, v4, target, m4, causal, win, sc, weights, rh4, rw4)

    if o4.size or (weights is not None and weights.size):
        _layout.run_into(o4, run, _layout.unit_rows_or_none)
    if return_weights:
        return out, (weights[0] if three_d else weights)
    return out
