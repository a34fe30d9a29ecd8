"""The Vision Transformer's cost: patch embedding (a p x p stride-p convolution), the
[CLS] (and DeiT's distillation) token and the position embeddings, the pre-norm blocks over
T = prefix + (H / p)(W / p) tokens — attention quadratic in T, so in the pixel count squared —
the final LayerNorm, the pooler (ViTModel checkpoints) and the classifier on the prefix
token(s)."""
from __future__ import annotations

from .layers import ADD_FLOPS, ACTIVATION_FLOPS, Tally, activation_kind
from .transformer import Stack, add_stack


def vit_stack(c) -> Stack:
    return Stack(hidden=c.hidden_size, layers=c.num_hidden_layers,
                 heads=c.num_attention_heads, kv_heads=c.num_attention_heads,
                 head_dim=c.hidden_size // c.num_attention_heads, inter=c.intermediate_size,
                 activation=activation_kind(c.hidden_act), qkv_bias=c.qkv_bias, causal=False)


def vit_tokens(c, image_size: int) -> int:
    """Tokens of an image_size x image_size input: the prefix tokens and one per patch."""
    ph, pw = c.patch_hw
    return c.num_prefix_tokens + (image_size // ph) * (image_size // pw)


def vit_cost(t: Tally, c, *, batch: int, image_size: int, model=None) -> None:
    """Adds a ViT forward at ``image_size`` pixels square. The heads: from the loaded
    ``model`` when given, else as the checkpoint schema lists them by default (a classifier of
    num_labels rows, two with DeiT's distillation token; no pooler)."""
    from ..models.vit.schema import num_positions
    s = vit_stack(c)
    d = s.hidden
    ph, pw = c.patch_hw
    grid = (image_size // ph, image_size // pw)
    tokens = c.num_prefix_tokens + grid[0] * grid[1]
    t.rows = batch * tokens
    t.conv("patch_embed", batch, c.num_channels, d, (ph, pw), (image_size, image_size), grid)
    # the prefix tokens and the position table are parameters; the positions are added
    # (bicubically resized first at another size than the training grid's: not counted)
    t.params += c.num_prefix_tokens * d + num_positions(c) * d
    t.elementwise("embeddings", t.rows * d, ADD_FLOPS, read=2, written=1)
    t.activation(t.rows * d)
    add_stack(t, s, batch=batch, tokens=tokens, context=0, decode=False)
    t.norm("norms", "layer", d)
    if model is not None:
        pooler, heads = model.pooler is not None, len(model.heads)
    else:
        pooler = False
        heads = (2 if c.num_prefix_tokens == 2 else 1) if c.num_labels > 0 else 0
    if pooler:
        t.linear("pooler", d, c.pooler_output_size, bias=True, rows=batch)
        t.elementwise("activation", batch * c.pooler_output_size, ACTIVATION_FLOPS["tanh"])
    for _ in range(heads):
        t.linear("classifier", d, c.num_labels, bias=True, rows=batch)
