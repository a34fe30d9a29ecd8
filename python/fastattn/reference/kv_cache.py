"""Attention of a chunk of queries over a key/value history, materialised (any float dtype;
the tests use float64): what fastattn.KVCache.attend computes over its ring buffer."""
import numpy as np

from .attention import attention, visible


def cached_attention(q, k, v, q_positions, window=None, scale=None):
    """q (B, Hq, T, D) at absolute positions q_positions (T,); k, v (B, Hkv, N, D) the whole
    history, key j at position j. Query i sees key j when j <= p_i (causal) and, with a
    window W, j > p_i - W (the last W tokens, itself included): reference.attention.visible.
    GQA: query head h uses kv head h // (Hq // Hkv).

        out_i = sum_j softmax_j(scale q_i . k_j + mask_ij) v_j,   scale = 1 / sqrt(D) by default

    The queries' positions are arbitrary here, so the mask is built from them and handed to
    the textbook attention (which aligns queries to the end of the keys instead)."""
    allowed = visible(np.asarray(q_positions)[:, None], np.arange(k.shape[2])[None, :],
                      causal=True, window=window)                      # (T, N)
    return attention(q, k, v, mask=allowed, scale=scale)
