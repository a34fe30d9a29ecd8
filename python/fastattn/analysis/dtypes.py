"""Bytes per element of the storage dtypes a cost can assume for weights and the KV cache.

fastattn computes in float32; the other names answer "what if": the bytes a model would read
with its weights or its cache stored narrower (int4 packs two values per byte). The weight
formats fastattn loads (float32, bfloat16, float16, q8, q4: fastattn.load(weights=),
docs/weight_formats.md) come from fastattn.weight_formats, scales included: q8 34/32 bytes
(32 int8 and one float16 scale per block of 32), q4 18/32 (16 bytes of nibbles and the scale)."""
from __future__ import annotations

from ..weight_formats import BYTES_PER_WEIGHT

DTYPE_BYTES = {"float64": 8.0, **BYTES_PER_WEIGHT, "float8": 1.0, "int8": 1.0, "int4": 0.5}
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
