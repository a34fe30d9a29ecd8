"""The Vision Transformer's forward pass written from the equations with the other references
(any float dtype: the tests run it in float64 on the model's weights). Weights use Hugging Face
names (ViTModel, ViTForImageClassification, DeiT*; with or without the "vit." / "deit." prefix);
the tests write timm checkpoints from the same weights."""
import numpy as np

from ..activation import activate
from ..attention import attention
from ..norm import layer_norm
from .layout import merge_heads, split_heads


def _prefix(w):
    return next((p for p in ("vit.", "deit.") if any(k.startswith(p) for k in w)), "")


def vit_patch_embeddings(x, weight, bias):
    """The patch embedding, a convolution with kernel = stride = p written as its sum:
    e[b, i, j, :] = sum_{c, u, v} W[:, c, u, v] x[b, c, i p + u, j p + v] + bias, for x (B, C,
    H, W) and W (D, C, ph, pw); returns (B, gh * gw, D), patches in row-major grid order."""
    b, c, h, w_ = x.shape
    d, _, ph, pw = weight.shape
    gh, gw = h // ph, w_ // pw
    grid = x[:, :, :gh * ph, :gw * pw].reshape(b, c, gh, ph, gw, pw)
    e = np.einsum("bciujv,dcuv->bijd", grid, weight) + bias
    return e.reshape(b, gh * gw, d)


def vit_position_embeddings(positions, num_prefix, grid, new_grid):
    """transformers' interpolate_pos_encoding: the patch rows of positions (T, D), a grid
    (gh, gw) of D-channel pixels, resized bicubically (align_corners=False, torch's
    interpolate with a size) to new_grid; the prefix rows unchanged."""
    if tuple(new_grid) == tuple(grid):
        return positions
    from ..interpolate import interpolate
    d = positions.shape[-1]
    image = positions[num_prefix:].reshape(1, grid[0], grid[1], d).transpose(0, 3, 1, 2)
    resized = interpolate(image, size=tuple(new_grid), mode="bicubic", align_corners=False)
    return np.concatenate([positions[:num_prefix],
                           resized[0].reshape(d, -1).T])


def vit(w, config, pixel_values, return_all=False):
    """(logits or None, last hidden states after the final norm (B, T, D)); return_all adds
    hidden_states (the embeddings, then each layer's output: num_hidden_layers + 1 arrays),
    attentions (each layer's probabilities (B, H, T, T)) and the pooler output (or None).

    Pre-norm blocks with LayerNorm eps config.layer_norm_eps:
      h = x + W_o attention(LN1(x) W_q, LN1(x) W_k, LN1(x) W_v),  x = h + W2 act(W1 LN2(h))."""
    c = config
    p = _prefix(w)
    e = p + "embeddings."
    x = np.asarray(pixel_values)
    patches = vit_patch_embeddings(x, w[e + "patch_embeddings.projection.weight"],
                                   w[e + "patch_embeddings.projection.bias"])
    b, d = x.shape[0], patches.shape[-1]
    prefix = [w[e + "cls_token"].reshape(1, d)]
    if e + "distillation_token" in w:
        prefix.append(w[e + "distillation_token"].reshape(1, d))
    n_prefix = len(prefix)
    ph, pw = c.patch_hw
    positions = vit_position_embeddings(w[e + "position_embeddings"].reshape(-1, d), n_prefix,
                                        c.grid, (x.shape[2] // ph, x.shape[3] // pw))
    tokens = np.concatenate([np.broadcast_to(np.concatenate(prefix), (b, n_prefix, d)),
                             patches], axis=1)
    x = tokens + positions
    eps, heads = c.layer_norm_eps, c.num_attention_heads
    hidden, attentions = [x], []

    def dense(x, name):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    def norm(x, name):
        return layer_norm(x, w[name + ".weight"], w[name + ".bias"], eps)

    for i in range(c.num_hidden_layers):
        h = f"{p}encoder.layer.{i}."
        a_in = norm(x, h + "layernorm_before")
        q, k, v = (split_heads(dense(a_in, h + f"attention.attention.{n}"), heads)
                   for n in ("query", "key", "value"))
        o, probs = attention(q, k, v, return_weights=True)
        x = x + dense(merge_heads(o), h + "attention.output.dense")
        f = activate(dense(norm(x, h + "layernorm_after"), h + "intermediate.dense"),
                     c.hidden_act)
        x = x + dense(f, h + "output.dense")
        hidden.append(x)
        attentions.append(probs)
    z = norm(x, p + "layernorm")
    if "classifier.weight" in w:
        logits = dense(z[:, 0], "classifier")
    elif "cls_classifier.weight" in w:   # DeiT with teacher: the two heads averaged
        logits = (dense(z[:, 0], "cls_classifier") + dense(z[:, 1], "distillation_classifier")) / 2
    else:
        logits = None
    if not return_all:
        return logits, z
    pooled = (np.tanh(dense(z[:, 0], p + "pooler.dense")) if p + "pooler.dense.weight" in w
              else None)
    return logits, z, hidden, attentions, pooled
