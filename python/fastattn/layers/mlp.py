"""Feed-forward blocks: MLP (fc -> activation -> proj) and the gated SwiGLU MLP."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..activation_names import ACTIVATIONS, activation_name  # noqa: F401 (re-exported)
from .linear import Linear


class MLP:
    """proj(act(fc(x))) [+ residual]; the activation runs in fc's matmul epilogue and the
    residual in proj's."""

    def __init__(self, fc: Linear, proj: Linear, activation: str):
        self.fc, self.proj, self.activation = fc, proj, activation

    def __call__(self, x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        return self.proj(self.fc(x, activation=self.activation), residual=residual)


class GatedMLP:
    """down(silu(gate(x)) * up(x)) [+ residual] (LLaMA's SwiGLU). gate and up share one
    matmul over the concatenated weight."""

    def __init__(self, gate_up: Linear, down: Linear):
        self.gate_up, self.down = gate_up, down
        self.intermediate = gate_up.out_features // 2

    def __call__(self, x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        gu = self.gate_up(x)
        h = ops.swiglu(gu[..., : self.intermediate], gu[..., self.intermediate:])
        return self.down(h, residual=residual)
