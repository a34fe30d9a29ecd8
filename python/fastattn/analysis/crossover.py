"""Where attention's quadratic term overtakes the linear layers: the sequence length at which
the FLOPs of QK^T + PV equal those of the matrix products with weights, for a text model's
forward (a prefill from scratch, batch 1), and the two curves against the length.

Per layer, with hidden h, Hq query heads of width D (Hq D = h for GPT-2 and BERT) and P the
weight elements of its matrix products (no biases: q, k, v, o and the MLP; 12 h^2 for GPT-2
and BERT, h (Hq + 2 Hkv) D + Hq D h + 3 h I for a SwiGLU LLaMA):

    linear(L)    = 2 L P                              (2 FLOPs per multiply-add, L tokens)
    attention(L) = 2 x 2 D Hq x pairs(L)              (QK^T and PV, 2 D FLOPs per pair each)
    pairs(L)     = L (L + 1) / 2 causal,  L^2 bidirectional

so, blocks alone (n layers cancel):

    causal:         2 L P = 2 Hq D L (L + 1)   ->  L* = P / (Hq D) - 1
    bidirectional:  2 L P = 4 Hq D L^2         ->  L* = P / (2 Hq D)

GPT-2 small (h = 768, P = 12 h^2): L* = 12 h - 1 = 9215 tokens; BERT-base: L* = 6 h = 4608;
TinyLlama (h = 2048, Hkv = 4 of 32, I = 5632): P / h - 1 = 21503.

The whole model adds the linear work outside the blocks: a decoder's LM head on every
position (2 L h V) and BERT's pooler (2 h^2 on the [CLS] row, independent of L). With
n layers, per-token head work E = h V and fixed work F:

    causal:         2 n Hq D L (L + 1) = 2 L (n P + E) + F
    bidirectional:  4 n Hq D L^2       = 2 L (n P + E) + F

solved for the positive root (F = 0 for decoders: L* = (n P + E) / (n Hq D) - 1; GPT-2 small:
12 h - 1 + V / 12 = 13403.08). A sliding window W caps a query's keys at W: past L = W the
attention grows linearly too (pairs = W (W + 1) / 2 + W (L - W)), and it overtakes the linear
layers only if 4 n Hq D W > 2 (n P + E) (their slopes per token), at

    L* = n Hq D W (W - 1) / (2 n Hq D W - (n P + E))        (when that exceeds W)

The embedding gathers, norms, softmax and activations are neither (element-wise, under a few
percent of the FLOPs). ``crossover`` returns the real root and the first whole length at which
attention >= linear (``tokens``); the tests check both against ``cost()``'s own counts.
"""
from __future__ import annotations

import dataclasses
import math

from .cost import DECODERS, ENCODERS, cost, resolve_config

ATTENTION_PARTS = ("attn_scores", "attn_values")


@dataclasses.dataclass(frozen=True)
class Crossover:
    """``length``: the real root (tokens) where attention's FLOPs equal the linear layers'
    (None: attention never overtakes them, a sliding window too short); ``tokens``: the first
    whole length with attention >= linear; ``head``: whether the linear work outside the
    blocks (LM head, pooler) is counted."""
    length: float | None
    tokens: int | None
    head: bool


def _stack_and_head(config):
    from .text import bert_stack, decoder_stack
    if config.model_type in DECODERS:
        s = decoder_stack(config)
        return s, s.hidden * config.vocab_size, 0.0     # LM head on every position
    if config.model_type in ENCODERS:
        s = bert_stack(config)
        return s, 0.0, 2.0 * s.hidden * s.hidden        # pooler: one row per sequence
    raise ValueError(f"crossover: text models only (gpt2, llama, mistral, qwen2, bert), "
                     f"got {config.model_type!r}")


def linear_weights_per_layer(s) -> int:
    """P: the weight elements of one block's matrix products (biases excluded)."""
    attn = s.hidden * (s.heads + 2 * s.kv_heads) * s.head_dim + s.heads * s.head_dim * s.hidden
    return attn + (3 if s.gated else 2) * s.hidden * s.inter


def crossover(model_or_config, *, head: bool = True) -> Crossover:
    """The length at which a forward's QK^T + PV FLOPs reach its linear layers' (module
    docstring); ``head=False``: the blocks alone."""
    config, _ = resolve_config(model_or_config)
    s, per_token_head, fixed = _stack_and_head(config)
    if not head:
        per_token_head, fixed = 0.0, 0.0
    n, hd = s.layers, s.heads * s.head_dim
    lin = n * linear_weights_per_layer(s) + per_token_head      # linear FLOPs = 2 L lin + F
    if s.causal:
        # 2 n hd L (L + 1) = 2 L lin + F  ->  n hd L^2 + (n hd - lin) L - F / 2 = 0
        a, b, c = n * hd, n * hd - lin, -fixed / 2
    else:
        a, b, c = 2 * n * hd, -lin, -fixed / 2
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    window = s.window if s.causal else None
    if window is not None and root > window:
        denominator = 2 * n * hd * window - lin
        root = (n * hd * window * (window - 1) / denominator
                if denominator > 0 else None)
    if root is None:
        return Crossover(None, None, head)
    tokens = max(1, math.ceil(root - 1e-9))
    # the whole-number answer from the exact counts (the root can sit a rounding away)
    while tokens > 1 and _attention_reaches_linear(config, tokens - 1, head):
        tokens -= 1
    while not _attention_reaches_linear(config, tokens, head):
        tokens += 1
    return Crossover(root, tokens, head)


def split_flops(c, *, head: bool = True) -> tuple[float, float]:
    """(linear, attention) FLOPs of a Cost: the matrix products with weights (the LM head and
    pooler only with ``head``) and QK^T + PV."""
    outside = ("lm_head", "pooler")
    attention = sum(p.flops for p in c.parts if p.name in ATTENTION_PARTS)
    linear = sum(p.flops for p in c.parts if p.matmul and (head or p.name not in outside))
    return linear, attention


def _attention_reaches_linear(config, tokens: int, head: bool) -> bool:
    linear, attention = split_flops(cost(config, seq_len=tokens), head=head)
    return attention >= linear


def flops_by_length(model_or_config, lengths) -> dict:
    """{"tokens", "blocks", "head", "attention"}: lists of the linear FLOPs of the blocks,
    of the linear work outside them (LM head, pooler) and of QK^T + PV, for a forward of each
    length (batch 1, from scratch), from ``cost()``'s counts."""
    config, _ = resolve_config(model_or_config)
    out = {"tokens": [], "blocks": [], "head": [], "attention": []}
    for n in lengths:
        c = cost(config, seq_len=int(n))
        blocks, attention = split_flops(c, head=False)
        total, _ = split_flops(c, head=True)
        out["tokens"].append(int(n))
        out["blocks"].append(blocks)
        out["head"].append(total - blocks)
        out["attention"].append(attention)
    return out
