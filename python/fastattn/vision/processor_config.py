"""From checkpoint files to ``ImageProcessor`` fields: Hugging Face's
``preprocessor_config.json``, timm's ``pretrained_cfg``, and the defaults by model type.

Hugging Face (transformers' image_processing_*.py, PIL backend):
- ViTImageProcessor (and the generic processors): resize to ``size`` — {"height", "width"}
  (aspect ratio not kept) or {"shortest_edge"} (kept) — then, when ``do_center_crop``, crop
  ``crop_size`` (top = (H - h) // 2), rescale, normalise. A legacy integer ``size`` means a
  square for these.
- ConvNextImageProcessor (microsoft/resnet-50 uses it, as the older ConvNextFeatureExtractor):
  ``size = {"shortest_edge": S}`` and ``crop_pct`` (default 224/256). S < 384: resize the
  shortest edge to ``int(S / crop_pct)``, then center-crop S x S; S >= 384: warp to S x S, no
  crop. A legacy integer ``size`` means the shortest edge here.
timm (transforms_imagenet_eval; torchvision's Resize and CenterCrop on a PIL image):
- crop_mode "center" (default): shortest edge to ``floor(input / crop_pct)``, center crop
  ``input_size`` (top = round((H - h) / 2)); "squash": both sides to ``floor(side /
  crop_pct)``, then the same crop. "border" is not supported (ValueError).
"""
from __future__ import annotations

import math
import os

from ..io.json_fields import read_json_object
from .processor import (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_STANDARD_MEAN,
                        IMAGENET_STANDARD_STD)
from .resampling import PIL_RESAMPLE_CODES, resample_name

# Class defaults that matter when a key is missing from preprocessor_config.json
# (transformers 5: ViTImageProcessor, ConvNextImageProcessor, DeiTImageProcessor).
_HF_DEFAULTS = {
    "ViT": dict(size={"height": 224, "width": 224}, resample=2, image_mean=IMAGENET_STANDARD_MEAN,
                image_std=IMAGENET_STANDARD_STD, do_center_crop=False),
    "ConvNext": dict(size={"shortest_edge": 384}, resample=3, image_mean=IMAGENET_STANDARD_MEAN,
                     image_std=IMAGENET_STANDARD_STD, crop_pct=224 / 256),
    "DeiT": dict(size={"height": 256, "width": 256}, resample=3, do_center_crop=True,
                 crop_size={"height": 224, "width": 224}, image_mean=IMAGENET_DEFAULT_MEAN,
                 image_std=IMAGENET_DEFAULT_STD),
}
# timm's defaults (timm.data.constants and resolve_data_config)
_TIMM_CROP_PCT = 0.875


def _family(processor_type: str) -> str:
    for name in _HF_DEFAULTS:
        if processor_type.startswith(name):
            return name
    return "ViT"  # transformers' BaseImageProcessor defaults are ViT's


def _hw(what: str, value, square_int: bool = True) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, dict) and "height" in value and "width" in value:
        return (value["height"], value["width"])
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return tuple(value)
    raise ValueError(f"preprocessor_config.json: {what} must be an int or "
                     f"{{\"height\", \"width\"}}, got {value!r}")


def from_hf_dict(cls, cfg: dict, origin: str = "preprocessor_config.json"):
    """The processor described by a Hugging Face ``preprocessor_config.json`` (as a dict)."""
    kind = str(cfg.get("image_processor_type") or cfg.get("feature_extractor_type") or "")
    family = _family(kind)
    d = dict(_HF_DEFAULTS[family])
    d.update({k: v for k, v in cfg.items() if v is not None})
    fields = dict(
        do_rescale=bool(d.get("do_rescale", True)),
        rescale_factor=float(d.get("rescale_factor", 1 / 255)),
        do_normalize=bool(d.get("do_normalize", True)),
        image_mean=_per_channel(d["image_mean"]), image_std=_per_channel(d["image_std"]),
        resample=_hf_resample(d.get("resample", 2)),
        do_resize=bool(d.get("do_resize", True)),
        origin=f"{origin} ({kind or 'no processor type'})")
    size = d.get("size")
    if family == "ConvNext":
        shortest = size if isinstance(size, int) else (size or {}).get("shortest_edge")
        if not isinstance(shortest, int) or isinstance(shortest, bool):
            raise ValueError(f"{origin}: ConvNext's size must be {{\"shortest_edge\": S}}, "
                             f"got {size!r}")
        crop_pct = float(d.get("crop_pct") or 224 / 256)
        if shortest < 384:
            # shortest edge to S / crop_pct, then the central S x S
            fields.update(size=None, shortest_edge=int(shortest / crop_pct),
                          do_center_crop=True, crop_size=(shortest, shortest))
        else:
            fields.update(size=(shortest, shortest), shortest_edge=None, do_center_crop=False)
        return cls(**fields)
    if isinstance(size, dict) and set(size) - {"height", "width", "shortest_edge"}:
        raise ValueError(f"{origin}: size {size!r} is not supported (height/width or "
                         f"shortest_edge)")
    if isinstance(size, dict) and "shortest_edge" in size:
        fields.update(size=None, shortest_edge=size["shortest_edge"])
    else:
        fields.update(size=_hw("size", size), shortest_edge=None)
    if d.get("do_center_crop", False):
        fields.update(do_center_crop=True, crop_size=_hw("crop_size", d.get("crop_size")))
    return cls(**fields)


