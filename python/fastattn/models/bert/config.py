"""BERT's config (model_type "bert"), parsed from config.json with transformers' BertConfig
names and defaults."""
from __future__ import annotations

import dataclasses

from ...io.json_fields import JsonFields
from ..config import FamilyConfig


@dataclasses.dataclass(kw_only=True)
class BertConfig(FamilyConfig):
    """hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
    max_position_embeddings, vocab_size: required.

    Defaults as transformers': hidden_act "gelu" (exact, erf), type_vocab_size 2,
    layer_norm_eps 1e-12, pad_token_id 0, tie_word_embeddings True (the MLM decoder is the word
    embeddings), position_embedding_type "absolute" (the only one implemented: learned
    positions added to the token embeddings)."""

    MODEL_TYPES = ("bert",)

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    vocab_size: int
    hidden_act: str = "gelu"
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    tie_word_embeddings: bool = True
    position_embedding_type: str = "absolute"

    @classmethod
    def _parse(cls, r: JsonFields, model_type: str) -> dict:
        c, d = cls._sizes(r), cls.defaults()
        r.divides("hidden_size", c["hidden_size"], "num_attention_heads",
                  c["num_attention_heads"])
        c["hidden_act"] = r.get("hidden_act", "str", d["hidden_act"])
        c["max_position_embeddings"] = r.positive_int("max_position_embeddings")
        c["type_vocab_size"] = r.positive_int("type_vocab_size", d["type_vocab_size"])
        c["layer_norm_eps"] = r.positive_float("layer_norm_eps", d["layer_norm_eps"])
        c["vocab_size"] = r.positive_int("vocab_size")
        c["pad_token_id"] = r.get("pad_token_id", "int", d["pad_token_id"], minimum=0)
        c["tie_word_embeddings"] = r.get("tie_word_embeddings", "bool", d["tie_word_embeddings"])
        kind = r.get("position_embedding_type", "str", d["position_embedding_type"])
        if kind != "absolute":
            r.error(f"position_embedding_type {kind!r} is not supported (only 'absolute': learned "
                    "positions added to the token embeddings)")
        c["position_embedding_type"] = kind
        return c
