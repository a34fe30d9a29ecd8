"""The model registry, and loading a Hugging Face model directory through it.

    config = fastattn.load_config("path/to/model")   # the family's config dataclass
    model = fastattn.load("path/to/model")           # config.json + model.safetensors (or shards)

FAMILIES maps each model_type fastattn supports to its family (fastattn.models.<family>): the
config dataclass that parses config.json, the builder (config, source) -> model, source being
the checkpoint as a mapping name -> ndarray, and the checkpoint schema (config, **options) ->
{name: shape} the builder reads (fastattn.testing writes random checkpoints from it). Entries
are "module:attribute" strings imported on first use, so that importing this module (and
fastattn.io, which re-exports load_config) loads no model code.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Mapping

from .io.checkpoint import Checkpoint
from .io.json_fields import JsonFields, read_config_json


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family's entry points: each a callable or a "module:attribute" string;
    `layers`, the config attribute counting the layers; `formats`, whether the builder takes
    `weights=` (the Linear weights' format, fastattn.models.weights), else float32 only."""
    config: object          # class with from_dict(raw, where) -> config
    build: object           # (config, source[, weights=]) -> model
    tensor_shapes: object   # (config, **options) -> {name: shape}
    layers: str = "num_hidden_layers"
    formats: bool = True


_GPT2 = Family("fastattn.models.gpt2:GPT2Config", "fastattn.models.gpt2:build_gpt2",
               "fastattn.models.gpt2:gpt2_tensor_shapes", layers="n_layer")
_LLAMA = Family("fastattn.models.llama:LlamaConfig", "fastattn.models.llama:build_llama",
                "fastattn.models.llama:llama_tensor_shapes")
_BERT = Family("fastattn.models.bert:BertConfig", "fastattn.models.bert:BertModel.from_weights",
               "fastattn.models.bert:bert_tensor_shapes")
_VIT = Family("fastattn.models.vit:ViTConfig", "fastattn.models.vit:ViTModel.from_weights",
              "fastattn.models.vit:vit_tensor_shapes")
# ResNet's weights are float32 in memory whatever the file (see load)
_SAM = Family("fastattn.models.sam:SamConfig", "fastattn.models.sam:SamModel.from_weights",
              "fastattn.models.sam:sam_tensor_shapes")
_RESNET = Family("fastattn.models.resnet:ResNetConfig",
                 "fastattn.models.resnet:ResNetModel.from_weights",
                 "fastattn.models.resnet:resnet_tensor_shapes", layers="num_blocks",
                 formats=False)

FAMILIES: dict[str, Family] = {
    "gpt2": _GPT2, "llama": _LLAMA, "mistral": _LLAMA, "qwen2": _LLAMA, "bert": _BERT,
    "roberta": _BERT, "xlm-roberta": _BERT, "distilbert": _BERT, "electra": _BERT,
    "vit": _VIT, "deit": _VIT, "resnet": _RESNET, "sam": _SAM,
}

# A single .safetensors file (no config.json) is a checkpoint whose sizes its tensor shapes
# carry: the families that read one, tried in order: (claims(names) -> bool, "module:loader"),
# the loader taking (file mapping, where, weights=) -> model.
FILE_FAMILIES = [
    ("fastattn.models.sam.schema:is_official", "fastattn.models.sam:SamModel.from_official"),
]

# A timm checkpoint's config.json has no model_type; its `architecture` names the model. Those
# starting with these prefixes are read by the "vit" family (fastattn.models.vit.config).
TIMM_FAMILIES = {"vit_": "vit", "deit_": "vit"}


def model_type_of(raw: dict, where: str = "(dict)") -> str:
    """config.json's model_type, or the family of a timm config's `architecture`; ValueError
    (naming the key) when neither is there."""
    architecture = raw.get("architecture")
    if "model_type" not in raw and isinstance(architecture, str):
        for start, model_type in TIMM_FAMILIES.items():
            if architecture.startswith(start):
                return model_type
    return JsonFields(raw, where).get("model_type", "str")


def _resolve(entry):
    """A "module:attribute" string imported (attribute may be dotted); a callable as it is."""
    if callable(entry):
        return entry
    module_name, _, attribute = entry.partition(":")
    target = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def _check_known(model_type: str) -> None:
    if model_type not in FAMILIES:
        raise ValueError(f"load: model_type {model_type!r} is not supported; supported: "
                         f"{', '.join(sorted(FAMILIES))}")


def family_part(model_type: str, part: str):
    """One entry point ("config", "build", "tensor_shapes") of model_type's family, imported
    on first use; ValueError for a model_type no family claims."""
    _check_known(model_type)
    return _resolve(getattr(FAMILIES[model_type], part))


def builder_for(model_type: str):
    """The callable building `model_type`, imported on first use."""
    return family_part(model_type, "build")


def load_config(path_or_dict):
    """A model's config from a config.json path, a model directory, or an already parsed dict.

    model_type is required. For the supported types (llama, mistral, qwen2, gpt2, bert,
    roberta, xlm-roberta, distilbert, electra, vit, deit, resnet, sam) the family's config
    dataclass: every attribute the builders read is checked (wrong type or range: ValueError
    naming the key) and defaulted as transformers does; other types come back as a
    ModelConfig, their entries unchecked. bos/eos token ids and torch_dtype / dtype pass
    through; keys not interpreted are kept in `.extra`."""
    if isinstance(path_or_dict, Mapping):
        raw, where = dict(path_or_dict), "(dict)"
    elif isinstance(path_or_dict, (str, bytes, os.PathLike)):
        raw, where = read_config_json(path_or_dict)
    else:
        raise TypeError(f"load_config: expected a path or a dict, got "
                        f"{type(path_or_dict).__name__}")
    model_type = model_type_of(raw, where)
    if model_type not in FAMILIES:
        from .models.config import ModelConfig
        return ModelConfig.from_dict(raw)
    return family_part(model_type, "config").from_dict(raw, where)


