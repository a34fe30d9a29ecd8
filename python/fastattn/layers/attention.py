"""Multi-head attention layer: MHA, GQA and MQA, self- or cross-attention, optional RoPE,
optional KV cache, optional q/k/v bias.

Shapes: x (B, L, hidden) -> q (B, Hq, L, D), k and v (B, Hkv, L, D) -> out (B, L, hidden).
Self-attention layers compute q, k, v with one matmul over the concatenated projection weights;
cross-attention layers (Attention.cross) project the queries from x and the keys and values
from a context sequence (B, Lc, hidden_c), again k and v in one matmul. Layers with separate
q, k and v projections (Attention.separate) take three inputs, as Segment Anything's two-way
transformer needs (q = W_q query, k = W_k key, v = W_v value with key = tokens + positions and
value = tokens, so k and v come from different arrays), each projecting to heads * head_dim
(which may be narrower than the inputs: SAM's "downsampled" internal width).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from .folded_attention import FoldedWeights, few_keys
from .linear import Linear


@dataclass
class RotaryConfig:
    """RoPE parameters, as fastattn.rope takes them."""
    theta: float = 10000.0
    style: str = "half"
    rotary_dim: int | None = None
    scaling: dict | None = None

    def apply(self, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return ops.rope(x, positions, theta=self.theta, style=self.style,
                        rotary_dim=self.rotary_dim, scaling=self.scaling, out=x)


def split_heads(x: np.ndarray, heads: int, head_dim: int) -> np.ndarray:
    """(B, L, heads * head_dim) -> contiguous (B, heads, L, head_dim)."""
    b, l, _ = x.shape
    return np.ascontiguousarray(x.reshape(b, l, heads, head_dim).transpose(0, 2, 1, 3))


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(B, H, L, D) -> (B, L, H * D)."""
    b, h, l, d = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(b, l, h * d)


