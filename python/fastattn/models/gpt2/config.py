"""GPT-2's config (model_type "gpt2"), parsed from config.json with transformers' GPT2Config
names and defaults."""
from __future__ import annotations

import dataclasses

from ...io.json_fields import JsonFields
from ..config import FamilyConfig


@dataclasses.dataclass(kw_only=True)
class GPT2Config(FamilyConfig):
    """n_embd (width), n_head, n_layer, n_positions (learned positions), vocab_size: required.

    Defaults as transformers': layer_norm_epsilon 1e-5, activation_function "gelu_new" (the
    tanh GELU), n_inner None (4 * n_embd), tie_word_embeddings True (lm_head is wte),
    pad_token_id None. scale_attn_weights false and scale_attn_by_inverse_layer_idx true
    change the attention the builder implements, so they are refused."""

    MODEL_TYPES = ("gpt2",)

    n_embd: int
    n_head: int
    n_layer: int
    n_positions: int
    vocab_size: int
    layer_norm_epsilon: float = 1e-5
    activation_function: str = "gelu_new"
    n_inner: int | None = None
    tie_word_embeddings: bool = True
    pad_token_id: int | None = None

    @classmethod
    def _parse(cls, r: JsonFields, model_type: str) -> dict:
        c, d = {}, cls.defaults()
        c["n_embd"] = e = r.positive_int("n_embd")
        c["n_head"] = heads = r.positive_int("n_head")
        r.divides("n_embd", e, "n_head", heads)
        c["n_layer"] = r.positive_int("n_layer")
        c["n_positions"] = r.positive_int("n_positions")
        c["vocab_size"] = r.positive_int("vocab_size")
        c["layer_norm_epsilon"] = r.positive_float("layer_norm_epsilon", d["layer_norm_epsilon"])
        c["activation_function"] = r.get("activation_function", "str", d["activation_function"])
        c["n_inner"] = r.positive_int("n_inner", d["n_inner"], nullable=True)
        c["tie_word_embeddings"] = r.get("tie_word_embeddings", "bool", d["tie_word_embeddings"])
        # Variants of the attention the builder does not implement: refuse rather than run wrong.
        if not r.get("scale_attn_weights", "bool", True):
            r.error("'scale_attn_weights': false is not supported")
        if r.get("scale_attn_by_inverse_layer_idx", "bool", False):
            r.error("'scale_attn_by_inverse_layer_idx': true is not supported")
        c["pad_token_id"] = r.get("pad_token_id", "int", d["pad_token_id"], minimum=0)
        return c

    @property
    def inner_size(self) -> int:
        """The MLP's hidden width: n_inner, or 4 * n_embd when unset."""
        return self.n_inner or 4 * self.n_embd
