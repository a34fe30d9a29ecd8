"""SamAutomaticMaskGenerator (pipelines/sam_automatic.py).

Two models:
- ``ColourSam``, a stand-in whose "decoder" answers a point with the image region of the
  point's colour (known masks, IoU predictions and stability), so what the generator must
  return is known exactly: one record per region, deduplicated by NMS;
- a tiny random SAM checkpoint (fastattn.testing.write_sam_checkpoint), against
  ``reference_generate`` below: the official algorithm written straightforwardly (one point
  per decoder call, masks upsampled to full resolution before the stability score, Python
  loops for NMS and RLE).
The pipeline's arithmetic is NumPy plus the predictor's upscaling; nothing is parametrised
over ISA paths (the model's kernels are tested in the model's test files).
"""
from types import SimpleNamespace

import numpy as np
import pytest
from fastattn.pipelines import mask_utils as mu
from fastattn.pipelines.sam_automatic import SamAutomaticMaskGenerator
from test_mask_utils import nms_loop, remove_small_loop

# ---- a stand-in model with known answers --------------------------------------------------

class ColourSam:
    """SAM's interface (what SamPredictor calls) on a 128 x 128 input frame with an 8 x 8
    "embedding" (the mean colour of each 16 x 16 patch) and 32 x 32 low-res logits.

    A point's three masks are the low-res cells whose colour lies within 0.1, 0.5 and 3.0
    (normalised units, max over channels) of the colour under the point: logits +5 inside,
    -5 outside, so a region of uniform colour is a mask with stability 1 whose upsampled edge
    (bilinear, where the logits cross 0) falls exactly on the cells' border. Predicted
    IoUs 0.95, 0.9, 0.5: with pred_iou_thresh 0.88 the first two pass, and for
    well-separated colours they are the same mask (NMS keeps the first)."""

    thresholds = (0.1, 0.5, 3.0)
    ious = (0.95, 0.9, 0.5)

    def __init__(self):
        self.config = SimpleNamespace(model_type="sam",
                                      vision=SimpleNamespace(image_size=128),
                                      prompt=SimpleNamespace(image_embedding_size=8))
        self.encoder_calls = 0

    def get_image_embeddings(self, pixel_values):
        self.encoder_calls += 1
        return pixel_values.reshape(1, 3, 8, 16, 8, 16).mean(axis=(3, 5))

    def __call__(self, image_embeddings=None, input_points=None, input_labels=None,
                 input_boxes=None, input_masks=None, multimask_output=True):
        cells = image_embeddings[0].repeat(4, axis=1).repeat(4, axis=2)     # (3, 32, 32)
        p = input_points.shape[0]
        first = input_points[:, 0, :]                                       # (P, 2) x, y
        ix = np.clip((first[:, 0] // 4).astype(int), 0, 31)
        iy = np.clip((first[:, 1] // 4).astype(int), 0, 31)
        colour = cells[:, iy, ix].T                                         # (P, 3)
        dist = np.abs(cells[None] - colour[:, :, None, None]).max(axis=1)   # (P, 32, 32)
        t = np.array(self.thresholds, np.float32)[None, :, None, None]
        logits = (5 * np.sign(t - dist[:, None])).astype(np.float32)       # (P, 3, 32, 32)
        iou = np.tile(np.array(self.ious, np.float32), (p, 1))
        if not multimask_output:
            logits, iou = logits[:, :1], iou[:, :1]
        return SimpleNamespace(pred_masks=logits, iou_scores=iou)


H = W = 128     # the colour image: its own input frame (no resize, no padding)


def colour_image():
    """128 x 128 RGB: background, three rectangles with 16-px-aligned edges and distinct
    colours. Returns (image, the masks ColourSam gives: the rectangles, then the background).
    A rectangle's mask lacks its corner pixels inside the image: there the bilinear
    upsampling mixes 0.625^2 < 1/2 of the inside cell's +5 with the outside cells' -5, so the
    logit is negative (and the background's positive). At the image's border the upsampling
    clamps, so a rectangle touching it keeps the corners there."""
    image = np.zeros((H, W, 3), np.uint8)
    image[:] = (30, 160, 60)
    rects = [((16, 48), (16, 64), (220, 40, 40)),
             ((48, 80), (80, 112), (40, 40, 220)),
             ((96, 128), (16, 48), (240, 240, 40))]     # touches the bottom edge
    regions = []
    for (y0, y1), (x0, x1), colour in rects:
        image[y0:y1, x0:x1] = colour
        m = np.zeros((H, W), bool)
        m[y0:y1, x0:x1] = True
        for y in (y0, y1 - 1):
            if 0 < y < H - 1:
                m[y, [x0, x1 - 1]] = False
        regions.append(m)
    regions.append(~np.any(regions, axis=0))
    return image, regions


def first_grid_point(region, n, w, h):
    """The reference's prompt for a region: the first grid point (row-major) inside it."""
    for x, y in mu.build_point_grid(n) * [w, h]:
        if region[int(y), int(x)]:
            return [x, y]


def test_colour_regions_found_once_each():
    image, regions = colour_image()
    model = ColourSam()
    gen = SamAutomaticMaskGenerator(model, points_per_side=8, points_per_batch=5)
    records = gen.generate(image)
    assert model.encoder_calls == 1
    assert len(records) == len(regions)
    found = {}
    for r in records:
        seg = r["segmentation"]
        assert seg.shape == (H, W) and seg.dtype == bool
        k = [i for i, reg in enumerate(regions) if np.array_equal(seg, reg)]
        assert len(k) == 1, "each record is exactly one region"
        found[k[0]] = r
        ys, xs = np.nonzero(seg)
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        assert r["area"] == int(seg.sum())
        assert r["predicted_iou"] == pytest.approx(0.95)
        # the upsampled edges ramp from +5 to -5 over 4 pixels: a few pixels per edge fall in
        # (-1, 1], so the full-resolution score is just below 1
        assert 0.99 < r["stability_score"] < 1.0
        assert r["crop_box"] == [0, 0, W, H]
        # ties in predicted IoU: NMS keeps the first point (grid order) that found the region
        assert r["point_coords"] == [first_grid_point(regions[k[0]], 8, W, H)]
    assert sorted(found) == [0, 1, 2, 3]
    # order: decreasing predicted IoU, ties in grid order of their prompts
    firsts = [mu.build_point_grid(8).tolist().index([r["point_coords"][0][0] / W,
                                                     r["point_coords"][0][1] / H])
              for r in records]
    assert firsts == sorted(firsts)


def test_batching_rle_resolution_and_predictor_reuse_agree():
    image, _ = colour_image()
    base = SamAutomaticMaskGenerator(ColourSam(), points_per_side=8).generate(image)
    for kwargs in ({"points_per_batch": 1}, {"points_per_batch": 64}):
        other = SamAutomaticMaskGenerator(ColourSam(), points_per_side=8, **kwargs)
        assert_same_records(other.generate(image), base)
    # without the low-resolution prefilter (every mask upsampled): the same records
    full = SamAutomaticMaskGenerator(ColourSam(), points_per_side=8,
                                     prefilter_margin=None).generate(image)
    assert_same_records(full, base)
    rle = SamAutomaticMaskGenerator(ColourSam(), points_per_side=8,
                                    output_mode="uncompressed_rle").generate(image)
    assert len(rle) == len(base)
    for a, b in zip(rle, base):
        assert a["segmentation"]["size"] == [H, W]
        np.testing.assert_array_equal(mu.rle_to_mask(a["segmentation"]), b["segmentation"])
        assert a["area"] == b["area"] and a["bbox"] == b["bbox"]
    model = ColourSam()
    gen = SamAutomaticMaskGenerator(model, points_per_side=8)
    gen.predictor.set_image(image)
    assert_same_records(gen.generate_from_predictor(), base)
    assert model.encoder_calls == 1


def test_min_mask_region_area_fills_holes():
    image, regions = colour_image()
    # the background's holes are the rectangles' masks, 32 x 48 - 4 = 1532, 32 x 32 - 4 and
    # 32 x 32 - 2 pixels (the one touching the border counts too: the reference's OpenCV
    # labelling does not tell holes from border regions). Below 1100 the two small ones are
    # filled.
    records = SamAutomaticMaskGenerator(ColourSam(), points_per_side=8,
                                        min_mask_region_area=1100).generate(image)
    background = [r for r in records if r["bbox"] == [0, 0, W - 1, H - 1]]
    assert len(background) == 1
    want = regions[3] | regions[1] | regions[2]
    np.testing.assert_array_equal(background[0]["segmentation"], want)
    assert background[0]["area"] == int(want.sum())
    others = [r["segmentation"] for r in records if r["bbox"] != [0, 0, W - 1, H - 1]]
    assert len(others) == 3
    for seg in others:
        assert any(np.array_equal(seg, reg) for reg in regions[:3])


def test_crop_layer_records_are_consistent():
    image, _ = colour_image()
    model = ColourSam()
    gen = SamAutomaticMaskGenerator(model, points_per_side=8, crop_n_layers=1,
                                    pred_iou_thresh=0.0, stability_score_thresh=0.0)
    records = gen.generate(image)
    assert model.encoder_calls == 5                       # the image and four crops
    crops, _ = mu.generate_crop_boxes((H, W), 1, 512 / 1500)
    crops_xywh = [list(mu.box_xyxy_to_xywh(np.array(c))) for c in crops]
    assert len(records) > 0
    boxes = []
    for r in records:
        assert r["crop_box"] in crops_xywh
        x, y, w, h = r["crop_box"]
        seg = r["segmentation"]
        outside = seg.copy()
        outside[y:y + h, x:x + w] = False
        assert not outside.any(), "a crop's mask lies inside the crop"
        ys, xs = np.nonzero(seg)
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        px, py = r["point_coords"][0]
        assert x <= px <= x + w and y <= py <= y + h
        boxes.append([xs.min(), ys.min(), xs.max(), ys.max()])
    # after the cross-crop NMS, no two kept boxes overlap more than crop_nms_thresh
    iou = mu.box_iou(np.array(boxes), np.array(boxes))
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.7


def assert_same_records(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.keys() == b.keys()
        np.testing.assert_array_equal(a["segmentation"], b["segmentation"])
        for key in ("area", "bbox", "point_coords", "crop_box", "predicted_iou",
                    "stability_score"):
            assert a[key] == b[key], key


# ---- parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, message", [
    ({"points_per_side": None}, ValueError, "exactly one of points_per_side and point_grids"),
    ({"point_grids": [mu.build_point_grid(4)]}, ValueError, "exactly one of"),
    ({"points_per_side": 0}, ValueError, "points_per_side must be >= 1"),
    ({"points_per_side": 2.5}, TypeError, "points_per_side must be an int"),
    ({"points_per_batch": 0}, ValueError, "points_per_batch must be >= 1"),
    ({"pred_iou_thresh": 1.5}, ValueError, r"pred_iou_thresh must be finite and in \[0, 1\]"),
    ({"stability_score_thresh": -0.1}, ValueError, "stability_score_thresh must be"),
    ({"stability_score_thresh": float("nan")}, ValueError, "stability_score_thresh must be"),
    ({"stability_score_offset": -1.0}, ValueError, "stability_score_offset must be finite"),
    ({"box_nms_thresh": "0.7"}, TypeError, "box_nms_thresh must be a number"),
    ({"crop_nms_thresh": 2}, ValueError, "crop_nms_thresh must be"),
    ({"crop_overlap_ratio": 1.5}, ValueError, "crop_overlap_ratio must be"),
    ({"crop_n_layers": -1}, ValueError, "crop_n_layers must be >= 0"),
    ({"crop_n_points_downscale_factor": 0}, ValueError, "crop_n_points_downscale_factor"),
    ({"points_per_side": 2, "crop_n_layers": 2, "crop_n_points_downscale_factor": 2},
     ValueError, "leaves no point in crop layer 2"),
    ({"min_mask_region_area": -5}, ValueError, "min_mask_region_area must be >= 0"),
    ({"output_mode": "coco_rle"}, ValueError, "needs pycocotools"),
    ({"output_mode": "png"}, ValueError, "output_mode must be 'binary_mask' or"),
    ({"prefilter_margin": 1.5}, ValueError, r"prefilter_margin must be finite and in \[0, 1\]"),
    ({"prefilter_margin": "0.1"}, TypeError, "prefilter_margin must be a number"),
    ({"points_per_side": None, "point_grids": [mu.build_point_grid(4)], "crop_n_layers": 1},
     ValueError, "one grid per crop layer, crop_n_layers \\+ 1 = 2, got 1"),
    ({"points_per_side": None, "point_grids": [np.array([[0.5, 1.5]])]}, ValueError,
     r"point_grids\[0\] must lie in \[0, 1\]"),
    ({"points_per_side": None, "point_grids": [np.zeros((3, 3))]}, ValueError,
     r"point_grids\[0\] must have shape \(N, 2\)"),
])
def test_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        SamAutomaticMaskGenerator(ColourSam(), **kwargs)


def test_bad_model_image_and_state():
    with pytest.raises(TypeError, match="must be a SAM model"):
        SamAutomaticMaskGenerator(object())
    gen = SamAutomaticMaskGenerator(ColourSam(), points_per_side=4)
    with pytest.raises(ValueError, match=r"image must have shape \(H, W, 3\)"):
        gen.generate(np.zeros((32, 32), np.uint8))
    with pytest.raises(TypeError, match="image must be uint8 or floating"):
        gen.generate(np.zeros((32, 32, 3), np.int32))
    with pytest.raises(RuntimeError, match="holds no image"):
        gen.generate_from_predictor()
    crops = SamAutomaticMaskGenerator(ColourSam(), points_per_side=4, crop_n_layers=1)
    with pytest.raises(ValueError, match="crops need the image's pixels"):
        crops.generate_from_predictor()


def test_explicit_point_grids():
    image, regions = colour_image()
    # one point in the middle of each region: exactly the four regions, in this order
    pts = np.array([[40, 32], [96, 64], [32, 112], [120, 8]]) / [W, H]
    records = SamAutomaticMaskGenerator(ColourSam(), points_per_side=None,
                                        point_grids=[pts]).generate(image)
    assert len(records) == 4
    for r, reg, p in zip(records, regions, pts):
        np.testing.assert_array_equal(r["segmentation"], reg)
        assert r["point_coords"] == [[p[0] * W, p[1] * H]]


# ---- the official algorithm, written straightforwardly ---------------------------------------

def reference_generate(model, image, points_per_side, points_per_batch=64,
                       pred_iou_thresh=0.88, stability_score_thresh=0.95,
                       stability_score_offset=1.0, box_nms_thresh=0.7, crop_n_layers=0,
                       crop_nms_thresh=0.7, crop_overlap_ratio=512 / 1500,
                       min_mask_region_area=0):
    """segment-anything's SamAutomaticMaskGenerator.generate: the points decoded
    ``points_per_batch`` at a time as the reference does (a batched decoder call rounds
    differently from single ones), every mask upsampled to the crop's size as logits
    (predict_batch(return_logits=True)) before its stability is counted, then one mask at a
    time: filters, boxes, crop edges, NMS, small regions by loops (test_mask_utils's).
    Records as the generator's, segmentation a binary mask."""
    from fastattn.pipelines.sam_predictor import SamPredictor
    predictor = SamPredictor(model)
    h_img, w_img = image.shape[:2]
    crops, layers = mu.generate_crop_boxes((h_img, w_img), crop_n_layers, crop_overlap_ratio)
    kept = []
    for crop, layer in zip(crops, layers):
        x0, y0, x1, y1 = crop
        predictor.set_image(image[y0:y1, x0:x1])
        found = []
        grid = mu.build_point_grid(points_per_side) * [x1 - x0, y1 - y0]
        decoded = []
        for i in range(0, len(grid), points_per_batch):
            batch = grid[i:i + points_per_batch]
            logits, ious, _ = predictor.predict_batch(
                point_coords=batch[:, None], point_labels=np.ones((len(batch), 1)),
                multimask_output=True, return_logits=True)
            decoded += zip(batch, logits, ious)
        for (gx, gy), logits, ious in decoded:
            for logit, iou in zip(logits, ious):
                if pred_iou_thresh > 0 and not iou > np.float32(pred_iou_thresh):
                    continue
                inter = int((logit > stability_score_offset).sum())
                union = int((logit > -stability_score_offset).sum())
                stability = np.float32(inter / union) if union else np.float32(0)
                if stability_score_thresh > 0 and not (stability
                                                       >= np.float32(stability_score_thresh)):
                    continue
                mask = logit > 0
                ys, xs = np.nonzero(mask)
                box = [xs.min(), ys.min(), xs.max(), ys.max()] if xs.size else [0, 0, 0, 0]
                image_box = [box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0]
                if any(abs(b - c) <= 20 and not abs(b - o) <= 20
                       for b, c, o in zip(image_box, crop, [0, 0, w_img, h_img])):
                    continue
                full = np.zeros((h_img, w_img), bool)
                full[y0:y1, x0:x1] = mask
                found.append({"mask": full, "box": box, "iou": float(iou),
                              "stability": float(stability), "point": [gx, gy]})
        for i in nms_loop([f["box"] for f in found], [f["iou"] for f in found], box_nms_thresh):
            f = found[i]
            f["box"] = [f["box"][0] + x0, f["box"][1] + y0, f["box"][2] + x0, f["box"][3] + y0]
            f["point"] = [f["point"][0] + x0, f["point"][1] + y0]
            f["crop"] = crop
            kept.append(f)
    if len(crops) > 1:
        scores = [1 / ((f["crop"][2] - f["crop"][0]) * (f["crop"][3] - f["crop"][1]))
                  for f in kept]
        kept = [kept[i] for i in nms_loop([f["box"] for f in kept], scores, crop_nms_thresh)]
    if min_mask_region_area > 0 and kept:
        scores, boxes, masks = [], [], []
        for f in kept:
            mask, filled = remove_small_loop(f["mask"], min_mask_region_area, "holes")
            mask, cut = remove_small_loop(mask, min_mask_region_area, "islands")
            ys, xs = np.nonzero(mask)
            boxes.append([xs.min(), ys.min(), xs.max(), ys.max()] if xs.size else [0, 0, 0, 0])
            masks.append(mask)
            scores.append(0.0 if filled or cut else 1.0)
        order = nms_loop(boxes, scores, max(box_nms_thresh, crop_nms_thresh))
        for i in order:
            kept[i]["mask"], kept[i]["box"] = masks[i], boxes[i]
        kept = [kept[i] for i in order]
    return [{"segmentation": f["mask"], "area": int(f["mask"].sum()),
             "bbox": [f["box"][0], f["box"][1], f["box"][2] - f["box"][0],
                      f["box"][3] - f["box"][1]],
             "predicted_iou": f["iou"], "point_coords": [f["point"]],
             "stability_score": f["stability"],
             "crop_box": [f["crop"][0], f["crop"][1], f["crop"][2] - f["crop"][0],
                          f["crop"][3] - f["crop"][1]]} for f in kept]


@pytest.mark.parametrize("margin", [0.1, None])
@pytest.mark.parametrize("kwargs", [
    {},
    {"crop_n_layers": 1, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0},
    {"crop_n_layers": 1, "min_mask_region_area": 1100},
])
def test_colour_model_matches_reference(kwargs, margin):
    image, _ = colour_image()
    want = reference_generate(ColourSam(), image, 6, 10, **kwargs)
    got = SamAutomaticMaskGenerator(ColourSam(), points_per_side=6, points_per_batch=10,
                                    prefilter_margin=margin, **kwargs).generate(image)
    assert len(want) > 0
    assert_same_records(got, want)


class SpeckledSam(ColourSam):
    """One mask for every point: low-res logits +5 on a 24 x 24 square, -5 around it, with
    every other pixel of its inner 22 x 22 at 0.5. At low resolution those 121 pixels lie in
    the band (-1, 1]: estimate 455 / 576 = 0.79. Upsampled, each is surrounded by +5 taps, so
    no pixel is below 1.55 (0.5 * 0.875^2 + 5 * (1 - 0.875^2)) and the outer edge (taps 5 and
    -5 at 1/8, 3/8, ... of the way) lands in (-1, 1] only at the square's corners: score
    0.999. The case where the low-resolution prefilter drops a mask the reference keeps."""

    def __call__(self, image_embeddings=None, input_points=None, input_labels=None,
                 input_boxes=None, input_masks=None, multimask_output=True):
        logits = np.full((32, 32), -5.0, np.float32)
        logits[4:28, 4:28] = 5.0
        logits[5:27:2, 5:27:2] = 0.5
        p, m = input_points.shape[0], 3 if multimask_output else 1
        return SimpleNamespace(pred_masks=np.tile(logits, (p, m, 1, 1)),
                               iou_scores=np.full((p, m), 0.95, np.float32))


def test_prefilter_drops_a_mask_whose_low_res_estimate_is_too_low():
    image, _ = colour_image()
    gen = SamAutomaticMaskGenerator(SpeckledSam(), points_per_side=2)
    gen.predictor.set_image(image)
    low_res, _, (size, input_size, _) = gen.predictor.predict_low_res(
        np.array([[[8.0, 8.0]]]), np.ones((1, 1), np.int64))
    assert gen.low_res_stability(low_res[0], size, input_size)[0] == np.float32(455 / 576)
    want = reference_generate(SpeckledSam(), image, 2)
    assert len(want) == 1 and want[0]["stability_score"] > 0.99   # (the square's corners)
    assert gen.generate(image) == []                          # 0.79 < 0.95 - 0.1
    kept = SamAutomaticMaskGenerator(SpeckledSam(), points_per_side=2, prefilter_margin=0.2)
    assert_same_records(kept.generate(image), want)           # 0.79 >= 0.95 - 0.2
    every = SamAutomaticMaskGenerator(SpeckledSam(), points_per_side=2, prefilter_margin=None)
    assert_same_records(every.generate(image), want)


# ---- a tiny random SAM checkpoint ---------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory):
    import fastattn
    from fastattn.testing import write_sam_checkpoint
    return fastattn.load(write_sam_checkpoint(tmp_path_factory.mktemp("sam")))


def photo(seed, h, w):
    """A smooth uint8 RGB image (random walks along rows and columns)."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(np.cumsum(rng.integers(-3, 4, (h, w, 3)), axis=0), axis=1).astype(float)
    walk -= walk.min()
    return (walk / max(walk.max(), 1) * 255).astype(np.uint8)


# A random model's logits are ~100x smaller than a trained one's (|logit| < 0.7 here), so the
# stability offset is scaled down with them, to a threshold some masks pass and some fail. Its
# masks are speckles over the whole image (every box is the image), so NMS would keep one:
# box_nms_thresh 1 keeps every mask that passes the filters (IoU > 1 never holds).
TINY = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.8, "stability_score_offset": 0.02,
        "box_nms_thresh": 1.0}


@pytest.mark.parametrize("kwargs", [{}, {"crop_n_layers": 1, "crop_nms_thresh": 1.0},
                                    {"min_mask_region_area": 30}])
def test_tiny_sam_matches_reference(tiny_sam, kwargs):
    image = photo(1, 96, 112)                      # not square: resize and padding
    want = reference_generate(tiny_sam, image, 8, 24, **TINY, **kwargs)
    assert len(want) > 1
    # without the prefilter: the reference's procedure, the same records
    every = SamAutomaticMaskGenerator(tiny_sam, points_per_side=8, points_per_batch=24,
                                      prefilter_margin=None, **TINY, **kwargs)
    assert_same_records(every.generate(image), want)


def test_tiny_sam_prefilter_skips_masks_and_keeps_the_records(tiny_sam):
    # with the default margin (0.1) the prefilter skips the upsampling of some masks and
    # drops none that the reference keeps, on this image
    image = photo(2, 128, 128)
    want = reference_generate(tiny_sam, image, 8, **TINY)
    assert len(want) > 10
    gen = SamAutomaticMaskGenerator(tiny_sam, points_per_side=8, **TINY)
    upscaled = []
    original = gen._upscale
    gen._upscale = lambda low_res, *a: (upscaled.append(len(low_res)), original(low_res, *a))[1]
    assert_same_records(gen.generate(image), want)
    assert 0 < sum(upscaled) < 3 * 64, "the prefilter skipped the upsampling of some masks"
    rle = SamAutomaticMaskGenerator(tiny_sam, points_per_side=8, output_mode="uncompressed_rle",
                                    **TINY).generate(image)
    assert len(rle) == len(want)
    for a, b in zip(rle, want):
        np.testing.assert_array_equal(mu.rle_to_mask(a["segmentation"]), b["segmentation"])
        assert a["area"] == b["area"]
