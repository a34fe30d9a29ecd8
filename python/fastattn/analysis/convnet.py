"""ResNet's cost: every convolution of the block plan (models/resnet/schema.py: the stem's
7x7/2, each block's 1x1 / 3x3 convolutions and strided shortcuts), the pools and the
classifier.

A convolution of Cin -> Cout channels, kernel k, stride s, padding k // 2 on an H x W map:

    Ho = floor((H + 2 (k // 2) - k) / s) + 1,   FLOPs = 2 Cout Cin k^2 Ho Wo per image

(groups 1). BatchNorm is folded into each convolution's weight and bias before running
(fastattn's ResNet does so at load), so it costs no FLOPs; its four tensors per channel count
in the parameters (they are checkpoint tensors). The activation (ReLU, 1 FLOP per element)
runs in place on each convolution's output, the residual add in the last convolution of a
block. Pools: the 3x3/2 max pool (8 comparisons per output) and the global average
(1 add per input element).
"""
from __future__ import annotations

from .layers import ACTIVATION_FLOPS, Tally, activation_kind


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def resnet_cost(t: Tally, c, *, batch: int, image_size: int, model=None) -> None:
    """Adds a ResNet forward at ``image_size`` pixels square; the classifier (len(id2label)
    rows) when the loaded ``model`` has one, or for a config alone when id2label is set."""
    from ..models.resnet.schema import BATCH_NORM, resnet_blocks, stem_spec
    act = ACTIVATION_FLOPS[activation_kind(c.hidden_act)]

    def conv(part, spec, hw, activate=True):
        out = (conv_out(hw[0], spec.kernel, spec.stride, spec.padding),
               conv_out(hw[1], spec.kernel, spec.stride, spec.padding))
        checkpoint = (spec.out_channels * spec.in_channels * spec.kernel ** 2
                      + len(BATCH_NORM) * spec.out_channels)
        t.conv(part, batch, spec.in_channels, spec.out_channels, (spec.kernel, spec.kernel),
               hw, out, params=checkpoint)
        if activate:   # in place on the output: read and written once
            t.elementwise("activation", batch * spec.out_channels * out[0] * out[1], act)
        return out

    stem = stem_spec(c)
    hw = conv("stem", stem, (image_size, image_size))
    pooled = (conv_out(hw[0], 3, 2, 1), conv_out(hw[1], 3, 2, 1))
    channels = stem.out_channels
    # max pool 3x3/2: 8 comparisons per output; reads the map, writes the pooled one
    t.parts.add("pools", flops=8.0 * batch * channels * pooled[0] * pooled[1],
                activation_bytes=4.0 * batch * channels * (hw[0] * hw[1]
                                                           + pooled[0] * pooled[1]))
    hw = pooled
    for block in resnet_blocks(c):
        part = f"stage{block.stage + 1}"
        block_in = hw
        for spec in block.convs:
            hw = conv(part, spec, hw)
        if block.shortcut is not None:
            conv(part, block.shortcut, block_in, activate=False)
        channels = block.convs[-1].out_channels
    # global average pool: one add per element read
    t.elementwise("pools", batch * channels * hw[0] * hw[1], 1, read=1, written=0)
    labels = model.num_labels if model is not None else len(c.id2label)
    if labels:
        t.linear("classifier", channels, labels, bias=True, rows=batch)
