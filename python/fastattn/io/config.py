"""Hugging Face config.json -> ModelConfig: checked, defaulted, with transformers' attribute names.

The builders in fastattn.models read attributes by their transformers names (hidden_size,
num_key_value_heads, n_embd, ...). load_config gives every attribute a builder reads a checked
value (defaults as transformers' config classes have them), so a builder never has to guess.

RoPE (llama, mistral, qwen2). transformers 4.x writes

    "rope_theta": 500000.0, "rope_scaling": {"type" or "rope_type": "llama3", "factor": 8.0, ...}

and 5.x writes one dict

    "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, ...}

Both become `rope_theta: float` and `rope_scaling: dict | None` — None for the default rotation,
else the scaling fields with the type under "rope_type" (the form fastattn.rope's `scaling`
takes, see fastattn.rope_frequencies) — and `partial_rotary_factor` (default 1.0). transformers reads
the original context length of dynamic and yarn from config.max_position_embeddings when the
dict has no original_max_position_embeddings; the dict gets it written in so that it carries
everything the frequencies depend on.

Sliding window: mistral's sliding_window (transformers' default 4096; null: none); qwen2 uses
sliding_window only with use_sliding_window true, and then only in layers >= max_window_layers;
a model whose layers disagree (some sliding, some not) is refused, as the builders apply one
window to every layer. llama: none.
"""
from __future__ import annotations

import json
import math
import os
import types
from collections.abc import Mapping

_REQUIRED = object()

# The scaling types fastattn.rope implements (fastattn.rope_frequencies.SCALING_TYPES).
ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3")

# Keys copied as they are (ids, the stored dtype's name); None when absent.
PASSTHROUGH = ("bos_token_id", "eos_token_id", "torch_dtype", "dtype")


class ModelConfig(types.SimpleNamespace):
    """A model's configuration: attributes with transformers' names (model_type, hidden_size,
    ...), each checked and defaulted by load_config. `extra` holds the config.json entries
    that were not interpreted (architectures, transformers_version, ...), unchanged."""

    def to_dict(self) -> dict:
        """The attributes as a plain dict (extra included under "extra")."""
        return dict(vars(self))


class _Reader:
    """Typed access to a raw config dict; remembers what was read, names the key on errors."""

    def __init__(self, raw: dict, where: str):
        self.raw, self.where, self.used = raw, where, set()

    def error(self, message: str):
        raise ValueError(f"config {self.where}: {message}")

    def get(self, key: str, kind: str, default=_REQUIRED, *, nullable=False, minimum=None):
        """raw[key] checked as kind ("int", "float", "bool", "str", "dict", "list").
        Absent: default (an error when required). null: None when nullable, else the default."""
        self.used.add(key)
        value = self.raw.get(key)
        if value is None:
            if key in self.raw and nullable:
                return None
            if default is _REQUIRED:
                self.error(f"{key!r} is required" + (" (got null)" if key in self.raw else ""))
            return default
        return self.check(key, value, kind, minimum)

    def check(self, key: str, value, kind: str, minimum=None):
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": (isinstance(value, (int, float)) and not isinstance(value, bool)
                        and math.isfinite(value)),
              "bool": isinstance(value, bool),
              "str": isinstance(value, str),
              "dict": isinstance(value, dict),
              "list": isinstance(value, list)}[kind]
        if not ok:
            expected = {"int": "an integer", "float": "a finite number", "bool": "true or false",
                        "str": "a string", "dict": "an object", "list": "a list"}[kind]
            self.error(f"{key!r} must be {expected}, got {value!r}")
        if minimum is not None and value < minimum:
            self.error(f"{key!r} must be >= {minimum}, got {value!r}")
        return float(value) if kind == "float" else value


def _positive_int(r: _Reader, key: str, default=_REQUIRED, **kw):
    return r.get(key, "int", default, minimum=1, **kw)


def _positive_float(r: _Reader, key: str, default=_REQUIRED):
    value = r.get(key, "float", default)
    if value is not None and value <= 0:
        r.error(f"{key!r} must be > 0, got {value!r}")
    return value


def _divides(r: _Reader, a_key: str, a: int, b_key: str, b: int):
    if a % b:
        r.error(f"{a_key} ({a}) must be a multiple of {b_key} ({b})")


# -- RoPE ------------------------------------------------------------------------------------

