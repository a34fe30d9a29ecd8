"""The Vision Transformer's config, parsed from either checkpoint layout's config.json.

- Hugging Face (model_type "vit" or "deit"): transformers' ViTConfig / DeiTConfig names and
  defaults (ViT-B/16 at 224: hidden 768, 12 layers, 12 heads, intermediate 3072, LayerNorm eps
  1e-12, q/k/v biases, a tanh pooler), ``id2label`` with integer keys.
- timm (no model_type; ``architecture`` "vit_<size>_patch<P>_<image>" or
  "deit_<size>[_distilled]_patch<P>_<image>"): the sizes come from the architecture name
  (timm's table below) overridden by ``model_args``, the image size and channels from
  ``pretrained_cfg["input_size"]``; timm's LayerNorm eps 1e-6; no pooler; ``label_names`` give
  ``id2label``. Options this implementation does not compute (average pooling, register tokens,
  layer scale, a pre-norm before the blocks, ...) are refused by name.

Both layouts parse to one ViTConfig; ``layout`` ("hf" or "timm") says which tensor names the
checkpoint uses (models/vit/schema.py).
"""
from __future__ import annotations

import dataclasses
import re

from ...activation_names import activation_name
from ...io.json_fields import JsonFields
from ..config import FamilyConfig, parse_id2label

# timm's model sizes (timm/models/vision_transformer.py, deit.py): embed_dim, depth, num_heads,
# mlp_ratio. The intermediate size is int(embed_dim * mlp_ratio), as timm's Block computes it.
TIMM_SIZES = {
    "tiny": (192, 12, 3, 4.0), "small": (384, 12, 6, 4.0), "base": (768, 12, 12, 4.0),
    "large": (1024, 24, 16, 4.0), "huge": (1280, 32, 16, 4.0),
    "giant": (1408, 40, 16, 48 / 11),
}
# "vit_base_patch16_224", "vit_base_patch16_224_in21k", "deit_small_distilled_patch16_224"
TIMM_NAME = re.compile(r"^(vit|deit)_([a-z]+)_(distilled_)?patch(\d+)_(\d+)(_in21k|_in1k|_miil)*$")
# prefixes that make a config.json without model_type a timm ViT (fastattn.loading)
TIMM_PREFIXES = ("vit_", "deit_")
TIMM_EPS = 1e-6
# model_args that change the forward away from what is computed here: name -> timm's default,
# the only value accepted. Other model_args (drop rates, init schemes) do not touch inference.
TIMM_FIXED_ARGS = {
    "class_token": True, "global_pool": "token", "no_embed_class": False, "reg_tokens": 0,
    "pre_norm": False, "fc_norm": None, "init_values": None, "qk_norm": False,
    "pos_embed": "learn", "final_norm": True, "proj_bias": True, "embed_layer": None,
    "block_fn": None, "mlp_layer": None, "act_layer": None, "norm_layer": None,
}


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