class Attention:
    def __init__(self, qkv: Linear | None, o: Linear, num_heads: int, num_kv_heads: int,
                 head_dim: int, *, rotary: RotaryConfig | None = None, causal: bool = True,
                 window: int | None = None, scale: float | None = None,
                 q: Linear | None = None, kv: Linear | None = None,
                 k: Linear | None = None, v: Linear | None = None):
        if num_heads % num_kv_heads:
            raise ValueError(f"Attention: num_heads {num_heads} is not a multiple of "
                             f"num_kv_heads {num_kv_heads}")
        separate = k is not None or v is not None
        valid = ((qkv is not None and q is None and kv is None and not separate)
                 or (qkv is None and q is not None and kv is not None and not separate)
                 or (qkv is None and q is not None and kv is None and k is not None
                     and v is not None))
        if not valid:
            raise ValueError("Attention: give either a fused qkv projection (self-attention), "
                             "or q and kv projections (cross-attention), or separate q, k and v "
                             "projections")
        for name, proj, expected in (
                ("q/k/v", qkv, (num_heads + 2 * num_kv_heads) * head_dim),
                ("q", q, num_heads * head_dim), ("k/v", kv, 2 * num_kv_heads * head_dim),
                ("k", k, num_kv_heads * head_dim), ("v", v, num_kv_heads * head_dim)):
            if proj is not None and proj.out_features != expected:
                raise ValueError(f"Attention: the {name} projection has {proj.out_features} "
                                 f"outputs, expected {expected}")
        if separate and k.in_features != v.in_features:
            raise ValueError(f"Attention: the k and v projections take {k.in_features} and "
                             f"{v.in_features} inputs; key and value must share a width")
        self.qkv, self.q, self.kv, self.o = qkv, q, kv, o
        self.k, self.v = k, v
        self._folded = None     # FoldedWeights, made on first use
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.rotary, self.causal, self.window, self.scale = rotary, causal, window, scale

    @classmethod
    def cross(cls, q: Linear, kv: Linear, o: Linear, num_heads: int, num_kv_heads: int,
              head_dim: int, *, scale: float | None = None) -> "Attention":
        """Cross-attention: queries from x, keys and values from `context` (no causality, no
        RoPE); kv is the (k ++ v) projection of the context."""
        return cls(None, o, num_heads, num_kv_heads, head_dim, causal=False, scale=scale,
                   q=q, kv=kv)

    @classmethod
    def separate(cls, q: Linear, k: Linear, v: Linear, o: Linear, num_heads: int,
                 head_dim: int, *, scale: float | None = None) -> "Attention":
        """Attention with separate q, k and v projections of three inputs (no causality, no
        RoPE): out = o(attention(q(query), k(key), v(value))); call it as
        ``layer(query, key=..., value=...)``. Each projection outputs num_heads * head_dim."""
        return cls(None, o, num_heads, num_heads, head_dim, causal=False, scale=scale,
                   q=q, k=k, v=v)

    def _require_cross(self) -> None:
        if self.k is not None:
            raise ValueError("Attention: this layer has separate q, k and v projections; pass "
                             "key= and value= instead of context")
        if self.qkv is not None:
            raise ValueError("Attention: this is a self-attention layer (fused q/k/v); "
                             "cross-attention needs Attention.cross(q, kv, o, ...)")

    def project_context(self, context: np.ndarray):
        """k and v (B, Hkv, Lc, D) of a context sequence (B, Lc, hidden_c) (cross-attention);
        computing them once lets a decoder reuse them for every step."""
        self._require_cross()
        hkv, d = self.num_kv_heads, self.head_dim
        kv = self.kv(context)
        return split_heads(kv[..., : hkv * d], hkv, d), split_heads(kv[..., hkv * d:], hkv, d)

    def project(self, x: np.ndarray, positions: np.ndarray | None):
        """q (B, Hq, L, D), k and v (B, Hkv, L, D), with RoPE applied at `positions`."""
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        if self.k is not None:
            return self.project_separate(x, x, x)
        if self.qkv is None:
            q = split_heads(self.q(x), hq, d)
            k, v = self.project_context(x)
            return q, k, v
        qkv = self.qkv(x)
        q = split_heads(qkv[..., : hq * d], hq, d)
        k = split_heads(qkv[..., hq * d: (hq + hkv) * d], hkv, d)
        v = split_heads(qkv[..., (hq + hkv) * d:], hkv, d)
        if self.rotary is not None:
            self.rotary.apply(q, positions)
            self.rotary.apply(k, positions)
        return q, k, v

    def project_separate(self, query: np.ndarray, key: np.ndarray, value: np.ndarray):
        """q (B, H, Lq, D) = heads of W_q query, k and v (B, H, Lk, D) = heads of W_k key and
        W_v value (layers built with Attention.separate); query (B, Lq, hidden), key and value
        (B, Lk, hidden_kv)."""
        h, d = self.num_heads, self.head_dim
        return (split_heads(self.q(query), h, d), split_heads(self.k(key), h, d),
                split_heads(self.v(value), h, d))

    def _attend_separate(self, query, key, value, key_mask, residual, fold):
        """W_o attention(W_q query, W_k key, W_v value) [+ residual], batches broadcast."""
        (bq, lq), (bk, lk), d = query.shape[:2], key.shape[:2], self.head_dim
        if fold is not False and self._folded is None:
            self._folded = FoldedWeights(self.q, self.o, self.num_heads, d)
        # folding costs 2 Lq C H Lk multiply-adds against 2 Lq C H D: fewer when Lk < D
        if fold is not False and lk < min(d, lq) and bq in (1, bk):
            return few_keys(self, self._folded, query, key, value, key_mask, residual)
        q, k, v = self.project_separate(query, key, value)
        b = max(bq, bk)
        q, k, v = (np.broadcast_to(t, (b,) + t.shape[1:]) for t in (q, k, v))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = ops.attention(q, k, v, mask=mask, scale=self.scale)
        if residual is not None and residual.shape[0] != b:
            residual = np.broadcast_to(residual, (b,) + residual.shape[1:])
        return self.o(merge_heads(out), residual=residual)

    def __call__(self, x: np.ndarray, *, positions: np.ndarray | None = None,
                 key_mask: np.ndarray | None = None, cache=None, layer: int = 0,
                 residual: np.ndarray | None = None, return_weights: bool = False,
                 context: np.ndarray | None = None, context_kv=None,
                 key: np.ndarray | None = None, value: np.ndarray | None = None,
                 fold: bool | None = None):
        """Attention of x (B, L, hidden) [+ residual, fused into the output projection]: over x
        itself, or (cross-attention layers) over `context` (B, Lc, hidden_c), or over
        precomputed `context_kv` = project_context(context); key_mask then masks context keys.
        Layers with separate projections (Attention.separate) take `key` and `value` (B, Lk,
        hidden_kv), both given or neither (then both are x); key_mask (B, Lk) masks their keys.
        Their batch sizes may differ when one is 1 (read for every batch of the other, never
        copied). With fewer keys than head_dim and more queries than keys, the q and output
        projections are folded into the keys and values instead of projecting every query
        (layers/folded_attention.py; fold=False forces the textbook order, None chooses).

        positions (B, L) or (L,): absolute positions for RoPE. key_mask (B, Lk) bool: False for
        keys that are padding (Lk = L without a cache, else all tokens so far including these).
        With a cache, k and v are appended to it and the queries attend over everything cached.
        return_weights (no cache): also return the probabilities (B, Hq, L, L).
        """
        if cache is not None:
            # checked before anything is computed or appended: the cache stays as it was
            if return_weights:
                raise ValueError("Attention: return_weights is not available with a KV cache")
            if not self.causal or self.window != cache.window:
                raise ValueError(f"Attention: a KV cache serves causal self-attention with the "
                                 f"cache's window ({cache.window}); this layer has causal="
                                 f"{self.causal}, window={self.window}")
        if (key is None) != (value is None):
            raise ValueError("Attention: give key and value together (or neither)")
        if key is not None and self.k is None:
            raise ValueError("Attention: key= and value= need a layer with separate q, k and v "
                             "projections (Attention.separate)")
        if self.k is not None and cache is not None:
            raise ValueError("Attention: a layer with separate q, k and v projections has no "
                             "KV cache")
        if key is not None and not return_weights:
            return self._attend_separate(x, key, value, key_mask, residual, fold)
        if key is not None:
            q, k, v = self.project_separate(x, key, value)
        elif context is not None or context_kv is not None:
            self._require_cross()
            if cache is not None:
                raise ValueError("Attention: a KV cache holds self-attention keys; pass the "
                                 "cross-attention context_kv instead")
            q = split_heads(self.q(x), self.num_heads, self.head_dim)
            k, v = context_kv if context_kv is not None else self.project_context(context)
        else:
            q, k, v = self.project(x, positions)
        if cache is None:
            mask = None if key_mask is None else key_mask[:, None, None, :]
            out = ops.attention(q, k, v, mask=mask, causal=self.causal, window=self.window,
                                scale=self.scale, return_weights=return_weights)
            if return_weights:
                out, probs = out
                return self.o(merge_heads(out), residual=residual), probs
        else:
            out = cache.attend_new(layer, q, k, v, key_mask=key_mask, scale=self.scale)
        return self.o(merge_heads(out), residual=residual)
