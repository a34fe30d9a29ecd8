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


def bert_cost(t: Tally, c, *, batch: int, tokens: int, pooler: bool | None = None) -> Stack:
    """A BERT-family encoder (BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA): word + position
    (+ token-type) embeddings and their LayerNorm (ELECTRA: at embedding_size, then
    embeddings_project to the hidden width), the post-norm blocks, the pooler (tanh of a dense
    layer on each sequence's first token) and the task head of ``c.task``. ``pooler`` None:
    the checkpoint rule of models/bert/schema.py (BERT / RoBERTa / XLM-R bare encoders and
    BERT's sequence classifier have one)."""
    s = bert_stack(c)
    h, e = s.hidden, c.embedding_width
    tables = 3 if c.type_vocab_size else 2
    t.embedding("embeddings", c.vocab_size, e)
    t.embedding("embeddings", c.max_position_embeddings, e)
    if c.type_vocab_size:
        t.embedding("embeddings", c.type_vocab_size, e)
    t.elementwise("embeddings", t.rows * e, (tables - 1) * ADD_FLOPS, read=tables, written=1)
    t.norm("norms", "layer", e)
    if e != h:
        t.linear("embeddings", e, h, bias=True)
    add_stack(t, s, batch=batch, tokens=tokens, context=0, decode=False)
    task, sequence_head = c.task, c.traits["sequence_head"]
    if pooler is None:
        pooler = (sequence_head == "pooler" if task == "sequence_classification"
                  else task is None and c.model_type in ("bert", "roberta", "xlm-roberta"))
    if pooler:
        t.linear("pooler", h, h, bias=True, rows=batch)
        t.elementwise("activation", batch * h, ACTIVATION_FLOPS["tanh"])
    _encoder_head(t, c, task, sequence_head, batch)
    return s


def _encoder_head(t: Tally, c, task, sequence_head: str, batch: int) -> None:
    """The task head's layers (models/bert/model.py head_logits), part "classifier"."""
    h, labels = c.hidden_size, c.num_labels
    if task == "sequence_classification":       # on each sequence's first token
        if sequence_head != "pooler":           # out(act(dense(x[:, 0])))
            t.linear("classifier", h, h, bias=True, rows=batch)
            t.elementwise("activation", batch * h, ACTIVATION_FLOPS[sequence_head])
        t.linear("classifier", h, labels, bias=True, rows=batch)
    elif task == "token_classification":
        t.linear("classifier", h, labels, bias=True)
    elif task == "question_answering":          # start and end logits
        t.linear("classifier", h, 2, bias=True)
    elif task == "replaced_token_detection":    # ELECTRA: out(gelu(dense(x))), one logit
        t.linear("classifier", h, h, bias=True)
        t.elementwise("activation", t.rows * h, ACTIVATION_FLOPS["gelu"])
        t.linear("classifier", h, 1, bias=True)
