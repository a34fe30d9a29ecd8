"""Scaled dot-product attention, the textbook way: materialise the scores, mask, softmax, mix.

Any float dtype (the tests use float64; a float32 run is the "plain float32 implementation"
the kernel's error is compared with). Shapes as in ``fastattn.attention``:
q (B, Hq, Lq, D), k (B, Hkv, Lk, D), v (B, Hkv, Lk, Dv), or 3-D (H, L, D)."""
import math

import numpy as np

from .softmax import softmax


def visible(p, j, *, causal=False, window=None):
    """The causal / sliding-window rule, the one statement of it in the references: True where
    a query at absolute position p may attend the key at position j (arrays broadcast).
      causal:             j <= p
      window W, causal:   p - W < j <= p          (the W most recent keys, Mistral-style)
      window W alone:     |p - j| < W             (a symmetric band of width 2W - 1)
    """
    allowed = np.ones(np.broadcast_shapes(np.shape(p), np.shape(j)), dtype=bool)
    if causal:
        allowed &= j <= p
    if window is not None:
        allowed &= (p - j < window) if causal else (np.abs(p - j) < window)
    return allowed


def attention_mask(len_q, len_k, *, causal=False, window=None):
    """Boolean (Lq, Lk) mask, True where query i may attend key j (``visible``). Query i sits at
    absolute position p = i + (Lk - Lq) (bottom-right alignment: the last query is the last
    key, as when new queries extend a cached prefix)."""
    p = np.arange(len_q)[:, None] + (len_k - len_q)
    return visible(p, np.arange(len_k)[None, :], causal=causal, window=window)


def rel_pos_bias(rel_h, rel_w):
    """The decomposed relative-position bias (SAM / ViTDet) materialised: keys on a Kh x Kw
    grid, key j at row j // Kw and column j % Kw, so
        bias[..., i, j] = rel_h[..., i, j // Kw] + rel_w[..., i, j % Kw]
    rel_h (..., Lq, Kh), rel_w (..., Lq, Kw) -> (..., Lq, Kh * Kw)."""
    rel_h, rel_w = np.asarray(rel_h), np.asarray(rel_w)
    kh, kw = rel_h.shape[-1], rel_w.shape[-1]
    j = np.arange(kh * kw)
    return rel_h[..., j // kw] + rel_w[..., j % kw]


def attention(q, k, v, mask=None, causal=False, window=None, scale=None, return_weights=False,
              rel_pos=None):
    """O = softmax(scale * q k^T + bias, masked) v, per (batch, query head).

    Query head h reads key/value head h // (Hq // Hkv). A boolean mask is True where attending
    is allowed; a float mask is added to the scores. ``rel_pos=(rel_h, rel_w)`` adds
    ``rel_pos_bias(rel_h, rel_w)`` to the scores (before the mask). A query row with no allowed
    key gives zeros (and zero weights)."""
    squeeze = q.ndim == 3
    if squeeze:
        q, k, v = q[None], k[None], v[None]
    group = q.shape[1] // k.shape[1]
    k = np.repeat(k, group, axis=1)  # (B, Hq, Lk, D): head h gets kv head h // group
    v = np.repeat(v, group, axis=1)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] > 0 else 1.0
    # a Python float keeps the scores in q's dtype (a NumPy float64 scalar would promote)
    scores = float(scale) * (q @ np.swapaxes(k, -1, -2))  # (B, Hq, Lq, Lk)
    if rel_pos is not None:
        bias = rel_pos_bias(*rel_pos)
        if squeeze:
            bias = bias[None]
        scores = scores + bias.astype(scores.dtype)
    allowed = np.broadcast_to(attention_mask(q.shape[2], k.shape[2], causal=causal,
                                             window=window), scores.shape)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim == 3 and squeeze:
            mask = mask[None]
        if mask.dtype == bool:
            allowed = allowed & mask
        else:
            scores = scores + mask.astype(scores.dtype)
    scores = np.where(allowed, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    out = weights @ v
    if squeeze:
        out, weights = out[0], weights[0]
    return (out, weights) if return_weights else out
