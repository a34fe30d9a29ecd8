"""Bytes per element of the storage dtypes a cost can assume for weights and the KV cache.

fastattn computes in float32; the other names answer "what if": the bytes a model would read
with its weights or its cache stored narrower (int4 packs two values per byte)."""
from __future__ import annotations

DTYPE_BYTES = {"float64": 8.0, "float32": 4.0, "float16": 2.0, "bfloat16": 2.0,
               "float8": 1.0, "int8": 1.0, "int4": 0.5}
# activations (hidden states, q/k/v, logits) are float32 in every fastattn kernel
ACTIVATION_BYTES = 4.0


def dtype_bytes(name: str, what: str = "dtype") -> float:
    """Bytes per element of the dtype ``name`` ("float32", "float16", "bfloat16", "int8", ...);
    ValueError naming ``what`` for an unknown one."""
    key = str(name).removeprefix("torch.")
    if key not in DTYPE_BYTES:
        raise ValueError(f"analysis: {what} {name!r} is not known; known: "
                         f"{', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[key]
