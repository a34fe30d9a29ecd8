"""fastattn.explain: attention rollout, [CLS] maps, upsampling and display normalisation.

Pure NumPy over the attention probabilities a model returns (no kernel of its own, except
fastattn.interpolate in upsample_map), so not parametrised over ISA paths.
"""
import numpy as np
import pytest

from fastattn import explain


def random_attentions(rng, layers=3, batch=2, heads=4, tokens=5):
    """Row-stochastic (B, heads, T, T) float32 maps, as a model's softmax returns them."""
    out = []
    for _ in range(layers):
        logits = rng.standard_normal((batch, heads, tokens, tokens)) * 2
        p = np.exp(logits - logits.max(-1, keepdims=True))
        out.append((p / p.sum(-1, keepdims=True)).astype(np.float32))
    return tuple(out)


def reference_rollout(attentions):
    """The docstring's NumPy reference (mean fusion, no discarding), per batch item."""
    b, _, t, _ = attentions[0].shape
    result = []
    for i in range(b):
        r = np.eye(t)
        for att in attentions:
            a = att[i].astype(np.float64).mean(0) + np.eye(t)
            a /= a.sum(-1, keepdims=True)
            r = a @ r
        result.append(r)
    return np.stack(result)


# float32 output of float64 products of row-stochastic matrices: each entry <= 1 is rounded
# once (<= 6e-8); a row of T <= 50 entries then sums to 1 within T * 6e-8 < 1e-5.
ROW_SUM_TOL = 1e-5


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
def test_rollout_rows_sum_to_one(fusion, ratio):
    atts = random_attentions(np.random.default_rng(0), layers=4, tokens=17)
    r = explain.attention_rollout(atts, fusion, ratio)
    assert r.shape == (2, 17, 17) and r.dtype == np.float32
    assert (r >= 0).all()
    np.testing.assert_allclose(r.sum(-1), 1.0, rtol=0, atol=ROW_SUM_TOL)


def test_rollout_matches_reference():
    atts = random_attentions(np.random.default_rng(1), layers=5, tokens=10)
    np.testing.assert_allclose(explain.attention_rollout(atts), reference_rollout(atts),
                               rtol=0, atol=1e-7)  # one float32 rounding of values <= 1


def test_identity_attention_gives_identity_rollout():
    eye = np.broadcast_to(np.eye(6, dtype=np.float32), (3, 2, 6, 6)).copy()
    r = explain.attention_rollout((eye,) * 4)
    np.testing.assert_array_equal(r, np.broadcast_to(np.eye(6), (3, 6, 6)))


def test_rollout_two_layers_by_hand():
    a1 = np.array([[0.5, 0.5], [0.2, 0.8]], np.float32)
    a2 = np.array([[1.0, 0.0], [0.4, 0.6]], np.float32)
    # (A + I) / 2: [[.75, .25], [.1, .9]] and [[1, 0], [.2, .8]]; R = Â2 Â1
    #   row 0: [1 * .75, 1 * .25]; row 1: [.2 * .75 + .8 * .1, .2 * .25 + .8 * .9]
    expected = np.array([[0.75, 0.25], [0.23, 0.77]])
    r = explain.attention_rollout((a1[None, None], a2[None, None]))
    np.testing.assert_allclose(r[0], expected, rtol=0, atol=1e-7)
    # the order matters: Â1 Â2 is a different matrix
    r21 = explain.attention_rollout((a2[None, None], a1[None, None]))
    assert np.abs(r21[0] - expected).max() > 0.05


def test_head_fusion_modes():
    rng = np.random.default_rng(2)
    att = random_attentions(rng, layers=1, heads=3, tokens=4)
    for fusion, reduce in (("mean", np.mean), ("max", np.max), ("min", np.min)):
        fused = reduce(att[0].astype(np.float64), axis=1)
        np.testing.assert_allclose(explain.fuse_heads(att[0], fusion), fused)
        a = fused + np.eye(4)
        a /= a.sum(-1, keepdims=True)
        np.testing.assert_allclose(explain.attention_rollout(att, fusion), a, atol=1e-7)
    assert not np.allclose(explain.attention_rollout(att, "max"),
                           explain.attention_rollout(att, "min"))


