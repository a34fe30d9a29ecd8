"""Checked access to a checkpoint's tensors for model builders.

`Weights` wraps any mapping-like source of arrays (a fastattn.io checkpoint, or a dict in
tests), returns float32 arrays, checks each tensor's shape, and remembers which names were
taken so a builder can refuse checkpoints with tensors it does not understand. Builders use
it through `take_listed`: every tensor of the family's checkpoint schema (models/<family>/
schema.py), so what a builder reads and what the schema lists cannot differ."""
from __future__ import annotations

import numpy as np


class Weights:
    def __init__(self, source, prefix: str = "", ignore=()):
        self.source = source
        self.prefix = prefix
        self.ignore = tuple(ignore)      # substrings of names that are fine to leave unused
        self.taken: set[str] = set()
        self._name_set = set(source.keys())

    def has(self, name: str) -> bool:
        return self.prefix + name in self._name_set

    def take(self, name: str, shape) -> np.ndarray:
        full = self.prefix + name
        if full not in self._name_set:
            raise ValueError(f"checkpoint: missing tensor {full!r}")
        array = self.source[full]
        if not isinstance(array, np.ndarray):
            array = np.asarray(array)
        if tuple(array.shape) != tuple(shape):
            raise ValueError(f"checkpoint: tensor {full!r} has shape {tuple(array.shape)}, "
                             f"expected {tuple(shape)}")
        self.taken.add(full)
        return np.ascontiguousarray(array, dtype=np.float32)

    def check_all_used(self) -> None:
        extra = [n for n in self._name_set
                 if n not in self.taken and not any(s in n for s in self.ignore)]
        if extra:
            shown = ", ".join(repr(n) for n in sorted(extra)[:5])
            more = f" (and {len(extra) - 5} more)" if len(extra) > 5 else ""
            raise ValueError(f"checkpoint: unexpected tensor(s) {shown}{more}")


def take_listed(source, shapes: dict, ignore=()) -> dict:
    """Every tensor a checkpoint schema lists (`shapes`: name -> shape, names in full), float32
    and shape-checked, from `source`; ValueError for a missing tensor, a wrong shape, or a
    tensor of `source` the schema does not list (unless a substring in `ignore` marks it as
    fine to leave, like a causal-mask buffer)."""
    w = Weights(source, ignore=ignore)
    tensors = {name: w.take(name, shape) for name, shape in shapes.items()}
    w.check_all_used()
    return tensors
