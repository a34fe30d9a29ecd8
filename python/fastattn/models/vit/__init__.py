"""The Vision Transformer (model_type "vit" and "deit", and timm ViT / DeiT checkpoints):
config (ViTConfig), checkpoint schema of both layouts (vit_tensor_shapes), the model (ViTModel:
builder ViTModel.from_weights, forward -> ViTOutput)."""
from .config import ViTConfig
from .model import ViTModel, ViTOutput
from .schema import vit_tensor_shapes

__all__ = ["ViTConfig", "vit_tensor_shapes", "ViTModel", "ViTOutput"]
