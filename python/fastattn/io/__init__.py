"""Checkpoints and configs: safetensors files (memory-mapped, NumPy only), Hugging Face model
directories (single file or sharded), and config.json normalised to transformers' names."""
from .checkpoint import Checkpoint, save_checkpoint
from .config import SUPPORTED_MODEL_TYPES, ModelConfig, load_config
from .safetensors import SafetensorsFile, bf16_to_float32, float32_to_bf16, save_safetensors

__all__ = [
    "Checkpoint", "save_checkpoint", "ModelConfig", "load_config", "SUPPORTED_MODEL_TYPES",
    "SafetensorsFile", "save_safetensors", "bf16_to_float32", "float32_to_bf16",
]
