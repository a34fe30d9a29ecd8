"""Segment Anything's predictor: one image encoded once, then prompts (points, boxes, a
previous mask) answered in milliseconds by the prompt encoder and mask decoder.

    image (H, W, 3) uint8 RGB
      -> resize the longest side to S (= config.vision.image_size, 1024 for the official
         models): new side = int(side * S / max(H, W) + 0.5), Pillow's antialiased bilinear
         (fastattn.vision.resize, bit-exact for uint8)           -> input_size (h, w)
      -> (x - mean) / std per channel, mean (123.675, 116.28, 103.53), std (58.395, 57.12,
         57.375) on the 0-255 scale (float32, as the reference's Sam.preprocess)
      -> zero-pad bottom / right to S x S (AFTER normalising: the pad is 0, not -mean/std)
      -> model.get_image_embeddings                              -> features (1, C, S/16, S/16)
    prompt coordinates (original pixels) -> * (w / W, h / H)      (the input frame)
      -> model(image_embeddings=features, prompts)               -> low-res logits (P, M, 4g, 4g)
      -> bilinear (align_corners=False) to S x S, crop [:h, :w], bilinear to (H, W)
      -> > 0                                                     -> masks (P, M, H, W) bool

This follows segment-anything's ``SamPredictor`` (predictor.py, utils/transforms.py
ResizeLongestSide, modeling/sam.py preprocess / postprocess_masks). What is added: batched
prompts with variable-length point sets (``predict_batch``, padded with label -10, which the
model masks out so a padded set answers as the set alone), embeddings saved and loaded
across processes, argument checks, and thread safety. docs/segmentation.md is the guide.

Threads: the image state (features, sizes) is one immutable object swapped under a lock by
``set_image`` / ``load_embedding`` / ``reset_image``; each predict reads it once, so its
masks always come from one image at that image's size, whatever other threads set meanwhile.
The model itself is pure, so predicts run concurrently.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import threading

import numpy as np

from ..models.sam.prompt_encoder import ABSENT, LABELS, NOT_A_POINT
from ..ops import interpolate
from ..vision import as_image, resize

PIXEL_MEAN = (123.675, 116.28, 103.53)      # the official Sam.pixel_mean (0-255 RGB)
PIXEL_STD = (58.395, 57.12, 57.375)         # the official Sam.pixel_std
MASK_THRESHOLD = 0.0                        # Sam.mask_threshold: a pixel is in the mask if logit > 0
# Point labels (the prompt encoder's): 1 foreground, 0 background, 2 / 3 box corners (top-left,
# bottom-right), -1 the reference's "not a point", -10 absent (the padding of a batched point set).
POINT_LABELS = LABELS
PAD_LABEL = ABSENT
# Labels whose coordinates are ignored by the model (their positional encoding is zeroed), so
# they are not checked against the image bounds.
_COORDINATE_FREE_LABELS = (ABSENT, NOT_A_POINT)
EMBEDDING_FORMAT = "fastattn.sam_embedding"
EMBEDDING_VERSION = "1"
# Upscaling works on a few prompts at a time so that the float32 S x S intermediate stays
# near this many bytes (the bool masks returned are 1 byte per pixel).
_UPSCALE_CHUNK_BYTES = 64 << 20


# -- the reference's ResizeLongestSide ------------------------------------------------------

def preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) of an H x W image resized so its longest side is ``long_side``: each side
    ``int(side * long_side / max(H, W) + 0.5)`` (ResizeLongestSide.get_preprocess_shape)."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def apply_coords(coords: np.ndarray, original_size, long_side: int) -> np.ndarray:
    """Points (..., 2) as (x, y) in original pixels -> the resized image's frame, float32:
    x * w / W, y * h / H (computed in float64 as the reference, then rounded once)."""
    old_h, old_w = original_size
    new_h, new_w = preprocess_shape(old_h, old_w, long_side)
    out = np.array(coords, dtype=np.float64)
    out[..., 0] *= new_w / old_w
    out[..., 1] *= new_h / old_h
    return out.astype(np.float32)


def apply_boxes(boxes: np.ndarray, original_size, long_side: int) -> np.ndarray:
    """Boxes (..., 4) x1, y1, x2, y2 in original pixels -> the resized frame (two corners)."""
    boxes = np.asarray(boxes)
    return apply_coords(boxes.reshape(*boxes.shape[:-1], 2, 2), original_size,
                        long_side).reshape(boxes.shape)


def prepare_image(image: np.ndarray, image_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """An (H, W, 3) RGB image (uint8, or float on the 0-255 scale) -> (pixel_values
    (1, 3, S, S) float32, input_size (h, w)): resized, normalised, then zero-padded."""
    h, w = preprocess_shape(image.shape[0], image.shape[1], image_size)
    resized = resize(image, (h, w), "bilinear")
    # float32 throughout, as torch computes (uint8 tensor - float32 mean) / float32 std
    x = (resized.astype(np.float32) - np.float32(PIXEL_MEAN)) / np.float32(PIXEL_STD)
    pixel_values = np.zeros((1, 3, image_size, image_size), np.float32)
    pixel_values[0, :, :h, :w] = x.transpose(2, 0, 1)        # H W C -> C H W, pad after
    return pixel_values, (h, w)


def upscale_masks(low_res: np.ndarray, image_size: int, input_size, original_size,
                  return_logits: bool = False) -> np.ndarray:
    """Low-resolution mask logits (..., 4g, 4g) -> (..., H, W) at the original image size:
    bilinear (align_corners=False) to S x S, crop the resized image's [:h, :w], bilinear to
    (H, W) (Sam.postprocess_masks); then ``> 0`` unless ``return_logits``. Leading axes are
    kept; the work runs a few masks at a time to bound the S x S intermediate."""
    low_res = np.asarray(low_res, dtype=np.float32)
    lead, (lh, lw) = low_res.shape[:-2], low_res.shape[-2:]
    flat = low_res.reshape(-1, 1, lh, lw)
    height, width = (int(s) for s in original_size)
    h, w = (int(s) for s in input_size)
    out = np.empty((flat.shape[0], height, width), np.float32 if return_logits else np.bool_)
    step = max(1, _UPSCALE_CHUNK_BYTES // (4 * image_size * image_size))
    for i in range(0, flat.shape[0], step):
        full = interpolate(np.ascontiguousarray(flat[i:i + step]), size=(image_size, image_size),
                           mode="bilinear", align_corners=False)
        logits = interpolate(full[:, :, :h, :w], size=(height, width), mode="bilinear",
                             align_corners=False)[:, 0]
        out[i:i + step] = logits if return_logits else logits > MASK_THRESHOLD
    return out.reshape(*lead, height, width)


# -- argument checks ---------------------------------------------------------------------------

def _numeric(op: str, name: str, value, expected: str) -> np.ndarray:
    """``value`` as a float64 array; TypeError for anything but real numbers (bool refused)."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):     # ragged nested lists
        raise ValueError(f"{op}: {name} must be {expected}, got a ragged "
                         f"{type(value).__name__}") from None
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer)
                                     or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{op}: {name} must be {expected} of real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{op}: {name} must be finite, got {arr.tolist() if arr.size < 9 else arr}")
    return arr


