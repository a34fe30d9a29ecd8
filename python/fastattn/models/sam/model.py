"""Segment Anything: the image encoder, the prompt encoder and the mask decoder composed.

    image embeddings  E = image_encoder(pixels)                 (B, C, h, w), once per image
    prompts           sparse, dense = prompt_encoder(points, labels, boxes, masks)
    masks             low_res, iou = mask_decoder(E, pe(grid), sparse, dense, multimask)

The model is pure (arrays in, arrays out); resizing, normalising and padding images, the
coordinate transforms, upsampling masks and the automatic mask generator live in
fastattn.pipelines (SamPredictor, SamAutomaticMaskGenerator).

Checkpoints: a Hugging Face SamModel directory (``fastattn.load(dir)``; SlimSAM checkpoints are
the same names at other widths) or an official segment-anything state dict saved as one
.safetensors file (``fastattn.load("sam_vit_b_01ec64.safetensors")``: the sizes are read from
the shapes, the names translated by models/sam/schema.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..output import ModelOutput
from .config import SamConfig
from .image_encoder import SamImageEncoder
from .mask_decoder import SamMaskDecoder
from .prompt_encoder import SamPromptEncoder
from .schema import (COMPONENTS, PROMPT_PE, SHARED_PE, is_official, official_to_hf,
                     sam_tensor_shapes)

# The official pixel normalisation (0-255 RGB); the official Sam module keeps them as buffers,
# which some converted state dicts carry: accepted when they hold these values.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass
class SamOutput(ModelOutput):
    """What ``SamModel(...)`` returns; ``out["name"]`` works too.

    - iou_scores: (P, M) the predicted IoU of each mask
    - pred_masks: (P, M, 4h, 4w) low-resolution mask logits (256 x 256 for a 1024 input)
    - image_embeddings: (B, C, h, w), computed or passed in
    M = num_multimask_outputs (masks 1..3) with multimask_output, else 1 (mask 0).
    """
    iou_scores: np.ndarray
    pred_masks: np.ndarray
    image_embeddings: np.ndarray


class SamModel:
    """SAM built from a checkpoint: ``fastattn.load(path)``, ``SamModel.from_weights(config,
    tensors)`` (Hugging Face names) or ``SamModel.from_official(tensors)``."""

    def __init__(self, config: SamConfig, image_encoder: SamImageEncoder,
                 prompt_encoder: SamPromptEncoder, mask_decoder: SamMaskDecoder):
        self.config = config
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder

    # ------------------------------------------------------------------------------ building
    @classmethod
    def from_weights(cls, config, source: Mapping, weights: str = "float32") -> "SamModel":
        """The model from ``config`` (a SamConfig or a config.json dict) and ``source``, a
        mapping of Hugging Face SamModel names to arrays (official names are translated
        first). ``weights``: the format of the image encoder's block matrices
        (fastattn.models.weights; "as-stored" is float32 here: the components are built from
        float32 arrays); the prompt encoder and the mask decoder stay float32. ValueError
        names a missing tensor, a wrong shape, or an unknown tensor."""
        c = SamConfig.of(config)
        names = list(source.keys())
        spelled = {}      # Hugging Face name -> the checkpoint's own (official) name
        if is_official(names):
            official = _official_tensors(source)
            source = official_to_hf(official, c)
            spelled = dict(zip(source.keys(), official.keys()))
            names = list(source.keys())
        known = set(sam_tensor_shapes(c)) | {PROMPT_PE}
        unknown = sorted(spelled.get(n, n) for n in names if n not in known)
        if unknown:
            shown = ", ".join(repr(n) for n in unknown[:5])
            more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
            raise ValueError(f"checkpoint: unexpected tensor(s) {shown}{more}: not part of a "
                             f"SAM model of this config")
        parts: dict[str, dict] = {p: {} for p in COMPONENTS}
        for name in names:
            prefix = next((p for p in COMPONENTS if name.startswith(p)), None)
            if prefix is not None:
                parts[prefix][name[len(prefix):]] = source[name]
        # The random-Fourier matrix is one tensor under two names (transformers ties them and
        # saves only shared_image_embedding's); either or both, equal when both.
        pe = _tied_positional(source, names)
        parts["prompt_encoder."]["shared_embedding.positional_embedding"] = pe
        return cls(c,
                   SamImageEncoder(parts["vision_encoder."], c.vision, weights),
                   SamPromptEncoder(parts["prompt_encoder."], c.prompt),
                   SamMaskDecoder(parts["mask_decoder."], c.decoder))

    @classmethod
    def from_official(cls, source: Mapping, where: str = "checkpoint",
                      weights: str = "float32") -> "SamModel":
        """The model of an official segment-anything state dict (name -> array; sam_vit_b /
        _l / _h, sizes read from the shapes); ``weights`` as in from_weights."""
        shapes = {name: tuple(np.shape(source[name])) for name in source.keys()}
        return cls.from_weights(SamConfig.from_official_shapes(shapes, where), source, weights)

    # ------------------------------------------------------------------------------ forward
    def get_image_embeddings(self, pixel_values) -> np.ndarray:
        """pixel_values (B, 3, S, S) float32, normalised and padded -> (B, C, h, w)."""
        return self.image_encoder(pixel_values)

    def image_positional_embeddings(self) -> np.ndarray:
        """(1, C, h, w): the random-Fourier encoding of the embedding grid's cell centres."""
        return self.prompt_encoder.image_positional_embeddings()

    def __call__(self, pixel_values=None, *, image_embeddings=None, input_points=None,
                 input_labels=None, input_boxes=None, input_masks=None,
                 multimask_output: bool = True) -> SamOutput:
        """Masks for P prompts on one image (or on P images, one prompt each).

        Exactly one of ``pixel_values`` (B, 3, S, S) and ``image_embeddings`` (B, C, h, w),
        B = 1 or P. Prompts as the prompt encoder takes them: ``input_points`` (P, N, 2) (x, y)
        in input pixels, ``input_labels`` (P, N) in {-10, -1, 0, 1, 2, 3} (default: all 1,
        positive, as transformers), ``input_boxes`` (P, 4) x1, y1, x2, y2, ``input_masks``
        (P, 1, 4h, 4w) logits. Returns a :class:`SamOutput`."""
        if (pixel_values is None) == (image_embeddings is None):
            raise ValueError("sam: pass exactly one of pixel_values and image_embeddings, got "
                             f"{'both' if pixel_values is not None else 'neither'}")
        if not isinstance(multimask_output, (bool, np.bool_)):
            raise TypeError(f"sam: multimask_output must be True or False, got "
                            f"{multimask_output!r}")
        if pixel_values is not None:
            image_embeddings = self.get_image_embeddings(pixel_values)
        else:
            image_embeddings = self._embeddings(image_embeddings)
        if input_points is not None and input_labels is None:
            shape = np.shape(input_points)
            input_labels = np.ones(shape[:-1] if len(shape) else (), np.int64)
        sparse, dense, valid = self.prompt_encoder(points=input_points, labels=input_labels,
                                                   boxes=input_boxes, masks=input_masks)
        b, p = image_embeddings.shape[0], sparse.shape[0]
        if b not in (1, p):
            raise ValueError(f"sam: {b} image embeddings for {p} prompts: give one image (all "
                             "prompts on it) or one image per prompt")
        masks, iou = self.mask_decoder(image_embeddings, self.image_positional_embeddings(),
                                       sparse, dense, bool(multimask_output),
                                       sparse_valid=valid)
        return SamOutput(iou_scores=iou, pred_masks=masks, image_embeddings=image_embeddings)

    def _embeddings(self, e) -> np.ndarray:
        c = self.config
        shape = (c.vision.output_channels, c.prompt.image_embedding_size,
                 c.prompt.image_embedding_size)
        if not isinstance(e, np.ndarray):
            raise TypeError(f"sam: image_embeddings must be a float32 numpy array (B, "
                            f"{shape[0]}, {shape[1]}, {shape[2]}), got {type(e).__name__}")
        if e.dtype != np.float32:
            raise TypeError(f"sam: image_embeddings must be float32, got {e.dtype}")
        if e.ndim != 4 or e.shape[1:] != shape or e.shape[0] == 0:
            raise ValueError(f"sam: image_embeddings must be (B, {shape[0]}, {shape[1]}, "
                             f"{shape[2]}) with B >= 1, got shape {e.shape}")
        return e


