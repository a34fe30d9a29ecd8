"""Segment Anything's config: three frozen sub-configs (image encoder, prompt encoder, mask
decoder) in one SamConfig, from either checkpoint layout.

- Hugging Face (config.json, model_type "sam"): ``vision_config``, ``prompt_encoder_config``
  and ``mask_decoder_config`` with transformers' names and defaults (SamVisionConfig's defaults
  are ViT-B's; the decoder's LayerNorm eps 1e-6). SlimSAM checkpoints are the same layout with
  other widths (``mlp_dim`` given explicitly).
- The official segment-anything state dict (sam_vit_b / _l / _h): no config, every size is
  read from the tensor shapes (``SamConfig.from_official_shapes``). Two values the shapes do
  not carry come from the official builder: the decoder's 8 heads, and its two-way
  transformer's LayerNorm eps, torch's default 1e-5 (``nn.LayerNorm(dim)`` in
  segment_anything/modeling/transformer.py; Hugging Face's config says 1e-6 — the one place the
  two layouts compute differently; the LayerNorm2d of the neck, the mask downscaling and the
  output upscaling are 1e-6 in both).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from ...activation_names import activation_name
from ...io.json_fields import JsonFields, config_dict

# The official builders (segment_anything/build_sam.py): name -> (embed dim, depth, heads,
# global attention indexes). Every official size is inferred from shapes; this table names the
# variant and supplies the global blocks when a checkpoint has no rel-pos tables to show them.
OFFICIAL_VARIANTS = {
    "vit_b": (768, 12, 12, (2, 5, 8, 11)),
    "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": (1280, 32, 16, (7, 15, 23, 31)),
}
OFFICIAL_DECODER_HEADS = 8          # build_sam.py: TwoWayTransformer(num_heads=8)
OFFICIAL_DECODER_EPS = 1e-5         # transformer.py: nn.LayerNorm(embedding_dim), torch default


@dataclasses.dataclass(frozen=True, kw_only=True)
class SamVisionConfig:
    """The image encoder (ViTDet). ``global_attn_indexes``: blocks attending over the whole
    grid; the others attend within window_size x window_size windows (window_size 0: all
    global). ``grid``: tokens per side at image_size."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    mlp_dim: int = 3072
    patch_size: int = 16
    image_size: int = 1024
    num_channels: int = 3
    window_size: int = 14
    global_attn_indexes: tuple = (2, 5, 8, 11)
    output_channels: int = 256
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    use_abs_pos: bool = True
    use_rel_pos: bool = True
    hidden_act: str = "gelu"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def window_of(self, layer: int) -> int:
        """Block ``layer``'s window side; 0 for a global block."""
        return 0 if layer in self.global_attn_indexes else self.window_size


@dataclasses.dataclass(frozen=True, kw_only=True)
class SamPromptConfig:
    """The prompt encoder. ``image_embedding_size``: the embedding grid side
    (image_size // patch_size, 64 for 1024 / 16); mask inputs are 4x that."""

    hidden_size: int = 256
    image_size: int = 1024
    image_embedding_size: int = 64
    mask_input_channels: int = 16
    num_point_embeddings: int = 4
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu"


@dataclasses.dataclass(frozen=True, kw_only=True)
class SamDecoderConfig:
    """The mask decoder: a two-way transformer of ``num_hidden_layers`` blocks (cross-attention
    at hidden_size // attention_downsample_rate), num_multimask_outputs + 1 mask tokens, an IoU
    head of iou_head_depth linear layers. ``layer_norm_eps``: the two-way transformer's norms."""

    hidden_size: int = 256
    mlp_dim: int = 2048
    num_hidden_layers: int = 2
    num_attention_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    layer_norm_eps: float = 1e-6
    hidden_act: str = "relu"


