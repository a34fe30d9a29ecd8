"""Segment Anything (model_type "sam", and the official sam_vit_b / _l / _h state dicts):
config (SamConfig and its three sub-configs), the checkpoint schema and the official-name
translation (sam_tensor_shapes, official_to_hf), the components (SamImageEncoder,
SamPromptEncoder, SamMaskDecoder) and the model (SamModel: builders SamModel.from_weights,
SamModel.from_official; forward -> SamOutput)."""
from .config import SamConfig, SamDecoderConfig, SamPromptConfig, SamVisionConfig
from .image_encoder import SamImageEncoder
from .mask_decoder import SamMaskDecoder
from .model import SamModel, SamOutput
from .prompt_encoder import SamPromptEncoder
from .schema import official_to_hf, sam_tensor_shapes

__all__ = ["SamConfig", "SamVisionConfig", "SamPromptConfig", "SamDecoderConfig",
           "sam_tensor_shapes", "official_to_hf", "SamImageEncoder", "SamPromptEncoder",
           "SamMaskDecoder", "SamModel", "SamOutput"]
