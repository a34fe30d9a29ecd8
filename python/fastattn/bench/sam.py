"""Benchmark cases for Segment Anything (issue 14). Goals, ViT-B configuration, random weights,
2 threads, same run as PyTorch:

- the image encoder on a 1024 x 1024 image (a 64 x 64 token grid, 12 blocks, 8 windowed in
  14 x 14 windows, 4 global over 4096 tokens, the neck to 256 channels): >= 2x transformers'
  SamModel.vision_encoder on PyTorch CPU (torch column; eval, inference_mode, the same
  weights; transformers' SDPA path, which materialises the (1, 12, 4096, 4096) rel-pos bias of
  each global block), and a peak memory growth below 1 GB (``memory_growth``, run by
  ``python -m fastattn.bench.sam``: fastattn and torch each in a fresh process);
- the prompt encoder + mask decoder per click (one positive point, multimask, the image
  embedding computed beforehand): < 10 ms, against transformers' SamModel given
  image_embeddings.

Weights are random with the shapes of SamConfig() (sam_vit_b: transformers' SamVisionConfig
defaults), from fastattn.testing.random_tensors (N(0, 0.02), biases 0.02, gains 1 +/- 0.1);
transformers' model loads the same tensors through load_state_dict. FLOPs: 2 per
multiply-add of the patch projection, the qkv / proj / MLP matmuls, the two attention
products (over each window's 196 keys, or the 4096 of the grid) and the neck's convolutions;
the rel-pos terms, softmax, GELU and LayerNorm are not counted. ``--quick``: a 256 px model
with hidden 64, 2 blocks (one global), windows of 4 (grid 16).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from . import Case, try_import_torch

QUICK_VISION = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                "mlp_dim": 128, "image_size": 256, "window_size": 4,
                "global_attn_indexes": [1]}


def sam_config(quick: bool = False):
    """The benchmarked SamConfig: sam_vit_b, or the --quick one."""
    from ..models.sam import SamConfig
    if not quick:
        return SamConfig()
    return SamConfig.from_dict({"model_type": "sam", "vision_config": QUICK_VISION,
                                "prompt_encoder_config": {"image_size": 256}})


def encoder_flops(config, size: int | None = None) -> float:
    """2 x the multiply-adds of one image encoder forward (see the module docstring)."""
    v = config.vision
    g = (size or v.image_size) // v.patch_size
    d, n = v.hidden_size, g * g
    flops = 2.0 * n * v.num_channels * v.patch_size ** 2 * d        # patch projection
    for i in range(v.num_hidden_layers):
        ws = v.window_of(i)
        keys = n if ws == 0 else ws * ws
        tokens = n if ws == 0 else (-(-g // ws) * ws) ** 2        # windows attend the padding
        flops += 2.0 * n * (4 * d * d + 2 * d * v.mlp_dim)          # qkv, proj, MLP
        flops += 4.0 * tokens * keys * d                            # Q K^T and P V
    o = v.output_channels
    return flops + 2.0 * n * (d * o + 9 * o * o)                   # the neck


def random_sam_tensors(config, seed: int = 0) -> dict:
    """Random float32 tensors with the Hugging Face names of ``config``'s checkpoint."""
    from ..models.sam.schema import sam_tensor_shapes
    from ..testing import random_tensors
    return random_tensors(sam_tensor_shapes(config), seed, bias_std=0.02, gain_std=0.1)


def build(config, tensors: dict, with_torch: bool, encoder_only: bool = False):
    """(fastattn model, transformers SamModel or None) holding ``tensors``. encoder_only: the
    fastattn side is the SamImageEncoder alone."""
    from ..models.sam import SamImageEncoder
    if encoder_only:
        prefix = "vision_encoder."
        model = SamImageEncoder({k[len(prefix):]: v for k, v in tensors.items()
                                 if k.startswith(prefix)}, config.vision)
    else:
        from ..models.sam.model import SamModel
        model = SamModel.from_weights(config, tensors)
    hf = None
    if with_torch:
        try:
            import torch
            import transformers
        except Exception:
            return model, None
        raw = config.to_dict()
        hf = transformers.SamModel(transformers.SamConfig(
            **{k: v for k, v in raw.items() if k.endswith("_config")})).eval()
        hf.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    return model, hf


