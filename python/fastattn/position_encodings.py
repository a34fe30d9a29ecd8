"""Position encodings without a kernel: sinusoidal (Vaswani et al.), ALiBi (Press et al.) and
2-D random Fourier features (Segment Anything's PositionEmbeddingRandom). Each is a one-off
table or a small per-prompt computation, so NumPy in float64 rounded to float32 is fast enough;
``fastattn.reference.position_encodings`` writes the same math as loops."""
from __future__ import annotations

import math

import numpy as np

from . import _validate as v


def sinusoidal_positions(L: int, D: int, base: float = 10000.0) -> np.ndarray:
    """The fixed (L, D) float32 table of "Attention Is All You Need", features interleaved:

        PE[p, 2i] = sin(p / base^(2i / D)),   PE[p, 2i + 1] = cos(p / base^(2i / D))

    (odd D: the last column is a sin). Added to the token embeddings."""
    op = "sinusoidal_positions"
    L, D = v.integer(op, "L", L, 0), v.integer(op, "D", D, 0)
    base = v.positive_float(op, "base", base)
    pair = np.arange(D) // 2                                   # i for columns 2i and 2i + 1
    angles = np.arange(L, dtype=np.float64)[:, None] / base ** (2.0 * pair / max(D, 1))
    table = np.where(np.arange(D) % 2 == 0, np.sin(angles), np.cos(angles))
    return table.astype(np.float32)


def alibi_slopes(H: int) -> np.ndarray:
    """ALiBi's per-head slopes (H,) float32. For H a power of two, the geometric sequence
    m_h = 2^(-8 (h + 1) / H). Otherwise (Press et al.'s rule) the slopes of the closest power
    of two c < H, followed by every other slope of 2c, 2^(-4 (2j + 1) / c), j < H - c."""
    op = "alibi_slopes"
    H = v.integer(op, "H", H, 1)

    def geometric(n: int) -> np.ndarray:
        return 2.0 ** (-8.0 * np.arange(1, n + 1) / n)

    c = 1 << (H.bit_length() - 1)
    slopes = geometric(c) if c == H else np.concatenate((geometric(c),
                                                         geometric(2 * c)[0::2][:H - c]))
    return slopes.astype(np.float32)


def alibi_bias(Hq: int, Lq: int, Lk: int) -> np.ndarray:
    """ALiBi's additive attention bias (Hq, Lq, Lk) float32:

        bias[h, i, j] = -m_h (p_i - j),   p_i = i + Lk - Lq

    Query rows are bottom-right aligned, like causal attention with a KV cache: the last query
    is the last key (decode: Lq = 1, p = Lk - 1). Keys after p_i get a positive bias here; apply
    a causal mask as well (ALiBi models are causal). Add it to the scaled scores."""
    op = "alibi_bias"
    Hq = v.integer(op, "Hq", Hq, 1)
    Lq, Lk = v.integer(op, "Lq", Lq, 0), v.integer(op, "Lk", Lk, 0)
    distance = (np.arange(Lk)[None, :] - (np.arange(Lq) + Lk - Lq)[:, None]).astype(np.float64)
    return (alibi_slopes(Hq).astype(np.float64)[:, None, None] * distance).astype(np.float32)


class RandomFourierEncoding:
    """2-D positional encoding by random Gaussian Fourier features (Tancik et al. 2020), as in
    Segment Anything's prompt encoder (PositionEmbeddingRandom):

        enc(x, y) = [sin(2 pi c G), cos(2 pi c G)],   c = (2x - 1, 2y - 1),   G (2, num_feats)

    for (x, y) in [0, 1]^2, so 2 * num_feats features. G = scale * N(0, 1) drawn from
    ``np.random.default_rng(seed)``; to reproduce a checkpoint, assign its matrix to
    ``gaussian_matrix`` (SAM's ``pe_layer.positional_encoding_gaussian_matrix``)."""

    def __init__(self, num_feats: int = 64, scale: float | None = None, seed: int = 0):
        op = "RandomFourierEncoding"
        num_feats = v.integer(op, "num_feats", num_feats, 1)
        scale = 1.0 if scale is None or scale <= 0 else v.positive_float(op, "scale", scale)
        rng = np.random.default_rng(seed)
        self.gaussian_matrix = (scale * rng.standard_normal((2, num_feats))).astype(np.float32)

    @property
    def num_feats(self) -> int:
        return self.gaussian_matrix.shape[1]

    def _encode(self, coords: np.ndarray) -> np.ndarray:
        """coords (..., 2) in [0, 1] -> (..., 2 num_feats)."""
        c = 2.0 * coords - 1.0
        angles = 2.0 * math.pi * (c @ self.gaussian_matrix.astype(np.float64))
        return np.concatenate((np.sin(angles), np.cos(angles)), axis=-1).astype(np.float32)

    def grid(self, h: int, w: int) -> np.ndarray:
        """Encoding of an h x w grid of pixel centres, ((j + 0.5) / w, (i + 0.5) / h):
        (2 num_feats, h, w) float32 (channels first, like SAM's image positional encoding)."""
        op = "RandomFourierEncoding.grid"
        h, w = v.integer(op, "h", h, 0), v.integer(op, "w", w, 0)
        y = (np.arange(h, dtype=np.float64) + 0.5) / max(h, 1)
        x = (np.arange(w, dtype=np.float64) + 0.5) / max(w, 1)
        coords = np.stack(np.broadcast_arrays(x[None, :], y[:, None]), axis=-1)  # (h, w, 2)
        return np.ascontiguousarray(np.moveaxis(self._encode(coords), -1, 0))

    def encode_points(self, xy: np.ndarray, image_size) -> np.ndarray:
        """Points ``xy (..., 2)`` in pixels, (x, y), of an image of ``image_size = (H, W)``:
        shifted to pixel centres (+0.5) and normalised, ((x + 0.5) / W, (y + 0.5) / H), then
        encoded: (..., 2 num_feats) float32."""
        op = "RandomFourierEncoding.encode_points"
        if not isinstance(xy, np.ndarray) or not np.issubdtype(xy.dtype, np.number):
            raise TypeError(f"{op}: xy must be a numeric numpy.ndarray, got "
                            f"{type(xy).__name__ if not isinstance(xy, np.ndarray) else xy.dtype}")
        if xy.ndim == 0 or xy.shape[-1] != 2:
            raise ValueError(f"{op}: xy has shape {v.shape_str(xy.shape)}, expected (..., 2)")
        if len(image_size) != 2:
            raise ValueError(f"{op}: image_size must be (H, W), got {image_size!r}")
        H = v.positive_float(op, "image_size[0]", image_size[0])
        W = v.positive_float(op, "image_size[1]", image_size[1])
        coords = (xy.astype(np.float64) + 0.5) / np.array([W, H])
        return self._encode(coords)
