"""Segment Anything's cost: the image encoder at ``image_size`` pixels square (``cost(config)``
counts one image through the encoder: what set_image pays once) and, separately, one click
(``sam_click_cost``: the prompt encoder and the mask decoder on a computed embedding, what
every predict pays).

Image encoder, g = S / p grid, R = B g^2 tokens, D the width, I = mlp_dim, H heads of d:

    patch_embed 2 R 3 p^2 D          qkv 2 R D 3D     proj 2 R D^2     mlp 2 R D I x 2
    windowed blocks: each of the B n^2 windows (n = ceil(g / w), the grid padded to n w)
        attends its w^2 tokens, padding included: pairs = B n^2 w^4 per head
    global blocks: pairs = B g^4 per head
    attn_scores, attn_values: 2 d H pairs each
    rel_pos: rel_h, rel_w = q . R: 2 H d (h + w) per query (h, w the keys' grid)
    neck: 1x1 conv 2 R D C, 3x3 conv 2 R 9 C^2, two LayerNorm2d

The windowed and global attention are separate parts (``attn_windowed``, ``attn_global``):
the global blocks' pairs grow with the grid as g^4, the windows' as g^2. The windowed
blocks' qkv, attention and proj run on the zero-padded grid (64 -> 70 for windows of 14:
19.6 % more rows), as the reference and fastattn compute them; their MLP on the g^2 tokens.
"""
from __future__ import annotations

from .dtypes import ACTIVATION_BYTES as A
from .layers import ACTIVATION_FLOPS, ADD_FLOPS, NORM_FLOPS, SOFTMAX_FLOPS, Tally
from .result import Cost


def _attention(t: Tally, part: str, *, heads: int, head_dim: int, queries: int,
               pairs: int) -> None:
    flops = 2.0 * head_dim * heads * pairs
    t.parts.add(part + "_scores", flops=flops,
                activation_bytes=3 * queries * heads * head_dim * A, calls=1)
    t.parts.add("softmax", flops=SOFTMAX_FLOPS * heads * pairs, calls=0)
    t.parts.add(part + "_values", flops=flops, calls=0)


