"""``ImageProcessor``: what a vision checkpoint expects between an image file and its
``pixel_values`` — resize, center crop, rescale, normalise, batch — as one frozen dataclass.

    image (H, W, C) uint8 -> resize (Pillow-exact) -> center crop -> * rescale_factor
          -> (x - mean) / std -> (C, H', W'); a list of images -> (N, C, H', W') float32

Read from a checkpoint directory (``from_pretrained``: Hugging Face's
``preprocessor_config.json`` or timm's ``pretrained_cfg`` in config.json) or from a model's
config (``from_model_config``); the rules that turn those files into these fields are in
``processor_config.py``.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from .image_io import as_image
from .resampling import RESAMPLE_MODES, resize, shortest_edge_size
from .transforms import CROP_ROUNDING, center_crop, rescale_and_normalize, to_batch

IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class ImageProcessor:
    """The preprocessing of one checkpoint. Resizing: to ``size = (height, width)`` (aspect
    ratio not kept), or, with ``shortest_edge``, the shorter side to that many pixels and
    the longer side ``int(shortest_edge * long / short)``; exactly one of the two when
    ``do_resize``. ``resample``: 'bilinear', 'bicubic', 'nearest', 'box', 'hamming',
    'lanczos' (Pillow's filters, reproduced exactly for uint8 images: vision/resampling.py).
    ``crop_rounding`` places an odd-margin crop as transformers ('floor') or torchvision /
    timm ('round') do. ``origin`` says where the settings came from (for messages)."""

    do_resize: bool = True
    size: tuple[int, int] | None = (224, 224)
    shortest_edge: int | None = None
    resample: str = "bilinear"
    do_center_crop: bool = False
    crop_size: tuple[int, int] | None = None
    crop_rounding: str = "floor"
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, ...] = IMAGENET_STANDARD_MEAN
    image_std: tuple[float, ...] = IMAGENET_STANDARD_STD
    origin: str = "defaults"

    def __post_init__(self):
        op = "ImageProcessor"
        if self.do_resize and (self.size is None) == (self.shortest_edge is None):
            raise ValueError(f"{op}: do_resize needs exactly one of size (height, width) and "
                             f"shortest_edge, got size={self.size!r}, "
                             f"shortest_edge={self.shortest_edge!r}")
        for name in ("size", "crop_size"):
            value = getattr(self, name)
            if value is not None:
                if (len(value) != 2 or not all(isinstance(v, (int, np.integer))
                                               and not isinstance(v, bool) and v >= 1
                                               for v in value)):
                    raise ValueError(f"{op}: {name} must be two ints >= 1 (height, width), "
                                     f"got {value!r}")
                object.__setattr__(self, name, (int(value[0]), int(value[1])))
        if self.shortest_edge is not None and not (
                isinstance(self.shortest_edge, (int, np.integer)) and self.shortest_edge >= 1):
            raise ValueError(f"{op}: shortest_edge must be an int >= 1, "
                             f"got {self.shortest_edge!r}")
        if self.do_center_crop and self.crop_size is None:
            raise ValueError(f"{op}: do_center_crop needs crop_size (height, width)")
        if self.resample not in RESAMPLE_MODES:
            raise ValueError(f"{op}: resample must be one of {RESAMPLE_MODES}, "
                             f"got {self.resample!r}")
        if self.crop_rounding not in CROP_ROUNDING:
            raise ValueError(f"{op}: crop_rounding must be 'floor' or 'round', "
                             f"got {self.crop_rounding!r}")
        mean = tuple(float(m) for m in self.image_mean)
        std = tuple(float(s) for s in self.image_std)
        if len(mean) != len(std) or not mean:
            raise ValueError(f"{op}: image_mean and image_std must have the same number of "
                             f"values (one per channel), got {len(mean)} and {len(std)}")
        if not all(np.isfinite(s) and s > 0 for s in std):
            raise ValueError(f"{op}: image_std must be finite and > 0, got {std}")
        object.__setattr__(self, "image_mean", mean)
        object.__setattr__(self, "image_std", std)

    @property
    def num_channels(self) -> int:
        return len(self.image_mean)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the resize step for an input of this size."""
        if not self.do_resize:
            return (height, width)
        if self.size is not None:
            return self.size
        return shortest_edge_size(height, width, self.shortest_edge)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the processed image for an input of this size."""
        return self.crop_size if self.do_center_crop else self.resized_size(height, width)

    def resize_and_crop(self, image) -> np.ndarray:
        """The geometric steps only: the image (H', W', C) as the model sees it, same dtype
        (uint8 stays uint8) — what an attention map over the model's input lines up with."""
        image = self._channels(as_image(image))
        if self.do_resize:
            image = resize(image, self.resized_size(image.shape[0], image.shape[1]),
                           self.resample)
        if self.do_center_crop:
            image = center_crop(image, self.crop_size, self.crop_rounding)
        return image

    def preprocess(self, image) -> np.ndarray:
        """One image (an (H, W, C) or (H, W) uint8 or float array on the 0-255 scale, a
        path, or a PIL image) -> (C, H', W') float32."""
        image = self.resize_and_crop(image)
        x = rescale_and_normalize(image, self.rescale_factor if self.do_rescale else None,
                                  self.image_mean if self.do_normalize else None,
                                  self.image_std if self.do_normalize else None)
        return x.transpose(2, 0, 1)                     # H W C -> C H W

    def __call__(self, images) -> np.ndarray:
        """``images`` (one image, or a list or tuple of them: arrays, paths, PIL images)
        -> ``pixel_values`` (N, C, H', W') float32. Float arrays are taken on the same
        0-255 scale as uint8 (``rescale_factor`` applies to them too, as in transformers);
        a grayscale image (H, W) or (H, W, 1) is repeated over the channels."""
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("ImageProcessor: no images")
            processed = [self.preprocess(im) for im in images]
        else:
            processed = [self.preprocess(images)]
        return to_batch([p.transpose(1, 2, 0) for p in processed])

    def _channels(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            image = image[:, :, None]
        c = image.shape[2]
        if c == self.num_channels:
            return image
        if c == 1:
            return np.repeat(image, self.num_channels, axis=2)
        raise ValueError(f"ImageProcessor: the image has {c} channels, the model takes "
                         f"{self.num_channels} (an RGBA image: drop the alpha channel, or read "
                         "the file with fastattn.vision.load_image, which converts to RGB)")

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike) -> "ImageProcessor":
        """The processor of a checkpoint directory: its ``preprocessor_config.json``
        (Hugging Face), else the ``pretrained_cfg`` of a timm ``config.json``, else the
        defaults for its config.json's ``model_type`` and ``image_size``."""
        from .processor_config import processor_from_dir
        return processor_from_dir(cls, model_dir)

    @classmethod
    def from_model_config(cls, config) -> "ImageProcessor":
        """Defaults for a loaded model's config (``model.config``): timm's
        ``pretrained_cfg`` when it has one, else by ``model_type`` — ViT: resize to
        image_size x image_size, bilinear, mean = std = 0.5 (ViTImageProcessor); ResNet:
        shortest edge image_size / 0.875, bicubic, center crop image_size, ImageNet mean/std
        (microsoft/resnet-50's preprocessor)."""
        from .processor_config import processor_from_model_config
        return processor_from_model_config(cls, config)
