"""Array helpers of automatic mask generation (pipelines/sam_automatic.py), in NumPy.

The semantics are those of segment-anything's ``utils/amg.py``; the implementations are
vectorised (no Python loop over pixels, and none over masks except where a list of per-mask
records is the output):

- point grids: ``build_point_grid(n)``, ``build_all_layer_point_grids(n, layers, scale)``:
  n x n points at the centres of an n x n tiling of [0, 1]^2, x varying fastest;
- crops: ``generate_crop_boxes(size, layers, overlap_ratio)`` (layer i has 2^i x 2^i
  overlapping crops), ``is_box_near_crop_edge``, ``uncrop_boxes``, ``uncrop_points``,
  ``uncrop_masks``;
- ``stability_score(logits, threshold, offset)`` = |logits > t + o| / |logits > t - o|, the IoU
  of the two thresholded masks (the first is inside the second);
- ``masks_to_boxes`` (N, H, W) bool -> (N, 4) XYXY of the extreme pixel indices (inclusive),
  ``box_xyxy_to_xywh``;
- ``box_iou`` and ``box_nms``: greedy non-maximum suppression, computed as a fixed point of
  whole-matrix steps rather than a loop over boxes (see box_nms);
- uncompressed RLE (COCO's column-major run lengths): ``mask_to_rle``, ``rle_to_mask``,
  ``area_from_rle``;
- ``connected_components`` (4- or 8-connectivity, by runs and union-find) and
  ``remove_small_regions`` (holes / islands below an area), which replace OpenCV's
  ``connectedComponentsWithStats``.

Boxes follow torchvision's convention, as the reference does: box area (x2 - x1)(y2 - y1), with
x2 / y2 the last pixel's index (so a one-pixel-wide mask has area 0 and IoU 0 with anything).
"""
from __future__ import annotations

import math
from itertools import product

import numpy as np

# ---- point grids and crops -------------------------------------------------------------

def build_point_grid(n_per_side: int) -> np.ndarray:
    """(n^2, 2) float64 (x, y) in [0, 1]: the centres (i + 0.5) / n of an n x n tiling, x
    varying fastest (row-major over y, x)."""
    side = (np.arange(n_per_side, dtype=np.float64) + 0.5) / n_per_side
    xs, ys = np.meshgrid(side, side)
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def build_all_layer_point_grids(n_per_side: int, n_layers: int,
                                scale_per_layer: int) -> list[np.ndarray]:
    """One grid per crop layer 0..n_layers: layer i has int(n_per_side / scale^i) points per
    side."""
    return [build_point_grid(int(n_per_side / scale_per_layer ** i))
            for i in range(n_layers + 1)]


def generate_crop_boxes(im_size: tuple[int, int], n_layers: int,
                        overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """(crop boxes [x0, y0, x1, y1] (x1, y1 exclusive), their layer indices). Layer 0 is the
    whole image; layer i >= 1 has n = 2^i crops per side that overlap by
    ``o = int(overlap_ratio * min(H, W) * 2 / n)`` pixels, each ``ceil((o (n - 1) + L) / n)``
    long (L the image side), starting at ``int((len - o) k)``, clipped to the image; x is the
    outer loop, as the reference's ``product(x0s, y0s)``."""
    im_h, im_w = im_size
    boxes, layers = [[0, 0, im_w, im_h]], [0]
    short = min(im_h, im_w)
    for i in range(1, n_layers + 1):
        n = 2 ** i
        overlap = int(overlap_ratio * short * (2 / n))
        crop_w = math.ceil((overlap * (n - 1) + im_w) / n)
        crop_h = math.ceil((overlap * (n - 1) + im_h) / n)
        x0s = [int((crop_w - overlap) * k) for k in range(n)]
        y0s = [int((crop_h - overlap) * k) for k in range(n)]
        for x0, y0 in product(x0s, y0s):
            boxes.append([x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)])
            layers.append(i)
    return boxes, layers


