"""Weight formats: how a matmul weight is stored, and the NumPy conversions to and from float32.

One table, used by ``PackedMatrix(weights=...)`` (quantising / converting a float32 weight), by
its ``unpacked()`` and by the tests' float64 reference. Layouts, bytes and error bounds are
derived in docs/weight_formats.md; the kernels (cpp/kernels/matmul/lowp*.cpp) read exactly
these arrays.

Canonical storage is "out_in": row n of the (N, K) matrix W^T (nn.Linear's layout, llama.cpp's)
is contiguous along the reduction axis K, so a BF16 checkpoint's Linear weight already *is*
bfloat16 storage.

- float32: weight float32 (N, K); 4 bytes a weight; exact.
- bfloat16: weight uint16 (N, K), the high half of float32's bits; 2 bytes; |e| <= 2^-8 |w|.
- float16: weight uint16 (N, K), IEEE binary16; 2 bytes; |e| <= 2^-11 |w| in [2^-14, 65504].
- q8: weight int8 (N, Kp), scales float16 (N, Kp / 32); 34 / 32 bytes; |e| <= d / 2.
- q4: weight uint8 (N, Kp / 2), scales float16 (N, Kp / 32); 18 / 32 bytes; |e| <= |d| / 2,
  up to ~|d| for a value clamped at +7 (below).

Kp = K rounded up to a multiple of 32 (the padding is quantised zeros). Rounding: bfloat16 and
float16 round to nearest, ties to even (NaN stays NaN, beyond the range gives inf). q8 and q4
round w / d to nearest, ties to even, with the scale d already rounded to float16 (the value
the kernels multiply by), so the bound holds for the stored d:

- q8 (llama.cpp Q8_0): per block of 32 along K, d = f16(max|w| / 127), q = round(w / d) in
  [-127, 127]; w ~ q d.
- q4 (llama.cpp Q4_0): d = f16(m / -8) with m the block's value of largest magnitude (sign
  kept), q = clamp(round(w / d), -8, 7), stored as the nibble q + 8: byte i of a block holds
  element i in its low nibble and element i + 16 in its high nibble. m itself is exact
  (q = -8); a value of the opposite sign and about the same magnitude (w / d in (7.5, 8])
  clamps to 7, so its error reaches |d| (slightly more, 8 / (1 - 2^-11) - 7, with d rounded).
"""
from __future__ import annotations

import numpy as np

# bfloat16 <-> float32 bit patterns (round to nearest even, NaN kept quiet): the one NumPy
# definition, shared with the safetensors reader / writer and the KV cache's tests.
from .io.safetensors import bf16_to_float32, float32_to_bf16

WEIGHT_FORMATS = ("float32", "bfloat16", "float16", "q8", "q4")
BLOCK = 32  # quantisation block along K (q8, q4)

# Storage bytes per weight, scales included (for a K that is a multiple of BLOCK).
BYTES_PER_WEIGHT = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0,
                    "q8": (BLOCK + 2) / BLOCK, "q4": (BLOCK // 2 + 2) / BLOCK}


def check_format(op: str, weights) -> str:
    if not isinstance(weights, str):
        raise TypeError(f"{op}: weights must be a str, one of {WEIGHT_FORMATS}, got "
                        f"{type(weights).__name__}")
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"{op}: weights must be one of {WEIGHT_FORMATS}, got {weights!r}")
    return weights


