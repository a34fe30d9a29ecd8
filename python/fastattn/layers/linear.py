"""Linear: y = x W^T + b, with the bias, an activation and a residual fused into the matmul."""
from __future__ import annotations

import numpy as np

from .. import _validate as v
from .. import ops
from ..weight_formats import WEIGHT_FORMATS

# weight layouts: PyTorch nn.Linear's (out_features, in_features), GPT-2 Conv1D's transpose
LAYOUTS = ("out_in", "in_out")


class Linear:
    """A dense layer over the last axis of x.

    ``weight`` is a float32 array stored ``(out_features, in_features)`` as in PyTorch
    ``nn.Linear`` (layout "out_in"), or ``(in_features, out_features)`` as in GPT-2's
    ``Conv1D`` (layout "in_out"): packed once, here, in format ``weights`` (one of
    fastattn.WEIGHT_FORMATS: "float32" keeps the matmul kernel's float32 panels; "bfloat16",
    "float16", "q8", "q4" convert / quantize it, docs/quantization.md), so every call streams
    it without repacking. Or ``weight`` is a ready ``PackedMatrix`` (K = in_features,
    N = out_features; e.g. made from a file's storage without a float32 copy): taken as it is,
    its format being its own (``layout`` and ``weights`` must then be left at their defaults).
    Activations, bias and output are float32 whatever the format."""

    def __init__(self, weight, bias: np.ndarray | None = None, layout: str = "out_in",
                 weights: str = "float32"):
        v.one_of("Linear", "layout", layout, LAYOUTS)
        if isinstance(weight, ops.PackedMatrix):
            if layout != "out_in" or weights != "float32":
                raise ValueError("Linear: layout and weights describe an array weight; a "
                                 f"PackedMatrix carries its own (got layout={layout!r}, "
                                 f"weights={weights!r})")
            self.in_features, self.out_features = weight.shape
            packed = weight
        else:
            v.one_of("Linear", "weights", weights, WEIGHT_FORMATS)
            weight = np.ascontiguousarray(weight, dtype=np.float32)
            if weight.ndim != 2:
                raise ValueError(f"Linear: weight must be 2-D, got shape {weight.shape}")
            if layout == "out_in":
                self.out_features, self.in_features = weight.shape
            else:
                self.in_features, self.out_features = weight.shape
            packed = None
        if bias is not None:
            bias = np.ascontiguousarray(bias, dtype=np.float32)
            v.require_shape("Linear", "bias", bias, (self.out_features,))
        self.bias = bias
        self.weight = packed if packed is not None else ops.PackedMatrix(
            weight, transpose=(layout == "out_in"), weights=weights)

    @property
    def weights(self) -> str:
        """The weight's format ("float32", "bfloat16", "float16", "q8", "q4")."""
        return getattr(self.weight, "weights", "float32")

    def __call__(self, x: np.ndarray, activation: str | None = None,
                 residual: np.ndarray | None = None) -> np.ndarray:
        """activation(x W^T + b) + residual, for x (..., in_features)."""
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        r2 = None if residual is None else residual.reshape(-1, self.out_features)
        y = ops.matmul(x2, self.weight, bias=self.bias, activation=activation, residual=r2)
        return y.reshape(*lead, self.out_features)

    @staticmethod
    def concat(layers: "list[tuple[np.ndarray, np.ndarray | None]]",
               weights: str = "float32") -> "Linear":
        """One Linear computing several out_in float32 layers side by side (q, k, v, or gate
        and up), in format ``weights``: one pass over x and one weight stream instead of
        several. (Builders fuse a checkpoint's matrices in their stored format with
        fastattn.models.weights.Tensors.linear instead.)"""
        matrices = [w for w, _ in layers]
        biases = [b for _, b in layers]
        bias = None
        if any(b is not None for b in biases):
            bias = np.concatenate([b if b is not None else np.zeros(w.shape[0], np.float32)
                                   for w, b in layers])
        return Linear(np.concatenate(matrices, axis=0), bias, weights=weights)
