"""The cost of a transformer stack, the same for every family: its shape (``Stack``, read from
a GPT-2, LLaMA-family, BERT or ViT config) and one function adding its layers to a Tally.

Per layer, with R tokens (rows), h = hidden, Hq / Hkv heads of width D, I = intermediate:

    q_proj 2 R h Hq D    k_proj, v_proj 2 R h Hkv D    o_proj 2 R Hq D h
    attn_scores (QK^T) 2 D Hq B pairs    attn_values (PV) 2 D Hq B pairs
    mlp 2 R h I x 2 (fc, proj) or x 3 (gate, up, down)

``pairs``: the (query, key) pairs one head of one sequence scores, the quadratic term. A
causal query at position p sees min(p + 1, W) keys (W the sliding window), so a forward of T
tokens after ``context`` cached ones has sum_{p=context}^{context+T-1} min(p + 1, W) pairs
(T (T + 1) / 2 from scratch: the causal triangle, diagonal included, which fastattn's kernel
computes and no more); a bidirectional encoder T^2.
"""
from __future__ import annotations

import dataclasses

from .dtypes import ACTIVATION_BYTES as A
from .layers import ACTIVATION_FLOPS, ROPE_FLOPS, SOFTMAX_FLOPS, Tally


@dataclasses.dataclass(frozen=True)
class Stack:
    """The shape of a stack of transformer blocks (one concept for every family)."""
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    inter: int
    activation: str              # ACTIVATION_FLOPS key
    gated: bool = False          # SwiGLU: gate and up (one fused matmul), then down
    norm: str = "layer"          # "layer" or "rms"
    qkv_bias: bool = True
    o_bias: bool = True
    mlp_bias: bool = True
    causal: bool = True
    window: int | None = None
    rotary_dim: int = 0          # rotated features per head (0: no RoPE)


def key_pairs(tokens: int, context: int, *, causal: bool = True, window: int | None = None) -> int:
    """(query, key) pairs one head scores for ``tokens`` queries after ``context`` cached
    tokens (module docstring). Causal: sum over n = context+1 .. context+tokens of min(n, W);
    bidirectional: tokens x (context + tokens)."""
    if not causal:
        return tokens * (context + tokens)
    first, last = context + 1, context + tokens

    def triangle(a, b):   # a + (a+1) + ... + b, 0 when b < a
        return (a + b) * (b - a + 1) // 2 if b >= a else 0
    if window is None or window >= last:
        return triangle(first, last)
    # keys grow with n up to the window, then stay at W
    return triangle(first, min(last, window)) + window * (last - max(first - 1, window))


def add_stack(t: Tally, s: Stack, *, batch: int, tokens: int, context: int,
              decode: bool) -> None:
    """Adds the blocks of ``s`` for ``batch`` sequences of ``tokens`` new tokens after
    ``context`` cached ones; ``decode``: one token per pass (t.passes = tokens), the keys and
    values read from the KV cache in t.kvb bytes each; else one pass, the new keys and values
    read by flash attention as float32 activations and the context's from the cache."""
    h, D, Hq, Hkv, I = s.hidden, s.head_dim, s.heads, s.kv_heads, s.inter
    R = t.rows
    pairs = key_pairs(tokens, context, causal=s.causal, window=s.window)
    visible_context = context if s.window is None else min(context, s.window)
    for _ in range(s.layers):
        # pre-norm (GPT-2, LLaMA, ViT) or post-norm (BERT): two norms per block either way
        t.norm("norms", s.norm, h)
        t.linear("q_proj", h, Hq * D, bias=s.qkv_bias)
        t.linear("k_proj", h, Hkv * D, bias=s.qkv_bias, calls=0)   # in q's matmul
        t.linear("v_proj", h, Hkv * D, bias=s.qkv_bias, calls=0)
        t.activation(R / t.passes * (Hq + 2 * Hkv) * D)   # q, k, v come out of one matmul
        if s.rotary_dim:
            # in place on q and k: read and written once
            t.elementwise("rope", R * (Hq + Hkv) * s.rotary_dim, ROPE_FLOPS, calls=2)
        _attention(t, s, batch=batch, tokens=tokens, pairs=pairs, decode=decode,
                   visible_context=visible_context)
        t.linear("o_proj", Hq * D, h, bias=s.o_bias)
        t.norm("norms", s.norm, h)
        if s.gated:
            t.linear("mlp", h, I, bias=s.mlp_bias)     # gate
            t.linear("mlp", h, I, bias=s.mlp_bias, calls=0)   # up, in gate's matmul
            t.activation(R / t.passes * 2 * I)          # gate and up come out of one matmul
            # swiglu reads gate and up, writes the product
            t.elementwise("activation", R * I, ACTIVATION_FLOPS["silu"], read=2, written=1)
            t.linear("mlp", I, h, bias=s.mlp_bias)     # down
        else:
            t.linear("mlp", h, I, bias=s.mlp_bias)
            # in fc's matmul epilogue: no bytes of its own
            t.elementwise("activation", R * I, ACTIVATION_FLOPS[s.activation], read=0,
                          written=0, calls=0)
            t.linear("mlp", I, h, bias=s.mlp_bias)


def _attention(t: Tally, s: Stack, *, batch: int, tokens: int, pairs: int, decode: bool,
               visible_context: int) -> None:
    """QK^T and PV over ``pairs`` (query, key) pairs per head and sequence, the softmax
    between them (in the kernel's registers: no bytes). Bytes: decode reads each step's keys
    and values from the cache (one read per KV head, shared by its group of query heads) and
    writes the new ones; a prefill reads q, k, v once as float32 activations (flash attention
    keeps its tiles in cache) and the context's keys and values once from the cache."""
    D, Hq, Hkv = s.head_dim, s.heads, s.kv_heads
    flops = 2.0 * D * Hq * batch * pairs
    # kernel calls per pass: the attention (decode: the cache's append and attend) and the
    # head split / merge copies around it
    calls = 3 * t.passes
    q_bytes = batch * tokens * Hq * D * A
    if decode:
        kv_read = batch * Hkv * D * t.kvb * pairs
        kv_written = batch * tokens * Hkv * D * t.kvb
        # one attend call per layer and step streams the layer's cache
        t.parts.add("attn_scores", flops=flops, kv_bytes=kv_read + kv_written,
                    activation_bytes=q_bytes, calls=calls, streams=t.passes)
        t.parts.add("softmax", flops=SOFTMAX_FLOPS * Hq * batch * pairs, calls=0)
        t.parts.add("attn_values", flops=flops, kv_bytes=kv_read + kv_written,
                    activation_bytes=q_bytes, calls=0)
    else:
        new = batch * tokens * Hkv * D * A
        cached = batch * visible_context * Hkv * D * t.kvb
        t.parts.add("attn_scores", flops=flops, kv_bytes=cached,
                    activation_bytes=q_bytes + new, calls=calls)
        t.parts.add("softmax", flops=SOFTMAX_FLOPS * Hq * batch * pairs, calls=0)
        t.parts.add("attn_values", flops=flops, kv_bytes=cached,
                    activation_bytes=new + q_bytes, calls=0)
