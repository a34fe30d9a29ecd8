"""The tensors of a SAM checkpoint (Hugging Face SamModel names, the canonical ones) and the
translation of the official segment-anything state-dict names to them.

    Hugging Face SamModel                               official segment-anything
    vision_encoder.patch_embed.projection   (D, 3, p, p)  image_encoder.patch_embed.proj
    vision_encoder.pos_embed            (1, g, g, D)      image_encoder.pos_embed
    vision_encoder.layers.N.layer_norm1 / layer_norm2     image_encoder.blocks.N.norm1 / norm2
    vision_encoder.layers.N.attn.qkv    (3D, D)           (same under blocks.N)
    vision_encoder.layers.N.attn.proj / rel_pos_h / rel_pos_w, mlp.lin1 / mlp.lin2
    vision_encoder.neck.conv1 / layer_norm1 / conv2 / layer_norm2   image_encoder.neck.0/1/2/3
    shared_image_embedding.positional_embedding (2, C/2)  prompt_encoder.pe_layer.
    prompt_encoder.shared_embedding.positional_embedding    positional_encoding_gaussian_matrix
    prompt_encoder.point_embed.N (1, C)                   prompt_encoder.point_embeddings.N
    prompt_encoder.not_a_point_embed, no_mask_embed       (same)
    prompt_encoder.mask_embed.conv1 / layer_norm1 / conv2 / layer_norm2 / conv3
                                                          prompt_encoder.mask_downscaling.0/1/3/4/6
    mask_decoder.iou_token, mask_tokens                   (same)
    mask_decoder.transformer.layers.N.{self_attn, cross_attn_token_to_image,
        cross_attn_image_to_token}.{q,k,v,out}_proj, mlp.lin1 / lin2   (same)
    mask_decoder.transformer.layers.N.layer_norm1..4      ...layers.N.norm1..4
    mask_decoder.transformer.final_attn_token_to_image    (same)
    mask_decoder.transformer.layer_norm_final_attn        ...transformer.norm_final_attn
    mask_decoder.upscale_conv1 / upscale_layer_norm / upscale_conv2
                                                          mask_decoder.output_upscaling.0/1/3
    mask_decoder.output_hypernetworks_mlps.N.proj_in / layers.M / proj_out
    mask_decoder.iou_prediction_head.proj_in / layers.M / proj_out
                                                          ...layers.0 / layers.M+1 / layers.last

transformers' convert_sam_to_hf.py documents the same mapping. The one random-Fourier matrix
is two tied names in Hugging Face's SamModel; transformers saves only
shared_image_embedding.positional_embedding, so that is the name listed here (SamModel reads
either, or both when equal, and hands it to the prompt encoder as shared_embedding.
positional_embedding).
"""
from __future__ import annotations

import re

from .config import SamConfig, SamDecoderConfig, SamPromptConfig, SamVisionConfig

COMPONENTS = ("vision_encoder.", "prompt_encoder.", "mask_decoder.")
SHARED_PE = "shared_image_embedding.positional_embedding"
PROMPT_PE = "prompt_encoder.shared_embedding.positional_embedding"
OFFICIAL_PE = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"


