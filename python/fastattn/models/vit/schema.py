"""The tensors of a ViT checkpoint in either layout: the one list the builder takes its tensors
from and fastattn.testing writes random checkpoints from.

    Hugging Face (ViTModel / ViTForImageClassification, DeiT*)    timm (VisionTransformer)
    {p}embeddings.cls_token                 (1, 1, D)              cls_token
    {p}embeddings.distillation_token        (1, 1, D)   DeiT       dist_token
    {p}embeddings.position_embeddings       (1, T, D)              pos_embed
    {p}embeddings.patch_embeddings.projection (D, C, ph, pw)       patch_embed.proj
    {p}encoder.layer.N.layernorm_before                            blocks.N.norm1
    {p}encoder.layer.N.attention.attention.{query,key,value}       blocks.N.attn.qkv (3D, D)
    {p}encoder.layer.N.attention.output.dense                      blocks.N.attn.proj
    {p}encoder.layer.N.layernorm_after                             blocks.N.norm2
    {p}encoder.layer.N.intermediate.dense   (I, D)                 blocks.N.mlp.fc1
    {p}encoder.layer.N.output.dense         (D, I)                 blocks.N.mlp.fc2
    {p}layernorm                                                   norm
    {p}pooler.dense                         (P, D)     ViTModel    -
    classifier                              (labels, D)            head
    cls_classifier, distillation_classifier            DeiT teacher  head, head_dist

T = num_prefix_tokens + the patches of the training grid; p = "vit." / "deit." or "" (ViTModel).
"""
from __future__ import annotations

from .config import ViTConfig

HF_PREFIXES = ("vit.", "deit.")


def vit_tensor_shapes(config, *, prefix: str | None = None, pooler: bool = False,
                      classifier: bool = True,
                      distillation_head: bool | None = None) -> dict[str, tuple[int, ...]]:
    """The tensors of a ViT checkpoint, name -> shape, in checkpoint order; the layout is
    ``config.layout`` ("hf" or "timm").

    ``config``: a config.json dict (either layout) or a ViTConfig. Hugging Face layout:
    ``prefix`` "vit." / "deit." for the *ForImageClassification classes (the default when
    ``classifier``), "" for ViTModel; ``pooler`` lists ViTModel's pooler. ``classifier``: the
    head (num_labels rows): ``classifier`` (``head`` in timm). ``distillation_head`` (default:
    with DeiT's distillation token) lists instead the two heads of
    DeiTForImageClassificationWithTeacher, ``cls_classifier`` and ``distillation_classifier``
    (``head`` and ``head_dist`` in timm, always both there). For writing random checkpoints (tests, benchmarks): what the builder reads."""
    c = ViTConfig.of(config)
    if c.layout == "timm":
        return _timm_shapes(c, classifier)
    if prefix is None:
        prefix = ("deit." if c.model_type == "deit" else "vit.") if classifier else ""
    d, inter, labels = c.hidden_size, c.intermediate_size, c.num_labels
    shapes, dense, norm = _shape_table(d)

    e = prefix + "embeddings."
    shapes[e + "cls_token"] = (1, 1, d)
    if c.num_prefix_tokens == 2:
        shapes[e + "distillation_token"] = (1, 1, d)
    shapes[e + "position_embeddings"] = (1, num_positions(c), d)
    ph, pw = c.patch_hw
    shapes[e + "patch_embeddings.projection.weight"] = (d, c.num_channels, ph, pw)
    shapes[e + "patch_embeddings.projection.bias"] = (d,)
    for layer in range(c.num_hidden_layers):
        p = f"{prefix}encoder.layer.{layer}."
        for name in ("query", "key", "value"):
            dense(p + f"attention.attention.{name}", d, d, bias=c.qkv_bias)
        dense(p + "attention.output.dense", d, d)
        dense(p + "intermediate.dense", inter, d)
        dense(p + "output.dense", d, inter)
        norm(p + "layernorm_before")
        norm(p + "layernorm_after")
    norm(prefix + "layernorm")
    if pooler:
        dense(prefix + "pooler.dense", c.pooler_output_size, d)
    if distillation_head is None:
        distillation_head = c.num_prefix_tokens == 2
    if classifier:
        if distillation_head:
            dense("cls_classifier", labels, d)
            dense("distillation_classifier", labels, d)
        else:
            dense("classifier", labels, d)
    return shapes


def _timm_shapes(c: ViTConfig, head: bool) -> dict[str, tuple[int, ...]]:
    d, inter = c.hidden_size, c.intermediate_size
    shapes, dense, norm = _shape_table(d)

    shapes["cls_token"] = (1, 1, d)
    if c.num_prefix_tokens == 2:
        shapes["dist_token"] = (1, 1, d)
    shapes["pos_embed"] = (1, num_positions(c), d)
    ph, pw = c.patch_hw
    shapes["patch_embed.proj.weight"] = (d, c.num_channels, ph, pw)
    shapes["patch_embed.proj.bias"] = (d,)
    for layer in range(c.num_hidden_layers):
        p = f"blocks.{layer}."
        norm(p + "norm1")
        dense(p + "attn.qkv", 3 * d, d, bias=c.qkv_bias)
        dense(p + "attn.proj", d, d)
        norm(p + "norm2")
        dense(p + "mlp.fc1", inter, d)
        dense(p + "mlp.fc2", d, inter)
    norm("norm")
    if head and c.num_labels > 0:   # timm's num_classes 0: no head (nn.Identity)
        dense("head", c.num_labels, d)
        if c.num_prefix_tokens == 2:
            dense("head_dist", c.num_labels, d)
    return shapes


def num_positions(c: ViTConfig) -> int:
    """Rows of the position embeddings: the prefix tokens' and one per patch of the grid
    image_size was cut into."""
    gh, gw = c.grid
    return c.num_prefix_tokens + gh * gw


def _shape_table(d: int):
    """An empty {name: shape} table and its two writers: dense(name, out, in, bias=True)
    (a Linear's weight and bias) and norm(name) (a LayerNorm of width d)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def dense(name, out, inp, bias=True):
        shapes[name + ".weight"] = (out, inp)
        if bias:
            shapes[name + ".bias"] = (out,)

    def norm(name):
        shapes[name + ".weight"] = (d,)
        shapes[name + ".bias"] = (d,)

    return shapes, dense, norm
