"""Embedding: rows of a table looked up by integer id."""
from __future__ import annotations

import numpy as np


class Embedding:
    def __init__(self, weight: np.ndarray):
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        self.num_embeddings, self.dim = self.weight.shape

    def __call__(self, ids: np.ndarray, name: str = "input_ids") -> np.ndarray:
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"Embedding: {name} must be integers, got {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            bad = int(ids.max() if ids.max() >= self.num_embeddings else ids.min())
            raise ValueError(f"Embedding: {name} contains {bad}, outside [0, "
                             f"{self.num_embeddings})")
        return self.weight[ids]
