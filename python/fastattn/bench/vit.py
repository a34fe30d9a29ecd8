"""Benchmark cases for the Vision Transformer (issue 13). Goals, 2 threads, same run:

- ViT-B/16 at 224 x 224 (hidden 768, 12 layers, 12 heads, intermediate 3072, 197 tokens, 1000
  classes), forward to the logits: batch 1 >= 2x and batch 8 >= 1.8x Hugging Face
  transformers' ViTForImageClassification on PyTorch CPU (torch column; eval mode,
  inference_mode, the same random weights);
- the model's GFLOP/s against the matmul's: the "vit matmul" row times fastattn.matmul alone
  on the MLP's first projection at the same batch (B * 197 rows x 768 -> 3072, bias + GELU
  epilogue), the ceiling a forward made of such matmuls approaches;
- memory (``memory_growth``, run by ``python -m fastattn.bench.vit``): the peak RSS growth of
  one batch-8 forward, below 2x the activations it must hold.

Weights are random with ViT-B/16's shapes (transformers' init: N(0, 0.02), LayerNorm 1 / 0),
from fastattn.testing.random_checkpoint; transformers' model loads the same checkpoint
directory (written once to a temporary directory), so a case costs seconds and no download.
FLOP convention as the BERT suite's: 2 per multiply-add of the patch projection, the dense
layers, the two attention products (Q K^T, P V) and the classifier; softmax, GELU, LayerNorm
are not counted. ``--quick`` uses a 2-layer hidden-64 model on 32 x 32 images.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap

import numpy as np

from . import Case, try_import_torch


def vit_config(hidden=768, layers=12, heads=12, intermediate=3072, image=224, patch=16,
               labels=1000) -> dict:
    """A Hugging Face ViTForImageClassification config.json dict (ViT-B/16 by default)."""
    return {"model_type": "vit", "architectures": ["ViTForImageClassification"],
            "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": intermediate, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
            "image_size": image, "patch_size": patch, "num_channels": 3, "qkv_bias": True,
            "id2label": {str(i): f"class {i}" for i in range(labels)}}


def forward_flops(config: dict, batch: int) -> float:
    """2 x the multiply-adds of one forward (see the module docstring)."""
    d, i, n = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    p, c = config["patch_size"], config["num_channels"]
    patches = (config["image_size"] // p) ** 2
    t = patches + 1
    per_layer = t * 2 * (4 * d * d + 2 * d * i) + 4 * t * t * d
    patch_embed = patches * 2 * c * p * p * d
    classifier = 2 * d * len(config["id2label"])
    return float(batch * (patch_embed + n * per_layer + classifier))


def activation_bytes(config: dict, batch: int) -> int:
    """The activations a batch-`batch` forward must hold at its peak: the residual stream, the
    normalised input of the MLP, its intermediate (B, T, I) and its output (B, T, D)."""
    d, i = config["hidden_size"], config["intermediate_size"]
    t = (config["image_size"] // config["patch_size"]) ** 2 + 1
    return batch * t * (3 * d + i) * 4


def build(config: dict, directory: str, with_torch: bool):
    """(fastattn model, transformers model or None) holding the same random weights, through
    a checkpoint directory: transformers reads the checkpoint names as it saves them."""
    import fastattn
    from ..testing import random_checkpoint
    fastattn.save_checkpoint(directory, config, random_checkpoint(config))
    model = fastattn.load(directory, mmap=False)
    hf = None
    if with_torch:
        try:
            import transformers
        except Exception:
            return model, None
        hf = transformers.ViTForImageClassification.from_pretrained(directory).eval()
    return model, hf


def cases(quick: bool = False):
    import fastattn

    torch = try_import_torch()
    if quick:
        config, batches = vit_config(64, 2, 4, 256, image=32, patch=8, labels=10), (1, 2)
    else:
        config, batches = vit_config(), (1, 8)
    with tempfile.TemporaryDirectory() as directory:
        model, hf = build(config, directory, torch is not None)
    name = "tiny 32px" if quick else "ViT-B/16 224"
    rng = np.random.default_rng(0)
    d, i = config["hidden_size"], config["intermediate_size"]
    tokens = (config["image_size"] // config["patch_size"]) ** 2 + 1
    for batch in batches:
        x = rng.standard_normal((batch, 3, config["image_size"], config["image_size"]),
                                dtype=np.float32)
        # (cases are built lazily, one after the other: default arguments pin each closure's
        # objects)
        impls = {"fastattn": lambda model=model, x=x: model(x).logits}
        if hf is not None:
            tx = torch.from_numpy(x)

            def hf_forward(hf=hf, tx=tx):
                with torch.inference_mode():
                    return hf(pixel_values=tx).logits
            impls["torch"] = hf_forward
        goal = ">= 2x torch (transformers ViT)" if batch == 1 else \
            ">= 1.8x torch (transformers ViT)"
        yield Case("vit forward", f"{name} B{batch}", impls,
                   flops=forward_flops(config, batch), goal=goal)

        # the matmul alone on the MLP's first projection at this batch: the ceiling
        rows = batch * tokens
        a = rng.standard_normal((rows, d), dtype=np.float32)
        w = fastattn.PackedMatrix(rng.standard_normal((i, d), dtype=np.float32) * 0.02,
                                  transpose=True)
        bias = np.zeros(i, np.float32)
        out = np.empty((rows, i), np.float32)
        impls = {"fastattn": lambda a=a, w=w, bias=bias, out=out: fastattn.matmul(
            a, w, bias=bias, activation="gelu", out=out)}
        if torch is not None:
            ta, tw, tb = torch.from_numpy(a), torch.from_numpy(w.unpacked()), \
                torch.from_numpy(bias)
            impls["torch"] = lambda ta=ta, tw=tw, tb=tb: torch.nn.functional.gelu(
                torch.addmm(tb, ta, tw))
        yield Case("vit matmul", f"{rows}x{d} @ {d}x{i} +gelu", impls,
                   flops=2.0 * rows * d * i, goal="the model's GFLOP/s ceiling")


_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, tempfile, time
    import numpy as np
    from fastattn.bench.vit import build, vit_config
    config, batch = vit_config(), int(sys.argv[1])
    with tempfile.TemporaryDirectory() as d:
        model, _ = build(config, d, False)
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    model(x[:1, :, :32, :32])   # first use: thread pool, lazily built state
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    model(x)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024, dt)
""")


def memory_growth(batch: int = 8) -> tuple[float, float, float]:
    """(peak RSS growth in MiB of one ViT-B/16 forward at `batch`, the activations it must
    hold in MiB (activation_bytes), seconds), measured in a fresh process (ru_maxrss, Linux
    KiB) after the weights are loaded and a 32 x 32 warm-up ran."""
    r = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(batch)],
                       capture_output=True, text=True, check=True)
    growth, seconds = r.stdout.split()
    return float(growth), activation_bytes(vit_config(), batch) / 2**20, float(seconds)


if __name__ == "__main__":
    g, a, t = memory_growth()
    print(f"vit ViT-B/16 224 B8: peak RSS growth {g:.1f} MiB, activations it must hold "
          f"{a:.1f} MiB (goal: growth < 2x = {2 * a:.1f} MiB): {g / a:.2f}x; forward {t:.2f} s")