@dataclasses.dataclass(frozen=True, kw_only=True)
class SamConfig:
    """Segment Anything: ``vision``, ``prompt``, ``decoder`` sub-configs. ``variant``: "vit_b" /
    "vit_l" / "vit_h" when the image encoder has an official size, else None. ``extra``: the
    config.json entries not interpreted (architectures, transformers_version, ...)."""

    MODEL_TYPES = ("sam",)

    vision: SamVisionConfig = dataclasses.field(default_factory=SamVisionConfig)
    prompt: SamPromptConfig = dataclasses.field(default_factory=SamPromptConfig)
    decoder: SamDecoderConfig = dataclasses.field(default_factory=SamDecoderConfig)
    model_type: str = "sam"
    extra: dict = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self):
        check_consistent(self.vision, self.prompt, self.decoder, "SamConfig")

    @property
    def variant(self) -> str | None:
        v = self.vision
        for name, (dim, depth, heads, glob) in OFFICIAL_VARIANTS.items():
            if (v.hidden_size, v.num_hidden_layers, v.num_attention_heads,
                    v.global_attn_indexes) == (dim, depth, heads, glob):
                return name
        return None

    @property
    def num_hidden_layers(self) -> int:
        """Blocks with tensors of their own (image encoder + two-way transformer): what
        fastattn.load compares with the checkpoint's tensor count before building."""
        return self.vision.num_hidden_layers + self.decoder.num_hidden_layers

    # -- Hugging Face config.json ------------------------------------------------------------

    @classmethod
    def from_dict(cls, raw: Mapping, where: str = "(dict)") -> "SamConfig":
        """The config of a Hugging Face config.json dict (model_type "sam"); every field
        checked (ValueError naming the key) and defaulted as transformers does."""
        r = JsonFields(dict(raw), where)
        model_type = r.get("model_type", "str", "sam")
        if model_type not in cls.MODEL_TYPES:
            r.error(f"model_type {model_type!r} is not 'sam'")
        vision, pos_feats = _parse_vision(_sub(r, "vision_config"))
        prompt = _parse_prompt(_sub(r, "prompt_encoder_config"))
        decoder = _parse_decoder(_sub(r, "mask_decoder_config"))
        try:
            check_consistent(vision, prompt, decoder, "")
        except ValueError as e:
            r.error(str(e).lstrip(": "))
        # num_pos_feats sizes shared_image_embedding (2, num_pos_feats), whose rows are the
        # sin / cos halves of the prompt width
        if pos_feats is not None and pos_feats * 2 != prompt.hidden_size:
            r.error(f"vision_config num_pos_feats ({pos_feats}) must be half the "
                    f"prompt_encoder_config hidden_size ({prompt.hidden_size})")
        return cls(vision=vision, prompt=prompt, decoder=decoder, model_type=model_type,
                   extra=r.unread())

    @classmethod
    def of(cls, config) -> "SamConfig":
        """``config`` as a SamConfig: itself, or parsed from a config.json dict."""
        if isinstance(config, cls):
            return config
        return cls.from_dict(config_dict(config))

    def to_dict(self) -> dict:
        """A Hugging Face config.json dict (from_dict reads it back to an equal config)."""
        v = dataclasses.asdict(self.vision)
        v["global_attn_indexes"] = list(v["global_attn_indexes"])
        v["num_pos_feats"] = self.prompt.hidden_size // 2
        p = dataclasses.asdict(self.prompt)
        p["patch_size"] = p["image_size"] // p.pop("image_embedding_size")
        d = dataclasses.asdict(self.decoder)
        out = dict(self.extra)
        out.update(model_type=self.model_type, vision_config=v, prompt_encoder_config=p,
                   mask_decoder_config=d)
        return out

    # -- the official state dict ---------------------------------------------------------------

    @classmethod
    def from_official_shapes(cls, shapes: Mapping[str, tuple], where: str = "checkpoint"
                             ) -> "SamConfig":
        """The config of an official segment-anything state dict, from its tensor names and
        shapes (name -> shape; the "image_encoder." / "prompt_encoder." / "mask_decoder."
        names of sam_vit_b / _l / _h). ValueError naming the tensor when one the inference
        needs is missing or inconsistent."""
        return _official_config(shapes, where)


# -- parsing config.json ----------------------------------------------------------------------

