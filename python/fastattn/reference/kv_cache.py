"""Attention of a chunk of queries over a key/value history, materialised (any float dtype;
the tests use float64): what fastattn.KVCache.attend computes over its ring buffer."""
import numpy as np

from .attention import visible


def cached_attention(q, k, v, q_positions, window=None, scale=None):
    """q (B, Hq, T, D) at absolute positions q_positions (T,); k, v (B, Hkv, N, D) the whole
    history, key j at position j. Query i sees key j when j <= p_i (causal) and, with a
    window W, j > p_i - W (the last W tokens, itself included): reference.attention.visible. GQA: query head h uses kv head
    h // (Hq // Hkv).

        out_i = sum_j softmax_j(scale q_i . k_j + mask_ij) v_j,   scale = 1 / sqrt(D) by default
    """
    B, Hq, T, D = q.shape
    Hkv, N = k.shape[1], k.shape[2]
    scale = 1.0 / np.sqrt(D) if scale is None else scale
    group = Hq // Hkv
    k = np.repeat(k, group, axis=1)                                   # (B, Hq, N, D)
    v = np.repeat(v, group, axis=1)
    scores = scale * np.einsum("bhtd,bhnd->bhtn", q, k)
    allowed = visible(np.asarray(q_positions)[:, None], np.arange(N)[None, :],   # (T, N)
                      causal=True, window=window)
    scores = np.where(allowed, scores, -np.inf)
    m = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - m)                                            # masked: exp(-inf) = 0
    return np.einsum("bhtn,bhnd->bhtd", e / e.sum(axis=-1, keepdims=True), v)