def _labels(op: str, name: str, value, shape) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer)
                                     or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{op}: {name} must hold integers in {POINT_LABELS}, got dtype "
                        f"{arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{op}: {name} has shape {arr.shape}, expected {tuple(shape)} (one "
                         "label per point)")
    bad = ~np.isin(arr, POINT_LABELS)
    if bad.any():
        raise ValueError(f"{op}: {name} must be in {POINT_LABELS} (1 foreground, 0 background, "
                         f"2 / 3 box corners, -1 not a point, -10 absent), got "
                         f"{np.unique(arr[bad]).tolist()}")
    return arr.astype(np.int64)


def _check_inside(op: str, name: str, xy: np.ndarray, original_size, where=None) -> None:
    """Refuses coordinates outside [0, W] x [0, H] (the image's pixel frame, edges included);
    ``where`` selects the points that count."""
    height, width = original_size
    x, y = xy[..., 0], xy[..., 1]
    outside = (x < 0) | (x > width) | (y < 0) | (y > height)
    if where is not None:
        outside &= where
    if outside.any():
        first = tuple(float(c) for c in xy[tuple(np.argwhere(outside)[0])])
        raise ValueError(f"{op}: {name} must lie inside the image, 0 <= x <= {width} and "
                         f"0 <= y <= {height} (original pixels), got {int(outside.sum())} "
                         f"outside, the first {first} (points are refused, not clipped)")