def test_discard_ratio_zeroes_the_smallest_but_keeps_the_cls_column():
    # one layer, one head, T = 3; the two smallest entries of the map overall are in the
    # [CLS] column (0.01, 0.02) and must survive; outside it, T * (T - 1) = 6 entries, ratio
    # 0.34 -> int(2.04) = 2 dropped: 0.05 and 0.06.
    m = np.array([[0.50, 0.05, 0.45],
                  [0.01, 0.60, 0.39],
                  [0.02, 0.06, 0.92]], np.float64)
    kept = m.copy()
    kept[0, 1] = kept[2, 1] = 0.0
    a = kept + np.eye(3)
    a /= a.sum(-1, keepdims=True)
    r = explain.attention_rollout((m[None, None].astype(np.float32),), discard_ratio=0.34)
    np.testing.assert_allclose(r[0], a, atol=1e-7)
    # ratio 0 keeps everything
    full = m + np.eye(3)
    full /= full.sum(-1, keepdims=True)
    np.testing.assert_allclose(explain.attention_rollout((m[None, None],))[0], full, atol=1e-7)
    # two prefix tokens ([CLS] + distillation): columns 0 and 1 kept, 3 entries outside,
    # int(0.34 * 3) = 1 dropped: the 0.39
    kept2 = m.copy()
    kept2[1, 2] = 0.0
    a2 = kept2 + np.eye(3)
    a2 /= a2.sum(-1, keepdims=True)
    r2 = explain.attention_rollout((m[None, None],), discard_ratio=0.34, num_prefix_tokens=2)
    np.testing.assert_allclose(r2[0], a2, atol=1e-7)


def test_discard_applies_to_every_batch_item():
    atts = random_attentions(np.random.default_rng(3), layers=2, batch=3, tokens=6)
    whole = explain.attention_rollout(atts, "max", 0.7)
    for i in range(3):
        one = explain.attention_rollout(tuple(a[i:i + 1] for a in atts), "max", 0.7)
        np.testing.assert_array_equal(whole[i], one[0])
    # a high ratio sharpens the [CLS] row: more mass on its largest entry
    sharp = explain.attention_rollout(atts, "mean", 0.9)[:, 0]
    soft = explain.attention_rollout(atts, "mean", 0.0)[:, 0]
    assert (sharp.max(-1) > soft.max(-1)).all()


def test_cls_attention_map():
    rng = np.random.default_rng(4)
    atts = random_attentions(rng, layers=2, batch=2, heads=3, tokens=1 + 12)
    m = explain.cls_attention_map(atts, layer=0, head=2, grid=(3, 4))
    assert m.shape == (2, 3, 4) and m.dtype == np.float32
    np.testing.assert_array_equal(m, atts[0][:, 2, 0, 1:].reshape(2, 3, 4))
    mean = explain.cls_attention_map(atts, grid=(4, 3))                 # last layer, all heads
    np.testing.assert_allclose(mean, atts[-1][:, :, 0, 1:].mean(1).reshape(2, 4, 3), atol=1e-7)
    # DeiT: [CLS] + distillation token, 9 patches -> a 3 x 3 grid inferred
    atts2 = random_attentions(rng, layers=1, tokens=2 + 9)
    m2 = explain.cls_attention_map(atts2, num_prefix_tokens=2, head=-1)
    np.testing.assert_array_equal(m2, atts2[0][:, -1, 0, 2:].reshape(2, 3, 3))


def test_rollout_map_is_the_cls_row_over_patches():
    atts = random_attentions(np.random.default_rng(5), layers=3, tokens=1 + 16)
    r = explain.attention_rollout(atts, "min", 0.5)
    m = explain.rollout_map(atts, "min", 0.5)
    assert m.shape == (2, 4, 4)
    np.testing.assert_array_equal(m, r[:, 0, 1:].reshape(2, 4, 4))


