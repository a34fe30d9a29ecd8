"""ResNet's forward pass (transformers' ResNetModel / ResNetForImageClassification) written from
the equations with the other references (any float dtype: the tests run it in float64 on the
model's weights). BatchNorm is applied as its formula after each convolution, never folded
into it, so that comparing with fastattn's model checks the folding.

    BN(z) = (z - running_mean) / sqrt(running_var + 1e-5) * gamma + beta    (per channel)
    stem:        x = maxpool_3x3/2,pad 1( act(BN(conv_7x7/2,pad 3(pixels))) )
    bottleneck:  h = relu(BN(conv_1x1(x)));  h = relu(BN(conv_3x3(h)));  h = BN(conv_1x1(h))
    basic:       h = relu(BN(conv_3x3(x)));  h = BN(conv_3x3(h))
    block:       x = act(h + shortcut(x)),  shortcut = BN(conv_1x1/stride(x)) when the width
                 or the resolution changes, else x
    pooler:      mean over H, W (B, C, 1, 1);   logits = W pooled + b
"""
import numpy as np

from .. import adaptive_avg_pool2d, conv2d, max_pool2d
from ..activation import activate, relu

# nn.BatchNorm2d's default eps; transformers' ResNet does not change it (not a config entry)
BN_EPS = 1e-5


def batch_norm(z, w, name):
    """Inference BatchNorm of z (B, C, H, W) with the running statistics of ``name``."""
    n = name + ".normalization."

    def per_channel(key):
        return w[n + key].reshape(1, -1, 1, 1)

    return ((z - per_channel("running_mean")) / np.sqrt(per_channel("running_var") + BN_EPS)
            * per_channel("weight") + per_channel("bias"))


def conv_bn(x, w, name, stride, padding):
    """BN(conv(x)) with the bias-free convolution ``name``.convolution.weight."""
    return batch_norm(conv2d(x, w[name + ".convolution.weight"], stride=stride,
                             padding=padding), w, name)


def resnet(w, config, pixel_values):
    """ResNet's outputs for pixel_values (B, C, H, W), as a dict: "logits" (B, num_labels)
    or None without ``classifier.1.*``, "last_hidden_state" (B, C, h, w), "pooler_output"
    (B, C, 1, 1), "hidden_states" (the stem's output, then each stage's)."""
    c = config
    p = "resnet." if any(k.startswith("resnet.") for k in w) else ""
    x = activate(conv_bn(pixel_values, w, p + "embedder.embedder", 2, 3), c.hidden_act)
    x = max_pool2d(x, 3, stride=2, padding=1)
    hidden = [x]
    in_ch = c.embedding_size
    for s, (width, depth) in enumerate(zip(c.hidden_sizes, c.depths)):
        for j in range(depth):
            # the first block of each stage but the first halves the resolution
            stride = 2 if j == 0 and (s > 0 or c.downsample_in_first_stage) else 1
            b = f"{p}encoder.stages.{s}.layers.{j}."
            shortcut = (conv_bn(x, w, b + "shortcut", stride, 0)
                        if in_ch != width or stride != 1 else x)
            if c.layer_type == "bottleneck":
                s1, s3 = (stride, 1) if c.downsample_in_bottleneck else (1, stride)
                h = relu(conv_bn(x, w, b + "layer.0", s1, 0))
                h = relu(conv_bn(h, w, b + "layer.1", s3, 1))
                h = conv_bn(h, w, b + "layer.2", 1, 0)
            else:
                h = relu(conv_bn(x, w, b + "layer.0", stride, 1))
                h = conv_bn(h, w, b + "layer.1", 1, 1)
            x = activate(h + shortcut, c.hidden_act)
            in_ch = width
        hidden.append(x)
    pooled = adaptive_avg_pool2d(x, 1)
    logits = None
    if "classifier.1.weight" in w:
        logits = pooled.reshape(len(x), -1) @ w["classifier.1.weight"].T + w["classifier.1.bias"]
    return {"logits": logits, "last_hidden_state": x, "pooler_output": pooled,
            "hidden_states": hidden}