def _points(op, coords, labels, original_size, batched: bool):
    """(coords (P, N, 2) float64, labels (P, N) int64) from one set (N, 2) / (N,) or, batched,
    (P, N, 2) / (P, N) arrays or lists of P sets (N_i, 2) / (N_i,) padded with label -10."""
    if (coords is None) != (labels is None):
        raise ValueError(f"{op}: point_coords and point_labels go together, got "
                         f"point_coords={'None' if coords is None else 'given'} and "
                         f"point_labels={'None' if labels is None else 'given'}")
    if coords is None:
        return None, None
    if batched and isinstance(coords, (list, tuple)):
        # a list of P sets (N_i, 2), lengths free; a rectangular nested list takes this path
        # too and gives the same arrays as np.asarray would
        sized = (isinstance(labels, (list, tuple))
                 or (isinstance(labels, np.ndarray) and labels.ndim >= 1))
        if not sized or len(labels) != len(coords):
            raise ValueError(f"{op}: point_coords is a list of {len(coords)} point sets, so "
                             f"point_labels must be a list (or array) of as many label sets, "
                             f"got {type(labels).__name__}"
                             f"{f' of length {len(labels)}' if sized else ''}")
        sets = [_points(op, c, l, original_size, batched=False) for c, l in zip(coords, labels)]
        if not sets:
            raise ValueError(f"{op}: point_coords is an empty list (no prompt)")
        n = max(c.shape[1] for c, _ in sets)
        xy = np.zeros((len(sets), n, 2))
        lab = np.full((len(sets), n), PAD_LABEL, np.int64)
        for i, (c, l) in enumerate(sets):
            xy[i, :c.shape[1]], lab[i, :c.shape[1]] = c[0], l[0]
        return xy, lab
    want = "(P, N, 2)" if batched else "(N, 2)"
    xy = _numeric(op, "point_coords", coords, f"an array {want}")
    if xy.ndim != (3 if batched else 2) or xy.shape[-1] != 2 or xy.shape[-2] < 1:
        raise ValueError(f"{op}: point_coords must have shape {want} (x, y pairs, at least one"
                         f"{' per set' if batched else ''}), got shape {xy.shape}")
    lab = _labels(op, "point_labels", labels, xy.shape[:-1])
    _check_inside(op, "point_coords", xy, original_size,
                  where=~np.isin(lab, _COORDINATE_FREE_LABELS))
    if not batched:
        xy, lab = xy[None], lab[None]
    if xy.shape[0] < 1:
        raise ValueError(f"{op}: point_coords holds no point set (shape {xy.shape})")
    return xy, lab


def _boxes(op, box, original_size, batched: bool):
    if box is None:
        return None
    name = "boxes" if batched else "box"
    want = "(P, 4)" if batched else "(4,) or (1, 4)"
    b = _numeric(op, name, box, f"an array {want}")
    if not batched and b.shape == (4,):
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4 or b.shape[0] < 1 or (not batched and b.shape[0] != 1):
        raise ValueError(f"{op}: {name} must have shape {want} (x1, y1, x2, y2), got shape "
                         f"{np.shape(box)}{' (several boxes: predict_batch)' if not batched else ''}")
    flipped = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if flipped.any():
        i = int(np.argmax(flipped))
        raise ValueError(f"{op}: {name} must have x1 <= x2 and y1 <= y2 (x1, y1, x2, y2), got "
                         f"{b[i].tolist()}{f' at index {i}' if batched else ''}")
    _check_inside(op, name, b.reshape(-1, 2, 2), original_size)
    return b


