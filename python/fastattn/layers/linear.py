"""Linear: y = x W^T + b, with the bias, an activation and a residual fused into the matmul."""
from __future__ import annotations

import numpy as np

from .. import _validate as v
from .. import ops

# weight layouts: PyTorch nn.Linear's (out_features, in_features), GPT-2 Conv1D's transpose
LAYOUTS = ("out_in", "in_out")


class Linear:
    """A dense layer over the last axis of x.

    ``weight`` is stored ``(out_features, in_features)`` as in PyTorch ``nn.Linear`` (layout
    "out_in"), or ``(in_features, out_features)`` as in GPT-2's ``Conv1D`` (layout "in_out").
    Either way it is packed once, here, into the matmul kernel's panel layout, so every call
    streams it without repacking."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None = None, layout: str = "out_in"):
        v.one_of("Linear", "layout", layout, LAYOUTS)
        weight = np.ascontiguousarray(weight, dtype=np.float32)
        if layout == "out_in":
            self.out_features, self.in_features = weight.shape
        else:
            self.in_features, self.out_features = weight.shape
        if bias is not None:
            bias = np.ascontiguousarray(bias, dtype=np.float32)
            v.require_shape("Linear", "bias", bias, (self.out_features,))
        self.bias = bias
        self.weight = ops.PackedMatrix(weight, transpose=(layout == "out_in"))

    def __call__(self, x: np.ndarray, activation: str | None = None,
                 residual: np.ndarray | None = None) -> np.ndarray:
        """activation(x W^T + b) + residual, for x (..., in_features)."""
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        r2 = None if residual is None else residual.reshape(-1, self.out_features)
        y = ops.matmul(x2, self.weight, bias=self.bias, activation=activation, residual=r2)
        return y.reshape(*lead, self.out_features)

    @staticmethod
    def concat(layers: "list[tuple[np.ndarray, np.ndarray | None]]") -> "Linear":
        """One Linear computing several out_in layers side by side (q, k, v, or gate and up):
        one pass over x and one weight stream instead of several."""
        weights = [w for w, _ in layers]
        biases = [b for _, b in layers]
        bias = None
        if any(b is not None for b in biases):
            bias = np.concatenate([b if b is not None else np.zeros(w.shape[0], np.float32)
                                   for w, b in layers])
        return Linear(np.concatenate(weights, axis=0), bias)
