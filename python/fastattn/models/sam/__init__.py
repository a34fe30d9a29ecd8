"""Segment Anything (model_type "sam", and the official sam_vit_b / _l / _h state dicts):
config (SamConfig and its three sub-configs), the checkpoint schema and the official-name
translation (sam_tensor_shapes, official_to_hf), the image encoder (SamImageEncoder)."""
from .config import SamConfig, SamDecoderConfig, SamPromptConfig, SamVisionConfig
from .image_encoder import SamImageEncoder
from .schema import official_to_hf, sam_tensor_shapes

__all__ = ["SamConfig", "SamVisionConfig", "SamPromptConfig", "SamDecoderConfig",
           "sam_tensor_shapes", "official_to_hf", "SamImageEncoder"]
