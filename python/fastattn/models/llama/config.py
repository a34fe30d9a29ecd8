"""The LLaMA family's config (model_type "llama", "mistral", "qwen2"), parsed from config.json
with transformers' LlamaConfig / MistralConfig / Qwen2Config names and defaults.

RoPE. transformers 4.x writes

    "rope_theta": 500000.0, "rope_scaling": {"type" or "rope_type": "llama3", "factor": 8.0, ...}

and 5.x writes one dict

    "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, ...}

Both become `rope_theta: float` and `rope_scaling: dict | None` — None for the default rotation,
else the scaling fields with the type under "rope_type" (the form fastattn.rope's `scaling`
takes, see fastattn.rope_frequencies, whose SCALING_TYPES are the types accepted) — and
`partial_rotary_factor` (default 1.0). transformers reads the original context length of
dynamic and yarn from config.max_position_embeddings when the dict has no
original_max_position_embeddings; the dict gets it written in so that it carries everything
the frequencies depend on.

Sliding window: mistral's sliding_window (transformers' default 4096; null: none); qwen2 uses
sliding_window only with use_sliding_window true, and then only in layers >= max_window_layers;
a model whose layers disagree (some sliding, some not) is refused, as the builders apply one
window to every layer. llama: none.
"""
from __future__ import annotations

import dataclasses

from ...io.json_fields import JsonFields
from ...rope_frequencies import SCALING_TYPES
from ..config import FamilyConfig

# transformers' default max_position_embeddings, the one default that differs in the family.
_DEFAULT_MAX_POSITIONS = {"llama": 2048, "mistral": 4096 * 32, "qwen2": 32768}


@dataclasses.dataclass(kw_only=True)
class LlamaConfig(FamilyConfig):
    """hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size:
    required.

    Defaults as transformers': num_key_value_heads = num_attention_heads (no GQA); head_dim =
    hidden_size // num_attention_heads; max_position_embeddings 2048 (llama), 131072
    (mistral), 32768 (qwen2); rms_norm_eps 1e-6; hidden_act "silu"; tie_word_embeddings
    False; attention_bias and mlp_bias False; rope_theta 10000.0, rope_scaling None,
    partial_rotary_factor 1.0 (see the module docstring); sliding_window: the window every
    layer applies, or None (see the module docstring); pad_token_id None."""

    MODEL_TYPES = ("llama", "mistral", "qwen2")

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    rms_norm_eps: float = 1e-6
    hidden_act: str = "silu"
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    sliding_window: int | None = None
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    partial_rotary_factor: float = 1.0
    pad_token_id: int | None = None

    @property
    def qkv_bias(self) -> bool:
        """Whether the q/k/v projections carry biases: Qwen2's always do (it has no config key
        for it; its o_proj has none), and LLaMA's attention_bias adds them (with o_proj's)."""
        return self.model_type == "qwen2" or self.attention_bias

    @classmethod
    def _parse(cls, r: JsonFields, model_type: str) -> dict:
        c, d = cls._sizes(r), cls.defaults()
        hidden, layers, heads = (c["hidden_size"], c["num_hidden_layers"],
                                 c["num_attention_heads"])
        c["num_key_value_heads"] = kv = r.positive_int("num_key_value_heads", heads)
        r.divides("num_attention_heads", heads, "num_key_value_heads", kv)
        head_dim = r.positive_int("head_dim", None)
        if head_dim is None:
            r.divides("hidden_size", hidden, "num_attention_heads", heads)
            head_dim = hidden // heads
        c["head_dim"] = head_dim
        c["vocab_size"] = r.positive_int("vocab_size")
        c["max_position_embeddings"] = max_pos = r.positive_int(
            "max_position_embeddings", _DEFAULT_MAX_POSITIONS[model_type])
        c["rms_norm_eps"] = r.positive_float("rms_norm_eps", d["rms_norm_eps"])
        c["hidden_act"] = r.get("hidden_act", "str", d["hidden_act"])
        c["tie_word_embeddings"] = r.get("tie_word_embeddings", "bool", d["tie_word_embeddings"])
        c["attention_bias"] = r.get("attention_bias", "bool", d["attention_bias"])
        c["mlp_bias"] = r.get("mlp_bias", "bool", d["mlp_bias"])
        c["sliding_window"] = _sliding_window(r, model_type, layers)
        c.update(_rope(r, max_pos, d))
        c["pad_token_id"] = r.get("pad_token_id", "int", d["pad_token_id"], minimum=0)
        return c