def uncrop_boxes(boxes: np.ndarray, crop_box) -> np.ndarray:
    """(N, 4) XYXY in a crop's frame -> the image's (add the crop's x0, y0)."""
    x0, y0 = crop_box[0], crop_box[1]
    return boxes + np.array([x0, y0, x0, y0], dtype=boxes.dtype)


def uncrop_points(points: np.ndarray, crop_box) -> np.ndarray:
    """(N, 2) (x, y) in a crop's frame -> the image's."""
    return points + np.array([crop_box[0], crop_box[1]], dtype=points.dtype)


def uncrop_masks(masks: np.ndarray, crop_box, orig_h: int, orig_w: int) -> np.ndarray:
    """(N, h, w) masks of a crop -> (N, orig_h, orig_w), zero outside the crop."""
    x0, y0, x1, y1 = crop_box
    if (x0, y0, x1, y1) == (0, 0, orig_w, orig_h):
        return masks
    out = np.zeros(masks.shape[:-2] + (orig_h, orig_w), dtype=masks.dtype)
    out[..., y0:y1, x0:x1] = masks
    return out


def is_box_near_crop_edge(boxes: np.ndarray, crop_box, orig_box,
                          atol: float = 20.0) -> np.ndarray:
    """(N,) bool: a box (in the crop's frame) has a side within ``atol`` pixels of a side of the
    crop that is not also (within atol) a side of the image — its mask is likely cut by the
    crop. Sides are compared coordinate by coordinate (x0 with x0, ..., y1 with y1)."""
    b = uncrop_boxes(np.asarray(boxes, dtype=np.float64), crop_box)
    near_crop = np.abs(b - np.asarray(crop_box, dtype=np.float64)) <= atol
    near_image = np.abs(b - np.asarray(orig_box, dtype=np.float64)) <= atol
    return np.any(near_crop & ~near_image, axis=1)


# ---- scores and boxes -------------------------------------------------------------------

