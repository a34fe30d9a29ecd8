"""ResNet (model_type "resnet"): config (ResNetConfig), checkpoint schema
(resnet_tensor_shapes, resnet_blocks), the model (ResNetModel: builder
ResNetModel.from_weights with BatchNorm folded into the convolutions, forward). Classifying
images is a pipeline (fastattn.pipelines.image_classification)."""
from .config import ResNetConfig
from .model import ResNetModel, ResNetOutput, fold_batch_norm
from .schema import resnet_blocks, resnet_tensor_shapes

__all__ = ["ResNetConfig", "resnet_tensor_shapes", "resnet_blocks", "ResNetModel",
           "ResNetOutput", "fold_batch_norm"]