def _sliding_window(r: JsonFields, model_type: str, layers: int):
    if model_type == "llama":
        return None
    window = r.positive_int("sliding_window", 4096, nullable=True)
    # The set of layer kinds ({True} all sliding, {False} none), worked out without a list of
    # num_hidden_layers entries: that count comes from the file and may be huge.
    if model_type == "qwen2":
        use = r.get("use_sliding_window", "bool", False)
        first = r.get("max_window_layers", "int", 28, minimum=0)
        window = window if use else None
        # layers >= max_window_layers slide, the ones before attend fully
        sliding = {False} if first >= layers else {True} if first == 0 else {True, False}
    else:
        sliding = {True}
    layer_types = r.get("layer_types", "list", None, nullable=True)
    if layer_types is not None:
        if len(layer_types) != layers:
            r.error(f"'layer_types' has {len(layer_types)} entries, expected num_hidden_layers "
                    f"({layers})")
        sliding = {t == "sliding_attention" for t in layer_types}
    if window is None or sliding == {False}:
        return None
    if sliding != {True}:
        r.error("some layers use a sliding window and others full attention; fastattn applies "
                "one attention pattern to all layers")
    return window


# -- RoPE ------------------------------------------------------------------------------------

def _rope_dict(r: JsonFields, key: str, d: dict, max_positions: int):
    """(rope_type, scaling fields, rope_theta or None, partial_rotary_factor or None) of a
    rope_scaling / rope_parameters dict, the type under "rope_type"."""
    d = dict(d)
    rope_type, legacy = d.pop("rope_type", None), d.pop("type", None)
    if rope_type is not None and legacy is not None and rope_type != legacy:
        r.error(f"{key} names two types: 'rope_type' {rope_type!r} and 'type' {legacy!r}")
    kind = rope_type if rope_type is not None else legacy if legacy is not None else "default"
    if kind not in SCALING_TYPES:
        r.error(f"{key}: rope type {kind!r} is not supported; supported: "
                f"{', '.join(SCALING_TYPES)}")
    theta = d.pop("rope_theta", None)
    partial = d.pop("partial_rotary_factor", None)
    for name, value in (("rope_theta", theta), ("partial_rotary_factor", partial)):
        if value is not None and r.check(f"{key}[{name!r}]", value, "float") <= 0:
            r.error(f"{key}[{name!r}] must be > 0, got {value!r}")
    for name, value in d.items():
        # the scaling fields are numbers (null: unset); yarn's "truncate" is a flag
        if value is not None:
            r.check(f"{key}[{name!r}]", value, "bool" if name == "truncate" else "float")
    if kind != "default":
        if d.get("factor") is None:
            r.error(f"{key}: {kind} scaling needs 'factor'")
        if kind in ("dynamic", "yarn") and d.get("original_max_position_embeddings") is None:
            d["original_max_position_embeddings"] = max_positions
        if kind == "llama3":
            for name in ("low_freq_factor", "high_freq_factor",
                         "original_max_position_embeddings"):
                if d.get(name) is None:
                    r.error(f"{key}: llama3 scaling needs {name!r}")
    return kind, d, (None if theta is None else float(theta)), partial


def _same(r: JsonFields, what: str, a, b):
    if a is not None and b is not None and a != b:
        r.error(f"{what} disagree: {a!r} and {b!r}")
    return a if a is not None else b


def _rope(r: JsonFields, max_positions: int, defaults: dict) -> dict:
    top_theta = r.positive_float("rope_theta", None)
    top_partial = r.positive_float("partial_rotary_factor", None)
    scaling = r.get("rope_scaling", "dict", None, nullable=True)
    params = r.get("rope_parameters", "dict", None, nullable=True)
    if params is not None and params and all(isinstance(v, dict) for v in params.values()):
        r.error("per-layer-type rope_parameters are not supported")
    parsed = [_rope_dict(r, key, d, max_positions)
              for key, d in (("rope_parameters", params), ("rope_scaling", scaling))
              if d is not None]
    if len(parsed) == 2 and parsed[0][:2] != parsed[1][:2]:
        r.error(f"rope_parameters {params!r} and rope_scaling {scaling!r} disagree")
    kind, fields = (parsed[0][0], parsed[0][1]) if parsed else ("default", {})
    theta, partial = top_theta, top_partial
    for _, _, dict_theta, dict_partial in parsed:
        theta = _same(r, "rope_theta values", theta, dict_theta)
        partial = _same(r, "partial_rotary_factor values", partial, dict_partial)
    if partial is not None and partial > 1:
        r.error(f"'partial_rotary_factor' must be in (0, 1], got {partial!r}")
    return {"rope_theta": defaults["rope_theta"] if theta is None else theta,
            "rope_scaling": None if kind == "default" else {"rope_type": kind, **fields},
            "partial_rotary_factor": (defaults["partial_rotary_factor"] if partial is None
                                      else float(partial))}
