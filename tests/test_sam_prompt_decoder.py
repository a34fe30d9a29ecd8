"""Segment Anything's prompt encoder and mask decoder (models/sam/prompt_encoder.py,
mask_decoder.py, two_way.py) against the float64 NumPy reference
(fastattn.reference.models.sam_decoder) and, when installed, transformers' SamModel; the
separate-projection attention layer (layers.Attention.separate) against the reference
attention; padded point sets; bad input.

Tiny random configs: a 128 x 128 input, an 8 x 8 embedding grid, width 64, 2 heads (head
width 16 in the cross-attentions, so prompts of fewer than 16 tokens take the folded
image -> token attention and longer ones the textbook one).

Tolerance (decoder outputs): the plain float32 evaluation of the same formulas (the reference
run on float32 arrays) measures the rounding error of this network with these weights; fastattn
reorders the sums (blocked matmuls, the flash-style softmax, the folded attention), allowed
4x that error (flash-attention's rule is 2x for one op; the decoder chains ~40 ops whose
errors need not align), plus a floor of 2^-20 of the output's magnitude (a few float32 ulps)
for outputs the float32 reference happens to get almost exactly."""
import numpy as np
import pytest

from fastattn import reference
from fastattn.layers import Attention, Linear
from fastattn.models.sam.config import (SamConfig, SamDecoderConfig, SamPromptConfig,
                                        SamVisionConfig)
from fastattn.models.sam.mask_decoder import SamMaskDecoder
from fastattn.models.sam.prompt_encoder import SamPromptEncoder
from fastattn.reference.models import sam_decoder as ref

C, G, S = 64, 8, 128
CONFIG = SamConfig(
    vision=SamVisionConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           mlp_dim=64, image_size=S, window_size=4, global_attn_indexes=(0,),
                           output_channels=C),
    prompt=SamPromptConfig(hidden_size=C, image_size=S, image_embedding_size=G,
                           mask_input_channels=8),
    decoder=SamDecoderConfig(hidden_size=C, mlp_dim=128, num_hidden_layers=2,
                             num_attention_heads=2, iou_head_hidden_dim=48))