@dataclasses.dataclass(kw_only=True)
class ViTConfig(FamilyConfig):
    """The fields the ViT forward reads (transformers' names), plus:

    - image_size, patch_size: an int (square) or a (height, width) pair, as transformers takes;
      ``image_hw`` / ``patch_hw`` give the pairs.
    - num_prefix_tokens: tokens before the patches: [CLS], and DeiT's distillation token (2).
    - id2label: {class index: label}; empty when the checkpoint names no labels.
    - num_labels: the classifier's rows (timm's num_classes), when the checkpoint has one.
    - layout: "hf" or "timm", the checkpoint's tensor names.
    - architecture, pretrained_cfg: timm's (None for Hugging Face checkpoints).
    """

    MODEL_TYPES = ("vit", "deit")

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    image_size: int | tuple = 224
    patch_size: int | tuple = 16
    num_channels: int = 3
    qkv_bias: bool = True
    pooler_output_size: int | None = None
    pooler_act: str = "tanh"
    id2label: dict = dataclasses.field(default_factory=dict)
    num_labels: int = 2
    num_prefix_tokens: int = 1
    layout: str = "hf"
    architecture: str | None = None
    pretrained_cfg: dict | None = None

    @property
    def image_hw(self) -> tuple[int, int]:
        return _pair(self.image_size)

    @property
    def patch_hw(self) -> tuple[int, int]:
        return _pair(self.patch_size)

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and per row at image_size: the grid the position embeddings
        were learned on."""
        (h, w), (ph, pw) = self.image_hw, self.patch_hw
        return h // ph, w // pw

    @classmethod
    def _parse(cls, r: JsonFields, model_type: str) -> dict:
        # A timm config.json names an architecture and no sizes; a Hugging Face one (or a
        # ViTConfig written back with to_dict) names its sizes.
        if "architecture" in r.raw and "hidden_size" not in r.raw:
            return cls._parse_timm(r)
        d = cls.defaults()
        c = {key: r.positive_int(key, d[key]) for key in
             ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "num_channels")}
        r.divides("hidden_size", c["hidden_size"], "num_attention_heads",
                  c["num_attention_heads"])
        c["hidden_act"] = _activation(r, r.get("hidden_act", "str", d["hidden_act"]))
        c["layer_norm_eps"] = r.positive_float("layer_norm_eps", d["layer_norm_eps"])
        c["image_size"] = _size(r, "image_size", d["image_size"])
        c["patch_size"] = _size(r, "patch_size", d["patch_size"])
        c["qkv_bias"] = r.get("qkv_bias", "bool", d["qkv_bias"])
        c["pooler_output_size"] = r.positive_int("pooler_output_size", c["hidden_size"])
        c["pooler_act"] = r.get("pooler_act", "str", d["pooler_act"])
        if c["pooler_act"] != "tanh":
            r.error(f"pooler_act {c['pooler_act']!r} is not supported (only 'tanh')")
        # transformers: num_labels = len(id2label) when id2label is given, else num_labels
        # (default 2); the classifier, when the checkpoint has one, has num_labels rows
        c["id2label"] = parse_id2label(r)
        c["num_labels"] = r.get("num_labels", "int", len(c["id2label"]) or d["num_labels"],
                                minimum=0)
        if c["id2label"] and c["num_labels"] != len(c["id2label"]):
            r.error(f"num_labels ({c['num_labels']}) differs from the {len(c['id2label'])} "
                    "entries of id2label")
        c["num_prefix_tokens"] = r.get("num_prefix_tokens", "int",
                                       2 if model_type == "deit" else 1, minimum=1)
        if c["num_prefix_tokens"] > 2:
            r.error(f"num_prefix_tokens must be 1 ([CLS]) or 2 ([CLS] and DeiT's distillation "
                    f"token), got {c['num_prefix_tokens']}")
        c["layout"] = r.get("layout", "str", d["layout"])
        if c["layout"] not in ("hf", "timm"):
            r.error(f"layout must be 'hf' or 'timm', got {c['layout']!r}")
        c["architecture"] = r.get("architecture", "str", None)
        c["pretrained_cfg"] = r.get("pretrained_cfg", "dict", None)
        _check_grid(r, c)
        return c

    @classmethod
    def _parse_timm(cls, r: JsonFields) -> dict:
        name = r.get("architecture", "str")
        m = TIMM_NAME.match(name)
        args = r.get("model_args", "dict", {})
        a = JsonFields(args, f"{r.where} model_args")
        for key, default in TIMM_FIXED_ARGS.items():
            if key in args and args[key] != default:
                a.error(f"{key} = {args[key]!r} is not supported (this ViT computes timm's "
                        f"default, {default!r})")
        if m is None or m.group(2) not in TIMM_SIZES:
            if not all(k in args for k in ("embed_dim", "depth", "num_heads")):
                r.error(f"architecture {name!r} is not a timm ViT this loader knows: expected "
                        f"vit_<size>_patch<P>_<image> or deit_<size>[_distilled]_patch<P>_"
                        f"<image>, size one of {', '.join(TIMM_SIZES)} (or model_args giving "
                        "embed_dim, depth and num_heads)")
            dim, depth, heads, ratio, patch, image, distilled = 0, 0, 0, 4.0, 16, 224, False
        else:
            dim, depth, heads, ratio = TIMM_SIZES[m.group(2)]
            patch, image, distilled = int(m.group(4)), int(m.group(5)), bool(m.group(3))
        cfg = r.get("pretrained_cfg", "dict", {})
        p = JsonFields(cfg, f"{r.where} pretrained_cfg")
        channels = 3
        input_size = p.get("input_size", "list", None)
        if input_size is not None:
            if len(input_size) != 3 or not all(isinstance(x, int) and not isinstance(x, bool)
                                               and x >= 1 for x in input_size):
                p.error(f"input_size must be [channels, height, width] positive integers, "
                        f"got {input_size!r}")
            channels, image = input_size[0], (input_size[1], input_size[2])
        dim = a.positive_int("embed_dim", dim)
        heads = a.positive_int("num_heads", heads)
        c = {"hidden_size": dim, "num_attention_heads": heads,
             "num_hidden_layers": a.positive_int("depth", depth),
             "intermediate_size": int(dim * a.positive_float("mlp_ratio", ratio)),
             "hidden_act": "gelu", "layer_norm_eps": TIMM_EPS,
             "image_size": _size(a, "img_size", image), "patch_size": _size(a, "patch_size", patch),
             "num_channels": a.positive_int("in_chans", channels),
             "qkv_bias": a.get("qkv_bias", "bool", True),
             "pooler_output_size": dim, "pooler_act": "tanh",   # (timm has no pooler)
             "num_prefix_tokens": 2 if a.get("distilled", "bool", distilled) else 1,
             "layout": "timm", "architecture": name, "pretrained_cfg": cfg or None}
        r.divides("embed_dim", dim, "num_heads", heads)
        pool = r.get("global_pool", "str", "token")   # (model_args' was checked above)
        if pool != "token":
            r.error(f"global_pool {pool!r} is not supported (only 'token': the head reads [CLS])")
        num_classes = a.get("num_classes", "int", r.get("num_classes", "int", 1000, minimum=0),
                            minimum=0)
        names = r.get("label_names", "list", None)
        if names is not None:
            if len(names) != num_classes or not all(isinstance(x, str) for x in names):
                r.error(f"label_names must be {num_classes} strings (num_classes), got "
                        f"{len(names)} entries")
            c["id2label"] = dict(enumerate(names))
        else:
            c["id2label"] = {}
        c["num_labels"] = num_classes
        _check_grid(r, c)
        return c


def _activation(r: JsonFields, name: str) -> str:
    try:
        activation_name(name, "vit")
    except ValueError as e:
        r.error(f"hidden_act: {e}")
    return name


def _size(r: JsonFields, key: str, default):
    """An int, or a [height, width] pair (kept as a tuple), each >= 1."""
    value = r.raw.get(key)
    r.used.add(key)
    if value is None:
        value = default
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1
                                      for x in value):
            r.error(f"{key!r} must be a positive integer or a [height, width] pair, got "
                    f"{value!r}")
        return value[0] if value[0] == value[1] else tuple(value)
    return r.check(key, value, "int", minimum=1)



def _check_grid(r: JsonFields, c: dict) -> None:
    (h, w), (ph, pw) = _pair(c["image_size"]), _pair(c["patch_size"])
    if ph > h or pw > w:
        r.error(f"patch_size {c['patch_size']} is larger than image_size {c['image_size']}")