def _mask_input(op, mask_input, size: int, batched: bool):
    if mask_input is None:
        return None
    want = ("(P, 1, " if batched else "(1, ") + f"{size}, {size})"
    m = _numeric(op, "mask_input", mask_input, f"an array {want} of logits")
    if (m.ndim != (4 if batched else 3) or m.shape[-3:] != (1, size, size)
            or (batched and m.shape[0] < 1)):
        raise ValueError(f"{op}: mask_input must have shape {want} (low-resolution logits, "
                         f"e.g. a previous predict's low_res_masks[i:i+1]), got shape {m.shape}")
    return (m if batched else m[None]).astype(np.float32)


def _flag(op: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _check_image(op: str, image) -> np.ndarray:
    image = as_image(image)
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"{op}: image must be uint8 or floating point (0-255 scale), got "
                        f"{image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{op}: image must have shape (H, W, 3) (RGB, channels last), got "
                         f"shape {image.shape}")
    if image.dtype != np.uint8:
        if not np.isfinite(image).all():
            raise ValueError(f"{op}: image must be finite")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"{op}: a float image must be on the 0-255 scale, got values in "
                             f"[{lo:g}, {hi:g}]")
    return image


# -- the predictor -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _ImageState:
    features: np.ndarray            # (1, C, g, g) float32, read-only
    original_size: tuple[int, int]  # (H, W)
    input_size: tuple[int, int]     # (h, w) after the resize, before the pad
    image_digest: str               # image_digest(the RGB image): which image this is