def cases(quick: bool = False):
    torch = try_import_torch()
    config = sam_config(quick)
    tensors = random_sam_tensors(config)
    model, hf = build(config, tensors, torch is not None)
    s = config.vision.image_size
    name = "tiny 256px" if quick else "ViT-B 1024"
    x = np.random.default_rng(0).standard_normal((1, 3, s, s), dtype=np.float32)
    impls = {"fastattn": lambda: model.get_image_embeddings(x)}
    if hf is not None:
        tx = torch.from_numpy(x)

        def hf_encoder():
            with torch.inference_mode():
                return hf.vision_encoder(pixel_values=tx).last_hidden_state
        impls["torch"] = hf_encoder
    yield Case("sam encoder", f"{name} B1", impls, flops=encoder_flops(config),
               goal=">= 2x torch (transformers SamModel vision encoder), growth < 1 GB")

    # one click: prompt encoder + mask decoder on a precomputed embedding
    g = config.prompt.image_embedding_size
    emb = np.random.default_rng(1).standard_normal((1, config.prompt.hidden_size, g, g),
                                                   dtype=np.float32)
    point = np.array([[[0.4 * s, 0.6 * s]]], np.float32)
    label = np.array([[1]], np.int64)
    impls = {"fastattn": lambda: model(image_embeddings=emb, input_points=point,
                                       input_labels=label).pred_masks}
    if hf is not None:
        te, tp, tl = torch.from_numpy(emb), torch.from_numpy(point[None]), \
            torch.from_numpy(label[None])

        def hf_click():
            with torch.inference_mode():
                return hf(image_embeddings=te, input_points=tp, input_labels=tl).pred_masks
        impls["torch"] = hf_click
    yield Case("sam click", f"{name} 1 point multimask", impls,
               goal="< 10 ms per click (prompt encoder + mask decoder)")


_MEMORY_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import fastattn
    from fastattn.bench.sam import build, random_sam_tensors, sam_config
    impl, threads = sys.argv[1], int(sys.argv[2])
    fastattn.set_num_threads(threads)
    config = sam_config()
    tensors = random_sam_tensors(config)
    model, hf = build(config, tensors, impl == "torch", encoder_only=True)
    del tensors
    x = np.random.default_rng(0).standard_normal((1, 3, 1024, 1024), dtype=np.float32)
    if impl == "torch":
        import torch
        torch.set_num_threads(threads)
        tx = torch.from_numpy(x)
        def run():
            with torch.inference_mode():
                return hf.vision_encoder(pixel_values=tx).last_hidden_state
    else:
        run = lambda: model(x)
    def status(key):   # kB
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(key + ":"))
    with open("/proc/self/clear_refs", "w") as f:   # resets VmHWM, the peak RSS, to now
        f.write("5")
    before = status("VmRSS")
    t0 = time.perf_counter()
    run()
    dt = time.perf_counter() - t0
    print((status("VmHWM") - before) / 1024, dt)
""")


def memory_growth(impl: str = "fastattn", threads: int = 2) -> tuple[float, float]:
    """(peak RSS growth in MiB, seconds) of one ViT-B encoder forward at 1024 x 1024 in a fresh
    process, after the weights are built: Linux's peak RSS (VmHWM) is reset just before the
    forward (/proc/self/clear_refs), so the growth is the forward's own, not the build's;
    ``impl`` "fastattn" or "torch". The first forward: it includes first-touch page faults
    and lazily built state (packed weights are built at load), as a user's first image sees
    them."""
    r = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, impl, str(threads)],
                       capture_output=True, text=True, check=True)
    growth, seconds = r.stdout.split()
    return float(growth), float(seconds)


if __name__ == "__main__":
    have_torch = try_import_torch() is not None
    results = {impl: memory_growth(impl) for impl in (["fastattn", "torch"] if have_torch
                                                      else ["fastattn"])}
    for impl, (g, t) in results.items():
        print(f"sam encoder ViT-B 1024 {impl}: first forward {t:.2f} s, peak RSS growth "
              f"{g:.0f} MiB")
    if have_torch:
        print(f"speedup {results['torch'][1] / results['fastattn'][1]:.2f}x (goal >= 2x), "
              f"fastattn growth {results['fastattn'][0]:.0f} MiB (goal < 1024)")