def sam_cost(t: Tally, c, *, batch: int, image_size: int, model=None) -> None:
    """Adds one image encoder forward at ``image_size`` pixels square (module docstring); the
    parameters count the whole checkpoint (prompt encoder and mask decoder included)."""
    from ..models.sam.schema import sam_tensor_shapes
    v = c.vision
    d, p, heads, hd = v.hidden_size, v.patch_size, v.num_attention_heads, v.head_dim
    g = image_size // p
    rows = batch * g * g
    t.rows = rows
    t.conv("patch_embed", batch, v.num_channels, d, (p, p), (image_size, image_size), (g, g))
    if v.use_abs_pos:
        t.elementwise("embeddings", rows * d, ADD_FLOPS, read=2, written=1)
    t.activation(rows * d)
    for i in range(v.num_hidden_layers):
        w = v.window_of(i)
        t.norm("norms", "layer", d)
        if w:
            n = -(-g // w)
            padded = batch * n * n * w * w
            t.linear("qkv", d, 3 * d, bias=v.qkv_bias, rows=padded)
            kind, queries, pairs, side = "attn_windowed", padded, batch * n * n * w ** 4, w
        else:
            t.linear("qkv", d, 3 * d, bias=v.qkv_bias)
            kind, queries, pairs, side = "attn_global", rows, batch * g ** 4, g
        if v.use_rel_pos:
            t.parts.add("rel_pos", flops=2.0 * heads * hd * 2 * side * queries,
                        activation_bytes=queries * heads * (hd + 2 * side) * A, matmul=True,
                        calls=2)
        _attention(t, kind, heads=heads, head_dim=hd, queries=queries, pairs=pairs)
        t.linear("proj", d, d, bias=True, rows=queries)
        t.norm("norms", "layer", d)
        t.linear("mlp", d, v.mlp_dim, bias=True)
        t.elementwise("activation", rows * v.mlp_dim, ACTIVATION_FLOPS["gelu"], read=0,
                      written=0, calls=0)
        t.linear("mlp", v.mlp_dim, d, bias=True)
    o = v.output_channels
    t.parts.add("neck", flops=2.0 * rows * (d * o + 9 * o * o),
                weight_bytes=(d * o + 9 * o * o) * t.wb,
                activation_bytes=rows * (d + 3 * o) * A, matmul=True, calls=2)
    t.parts.add("norms", flops=2 * NORM_FLOPS["layer"] * rows * o,
                activation_bytes=4 * rows * o * A, calls=2)
    # every tensor of the checkpoint, not only the encoder's (the rel-pos tables, the neck,
    # the prompt encoder and the mask decoder): replaces what the counters above added
    t.params = sum(_prod(s) for s in sam_tensor_shapes(c).values())


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def sam_click_cost(config, *, points: int = 1, box: bool = False,
                   multimask: bool = True) -> Cost:
    """The cost of one click: the prompt encoder (random-Fourier encoding of the points /
    corners; the dense no-mask embedding is a broadcast) and the mask decoder on a computed
    (C, h, w) embedding: the two-way transformer over T = 1 + M' + sparse tokens (M' = the
    num_multimask_outputs + 1 mask tokens) and the h w image tokens, the 2 x 2 transposed-conv
    upscaling to 4h x 4w, the hypernetwork MLPs and the masks' dot products, the IoU head.
    ``config``: a SamConfig (or a model / dict fastattn.analysis resolves)."""
    from .cost import resolve_config
    c, _ = resolve_config(config)
    pd, dd = c.prompt, c.decoder
    C, h = dd.hidden_size, pd.image_embedding_size
    hw = h * h
    sparse = points + (0 if box else 1) + (2 if box else 0)
    tokens = 1 + dd.num_multimask_outputs + 1 + sparse
    inner = C // dd.attention_downsample_rate
    t = Tally(rows=tokens, passes=1, wb=4, kvb=4)
    # prompt encoder: (sparse, 2) @ (2, C/2), sin and cos
    t.parts.add("prompt_encoder", flops=2.0 * sparse * 2 * C // 2 + 2 * sparse * C,
                activation_bytes=sparse * C * A, calls=2)

    def attention(part, q_rows, kv_rows, width, heads):
        t.linear(part, C, width, bias=True, rows=q_rows)
        t.linear(part, C, width, bias=True, rows=kv_rows)
        t.linear(part, C, width, bias=True, rows=kv_rows)
        t.parts.add(part, flops=4.0 * q_rows * kv_rows * width
                    + SOFTMAX_FLOPS * heads * q_rows * kv_rows,
                    activation_bytes=(q_rows + 2 * kv_rows) * width * A, calls=1)
        t.linear(part, width, C, bias=True, rows=q_rows)

    for _ in range(dd.num_hidden_layers):
        attention("token_self_attn", tokens, tokens, C, dd.num_attention_heads)
        attention("token_to_image", tokens, hw, inner, dd.num_attention_heads)
        t.linear("token_mlp", C, dd.mlp_dim, bias=True)
        t.linear("token_mlp", dd.mlp_dim, C, bias=True)
        attention("image_to_token", hw, tokens, inner, dd.num_attention_heads)
        t.parts.add("norms", flops=NORM_FLOPS["layer"] * (3 * tokens + hw) * C,
                    activation_bytes=2 * (3 * tokens + hw) * C * A, calls=4)
    attention("token_to_image", tokens, hw, inner, dd.num_attention_heads)
    # upscaling: ConvTranspose2d k2 s2: C -> C/4 on h x h, C/4 -> C/8 on 2h x 2h
    t.parts.add("upscaling", flops=2.0 * hw * C * (C // 4) * 4 + 2.0 * 4 * hw * (C // 4) *
                (C // 8) * 4, activation_bytes=hw * (C + 4 * C // 4 + 16 * C // 8) * A,
                matmul=True, calls=2)
    masks = (dd.num_multimask_outputs + 1)
    t.parts.add("hypernetworks", flops=masks * 2.0 * (C * C * 2 + C * (C // 8)),
                activation_bytes=masks * C * A, matmul=True, calls=3 * masks)
    shown = dd.num_multimask_outputs if multimask else 1
    t.parts.add("mask_products", flops=2.0 * masks * (C // 8) * 16 * hw,
                activation_bytes=(16 * hw * (C // 8) + shown * 16 * hw) * A, matmul=True,
                calls=1)
    t.parts.add("iou_head", flops=2.0 * (C * dd.iou_head_hidden_dim
                                         + dd.iou_head_hidden_dim ** 2
                                         * max(dd.iou_head_depth - 2, 0)
                                         + dd.iou_head_hidden_dim * masks),
                matmul=True, calls=dd.iou_head_depth)
    return Cost(model_type="sam", mode="click", batch=1, seq_len=tokens, context=0,
                weights_dtype="float32", kv_dtype="float32", params=0,
                parts=t.parts.parts(), weight_memory=0.0, kv_cache_memory=0.0,
                largest_activation=16 * hw * (C // 8) * A, image_size=None)
