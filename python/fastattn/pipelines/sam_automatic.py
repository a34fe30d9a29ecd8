"""Segment Anything's automatic mask generator: masks for everything in an image, prompted by
a regular grid of points.

    for each crop (layer 0: the whole image; layer i: 2^i x 2^i overlapping crops):
        encoder once on the crop                                 (SamPredictor.set_image)
        for each batch of ``points_per_batch`` grid points (one foreground point per prompt):
            decoder -> 3 masks per point: low-res logits (P, 3, 4g, 4g), predicted IoU (P, 3)
            keep  predicted IoU > pred_iou_thresh
            estimate stability = |logits > +offset| / |logits > -offset| on the LOW-RESOLUTION
                  logits; drop the masks below stability_score_thresh - prefilter_margin
            upscale the rest to the crop's size (float32 logits, a few at a time)
            keep  stability, counted on the upsampled logits, >= stability_score_thresh
            > 0 -> binary masks, their boxes
            drop  masks whose box touches a crop side (within 20 px) that is not an image side
            uncropped masks -> uncompressed RLE
        box NMS within the crop (scores: predicted IoU, threshold box_nms_thresh)
    box NMS across crops (scores: 1 / crop area, smaller crops preferred; crop_nms_thresh)
    optional: fill holes / remove islands below min_mask_region_area, NMS again
    -> records {segmentation, area, bbox (XYWH), predicted_iou, point_coords,
                stability_score, crop_box (XYWH)}

This is segment-anything's ``SamAutomaticMaskGenerator`` (automatic_mask_generator.py,
utils/amg.py) with one change of where work happens. The reference upsamples every mask that
passes the IoU filter to the image size (S x S, crop, then the original size: 2 x 1M pixels
per mask for a 1024 image, 3 masks per grid point) and only then scores its stability. Here
the score is first estimated on the decoder's 4g x 4g logits (256 x 256 for the official
models, 16x fewer pixels), and only the masks within ``prefilter_margin`` of the threshold or
above are upsampled; their scores, masks, boxes, NMS and RLE are then exactly the
reference's. What can differ: a mask whose low-resolution estimate is more than
``prefilter_margin`` below its full-resolution score is dropped where the reference keeps it
(docs/automatic_masks.md measures how often). ``prefilter_margin=None`` upsamples every mask,
as the reference.

Threads: a generator runs one ``generate`` at a time (a lock), since each crop replaces the
predictor's image.
"""
from __future__ import annotations

import numbers
import threading

import numpy as np

from .. import _validate as v
from . import mask_utils as mu
from .sam_predictor import MASK_THRESHOLD, SamPredictor, _check_image, upscale_masks

OUTPUT_MODES = ("binary_mask", "uncompressed_rle")
# Masks upsampled at a time: the float32 logits of one step stay near 64 MiB.
_UPSCALE_CHUNK_PIXELS = 16 << 20
_OP = "SamAutomaticMaskGenerator"


