"""pipelines/mask_utils.py against straightforward loops (one pixel, box or mask at a time)."""
from collections import deque

import numpy as np
import pytest
from fastattn.pipelines import mask_utils as mu


def random_masks(rng, n, h, w, density=0.5, blobs=True):
    """Masks with structure (unions of rectangles) or plain noise."""
    if not blobs:
        return rng.random((n, h, w)) < density
    masks = np.zeros((n, h, w), dtype=bool)
    for m in masks:
        for _ in range(rng.integers(0, 5)):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            m[y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = True
    return masks


# ---- grids and crops ----------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 5, 32])
def test_point_grid_centres_x_fastest(n):
    grid = mu.build_point_grid(n)
    assert grid.shape == (n * n, 2)
    for k, (x, y) in enumerate(grid):
        i, j = divmod(k, n)                       # row i (y), column j (x)
        assert x == pytest.approx((j + 0.5) / n, abs=1e-15)
        assert y == pytest.approx((i + 0.5) / n, abs=1e-15)


def test_layer_grids_scale_down():
    grids = mu.build_all_layer_point_grids(16, 2, 2)
    assert [len(g) for g in grids] == [256, 64, 16]
    grids = mu.build_all_layer_point_grids(5, 1, 2)      # int(5 / 2) = 2 per side
    assert [len(g) for g in grids] == [25, 4]


def test_crop_boxes_hand_computed():
    # H 100, W 150, one layer, ratio 512/1500: overlap int(512/1500 * 100 * 2/2) = 34,
    # crop_w = ceil((34 + 150) / 2) = 92, crop_h = ceil((34 + 100) / 2) = 67,
    # x0 = 0, 92 - 34 = 58; y0 = 0, 67 - 34 = 33; x outer loop
    boxes, layers = mu.generate_crop_boxes((100, 150), 1, 512 / 1500)
    assert boxes == [[0, 0, 150, 100], [0, 0, 92, 67], [0, 33, 92, 100], [58, 0, 150, 67],
                     [58, 33, 150, 100]]
    assert layers == [0, 1, 1, 1, 1]


@pytest.mark.parametrize("size", [(64, 64), (97, 130), (200, 31)])
def test_crop_boxes_cover_the_image(size):
    boxes, layers = mu.generate_crop_boxes(size, 2, 512 / 1500)
    assert layers.count(1) == 4 and layers.count(2) == 16
    h, w = size
    for layer in (1, 2):
        covered = np.zeros(size, dtype=bool)
        for b, li in zip(boxes, layers):
            if li == layer:
                x0, y0, x1, y1 = b
                assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
                covered[y0:y1, x0:x1] = True
        assert covered.all()


def test_uncrop():
    crop = [3, 5, 10, 12]
    boxes = np.array([[0, 0, 2, 3]])
    np.testing.assert_array_equal(mu.uncrop_boxes(boxes, crop), [[3, 5, 5, 8]])
    np.testing.assert_array_equal(mu.uncrop_points(np.array([[1.5, 2.0]]), crop), [[4.5, 7.0]])
    masks = np.ones((2, 7, 7), dtype=bool)
    full = mu.uncrop_masks(masks, crop, 20, 15)
    assert full.shape == (2, 20, 15) and full.sum() == 2 * 49
    assert full[:, 5:12, 3:10].all()
    assert mu.uncrop_masks(masks, [0, 0, 7, 7], 7, 7) is masks


def test_box_near_crop_edge():
    crop, image = [100, 0, 200, 100], [0, 0, 300, 100]
    boxes = np.array([[50, 40, 60, 50],       # inside, far from every edge: kept
                      [0, 40, 10, 50],        # at the crop's left side (x 100, not the image's)
                      [50, 0, 60, 10],        # at the top: also the image's top -> not flagged
                      [50, 40, 99, 50]])      # x1 = 199 near the crop's right (200)
    np.testing.assert_array_equal(mu.is_box_near_crop_edge(boxes, crop, image),
                                  [False, True, False, True])


# ---- stability, boxes ----------------------------------------------------------------------

def test_stability_score_vs_loop():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 9, 11)).astype(np.float32) * 3
    logits[2] = -5.0                         # empty at both thresholds: 0 (reference: NaN)
    got = mu.stability_score(logits, 0.0, 1.0)
    for k, m in enumerate(logits):
        hi = sum(1 for v in m.ravel() if v > 1.0)
        lo = sum(1 for v in m.ravel() if v > -1.0)
        want = hi / lo if lo else 0.0
        assert got[k] == pytest.approx(want, rel=1e-6)   # one float32 rounding of the ratio
    assert got.dtype == np.float32 and got[2] == 0.0


