"""Embedding geometry: similarity between vectors and nearest-neighbour search.

Rows are vectors. The all-pairs products run through fastattn.matmul (a (N, D) x (M, D)^T
product), so large corpora search at matmul speed.
"""
from __future__ import annotations

import numpy as np

from . import _validate as v
from .ops import matmul


def _matrix(op: str, name: str, x) -> np.ndarray:
    x = v.float32_array(op, name, x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"{op}: {name} must be 1-D or 2-D (rows are vectors), got {x.ndim}-D")
    return x


def _pair(op: str, a, b):
    a, b = _matrix(op, "a", a), _matrix(op, "b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{op}: a has vectors of dimension {a.shape[1]} and b of dimension "
                         f"{b.shape[1]}")
    return a, b


def dot_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """scores[i, j] = a_i . b_j for a (N, D), b (M, D) -> (N, M) float32."""
    a, b = _pair("dot_scores", a, b)
    return matmul(a, b, transpose_b=True)


def normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm: x / max(||x||, eps) (a zero row stays zero)."""
    x = _matrix("normalize", "x", x)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    return (x / np.maximum(norms, eps)[:, None]).astype(np.float32)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sim[i, j] = a_i . b_j / (||a_i|| ||b_j||) for all pairs, (N, M) float32 in [-1, 1]
    (0 against a zero vector)."""
    a, b = _pair("cosine_similarity", a, b)
    return np.clip(matmul(normalize(a), normalize(b), transpose_b=True), -1.0, 1.0)


# metric name -> all-pairs score function (higher is more similar)
_METRICS = {"cosine": cosine_similarity, "dot": dot_scores}


def top_k_neighbours(queries: np.ndarray, corpus: np.ndarray, k: int, *,
                     metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """The k corpus rows most similar to each query: (indices (N, k) int64, scores (N, k)),
    best first; ties keep the lower corpus index first. metric "cosine" or "dot"."""
    op = "top_k_neighbours"
    scores = _METRICS[v.one_of(op, "metric", metric, tuple(_METRICS))](queries, corpus)
    k = v.integer(op, "k", k, 1, scores.shape[1])  # at most the corpus size
    # stable sort on -score: equal scores stay in corpus order
    idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return idx.astype(np.int64), np.take_along_axis(scores, idx, axis=1)
