"""Multi-head attention layer: MHA, GQA and MQA, self- or cross-attention, optional RoPE,
optional KV cache, optional q/k/v bias.

Shapes: x (B, L, hidden) -> q (B, Hq, L, D), k and v (B, Hkv, L, D) -> out (B, L, hidden).
q, k, v come from one matmul over the concatenated projection weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
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
    def __init__(self, qkv: Linear, o: Linear, num_heads: int, num_kv_heads: int, head_dim: int,
                 *, rotary: RotaryConfig | None = None, causal: bool = True,
                 window: int | None = None, scale: float | None = None):
        if num_heads % num_kv_heads:
            raise ValueError(f"Attention: num_heads {num_heads} is not a multiple of "
                             f"num_kv_heads {num_kv_heads}")
        expected = (num_heads + 2 * num_kv_heads) * head_dim
        if qkv.out_features != expected:
            raise ValueError(f"Attention: the q/k/v projection has {qkv.out_features} outputs, "
                             f"expected {expected}")
        self.qkv, self.o = qkv, o
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.rotary, self.causal, self.window, self.scale = rotary, causal, window, scale

    def project(self, x: np.ndarray, positions: np.ndarray | None):
        """q (B, Hq, L, D), k and v (B, Hkv, L, D), with RoPE applied at `positions`."""
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        qkv = self.qkv(x)
        q = split_heads(qkv[..., : hq * d], hq, d)
        k = split_heads(qkv[..., hq * d: (hq + hkv) * d], hkv, d)
        v = split_heads(qkv[..., (hq + hkv) * d:], hkv, d)
        if self.rotary is not None:
            self.rotary.apply(q, positions)
            self.rotary.apply(k, positions)
        return q, k, v

    def __call__(self, x: np.ndarray, *, positions: np.ndarray | None = None,
                 key_mask: np.ndarray | None = None, cache=None, layer: int = 0,
                 residual: np.ndarray | None = None, return_weights: bool = False):
        """Self-attention of x (B, L, hidden) [+ residual, fused into the output projection].

        positions (B, L) or (L,): absolute positions for RoPE. key_mask (B, Lk) bool: False for
        keys that are padding (Lk = L without a cache, else all tokens so far including these).
        With a cache, k and v are appended to it and the queries attend over everything cached.
        return_weights (no cache): also return the probabilities (B, Hq, L, L).
        """
        q, k, v = self.project(x, positions)
        if cache is None:
            mask = None if key_mask is None else key_mask[:, None, None, :]
            out = ops.attention(q, k, v, mask=mask, causal=self.causal, window=self.window,
                                scale=self.scale, return_weights=return_weights)
            if return_weights:
                out, probs = out
                return self.o(merge_heads(out), residual=residual), probs
        elif x.shape[1] == 1 and key_mask is None and cache.lengths[layer] > 0:
            # Decode: one new token per sequence attends the whole cache in place.
            cache.append(layer, k, v)
            out = cache.attend(layer, q, scale=self.scale)
        else:
            # Prefill, or padded batches: attend over (cached keys ++ new keys) before they are
            # appended, so a sliding-window ring never drops keys an early query of this chunk
            # still needs.
            if cache.lengths[layer] > 0:
                k_all = np.concatenate([cache.keys(layer), k], axis=2)
                v_all = np.concatenate([cache.values(layer), v], axis=2)
            else:
                k_all, v_all = k, v
            mask = None
            if key_mask is not None:
                mask = np.ascontiguousarray(key_mask[:, -k_all.shape[2]:])[:, None, None, :]
            out = ops.attention(q, k_all, v_all, mask=mask, causal=self.causal,
                                window=self.window, scale=self.scale)
            self._append(cache, layer, k, v)
        if return_weights:
            raise ValueError("Attention: return_weights is not available with a KV cache")
        return self.o(merge_heads(out), residual=residual)

    @staticmethod
    def _append(cache, layer, k, v):
        # A ring cache takes at most cache.max_chunk tokens per append.
        step = cache.max_chunk
        if k.shape[2] <= step:
            cache.append(layer, k, v)
            return
        for start in range(0, k.shape[2], step):
            cache.append(layer, np.ascontiguousarray(k[:, :, start:start + step]),
                         np.ascontiguousarray(v[:, :, start:start + step]))
