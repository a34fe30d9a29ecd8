"""Checkpoints and JSON: safetensors files (memory-mapped, NumPy only), Hugging Face model
directories (single file or sharded), and typed access to JSON objects (json_fields).

`load_config` and `ModelConfig` are re-exported here for code written against the old layout;
they live in fastattn.loading and fastattn.models.config and are imported on first use, so that
io loads no model code."""
from .checkpoint import Checkpoint, save_checkpoint
from .safetensors import SafetensorsFile, bf16_to_float32, float32_to_bf16, save_safetensors

__all__ = [
    "Checkpoint", "save_checkpoint", "ModelConfig", "load_config",
    "SafetensorsFile", "save_safetensors", "bf16_to_float32", "float32_to_bf16",
]


def __getattr__(name: str):
    if name == "load_config":
        from ..loading import load_config
        return load_config
    if name == "ModelConfig":
        from ..models.config import ModelConfig
        return ModelConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
