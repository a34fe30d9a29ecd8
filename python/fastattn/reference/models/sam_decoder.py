"""Segment Anything's prompt encoder, two-way transformer and mask decoder written from the
equations with the other references (any float dtype: the tests run them in float64).

Weights use Hugging Face's SamModel names without the component prefix: the prompt encoder's
("shared_embedding.positional_embedding", "point_embed.0.weight", ...) and the mask decoder's
("iou_token.weight", "transformer.layers.0.self_attn.q_proj.weight", ...). Configs are the
SamPromptConfig / SamDecoderConfig of fastattn.models.sam.config (only their fields are read).

Prompt layout (one image, P prompts): points (P, N, 2) as (x, y) pixels of the S x S model
input, labels (P, N) in {-10, -1, 0, 1, 2, 3}, boxes (P, 4) as (x1, y1, x2, y2), masks
(P, 1, 4h, 4w) logits. Label -10 marks an absent point (padding of a batched point set): it
embeds to zeros and is never attended as a key, so a padded set gives its result alone.
"""
import math

import numpy as np

from ..activation import gelu, relu
from ..attention import attention
from ..conv import conv2d, conv_transpose2d
from ..norm import layer_norm
from .layout import merge_heads, split_heads

ABSENT = -10            # a padding point of a batched point set
NOT_A_POINT = -1        # the reference's padding point (and its own "no point" label)
# eps of the norms the configs do not set: torch's nn.LayerNorm default (the two-way
# transformer's final norm, in the official code and in transformers alike) and LayerNorm2d's
FINAL_NORM_EPS = 1e-5
LAYER_NORM_2D_EPS = 1e-6


# ------------------------------------------------------------------------------ prompt encoder
def fourier(coords01, gaussian):
    """Random-Fourier features of coords (..., 2) in [0, 1]^2 as (x, y):
    [sin(2 pi c G), cos(2 pi c G)], c = 2 coords - 1, G (2, C/2) -> (..., C)."""
    angles = 2 * math.pi * ((2 * coords01 - 1) @ gaussian)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)


def image_positional_embeddings(w, config):
    """(1, C, h, w): the encoding of the embedding grid's cell centres ((j + 0.5) / w,
    (i + 0.5) / h)."""
    g = config.image_embedding_size
    centres = (np.arange(g) + 0.5) / g
    xy = np.stack(np.meshgrid(centres, centres, indexing="xy"), axis=-1)   # (h, w, 2): (x, y)
    pe = fourier(xy, w["shared_embedding.positional_embedding"])           # (h, w, C)
    return pe.transpose(2, 0, 1)[None]


def embed_points(w, config, points, labels, pad):
    """(P, N [+1], C): pe(point + 0.5) + the label's embedding; label -1 -> the not-a-point
    embedding alone, -10 -> zeros; pad appends the (0, 0) label -1 point (no box given)."""
    points = points + 0.5                                   # pixel centres
    if pad:
        p = points.shape[0]
        points = np.concatenate([points, np.zeros((p, 1, 2))], axis=1)
        labels = np.concatenate([labels, np.full((p, 1), NOT_A_POINT)], axis=1)
    pe = fourier(points / config.image_size, w["shared_embedding.positional_embedding"])
    out = np.zeros(pe.shape)
    for i in range(labels.shape[0]):
        for j in range(labels.shape[1]):
            label = labels[i, j]
            if label == NOT_A_POINT:
                out[i, j] = w["not_a_point_embed.weight"][0]
            elif label != ABSENT:       # 0 negative, 1 positive, 2 / 3 box corners
                out[i, j] = pe[i, j] + w[f"point_embed.{label}.weight"][0]
    return out, labels != ABSENT


def embed_boxes(w, config, boxes):
    """(P, 2, C): the two corners (x1, y1), (x2, y2) + 0.5, encoded, plus the top-left (2) and
    bottom-right (3) corner embeddings."""
    corners = (boxes.reshape(-1, 2, 2) + 0.5) / config.image_size
    pe = fourier(corners, w["shared_embedding.positional_embedding"])
    return pe + np.stack([w["point_embed.2.weight"][0], w["point_embed.3.weight"][0]])


def layer_norm_2d(x, weight, bias, eps):
    """LayerNorm over the channels of (P, C, H, W)."""
    return layer_norm(x.transpose(0, 2, 3, 1), weight, bias, eps).transpose(0, 3, 1, 2)


