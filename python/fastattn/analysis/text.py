"""The text families' costs: decoders (GPT-2; LLaMA, Mistral, Qwen2) and BERT, each its
embeddings, its transformer stack (analysis/transformer.py) and its head."""
from __future__ import annotations

import dataclasses

from .layers import ADD_FLOPS, ACTIVATION_FLOPS, Tally, activation_kind
from .transformer import Stack, add_stack


def gpt2_stack(c) -> Stack:
    return Stack(hidden=c.n_embd, layers=c.n_layer, heads=c.n_head, kv_heads=c.n_head,
                 head_dim=c.n_embd // c.n_head, inter=c.inner_size,
                 activation=activation_kind(c.activation_function))


def llama_stack(c) -> Stack:
    return Stack(hidden=c.hidden_size, layers=c.num_hidden_layers,
                 heads=c.num_attention_heads, kv_heads=c.num_key_value_heads,
                 head_dim=c.head_dim, inter=c.intermediate_size, activation="silu",
                 gated=True, norm="rms", qkv_bias=c.qkv_bias, o_bias=c.attention_bias,
                 mlp_bias=c.mlp_bias, window=c.sliding_window,
                 rotary_dim=int(c.head_dim * c.partial_rotary_factor))


def bert_stack(c) -> Stack:
    return Stack(hidden=c.hidden_size, layers=c.num_hidden_layers,
                 heads=c.num_attention_heads, kv_heads=c.num_attention_heads,
                 head_dim=c.hidden_size // c.num_attention_heads, inter=c.intermediate_size,
                 activation=activation_kind(c.hidden_act), causal=False)


def decoder_stack(c, kv_heads: int | None = None) -> Stack:
    """The stack of a GPT-2 or LLaMA-family config; ``kv_heads`` replaces its KV heads (a
    divisor of the query heads)."""
    s = gpt2_stack(c) if c.model_type == "gpt2" else llama_stack(c)
    if kv_heads is None:
        return s
    if isinstance(kv_heads, bool) or not isinstance(kv_heads, int) or kv_heads < 1 \
            or s.heads % kv_heads:
        raise ValueError(f"cost: kv_heads must be a divisor of the {s.heads} query heads, "
                         f"got {kv_heads!r}")
    return dataclasses.replace(s, kv_heads=kv_heads)


def decoder_cost(t: Tally, c, *, batch: int, tokens: int, context: int, decode: bool,
                 kv_heads: int | None = None) -> Stack:
    """Token (and GPT-2's learned position) embeddings, the blocks, the final norm and the LM
    head on every token processed (a forward's logits for every position, as ``model(ids)``
    and transformers' forward compute them; a decode step's for its one token)."""
    gpt2 = c.model_type == "gpt2"
    s = decoder_stack(c, kv_heads)
    vocab = c.vocab_size
    t.embedding("embeddings", vocab, s.hidden)
    if gpt2:
        t.embedding("embeddings", c.n_positions, s.hidden)
        t.elementwise("embeddings", t.rows * s.hidden, ADD_FLOPS, read=2, written=1)
    add_stack(t, s, batch=batch, tokens=tokens, context=context, decode=decode)
    t.norm("norms", s.norm, s.hidden)
    # tied: the LM head reads the token embeddings, counted once in the parameters
    t.linear("lm_head", s.hidden, vocab, bias=False, weight=not c.tie_word_embeddings)
    return s


def bert_cost(t: Tally, c, *, batch: int, tokens: int, pooler: bool = True) -> Stack:
    """Word + position + token-type embeddings and their LayerNorm, the post-norm blocks, and
    the pooler (tanh of a dense layer on each sequence's first token) when the checkpoint has
    one (a config alone: assumed, as BertModel's default)."""
    s = bert_stack(c)
    h = s.hidden
    t.embedding("embeddings", c.vocab_size, h)
    t.embedding("embeddings", c.max_position_embeddings, h)
    t.embedding("embeddings", c.type_vocab_size, h)
    t.elementwise("embeddings", t.rows * h, 2 * ADD_FLOPS, read=3, written=1)
    t.norm("norms", "layer", h)
    add_stack(t, s, batch=batch, tokens=tokens, context=0, decode=False)
    if pooler:
        t.linear("pooler", h, h, bias=True, rows=batch)
        t.elementwise("activation", batch * h, ACTIVATION_FLOPS["tanh"])
    return s
