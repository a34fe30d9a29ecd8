"""Cross-attention with separate projections and many queries over few keys (SAM's image
tokens -> prompt tokens: 4096 queries, ~7 keys): the queries are never projected; the q and
output projections are folded into the few keys and values instead.

For head h with W_q,h, W_k,h, W_v,h (D x C) and W_o,h (C_o x D) (the head's columns of W_o),

    out_i  = b_o + sum_h W_o,h sum_j p_hij v_h,j,      v_h,j = W_v,h v_j + b_v,h
    p_hij  = softmax_j(s (W_q,h q_i + b_q,h) . k_h,j),  k_h,j = W_k,h k_j + b_k,h
           = softmax_j(q_i . (s W_q,h^T k_h,j) + s b_q,h . k_h,j)
    out_i  = b_o + sum_(h, j) p_hij (W_o,h v_h,j)

so with K' (H Lk, C) = s W_q,h^T k_h,j, the per-key bias beta = s b_q,h . k_h,j, and
V' (H Lk, C_o) = W_o,h v_h,j (small batched matmuls over the keys):

    scores (Lq, H Lk) = q K'^T + beta,  softmax over each head's Lk columns,
    out (Lq, C_o)     = scores V' + b_o       (the sum over heads is the matmul's)

2 Lq C H Lk multiply-adds instead of the 2 Lq C H D of the q and output projections: cheaper
when Lk < D, and never a (Lq, H, D) tensor. Masked keys get beta = -inf (probability 0; a row
with no key left gives zeros, hence b_o, as the textbook order).
(The mirror image, few queries over many keys with W_k folded into the queries, saves as many
multiply-adds but measured no faster here (its matmuls have the long side as the packed
operand) and rounds worse: the scores become 256-term dot products of unprojected tokens.)
"""
from __future__ import annotations

import numpy as np

from .. import ops


class FoldedWeights:
    """A separate-projection layer's weights per head: W_q (H, D, C_q), W_o^T (H, D, C_o),
    b_q (H, 1, D)."""

    def __init__(self, q, o, heads: int, head_dim: int):
        h, d = heads, head_dim
        # Linear keeps W^T (in, out) packed; unpacked() gives it back
        self.wq = np.ascontiguousarray(q.weight.unpacked().T.reshape(h, d, -1))
        self.wo_t = np.ascontiguousarray(o.weight.unpacked().reshape(h, d, -1))
        zeros = np.zeros(h * d, np.float32)
        self.bq = (q.bias if q.bias is not None else zeros).reshape(h, 1, d)


def few_keys(attn, f: FoldedWeights, query, key, value, key_mask, residual):
    """query (Bq, Lq, C) with Bq in (1, B), key / value (B, Lk, C_k / C_v), key_mask (B, Lk)
    bool or None -> (B, Lq, C_o)."""
    h, d, s = attn.num_heads, attn.head_dim, _scale(attn)
    b, lk = key.shape[:2]
    lq = query.shape[1]
    k = attn.k(key).reshape(b, lk, h, d).transpose(0, 2, 1, 3)          # (B, H, Lk, D)
    v = attn.v(value).reshape(b, lk, h, d).transpose(0, 2, 1, 3)
    kq = ops.matmul(k, f.wq)                                             # (B, H, Lk, C)
    kq *= s
    bias = s * ops.matmul(k, f.bq, transpose_b=True)                     # (B, H, Lk, 1)
    if key_mask is not None:
        bias[~np.broadcast_to(key_mask[:, None, :, None], bias.shape)] = -np.inf
    vo = ops.matmul(v, f.wo_t)                                           # (B, H, Lk, C_o)
    scores = ops.matmul(query, kq.reshape(b, h * lk, -1), transpose_b=True)  # (B, Lq, H Lk)
    scores += bias.reshape(b, 1, h * lk)
    p = scores.reshape(b, lq, h, lk)
    ops.softmax(p, out=p)
    if residual is not None and residual.shape[0] != b:
        residual = np.broadcast_to(residual, (b,) + residual.shape[1:])
    return ops.matmul(scores, vo.reshape(b, h * lk, -1), bias=attn.o.bias, residual=residual)


def _scale(attn) -> float:
    return attn.scale if attn.scale is not None else 1.0 / float(np.sqrt(attn.head_dim))
