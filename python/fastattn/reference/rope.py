"""Rotary position embedding, as the Hugging Face / GPT-J model code writes it (any float
dtype; the tests use float64). Frequencies and scalings: fastattn.rope_frequencies."""
import numpy as np

from ..rope_frequencies import DEFAULT_THETA, resolve_rope_config, rope_frequencies


def rotate_half(x):
    """(x1, x2) -> (-x2, x1) over the two halves of the last axis (GPT-NeoX, LLaMA)."""
    h = x.shape[-1] // 2
    return np.concatenate((-x[..., h:], x[..., :h]), axis=-1)


def rotate_every_two(x):
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...) (GPT-J, RoFormer)."""
    return np.stack((-x[..., 1::2], x[..., 0::2]), axis=-1).reshape(x.shape)


def rope(x, positions, theta=DEFAULT_THETA, style="half", rotary_dim=None, scaling=None):
    """x (B, H, L, D); positions (L,) or (B, L). y = x cos + rotate(x) sin on the first
    rotary_dim features, with cos / sin of the angles p * inv_freq (times the scaling's
    attention factor) laid out to match the pairing; the other features pass through."""
    theta, rotary_dim = resolve_rope_config("rope", theta, rotary_dim, x.shape[-1], scaling)
    r = x.shape[-1] if rotary_dim is None else rotary_dim
    positions = np.asarray(positions)
    inv_freq, attention = rope_frequencies(r, theta, scaling, int(positions.max()) + 1)
    angles = positions.astype(np.float64)[..., None] * inv_freq        # (L, r/2) or (B, L, r/2)
    if angles.ndim == 3:
        angles = angles[:, None]                                        # (B, 1, L, r/2)
    if style == "half":
        angles = np.concatenate((angles, angles), axis=-1)              # pair i with i + r/2
        rotate = rotate_half
    else:
        angles = np.repeat(angles, 2, axis=-1)                          # pair 2i with 2i + 1
        rotate = rotate_every_two
    cos = (np.cos(angles) * attention).astype(x.dtype)
    sin = (np.sin(angles) * attention).astype(x.dtype)
    xr, xpass = x[..., :r], x[..., r:]
    return np.concatenate((xr * cos + rotate(xr) * sin, xpass), axis=-1)
