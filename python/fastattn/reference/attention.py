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


def attention(q, k, v, mask=None, causal=False, window=None, scale=None, return_weights=False):
    """O = softmax(scale * q k^T + bias, masked) v, per (batch, query head).

    Query head h reads key/value head h // (Hq // Hkv). A boolean mask is True where attending
    is allowed; a float mask is added to the scores. A query row with no allowed key gives
    zeros (and zero weights)."""
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
