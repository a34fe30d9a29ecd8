"""What the model references share: the attention-head layout and Hugging Face's positions
under left padding."""
import numpy as np


def positions_and_mask(ids, attention_mask):
    """(positions (B, L), key mask (B, 1, 1, L) or None). Hugging Face's left padding: position
    = number of real tokens before this one; padded keys are masked out of every query."""
    if attention_mask is None:
        return np.broadcast_to(np.arange(ids.shape[1]), ids.shape), None
    mask = np.asarray(attention_mask).astype(bool)
    positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
    return positions, mask[:, None, None, :]


def split_heads(x, n):
    """(B, L, n * d) -> (B, n, L, d)."""
    b, l, e = x.shape
    return x.reshape(b, l, n, e // n).transpose(0, 2, 1, 3)


def merge_heads(x):
    b, h, l, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, l, h * d)