def _tied_positional(source: Mapping, names: list) -> np.ndarray:
    present = [n for n in (SHARED_PE, PROMPT_PE) if n in names]
    if not present:
        raise ValueError(f"checkpoint: missing tensor {SHARED_PE!r} (the prompt encoder's "
                         "random-Fourier matrix)")
    arrays = [np.asarray(source[n]) for n in present]
    if len(arrays) == 2 and (arrays[0].shape != arrays[1].shape
                             or not np.array_equal(arrays[0], arrays[1])):
        raise ValueError(f"checkpoint: {SHARED_PE!r} and {PROMPT_PE!r} are one tied tensor in "
                         "SAM, but the checkpoint holds two different arrays")
    return arrays[0]


def _official_tensors(source: Mapping) -> dict:
    """The official state dict without the pixel_mean / pixel_std buffers (checked: the
    pipelines normalise with the official constants, so other values are refused)."""
    out = {}
    for name in source.keys():
        if name in ("pixel_mean", "pixel_std"):
            want = PIXEL_MEAN if name == "pixel_mean" else PIXEL_STD
            got = np.asarray(source[name], np.float64).reshape(-1)
            if got.shape != (3,) or not np.allclose(got, want, rtol=0, atol=1e-3):
                raise ValueError(f"checkpoint: {name} is {got.tolist()}, but SAM's pipelines "
                                 f"normalise with the official {list(want)}")
            continue
        out[name] = source[name]
    return out
