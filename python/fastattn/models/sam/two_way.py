"""Segment Anything's two-way transformer: prompt tokens and image tokens attend to each other.

Per block (queries q (P, T, C): output tokens + prompt tokens; keys k: the h*w image tokens;
tok = the tokens as they entered (their own positional code), pe = the image's):

    q = LN1(q + SelfAttn(q + tok, q + tok, q))      first block: q = LN1(SelfAttn(q, q, q)),
                                                    no positions and no residual
    q = LN2(q + Attn_t2i(q + tok, k + pe, k))       tokens -> image
    q = LN3(q + W2 relu(W1 q))
    k = LN4(k + Attn_i2t(k + pe, q + tok, q))       image -> tokens
and after the blocks  q = LN_final(q + Attn_t2i_final(q + tok, k + pe, k)).

Attn(query, key, value) = W_o attention(W_q query, W_k key, W_v value): separate projections
(layers.Attention.separate); the cross-attentions project to hidden / downsample_rate.
Absent prompt tokens (label -10) are masked out wherever tokens are keys.

Cost at ViT-B widths (N = 4096 image tokens, C = 256, internal 128): the projections of the
image tokens (k and v of tokens->image, q and the output projection of image->tokens) dominate,
~0.54 GFLOP per block per prompt. Until the first image->tokens attention the image tokens are
the same for every prompt that shares the dense embedding (no mask input), so the first
block's projections of them run once for all P prompts (k shape (1, N, C), broadcast).
"""
from __future__ import annotations

import numpy as np

from ...layers import MLP, Attention, LayerNorm


def tokens_to_image(attn: Attention, queries: np.ndarray, query_in: np.ndarray,
                    key_in: np.ndarray, value_in: np.ndarray) -> np.ndarray:
    """queries + Attn(query_in, key_in, value_in): query_in (P, T, C), key_in / value_in
    (Pk, N, C) with Pk = 1 (the same image tokens for every prompt: the P prompts' queries
    become one batch row of P * T queries, so k and v are projected once) or Pk = P."""
    p, t, c = queries.shape
    if key_in.shape[0] == 1 and p > 1:
        out = attn(query_in.reshape(1, p * t, c), key=key_in, value=value_in,
                   residual=queries.reshape(1, p * t, c))
        return out.reshape(p, t, c)
    return attn(query_in, key=key_in, value=value_in, residual=queries)


def image_to_tokens(attn: Attention, keys: np.ndarray, query_in: np.ndarray,
                    key_in: np.ndarray, value_in: np.ndarray, token_mask) -> np.ndarray:
    """keys + Attn(query_in, key_in, value_in): the image tokens keys / query_in (Pk, N, C)
    attend to the tokens key_in / value_in (P, T, C); Pk = 1 is read for every prompt (a
    broadcast, never copied P times)."""
    return attn(query_in, key=key_in, value=value_in, key_mask=token_mask, residual=keys)


class TwoWayBlock:
    def __init__(self, self_attn: Attention, norm1: LayerNorm, t2i: Attention, norm2: LayerNorm,
                 mlp: MLP, norm3: LayerNorm, i2t: Attention, norm4: LayerNorm,
                 skip_first_layer_pe: bool):
        self.self_attn, self.t2i, self.i2t, self.mlp = self_attn, t2i, i2t, mlp
        self.norm1, self.norm2, self.norm3, self.norm4 = norm1, norm2, norm3, norm4
        self.skip_first_layer_pe = skip_first_layer_pe

    def __call__(self, queries, keys, query_pe, key_pe, token_mask):
        """queries (P, T, C), keys (Pk, N, C) (Pk 1 or P), query_pe (P, T, C), key_pe
        (1, N, C), token_mask (P, T) bool or None -> (queries (P, T, C), keys (P, N, C))."""
        if self.skip_first_layer_pe:
            q = self.self_attn(queries, key=queries, value=queries, key_mask=token_mask)
        else:
            qp = queries + query_pe
            q = self.self_attn(qp, key=qp, value=queries, key_mask=token_mask,
                               residual=queries)
        q = self.norm1(q)
        keys_pe = keys + key_pe
        q = self.norm2(tokens_to_image(self.t2i, q, q + query_pe, keys_pe, keys))
        q = self.norm3(self.mlp(q, residual=q))
        keys = self.norm4(image_to_tokens(self.i2t, keys, keys_pe, q + query_pe, q, token_mask))
        return q, keys


class TwoWayTransformer:
    def __init__(self, blocks: list, final_attn: Attention, final_norm: LayerNorm):
        self.blocks, self.final_attn, self.final_norm = blocks, final_attn, final_norm

    def __call__(self, tokens, image, image_pe, token_mask=None):
        """tokens (P, T, C), image (1 or P, N, C) channels-last image tokens (1: shared by
        every prompt), image_pe (1, N, C), token_mask (P, T) bool (False: absent) or None
        -> (queries (P, T, C), keys (P, N, C) unless no block ran)."""
        q, k = tokens, image
        for block in self.blocks:
            q, k = block(q, k, tokens, image_pe, token_mask)
        q = tokens_to_image(self.final_attn, q, q + tokens, k + image_pe, k)
        return self.final_norm(q), k
