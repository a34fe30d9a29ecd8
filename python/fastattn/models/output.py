"""The base of every model's output dataclass (BertOutput, ViTOutput, ResNetOutput):
transformers' attribute names, and ``out["name"]`` for code written against transformers'
ModelOutput."""
from __future__ import annotations


class ModelOutput:
    """Subclasses are dataclasses; ``out["name"]`` reads a field, KeyError for any other name."""

    def __getitem__(self, name: str):
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)
