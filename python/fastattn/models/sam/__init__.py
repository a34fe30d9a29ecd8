"""Segment Anything (model_type "sam", and the official sam_vit_b / _l / _h state dicts):
config (SamConfig and its three sub-configs)."""
from .config import SamConfig, SamDecoderConfig, SamPromptConfig, SamVisionConfig

__all__ = ["SamConfig", "SamVisionConfig", "SamPromptConfig", "SamDecoderConfig"]
