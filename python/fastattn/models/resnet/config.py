"""ResNet's config (model_type "resnet"), parsed from config.json with transformers'
ResNetConfig names and defaults, plus the two entries every fastattn vision model carries
(image_size, id2label)."""
from __future__ import annotations

import dataclasses

from ...activation_names import activation_name
from ...io.json_fields import JsonFields
from ..config import FamilyConfig, parse_id2label

LAYER_TYPES = ("basic", "bottleneck")
# A bottleneck block's inner width is out_channels // REDUCTION (transformers' `reduction`,
# fixed at 4 there too: it is not a config entry).
REDUCTION = 4


@dataclasses.dataclass(kw_only=True)
class ResNetConfig(FamilyConfig):
    """Every entry has transformers' default (ResNetConfig: ResNet-50): num_channels 3,
    embedding_size 64 (the stem's width), hidden_sizes (256, 512, 1024, 2048) and depths
    (3, 4, 6, 3) (one per stage, same length), layer_type "bottleneck" ("basic": two 3x3
    convolutions per block, ResNet-18/34), hidden_act "relu" (the stem's and each block's
    output activation; the convolutions inside a block always use relu, as transformers'
    ResNetConvLayer's default), downsample_in_first_stage False (stage 1 keeps the stem's
    resolution), downsample_in_bottleneck False (a downsampling bottleneck strides its 3x3
    convolution, "ResNet v1.5"; True strides the first 1x1, as the original paper).

    fastattn's vision entries: image_size 224 (transformers' ResNet config has none; the
    network is fully convolutional and runs at any size, this is the preprocessing size),
    id2label (class index -> name, {} when absent), pretrained_cfg None (timm's dict; a
    Hugging Face ResNet has none)."""

    MODEL_TYPES = ("resnet",)

    num_channels: int = 3
    embedding_size: int = 64
    hidden_sizes: tuple = (256, 512, 1024, 2048)
    depths: tuple = (3, 4, 6, 3)
    layer_type: str = "bottleneck"
    hidden_act: str = "relu"
    downsample_in_first_stage: bool = False
    downsample_in_bottleneck: bool = False
    image_size: int = 224
    id2label: dict = dataclasses.field(default_factory=dict)
    pretrained_cfg: dict | None = None

    @classmethod
    def _parse(cls, r: JsonFields, model_type: str) -> dict:
        d = cls.defaults()
        c = {"num_channels": r.positive_int("num_channels", d["num_channels"]),
             "embedding_size": r.positive_int("embedding_size", d["embedding_size"])}
        c["hidden_sizes"] = _positive_ints(r, "hidden_sizes", d["hidden_sizes"])
        c["depths"] = _positive_ints(r, "depths", d["depths"])
        if len(c["depths"]) != len(c["hidden_sizes"]):
            r.error(f"'depths' has {len(c['depths'])} stages and 'hidden_sizes' "
                    f"{len(c['hidden_sizes'])}: one depth and one width per stage")
        c["layer_type"] = r.get("layer_type", "str", d["layer_type"])
        if c["layer_type"] not in LAYER_TYPES:
            r.error(f"'layer_type' must be one of {', '.join(LAYER_TYPES)}, got "
                    f"{c['layer_type']!r}")
        if c["layer_type"] == "bottleneck" and min(c["hidden_sizes"]) < REDUCTION:
            r.error(f"'hidden_sizes' must be >= {REDUCTION} for bottleneck blocks (their inner "
                    f"width is hidden_size // {REDUCTION}), got {list(c['hidden_sizes'])}")
        c["hidden_act"] = r.get("hidden_act", "str", d["hidden_act"])
        try:
            activation_name(c["hidden_act"], "resnet")
        except ValueError as e:
            r.error(f"'hidden_act': {e}")
        for key in ("downsample_in_first_stage", "downsample_in_bottleneck"):
            c[key] = r.get(key, "bool", d[key])
        c["image_size"] = r.positive_int("image_size", d["image_size"])
        c["id2label"] = parse_id2label(r)
        c["pretrained_cfg"] = r.get("pretrained_cfg", "dict", None)
        return c

    @property
    def num_blocks(self) -> int:
        """The residual blocks in all stages, sum(depths) (each has tensors of its own, so
        fastattn.load refuses a config with more of them than the checkpoint has tensors)."""
        return sum(self.depths)


def _positive_ints(r: JsonFields, key: str, default: tuple) -> tuple:
    """A non-empty list of integers >= 1 as a tuple (a tuple is read as a list: the fields of a
    ResNetConfig's own to_dict are tuples)."""
    if isinstance(r.raw.get(key), tuple):
        r.raw[key] = list(r.raw[key])
    value = r.get(key, "list", list(default))
    if not value:
        r.error(f"{key!r} must not be empty")
    for i, item in enumerate(value):
        r.check(f"{key}[{i}]", item, "int", minimum=1)
    return tuple(value)

