"""Image classification: images in, the top-k labels with their probabilities out, and
where a ViT looked to decide.

    pixel_values = processor(images)                    (N, C, H, W) float32
    p(label | image) = softmax(model(pixel_values).logits)

The processor (fastattn.vision.ImageProcessor) is the checkpoint's own
(preprocessor_config.json / timm pretrained_cfg) with ``ImageClassifier.from_pretrained``, or
the model type's defaults with the module-level ``classify(model, images)``.
"""
from __future__ import annotations

import numbers
import os

import numpy as np

from ..ops.softmax import softmax
from ..vision.image_io import is_pil_image
from ..vision.processor import ImageProcessor

EXPLAIN_METHODS = ("rollout", "cls")


def _labels(config, n: int) -> list[str]:
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label.get(i, f"LABEL_{i}")) for i in range(n)]


def _is_single_image(images) -> bool:
    return (isinstance(images, (str, os.PathLike)) or is_pil_image(images)
            or (isinstance(images, np.ndarray) and images.ndim in (2, 3)))


def pixel_values_of(images, processor: ImageProcessor, num_channels: int) -> np.ndarray:
    """What a model takes, (N, C, H, W) float32, from: an (N, C, H, W) float32 batch
    (already preprocessed, used as is), one image ((H, W, C) or (H, W) array, path, PIL
    image), or a list / tuple of images."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        if images.dtype != np.float32:
            raise TypeError(f"classify: a 4-D array is taken as preprocessed pixel_values "
                            f"(N, C, H, W) and must be float32, got {images.dtype}")
        if images.shape[1] != num_channels:
            raise ValueError(f"classify: pixel_values has shape {images.shape}, expected "
                             f"(N, {num_channels}, H, W) (channels first)")
        return images
    if isinstance(images, np.ndarray) and images.ndim not in (2, 3):
        raise ValueError(f"classify: an image array must be (H, W, C) or (H, W), or a "
                         f"preprocessed batch (N, C, H, W); got shape {images.shape}")
    if not _is_single_image(images) and not isinstance(images, (list, tuple)):
        raise TypeError(f"classify: images must be an array, a path, a PIL image or a list "
                        f"of them, got {type(images).__name__}")
    return processor(images)


def _check_top_k(top_k) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ValueError(f"classify: top_k must be an int >= 1, got {top_k!r}")
    return int(top_k)


def top_k_labels(logits: np.ndarray, labels: list[str], top_k: int) -> list[list[tuple]]:
    """Per row of ``logits`` (N, num_labels): the ``top_k`` (label, probability) pairs, most
    probable first (ties: lower class index first); probabilities are the softmax over all
    labels."""
    probs = softmax(np.ascontiguousarray(logits, dtype=np.float32))
    k = min(top_k, probs.shape[1])
    return [[(labels[i], float(row[i])) for i in np.argsort(-row, kind="stable")[:k]]
            for row in probs]


def classify(model, images, top_k: int = 5, *, processor: ImageProcessor | None = None):
    """The ``top_k`` most probable labels of each image: a list (one entry per image, also
    for a single image) of lists of ``(label, probability)``. ``images``: an (H, W, C) /
    (H, W) array (uint8, or float on the 0-255 scale), a path (Pillow), a PIL image, a list
    of those, or a preprocessed (N, C, H, W) float32 batch. ``processor``: default
    ``ImageProcessor.from_model_config(model.config)`` (the model type's defaults, or timm's
    pretrained_cfg); ``ImageClassifier.from_pretrained`` uses the checkpoint's own file.
    Labels: ``model.config.id2label``, "LABEL_i" where it has none."""
    top_k = _check_top_k(top_k)
    config = model.config
    if processor is None:
        processor = ImageProcessor.from_model_config(config)
    pixel_values = pixel_values_of(images, processor, getattr(config, "num_channels", 3))
    logits = model(pixel_values).logits
    if logits is None:
        raise ValueError("classify: the checkpoint has no classifier head (logits is None); "
                         "it is a backbone (ViTModel / ResNetModel)")
    return top_k_labels(logits, _labels(config, logits.shape[1]), top_k)


def explain_map(model, pixel_values: np.ndarray, method: str = "rollout", *,
                head_fusion: str = "mean", discard_ratio: float = 0.0, layer: int = -1,
                head: int | None = None) -> np.ndarray:
    """Where the model looked, per image: (N, H, W) float32 in [0, 1] at the resolution of
    ``pixel_values`` (N, C, H, W). ``method``: 'rollout' (attention rollout, all layers:
    fastattn.explain.rollout_map) or 'cls' (what [CLS] attends to in ``layer``, ``head``
    or the mean over heads: cls_attention_map). Needs a model that returns attentions (ViT)."""
    from .. import explain

    if method not in EXPLAIN_METHODS:
        raise ValueError(f"explain: method must be 'rollout' or 'cls', got {method!r}")
    config = model.config
    out = model(pixel_values, output_attentions=True)
    if getattr(out, "attentions", None) is None:
        raise ValueError(f"explain: the model (model_type {getattr(config, 'model_type', '?')!r}) "
                         "returns no attention probabilities; attention maps need a Vision "
                         "Transformer")
    prefix = int(getattr(config, "num_prefix_tokens", 1))
    height, width = pixel_values.shape[2:]
    patch = getattr(config, "patch_size", None)
    grid = (height // patch, width // patch) if patch else None
    if method == "rollout":
        maps = explain.rollout_map(out.attentions, head_fusion, discard_ratio, prefix, grid)
    else:
        maps = explain.cls_attention_map(out.attentions, layer, head, prefix, grid)
    return explain.normalize_map(explain.upsample_map(maps, (height, width)))


class ImageClassifier:
    """A vision checkpoint directory as an image classifier: model (fastattn.load) and its
    preprocessing (ImageProcessor.from_pretrained) loaded once.

        clf = ImageClassifier.from_pretrained("path/to/vit-base-patch16-224")
        clf.classify("cat.jpg", top_k=3)   # [[("tabby, tabby cat", 0.61), ...]]
        heat = clf.explain("cat.jpg")      # (H, W) in [0, 1], over clf.model_view("cat.jpg")
    """

    def __init__(self, model, processor: ImageProcessor | None = None):
        self.model = model
        self.processor = (processor if processor is not None
                          else ImageProcessor.from_model_config(model.config))

    @classmethod
    def from_pretrained(cls, model_dir, *, mmap: bool = True,
                        weights: str = "as-stored") -> "ImageClassifier":
        """``weights``: the Linear matrices' format (fastattn.load; docs/quantization.md)."""
        from ..loading import load
        from ..models.weights import check_format
        check_format("ImageClassifier", weights)
        return cls(load(model_dir, mmap=mmap, weights=weights),
                   ImageProcessor.from_pretrained(model_dir))

    def classify(self, images, top_k: int = 5):
        """``classify(self.model, images, top_k, processor=self.processor)``."""
        return classify(self.model, images, top_k, processor=self.processor)

    __call__ = classify

    def model_view(self, image) -> np.ndarray:
        """``image`` resized and cropped as the model sees it, (H, W, C) (uint8 stays uint8):
        the picture ``explain``'s map lines up with."""
        return self.processor.resize_and_crop(image)

    def explain(self, image, method: str = "rollout", **options) -> np.ndarray:
        """Where the model looked in one image: (H, W) float32 in [0, 1] over
        ``model_view(image)`` (``explain_map`` for the methods and options)."""
        if not _is_single_image(image):
            raise TypeError(f"explain: expected one image (an array, a path or a PIL image), "
                            f"got {type(image).__name__}")
        pixel_values = self.processor(image)
        return explain_map(self.model, pixel_values, method, **options)[0]