def random_weights(config: SamConfig, seed: int = 0):
    """(prompt encoder, mask decoder) tensors under Hugging Face's names (without the
    component prefix), at scales where every path matters: linear / conv weights
    N(0, 1 / fan_in), biases N(0, 0.1^2), norms 1 + N(0, 0.1^2), embeddings and the Fourier
    matrix N(0, 1) (the official checkpoints' Fourier scale)."""
    rng = np.random.default_rng(seed)
    p, d = config.prompt, config.decoder
    c, m4, m = p.hidden_size, p.mask_input_channels // 4, p.mask_input_channels
    inner, tokens = d.hidden_size // d.attention_downsample_rate, d.num_multimask_outputs + 1
    shapes_p = {"shared_embedding.positional_embedding": (2, c // 2),
                "mask_embed.conv1.weight": (m4, 1, 2, 2), "mask_embed.conv1.bias": (m4,),
                "mask_embed.conv2.weight": (m, m4, 2, 2), "mask_embed.conv2.bias": (m,),
                "mask_embed.conv3.weight": (c, m, 1, 1), "mask_embed.conv3.bias": (c,),
                "mask_embed.layer_norm1.weight": (m4,), "mask_embed.layer_norm1.bias": (m4,),
                "mask_embed.layer_norm2.weight": (m,), "mask_embed.layer_norm2.bias": (m,),
                "no_mask_embed.weight": (1, c), "not_a_point_embed.weight": (1, c)}
    shapes_p.update({f"point_embed.{i}.weight": (1, c) for i in range(4)})
    shapes_d = {"iou_token.weight": (1, c), "mask_tokens.weight": (tokens, c)}

    def linear(name, n_in, n_out):
        shapes_d[name + ".weight"], shapes_d[name + ".bias"] = (n_out, n_in), (n_out,)

    def norm(name, n):
        shapes_d[name + ".weight"], shapes_d[name + ".bias"] = (n,), (n,)

    def attn(name, width):
        for x in "qkv":
            linear(f"{name}.{x}_proj", c, width)
        linear(name + ".out_proj", width, c)

    for i in range(d.num_hidden_layers):
        L = f"transformer.layers.{i}."
        attn(L + "self_attn", c)
        attn(L + "cross_attn_token_to_image", inner)
        attn(L + "cross_attn_image_to_token", inner)
        linear(L + "mlp.lin1", c, d.mlp_dim)
        linear(L + "mlp.lin2", d.mlp_dim, c)
        for j in range(1, 5):
            norm(L + f"layer_norm{j}", c)
    attn("transformer.final_attn_token_to_image", inner)
    norm("transformer.layer_norm_final_attn", c)
    shapes_d.update({"upscale_conv1.weight": (c, c // 4, 2, 2), "upscale_conv1.bias": (c // 4,),
                     "upscale_conv2.weight": (c // 4, c // 8, 2, 2),
                     "upscale_conv2.bias": (c // 8,)})
    norm("upscale_layer_norm", c // 4)
    for i in range(tokens):
        linear(f"output_hypernetworks_mlps.{i}.proj_in", c, c)
        linear(f"output_hypernetworks_mlps.{i}.layers.0", c, c)
        linear(f"output_hypernetworks_mlps.{i}.proj_out", c, c // 8)
    h = d.iou_head_hidden_dim
    linear("iou_prediction_head.proj_in", c, h)
    for j in range(d.iou_head_depth - 2):
        linear(f"iou_prediction_head.layers.{j}", h, h)
    linear("iou_prediction_head.proj_out", h, tokens)

    def draw(name, shape):
        x = rng.standard_normal(shape)
        if "norm" in name:
            x = (1.0 if name.endswith("weight") else 0.0) + 0.1 * x
        elif name.endswith("bias"):
            x = 0.1 * x
        elif len(shape) >= 2 and ("proj" in name or "lin" in name or "conv" in name
                                  or "layers" in name):
            x = x / np.sqrt(np.prod(shape[1:]) if "upscale" not in name else shape[0])
        return x.astype(np.float32)

    return ({k: draw(k, s) for k, s in shapes_p.items()},
            {k: draw(k, s) for k, s in shapes_d.items()})


PW, DW = random_weights(CONFIG)
ENCODER = SamPromptEncoder(PW, CONFIG.prompt)
DECODER = SamMaskDecoder(DW, CONFIG.decoder)
PW64 = {k: v.astype(np.float64) for k, v in PW.items()}
DW64 = {k: v.astype(np.float64) for k, v in DW.items()}
RNG = np.random.default_rng(1)
EMBEDDING = RNG.standard_normal((1, C, G, G)).astype(np.float32)


def prompts(case: str, seed: int = 2):
    """(points, labels, boxes, masks) of a named case, P = 3 prompts."""
    rng = np.random.default_rng(seed)
    p = 3
    points = rng.uniform(0, S - 1, (p, 2, 2)).astype(np.float32)
    labels = np.array([[1, 0], [1, 1], [0, 1]])
    corners = np.sort(rng.uniform(0, S - 1, (p, 2, 2)), axis=1)      # x1 <= x2, y1 <= y2
    boxes = corners.reshape(p, 4).astype(np.float32)
    masks = (4 * rng.standard_normal((p, 1, 4 * G, 4 * G))).astype(np.float32)
    return {"points": (points, labels, None, None),
            "box": (None, None, boxes, None),
            "points+box": (points, labels, boxes, None),
            "mask+points": (points, labels, None, masks),
            "mask": (None, None, None, masks),
            "many points": (rng.uniform(0, S - 1, (p, 12, 2)),
                            rng.integers(0, 2, (p, 12)), None, None),
            # every label: absent (-10), not-a-point (-1), negative, positive, box corners
            "every label": (points, np.array([[1, -10], [-1, 0], [2, 3]]), None, None)}[case]


CASES = ["points", "box", "points+box", "mask+points", "mask", "many points", "every label"]


def run(points, labels, boxes, masks, multimask, embedding=EMBEDDING):
    sparse, dense, valid = ENCODER(points, labels, boxes, masks)
    return DECODER(embedding, ENCODER.image_positional_embeddings(), sparse, dense, multimask,
                   valid)


def run_reference(points, labels, boxes, masks, multimask, dtype=np.float64,
                  embedding=EMBEDDING):
    pw, dw = (PW64, DW64) if dtype == np.float64 else (PW, DW)
    cast = (lambda x: None if x is None else np.asarray(x).astype(dtype))
    sparse, dense, valid = ref.prompt_encoder(pw, CONFIG.prompt, cast(points), labels,
                                              cast(boxes), cast(masks))
    pe = ref.image_positional_embeddings(pw, CONFIG.prompt).astype(dtype)
    return ref.mask_decoder(dw, CONFIG.decoder, embedding.astype(dtype), pe,
                            sparse.astype(dtype), dense.astype(dtype), multimask, valid)


def tolerance(exact, plain32):
    """4x the plain float32 evaluation's error, floored at 2^-20 of the magnitude."""
    return 4 * np.abs(plain32 - exact).max() + 2.0 ** -20 * np.abs(exact).max()


def check_against_reference(out, args, multimask):
    exact = run_reference(*args, multimask)
    plain = run_reference(*args, multimask, dtype=np.float32)
    for got, e, p, name in zip(out, exact, plain, ("masks", "iou")):
        assert got.dtype == np.float32 and got.shape == e.shape, name
        tol = tolerance(e, p)
        err = np.abs(got - e).max()
        assert err <= tol, f"{name}: error {err:.3g} > tolerance {tol:.3g}"
    return exact


# ------------------------------------------------------------------------------ prompt encoder
@pytest.mark.parametrize("case", CASES)
def test_prompt_encoder_matches_reference(case):
    points, labels, boxes, masks = prompts(case)
    sparse, dense, valid = ENCODER(points, labels, boxes, masks)
    r_sparse, r_dense, r_valid = ref.prompt_encoder(PW64, CONFIG.prompt, points, labels, boxes,
                                                    None if masks is None else
                                                    masks.astype(np.float64))
    assert sparse.dtype == dense.dtype == np.float32
    np.testing.assert_array_equal(valid, r_valid)
    # the Fourier features are computed in float64 and rounded once; each sparse entry is a
    # sum of two float32-rounded terms of magnitude <= ~4: 2 ulps of 4
    np.testing.assert_allclose(sparse, r_sparse, rtol=0, atol=2 * 2.0 ** -21)
    if masks is None:
        np.testing.assert_array_equal(dense, r_dense.astype(np.float32))
    else:
        plain = ref.embed_masks(PW, CONFIG.prompt, masks)
        np.testing.assert_allclose(dense, r_dense, rtol=0, atol=tolerance(r_dense, plain))
    n_sparse = {"points": 3, "box": 2, "points+box": 4, "mask+points": 3, "mask": 0,
                "many points": 13, "every label": 3}[case]
    assert sparse.shape == (3, n_sparse, C) and dense.shape == (3, C, G, G)


def test_image_positional_embeddings_match_reference():
    pe = ENCODER.image_positional_embeddings()
    assert pe.shape == (1, C, G, G) and pe.dtype == np.float32
    # float64 features rounded once to float32 (|pe| <= 1): half an ulp of 1
    np.testing.assert_allclose(pe, ref.image_positional_embeddings(PW64, CONFIG.prompt),
                               rtol=0, atol=2.0 ** -24)


# ------------------------------------------------------------------------------ mask decoder
@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_decoder_matches_reference(case, multimask):
    args = prompts(case)
    masks, iou = run(*args, multimask)
    m = 3 if multimask else 1
    assert masks.shape == (3, m, 4 * G, 4 * G) and iou.shape == (3, m)
    check_against_reference((masks, iou), args, multimask)


def test_per_prompt_image_embeddings():
    """image_embeddings (P, C, h, w) (one image per prompt) and a dense embedding copied per
    prompt (no stride-0 broadcast: every block projects per prompt) give the same answers."""
    points, labels, _, _ = prompts("points")
    emb = RNG.standard_normal((3, C, G, G)).astype(np.float32)
    sparse, dense, valid = ENCODER(points, labels)
    pe = ENCODER.image_positional_embeddings()
    got = DECODER(emb, pe, sparse, np.array(dense), True, valid)
    exact = [run_reference(points[i:i + 1], labels[i:i + 1], None, None, True,
                           embedding=emb[i:i + 1]) for i in range(3)]
    plain = [run_reference(points[i:i + 1], labels[i:i + 1], None, None, True,
                           dtype=np.float32, embedding=emb[i:i + 1]) for i in range(3)]
    for j in range(2):
        e = np.concatenate([x[j] for x in exact])
        p = np.concatenate([x[j] for x in plain])
        assert np.abs(got[j] - e).max() <= tolerance(e, p)
    shared = DECODER(EMBEDDING, pe, sparse, dense, True, valid)
    copied = DECODER(EMBEDDING, pe, sparse, np.array(dense), True, valid)
    exact = run_reference(points, labels, None, None, True)
    plain = run_reference(points, labels, None, None, True, dtype=np.float32)
    for j in range(2):
        tol = tolerance(exact[j], plain[j])
        assert np.abs(shared[j] - exact[j]).max() <= tol
        assert np.abs(copied[j] - exact[j]).max() <= tol


@pytest.mark.parametrize("with_box", [False, True])
def test_padded_point_sets_equal_each_set_alone(with_box):
    """Point sets of 1, 2 and 4 points padded with label -10 to one (3, 4) batch decode as
    each set alone (the reference confirms its own padding semantics in float64 too)."""
    rng = np.random.default_rng(5)
    sets = [rng.uniform(0, S - 1, (n, 2)) for n in (1, 2, 4)]
    set_labels = [rng.integers(0, 2, n) for n in (1, 2, 4)]
    points = np.zeros((3, 4, 2))
    labels = np.full((3, 4), -10)
    for i, (pts, lab) in enumerate(zip(sets, set_labels)):
        points[i, :len(pts)], labels[i, :len(pts)] = pts, lab
    boxes = np.array([[10, 20, 60, 90], [0, 0, 127, 127], [30, 5, 31, 100]], np.float32) \
        if with_box else None
    masks, iou = run(points, labels, boxes, None, True)
    for i in range(3):
        b = None if boxes is None else boxes[i:i + 1]
        alone = (sets[i][None], set_labels[i][None], b, None)
        exact = run_reference(*alone, True)
        padded_exact = run_reference(points[i:i + 1], labels[i:i + 1], b, None, True)
        for e, pe_ in zip(exact, padded_exact):      # float64: only rounding differs
            np.testing.assert_allclose(pe_, e, rtol=0, atol=1e-12 * np.abs(e).max())
        check_against_reference((masks[i:i + 1], iou[i:i + 1]), alone, True)


# ------------------------------------------------------------------------------ transformers
def _hf_model():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.SamConfig(**CONFIG.to_dict())
    torch.manual_seed(0)
    model = transformers.SamModel(hf_config).eval()
    state = model.state_dict()
    names = {k for k in state if k.startswith(("prompt_encoder.", "mask_decoder."))}
    ours = {"prompt_encoder." + k for k in PW} | {"mask_decoder." + k for k in DW}
    assert names == ours, "the test's weight names are transformers' names"
    for k, v in PW.items():
        state["prompt_encoder." + k] = torch.tensor(v)
    for k, v in DW.items():
        state["mask_decoder." + k] = torch.tensor(v)
    state["shared_image_embedding.positional_embedding"] = torch.tensor(
        PW["shared_embedding.positional_embedding"])
    model.load_state_dict(state)
    return torch, model


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("case", ["points", "box", "points+box", "mask+points"])
def test_equals_transformers(case, multimask):
    """transformers' SamModel takes (images B, point_batch, N, 2): the P prompts of one image
    are its point batch (1, P, N, 2); with mask inputs (one per image there) each prompt is
    an image of its own, (P, 1, N, 2)."""
    torch, model = _hf_model()
    points, labels, boxes, masks = prompts(case)
    t = (lambda x: None if x is None else torch.tensor(np.asarray(x)))
    emb = EMBEDDING
    if masks is None:
        kw = {"input_points": t(None if points is None else points[None]),
              "input_labels": t(None if labels is None else labels[None]),
              "input_boxes": t(None if boxes is None else boxes[None])}
    else:
        emb = np.repeat(EMBEDDING, 3, axis=0)
        kw = {"input_points": t(points[:, None]), "input_labels": t(labels[:, None]),
              "input_masks": t(masks)}
    with torch.no_grad():
        out = model(image_embeddings=torch.tensor(emb), multimask_output=multimask, **kw)
    hf_masks = out.pred_masks.numpy().reshape(3, -1, 4 * G, 4 * G)
    hf_iou = out.iou_scores.numpy().reshape(3, -1)
    got = run(points, labels, boxes, masks, multimask)
    exact = run_reference(points, labels, boxes, masks, multimask)
    plain = run_reference(points, labels, boxes, masks, multimask, dtype=np.float32)
    for g, h, e, p in zip(got, (hf_masks, hf_iou), exact, plain):
        assert g.shape == h.shape
        # both float32: each within its own rounding of the float64 answer
        tol = tolerance(e, p) + np.abs(h - e).max()
        assert np.abs(g - h).max() <= tol


# ------------------------------------------------------------------------------ attention layer
def _separate_layer(rng, c_q, c_kv, heads, d, c_o):
    def lin(n_in, n_out):
        return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32), \
            (0.1 * rng.standard_normal(n_out)).astype(np.float32)
    ws = {"q": lin(c_q, heads * d), "k": lin(c_kv, heads * d), "v": lin(c_kv, heads * d),
          "o": lin(heads * d, c_o)}
    layer = Attention.separate(*(Linear(*ws[x]) for x in "qkvo"), heads, d)
    return layer, ws


@pytest.mark.parametrize("lq,lk,bq,bk", [(40, 5, 2, 2), (40, 5, 1, 3), (6, 30, 2, 2),
                                         (6, 30, 2, 1), (20, 20, 2, 2)])
@pytest.mark.parametrize("fold", [None, False])
def test_separate_attention_layer(lq, lk, bq, bk, fold):
    """W_o attention(W_q query, W_k key, W_v value) + residual with a key mask; query and key
    batches broadcast when one is 1; fold=None folds the projections into the few keys when
    Lk < D (here 5 < 8), fold=False never."""
    rng = np.random.default_rng(lq * lk + bq)
    heads, d, c_q, c_kv = 3, 8, 12, 10
    layer, ws = _separate_layer(rng, c_q, c_kv, heads, d, c_q)
    b = max(bq, bk)
    query = rng.standard_normal((bq, lq, c_q)).astype(np.float32)
    key = rng.standard_normal((bk, lk, c_kv)).astype(np.float32)
    value = rng.standard_normal((bk, lk, c_kv)).astype(np.float32)
    residual = rng.standard_normal((b, lq, c_q)).astype(np.float32)
    mask = rng.random((b, lk)) < 0.7
    mask[:, 0] = True
    mask[-1] = False             # a batch row with no key: attention gives zeros, out = b_o

    def proj(x, name):
        w, bias = ws[name]
        return x.astype(np.float64) @ w.T.astype(np.float64) + bias

    def heads_of(x):
        return np.broadcast_to(x, (b,) + x.shape[1:]).reshape(b, -1, heads, d).transpose(0, 2, 1, 3)

    att = reference.attention(heads_of(proj(query, "q")), heads_of(proj(key, "k")),
                              heads_of(proj(value, "v")), mask=mask[:, None, None, :])
    exact = proj(att.transpose(0, 2, 1, 3).reshape(b, lq, heads * d), "o") + residual
    got = layer(query, key=key, value=value, key_mask=mask, residual=residual, fold=fold)
    assert got.shape == (b, lq, c_q) and got.dtype == np.float32
    # float32 sums of at most max(C, H D, Lk) = 24 products of magnitude <~ 4 per stage, 3
    # stages: 3 * 24 * 4 * 2^-24, doubled for the softmax's exp / divide
    np.testing.assert_allclose(got, exact, rtol=0, atol=2 * 3 * 24 * 4 * 2.0 ** -24 * 4)


def test_separate_attention_layer_refuses_misuse():
    rng = np.random.default_rng(0)
    layer, ws = _separate_layer(rng, 8, 8, 2, 4, 8)
    x = rng.standard_normal((1, 3, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="key and value together"):
        layer(x, key=x)
    with pytest.raises(ValueError, match="key= and value= instead of context"):
        layer(x, context=x)
    fused = Attention(Linear(np.zeros((24, 8), np.float32)), Linear(np.zeros((8, 8), np.float32)),
                      2, 2, 4, causal=False)
    with pytest.raises(ValueError, match="separate q, k and v"):
        fused(x, key=x, value=x)
    with pytest.raises(ValueError, match="the k projection has 6 outputs, expected 8"):
        Attention.separate(Linear(*ws["q"]), Linear(np.zeros((6, 8), np.float32)),
                           Linear(*ws["v"]), Linear(*ws["o"]), 2, 4)
    # self-attention through a separate layer: key = value = x
    np.testing.assert_allclose(layer(x), layer(x, key=x, value=x), rtol=0, atol=0)


# ------------------------------------------------------------------------------ bad input
def _raises(exc, words, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_prompt_encoder_refuses_bad_input():
    pts = np.zeros((2, 3, 2), np.float32)
    lab = np.ones((2, 3), np.int64)
    _raises(ValueError, ["labels", "-10", "got [5]"], ENCODER, pts, np.full((2, 3), 5))
    _raises(ValueError, ["labels", "got [-2, 4]"], ENCODER, pts, np.array([[1, -2, 4]] * 2))
    _raises(TypeError, ["labels", "integer", "float64"], ENCODER, pts, lab.astype(np.float64))
    _raises(ValueError, ["labels", "(2, 3)", "(2, 2)"], ENCODER, pts, lab[:, :2])
    _raises(ValueError, ["points", "(P, N, 2)", "(2, 3, 3)"], ENCODER,
            np.zeros((2, 3, 3), np.float32), lab)
    _raises(TypeError, ["points", "list"], ENCODER, [[[0, 0]]], lab[:1, :1])
    _raises(ValueError, ["points and labels"], ENCODER, pts, None)
    _raises(ValueError, ["points", "finite", "nan"], ENCODER, np.full((2, 3, 2), np.nan), lab)
    _raises(ValueError, ["boxes", "(P, 4)", "(2, 3)"], ENCODER, boxes=np.zeros((2, 3)))
    _raises(ValueError, ["boxes", "x1 <= x2", "box 1"], ENCODER,
            boxes=np.array([[0, 0, 5, 5], [9, 0, 5, 5]], np.float32))
    _raises(ValueError, ["prompt counts", "points 2", "boxes 1"], ENCODER, pts, lab,
            np.zeros((1, 4), np.float32))
    _raises(TypeError, ["masks", "float32", "float64"], ENCODER,
            masks=np.zeros((1, 1, 4 * G, 4 * G)))
    _raises(ValueError, ["masks", f"(P, 1, {4 * G}, {4 * G})", "(1, 1, 16, 16)"], ENCODER,
            masks=np.zeros((1, 1, 16, 16), np.float32))


def test_mask_decoder_refuses_bad_input():
    sparse, dense, valid = ENCODER(np.zeros((2, 1, 2)), np.ones((2, 1), np.int64))
    pe = ENCODER.image_positional_embeddings()
    _raises(TypeError, ["image_embeddings", "float32", "float64"], DECODER,
            EMBEDDING.astype(np.float64), pe, sparse, dense, True)
    _raises(ValueError, ["image_embeddings", "(1 or 2, 64, 8, 8)", "(3, 64, 8, 8)"], DECODER,
            np.repeat(EMBEDDING, 3, axis=0), pe, sparse, dense, True)
    _raises(ValueError, ["sparse", f"(P, n, {C})", "(2, 2, 32)"], DECODER, EMBEDDING, pe,
            sparse[..., :32], dense, True)
    _raises(ValueError, ["dense", "(2, 64, h, w)", "(1, 64, 8, 8)"], DECODER, EMBEDDING, pe,
            sparse, dense[:1], True)
    _raises(ValueError, ["image_pe", "(1, 64, 8, 8)", "(1, 64, 4, 4)"], DECODER, EMBEDDING,
            pe[:, :, :4, :4], sparse, dense, True)
    _raises(TypeError, ["multimask_output", "bool", "int"], DECODER, EMBEDDING, pe, sparse,
            dense, 1)
    _raises(TypeError, ["sparse_valid", "bool", "int64"], DECODER, EMBEDDING, pe, sparse, dense,
            True, valid.astype(np.int64))
    _raises(ValueError, ["sparse_valid", "(2, 2)", "(2, 1)"], DECODER, EMBEDDING, pe, sparse,
            dense, True, valid[:, :1])


def test_builders_refuse_wrong_tensors():
    bad = dict(DW)
    bad["iou_token.weight"] = np.zeros((1, C + 1), np.float32)
    _raises(ValueError, ["iou_token.weight", "(1, 65)", "(1, 64)"], SamMaskDecoder, bad,
            CONFIG.decoder)
    _raises(ValueError, ["unexpected", "extra.weight"], SamMaskDecoder,
            {**DW, "extra.weight": np.zeros(1, np.float32)}, CONFIG.decoder)
    missing = {k: v for k, v in PW.items() if k != "not_a_point_embed.weight"}
    _raises(ValueError, ["missing", "not_a_point_embed.weight"], SamPromptEncoder, missing,
            CONFIG.prompt)
