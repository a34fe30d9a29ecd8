"""``cost(model_or_config, ...)``: parameters, FLOPs by part, bytes read, arithmetic intensity
and peak memory of one call of a model, from its config alone (no weights needed).

    c = fastattn.analysis.cost("path/to/gpt2", seq_len=512)              # a prefill of 512
    c = fastattn.analysis.cost(config, seq_len=128, mode="decode", context=512)
    c.params, c.flops, c.flops_by_part, c.bytes, c.intensity, c.peak_memory
    c = fastattn.analysis.cost(fastattn.load(path, weights="q8"), seq_len=1, mode="decode")

A model loaded in a weight format (fastattn.load(weights=)) is counted with the bytes its
Linear matrices hold (their format's storage: q8 34/32 bytes per weight, scales included, K
padded to 32), the rest (embeddings, norms, biases) float32; ``weights="q8"`` asks the same
of a config.

The FLOP and byte conventions are in analysis/result.py; each family's layers in text.py,
vision.py, transformer.py and convnet.py.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from .dtypes import dtype_bytes
from .layers import Tally
from .result import Cost

MODES = ("prefill", "decode")
DECODERS = ("gpt2", "llama", "mistral", "qwen2")
ENCODERS = ("bert", "roberta", "xlm-roberta", "distilbert", "electra")


def resolve_config(model_or_config):
    """(config, model or None) of a loaded model (its ``.config``), a config object, a
    config.json dict, or a model directory / config.json path (only config.json is read)."""
    from ..loading import load_config
    if isinstance(model_or_config, Mapping):
        return load_config(dict(model_or_config)), None
    if isinstance(model_or_config, (str, bytes, os.PathLike)):
        return load_config(model_or_config), None
    config = getattr(model_or_config, "config", None)
    if config is not None and hasattr(config, "model_type"):
        return config, model_or_config
    if hasattr(model_or_config, "model_type"):
        return model_or_config, None
    raise TypeError(f"cost: expected a model, a config, a config.json dict or a model "
                    f"directory, got {type(model_or_config).__name__}")


def linear_layers(model) -> list:
    """The distinct Linear layers reachable from a model's attributes (lists, tuples, dicts
    and fastattn objects followed; arrays are leaves)."""
    from ..layers.linear import Linear
    found, seen, stack = [], set(), [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Linear):
            found.append(obj)
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif type(obj).__module__.startswith("fastattn.") and hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
    return found


def _linear_bytes(model, weights):
    """(bytes per Linear matrix element, format) for the Tally, and the format's name for the
    Cost; (None, None, None) for "as weights_dtype". ``weights`` a format -> that format
    (each matrix its storage's bytes, weight_formats); else a loaded model's own Linear
    matrices when any is not float32: their one format, or for mixed formats their
    PackedMatrix bytes over their elements (exact in total, averaged over the parts)."""
    from ..models.weights import check_format
    from ..weight_formats import BYTES_PER_WEIGHT
    if weights is not None:
        check_format("cost", weights)
        if weights != "as-stored":
            return BYTES_PER_WEIGHT[weights], weights, weights
    if model is None:
        return None, None, None
    layers = linear_layers(model)
    formats = {layer.weights for layer in layers}
    if not layers or formats == {"float32"}:
        return None, None, None
    if len(formats) == 1:
        fmt = formats.pop()
        return BYTES_PER_WEIGHT[fmt], fmt, fmt
    total = sum(layer.weight.nbytes for layer in layers)
    elements = sum(layer.in_features * layer.out_features for layer in layers)
    return total / elements, None, "mixed"


def _count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"cost: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def cost(model_or_config, *, batch: int = 1, seq_len: int | None = None,
         mode: str = "prefill", context: int = 0, weights_dtype: str = "float32",
         kv_dtype: str = "float32", kv_heads: int | None = None,
         image_size: int | None = None, weights: str | None = None) -> Cost:
    """The cost of one call of a model (module docstring; conventions in
    fastattn.analysis.result).

    - ``mode="prefill"``: one forward of ``seq_len`` tokens per sequence after ``context``
      cached ones (decoders: logits for every position, as ``model(ids)``; encoders: the whole
      forward, context must be 0).
    - ``mode="decode"`` (decoders): ``seq_len`` single-token steps, the first after
      ``context`` cached tokens; every step reads every weight and the cache (``seq_len=1``:
      one step).
    - ``weights_dtype``, ``kv_dtype``: the storage assumed for the bytes ("float32",
      "float16", "bfloat16", "q8", "q4", "int8", "int4"; analysis.dtypes); fastattn computes
      in float32.
    - ``weights``: the Linear matrices' format (as ``fastattn.load(weights=)``: "q8", "q4",
      "bfloat16", ...; "as-stored" or None: a loaded model's own, else ``weights_dtype``);
      the other parameters stay in ``weights_dtype``. A model loaded with weights="q8" is
      counted in its formats without this.
    - ``kv_heads``: a decoder's KV heads replaced (what if the model were GQA-8, or MQA).
    - Vision models (ViT, ResNet, SAM's image encoder): ``image_size`` pixels square (default:
      the config's); ``seq_len`` is not used. A SAM click: analysis.sam.sam_click_cost.
    """
    config, model = resolve_config(model_or_config)
    model_type = config.model_type
    if mode not in MODES:
        raise ValueError(f"cost: mode must be one of {', '.join(MODES)}, got {mode!r}")
    batch = _count("batch", batch, 1)
    context = _count("context", context, 0)
    wb, kvb = dtype_bytes(weights_dtype, "weights_dtype"), dtype_bytes(kv_dtype, "kv_dtype")
    lwb, lformat, linear_format = _linear_bytes(model, weights)
    vision = model_type in VISION
    if vision:
        size = image_size
        if size is None:   # SAM keeps its image size in the vision sub-config
            size = getattr(getattr(config, "vision", config), "image_size", 224)
        if not isinstance(size, int):
            size = max(size)
        size = _count("image_size", size, 1)
        seq_len = 0
    else:
        if seq_len is None:
            raise ValueError(f"cost: seq_len is required for a {model_type} model")
        seq_len = _count("seq_len", seq_len, 1)
        size = None
    decoder = model_type in DECODERS
    if (mode == "decode" or context) and not decoder:
        raise ValueError(f"cost: a {model_type} model is an encoder: mode 'prefill' with "
                         "context 0 only")
    if kv_heads is not None and not decoder:
        raise ValueError(f"cost: kv_heads applies to decoders, not to {model_type}")
    decode = mode == "decode"
    kv_memory = 0.0
    if vision:
        t = Tally(rows=batch, passes=1, wb=wb, kvb=kvb, lwb=lwb, lformat=lformat)
        VISION[model_type](t, config, batch=batch, image_size=size, model=model)
    else:
        t = Tally(rows=batch * seq_len, passes=seq_len if decode else 1, wb=wb, kvb=kvb,
                  lwb=lwb, lformat=lformat)
        if decoder:
            from .kv import cache_bytes
            from .text import decoder_cost
            stack = decoder_cost(t, config, batch=batch, tokens=seq_len, context=context,
                                 decode=decode, kv_heads=kv_heads)
            kv_memory = cache_bytes(stack, context + seq_len, batch, kvb)
        else:
            from .text import bert_cost
            bert_cost(t, config, batch=batch, tokens=seq_len,
                      pooler=None if model is None else model.pooler is not None)
    return Cost(model_type=model_type, mode=mode, batch=batch, seq_len=seq_len,
                context=context, weights_dtype=weights_dtype, kv_dtype=kv_dtype,
                params=int(t.params), parts=t.parts.parts(), weight_memory=t.weight_memory,
                kv_cache_memory=kv_memory, largest_activation=t.largest, image_size=size,
                weights=linear_format)


def _vit(t, config, **kw):
    from .vision import vit_cost
    return vit_cost(t, config, **kw)


def _sam(t, config, **kw):
    from .sam import sam_cost
    return sam_cost(t, config, **kw)


def _resnet(t, config, **kw):
    from .convnet import resnet_cost
    return resnet_cost(t, config, **kw)


# model_type -> (tally, config, batch=, image_size=, model=) adding the model's parts
VISION = {"vit": _vit, "deit": _vit, "resnet": _resnet, "sam": _sam}

