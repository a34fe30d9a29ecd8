"""softmax and log_softmax, the textbook way (any float dtype; the tests use float64)."""
import numpy as np


def softmax(x, axis=-1):
    """softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j.

    Subtracting the maximum changes nothing mathematically and keeps exp from overflowing.
    A slice that is entirely -inf has no finite maximum; it gives zeros."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isneginf(m), 0, m)
    e = np.exp(x - m)
    s = np.sum(e, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s == 0, 0, e / s)


def log_softmax(x, axis=-1):
    """log_softmax(x)_i = (x_i - m) - log(sum_j exp(x_j - m)); -inf for an all -inf slice."""
    m = np.max(x, axis=axis, keepdims=True)
    all_masked = np.isneginf(m)
    m = np.where(all_masked, 0, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        lse = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
        y = (x - m) - lse
    return np.where(all_masked, -np.inf, y)