def embed_masks(w, config, masks):
    """(P, 1, 4h, 4w) -> (P, C, h, w): conv 2x2/2 -> LN2d -> GELU -> conv 2x2/2 -> LN2d ->
    GELU -> conv 1x1."""
    eps = config.layer_norm_eps
    x = conv2d(masks, w["mask_embed.conv1.weight"], w["mask_embed.conv1.bias"], stride=2)
    x = gelu(layer_norm_2d(x, w["mask_embed.layer_norm1.weight"],
                           w["mask_embed.layer_norm1.bias"], eps))
    x = conv2d(x, w["mask_embed.conv2.weight"], w["mask_embed.conv2.bias"], stride=2)
    x = gelu(layer_norm_2d(x, w["mask_embed.layer_norm2.weight"],
                           w["mask_embed.layer_norm2.bias"], eps))
    return conv2d(x, w["mask_embed.conv3.weight"], w["mask_embed.conv3.bias"])


def prompt_encoder(w, config, points=None, labels=None, boxes=None, masks=None):
    """(sparse (P, n, C), dense (P, C, h, w), sparse_valid (P, n) bool). sparse: the points
    (with the padding point when there is no box), then the box corners."""
    c, g = config.hidden_size, config.image_embedding_size
    sparse, valid = [], []
    p = next(x.shape[0] for x in (points, boxes, masks, np.zeros((1,))) if x is not None)
    if points is not None:
        e, ok = embed_points(w, config, np.asarray(points, np.float64), np.asarray(labels),
                             pad=boxes is None)
        sparse.append(e)
        valid.append(ok)
    if boxes is not None:
        sparse.append(embed_boxes(w, config, np.asarray(boxes, np.float64)))
        valid.append(np.ones((p, 2), bool))
    sparse = np.concatenate(sparse, axis=1) if sparse else np.zeros((p, 0, c))
    valid = np.concatenate(valid, axis=1) if valid else np.zeros((p, 0), bool)
    if masks is not None:
        dense = embed_masks(w, config, np.asarray(masks, np.float64))
    else:
        dense = np.broadcast_to(w["no_mask_embed.weight"].reshape(1, c, 1, 1), (p, c, g, g))
    return sparse, dense, valid


# ------------------------------------------------------------------------ two-way transformer
def sam_attention(w, name, heads, query, key, value, key_valid=None):
    """out_proj(attention(q_proj(query), k_proj(key), v_proj(value))) at the projections'
    (possibly downsampled) width; key_valid (P, Lk) masks keys out."""
    def proj(x, p):
        return x @ w[f"{name}.{p}_proj.weight"].T + w[f"{name}.{p}_proj.bias"]
    q, k, v = (split_heads(proj(x, p), heads) for x, p in ((query, "q"), (key, "k"),
                                                            (value, "v")))
    mask = None if key_valid is None else key_valid[:, None, None, :]
    return proj(merge_heads(attention(q, k, v, mask=mask)), "out")


def two_way_transformer(w, config, tokens, image, image_pe, token_valid):
    """tokens (P, T, C), image (P, N, C) and image_pe (1, N, C) -> (queries (P, T, C),
    keys (P, N, C)). Per layer i (queries q, keys k, token pe = tokens, image pe = pe):
        q = LN1(q + SelfAttn(q + tok, q + tok, q))     (layer 0: q = LN1(SelfAttn(q, q, q)))
        q = LN2(q + Attn_t2i(q + tok, k + pe, k))
        q = LN3(q + W2 relu(W1 q))
        k = LN4(k + Attn_i2t(k + pe, q + tok, q))
    then q = LN_final(q + Attn_t2i_final(q + tok, k + pe, k)). Absent tokens are masked out
    wherever tokens are keys."""
    heads, eps = config.num_attention_heads, config.layer_norm_eps
    q, k = tokens, image

    def norm(x, name, e=eps):
        return layer_norm(x, w[name + ".weight"], w[name + ".bias"], e)

    for i in range(config.num_hidden_layers):
        L = f"transformer.layers.{i}."
        if i == 0:      # skip_first_layer_pe: no positions and no residual
            q = norm(sam_attention(w, L + "self_attn", heads, q, q, q, token_valid),
                     L + "layer_norm1")
        else:
            qp = q + tokens
            q = norm(q + sam_attention(w, L + "self_attn", heads, qp, qp, q, token_valid),
                     L + "layer_norm1")
        q = norm(q + sam_attention(w, L + "cross_attn_token_to_image", heads, q + tokens,
                                   k + image_pe, k), L + "layer_norm2")
        h = relu(q @ w[L + "mlp.lin1.weight"].T + w[L + "mlp.lin1.bias"])
        q = norm(q + h @ w[L + "mlp.lin2.weight"].T + w[L + "mlp.lin2.bias"], L + "layer_norm3")
        k = norm(k + sam_attention(w, L + "cross_attn_image_to_token", heads, k + image_pe,
                                   q + tokens, q, token_valid), L + "layer_norm4")
    q = norm(q + sam_attention(w, "transformer.final_attn_token_to_image", heads, q + tokens,
                               k + image_pe, k), "transformer.layer_norm_final_attn",
             FINAL_NORM_EPS)
    return q, k


