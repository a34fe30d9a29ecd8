"""Images in: files read with Pillow (the optional ``image`` extra), PIL images and arrays
turned into the (H, W, C) uint8 RGB arrays the rest of fastattn.vision works on."""
from __future__ import annotations

import os

import numpy as np

_PILLOW_MISSING = ("reading image files needs Pillow, an optional dependency of fastattn: "
                   "pip install 'fastattn[image]' (or pass the image as a NumPy array "
                   "(H, W, 3) uint8)")


def _pil_image_module():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError(_PILLOW_MISSING) from None
    return Image, ImageOps


def load_image(path: str | os.PathLike) -> np.ndarray:
    """The image file at ``path`` as an (H, W, 3) uint8 RGB array. As transformers'
    ``load_image``: the EXIF orientation is applied, then the image is converted to RGB
    (palette and grayscale expanded, an alpha channel dropped). Needs Pillow
    (``pip install 'fastattn[image]'``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load_image: path must be a str or os.PathLike, "
                        f"got {type(path).__name__}")
    Image, ImageOps = _pil_image_module()
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB")).copy()


def is_pil_image(obj) -> bool:
    """Whether ``obj`` is a PIL image (without importing Pillow when it is not loaded)."""
    import sys
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(obj, pil.Image)


def as_image(image) -> np.ndarray:
    """An image given as an array (returned as is), a path (read with ``load_image``) or a
    PIL image (converted to RGB) -> an array. Anything else: TypeError."""
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if is_pil_image(image):
        return np.asarray(image.convert("RGB")).copy()
    raise TypeError(f"expected an image: a numpy.ndarray (H, W, C), a path or a PIL image, "
                    f"got {type(image).__name__}")
