"""SAM's image encoder (ViTDet + neck) written from the equations with the other references,
in any float dtype (the tests run it in float64 on the model's weights). Weights: a dict of
Hugging Face names without the "vision_encoder." prefix; config: a SamVisionConfig.

Written deliberately unlike the fast path (models/sam/image_encoder.py): windows cut and
pasted back one by one with explicit padding, the relative-position bias materialised as the
(L, L) matrix of each window from explicit offset tables, the tables resized by the linear
interpolation formula itself, the 1x1 conv as a conv.
"""
import math

import numpy as np

from ..activation import activate
from ..conv import conv2d
from ..norm import layer_norm
from ..resample import interpolate
from ..softmax import softmax
from .vit import vit_patch_embeddings


def resize_linear(table, length):
    """(L, C) -> (length, C), torch's linear interpolation with align_corners=False:
    out[i] = (1 - f) t[i0] + f t[min(i0 + 1, L - 1)], s = max((i + 0.5) L / length - 0.5, 0),
    i0 = floor(s), f = s - i0."""
    n = table.shape[0]
    if n == length:
        return table
    out = np.empty((length,) + table.shape[1:], table.dtype)
    for i in range(length):
        s = max((i + 0.5) * n / length - 0.5, 0.0)
        i0 = min(int(math.floor(s)), n - 1)
        f = s - i0
        out[i] = (1 - f) * table[i0] + f * table[min(i0 + 1, n - 1)]
    return out


def rel_pos_embeddings(q_size, k_size, table):
    """R[i, j] = resized[floor(i max(k/q, 1) - j max(q/k, 1) + (k - 1) max(q/k, 1))], the table
    resized to 2 max(q, k) - 1 rows: the embedding of query i's offset to key j along one
    axis. Returns (q_size, k_size, C)."""
    resized = resize_linear(table, 2 * max(q_size, k_size) - 1)
    sq, sk = max(k_size / q_size, 1.0), max(q_size / k_size, 1.0)
    f = np.float32   # float32 products, as torch computes them on float32 tensors
    idx = np.array([[int(f(i) * f(sq) - f(j) * f(sk) + f((k_size - 1) * sk))
                     for j in range(k_size)] for i in range(q_size)])
    return resized[idx]


def rel_pos_bias(q, table_h, table_w, h, w):
    """The decomposed bias of one grid's queries q (H, h w, C) over its own keys:
    bias[n, (y, x), (y', x')] = q . Rh[y, y'] + q . Rw[x, x']  -> (H, h w, h w)."""
    rh = rel_pos_embeddings(h, h, table_h)            # (h, h, C)
    rw = rel_pos_embeddings(w, w, table_w)            # (w, w, C)
    heads, _, c = q.shape
    q4 = q.reshape(heads, h, w, c)
    term_h = np.einsum("nyxc,ykc->nyxk", q4, rh)      # (H, h, w, h)
    term_w = np.einsum("nyxc,xkc->nyxk", q4, rw)      # (H, h, w, w)
    bias = term_h[:, :, :, :, None] + term_w[:, :, :, None, :]
    return bias.reshape(heads, h * w, h * w)


def grid_attention(t, p, config, tokens):
    """Multi-head self-attention of one grid's tokens (h, w, D) with the rel-pos bias;
    returns (h, w, D) after the output projection."""
    h, w, d = tokens.shape
    heads = config.num_attention_heads
    c = d // heads
    x = tokens.reshape(h * w, d)
    qkv = x @ t[p + "attn.qkv.weight"].T
    if p + "attn.qkv.bias" in t:
        qkv = qkv + t[p + "attn.qkv.bias"]
    q, k, v = (qkv[:, i * d:(i + 1) * d].reshape(h * w, heads, c).transpose(1, 0, 2)
               for i in range(3))
    scores = (q * c ** -0.5) @ k.transpose(0, 2, 1)
    if config.use_rel_pos:     # from the unscaled q
        scores = scores + rel_pos_bias(q, t[p + "attn.rel_pos_h"], t[p + "attn.rel_pos_w"], h, w)
    out = softmax(scores, axis=-1) @ v                  # (H, h w, c)
    out = out.transpose(1, 0, 2).reshape(h * w, d)
    return (out @ t[p + "attn.proj.weight"].T + t[p + "attn.proj.bias"]).reshape(h, w, d)


def sam_image_encoder(t, config, pixel_values):
    """pixel_values (B, C, S, S) -> image embeddings (B, C_out, S / p, S / p)."""
    c = config
    x = np.asarray(pixel_values)
    b = x.shape[0]
    gh, gw = x.shape[2] // c.patch_size, x.shape[3] // c.patch_size
    d, eps = c.hidden_size, c.layer_norm_eps
    tokens = vit_patch_embeddings(x, t["patch_embed.projection.weight"],
                                  t["patch_embed.projection.bias"]).reshape(b, gh, gw, d)
    if c.use_abs_pos:
        pos = t["pos_embed"]                                    # (1, g, g, D)
        if pos.shape[1:3] != (gh, gw):                          # ViTDet's get_abs_pos
            pos = interpolate(pos.transpose(0, 3, 1, 2), size=(gh, gw), mode="bicubic",
                              align_corners=False).transpose(0, 2, 3, 1)
        tokens = tokens + pos

    for i in range(c.num_hidden_layers):
        p = f"layers.{i}."
        ws = 0 if i in c.global_attn_indexes else c.window_size
        n1 = layer_norm(tokens, t[p + "layer_norm1.weight"], t[p + "layer_norm1.bias"], eps)
        attn = np.empty_like(n1)
        for j in range(b):
            if ws == 0:
                attn[j] = grid_attention(t, p, c, n1[j])
                continue
            # pad with zeros to a multiple of the window (bottom / right), attend within
            # each window, padding included and unmasked, then crop
            ph, pw = -(-gh // ws) * ws, -(-gw // ws) * ws
            padded = np.zeros((ph, pw, d), n1.dtype)
            padded[:gh, :gw] = n1[j]
            out = np.empty_like(padded)
            for y in range(0, ph, ws):
                for xx in range(0, pw, ws):
                    out[y:y + ws, xx:xx + ws] = grid_attention(
                        t, p, c, padded[y:y + ws, xx:xx + ws])
            attn[j] = out[:gh, :gw]
        tokens = tokens + attn
        n2 = layer_norm(tokens, t[p + "layer_norm2.weight"], t[p + "layer_norm2.bias"], eps)
        hidden = activate(n2 @ t[p + "mlp.lin1.weight"].T + t[p + "mlp.lin1.bias"],
                          c.hidden_act)
        tokens = tokens + hidden @ t[p + "mlp.lin2.weight"].T + t[p + "mlp.lin2.bias"]

    def layer_norm_2d(y, name):     # LayerNorm over the channels of (B, C, h, w), eps 1e-6
        return layer_norm(y.transpose(0, 2, 3, 1), t[name + ".weight"], t[name + ".bias"],
                          1e-6).transpose(0, 3, 1, 2)

    y = conv2d(tokens.transpose(0, 3, 1, 2), t["neck.conv1.weight"])
    y = layer_norm_2d(y, "neck.layer_norm1")
    y = conv2d(y, t["neck.conv2.weight"], padding=1)
    return layer_norm_2d(y, "neck.layer_norm2")