def sam_tensor_shapes(config) -> dict[str, tuple[int, ...]]:
    """Every tensor of a Hugging Face SamModel checkpoint, name -> shape, in checkpoint order
    (what the builder reads and fastattn.testing writes). ``config``: a SamConfig or a
    config.json dict."""
    c = SamConfig.of(config)
    shapes: dict[str, tuple[int, ...]] = {SHARED_PE: (2, c.prompt.hidden_size // 2)}
    for prefix, table in (("vision_encoder.", vision_shapes(c.vision)),
                          ("prompt_encoder.", prompt_shapes(c.prompt)),
                          ("mask_decoder.", decoder_shapes(c.decoder))):
        shapes.update({prefix + k: s for k, s in table.items() if prefix + k != PROMPT_PE})
    return shapes


def _writers(shapes: dict):
    def dense(name, out, inp, bias=True):
        shapes[name + ".weight"] = (out, inp)
        if bias:
            shapes[name + ".bias"] = (out,)

    def norm(name, width):
        shapes[name + ".weight"] = (width,)
        shapes[name + ".bias"] = (width,)

    return dense, norm


def _part(config, kind, attribute):
    """A sub-config: ``config`` itself when it is one, else that part of a SamConfig (or of a
    config.json dict)."""
    return config if isinstance(config, kind) else getattr(SamConfig.of(config), attribute)


def vision_shapes(config) -> dict[str, tuple[int, ...]]:
    """The image encoder's tensors, names without the "vision_encoder." prefix. ``config``:
    a SamVisionConfig (or a SamConfig)."""
    v = _part(config, SamVisionConfig, "vision")
    d, g, p = v.hidden_size, v.grid, v.patch_size
    shapes: dict[str, tuple[int, ...]] = {}
    dense, norm = _writers(shapes)
    if v.use_abs_pos:
        shapes["pos_embed"] = (1, g, g, d)
    shapes["patch_embed.projection.weight"] = (d, v.num_channels, p, p)
    shapes["patch_embed.projection.bias"] = (d,)
    for i in range(v.num_hidden_layers):
        b = f"layers.{i}."
        norm(b + "layer_norm1", d)
        if v.use_rel_pos:
            side = v.window_of(i) or g        # a window's side, or the whole grid's
            shapes[b + "attn.rel_pos_h"] = (2 * side - 1, v.head_dim)
            shapes[b + "attn.rel_pos_w"] = (2 * side - 1, v.head_dim)
        dense(b + "attn.qkv", 3 * d, d, bias=v.qkv_bias)
        dense(b + "attn.proj", d, d)
        norm(b + "layer_norm2", d)
        dense(b + "mlp.lin1", v.mlp_dim, d)
        dense(b + "mlp.lin2", d, v.mlp_dim)
    o = v.output_channels
    shapes["neck.conv1.weight"] = (o, d, 1, 1)
    norm("neck.layer_norm1", o)
    shapes["neck.conv2.weight"] = (o, o, 3, 3)
    norm("neck.layer_norm2", o)
    return shapes


def prompt_shapes(config) -> dict[str, tuple[int, ...]]:
    """The prompt encoder's tensors, names without the "prompt_encoder." prefix. ``config``:
    a SamPromptConfig (or a SamConfig)."""
    p = _part(config, SamPromptConfig, "prompt")
    c, m = p.hidden_size, p.mask_input_channels
    shapes: dict[str, tuple[int, ...]] = {"shared_embedding.positional_embedding": (2, c // 2)}
    dense, norm = _writers(shapes)
    shapes["mask_embed.conv1.weight"] = (m // 4, 1, 2, 2)
    shapes["mask_embed.conv1.bias"] = (m // 4,)
    shapes["mask_embed.conv2.weight"] = (m, m // 4, 2, 2)
    shapes["mask_embed.conv2.bias"] = (m,)
    shapes["mask_embed.conv3.weight"] = (c, m, 1, 1)
    shapes["mask_embed.conv3.bias"] = (c,)
    norm("mask_embed.layer_norm1", m // 4)
    norm("mask_embed.layer_norm2", m)
    shapes["no_mask_embed.weight"] = (1, c)
    for i in range(p.num_point_embeddings):
        shapes[f"point_embed.{i}.weight"] = (1, c)
    shapes["not_a_point_embed.weight"] = (1, c)
    return shapes


def decoder_shapes(config) -> dict[str, tuple[int, ...]]:
    """The mask decoder's tensors, names without the "mask_decoder." prefix. ``config``: a
    SamDecoderConfig (or a SamConfig)."""
    d = _part(config, SamDecoderConfig, "decoder")
    c, inner = d.hidden_size, d.hidden_size // d.attention_downsample_rate
    tokens = d.num_multimask_outputs + 1
    shapes: dict[str, tuple[int, ...]] = {"iou_token.weight": (1, c),
                                          "mask_tokens.weight": (tokens, c)}
    dense, norm = _writers(shapes)

    def attention(name, width):
        for x in ("q", "k", "v"):
            dense(f"{name}.{x}_proj", width, c)
        dense(f"{name}.out_proj", c, width)

    for i in range(d.num_hidden_layers):
        b = f"transformer.layers.{i}."
        attention(b + "self_attn", c)        # self-attention keeps the full width
        norm(b + "layer_norm1", c)
        attention(b + "cross_attn_token_to_image", inner)
        norm(b + "layer_norm2", c)
        dense(b + "mlp.lin1", d.mlp_dim, c)
        dense(b + "mlp.lin2", c, d.mlp_dim)
        norm(b + "layer_norm3", c)
        norm(b + "layer_norm4", c)
        attention(b + "cross_attn_image_to_token", inner)
    attention("transformer.final_attn_token_to_image", inner)
    norm("transformer.layer_norm_final_attn", c)
    shapes["upscale_conv1.weight"] = (c, c // 4, 2, 2)     # ConvTranspose2d: (in, out, kh, kw)
    shapes["upscale_conv1.bias"] = (c // 4,)
    shapes["upscale_conv2.weight"] = (c // 4, c // 8, 2, 2)
    shapes["upscale_conv2.bias"] = (c // 8,)
    norm("upscale_layer_norm", c // 4)

    def mlp(name, hidden, out, depth):
        dense(name + ".proj_in", hidden, c)
        dense(name + ".proj_out", out, hidden)
        for j in range(depth - 2):
            dense(f"{name}.layers.{j}", hidden, hidden)

    for i in range(tokens):
        mlp(f"output_hypernetworks_mlps.{i}", c, c // 8, 3)
    mlp("iou_prediction_head", d.iou_head_hidden_dim, tokens, d.iou_head_depth)
    return shapes


# -- official names ---------------------------------------------------------------------------

# official -> Hugging Face, applied in order to each name (after the "layers.N" of the MLPs,
# which need the depth: see _mlp_layers). A name no rule touches is the same in both.
_RULES = [
    (r"^image_encoder\.", "vision_encoder."),
    (r"^vision_encoder\.patch_embed\.proj\.", "vision_encoder.patch_embed.projection."),
    (r"^vision_encoder\.blocks\.(\d+)\.norm([12])\.", r"vision_encoder.layers.\1.layer_norm\2."),
    (r"^vision_encoder\.blocks\.", "vision_encoder.layers."),
    (r"^vision_encoder\.neck\.0\.", "vision_encoder.neck.conv1."),
    (r"^vision_encoder\.neck\.1\.", "vision_encoder.neck.layer_norm1."),
    (r"^vision_encoder\.neck\.2\.", "vision_encoder.neck.conv2."),
    (r"^vision_encoder\.neck\.3\.", "vision_encoder.neck.layer_norm2."),
    (r"^prompt_encoder\.point_embeddings\.", "prompt_encoder.point_embed."),
    (r"^prompt_encoder\.mask_downscaling\.0\.", "prompt_encoder.mask_embed.conv1."),
    (r"^prompt_encoder\.mask_downscaling\.1\.", "prompt_encoder.mask_embed.layer_norm1."),
    (r"^prompt_encoder\.mask_downscaling\.3\.", "prompt_encoder.mask_embed.conv2."),
    (r"^prompt_encoder\.mask_downscaling\.4\.", "prompt_encoder.mask_embed.layer_norm2."),
    (r"^prompt_encoder\.mask_downscaling\.6\.", "prompt_encoder.mask_embed.conv3."),
    (r"^(mask_decoder\.transformer\.layers\.\d+)\.norm([1-4])\.", r"\1.layer_norm\2."),
    (r"^mask_decoder\.transformer\.norm_final_attn\.",
     "mask_decoder.transformer.layer_norm_final_attn."),
    (r"^mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"^mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"^mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
]
_RULES = [(re.compile(a), b) for a, b in _RULES]
_MLP = re.compile(r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))"
                  r"\.layers\.(\d+)\.(weight|bias)$")


def official_to_hf(official: dict, config: SamConfig) -> dict:
    """The official state dict (name -> array) under Hugging Face names: every name
    translated, the random-Fourier matrix as shared_image_embedding's. Names no rule knows
    keep their official spelling (the builder then refuses them by name)."""
    c = SamConfig.of(config)
    out = {}
    origin = {}
    for name, array in official.items():
        hf = SHARED_PE if name == OFFICIAL_PE else _translate(name, c)
        if hf in origin:    # a checkpoint mixing both spellings of one tensor
            raise ValueError(f"checkpoint: tensors {origin[hf]!r} and {name!r} are both "
                             f"{hf!r} (official and Hugging Face names mixed)")
        origin[hf] = name
        out[hf] = array
    return out


def _translate(name: str, c: SamConfig) -> str:
    m = _MLP.match(name)
    if m:   # official MLP(layers.0 .. layers.depth-1) -> proj_in, layers.0 .., proj_out
        base, j, kind = m.group(1), int(m.group(2)), m.group(3)
        depth = (c.decoder.iou_head_depth if base.endswith("iou_prediction_head") else 3)
        if j == 0:
            return f"{base}.proj_in.{kind}"
        if j == depth - 1:
            return f"{base}.proj_out.{kind}"
        return f"{base}.layers.{j - 1}.{kind}"
    for rx, repl in _RULES:
        name = rx.sub(repl, name)
    return name


def hf_to_official(hf: dict, config) -> dict:
    """The inverse of official_to_hf (for writing official-name test checkpoints): Hugging
    Face names -> official names, the tied positional matrix written once."""
    c = SamConfig.of(config)
    names = {_translate(o, c): o for o in official_tensor_names(c)}
    out = {}
    for name, array in hf.items():
        if name in (SHARED_PE, PROMPT_PE):
            out[OFFICIAL_PE] = array
        else:
            out[names[name]] = array
    return out


def official_tensor_names(config) -> list[str]:
    """Every official state-dict name of ``config``'s model (the positional matrix once)."""
    c = SamConfig.of(config)
    names = [_untranslate(name, c) for name in sam_tensor_shapes(c)
             if name not in (SHARED_PE, PROMPT_PE)]
    names.append(OFFICIAL_PE)
    return names


_UNRULES = [
    ("vision_encoder.patch_embed.projection.", "image_encoder.patch_embed.proj."),
    ("vision_encoder.neck.conv1.", "image_encoder.neck.0."),
    ("vision_encoder.neck.layer_norm1.", "image_encoder.neck.1."),
    ("vision_encoder.neck.conv2.", "image_encoder.neck.2."),
    ("vision_encoder.neck.layer_norm2.", "image_encoder.neck.3."),
    ("prompt_encoder.mask_embed.conv1.", "prompt_encoder.mask_downscaling.0."),
    ("prompt_encoder.mask_embed.layer_norm1.", "prompt_encoder.mask_downscaling.1."),
    ("prompt_encoder.mask_embed.conv2.", "prompt_encoder.mask_downscaling.3."),
    ("prompt_encoder.mask_embed.layer_norm2.", "prompt_encoder.mask_downscaling.4."),
    ("prompt_encoder.mask_embed.conv3.", "prompt_encoder.mask_downscaling.6."),
    ("mask_decoder.transformer.layer_norm_final_attn.", "mask_decoder.transformer.norm_final_attn."),
    ("mask_decoder.upscale_conv1.", "mask_decoder.output_upscaling.0."),
    ("mask_decoder.upscale_layer_norm.", "mask_decoder.output_upscaling.1."),
    ("mask_decoder.upscale_conv2.", "mask_decoder.output_upscaling.3."),
]


def _untranslate(name: str, c: SamConfig) -> str:
    """A Hugging Face name's official spelling (the inverse of _translate)."""
    for hf, official in _UNRULES:
        if name.startswith(hf):
            return official + name[len(hf):]
    m = re.match(r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))"
                 r"\.(proj_in|proj_out|layers\.(\d+))\.(weight|bias)$", name)
    if m:
        base, part, j, kind = m.groups()
        depth = c.decoder.iou_head_depth if base.endswith("iou_prediction_head") else 3
        index = 0 if part == "proj_in" else depth - 1 if part == "proj_out" else int(j) + 1
        return f"{base}.layers.{index}.{kind}"
    name = re.sub(r"^vision_encoder\.layers\.(\d+)\.layer_norm([12])\.",
                  r"image_encoder.blocks.\1.norm\2.", name)
    name = re.sub(r"^vision_encoder\.layers\.", "image_encoder.blocks.", name)
    name = re.sub(r"^vision_encoder\.", "image_encoder.", name)
    name = re.sub(r"^(mask_decoder\.transformer\.layers\.\d+)\.layer_norm([1-4])\.",
                  r"\1.norm\2.", name)
    name = re.sub(r"^prompt_encoder\.point_embed\.", "prompt_encoder.point_embeddings.", name)
    return name


def is_official(names) -> bool:
    """Whether a checkpoint's names are the official segment-anything ones."""
    return any(n.startswith("image_encoder.") for n in names)
