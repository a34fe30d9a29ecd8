"""Benchmark cases for the ResNet CNN (issue 13). Goal, 2 threads, same run:

- ResNet-50 (transformers' default ResNetConfig: bottleneck stages 3-4-6-3, widths
  256-512-1024-2048, 1000 labels) at 224 x 224, batch 1, pixels to logits: >= 1.0x Hugging
  Face transformers' ResNetForImageClassification on PyTorch CPU (torch column; eval mode,
  inference_mode, the same random weights and BatchNorm statistics).

Weights are random with the real shapes (convolutions N(0, 2 / fan_in), BatchNorm gamma 1,
beta 0, running mean 0, variance 1, as transformers initialises them), built with
fastattn.testing.random_checkpoint and copied into the transformers model: no download.
FLOP convention: 2 per multiply-add of the convolutions and the classifier (BatchNorm is
folded away in fastattn and costs no multiply-add; pools, relu and residual adds are not
counted); ResNet-50 at 224: 8.2 GFLOP. ``--quick`` uses a two-stage width-32 model at 64 x 64.
"""
from __future__ import annotations

import numpy as np

from ..testing import random_checkpoint
from . import Case, try_import_torch


def resnet_config(embedding_size=64, hidden_sizes=(256, 512, 1024, 2048), depths=(3, 4, 6, 3),
                  layer_type="bottleneck", num_labels=1000) -> dict:
    """A config.json dict (transformers' defaults: ResNet-50) with num_labels labels."""
    return {"model_type": "resnet", "num_channels": 3, "embedding_size": embedding_size,
            "hidden_sizes": list(hidden_sizes), "depths": list(depths),
            "layer_type": layer_type, "hidden_act": "relu",
            "downsample_in_first_stage": False, "downsample_in_bottleneck": False,
            "id2label": {str(i): f"class {i}" for i in range(num_labels)}}


def _out(size: int, kernel: int, stride: int, padding: int) -> int:
    """A convolution's / pool's output size (PyTorch, floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1


def forward_flops(config, height: int, width: int, batch: int = 1) -> float:
    """2 x the multiply-adds of every convolution and of the classifier (len(id2label)
    outputs) for images (batch, C, height, width)."""
    from ..models.resnet import ResNetConfig, resnet_blocks
    from ..models.resnet.schema import stem_spec
    c = ResNetConfig.of(config)

    def conv(spec, h, w):
        h, w = (_out(h, spec.kernel, spec.stride, spec.padding),
                _out(w, spec.kernel, spec.stride, spec.padding))
        return 2.0 * spec.out_channels * spec.in_channels * spec.kernel ** 2 * h * w, h, w

    flops, h, w = conv(stem_spec(c), height, width)
    h, w = _out(h, 3, 2, 1), _out(w, 3, 2, 1)       # max-pool 3x3/2
    for block in resnet_blocks(c):
        if block.shortcut is not None:
            flops += conv(block.shortcut, h, w)[0]
        for spec in block.convs:
            f, h, w = conv(spec, h, w)
            flops += f
    flops += 2.0 * c.hidden_sizes[-1] * len(c.id2label)
    return batch * flops


def parameter_count(config) -> int:
    """The checkpoint's parameters (convolutions, BatchNorm gamma and beta, classifier), as
    transformers counts them: BatchNorm's running statistics are buffers, not parameters."""
    from ..models.resnet import resnet_tensor_shapes
    shapes = resnet_tensor_shapes(config, prefix="resnet.")
    return int(sum(np.prod(s) for n, s in shapes.items()
                   if not n.endswith(("running_mean", "running_var"))))


def he_std(name, shape):
    """N(0, 2 / fan_in) convolutions (transformers' kaiming_normal init keeps activations
    O(1), so no denormals slow either side); the classifier N(0, 0.02^2)."""
    return (2.0 / float(np.prod(shape[1:]))) ** 0.5 if len(shape) == 4 else 0.02


def hf_model(torch, config: dict, tensors: dict):
    """transformers' ResNetForImageClassification (eval) holding `tensors`, or None without
    transformers."""
    try:
        import transformers
    except Exception:
        return None
    keys = ("num_channels", "embedding_size", "hidden_sizes", "depths", "layer_type",
            "hidden_act", "downsample_in_first_stage", "downsample_in_bottleneck")
    hf_config = transformers.ResNetConfig(**{k: config[k] for k in keys},
                                          num_labels=len(config["id2label"]))
    model = transformers.ResNetForImageClassification(hf_config).eval()
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise RuntimeError(f"bench resnet: state dict mismatch {missing} {unexpected}")
    return model


def cases(quick: bool = False):
    from fastattn.models.resnet import ResNetModel

    torch = try_import_torch()
    if quick:
        config, size, batch = resnet_config(16, (32, 64), (1, 1), num_labels=10), 64, 1
    else:
        config, size, batch = resnet_config(), 224, 1
    tensors = random_checkpoint(config, prefix="resnet.", std=he_std)
    model = ResNetModel.from_weights(config, tensors)
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size), dtype=np.float32)
    impls = {"fastattn": lambda model=model, x=x: model(x).logits}
    hf = hf_model(torch, config, tensors) if torch is not None else None
    if hf is not None:
        tx = torch.from_numpy(x)

        def hf_forward(hf=hf, tx=tx):
            with torch.inference_mode():
                return hf(tx).logits
        impls["torch"] = hf_forward
    del tensors
    name = "width 32 x 2 stages" if quick else "ResNet-50"
    yield Case("resnet forward", f"{name} {size}x{size} B{batch}", impls,
               flops=forward_flops(config, size, size, batch),
               goal=">= 1.0x torch (transformers ResNetForImageClassification)",
               extra={"parameters": parameter_count(config)})
