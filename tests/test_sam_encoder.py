"""SAM's image encoder (models/sam/image_encoder.py, rel_pos.py) on tiny random configs against
the float64 NumPy reference (fastattn.reference.models.sam_encoder) and, when installed,
transformers' SamModel.vision_encoder on the same weights: windowed attention with padding
(grid 8 in windows of 3: padded to 9, the padding attended unmasked), windows dividing the
grid, global blocks, relative-position tables resized for other image sizes, no rel-pos / no
abs-pos / no qkv bias, SlimSAM-like widths; the rel-pos helpers alone; thread invariance;
bad input and bad weights.

Tolerances. The encoder runs in float32, the reference in float64 on the same float32-valued
weights. Weights are N(0, 1/fan_in) (fastattn.testing.sam_init_std), tables and positions
N(0, 0.25), biases N(0, 0.01), gains 1 +/- 0.1, pixels N(0, 1): every stage is O(1). A float32
dot product of length K <= 768 (the patch projection: 3 * 16 * 16) rounds to about
sqrt(K) u |terms|, u = 2^-24: ~2e-6 per stage; the rel-pos terms, softmax, P V, projections,
the MLP and the two LayerNorms of each of the 2-3 blocks add their own, and the neck's
LayerNorm2d divides by the channel std (~1). Measured max errors are ~2e-6 on outputs of
magnitude ~3; EMBED_ATOL = 5e-5 leaves a 20x margin and still fails on any real error (a
wrong padding, table or index moves outputs by O(0.1)). transformers computes in float32 too,
so its comparison allows twice that.
"""
import json

import numpy as np
import pytest

import fastattn
from fastattn.models.sam import SamConfig, SamImageEncoder
from fastattn.models.sam.rel_pos import RelPosTables, get_rel_pos, resize_table
from fastattn.models.sam.schema import vision_shapes
from fastattn.reference.models import sam_encoder as ref
from fastattn.testing import TINY_SAM, random_tensors, sam_init_std

from conftest import assert_thread_invariant

EMBED_ATOL = 5e-5
TORCH_ATOL = 2 * EMBED_ATOL


def sam_config(**vision):
    """TINY_SAM with vision_config entries replaced (the prompt / decoder widths follow
    output_channels and the image size)."""
    raw = json.loads(json.dumps(TINY_SAM))
    raw["vision_config"].update(vision)
    v = raw["vision_config"]
    raw["prompt_encoder_config"].update(hidden_size=v["output_channels"],
                                        image_size=v["image_size"])
    raw["vision_config"]["num_pos_feats"] = v["output_channels"] // 2
    raw["mask_decoder_config"]["hidden_size"] = v["output_channels"]
    return SamConfig.from_dict(raw)


def encoder_weights(config, seed=0):
    return random_tensors(vision_shapes(config.vision), seed, std=sam_init_std, bias_std=0.1,
                          gain_std=0.1)


def pixels(config, seed=1, batch=2, size=None):
    s = size or config.vision.image_size
    return np.random.default_rng(seed).standard_normal((batch, 3, s, s), dtype=np.float32)


def check_against_reference(config, size=None, batch=2):
    w = encoder_weights(config)
    enc = SamImageEncoder(w, config.vision)
    x = pixels(config, batch=batch, size=size)
    got = enc(x)
    want = ref.sam_image_encoder({k: v.astype(np.float64) for k, v in w.items()}, config.vision,
                                 x.astype(np.float64))
    g = x.shape[-1] // config.vision.patch_size
    assert got.shape == (batch, config.vision.output_channels, g, g)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=EMBED_ATOL)
    return enc, x, got


CONFIGS = {
    # grid 8 in windows of 3: padded to 9 x 9, padding attended unmasked; block 1 global
    "padded-windows": {},
    # windows dividing the grid (no padding), all blocks windowed
    "exact-windows": {"window_size": 4, "global_attn_indexes": [], "num_hidden_layers": 2},
    # a grid of 10 in windows of 4 (pad to 12), two global blocks, three heads of 16
    "three-heads": {"image_size": 160, "hidden_size": 48, "num_attention_heads": 3,
                    "window_size": 4, "global_attn_indexes": [0, 2], "num_hidden_layers": 3,
                    "mlp_dim": 100},
    "no-rel-pos": {"use_rel_pos": False},
    "no-abs-pos-no-qkv-bias": {"use_abs_pos": False, "qkv_bias": False},
    "window-0-all-global": {"window_size": 0},
}