class SamPredictor:
    """A SAM model (``fastattn.load(sam_dir)``) with one image's embedding cached.

        predictor = SamPredictor(fastattn.load("sam-vit-base"))
        predictor.set_image(image)                         # (H, W, 3) uint8 RGB; encoder once
        masks, scores, low_res = predictor.predict(point_coords=[[500, 375]], point_labels=[1])
        masks, scores, low_res = predictor.predict_batch(boxes=[[75, 275, 1725, 850],
                                                                [425, 600, 700, 875]])
    """

    def __init__(self, model):
        config = getattr(model, "config", None)
        if config is None or getattr(config, "model_type", None) != "sam":
            raise TypeError(f"SamPredictor: model must be a SAM model (fastattn.load of a "
                            f"model_type 'sam' checkpoint), got {type(model).__name__} with "
                            f"model_type {getattr(config, 'model_type', None)!r}")
        self.model = model
        self.image_size = int(config.vision.image_size)
        self.mask_input_size = 4 * int(config.prompt.image_embedding_size)
        self._lock = threading.Lock()
        self._state: _ImageState | None = None
        self._fingerprint: str | None = None

    # -- image state ---------------------------------------------------------------------------
    def set_image(self, image, image_format: str = "RGB") -> None:
        """Encodes ``image`` (an (H, W, 3) array, uint8 or float on the 0-255 scale; a path or
        PIL image is read as RGB) once; predicts then answer for it. ``image_format``: 'RGB'
        or 'BGR' (OpenCV's order; the channels are reversed)."""
        op = "SamPredictor.set_image"
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"{op}: image_format must be 'RGB' or 'BGR', got {image_format!r}")
        image = _check_image(op, image)
        if image_format == "BGR":
            image = image[..., ::-1]
        pixel_values, input_size = prepare_image(np.ascontiguousarray(image), self.image_size)
        features = np.asarray(self.model.get_image_embeddings(pixel_values), np.float32)
        self._swap(_ImageState(_frozen(features), (int(image.shape[0]), int(image.shape[1])),
                               input_size, image_digest(image)))

    def reset_image(self) -> None:
        """Forgets the image (predicts refuse until the next set_image / load_embedding)."""
        self._swap(None)

    def _swap(self, state: _ImageState | None) -> None:
        with self._lock:
            self._state = state

    def _current(self, op: str) -> _ImageState:
        with self._lock:
            state = self._state
        if state is None:
            raise RuntimeError(f"{op}: no image is set; call set_image(image) (or "
                               "load_embedding(path)) before predicting")
        return state

    @property
    def is_image_set(self) -> bool:
        return self._state is not None

    @property
    def features(self) -> np.ndarray:
        """The image embedding (1, C, g, g) float32 (read-only), g = S / patch size."""
        return self._current("SamPredictor.features").features

    def get_image_embedding(self) -> np.ndarray:
        """``features`` (the reference's name for it)."""
        return self.features

    @property
    def image_digest(self) -> str | None:
        """``image_digest`` of the current image (RGB), None without one."""
        state = self._state
        return None if state is None else state.image_digest

    @property
    def original_size(self) -> tuple[int, int] | None:
        state = self._state
        return None if state is None else state.original_size

    @property
    def input_size(self) -> tuple[int, int] | None:
        state = self._state
        return None if state is None else state.input_size

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output: bool = True, return_logits: bool = False):
        """One prompt: points (N, 2) as (x, y) in ORIGINAL image pixels with labels (N,)
        (1 foreground, 0 background; see POINT_LABELS), a box (4,) x1, y1, x2, y2 in original
        pixels, a mask_input (1, 4g, 4g) of logits (a previous call's low_res_masks[i:i+1]),
        any of them. Returns (masks (M, H, W) bool — float32 logits with return_logits —,
        iou_predictions (M,), low_res_masks (M, 4g, 4g) logits); M = 3 with
        multimask_output, else 1. Points and boxes outside [0, W] x [0, H] are refused."""
        masks, iou, low_res = self._predict("SamPredictor.predict", point_coords, point_labels,
                                            box, mask_input, multimask_output, return_logits,
                                            batched=False)
        return masks[0], iou[0], low_res[0]

    def predict_batch(self, point_coords=None, point_labels=None, boxes=None, mask_input=None,
                      multimask_output: bool = True, return_logits: bool = False):
        """P prompts against the one image, in one decoder call: ``point_coords`` (P, N, 2)
        with ``point_labels`` (P, N), or lists of P sets (N_i, 2) and (N_i,) of different
        lengths (padded with label -10, which the model ignores), and / or ``boxes`` (P, 4),
        and / or ``mask_input`` (P, 1, 4g, 4g); where several are given they pair up prompt by
        prompt (same P). Returns (masks (P, M, H, W), iou_predictions (P, M), low_res_masks
        (P, M, 4g, 4g)); prompt i's rows equal ``predict`` with prompt i alone (up to float32
        rounding)."""
        return self._predict("SamPredictor.predict_batch", point_coords, point_labels, boxes,
                             mask_input, multimask_output, return_logits, batched=True)

    def predict_low_res(self, point_coords=None, point_labels=None, boxes=None,
                        mask_input=None, multimask_output: bool = True):
        """``predict_batch`` without the upscaling: (low_res_masks (P, M, 4g, 4g) logits,
        iou_predictions (P, M), state) — what a caller filters before upscaling the few masks
        it keeps with ``upscale_masks(low_res, *state)``; ``state`` is (image_size,
        input_size, original_size) of the image these logits belong to."""
        op = "SamPredictor.predict_low_res"
        state = self._current(op)
        low_res, iou = self._decode(op, state, point_coords, point_labels, boxes, mask_input,
                                    multimask_output, batched=True)
        return low_res, iou, (self.image_size, state.input_size, state.original_size)

    def _predict(self, op, point_coords, point_labels, box, mask_input, multimask_output,
                 return_logits, batched):
        return_logits = _flag(op, "return_logits", return_logits)
        state = self._current(op)
        low_res, iou = self._decode(op, state, point_coords, point_labels, box, mask_input,
                                    multimask_output, batched)
        masks = upscale_masks(low_res, self.image_size, state.input_size, state.original_size,
                              return_logits)
        return masks, iou, low_res

    def _decode(self, op, state, point_coords, point_labels, box, mask_input, multimask_output,
                batched):
        """The prompts checked and moved to the input frame, then the prompt encoder and mask
        decoder on the cached features: (low_res (P, M, 4g, 4g), iou (P, M)) float32."""
        multimask_output = _flag(op, "multimask_output", multimask_output)
        xy, labels = _points(op, point_coords, point_labels, state.original_size, batched)
        boxes = _boxes(op, box, state.original_size, batched)
        masks = _mask_input(op, mask_input, self.mask_input_size, batched)
        counts = {name: len(a) for name, a in
                  (("point sets", xy), ("boxes", boxes), ("mask inputs", masks)) if a is not None}
        if len(set(counts.values())) > 1:
            raise ValueError(f"{op}: the prompts pair up one to one, so the counts must agree, "
                             f"got {', '.join(f'{n} {k}' for k, n in counts.items())}")
        out = self.model(
            image_embeddings=state.features,
            input_points=None if xy is None else apply_coords(xy, state.original_size,
                                                              self.image_size),
            input_labels=labels,
            input_boxes=None if boxes is None else apply_boxes(boxes, state.original_size,
                                                               self.image_size),
            input_masks=masks, multimask_output=multimask_output)
        return (np.asarray(out.pred_masks, np.float32), np.asarray(out.iou_scores, np.float32))

    def upscale_masks(self, low_res: np.ndarray, return_logits: bool = False) -> np.ndarray:
        """Low-resolution logits (..., 4g, 4g) of the current image -> masks (..., H, W)
        (``upscale_masks`` of this module with this image's sizes)."""
        state = self._current("SamPredictor.upscale_masks")
        return upscale_masks(low_res, self.image_size, state.input_size, state.original_size,
                             _flag("SamPredictor.upscale_masks", "return_logits", return_logits))

    # -- embeddings on disk ----------------------------------------------------------------------
    def model_fingerprint(self) -> str:
        """A SHA-256 (hex) of the image encoder's config and a sample of its weights: an
        embedding saved with one model is refused by another (see ``_encoder_fingerprint``)."""
        if self._fingerprint is None:
            self._fingerprint = _encoder_fingerprint(self.model)
        return self._fingerprint

    def save_embedding(self, path) -> None:
        """Writes the current image's embedding to ``path`` (safetensors: the features, the
        original and input sizes, the model fingerprint), so another process can
        ``load_embedding`` it instead of running the encoder again."""
        from ..io import save_safetensors
        state = self._current("SamPredictor.save_embedding")
        save_safetensors(path, {"features": np.ascontiguousarray(state.features)}, metadata={
            "format": EMBEDDING_FORMAT, "version": EMBEDDING_VERSION,
            "original_size": _size_text(state.original_size),
            "input_size": _size_text(state.input_size), "image_size": str(self.image_size),
            "model_fingerprint": self.model_fingerprint(), "image_digest": state.image_digest})

    def load_embedding(self, path, image=None) -> None:
        """Makes the embedding saved by ``save_embedding`` the current image. ValueError when
        the file is not such an embedding, or was made by another model (the fingerprints
        differ) or at another input size; with ``image`` (the RGB array it should belong to)
        also when it is the embedding of another image (``image_digest``)."""
        from ..io import SafetensorsFile
        op = "SamPredictor.load_embedding"
        path = os.fspath(path)
        expected_digest = None if image is None else image_digest(_check_image(op, image))
        with SafetensorsFile(path, mmap=False) as f:
            meta = f.metadata or {}
            if meta.get("format") != EMBEDDING_FORMAT or "features" not in f:
                raise ValueError(f"{op}: {path!r} is not a SAM embedding saved by "
                                 f"SamPredictor.save_embedding (metadata format "
                                 f"{meta.get('format')!r})")
            if meta.get("version") != EMBEDDING_VERSION:
                raise ValueError(f"{op}: {path!r} has embedding format version "
                                 f"{meta.get('version')!r}, this fastattn reads "
                                 f"{EMBEDDING_VERSION!r}")
            if meta.get("model_fingerprint") != self.model_fingerprint():
                raise ValueError(f"{op}: {path!r} was computed by another model (fingerprint "
                                 f"{str(meta.get('model_fingerprint'))[:16]}..., this model's "
                                 f"is {self.model_fingerprint()[:16]}...); run set_image with "
                                 "this model instead")
            if expected_digest is not None and meta.get("image_digest") != expected_digest:
                raise ValueError(f"{op}: {path!r} holds the embedding of another image (image "
                                 f"digest {str(meta.get('image_digest'))[:16]}..., the image "
                                 f"given has {expected_digest[:16]}...)")
            features = np.array(f["features"], np.float32)
        original_size = _parse_size(op, path, "original_size", meta.get("original_size"))
        input_size = _parse_size(op, path, "input_size", meta.get("input_size"))
        expected = preprocess_shape(*original_size, self.image_size)
        if meta.get("image_size") != str(self.image_size) or input_size != expected:
            raise ValueError(f"{op}: {path!r} holds input_size {input_size} at image_size "
                             f"{meta.get('image_size')}; this model resizes "
                             f"{original_size} to {expected} at {self.image_size}")
        g = self.mask_input_size // 4
        if features.ndim != 4 or features.shape[0] != 1 or features.shape[2:] != (g, g):
            raise ValueError(f"{op}: {path!r}: features has shape {features.shape}, expected "
                             f"(1, C, {g}, {g})")
        self._swap(_ImageState(_frozen(features), original_size, input_size,
                               str(meta.get("image_digest", ""))))


