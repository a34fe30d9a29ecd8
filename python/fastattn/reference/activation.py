"""Activations as their formulas. NumPy has no erf: the exact GELU uses math.erfc per element
(float64, accurate to ~1 ulp) — accurate, and slow, as a reference may be."""
import math

import numpy as np

from ..activation_names import activation_name

_erfc = np.frompyfunc(math.erfc, 1, 1)


def erfc(x):
    """erfc(x) = 1 - erf(x), element-wise in float64."""
    x = np.asarray(x)
    return np.asarray(_erfc(x.astype(np.float64)), dtype=np.float64).astype(x.dtype, copy=False)


def relu(x):
    """max(x, 0)."""
    return np.maximum(x, 0)


def gelu(x, approximate="none"):
    """x/2 (1 + erf(x/sqrt 2)); approximate="tanh": x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))).

    1 + erf(x/sqrt 2) is written erfc(-x/sqrt 2), the same number without the cancellation
    that turns it into 0 for x < -8 in floating point. The constants are Python floats so
    that a float32 x is computed in float32 (NumPy 2 promotes to a NumPy float64 scalar's
    dtype)."""
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * erfc(-x / math.sqrt(2))


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


def activate(x, name):
    """The activation called ``name`` (any name fastattn.activation_names accepts) applied."""
    kind = activation_name(name, "reference.activate")
    if kind == "gelu_tanh":
        return gelu(x, approximate="tanh")
    return {"relu": relu, "gelu": gelu, "silu": silu}[kind](x)