def bilinear_reference(m, size):
    """torch's bilinear, align_corners=False: source coordinate (i + 0.5) * in / out - 0.5,
    clamped at 0, interpolated between the two neighbours (clamped at the edge)."""
    def weights(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        w = np.zeros((n_out, n_in))
        np.add.at(w, (np.arange(n_out), lo), 1 - (src - lo))
        np.add.at(w, (np.arange(n_out), hi), src - lo)
        return w
    return weights(m.shape[-2], size[0]) @ m @ weights(m.shape[-1], size[1]).T


def test_upsample_map():
    rng = np.random.default_rng(6)
    maps = rng.random((2, 3, 4)).astype(np.float32)
    up = explain.upsample_map(maps, (12, 10))
    assert up.shape == (2, 12, 10) and up.dtype == np.float32
    for i in range(2):
        # float32 interpolation of values in [0, 1]: a few ulps
        np.testing.assert_allclose(up[i], bilinear_reference(maps[i].astype(np.float64),
                                                             (12, 10)), atol=1e-6)
    one = explain.upsample_map(maps[0], (6, 8))                          # (h, w) in, (H, W) out
    assert one.shape == (6, 8)
    np.testing.assert_allclose(explain.upsample_map(np.full((2, 2), 0.3), (5, 7)), 0.3,
                               atol=1e-7)
    with pytest.raises(ValueError, match="image_size"):
        explain.upsample_map(maps, 12)
    with pytest.raises(ValueError, match=r"\(h, w\) or \(B, h, w\)"):
        explain.upsample_map(maps[0, 0], (4, 4))


def test_normalize_map():
    m = np.array([[[2.0, 4.0], [6.0, 10.0]], [[3.0, 3.0], [3.0, 3.0]]])
    out = explain.normalize_map(m)
    np.testing.assert_allclose(out[0], [[0.0, 0.25], [0.5, 1.0]])
    np.testing.assert_array_equal(out[1], 0.0)                   # a constant map: all 0
    with pytest.raises(ValueError, match="at least 2"):
        explain.normalize_map(np.ones(3))


def test_bad_input():
    atts = random_attentions(np.random.default_rng(7), layers=2, tokens=5)
    with pytest.raises(TypeError, match="tuple or list"):
        explain.attention_rollout(np.stack(atts))
    with pytest.raises(ValueError, match="empty"):
        explain.attention_rollout(())
    with pytest.raises(TypeError, match=r"attentions\[1\] must be float32 or float64"):
        explain.attention_rollout((atts[0], atts[1].astype(np.float16)))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        explain.attention_rollout((atts[0], [[1.0]]))
    with pytest.raises(ValueError, match=r"\(B, heads, T, T\)"):
        explain.attention_rollout((atts[0][:, :, :4],))
    with pytest.raises(ValueError, match="same shape"):
        explain.attention_rollout((atts[0], atts[1][:1]))
    with pytest.raises(ValueError, match="discard_ratio"):
        explain.attention_rollout(atts, discard_ratio=1.0)
    with pytest.raises(ValueError, match="discard_ratio"):
        explain.attention_rollout(atts, discard_ratio=-0.1)
    with pytest.raises(ValueError, match="head_fusion"):
        explain.attention_rollout(atts, "median")
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        explain.attention_rollout(atts, num_prefix_tokens=5)
    with pytest.raises(ValueError, match="square grid"):
        explain.rollout_map(atts, num_prefix_tokens=2)            # 3 patches
    with pytest.raises(ValueError, match="has 6 cells"):
        explain.rollout_map(atts, grid=(2, 3))                    # 4 patches
    with pytest.raises(ValueError, match="layer"):
        explain.cls_attention_map(atts, layer=2)
    with pytest.raises(ValueError, match="head"):
        explain.cls_attention_map(atts, head=4)