def image_digest(image: np.ndarray) -> str:
    """SHA-256 (hex) of an image array's shape, dtype and pixels: names the image an embedding
    belongs to (the same pixels give the same digest in any process)."""
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{image.shape}{image.dtype.str}".encode())
    digest.update(memoryview(image).cast("B"))
    return digest.hexdigest()


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, np.float32)
    a.flags.writeable = False
    return a


def _size_text(size) -> str:
    return f"{int(size[0])},{int(size[1])}"


def _parse_size(op, path, name, text) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"{op}: {path!r}: metadata {name} must be 'height,width', got "
                         f"{text!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{op}: {path!r}: metadata {name} must be positive, got {text!r}")
    return h, w


# Arrays sampled per weight tensor for the fingerprint: enough that two checkpoints (trained
# or random) never agree, few enough that a memory-mapped vit_h is not read from disk.
_FINGERPRINT_SAMPLES = 256


def _encoder_fingerprint(model) -> str:
    """SHA-256 over the vision config's repr and, for every public NumPy array reachable from
    ``model.image_encoder``'s attributes (in attribute-path order): its path, shape, dtype
    and 256 evenly spaced elements. Packed matmul operands (private attributes, laid out per
    ISA) are skipped; the conv, norm, position and bias arrays remain, and they differ
    between any two checkpoints."""
    digest = hashlib.sha256(repr(model.config.vision).encode())
    for path, a in _public_arrays(model.image_encoder, "image_encoder", set()):
        flat = a.reshape(-1)
        sample = np.ascontiguousarray(flat[::max(1, flat.size // _FINGERPRINT_SAMPLES)])
        digest.update(f"{path}{a.shape}{a.dtype}".encode())
        digest.update(sample.tobytes())
    return digest.hexdigest()


def _public_arrays(obj, path: str, seen: set):
    """(path, array) for the arrays under ``obj``: fastattn objects' public attributes,
    lists, tuples and dicts, depth first in sorted attribute order."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            yield path, obj
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _public_arrays(item, f"{path}[{i}]", seen)
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            yield from _public_arrays(obj[key], f"{path}[{key!r}]", seen)
    elif type(obj).__module__.startswith("fastattn.") and hasattr(obj, "__dict__"):
        for key in sorted(vars(obj)):
            if not key.startswith("_"):
                yield from _public_arrays(vars(obj)[key], f"{path}.{key}", seen)