def _number(name: str, value, lo: float, hi: float | None = None) -> float:
    """A real number (not a bool) in [lo, hi] (hi None: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_OP}: {name} must be a number, got {type(value).__name__}")
    x = float(value)
    if not np.isfinite(x) or x < lo or (hi is not None and x > hi):
        span = f"in [{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
        raise ValueError(f"{_OP}: {name} must be finite and {span}, got {value!r}")
    return x


def _grids(point_grids, n_layers: int) -> list[np.ndarray]:
    if not isinstance(point_grids, (list, tuple)):
        raise TypeError(f"{_OP}: point_grids must be a list of (N, 2) arrays (one per crop "
                        f"layer), got {type(point_grids).__name__}")
    if len(point_grids) != n_layers + 1:
        raise ValueError(f"{_OP}: point_grids must hold one grid per crop layer, "
                         f"crop_n_layers + 1 = {n_layers + 1}, got {len(point_grids)}")
    out = []
    for i, g in enumerate(point_grids):
        g = np.asarray(g)
        if not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.integer)):
            raise TypeError(f"{_OP}: point_grids[{i}] must hold real numbers, got dtype "
                            f"{g.dtype}")
        g = g.astype(np.float64)
        if g.ndim != 2 or g.shape[1] != 2 or g.shape[0] < 1:
            raise ValueError(f"{_OP}: point_grids[{i}] must have shape (N, 2) with N >= 1 "
                             f"((x, y) in [0, 1]), got shape {g.shape}")
        if not (np.isfinite(g).all() and (g >= 0).all() and (g <= 1).all()):
            raise ValueError(f"{_OP}: point_grids[{i}] must lie in [0, 1] (coordinates "
                             f"normalised by the crop's width and height)")
        out.append(g)
    return out


class SamAutomaticMaskGenerator:
    """Masks for a whole image from a SAM model (``fastattn.load(sam_dir)``).

        generator = SamAutomaticMaskGenerator(fastattn.load("sam-vit-base"))
        records = generator.generate(image)        # (H, W, 3) uint8 RGB
        records[0]["segmentation"]                 # (H, W) bool; see output_mode

    Parameters as the reference's (defaults chosen there for ViT-H): ``points_per_side`` (the
    grid is n x n; or ``point_grids``, one (N, 2) array in [0, 1] per crop layer, exactly one
    of the two), ``points_per_batch`` (prompts per decoder call), ``pred_iou_thresh``,
    ``stability_score_thresh``, ``stability_score_offset``, ``box_nms_thresh``,
    ``crop_n_layers``, ``crop_nms_thresh``, ``crop_overlap_ratio``,
    ``crop_n_points_downscale_factor``, ``min_mask_region_area`` (0: off; no OpenCV needed),
    ``output_mode`` ("binary_mask": (H, W) bool arrays; "uncompressed_rle": COCO's
    {"size", "counts"}; the reference's "coco_rle" needs pycocotools: convert an uncompressed
    RLE with ``pycocotools.mask.frPyObjects``). ``prefilter_margin`` (in [0, 1], default 0.1,
    or None): masks whose stability estimated on the low-resolution logits is below
    ``stability_score_thresh - prefilter_margin`` are dropped before upsampling; None
    upsamples every mask that passes the IoU filter (the reference's procedure, slower)."""

    def __init__(self, model, points_per_side: int | None = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, box_nms_thresh: float = 0.7,
                 crop_n_layers: int = 0, crop_nms_thresh: float = 0.7,
                 crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 1, point_grids=None,
                 min_mask_region_area: int = 0, output_mode: str = "binary_mask",
                 prefilter_margin: float | None = 0.1):
        self.crop_n_layers = v.integer(_OP, "crop_n_layers", crop_n_layers, 0)
        self.crop_n_points_downscale_factor = v.integer(
            _OP, "crop_n_points_downscale_factor", crop_n_points_downscale_factor, 1)
        if (points_per_side is None) == (point_grids is None):
            raise ValueError(f"{_OP}: exactly one of points_per_side and point_grids must be "
                             f"given, got points_per_side={points_per_side!r} and point_grids="
                             f"{'None' if point_grids is None else 'given'}")
        if points_per_side is not None:
            n = v.integer(_OP, "points_per_side", points_per_side, 1)
            last = int(n / self.crop_n_points_downscale_factor ** self.crop_n_layers)
            if last < 1:
                raise ValueError(
                    f"{_OP}: points_per_side={n} leaves no point in crop layer "
                    f"{self.crop_n_layers} (int({n} / {self.crop_n_points_downscale_factor}"
                    f"^{self.crop_n_layers}) = 0); use more points, fewer layers or a smaller "
                    f"crop_n_points_downscale_factor")
            self.point_grids = mu.build_all_layer_point_grids(
                n, self.crop_n_layers, self.crop_n_points_downscale_factor)
        else:
            self.point_grids = _grids(point_grids, self.crop_n_layers)
        self.points_per_batch = v.integer(_OP, "points_per_batch", points_per_batch, 1)
        # Thresholds: IoU predictions and stability are fractions; NMS thresholds are IoUs.
        self.pred_iou_thresh = _number("pred_iou_thresh", pred_iou_thresh, 0.0, 1.0)
        self.stability_score_thresh = _number("stability_score_thresh",
                                              stability_score_thresh, 0.0, 1.0)
        self.stability_score_offset = _number("stability_score_offset",
                                              stability_score_offset, 0.0)
        self.box_nms_thresh = _number("box_nms_thresh", box_nms_thresh, 0.0, 1.0)
        self.crop_nms_thresh = _number("crop_nms_thresh", crop_nms_thresh, 0.0, 1.0)
        self.crop_overlap_ratio = _number("crop_overlap_ratio", crop_overlap_ratio, 0.0, 1.0)
        self.min_mask_region_area = v.integer(_OP, "min_mask_region_area",
                                              min_mask_region_area, 0)
        if output_mode == "coco_rle":
            raise ValueError(f"{_OP}: output_mode 'coco_rle' needs pycocotools, which fastattn "
                             f"does not use; take 'uncompressed_rle' and convert with "
                             f"pycocotools.mask.frPyObjects(rle, h, w)")
        self.output_mode = v.one_of(_OP, "output_mode", output_mode, OUTPUT_MODES)
        self.prefilter_margin = (None if prefilter_margin is None else
                                 _number("prefilter_margin", prefilter_margin, 0.0, 1.0))
        self.predictor = SamPredictor(model)
        self._lock = threading.Lock()

    # -- public entry points -------------------------------------------------------------------
    def generate(self, image) -> list[dict]:
        """Masks of ``image`` ((H, W, 3) RGB, uint8 or float on the 0-255 scale; a path or
        PIL image is read as RGB): a list of records, as the reference's:
        ``segmentation`` ((H, W) bool, or an uncompressed RLE dict), ``area`` (int pixels),
        ``bbox`` ([x, y, w, h], w = x_max - x_min of the mask's pixels), ``predicted_iou``,
        ``point_coords`` ([[x, y]], the prompt, original pixels), ``stability_score``,
        ``crop_box`` ([x, y, w, h]). Order: the NMS order (decreasing predicted IoU for a
        single crop)."""
        image = _check_image(f"{_OP}.generate", image)
        orig_size = (int(image.shape[0]), int(image.shape[1]))
        crop_boxes, layers = mu.generate_crop_boxes(orig_size, self.crop_n_layers,
                                                    self.crop_overlap_ratio)
        with self._lock:
            parts = []
            for crop_box, layer in zip(crop_boxes, layers):
                x0, y0, x1, y1 = crop_box
                self.predictor.set_image(np.ascontiguousarray(image[y0:y1, x0:x1]))
                parts.append(self._crop_masks(crop_box, layer, orig_size))
            self.predictor.reset_image()
        return self._records(self._merge_crops(parts, len(crop_boxes)))

    def generate_from_predictor(self) -> list[dict]:
        """``generate`` for the image ``self.predictor`` holds now (after
        ``generator.predictor.set_image(image)`` or ``.load_embedding(path)``), without running
        the encoder: an embedding computed once serves both clicks and automatic masks. Whole
        image only (crop layers need the pixels): ValueError when crop_n_layers > 0."""
        if self.crop_n_layers:
            raise ValueError(f"{_OP}.generate_from_predictor: crop_n_layers is "
                             f"{self.crop_n_layers}; crops need the image's pixels, use "
                             f"generate(image)")
        with self._lock:
            orig_size = self.predictor.original_size
            if orig_size is None:
                raise RuntimeError(f"{_OP}.generate_from_predictor: the predictor holds no "
                                   f"image; call generator.predictor.set_image(image) or "
                                   f"load_embedding(path) first")
            part = self._crop_masks([0, 0, orig_size[1], orig_size[0]], 0, orig_size)
        return self._records(self._merge_crops([part], 1))

    # -- one crop --------------------------------------------------------------------------------
    def _crop_masks(self, crop_box, layer: int, orig_size) -> dict:
        """The masks of the crop the predictor holds: per batch of points, decode and filter
        (``_batch_masks``), then NMS within the crop; boxes and points in image coordinates."""
        x0, y0, x1, y1 = crop_box
        # grid (x, y) in [0, 1] scaled by the crop's (width, height)
        points = self.point_grids[layer] * np.array([x1 - x0, y1 - y0], dtype=np.float64)
        batches = [self._batch_masks(points[i:i + self.points_per_batch], crop_box, orig_size)
                   for i in range(0, len(points), self.points_per_batch)]
        data = _concat(batches)
        keep = mu.box_nms(data["boxes"], data["iou_preds"], self.box_nms_thresh)
        data = _take(data, keep)
        data["boxes"] = mu.uncrop_boxes(data["boxes"], crop_box)
        data["points"] = mu.uncrop_points(data["points"], crop_box)
        data["crop_boxes"] = np.tile(np.asarray(crop_box, dtype=np.int64), (len(keep), 1))
        return data

    def _batch_masks(self, points: np.ndarray, crop_box, orig_size) -> dict:
        """One decoder call for P points (crop pixels) -> the surviving masks' data: "rles"
        (uncropped to the image), "boxes" (crop frame), "iou_preds", "stability", "points"."""
        p = len(points)
        low_res, iou, (image_size, input_size, crop_size) = self.predictor.predict_low_res(
            points[:, None, :], np.ones((p, 1), dtype=np.int64), multimask_output=True)
        m = low_res.shape[1]
        low_res = low_res.reshape(p * m, *low_res.shape[2:])     # point-major, as the reference
        iou = iou.reshape(p * m)
        pts = np.repeat(points, m, axis=0)
        # thresholds compared in float32, as torch compares a float32 tensor with a Python
        # float (a score of exactly float32(0.95) passes stability_score_thresh=0.95)
        if self.pred_iou_thresh > 0:
            keep = iou > np.float32(self.pred_iou_thresh)
        else:
            keep = np.ones(p * m, dtype=bool)
        low_res, iou, pts = low_res[keep], iou[keep], pts[keep]
        if self.prefilter_margin is not None and self.stability_score_thresh > 0:
            # the low-resolution estimate drops the clearly unstable masks before upsampling
            estimate = self.low_res_stability(low_res, image_size, input_size)
            keep = estimate >= np.float32(self.stability_score_thresh - self.prefilter_margin)
            low_res, iou, pts = low_res[keep], iou[keep], pts[keep]
        masks, stability = self._upscale(low_res, image_size, input_size, crop_size)
        keep = self._stable(stability)
        masks = masks[keep]
        iou, pts, stability = iou[keep], pts[keep], stability[keep]
        boxes = mu.masks_to_boxes(masks)
        orig_h, orig_w = orig_size
        near = mu.is_box_near_crop_edge(boxes, crop_box, [0, 0, orig_w, orig_h])
        masks, boxes = masks[~near], boxes[~near]
        return {"rles": mu.mask_to_rle(mu.uncrop_masks(masks, crop_box, orig_h, orig_w)),
                "boxes": boxes, "iou_preds": iou[~near], "stability": stability[~near],
                "points": pts[~near]}

    def _upscale(self, low_res: np.ndarray, image_size: int, input_size, crop_size):
        """(binary masks (N, h, w), stability scores (N,)) at the crop's size, as the
        reference computes them: logits upsampled (SamPredictor's upscale_masks), scores
        counted on those. A few masks at a time, so the float32 logits stay small."""
        h, w = crop_size
        masks = np.empty((len(low_res), h, w), dtype=bool)
        stability = np.empty(len(low_res), dtype=np.float32)
        step = max(1, _UPSCALE_CHUNK_PIXELS // max(1, h * w))
        for i in range(0, len(low_res), step):
            logits = upscale_masks(low_res[i:i + step], image_size, input_size, crop_size,
                                   return_logits=True)
            stability[i:i + step] = mu.stability_score(logits, MASK_THRESHOLD,
                                                       self.stability_score_offset)
            masks[i:i + step] = logits > MASK_THRESHOLD
        return masks, stability

    def low_res_stability(self, low_res: np.ndarray, image_size: int,
                          input_size) -> np.ndarray:
        """Stability scores (N,) of low-resolution logits (N, 4g, 4g), counted over the
        low-res pixels that cover the resized image (h, w) = input_size inside the
        image_size x image_size input frame (a boundary pixel counts when at least half of it
        lies inside; the rest is padding, which the reference crops away too)."""
        lh, lw = low_res.shape[-2:]
        rows = max(1, int(input_size[0] * lh / image_size + 0.5))
        cols = max(1, int(input_size[1] * lw / image_size + 0.5))
        return mu.stability_score(low_res[:, :rows, :cols], MASK_THRESHOLD,
                                  self.stability_score_offset)

    def _stable(self, stability: np.ndarray) -> np.ndarray:
        if self.stability_score_thresh > 0:
            return stability >= np.float32(self.stability_score_thresh)
        return np.ones(stability.shape, dtype=bool)

    # -- across crops, postprocessing, records ---------------------------------------------------
    def _merge_crops(self, parts: list[dict], n_crops: int) -> dict:
        data = _concat(parts)
        if n_crops > 1 and len(data["rles"]):
            # prefer masks from smaller crops: score 1 / crop area (torchvision's box_area)
            cb = data["crop_boxes"].astype(np.float64)
            scores = 1.0 / ((cb[:, 2] - cb[:, 0]) * (cb[:, 3] - cb[:, 1]))
            data = _take(data, mu.box_nms(data["boxes"], scores, self.crop_nms_thresh))
        if self.min_mask_region_area > 0 and len(data["rles"]):
            data = self._remove_small_regions(data)
        return data

    def _remove_small_regions(self, data: dict) -> dict:
        """Fills holes and removes islands smaller than min_mask_region_area; then NMS (IoU
        threshold max(box_nms_thresh, crop_nms_thresh)) preferring the masks that did not
        change (score 1, changed 0), as the reference's postprocess_small_regions."""
        area = self.min_mask_region_area
        masks, scores = [], []
        for rle in data["rles"]:
            mask, filled = mu.remove_small_regions(mu.rle_to_mask(rle), area, "holes")
            mask, cut = mu.remove_small_regions(mask, area, "islands")
            masks.append(mask)
            scores.append(0.0 if (filled or cut) else 1.0)
        masks = np.stack(masks)
        boxes = mu.masks_to_boxes(masks)
        keep = mu.box_nms(boxes, np.asarray(scores),
                          max(self.box_nms_thresh, self.crop_nms_thresh))
        changed = [int(i) for i in keep if scores[i] == 0.0]
        if changed:
            rles = list(data["rles"])
            for i, rle in zip(changed, mu.mask_to_rle(masks[changed])):
                rles[i] = rle
            data = dict(data, rles=rles, boxes=data["boxes"].copy())
            data["boxes"][changed] = boxes[changed]
        return _take(data, keep)

    def _records(self, data: dict) -> list[dict]:
        records = []
        boxes = mu.box_xyxy_to_xywh(data["boxes"]).tolist()
        crops = mu.box_xyxy_to_xywh(data["crop_boxes"]).tolist()
        for i, rle in enumerate(data["rles"]):
            records.append({
                "segmentation": mu.rle_to_mask(rle) if self.output_mode == "binary_mask"
                else rle,
                "area": mu.area_from_rle(rle),
                "bbox": boxes[i],
                "predicted_iou": float(data["iou_preds"][i]),
                "point_coords": [data["points"][i].tolist()],
                "stability_score": float(data["stability"][i]),
                "crop_box": crops[i],
            })
        return records


# -- the per-mask data: a dict of equally long arrays, and the list of RLEs ---------------------

def _concat(parts: list[dict]) -> dict:
    """One dict from several with the same keys (there is always at least one part: a crop
    has at least one batch of points, an image at least one crop)."""
    return {key: ([r for part in parts for r in part[key]] if key == "rles"
                  else np.concatenate([part[key] for part in parts], axis=0))
            for key in parts[0]}


def _take(data: dict, index) -> dict:
    """The records at ``index`` (an int array, in its order)."""
    index = np.asarray(index, dtype=np.int64)
    return {k: ([val[i] for i in index] if k == "rles" else val[index])
            for k, val in data.items()}
