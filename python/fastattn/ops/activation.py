"""Element-wise activations: gelu (exact and tanh), silu, relu, swiglu."""
from __future__ import annotations

import numpy as np

from .. import _core
from .. import _layout
from .. import _validate as v

_GELU_APPROXIMATIONS = ("none", "tanh")


def _elementwise(op: str, kernel, inputs: dict, out) -> np.ndarray:
    arrays = {name: v.float32_array(op, name, a) for name, a in inputs.items()}
    first_name, first = next(iter(arrays.items()))
    for name, a in arrays.items():
        v.require_shape(op, name, a, first.shape, f"(the shape of {first_name})")
    out = v.prepare_out(op, out, first.shape, arrays)
    if first.size == 0:
        return out
    contiguous = [_layout.contiguous(a) for a in arrays.values()]
    return _layout.run_into(out, lambda o: kernel(*contiguous, o), _layout.contiguous_or_none)


def _activation(op: str, kind: str, x, out) -> np.ndarray:
    """The kernel's activation ``kind`` (a KERNEL_ACTIVATIONS name) of x, validated as ``op``."""
    return _elementwise(op, lambda a, o: _core.activation(kind, a, o), {"x": x}, out)


def relu(x: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """relu(x) = max(x, 0) (NaN stays NaN)."""
    return _activation("relu", "relu", x, out)


def gelu(x: np.ndarray, approximate: str = "none", *, out: np.ndarray | None = None) -> np.ndarray:
    """GELU. ``approximate="none"``: x/2 (1 + erf(x/sqrt 2)) (BERT, ViT, "gelu");
    ``"tanh"``: x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))) (GPT-2's "gelu_new").

    Both are computed without cancellation in the negative tail (docs/numerics.md)."""
    v.one_of("gelu", "approximate", approximate, _GELU_APPROXIMATIONS)
    return _activation("gelu", "gelu" if approximate == "none" else "gelu_tanh", x, out)


def silu(x: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """silu(x) = x * sigmoid(x) = x / (1 + exp(-x))."""
    return _activation("silu", "silu", x, out)


def swiglu(gate: np.ndarray, up: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """swiglu(gate, up) = silu(gate) * up (LLaMA's gated MLP), shapes equal."""
    return _elementwise("swiglu", _core.swiglu, {"gate": gate, "up": up}, out)