@pytest.mark.parametrize("name", CONFIGS)
def test_encoder_matches_reference(name):
    check_against_reference(sam_config(**CONFIGS[name]))


def test_encoder_every_isa(isa):
    check_against_reference(sam_config(), batch=1)


def test_other_image_size_resizes_positions_and_tables():
    # a 128 px model (grid 8) run at 176 px (grid 11): the absolute positions resized
    # bicubically, the global block's rel-pos tables (15 rows) linearly to 21 rows; windows
    # of 3 pad 11 to 12
    check_against_reference(sam_config(), size=176)
    # and smaller: 96 px, grid 6, tables 15 -> 11 rows
    check_against_reference(sam_config(), size=96, batch=1)


def test_non_square_image():
    # 128 x 176 px (grid 8 x 11): the positions resized to 8 x 11, the global block's
    # height table kept (15 rows), its width table resized to 21; windows of 3 pad 8 x 11 to
    # 9 x 12
    c = sam_config()
    w = encoder_weights(c)
    x = np.random.default_rng(2).standard_normal((1, 3, 128, 176), dtype=np.float32)
    got = SamImageEncoder(w, c.vision)(x)
    want = ref.sam_image_encoder({k: v.astype(np.float64) for k, v in w.items()}, c.vision,
                                 x.astype(np.float64))
    assert got.shape == (1, 32, 8, 11)
    np.testing.assert_allclose(got, want, rtol=0, atol=EMBED_ATOL)


def test_thread_invariant():
    c = sam_config()
    enc = SamImageEncoder(encoder_weights(c), c.vision)
    x = pixels(c, batch=1)
    assert_thread_invariant(lambda: enc(x))


# -- rel-pos helpers --------------------------------------------------------------------------

@pytest.mark.parametrize("q,k,length", [(4, 4, 7), (4, 4, 15), (8, 8, 5), (3, 6, 11),
                                        (6, 3, 11), (5, 5, 9)])
def test_get_rel_pos_matches_reference(q, k, length):
    table = np.random.default_rng(q * 100 + length).standard_normal((length, 6))
    got = get_rel_pos(q, k, table.astype(np.float32))
    want = ref.rel_pos_embeddings(q, k, table)
    assert got.shape == (q, k, 6)
    # one linear interpolation: two taps, |error| <= 2 * 2^-24 * max|t|, plus the float32
    # rounding of the table itself
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(table).max())


def test_resize_table_matches_torch():
    torch = pytest.importorskip("torch")
    table = np.random.default_rng(0).standard_normal((15, 8)).astype(np.float32)
    for length in (21, 11, 127, 15):
        want = torch.nn.functional.interpolate(
            torch.from_numpy(table).T[None], size=length, mode="linear").numpy()[0].T
        # the float32 source coordinate s = (i + 0.5) L / length - 0.5 (< L) is rounded
        # differently by the two (each within ~2 ulp(L) = L 2^-22); the tap weights f, 1 - f
        # move by that, the output by |t1 - t0| <= 2 max|t| times it, plus the products'
        # rounding
        tol = 2 * np.abs(table).max() * (15 * 2.0**-22 + 2.0**-23)
        np.testing.assert_allclose(resize_table(table, length), want, rtol=0, atol=tol)


def test_rel_pos_terms_match_einsum():
    rng = np.random.default_rng(3)
    h, w, c, heads, b = 5, 4, 8, 3, 2
    tables = RelPosTables(rng.standard_normal((9, c)).astype(np.float32),
                          rng.standard_normal((7, c)).astype(np.float32))
    # q as the encoder sees it: a strided view of the qkv output
    qkv = rng.standard_normal((b, h * w, 3, heads, c)).astype(np.float32)
    q = qkv[:, :, 0].transpose(0, 2, 1, 3)
    rel_h, rel_w = tables.terms(q, h, w)
    rh, rw = get_rel_pos(h, h, tables.table_h), get_rel_pos(w, w, tables.table_w)
    q5 = q.reshape(b, heads, h, w, c).astype(np.float64)
    want_h = np.einsum("bnyxc,ykc->bnyxk", q5, rh).reshape(b, heads, h * w, h)
    want_w = np.einsum("bnyxc,xkc->bnyxk", q5, rw).reshape(b, heads, h * w, w)
    # dot products of length 8 of O(1) terms: ~1e-6
    np.testing.assert_allclose(rel_h, want_h, rtol=0, atol=1e-5)
    np.testing.assert_allclose(rel_w, want_w, rtol=0, atol=1e-5)


