"""fastattn.load: a Hugging Face model directory -> a fastattn model.

    model = fastattn.load("path/to/model")   # config.json + model.safetensors (or shards)

The config's model_type picks the builder in BUILDERS; each builder takes (config, source),
source being the checkpoint as a mapping name -> ndarray. Builders are named as
"module:attribute" strings and imported only when used, so `import fastattn` works without the
model code's kernels, and a test or a user can put a callable in BUILDERS (register_builder).
"""
from __future__ import annotations

import importlib
import os

from .io.checkpoint import Checkpoint
from .io.config import load_config

BUILDERS: dict = {
    "gpt2": "fastattn.models.gpt2:build_gpt2",
    "llama": "fastattn.models.llama:build_llama",
    "mistral": "fastattn.models.llama:build_llama",
    "qwen2": "fastattn.models.llama:build_llama",
    "bert": "fastattn.models.bert:BertModel.from_weights",
}


def register_builder(model_type: str, builder) -> None:
    """Makes load() build `model_type` with builder(config, source) (a callable, or a
    "module:attribute" string)."""
    BUILDERS[model_type] = builder


def _check_known(model_type: str) -> None:
    if model_type not in BUILDERS:
        raise ValueError(f"load: model_type {model_type!r} is not supported; supported: "
                         f"{', '.join(sorted(BUILDERS))}")


def builder_for(model_type: str):
    """The callable building `model_type`, imported on first use."""
    _check_known(model_type)
    entry = BUILDERS[model_type]
    if callable(entry):
        return entry
    module_name, _, attribute = entry.partition(":")
    target = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def load(path):
    """The model in a Hugging Face model directory: config.json plus model.safetensors or
    model.safetensors.index.json with its shards.

    Raises FileNotFoundError (missing directory, config.json, weights or shard), ValueError
    (invalid config or checkpoint, unsupported model_type, pickle-only weights)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such model directory: {path!r}")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"load: {path!r} is not a directory (pass the model directory "
                                 "holding config.json and the safetensors weights)")
    config = load_config(path)
    _check_known(config.model_type)
    with Checkpoint(path) as checkpoint:
        build = builder_for(config.model_type)
        # Tensors the model keeps are views that hold the file mapping themselves; closing
        # drops only the checkpoint's own reference.
        return build(config, checkpoint)
