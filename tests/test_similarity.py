"""Embedding geometry: cosine similarity, dot scores, nearest neighbours."""
import numpy as np
import pytest

from fastattn.similarity import cosine_similarity, dot_scores, normalize, top_k_neighbours


def test_against_float64_formulas(rng):
    a = rng.standard_normal((7, 33)).astype(np.float32)
    b = rng.standard_normal((11, 33)).astype(np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_allclose(dot_scores(a, b), a64 @ b64.T, rtol=1e-5, atol=1e-5)
    cos = (a64 @ b64.T) / np.outer(np.linalg.norm(a64, axis=1), np.linalg.norm(b64, axis=1))
    # unit vectors: each product is a sum of 33 terms of size ~1/33: error ~ 33 * eps
    np.testing.assert_allclose(cosine_similarity(a, b), cos, atol=5e-6)


def test_known_geometry():
    e = np.eye(3, dtype=np.float32)
    x = np.array([[1, 1, 0], [0, 0, 2], [-1, 0, 0]], np.float32)
    sim = cosine_similarity(x, e)
    np.testing.assert_allclose(sim, [[2 ** -0.5, 2 ** -0.5, 0], [0, 0, 1], [-1, 0, 0]], atol=1e-6)
    assert np.allclose(np.linalg.norm(normalize(x), axis=1), 1)
    zero = cosine_similarity(np.zeros((1, 3), np.float32), e)
    assert np.all(zero == 0)


def test_top_k_neighbours_order_and_ties():
    corpus = np.array([[1, 0], [0, 1], [1, 0], [0.9, 0.1], [-1, 0]], np.float32)
    idx, scores = top_k_neighbours(np.array([1, 0], np.float32), corpus, 3)
    assert idx.tolist() == [[0, 2, 3]]  # the exact ties 0 and 2 keep corpus order
    assert scores[0, 0] == pytest.approx(1) and scores[0, 2] < 1
    idx, _ = top_k_neighbours(corpus[:2], corpus, 1, metric="dot")
    assert idx[:, 0].tolist() == [0, 1]


def test_errors():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="a has vectors of dimension 3 and b of dimension 4"):
        cosine_similarity(a, np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match="dot_scores: a must be float32, got float64"):
        dot_scores(a.astype(np.float64), a)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 2\]"):
        top_k_neighbours(a, a, 3)
    with pytest.raises(ValueError, match="metric must be 'cosine' or 'dot'"):
        top_k_neighbours(a, a, 1, metric="l2")
    with pytest.raises(ValueError, match="must be 1-D or 2-D"):
        normalize(np.zeros((1, 2, 3), np.float32))