def padded_k(k: int) -> int:
    return -(-k // BLOCK) * BLOCK


def storage_shapes(weights: str, k: int, n: int) -> dict:
    """name -> (dtype, shape) of the canonical storage of a (K, N) weight."""
    if weights == "float32":
        return {"weight": (np.dtype(np.float32), (n, k))}
    if weights in ("bfloat16", "float16"):
        return {"weight": (np.dtype(np.uint16), (n, k))}
    kp = padded_k(k)
    scales = (np.dtype(np.float16), (n, kp // BLOCK))
    if weights == "q8":
        return {"weight": (np.dtype(np.int8), (n, kp)), "scales": scales}
    return {"weight": (np.dtype(np.uint8), (n, kp // 2)), "scales": scales}


# ------------------------------------------------------------------ 16-bit floats

def float16_bits(w: np.ndarray) -> np.ndarray:
    """float32 -> IEEE binary16 bit patterns (uint16); NumPy's cast rounds to nearest even."""
    with np.errstate(over="ignore"):
        return np.asarray(w, dtype=np.float32).astype(np.float16).view(np.uint16)


def float16_to_float32(bits: np.ndarray) -> np.ndarray:
    return bits.view(np.float16).astype(np.float32)


# ------------------------------------------------------------------ block quantisation

def _blocks(wt: np.ndarray) -> np.ndarray:
    """(N, K) float32 -> (N, Kp / 32, 32), zero-padded along K."""
    n, k = wt.shape
    kp = padded_k(k)
    x = np.zeros((n, kp), np.float32)
    x[:, :k] = wt
    return x.reshape(n, kp // BLOCK, BLOCK)


def _check_finite(op: str, wt: np.ndarray, weights: str) -> None:
    if not np.isfinite(wt).all():
        raise ValueError(f"{op}: w must be finite to quantise to {weights}, found inf or NaN")


def _scale(op: str, d: np.ndarray, weights: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        d16 = d.astype(np.float16)
    if not np.isfinite(d16).all():
        raise ValueError(f"{op}: w too large for {weights}: a block's scale exceeds float16's "
                         f"largest value 65504")
    return d16


def _quotient(x: np.ndarray, d16: np.ndarray) -> np.ndarray:
    """round(x / d) per block, ties to even; 0 where d rounded to 0 (then every |x| in the
    block is below float16's smallest step times 127 / 2, and q = 0 is the nearest)."""
    d = d16.astype(np.float32)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.rint(x / np.where(d == 0, np.float32(1), d))
    return np.where(d == 0, np.float32(0), q)


def quantize_q8(wt: np.ndarray, op: str = "quantize_q8") -> dict:
    """(N, K) float32 -> {"weight": int8 (N, Kp), "scales": float16 (N, Kp / 32)}."""
    _check_finite(op, wt, "q8")
    x = _blocks(wt)
    d16 = _scale(op, np.abs(x).max(axis=-1) / np.float32(127), "q8")
    q = np.clip(_quotient(x, d16), -127, 127).astype(np.int8)
    return {"weight": q.reshape(x.shape[0], x.shape[1] * BLOCK), "scales": d16}


def quantize_q4(wt: np.ndarray, op: str = "quantize_q4") -> dict:
    """(N, K) float32 -> {"weight": uint8 (N, Kp / 2), "scales": float16 (N, Kp / 32)}."""
    _check_finite(op, wt, "q4")
    x = _blocks(wt)
    idx = np.abs(x).argmax(axis=-1)[..., None]
    m = np.take_along_axis(x, idx, axis=-1)[..., 0]  # largest magnitude, sign kept
    d16 = _scale(op, m / np.float32(-8), "q4")
    q = (np.clip(_quotient(x, d16), -8, 7) + 8).astype(np.uint8)  # nibbles 0..15
    packed = q[..., :BLOCK // 2] | (q[..., BLOCK // 2:] << 4)
    return {"weight": packed.reshape(x.shape[0], x.shape[1] * BLOCK // 2), "scales": d16}


def dequantize_q8(weight: np.ndarray, scales: np.ndarray, k: int) -> np.ndarray:
    n, blocks = scales.shape
    q = weight.reshape(n, blocks, BLOCK).astype(np.float32)
    d = scales.view(np.float16).astype(np.float32)[..., None]
    return (q * d).reshape(n, blocks * BLOCK)[:, :k]


def q4_values(weight: np.ndarray) -> np.ndarray:
    """uint8 (N, Kp / 2) -> the signed quants (N, Kp / 32, 32) as int8 in [-8, 7]."""
    n = weight.shape[0]
    b = weight.reshape(n, weight.shape[1] * 2 // BLOCK, BLOCK // 2)
    q = np.concatenate([b & 0x0F, b >> 4], axis=-1).astype(np.int8)
    return q - np.int8(8)


def dequantize_q4(weight: np.ndarray, scales: np.ndarray, k: int) -> np.ndarray:
    n, blocks = scales.shape
    q = q4_values(weight).astype(np.float32)
    d = scales.view(np.float16).astype(np.float32)[..., None]
    return (q * d).reshape(n, blocks * BLOCK)[:, :k]


# ------------------------------------------------------------------ the table

def encode(wt: np.ndarray, weights: str, op: str = "PackedMatrix") -> dict:
    """(N, K) float32 (out_in) -> the format's canonical storage (new arrays)."""
    if weights == "float32":
        return {"weight": np.ascontiguousarray(wt, dtype=np.float32)}
    if weights == "bfloat16":
        return {"weight": np.ascontiguousarray(float32_to_bf16(wt))}
    if weights == "float16":
        return {"weight": np.ascontiguousarray(float16_bits(wt))}
    if weights == "q8":
        return quantize_q8(wt, op)
    return quantize_q4(wt, op)


def decode(storage: dict, weights: str, k: int) -> np.ndarray:
    """Canonical storage -> float32 (N, K) out_in, the values the kernels multiply by."""
    w = storage["weight"]
    if weights == "float32":
        return np.array(w, dtype=np.float32)
    if weights == "bfloat16":
        return bf16_to_float32(w)
    if weights == "float16":
        return float16_to_float32(w)
    if weights == "q8":
        return dequantize_q8(w, storage["scales"], k)
    return dequantize_q4(w, storage["scales"], k)


def error_bound(wt: np.ndarray, storage: dict, weights: str) -> np.ndarray:
    """Elementwise bound on |decode(storage) - wt| for (N, K) float32 wt (docs/weight_formats.md).

    bfloat16 / float16: half an ulp of the format, 2^-8 |w| / 2^-11 |w| relative in the
    normal range, at least half the smallest subnormal step (float16: 2^-25; bfloat16 has
    float32's range). q8: d / 2 (the quotient is at most 127 (1 + 2^-11) < 127.5: never
    clamped). q4: |d| / 2, or (8 / (1 - 2^-11) - 7) |d| where w / d > 7.5 (clamped to 7)."""
    a = np.abs(wt.astype(np.float64))
    if weights == "float32":
        return np.zeros_like(a)
    if weights == "bfloat16":
        return np.maximum(a * 2.0 ** -8, 2.0 ** -134)
    if weights == "float16":
        return np.maximum(a * 2.0 ** -11, 2.0 ** -25)
    n, k = wt.shape
    d = np.abs(storage["scales"].view(np.float16).astype(np.float64))
    dk = np.repeat(d, BLOCK, axis=1)[:, :k]
    # A subnormal (or zero) d is rounded by up to 2^-25 absolute, not 2^-11 relative: the
    # quotient can then pass the clamp, by at most qmax 2^-25 / d; the error stays below
    # qmax 2^-25 (w itself, when d rounded to 0).
    qmax = 127 if weights == "q8" else 8
    floor = np.where(dk < 2.0 ** -14, qmax * 2.0 ** -25, 0.0)
    if weights == "q8":
        return np.maximum(dk / 2, floor)
    ds = np.repeat(storage["scales"].view(np.float16).astype(np.float64), BLOCK, axis=1)[:, :k]
    with np.errstate(divide="ignore", invalid="ignore"):
        clamped = np.where(ds != 0, wt / ds, 0) > 7.5
    return np.maximum(np.where(clamped, dk * (8 / (1 - 2.0 ** -11) - 7), dk / 2), floor)


# ------------------------------------------------------------------ the int8 streaming path

def quantize_activations(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What matmul's q8 / q4 streaming path (M rows up to ``_core.matmul_lowp_gemv_max_m()``)
    does to the float32 activations (M, K) before its int8 x int8 block dots, llama.cpp's
    way: per block of 32 along K, d_a = max|a| / 127 (float32), q_a = round(a / d_a) in
    [-127, 127]. Returns (q_a int8 (M, Kp), d_a float32 (M, Kp / 32)). |a - q_a d_a| <=
    d_a / 2 (1 + 2^-20) elementwise (the kernel multiplies by 1 / d_a: 2^-22 relative more)."""
    m, k = a.shape
    x = _blocks(np.asarray(a, np.float32))
    d = (np.abs(x).max(axis=-1) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d > 0, np.float32(1) / np.where(d > 0, d, 1), np.float32(0))
    q = np.rint(x * inv[..., None].astype(np.float32)).astype(np.int8)
    return q.reshape(m, x.shape[1] * BLOCK), d


def activation_error_bound(a: np.ndarray, wd: np.ndarray) -> np.ndarray:
    """Bound on |C - a @ wd| for the int8 streaming path (M, N), wd the dequantised (K, N):
    the activations' rounding d_a / 2 (1 + 2^-20) per element through |wd|, plus the float32
    sums: per output one exact integer dot per block (q4's too: its nibble offset is taken off
    in integers), scaled (1 rounding for d_w d_a) and accumulated over nb = Kp / 32 blocks in 8
    lanes plus the lane sum, (nb + 5) u relative to sum |wd| (|a| + d_a / 2)."""
    k = a.shape[1]
    _, d = quantize_activations(a)
    dk = np.repeat(d.astype(np.float64), BLOCK, axis=1)[:, :k]
    awd = np.abs(np.asarray(wd, np.float64))
    nb = padded_k(k) // BLOCK
    return (0.5 * (1 + 2.0 ** -20) * (dk @ awd)
            + (nb + 5) * 2.0 ** -24 * ((np.abs(a.astype(np.float64)) + dk / 2) @ awd))
