"""Activations as their formulas. NumPy has no erf: the exact GELU uses math.erf per element
(float64, correctly rounded to ~1 ulp) — accurate, and slow by design of a reference."""
import math

import numpy as np

_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x):
    x = np.asarray(x)
    return _erf(x.astype(np.float64)).astype(np.float64).astype(x.dtype, copy=False)


def relu(x):
    """max(x, 0)."""
    return np.maximum(x, 0)


def gelu(x, approximate="none"):
    """x/2 (1 + erf(x/sqrt 2)); approximate="tanh": x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))."""
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def silu(x):
    """x * sigmoid(x)."""
    return x * sigmoid(x)


def swiglu(gate, up):
    """silu(gate) * up."""
    return silu(gate) * up