# ----------------------------------------------------------------------------- mask decoder
def feed_forward(w, name, x, depth):
    """proj_out(relu(... relu(proj_in(x)))) with depth - 2 hidden layers; no sigmoid."""
    x = relu(x @ w[name + ".proj_in.weight"].T + w[name + ".proj_in.bias"])
    for j in range(depth - 2):
        x = relu(x @ w[f"{name}.layers.{j}.weight"].T + w[f"{name}.layers.{j}.bias"])
    return x @ w[name + ".proj_out.weight"].T + w[name + ".proj_out.bias"]


def mask_decoder(w, config, image_embeddings, image_pe, sparse, dense, multimask_output,
                 sparse_valid=None):
    """image_embeddings (1 or P, C, h, w), image_pe (1, C, h, w), sparse (P, n, C), dense
    (P, C, h, w) -> (low-res mask logits (P, M, 4h, 4w), IoU predictions (P, M)); M =
    num_multimask_outputs (masks 1..) when multimask_output else 1 (mask 0)."""
    p, n, c = sparse.shape
    _, _, h, wd = dense.shape
    m = config.num_multimask_outputs + 1
    # tokens: [IoU token, m mask tokens, the prompt's sparse embeddings]
    out_tokens = np.concatenate([w["iou_token.weight"], w["mask_tokens.weight"]])
    tokens = np.concatenate([np.broadcast_to(out_tokens, (p, 1 + m, c)), sparse], axis=1)
    valid = np.ones((p, 1 + m + n), bool)
    if sparse_valid is not None:
        valid[:, 1 + m:] = sparse_valid
    src = np.broadcast_to(image_embeddings + dense, (p, c, h, wd))     # dense added per prompt
    image = src.reshape(p, c, h * wd).transpose(0, 2, 1)               # (P, N, C)
    pe = image_pe.reshape(1, c, h * wd).transpose(0, 2, 1)
    q, k = two_way_transformer(w, config, tokens, image, pe, valid)
    iou_out, mask_out = q[:, 0], q[:, 1:1 + m]
    # upscale: conv_transpose 2x2/2 -> LN2d -> GELU -> conv_transpose 2x2/2 -> GELU
    x = k.transpose(0, 2, 1).reshape(p, c, h, wd)
    x = conv_transpose2d(x, w["upscale_conv1.weight"], w["upscale_conv1.bias"], stride=2)
    x = gelu(layer_norm_2d(x, w["upscale_layer_norm.weight"], w["upscale_layer_norm.bias"],
                           LAYER_NORM_2D_EPS))
    x = gelu(conv_transpose2d(x, w["upscale_conv2.weight"], w["upscale_conv2.bias"], stride=2))
    # hypernetworks: mask token i -> (C/8,) weights of a per-pixel linear map of x
    hyper = np.stack([feed_forward(w, f"output_hypernetworks_mlps.{i}", mask_out[:, i], 3)
                      for i in range(m)], axis=1)                         # (P, m, C/8)
    masks = np.einsum("pmc,pchw->pmhw", hyper, x)
    iou = feed_forward(w, "iou_prediction_head", iou_out, config.iou_head_depth)
    sl = slice(1, None) if multimask_output else slice(0, 1)
    return masks[:, sl], iou[:, sl]