def stability_score(logits: np.ndarray, threshold: float, offset: float) -> np.ndarray:
    """(..., H, W) mask logits -> (...) float32 |logits > t + o| / |logits > t - o|.

    The high-threshold mask lies inside the low-threshold one, so the ratio is their IoU: 1 when
    no logit lies in (t - o, t + o]. Where the low-threshold mask is empty (0 / 0, NaN in the
    reference) the score is 0, which fails every positive threshold as NaN does."""
    inter = np.count_nonzero(logits > (threshold + offset), axis=(-2, -1))
    union = np.count_nonzero(logits > (threshold - offset), axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return score.astype(np.float32)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N, 4) int64 [x_min, y_min, x_max, y_max] of the True pixels
    (inclusive indices); [0, 0, 0, 0] for an empty mask."""
    masks = np.asarray(masks, dtype=bool)
    h, w = masks.shape[1:]
    rows = masks.any(axis=2)                                  # (N, H): row holds a pixel
    cols = masks.any(axis=1)                                  # (N, W)
    nonempty = rows.any(axis=1)
    # first True = argmax; last True = size - 1 - argmax of the reversed row
    y0 = rows.argmax(axis=1)
    y1 = h - 1 - rows[:, ::-1].argmax(axis=1)
    x0 = cols.argmax(axis=1)
    x1 = w - 1 - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)
    boxes[~nonempty] = 0
    return boxes


def box_xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) [x0, y0, x1, y1] -> [x0, y0, x1 - x0, y1 - y0]."""
    boxes = np.array(boxes, copy=True)
    boxes[..., 2] -= boxes[..., 0]
    boxes[..., 3] -= boxes[..., 1]
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) XYXY -> (N, M) float32 IoU, area (x2 - x1)(y2 - y1) (torchvision's
    convention); 0 where the union is 0 (two degenerate boxes)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return iou.astype(np.float32)


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first (ties:
    lower index first). Visiting boxes by decreasing score, a box is kept unless its IoU with
    an already kept box is > iou_threshold (torchvision.ops.nms).

    Vectorised as a fixed point: with boxes sorted and S[i, j] = (i < j and IoU > t), the
    greedy result is the unique K with K[j] = not any_i (K[i] and S[i, j]). Iterating
    K <- not (S^T K) from K = all converges to it: after step r the first r boxes' decisions
    are final (box j's decision depends only on boxes before it), and in practice it stops
    after as many steps as the longest chain of suppressions (a handful), each one a
    boolean matrix-vector product — instead of one Python step per box."""
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    n = boxes.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    iou = box_iou(boxes[order], boxes[order])
    s = np.triu(iou > iou_threshold, k=1)
    keep = np.ones(n, dtype=bool)
    for _ in range(n):
        new = ~(keep @ s)          # box j suppressed by some kept i < j
        if np.array_equal(new, keep):
            break
        keep = new
    return order[keep]


# ---- uncompressed RLE -------------------------------------------------------------------

def _fortran_changes(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each mask changes along its column-major pixel order: (mask index, position p)
    with pixel p != pixel p - 1 (p = x H + y), sorted by mask then position.

    Two kinds of neighbours in that order: (y - 1, x) -> (y, x) inside a column, and
    (H - 1, x - 1) -> (0, x) across columns. The first kind is found row against row in the
    C-order array (no transposed copy), 8 columns at a time: each row is read as uint64 words,
    ``row[y] ^ row[y - 1]`` is nonzero only in the few words holding an edge, and only those
    words are split back into their 8 bytes."""
    n, h, w = masks.shape
    wp = -(-w // 8) * 8
    if wp == w and masks.flags.c_contiguous:
        raw = masks.view(np.uint8)
    else:                                       # pad the rows to whole words (zeros: no edge)
        raw = np.zeros((n, h, wp), np.uint8)
        raw[:, :, :w] = masks
    words = raw.view(np.uint64)                 # (n, h, wp / 8)
    changed = words[:, 1:, :] ^ words[:, :-1, :]
    i, y, k = np.nonzero(changed)
    # a changed word's bytes, in memory order: byte j is column 8 k + j
    byte_rows, j = np.nonzero(changed[i, y, k].view(np.uint8).reshape(-1, 8))
    x = k[byte_rows] * 8 + j
    in_column = (i[byte_rows], x * h + y[byte_rows] + 1)
    ci, cx = np.nonzero(masks[:, 0, 1:] != masks[:, h - 1, :-1])
    across = (ci, (cx + 1) * h)
    key = np.concatenate([in_column[0] * (h * w) + in_column[1],
                          across[0] * (h * w) + across[1]])
    key.sort()
    return key // (h * w), key % (h * w)


def mask_to_rle(masks: np.ndarray) -> list[dict]:
    """(N, H, W) bool -> N uncompressed RLEs {"size": [H, W], "counts": [...]}, COCO's format:
    run lengths over the column-major (Fortran-order) pixels, starting with a run of zeros
    (length 0 when the first pixel is set). Each mask's run boundaries are 0, its change
    positions (``_fortran_changes``, all masks at once) and H W; the counts their
    differences."""
    masks = np.asarray(masks, dtype=bool)
    n, h, w = masks.shape
    if h * w == 0:
        return [{"size": [h, w], "counts": [0]} for _ in range(n)]
    mask_id, pos = _fortran_changes(masks)
    splits = np.searchsorted(mask_id, np.arange(n + 1))
    first = masks[:, 0, 0]
    out = []
    for i in range(n):
        bounds = np.concatenate(([0], pos[splits[i]:splits[i + 1]], [h * w]))
        counts = np.diff(bounds).tolist()
        if first[i]:
            counts = [0] + counts
        out.append({"size": [h, w], "counts": counts})
    return out


def rle_to_mask(rle: dict) -> np.ndarray:
    """Uncompressed RLE -> (H, W) bool (C order)."""
    h, w = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = (np.arange(counts.size) % 2).astype(bool)    # runs alternate 0, 1, 0, ...
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValueError(f"rle_to_mask: the counts sum to {flat.size}, expected size "
                         f"{h} x {w} = {h * w}")
    return flat.reshape(w, h).T


def area_from_rle(rle: dict) -> int:
    """Pixels set: the sum of the odd-position runs."""
    return int(sum(rle["counts"][1::2]))


# ---- connected components and small regions ---------------------------------------------

def _row_runs(mask: np.ndarray):
    """Horizontal runs of True in each row: (row, start, end) arrays, end exclusive, in
    row-major order."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)                 # +1 at a run's start, -1 after its end
    rs, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    return rs, starts, ends


def connected_components(mask: np.ndarray, connectivity: int = 8) -> tuple[int, np.ndarray]:
    """(number of components K, (H, W) int32 labels: 0 background, 1..K the components in the
    order of their first pixel in row-major order).

    By runs: each row's horizontal runs are nodes; runs of adjacent rows that touch (overlap,
    or with 8-connectivity also meet at a corner) are edges; components are found by
    union-find over the runs in whole-array steps (hook each edge's larger root onto the
    smaller, then pointer-jump until every run points at its root), repeated until no edge
    joins two roots."""
    if connectivity not in (4, 8):
        raise ValueError(f"connected_components: connectivity must be 4 or 8, got "
                         f"{connectivity!r}")
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    rows, starts, ends = _row_runs(mask)
    r = rows.size
    if r == 0:
        return 0, labels
    reach = 1 if connectivity == 8 else 0
    # Edges between row y's runs and row y + 1's: runs [s1, e1) and [s2, e2) touch when
    # s1 < e2 + reach and s2 < e1 + reach. Runs are sorted by (row, start) and disjoint within
    # a row, so for a run of row y + 1 its partners in row y are a contiguous index range,
    # found by binary search on keys row * (w + 2) + column (w + 2 exceeds every end + reach,
    # so the keys of different rows never interleave).
    stride = w + 2
    end_keys = rows * stride + ends + reach
    start_keys = rows * stride + starts
    below = np.flatnonzero(rows > 0)
    y = rows[below] - 1
    lo = np.searchsorted(end_keys, y * stride + starts[below], side="right")
    hi = np.searchsorted(start_keys, y * stride + ends[below] + reach, side="left")
    count = np.maximum(hi - lo, 0)
    dst = np.repeat(below, count)
    src = np.repeat(lo, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count,
                                                                     count))
    parent = np.arange(r, dtype=np.int64)
    while src.size:
        a, b = parent[src], parent[dst]
        joined = a != b
        if not joined.any():
            break
        a, b = a[joined], b[joined]
        lo_root, hi_root = np.minimum(a, b), np.maximum(a, b)
        np.minimum.at(parent, hi_root, lo_root)
        while True:                          # pointer jumping: every run -> its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    roots, run_label = np.unique(parent, return_inverse=True)
    # roots are the smallest run index of each component, so np.unique's order is the order
    # of the components' first pixels
    lengths = ends - starts
    labels.reshape(-1)[np.flatnonzero(mask)] = np.repeat(run_label.astype(np.int32) + 1,
                                                         lengths)
    return int(roots.size), labels


def remove_small_regions(mask: np.ndarray, area_thresh: float,
                         mode: str) -> tuple[np.ndarray, bool]:
    """(mask, changed): with mode "holes", 8-connected regions of the background smaller than
    ``area_thresh`` are filled (any such region, including one touching the border, as the
    reference's OpenCV call does); with "islands", 8-connected regions of the mask smaller than
    it are removed, keeping the largest when all are small."""
    if mode not in ("holes", "islands"):
        raise ValueError(f"remove_small_regions: mode must be 'holes' or 'islands', got "
                         f"{mode!r}")
    mask = np.asarray(mask, dtype=bool)
    holes = mode == "holes"
    working = ~mask if holes else mask
    n, labels = connected_components(working, 8)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    small = sizes < area_thresh
    if not small.any():
        return mask, False
    if holes:
        return mask | ((labels > 0) & small[np.maximum(labels - 1, 0)]), True
    keep = ~small
    if not keep.any():
        keep[np.argmax(sizes)] = True
    return (labels > 0) & keep[np.maximum(labels - 1, 0)], True