@pytest.mark.parametrize("blobs", [True, False])
def test_masks_to_boxes_vs_loop(blobs):
    rng = np.random.default_rng(1)
    masks = random_masks(rng, 12, 13, 17, density=0.02, blobs=blobs)
    masks[0] = False
    masks[1] = False
    masks[1, 12, 16] = True
    got = mu.masks_to_boxes(masks)
    for m, b in zip(masks, got):
        ys, xs = np.nonzero(m)
        want = [0, 0, 0, 0] if ys.size == 0 else [xs.min(), ys.min(), xs.max(), ys.max()]
        assert list(b) == want
    np.testing.assert_array_equal(mu.box_xyxy_to_xywh(np.array([2, 3, 7, 11])), [2, 3, 5, 8])


def iou_loop(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms_loop(boxes, scores, t):
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        if all(iou_loop(boxes[i], boxes[k]) <= t for k in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("t", [0.0, 0.3, 0.7])
def test_box_nms_vs_greedy_loop(seed, t):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    xy = rng.integers(0, 40, (n, 2))
    wh = rng.integers(0, 25, (n, 2))            # some zero-width (degenerate) boxes
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.integers(0, 5, n).astype(np.float32)  # many ties: lower index first
    got = mu.box_nms(boxes, scores, t)
    want = nms_loop(boxes.tolist(), scores.tolist(), t)
    assert got.tolist() == want


def test_box_iou_vs_loop():
    rng = np.random.default_rng(3)
    a = np.concatenate([xy := rng.integers(0, 20, (7, 2)), xy + rng.integers(0, 9, (7, 2))], 1)
    b = np.concatenate([xy := rng.integers(0, 20, (5, 2)), xy + rng.integers(0, 9, (5, 2))], 1)
    got = mu.box_iou(a, b)
    for i in range(7):
        for j in range(5):
            assert got[i, j] == pytest.approx(iou_loop(a[i], b[j]), rel=1e-6)
    assert mu.box_nms(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0


# ---- RLE ------------------------------------------------------------------------------------

def rle_loop(mask):
    """Column-major walk, one pixel at a time."""
    h, w = mask.shape
    counts, current, run = [], False, 0
    for x in range(w):
        for y in range(h):
            if bool(mask[y, x]) != current:
                counts.append(run)
                current, run = not current, 0
            run += 1
    counts.append(run)
    return {"size": [h, w], "counts": counts}


@pytest.mark.parametrize("blobs", [True, False])
@pytest.mark.parametrize("h, w", [(7, 10), (5, 16), (1, 9), (9, 1), (3, 24)])
def test_rle_vs_loop_and_round_trip(blobs, h, w):
    # widths below, at and above the 8-column words of the edge search, and 1-pixel sides
    rng = np.random.default_rng(4)
    masks = random_masks(rng, 9, h, w, blobs=blobs)
    masks[0] = True
    masks[1] = False
    masks[2] = False
    masks[2, 0, 0] = True
    got = mu.mask_to_rle(masks)
    for m, rle in zip(masks, got):
        assert rle == rle_loop(m)
        back = mu.rle_to_mask(rle)
        assert back.dtype == bool and back.shape == m.shape
        np.testing.assert_array_equal(back, m)
        assert mu.area_from_rle(rle) == int(m.sum())
    assert got[0]["counts"] == [0, h * w] and got[1]["counts"] == [h * w]
    # a strided (non-contiguous) input takes the padded path
    assert mu.mask_to_rle(masks[:, :, ::-1]) == [rle_loop(m) for m in masks[:, :, ::-1]]


def test_rle_bad_counts():
    with pytest.raises(ValueError, match="counts sum to 5, expected size 2 x 3"):
        mu.rle_to_mask({"size": [2, 3], "counts": [2, 3]})


# ---- connected components ---------------------------------------------------------------

def bfs_components(mask, connectivity):
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    k = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not labels[y, x]:
                k += 1
                labels[y, x] = k
                queue = deque([(y, x)])
                while queue:
                    cy, cx = queue.popleft()
                    for dy, dx in steps:
                        ny, nx = cy + dy, cx + dx
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                            labels[ny, nx] = k
                            queue.append((ny, nx))
    return k, labels


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", range(5))
def test_connected_components_vs_bfs(connectivity, seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    mask = rng.random((h, w)) < rng.uniform(0.2, 0.7)
    n, labels = mu.connected_components(mask, connectivity)
    want_n, want = bfs_components(mask, connectivity)
    assert n == want_n
    np.testing.assert_array_equal(labels, want)


def test_connected_components_spiral_and_diagonal():
    # a spiral is one component whose union-find needs many hooks; a diagonal line is one
    # component with 8-connectivity and one per pixel with 4
    s = np.zeros((15, 15), dtype=bool)
    s[0, :] = s[:, 14] = s[14, :] = s[2:, 0] = s[2, :13] = s[2:13, 12] = True
    s[12, 2:13] = s[4:13, 2] = s[4, 2:11] = s[4:11, 10] = s[10, 4:11] = True
    for c in (4, 8):
        assert mu.connected_components(s, c)[0] == bfs_components(s, c)[0]
    d = np.eye(6, dtype=bool)
    assert mu.connected_components(d, 8)[0] == 1
    assert mu.connected_components(d, 4)[0] == 6
    assert mu.connected_components(np.zeros((3, 4), bool), 8)[0] == 0
    with pytest.raises(ValueError, match="connectivity must be 4 or 8"):
        mu.connected_components(d, 6)


def remove_small_loop(mask, area, mode):
    """The reference's rule written with the BFS labelling."""
    working = ~mask if mode == "holes" else mask
    n, labels = bfs_components(working, 8)
    sizes = [int((labels == k).sum()) for k in range(1, n + 1)]
    small = [k + 1 for k, s in enumerate(sizes) if s < area]
    if not small:
        return mask, False
    if mode == "holes":
        return mask | np.isin(labels, small), True
    big = [k for k in range(1, n + 1) if k not in small] or [int(np.argmax(sizes)) + 1]
    return np.isin(labels, big), True


@pytest.mark.parametrize("mode", ["holes", "islands"])
@pytest.mark.parametrize("seed", range(6))
def test_remove_small_regions_vs_loop(mode, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((24, 20)) < (0.75 if mode == "holes" else 0.3)
    area = int(rng.integers(1, 12))
    got, changed = mu.remove_small_regions(mask, area, mode)
    want, want_changed = remove_small_loop(mask, area, mode)
    assert changed == want_changed
    np.testing.assert_array_equal(got, want)


def test_remove_small_islands_keeps_the_largest_when_all_are_small():
    mask = np.zeros((10, 10), dtype=bool)
    mask[0, 0] = True
    mask[5:7, 5:7] = True
    got, changed = mu.remove_small_regions(mask, 100, "islands")
    assert changed and got.sum() == 4 and got[5:7, 5:7].all()
    with pytest.raises(ValueError, match="mode must be 'holes' or 'islands'"):
        mu.remove_small_regions(mask, 3, "both")
