"""ResNet (model_type "resnet"): a convolutional network beside the Vision Transformer, with
BatchNorm folded into its convolutions at load.

    stem:        x = maxpool_3x3/2,pad 1( act(conv_7x7/2,pad 3(pixels)) )          (B, 64, H/4, W/4)
    bottleneck:  h = relu(conv_1x1(x));  h = relu(conv_3x3(h));  y = conv_1x1(h)
    basic:       h = relu(conv_3x3(x));  y = conv_3x3(h)
    block:       x = act(y + shortcut(x)),  shortcut = conv_1x1/stride(x) when the width or
                 the resolution changes, else x
    pooler:      mean over H and W -> (B, C, 1, 1);   logits = W_c pooled + b_c

where every conv is conv + BatchNorm folded into one convolution with a bias (fold_batch_norm),
act is config.hidden_act (relu for every released ResNet) and the inner activations are relu
(transformers' ResNetConvLayer default). The stage layout (widths, depths, strides) is the
schema's (schema.resnet_blocks).

Kernels: each conv is one fastattn.conv2d call with the bias and the inner relu in its
epilogue; a block's last conv adds the shortcut in its epilogue (conv2d's order is
act(conv + b) + residual, the block needs act(conv + b + residual): so the residual is fused and
the block's activation then runs in place over the output). Pools are fastattn.max_pool2d and
fastattn.adaptive_avg_pool2d, the classifier a Linear (packed matmul).

Checkpoint names are Hugging Face's (ResNetForImageClassification with "resnet." and
classifier.1.*, ResNetModel without either); BatchNorm's num_batches_tracked counters are
ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import ops
from ...activation_names import activation_name
from ...layers import Linear
from ..output import ModelOutput
from ..weights import take_listed
from .config import ResNetConfig
from .schema import BlockSpec, ConvSpec, resnet_blocks, resnet_tensor_shapes, stem_spec

# nn.BatchNorm2d's default eps: transformers' ResNet keeps it and does not save it
BN_EPS = 1e-5

# The block's output activation, run in place on the conv's output (out=y).
_IN_PLACE = {
    "relu": lambda y: ops.relu(y, out=y),
    "gelu": lambda y: ops.gelu(y, out=y),
    "gelu_tanh": lambda y: ops.gelu(y, "tanh", out=y),
    "silu": lambda y: ops.silu(y, out=y),
}


@dataclass
class ResNetOutput(ModelOutput):
    """What ``ResNetModel(pixel_values)`` returns: transformers' attribute names;
    ``out["name"]`` works too.

    - logits: (B, num_labels) float32, or None when the checkpoint has no classifier
    - last_hidden_state: (B, hidden_sizes[-1], h, w), the last stage's output
    - pooler_output: (B, hidden_sizes[-1], 1, 1), its mean over h and w (transformers' shape)
    - hidden_states: tuple of len(depths) + 1 arrays (B, C, h, w): the stem's output (after
      the max-pool), then each stage's (only with output_hidden_states)
    - attentions: always None, even with output_attentions (a CNN has none; the field is
      there so that vision code can read it from any model)
    """
    logits: np.ndarray | None
    last_hidden_state: np.ndarray
    pooler_output: np.ndarray
    hidden_states: tuple | None = None
    attentions: tuple | None = None


def fold_batch_norm(weight, gamma, beta, mean, var, eps: float = BN_EPS):
    """A convolution (weight (out, in, kh, kw), no bias) followed by inference BatchNorm, as
    one convolution with a bias, float32:

        BN(conv(x, w)) = gamma (conv(x, w) - mean) / sqrt(var + eps) + beta
                       = conv(x, w * s) + (beta - mean * s),   s = gamma / sqrt(var + eps)

    computed in float64 and rounded once, so each folded weight is within half an ulp of
    the exact product (docs/resnet.md: the error this adds)."""
    s = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    w = (np.asarray(weight, np.float64) * s[:, None, None, None]).astype(np.float32)
    b = (np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * s).astype(np.float32)
    return w, b


class FoldedConv:
    """A checkpoint's convolution + BatchNorm as one convolution with a bias (fold_batch_norm),
    with the stride and padding of its ConvSpec."""

    def __init__(self, spec: ConvSpec, t: dict):
        n = spec.name + ".normalization."
        var = t[n + "running_var"]
        if not (var >= 0).all():   # NaN too: sqrt would spread it over the channel
            raise ValueError(f"checkpoint: {n}running_var has negative or NaN entries (a "
                             "variance is >= 0)")
        self.weight, self.bias = fold_batch_norm(
            t[spec.name + ".convolution.weight"], t[n + "weight"], t[n + "bias"],
            t[n + "running_mean"], var)
        self.stride, self.padding = spec.stride, spec.padding

    def __call__(self, x, activation=None, residual=None):
        """act(conv(x, W') + b') + residual, (B, in, H, W) -> (B, out, H', W')."""
        return ops.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                          activation=activation, residual=residual)


class _Block:
    """A residual block's folded convolutions (BlockSpec.convs) and shortcut."""

    def __init__(self, spec: BlockSpec, t: dict):
        self.stage = spec.stage
        self.convs = [FoldedConv(s, t) for s in spec.convs]
        self.shortcut = None if spec.shortcut is None else FoldedConv(spec.shortcut, t)

    def __call__(self, x, activate):
        """activate(y + shortcut(x)) in place over y, the last conv's output."""
        shortcut = x if self.shortcut is None else self.shortcut(x)
        h = x
        for conv in self.convs[:-1]:
            h = conv(h, activation="relu")
        return activate(self.convs[-1](h, residual=shortcut))


class ResNetModel:
    """A ResNet built from a checkpoint: ``ResNetModel.from_weights(config, tensors)``, or
    ``fastattn.load(directory)``. See the module docstring for the equations."""

    def __init__(self, config: ResNetConfig, stem: FoldedConv, blocks: list,
                 classifier: Linear | None):
        self.config = config
        self.stem, self.blocks, self.classifier = stem, blocks, classifier
        self._activation = activation_name(config.hidden_act, "resnet")
        self._activate = _IN_PLACE[self._activation]

    @property
    def num_labels(self) -> int:
        """The classifier's outputs (0 without a classifier)."""
        return 0 if self.classifier is None else self.classifier.out_features

    @classmethod
    def from_weights(cls, config, source) -> "ResNetModel":
        """Builds the model from ``config`` (a ResNetConfig, a config.json dict, or an object
        with its attributes) and ``source``, a mapping of checkpoint names to arrays: the
        tensors resnet_tensor_shapes lists, BatchNorm folded into each convolution. The
        classifier is built when ``classifier.1.weight`` is present (its rows are the labels;
        they must match id2label when the config has one). Raises ValueError for an invalid
        config, a missing tensor, a wrong shape, a negative variance, or a tensor the model
        does not use."""
        c = ResNetConfig.of(config)
        names = set(source.keys())
        prefix = "resnet." if any(n.startswith("resnet.") for n in names) else ""
        classifier = "classifier.1.weight" in names
        num_labels = None
        if classifier:
            num_labels = int(np.shape(source["classifier.1.weight"])[0])
            if c.id2label and num_labels != len(c.id2label):
                raise ValueError(f"checkpoint: classifier.1.weight has {num_labels} rows but "
                                 f"config.json's id2label {len(c.id2label)} labels")
        shapes = resnet_tensor_shapes(c, prefix=prefix, classifier=classifier,
                                      num_labels=num_labels)
        t = take_listed(source, shapes, ignore=("num_batches_tracked",))
        stem = FoldedConv(stem_spec(c, prefix), t)
        blocks = [_Block(b, t) for b in resnet_blocks(c, prefix)]
        head = Linear(t["classifier.1.weight"], t["classifier.1.bias"]) if classifier else None
        return cls(c, stem, blocks, head)

    # ------------------------------------------------------------------------------ forward
    def _check_input(self, pixel_values) -> np.ndarray:
        x = pixel_values
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"resnet: pixel_values must be a numpy.ndarray of float32 "
                            f"(B, C, H, W), got {got}")
        if x.ndim != 4:
            raise ValueError(f"resnet: pixel_values must be 4-D (B, C, H, W), got shape "
                             f"{x.shape}")
        if x.shape[1] != self.config.num_channels:
            raise ValueError(f"resnet: pixel_values has {x.shape[1]} channels (shape "
                             f"{x.shape}), expected num_channels {self.config.num_channels}")
        if min(x.shape[2:]) < 1:
            raise ValueError(f"resnet: pixel_values' image is empty (shape {x.shape}): H and "
                             "W must be >= 1")
        return x

    def __call__(self, pixel_values: np.ndarray, output_attentions: bool = False,
                 output_hidden_states: bool = False) -> ResNetOutput:
        """Runs the network on pixel_values (B, num_channels, H, W) float32 (any H, W >= 1:
        the network is fully convolutional; checkpoints are trained at config.image_size).
        Returns a ResNetOutput. output_attentions is accepted for the vision pipelines' sake
        and, as in transformers, changes nothing: a CNN has no attention (attentions None)."""
        x = self._check_input(pixel_values)
        x = self.stem(x, activation=self._activation)          # B C H W -> B E H/2 W/2
        x = ops.max_pool2d(x, 3, stride=2, padding=1)            # -> B E H/4 W/4
        hidden = [x]
        for i, block in enumerate(self.blocks):
            x = block(x, self._activate)
            if output_hidden_states and (i + 1 == len(self.blocks)
                                         or self.blocks[i + 1].stage != block.stage):
                hidden.append(x)                                  # a stage's output
        pooled = ops.adaptive_avg_pool2d(x, 1)                    # B C h w -> B C 1 1
        logits = None
        if self.classifier is not None:
            logits = self.classifier(pooled.reshape(pooled.shape[0], -1))
        return ResNetOutput(logits=logits, last_hidden_state=x, pooler_output=pooled,
                            hidden_states=tuple(hidden) if output_hidden_states else None)

    def classify(self, images, top_k: int = 5):
        """fastattn.pipelines.image_classification.classify(self, images, top_k): the top_k
        labels and probabilities of each image (preprocessing included)."""
        from ...pipelines.image_classification import classify
        return classify(self, images, top_k=top_k)
