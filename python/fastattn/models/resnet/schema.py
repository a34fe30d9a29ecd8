"""The tensors of a Hugging Face ResNet checkpoint and the block plan they follow: the one list
that ResNetModel.from_weights takes its tensors from and that fastattn.testing writes random
checkpoints from.

Every convolution of a ResNet is followed by a BatchNorm2d, saved as four tensors
(``normalization.weight`` gamma, ``.bias`` beta, ``.running_mean``, ``.running_var``) plus
``num_batches_tracked`` (an int64 counter for training, not listed: the builder ignores it)."""
from __future__ import annotations

from dataclasses import dataclass

from .config import REDUCTION, ResNetConfig

BATCH_NORM = ("weight", "bias", "running_mean", "running_var")


@dataclass(frozen=True)
class ConvSpec:
    """One convolution (no bias) + BatchNorm of the network: checkpoint prefix ``name``
    (``name.convolution.weight``, ``name.normalization.*``), weight (out, in, k, k), stride,
    and PyTorch padding k // 2 (transformers' ResNetConvLayer and the 1x1 shortcut)."""
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1

    @property
    def padding(self) -> int:
        return self.kernel // 2


@dataclass(frozen=True)
class BlockSpec:
    """A residual block: ``convs`` in order (the inner ones followed by relu, the last by
    nothing), and the ``shortcut`` projection (1x1, strided) when the block changes the
    width or the resolution, else None (identity)."""
    stage: int
    index: int
    convs: tuple
    shortcut: ConvSpec | None


def resnet_blocks(config, prefix: str = "") -> list[BlockSpec]:
    """The residual blocks of ``config`` in order, as transformers' ResNetEncoder builds them:
    stage s has depths[s] blocks of width hidden_sizes[s]; the first block of stage s takes
    the previous width (embedding_size for stage 0) and strides by 2, except in stage 0
    unless downsample_in_first_stage. A bottleneck block: 1x1 (in -> out/4), 3x3 (out/4 ->
    out/4), 1x1 (out/4 -> out), the stride on the 3x3 (on the first 1x1 with
    downsample_in_bottleneck); a basic block: 3x3 (in -> out, strided), 3x3 (out -> out)."""
    c = ResNetConfig.of(config)
    blocks = []
    in_ch = c.embedding_size
    for s, (out_ch, depth) in enumerate(zip(c.hidden_sizes, c.depths)):
        for j in range(depth):
            stride = 2 if j == 0 and (s > 0 or c.downsample_in_first_stage) else 1
            p = f"{prefix}encoder.stages.{s}.layers.{j}."
            if c.layer_type == "bottleneck":
                mid = out_ch // REDUCTION
                s1, s3 = (stride, 1) if c.downsample_in_bottleneck else (1, stride)
                convs = (ConvSpec(p + "layer.0", in_ch, mid, 1, s1),
                         ConvSpec(p + "layer.1", mid, mid, 3, s3),
                         ConvSpec(p + "layer.2", mid, out_ch, 1))
            else:
                convs = (ConvSpec(p + "layer.0", in_ch, out_ch, 3, stride),
                         ConvSpec(p + "layer.1", out_ch, out_ch, 3))
            shortcut = (ConvSpec(p + "shortcut", in_ch, out_ch, 1, stride)
                        if in_ch != out_ch or stride != 1 else None)
            blocks.append(BlockSpec(s, j, convs, shortcut))
            in_ch = out_ch
    return blocks


def stem_spec(config, prefix: str = "") -> ConvSpec:
    """The stem's 7x7 stride-2 convolution (num_channels -> embedding_size)."""
    c = ResNetConfig.of(config)
    return ConvSpec(prefix + "embedder.embedder", c.num_channels, c.embedding_size, 7, 2)


def resnet_tensor_shapes(config, *, prefix: str = "", classifier: bool | None = None,
                         num_labels: int | None = None) -> dict[str, tuple[int, ...]]:
    """The tensors of a Hugging Face ResNet checkpoint, name -> shape, in checkpoint order.

    ``config``: a config.json dict or a ResNetConfig. ``prefix``: "resnet." as
    ResNetForImageClassification saves them ("" for ResNetModel). ``classifier``: list
    ``classifier.1.weight`` (num_labels, hidden_sizes[-1]) and ``.bias`` (never prefixed;
    default: when prefix is "resnet."); ``num_labels`` defaults to len(id2label). For writing
    random checkpoints (tests, benchmarks): what ``from_weights`` reads."""
    c = ResNetConfig.of(config)
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(spec: ConvSpec):
        shapes[spec.name + ".convolution.weight"] = (spec.out_channels, spec.in_channels,
                                                     spec.kernel, spec.kernel)
        for n in BATCH_NORM:
            shapes[f"{spec.name}.normalization.{n}"] = (spec.out_channels,)

    conv(stem_spec(c, prefix))
    for block in resnet_blocks(c, prefix):
        if block.shortcut is not None:   # transformers' module order: shortcut, then layer
            conv(block.shortcut)
        for spec in block.convs:
            conv(spec)
    if classifier is None:
        classifier = prefix == "resnet."
    if classifier:
        labels = len(c.id2label) if num_labels is None else num_labels
        if labels < 1:
            raise ValueError("resnet_tensor_shapes: a classifier needs num_labels >= 1 (the "
                             "config has no id2label)")
        shapes["classifier.1.weight"] = (labels, c.hidden_sizes[-1])
        shapes["classifier.1.bias"] = (labels,)
    return shapes