def _sub(r: JsonFields, key: str) -> JsonFields:
    """The sub-config object under ``key`` (absent or null: all defaults)."""
    raw = r.get(key, "dict", {}, nullable=True) or {}
    return JsonFields(dict(raw), f"{r.where} {key}")


def _int_or_pair(r: JsonFields, key: str, default: int) -> int:
    """transformers accepts an int or a [h, w] pair for image_size / patch_size; SAM's grid is
    square, so a pair must have equal sides."""
    value = r.raw.get(key)
    r.used.add(key)
    if value is None:
        return default
    if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    return r.check(key, value, "int", minimum=1)


def _act(r: JsonFields, default: str) -> str:
    name = r.get("hidden_act", "str", default)
    try:
        activation_name(name, "sam")
    except ValueError as e:
        r.error(f"hidden_act: {e}")
    return name


def _parse_vision(r: JsonFields) -> tuple[SamVisionConfig, int | None]:
    d = SamVisionConfig()
    c = {k: r.positive_int(k, getattr(d, k)) for k in
         ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_channels",
          "output_channels")}
    r.divides("hidden_size", c["hidden_size"], "num_attention_heads", c["num_attention_heads"])
    c["image_size"] = _int_or_pair(r, "image_size", d.image_size)
    c["patch_size"] = _int_or_pair(r, "patch_size", d.patch_size)
    if c["patch_size"] > c["image_size"]:
        r.error(f"patch_size ({c['patch_size']}) is larger than image_size ({c['image_size']})")
    ratio = r.positive_float("mlp_ratio", 4.0)
    mlp = r.get("mlp_dim", "int", None, nullable=True, minimum=1)
    c["mlp_dim"] = int(c["hidden_size"] * ratio) if mlp is None else mlp   # as transformers
    c["window_size"] = r.get("window_size", "int", d.window_size, minimum=0)
    glob = r.get("global_attn_indexes", "list", list(d.global_attn_indexes))
    for i in glob:
        r.check("global_attn_indexes[]", i, "int", minimum=0)
        if i >= c["num_hidden_layers"]:
            r.error(f"global_attn_indexes entry {i} is not a layer (num_hidden_layers "
                    f"{c['num_hidden_layers']})")
    c["global_attn_indexes"] = tuple(sorted(set(glob)))
    c["layer_norm_eps"] = r.positive_float("layer_norm_eps", d.layer_norm_eps)
    for k in ("qkv_bias", "use_abs_pos", "use_rel_pos"):
        c[k] = r.get(k, "bool", getattr(d, k))
    c["hidden_act"] = _act(r, d.hidden_act)
    return SamVisionConfig(**c), r.get("num_pos_feats", "int", None, nullable=True, minimum=1)