def _rope_dict(r: _Reader, key: str, d: dict, max_positions: int):
    """(rope_type, scaling fields, rope_theta or None, partial_rotary_factor or None) of a
    rope_scaling / rope_parameters dict, the type under "rope_type"."""
    d = dict(d)
    rope_type, legacy = d.pop("rope_type", None), d.pop("type", None)
    if rope_type is not None and legacy is not None and rope_type != legacy:
        r.error(f"{key} names two types: 'rope_type' {rope_type!r} and 'type' {legacy!r}")
    kind = rope_type if rope_type is not None else legacy if legacy is not None else "default"
    if kind not in ROPE_TYPES:
        r.error(f"{key}: rope type {kind!r} is not supported; supported: {', '.join(ROPE_TYPES)}")
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


def _same(r: _Reader, what: str, a, b):
    if a is not None and b is not None and a != b:
        r.error(f"{what} disagree: {a!r} and {b!r}")
    return a if a is not None else b


def _rope(r: _Reader, max_positions: int) -> dict:
    top_theta = _positive_float(r, "rope_theta", None)
    top_partial = _positive_float(r, "partial_rotary_factor", None)
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
    return {"rope_theta": 10000.0 if theta is None else theta,
            "rope_scaling": None if kind == "default" else {"rope_type": kind, **fields},
            "partial_rotary_factor": 1.0 if partial is None else float(partial)}


# -- per model_type ----------------------------------------------------------------------------

# transformers' default max_position_embeddings, the one default that differs in the family.
_DEFAULT_MAX_POSITIONS = {"llama": 2048, "mistral": 4096 * 32, "qwen2": 32768}


def _sliding_window(r: _Reader, model_type: str, layers: int):
    if model_type == "llama":
        return None
    window = _positive_int(r, "sliding_window", 4096, nullable=True)
    if model_type == "qwen2":
        use = r.get("use_sliding_window", "bool", False)
        first = r.get("max_window_layers", "int", 28, minimum=0)
        window = window if use else None
        default_types = ["sliding_attention" if i >= first else "full_attention"
                         for i in range(layers)]
    else:
        default_types = ["sliding_attention"] * layers
    layer_types = r.get("layer_types", "list", None, nullable=True)
    if layer_types is not None and len(layer_types) != layers:
        r.error(f"'layer_types' has {len(layer_types)} entries, expected num_hidden_layers "
                f"({layers})")
    sliding = {t == "sliding_attention" for t in (layer_types or default_types)}
    if window is None or sliding == {False}:
        return None
    if sliding != {True}:
        r.error("some layers use a sliding window and others full attention; fastattn applies "
                "one attention pattern to all layers")
    return window


def _llama_family(r: _Reader, model_type: str) -> dict:
    c = {}
    c["hidden_size"] = hidden = _positive_int(r, "hidden_size")
    c["intermediate_size"] = _positive_int(r, "intermediate_size")
    c["num_hidden_layers"] = layers = _positive_int(r, "num_hidden_layers")
    c["num_attention_heads"] = heads = _positive_int(r, "num_attention_heads")
    c["num_key_value_heads"] = kv = _positive_int(r, "num_key_value_heads", heads)
    _divides(r, "num_attention_heads", heads, "num_key_value_heads", kv)
    head_dim = _positive_int(r, "head_dim", None)
    if head_dim is None:
        _divides(r, "hidden_size", hidden, "num_attention_heads", heads)
        head_dim = hidden // heads
    c["head_dim"] = head_dim
    c["vocab_size"] = _positive_int(r, "vocab_size")
    c["max_position_embeddings"] = max_pos = _positive_int(
        r, "max_position_embeddings", _DEFAULT_MAX_POSITIONS[model_type])
    c["rms_norm_eps"] = _positive_float(r, "rms_norm_eps", 1e-6)
    c["hidden_act"] = r.get("hidden_act", "str", "silu")
    c["tie_word_embeddings"] = r.get("tie_word_embeddings", "bool", False)
    c["attention_bias"] = r.get("attention_bias", "bool", False)
    c["mlp_bias"] = r.get("mlp_bias", "bool", False)
    # Qwen2's q/k/v projections always carry biases (o_proj does not); it has no config key.
    c["qkv_bias"] = model_type == "qwen2"
    c["sliding_window"] = _sliding_window(r, model_type, layers)
    c.update(_rope(r, max_pos))
    c["pad_token_id"] = r.get("pad_token_id", "int", None, minimum=0)
    return c