# -- transformers -----------------------------------------------------------------------------

def hf_vision_encoder(config, weights):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf = transformers.SamConfig(**{k: v for k, v in config.to_dict().items()
                                   if k.endswith("_config")})
    model = transformers.SamModel(hf).eval()
    state = {"vision_encoder." + k: torch.from_numpy(v) for k, v in weights.items()}
    missing = model.load_state_dict(state, strict=False)
    assert not [k for k in missing.missing_keys if k.startswith("vision_encoder.")]
    assert not missing.unexpected_keys
    return torch, model.vision_encoder


@pytest.mark.parametrize("name", ["padded-windows", "three-heads", "no-abs-pos-no-qkv-bias",
                                  "slimsam-like"])
def test_encoder_matches_transformers(name):
    # slimsam-like: a pruned width whose head dim (44 / 4 = 11) is odd, mlp_dim given
    # explicitly, as SlimSAM's configs do
    vision = CONFIGS.get(name) or {"hidden_size": 44, "num_attention_heads": 4, "mlp_dim": 70}
    c = sam_config(**vision)
    w = encoder_weights(c)
    torch, hf = hf_vision_encoder(c, w)
    x = pixels(c)
    with torch.no_grad():
        want = hf(torch.from_numpy(x)).last_hidden_state.numpy()
    got = SamImageEncoder(w, c.vision)(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=TORCH_ATOL)


# -- bad input, bad weights -------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_encoder():
    c = sam_config()
    return SamImageEncoder(encoder_weights(c), c.vision)


@pytest.mark.parametrize("x,kind,words", [
    (np.zeros((1, 3, 128, 128)), TypeError, "float32"),
    ([[0.0]], TypeError, "numpy array"),
    (np.zeros((3, 128, 128), np.float32), ValueError, "(batch, 3, height, width)"),
    (np.zeros((1, 4, 128, 128), np.float32), ValueError, "(batch, 3, height, width)"),
    (np.zeros((1, 3, 120, 128), np.float32), ValueError, "multiple of the patch size 16"),
    (np.zeros((1, 3, 8, 8), np.float32), ValueError, "multiple of the patch size"),
    (np.zeros((0, 3, 128, 128), np.float32), ValueError, "no image"),
])
def test_bad_pixels(tiny_encoder, x, kind, words):
    with pytest.raises(kind, match=words.replace("(", r"\(").replace(")", r"\)")):
        tiny_encoder(x)


def test_strided_pixels(tiny_encoder):
    x = pixels(sam_config(), batch=2)
    wide = np.zeros((2, 3, 128, 256), np.float32)
    wide[..., ::2] = x
    np.testing.assert_array_equal(tiny_encoder(wide[..., ::2]), tiny_encoder(x))


def test_bad_weights():
    c = sam_config()
    w = encoder_weights(c)
    with pytest.raises(ValueError, match="missing tensor 'layers.1.attn.rel_pos_h'"):
        SamImageEncoder({k: v for k, v in w.items() if k != "layers.1.attn.rel_pos_h"}, c.vision)
    bad = dict(w, **{"layers.0.attn.rel_pos_w": np.zeros((7, 16), np.float32)})
    with pytest.raises(ValueError, match=r"'layers.0.attn.rel_pos_w' has shape \(7, 16\), "
                                         r"expected \(5, 16\)"):
        SamImageEncoder(bad, c.vision)
    with pytest.raises(ValueError, match="unexpected tensor.*'layers.0.attn.extra'"):
        SamImageEncoder(dict(w, **{"layers.0.attn.extra": np.zeros(1, np.float32)}), c.vision)
    with pytest.raises(TypeError, match="SamVisionConfig"):
        SamImageEncoder(w, c)