def _parse_prompt(r: JsonFields) -> SamPromptConfig:
    d = SamPromptConfig()
    c = {k: r.positive_int(k, getattr(d, k)) for k in
         ("hidden_size", "mask_input_channels", "num_point_embeddings")}
    c["image_size"] = _int_or_pair(r, "image_size", d.image_size)
    patch = _int_or_pair(r, "patch_size", d.image_size // d.image_embedding_size)
    c["image_embedding_size"] = c["image_size"] // patch     # as transformers' __post_init__
    if c["image_embedding_size"] < 1:
        r.error(f"patch_size ({patch}) is larger than image_size ({c['image_size']})")
    r.used.add("image_embedding_size")   # derived, as transformers recomputes it
    c["layer_norm_eps"] = r.positive_float("layer_norm_eps", d.layer_norm_eps)
    c["hidden_act"] = _act(r, d.hidden_act)
    return SamPromptConfig(**c)


def _parse_decoder(r: JsonFields) -> SamDecoderConfig:
    d = SamDecoderConfig()
    c = {k: r.positive_int(k, getattr(d, k)) for k in
         ("hidden_size", "mlp_dim", "num_hidden_layers", "num_attention_heads",
          "attention_downsample_rate", "num_multimask_outputs", "iou_head_depth",
          "iou_head_hidden_dim")}
    c["layer_norm_eps"] = r.positive_float("layer_norm_eps", d.layer_norm_eps)
    c["hidden_act"] = _act(r, d.hidden_act)
    return SamDecoderConfig(**c)


def check_consistent(v: SamVisionConfig, p: SamPromptConfig, d: SamDecoderConfig,
                     where: str) -> None:
    """The sizes the three parts must agree on; ValueError naming them otherwise."""
    def fail(msg):
        raise ValueError(f"{where}: {msg}")

    if v.hidden_size % v.num_attention_heads:
        fail(f"vision hidden_size ({v.hidden_size}) must be a multiple of num_attention_heads "
             f"({v.num_attention_heads})")
    if v.output_channels != p.hidden_size or p.hidden_size != d.hidden_size:
        fail(f"the image embedding width must be one: vision output_channels "
             f"({v.output_channels}), prompt hidden_size ({p.hidden_size}), decoder hidden_size "
             f"({d.hidden_size})")
    if p.hidden_size % 2:
        fail(f"prompt hidden_size ({p.hidden_size}) must be even (sin and cos halves of the "
             "random-Fourier encoding)")
    if v.grid != p.image_embedding_size:
        fail(f"the image embedding grid must be one: vision image_size // patch_size "
             f"({v.grid}), prompt image_embedding_size ({p.image_embedding_size})")
    # transformers' two-way blocks build their cross-attentions with a hard-coded rate 2
    # (SamTwoWayAttentionBlock's default argument) and only the final attention reads the
    # config; the official code uses one rate for all. They agree, and every released
    # checkpoint is, at 2: any other value is refused rather than guessed.
    if d.attention_downsample_rate != 2:
        fail(f"decoder attention_downsample_rate {d.attention_downsample_rate} is not supported "
             "(only 2: transformers and the official code read other values differently)")
    if d.hidden_size % d.attention_downsample_rate or \
            (d.hidden_size // d.attention_downsample_rate) % d.num_attention_heads or \
            d.hidden_size % d.num_attention_heads:
        fail(f"decoder hidden_size ({d.hidden_size}) / attention_downsample_rate "
             f"({d.attention_downsample_rate}) and hidden_size must be multiples of "
             f"num_attention_heads ({d.num_attention_heads})")
    if p.num_point_embeddings != 4:
        fail(f"prompt num_point_embeddings must be 4 (negative, positive, box corners), got "
             f"{p.num_point_embeddings}")


# -- inferring the official config from shapes ------------------------------------------------

def _official_config(shapes: Mapping[str, tuple], where: str) -> SamConfig:
    shapes = {k: tuple(s) for k, s in shapes.items()}

    def shape(name, ndim=None):
        if name not in shapes:
            raise ValueError(f"{where}: missing tensor {name!r} (an official segment-anything "
                             "state dict has it)")
        s = shapes[name]
        if ndim is not None and len(s) != ndim:
            raise ValueError(f"{where}: tensor {name!r} has shape {s}, expected {ndim} "
                             "dimensions")
        return s

    def count(pattern):
        rx = re.compile(pattern)
        idx = {int(m.group(1)) for k in shapes if (m := rx.match(k))}
        n = max(idx) + 1 if idx else 0
        if idx != set(range(n)):
            raise ValueError(f"{where}: the indexes of {pattern!r} are not 0..{n - 1}: "
                             f"{sorted(idx)}")
        return n

    e = "image_encoder."
    dim, chans, ph, pw = shape(e + "patch_embed.proj.weight", 4)
    if ph != pw:
        raise ValueError(f"{where}: patch_embed.proj.weight has a non-square patch {ph}x{pw}")
    depth = count(r"image_encoder\.blocks\.(\d+)\.")
    if depth == 0:
        raise ValueError(f"{where}: no 'image_encoder.blocks.N.' tensors")
    mlp = shape(e + "blocks.0.mlp.lin1.weight", 2)[0]
    out_ch = shape(e + "neck.0.weight", 4)[0]
    use_abs = e + "pos_embed" in shapes
    use_rel = e + "blocks.0.attn.rel_pos_h" in shapes
    qkv_bias = e + "blocks.0.attn.qkv.bias" in shapes
    known = OFFICIAL_VARIANTS.get({768: "vit_b", 1024: "vit_l", 1280: "vit_h"}.get(dim, ""))
    grid = None
    if use_abs:
        pe = shape(e + "pos_embed", 4)
        grid = pe[1]
    if use_rel:
        lens = [shape(e + f"blocks.{i}.attn.rel_pos_h", 2) for i in range(depth)]
        head_dim = lens[0][1]
        if head_dim == 0 or dim % head_dim:
            raise ValueError(f"{where}: rel_pos_h's width {head_dim} does not divide the "
                             f"embedding width {dim}")
        heads = dim // head_dim
        longest = max(n for n, _ in lens)
        glob = tuple(i for i, (n, _) in enumerate(lens) if n == longest)
        short = {n for n, _ in lens if n != longest}
        if len(short) > 1:
            raise ValueError(f"{where}: rel_pos_h lengths {sorted(short)} name more than one "
                             "window size")
        # every block the same length: windows as large as the grid, which compute exactly
        # global attention; read as all global
        window = (short.pop() + 1) // 2 if short else 0
        if grid is None:
            grid = (longest + 1) // 2
    else:
        if known is None:
            raise ValueError(f"{where}: without rel-pos tables the heads and global blocks of "
                             f"an embedding width {dim} cannot be inferred (official widths: "
                             "768, 1024, 1280)")
        heads, glob, window = known[2], known[3], 14
        if grid is None:
            raise ValueError(f"{where}: neither pos_embed nor rel-pos tables: the image size "
                             "cannot be inferred")
    vision = SamVisionConfig(
        hidden_size=dim, num_hidden_layers=depth, num_attention_heads=heads, mlp_dim=mlp,
        patch_size=ph, image_size=grid * ph, num_channels=chans, window_size=window,
        global_attn_indexes=glob, output_channels=out_ch, layer_norm_eps=1e-6,
        qkv_bias=qkv_bias, use_abs_pos=use_abs, use_rel_pos=use_rel)

    p = "prompt_encoder."
    width = shape(p + "no_mask_embed.weight", 2)[1]
    prompt = SamPromptConfig(
        hidden_size=width, image_size=grid * ph, image_embedding_size=grid,
        mask_input_channels=shape(p + "mask_downscaling.3.weight", 4)[0],
        num_point_embeddings=count(r"prompt_encoder\.point_embeddings\.(\d+)\."),
        layer_norm_eps=1e-6)

    m = "mask_decoder."
    dwidth = shape(m + "iou_token.weight", 2)[1]
    inner = shape(m + "transformer.layers.0.cross_attn_token_to_image.q_proj.weight", 2)[0]
    if inner == 0 or dwidth % inner:
        raise ValueError(f"{where}: cross_attn_token_to_image.q_proj.weight's {inner} rows do "
                         f"not divide the decoder width {dwidth}")
    decoder = SamDecoderConfig(
        hidden_size=dwidth,
        mlp_dim=shape(m + "transformer.layers.0.mlp.lin1.weight", 2)[0],
        num_hidden_layers=count(r"mask_decoder\.transformer\.layers\.(\d+)\."),
        num_attention_heads=OFFICIAL_DECODER_HEADS,
        attention_downsample_rate=dwidth // inner,
        num_multimask_outputs=shape(m + "mask_tokens.weight", 2)[0] - 1,
        iou_head_depth=count(r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\."),
        iou_head_hidden_dim=shape(m + "iou_prediction_head.layers.0.weight", 2)[0],
        layer_norm_eps=OFFICIAL_DECODER_EPS)
    if decoder.num_multimask_outputs < 1 or decoder.iou_head_depth < 1:
        raise ValueError(f"{where}: mask_tokens / iou_prediction_head too small "
                         f"({decoder.num_multimask_outputs + 1} tokens, "
                         f"{decoder.iou_head_depth} layers)")
    return SamConfig(vision=vision, prompt=prompt, decoder=decoder)
