"""The KV cache in bytes, and MHA vs GQA vs MQA for the same model.

A decoder's cache holds, per layer, a key and a value vector of ``head_dim`` for each KV head,
token and sequence:

    bytes = 2 x layers x batch x kv_heads x slots x head_dim x bytes_per_element

with ``slots`` as ``fastattn.KVCache.for_stream`` sizes a generation's cache: one per token,
or, once the stream reaches a sliding window W, a ring of W + STREAM_CHUNK - 1 slots
(fastattn/kv_cache.py). Grouped-query attention (GQA) shares each KV head between
heads / kv_heads query heads, multi-query attention (MQA) has one KV head: the cache, and the
bytes a decode step reads from it, shrink by that factor (Shazeer 2019; Ainslie et al. 2023).
"""
from __future__ import annotations

import dataclasses

from .dtypes import dtype_bytes


def cache_slots(tokens: int, window: int | None) -> int:
    """The slots KVCache.for_stream allocates for a stream of ``tokens`` tokens."""
    from ..kv_cache import STREAM_CHUNK
    if window is None or tokens < window:
        return tokens
    return window + STREAM_CHUNK - 1


def cache_bytes(stack, tokens: int, batch: int, element_bytes: float) -> float:
    """Bytes of the cache of a Stack (analysis/transformer.py) for ``tokens`` tokens."""
    return (2.0 * stack.layers * batch * stack.kv_heads * cache_slots(tokens, stack.window)
            * stack.head_dim * element_bytes)


def kv_cache_bytes(config, tokens: int, batch: int = 1, dtype: str = "float32", *,
                   kv_heads: int | None = None) -> int:
    """Bytes of a decoder's KV cache for a generation of ``tokens`` tokens (prompt + new):
    exactly what ``model.start_generation(batch, tokens, kv_dtype=dtype)`` allocates
    (KVCache.for_stream; ``KVCache.nbytes``) for the cache dtypes float32, float16 and
    bfloat16; other dtypes (int8, ...) scale it by their bytes per element. ``config``: as ``cost`` takes it (a model,
    a config, a config.json dict or a model directory); ``kv_heads`` replaces the model's."""
    from .cost import DECODERS, _count, resolve_config
    from .text import decoder_stack
    c, _ = resolve_config(config)
    if c.model_type not in DECODERS:
        raise ValueError(f"kv_cache_bytes: a {c.model_type} model has no KV cache (decoders: "
                         f"{', '.join(DECODERS)})")
    tokens = _count("tokens", tokens, 1)
    batch = _count("batch", batch, 1)
    stack = decoder_stack(c, kv_heads)
    return int(cache_bytes(stack, tokens, batch, dtype_bytes(dtype, "dtype")))


@dataclasses.dataclass(frozen=True)
class Variant:
    """One attention variant of a model: ``kv_heads``, the parameters, the cache bytes for
    the tokens asked, and the cost of one decode step at that context (``seconds`` when a
    machine was given, else None)."""
    name: str
    kv_heads: int
    params: int
    kv_cache_bytes: int
    decode_step: object      # a Cost
    seconds: float | None


def attention_variants(config, tokens: int, *, batch: int = 1, dtype: str = "float32",
                       weights_dtype: str = "float32", machine=None) -> list:
    """MHA (kv_heads = heads), GQA (the model's KV heads when it has 1 < kv_heads < heads,
    else 8 KV heads: "GQA-8", when the heads divide by 8) and MQA (one KV head) for the same
    decoder: parameters, cache bytes for ``tokens`` tokens, the cost of a decode step after
    ``tokens - 1`` cached tokens, and its predicted time on ``machine`` (a
    fastattn.analysis.Machine) when given."""
    from .cost import cost, resolve_config
    from .predict import predict
    from .text import decoder_stack
    c, _ = resolve_config(config)
    kv_cache_bytes(c, tokens, batch, dtype)   # checks the arguments
    heads, own = decoder_stack(c).heads, decoder_stack(c).kv_heads
    gqa = own if 1 < own < heads else (8 if heads > 8 and heads % 8 == 0 else None)
    choices = [("MHA", heads)] + ([(f"GQA-{gqa}", gqa)] if gqa else []) + [("MQA", 1)]
    out = []
    for name, kv in choices:
        step = cost(c, batch=batch, seq_len=1, mode="decode", context=tokens - 1,
                    weights_dtype=weights_dtype, kv_dtype=dtype, kv_heads=kv)
        out.append(Variant(name, kv, step.params, kv_cache_bytes(c, tokens, batch, dtype,
                                                                 kv_heads=kv),
                           step, None if machine is None else predict(step, machine).seconds))
    return out