def _gpt2(r: _Reader) -> dict:
    c = {}
    c["n_embd"] = e = _positive_int(r, "n_embd")
    c["n_head"] = heads = _positive_int(r, "n_head")
    _divides(r, "n_embd", e, "n_head", heads)
    c["n_layer"] = _positive_int(r, "n_layer")
    c["n_positions"] = _positive_int(r, "n_positions")
    c["vocab_size"] = _positive_int(r, "vocab_size")
    c["layer_norm_epsilon"] = _positive_float(r, "layer_norm_epsilon", 1e-5)
    c["activation_function"] = r.get("activation_function", "str", "gelu_new")
    c["n_inner"] = _positive_int(r, "n_inner", None, nullable=True)
    c["tie_word_embeddings"] = r.get("tie_word_embeddings", "bool", True)
    # Variants of the attention the builder does not implement: refuse rather than run wrong.
    if not r.get("scale_attn_weights", "bool", True):
        r.error("'scale_attn_weights': false is not supported")
    if r.get("scale_attn_by_inverse_layer_idx", "bool", False):
        r.error("'scale_attn_by_inverse_layer_idx': true is not supported")
    c["pad_token_id"] = r.get("pad_token_id", "int", None, minimum=0)
    return c


def _bert(r: _Reader) -> dict:
    c = {}
    c["hidden_size"] = hidden = _positive_int(r, "hidden_size")
    c["num_hidden_layers"] = _positive_int(r, "num_hidden_layers")
    c["num_attention_heads"] = heads = _positive_int(r, "num_attention_heads")
    _divides(r, "hidden_size", hidden, "num_attention_heads", heads)
    c["intermediate_size"] = _positive_int(r, "intermediate_size")
    c["hidden_act"] = r.get("hidden_act", "str", "gelu")
    c["max_position_embeddings"] = _positive_int(r, "max_position_embeddings")
    c["type_vocab_size"] = _positive_int(r, "type_vocab_size", 2)
    c["layer_norm_eps"] = _positive_float(r, "layer_norm_eps", 1e-12)
    c["vocab_size"] = _positive_int(r, "vocab_size")
    c["pad_token_id"] = r.get("pad_token_id", "int", 0, minimum=0)
    c["tie_word_embeddings"] = r.get("tie_word_embeddings", "bool", True)
    kind = r.get("position_embedding_type", "str", "absolute")
    if kind != "absolute":
        r.error(f"position_embedding_type {kind!r} is not supported (only 'absolute': learned "
                "positions added to the token embeddings)")
    c["position_embedding_type"] = kind
    return c


_NORMALISERS = {
    "llama": lambda r: _llama_family(r, "llama"),
    "mistral": lambda r: _llama_family(r, "mistral"),
    "qwen2": lambda r: _llama_family(r, "qwen2"),
    "gpt2": _gpt2,
    "bert": _bert,
}
SUPPORTED_MODEL_TYPES = tuple(_NORMALISERS)


def read_json_object(file: str, what: str) -> dict:
    """The JSON object in `file`; ValueError naming `what` and the file otherwise."""
    with open(file, "rb") as f:
        data = f.read()
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{what} {file!r}: not valid UTF-8 JSON ({e!r})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{what} {file!r}: must be a JSON object, got {type(obj).__name__}")
    return obj


def read_config_json(path) -> tuple[dict, str]:
    """(raw dict, where) from a config.json file or a directory holding one."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"config: no such file or directory: {path!r}")
    file = os.path.join(path, "config.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError(f"config: the model directory {path!r} has no config.json")
    return read_json_object(file, "config"), repr(file)


def load_config(path_or_dict) -> ModelConfig:
    """A ModelConfig from a config.json path, a model directory, or an already parsed dict.

    model_type is required. For the supported types (llama, mistral, qwen2, gpt2, bert) every
    attribute the builders read is checked (wrong type or range: ValueError naming the key) and
    defaulted as transformers does; other types keep their entries unchecked. bos/eos token ids
    and torch_dtype / dtype pass through; keys not interpreted are kept in `.extra`."""
    if isinstance(path_or_dict, Mapping):
        raw, where = dict(path_or_dict), "(dict)"
    elif isinstance(path_or_dict, (str, bytes, os.PathLike)):
        raw, where = read_config_json(path_or_dict)
    else:
        raise TypeError(f"load_config: expected a path or a dict, got "
                        f"{type(path_or_dict).__name__}")
    r = _Reader(raw, where)
    model_type = r.get("model_type", "str")
    normalise = _NORMALISERS.get(model_type)
    if normalise is None:
        plain = {k: v for k, v in raw.items() if k.isidentifier() and k != "extra"}
        return ModelConfig(**plain, extra={k: v for k, v in raw.items() if k not in plain})
    values = {"model_type": model_type, **normalise(r)}
    for key in PASSTHROUGH:
        r.used.add(key)
        values[key] = raw.get(key)
    values["extra"] = {k: v for k, v in raw.items() if k not in r.used}
    return ModelConfig(**values)
