"""The one table of activation names.

fastattn's kernels know four activations by a canonical name: ``relu``, ``gelu`` (exact, erf),
``gelu_tanh`` (the tanh approximation) and ``silu``. Checkpoints name them as Hugging Face's
``hidden_act`` / ``activation_function`` do; every alias fastattn accepts is listed here, once,
and everything else (layers, model configs, the NumPy references, the matmul epilogue) reads
this table. An unknown name is refused with the list of known ones.
"""
from __future__ import annotations

# canonical kernel names (the matmul epilogue's `activation=` and _core.activation's names)
KERNEL_ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "silu")

# Hugging Face name -> canonical name. transformers' ACT2FN: "gelu" is erf GELU; "gelu_new",
# "gelu_pytorch_tanh" and "gelu_fast" are the tanh formula (gelu_fast writes the same
# polynomial as 0.7978845608 x (1 + 0.044715 x^2)); "swish" is silu.
ACTIVATIONS = {
    "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh", "relu": "relu", "silu": "silu", "swish": "silu",
    "gelu_tanh": "gelu_tanh",
}


def activation_name(name: str, op: str = "activation") -> str:
    """The canonical kernel name of a Hugging Face (or canonical) activation name;
    ValueError naming ``op`` and the supported names otherwise."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"{op}: unsupported activation {name!r}; supported: "
                         f"{', '.join(sorted(ACTIVATIONS))}") from None
