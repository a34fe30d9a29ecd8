"""What every model config shares: a dataclass parsed from a Hugging Face config.json.

Each family (models/gpt2, models/llama, models/bert) subclasses `FamilyConfig` with the fields
its builder reads, named as transformers names them, checked and defaulted as transformers'
config classes default them (`from_dict`, the family's `_parse`). Around those fields every
config carries the same few: `model_type`; the ids and dtype names copied as they are
(bos_token_id, eos_token_id, torch_dtype, dtype; None when absent); and `extra`, the entries
of config.json that were not interpreted (architectures, transformers_version, ...).

A model_type no family claims loads as a `ModelConfig`: its entries unchecked, as attributes.
"""
from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import ClassVar

from ..io.json_fields import JsonFields, config_dict

# Keys copied as they are (ids, the stored dtype's name); None when absent.
PASSTHROUGH = ("bos_token_id", "eos_token_id", "torch_dtype", "dtype")


class ModelConfig(types.SimpleNamespace):
    """The config of a model_type fastattn has no family for: config.json's entries as
    attributes, unchecked; entries that are not identifiers go to `extra`."""

    @classmethod
    def from_dict(cls, raw: dict) -> "ModelConfig":
        plain = {k: v for k, v in raw.items() if k.isidentifier() and k != "extra"}
        return cls(**plain, extra={k: v for k, v in raw.items() if k not in plain})

    def to_dict(self) -> dict:
        """The attributes as a plain dict (extra included under "extra")."""
        return dict(vars(self))


@dataclasses.dataclass(kw_only=True)
class FamilyConfig:
    """Base of the families' config dataclasses (see the module docstring)."""

    # the model_type values the family reads; the first is the default of a dict without one
    MODEL_TYPES: ClassVar[tuple[str, ...]] = ()

    model_type: str
    bos_token_id: object = None
    eos_token_id: object = None
    torch_dtype: str | None = None
    dtype: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping, where: str = "(dict)"):
        """The config of a config.json dict: every field checked (wrong type or range, missing
        required key: ValueError naming the key) and defaulted."""
        r = JsonFields(dict(raw), where)
        model_type = r.get("model_type", "str", cls.MODEL_TYPES[0])
        if model_type not in cls.MODEL_TYPES:
            r.error(f"model_type {model_type!r} is not one of {', '.join(cls.MODEL_TYPES)}")
        values = cls._parse(r, model_type)
        for key in PASSTHROUGH:
            r.used.add(key)
            values[key] = r.raw.get(key)
        return cls(model_type=model_type, **values, extra=r.unread())

    @classmethod
    def _parse(cls, r: JsonFields, model_type: str) -> dict:
        """The family's fields, read from r (a subclass defines it, taking the defaults from
        `defaults()` so that each is written once, on its field)."""
        raise NotImplementedError

    @staticmethod
    def _sizes(r: JsonFields) -> dict:
        """The four sizes the transformers-named families (BERT, LLaMA) share, all required
        and >= 1: hidden_size, intermediate_size, num_hidden_layers, num_attention_heads."""
        return {key: r.positive_int(key) for key in
                ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")}

    @classmethod
    def defaults(cls) -> dict:
        """The fields' defaults, name -> value (fields without one are left out)."""
        return {f.name: f.default for f in dataclasses.fields(cls)
                if f.default is not dataclasses.MISSING}

    @classmethod
    def of(cls, config):
        """`config` as this class: itself, or parsed from a config.json dict or from the
        attributes of another config object (a SimpleNamespace, a ModelConfig)."""
        if isinstance(config, cls):
            return config
        return cls.from_dict(config_dict(config))

    def to_dict(self) -> dict:
        """The fields as a plain dict (extra included under "extra")."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def parse_id2label(r: JsonFields) -> dict[int, str]:
    """config.json's "id2label" ({"0": "tench", ...}: JSON keys are strings) as {int: str}
    sorted by index; {} when absent. Keys must be class indices >= 0, values strings
    (ValueError naming the entry otherwise). Shared by the classifier families."""
    raw = r.get("id2label", "dict", {})
    labels = {}
    for key, name in raw.items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            index = -1
        if index < 0:
            r.error(f"'id2label' keys must be class indices >= 0, got {key!r}")
        r.check(f"id2label[{key}]", name, "str")
        labels[index] = name
    return dict(sorted(labels.items()))