def from_timm_cfg(cls, cfg: dict, origin: str = "config.json pretrained_cfg"):
    """The eval preprocessing of a timm ``pretrained_cfg`` dict (input_size, interpolation,
    crop_pct, crop_mode, mean, std)."""
    input_size = cfg.get("input_size") or (3, 224, 224)
    if len(input_size) != 3:
        raise ValueError(f"{origin}: input_size must be (channels, height, width), "
                         f"got {input_size!r}")
    _, height, width = (int(v) for v in input_size)
    crop_pct = float(cfg.get("crop_pct") or _TIMM_CROP_PCT)
    mode = cfg.get("crop_mode") or "center"
    interpolation = cfg.get("interpolation") or "bilinear"
    resample = resample_name(origin, interpolation)
    scaled = (math.floor(height / crop_pct), math.floor(width / crop_pct))
    fields = dict(resample=resample, do_center_crop=True, crop_size=(height, width),
                  crop_rounding="round", do_rescale=True, rescale_factor=1 / 255,
                  do_normalize=True,
                  image_mean=_per_channel(cfg.get("mean") or IMAGENET_DEFAULT_MEAN),
                  image_std=_per_channel(cfg.get("std") or IMAGENET_DEFAULT_STD),
                  origin=f"{origin} (timm, crop_mode {mode})")
    if mode == "squash":
        return cls(size=scaled, shortest_edge=None, **fields)
    if mode == "center":
        if scaled[0] != scaled[1]:
            raise ValueError(f"{origin}: crop_mode 'center' with a non-square input_size "
                             f"{input_size!r} is not supported")
        return cls(size=None, shortest_edge=scaled[0], **fields)
    raise ValueError(f"{origin}: crop_mode {mode!r} is not supported ('center' or 'squash')")


def defaults_for(cls, model_type: str, image_size, origin: str):
    """Preprocessing defaults by model type, for a checkpoint without a preprocessor file."""
    size = int(image_size) if image_size else 224
    if model_type == "resnet":
        # microsoft/resnet-50's preprocessor_config.json (ConvNextFeatureExtractor)
        return from_hf_dict(cls, {"image_processor_type": "ConvNextImageProcessor",
                                  "size": {"shortest_edge": size}, "crop_pct": 0.875,
                                  "resample": 3, "image_mean": IMAGENET_DEFAULT_MEAN,
                                  "image_std": IMAGENET_DEFAULT_STD},
                            origin=f"{origin}, defaults for resnet")
    return from_hf_dict(cls, {"image_processor_type": "ViTImageProcessor",
                              "size": {"height": size, "width": size}},
                        origin=f"{origin}, defaults for {model_type or 'vit'}")


def processor_from_model_config(cls, config):
    pretrained_cfg = getattr(config, "pretrained_cfg", None)
    if pretrained_cfg:
        return from_timm_cfg(cls, pretrained_cfg, origin="model config pretrained_cfg")
    return defaults_for(cls, getattr(config, "model_type", "vit"),
                        getattr(config, "image_size", None), "model config")


def processor_from_dir(cls, model_dir):
    model_dir = os.fspath(model_dir)
    path = os.path.join(model_dir, "preprocessor_config.json")
    if os.path.isfile(path):
        return from_hf_dict(cls, read_json_object(path, "image processor"), origin=path)
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ImageProcessor.from_pretrained: {model_dir!r} has neither "
                                "preprocessor_config.json nor config.json")
    config = read_json_object(path, "image processor")
    if config.get("pretrained_cfg"):
        return from_timm_cfg(cls, config["pretrained_cfg"], origin=f"{path} pretrained_cfg")
    return defaults_for(cls, config.get("model_type", "vit"), config.get("image_size"), path)


def _per_channel(values) -> tuple[float, ...]:
    if isinstance(values, (int, float)):
        return (float(values),) * 3
    return tuple(float(v) for v in values)


def _hf_resample(code) -> str:
    if isinstance(code, str):
        return resample_name("preprocessor_config.json", code.lower())
    if code not in PIL_RESAMPLE_CODES:
        raise ValueError(f"preprocessor_config.json: resample must be a PIL code "
                         f"{sorted(PIL_RESAMPLE_CODES)}, got {code!r}")
    return PIL_RESAMPLE_CODES[code]