def _check_weights(where: str, model_type: str, weights) -> str:
    """`weights` checked (one of LOAD_FORMATS) and refused for a family kept in float32."""
    from .models.weights import check_format
    check_format("load", weights)
    if weights not in ("as-stored", "float32") and not FAMILIES[model_type].formats:
        raise ValueError(f"load: {where}: weights={weights!r} is not available for "
                         f"{model_type!r} models, whose weights are float32 in memory; use "
                         "weights='float32' (or 'as-stored')")
    return weights


def load(path, *, mmap: bool = True, weights: str = "as-stored"):
    """The model in a Hugging Face model directory: config.json plus model.safetensors or
    model.safetensors.index.json with its shards; or a single .safetensors file whose tensor
    names a family recognises (FILE_FAMILIES: the official segment-anything state dict, its
    sizes read from the shapes).

    weights: the format of the Linear layers' matrices in memory (the transformer blocks',
    the LM head's / classifier's; embeddings, norms, biases and convolutions are float32):
    "float32", "bfloat16", "float16", "q8", "q4" (converted or quantized at load), or
    "as-stored" (default): each matrix in the checkpoint's own format, so a BF16 / F16
    checkpoint stays 16-bit (viewed in place in the mapped file where its layout allows) and a
    file written by `fastattn quantize` stays quantized; float32 files load as float32. As
    BF16 and F16 widen to float32 exactly, "as-stored" computes with the very values
    "float32" would, in half the memory. SAM converts its image encoder's blocks only
    ("as-stored" is float32 there); ResNet is float32 whatever the file (other formats:
    ValueError). See docs/quantization.md.

    mmap=True maps the weight files: instant open, no copy, pages shared between processes;
    but the model's weights are then the files, so a file truncated or overwritten in place
    while the model lives can kill the process (SIGBUS) or change the weights under it.
    mmap=False reads the files into memory once (RAM = weights): the model is immune to
    whatever happens to the files afterwards. See docs/loading.md.

    Raises FileNotFoundError (missing directory, config.json, weights or shard), ValueError
    (invalid config or checkpoint, unsupported model_type, pickle-only weights, a checkpoint
    that does not fit the config: these name the directory)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such model directory: {path!r}")
    if os.path.isfile(path) and path.endswith(".safetensors"):
        _check_weights(repr(path), "sam", weights)
        return _load_file(path, mmap, weights)
    if not os.path.isdir(path):
        raise NotADirectoryError(f"load: {path!r} is not a directory (pass the model directory "
                                 "holding config.json and the safetensors weights, or an "
                                 "official segment-anything .safetensors file)")
    config = load_config(path)
    _check_known(config.model_type)
    _check_weights(repr(path), config.model_type, weights)
    from .quantize import check_quantization_config
    check_quantization_config(read_config_json(path)[0], repr(path))
    with Checkpoint(path, mmap=mmap) as checkpoint:
        # Each layer has tensors of its own, so a layer count above the checkpoint's tensor
        # count is wrong; refused here, because the builders list every name of every layer
        # before comparing with the checkpoint (config.json saying 2**40 layers would take
        # hours and all the memory).
        key = FAMILIES[config.model_type].layers
        if getattr(config, key) > len(checkpoint):
            raise ValueError(f"load: {path!r}: config.json's {key} is {getattr(config, key)}, "
                             f"but the checkpoint holds only {len(checkpoint)} tensors")
        build = builder_for(config.model_type)
        # Tensors the model keeps are views that hold the file mapping (or the buffer read
        # from it) themselves; closing drops only the checkpoint's own reference.
        try:
            if FAMILIES[config.model_type].formats:
                model = build(config, checkpoint, weights=weights)
            else:
                model = build(config, checkpoint)
            _return_freed_heap()
            return model
        except ValueError as e:
            if type(e) is not ValueError:   # a subclass keeps its type (and message)
                raise
            # "checkpoint: tensor 'x' has shape ...": which checkpoint, for a server's log
            raise ValueError(f"load: {path!r}: {e}") from e


def _return_freed_heap() -> None:
    """Gives the heap pages freed by a load's transient copies (a fused matrix concatenated
    before packing, the quantizer's float temporaries) back to the kernel: glibc keeps freed
    blocks below its mmap threshold (raised up to 32 MiB as large blocks are freed) in the
    heap, where they would stay resident next to the model. malloc_trim(0) releases every free
    page (docs/quantization.md, "Memory"); elsewhere than glibc this does nothing."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


def _load_file(path: str, mmap: bool, weights: str):
    """The model in one .safetensors file without config.json (FILE_FAMILIES)."""
    from .io.safetensors import SafetensorsFile
    with SafetensorsFile(path, mmap=mmap) as f:
        names = list(f.keys())
        for claims, loader in FILE_FAMILIES:
            if _resolve(claims)(names):
                try:
                    return _resolve(loader)(f, repr(path), weights=weights)
                except ValueError as e:
                    if type(e) is not ValueError:
                        raise
                    raise ValueError(f"load: {path!r}: {e}") from e
    raise ValueError(f"load: {path!r} is a single .safetensors file, which is read only for "
                     "official segment-anything checkpoints (names image_encoder., "
                     "prompt_encoder., mask_decoder.); for other models pass the model "
                     "directory holding config.json")
