"""The check of a patch-embedding model's ``pixel_values`` (ViT, SAM's image encoder): one
place for the errors a user sees when handing an image batch to a vision transformer."""
from __future__ import annotations

import numpy as np


def check_pixel_values(op: str, x, channels: int, patch_hw: tuple[int, int],
                       size_hint: str) -> np.ndarray:
    """``x`` as a C-contiguous (B, channels, H, W) float32 array (copied only when strided),
    B >= 1, H and W positive multiples of the patch; TypeError (not a float32 ndarray) or
    ValueError (shape) prefixed with ``op``. ``size_hint`` ends the size error (what size the
    model takes and how to get there)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: pixel_values must be a float32 numpy array (B, {channels}, H, "
                        f"W), got {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"{op}: pixel_values must be float32, got {x.dtype} (convert with "
                        ".astype(np.float32))")
    if x.ndim != 4:
        raise ValueError(f"{op}: pixel_values must be (batch, channels, height, width), here "
                         f"(batch, {channels}, height, width), got shape {x.shape}")
    b, ch, h, w = x.shape
    if ch != channels:
        raise ValueError(f"{op}: pixel_values has {ch} channels (shape {x.shape}), the model "
                         f"expects {channels}: (batch, {channels}, height, width)")
    if b == 0:
        raise ValueError(f"{op}: pixel_values holds no image (shape {x.shape})")
    ph, pw = patch_hw
    if h < ph or w < pw or h % ph or w % pw:
        raise ValueError(f"{op}: image size {h}x{w} must be a positive multiple of the patch "
                         f"size {ph}x{pw} ({size_hint})")
    return np.ascontiguousarray(x)
