"""Random checkpoints for tests and benchmarks, written from the families' checkpoint schemas.

    tensors = random_checkpoint(config)               # {Hugging Face name: float32 array}
    tensors = random_tensors({"w": (4, 3)}, seed=0)   # any name -> shape list

The tensor list is the model family's schema (fastattn.loading.FAMILIES: the one the builder
reads), so a random checkpoint always loads. The default init is transformers': matrices
N(0, 0.02^2), biases 0, norm gains (the other 1-D weights) 1 — weights a benchmark can time.
A test that must see a wrong layout, transpose or bias in the outputs asks for larger ones:
``std``, ``bias_std`` and ``gain_std`` (gains are then 1 + N(0, gain_std^2)).
"""
from __future__ import annotations

import numpy as np


def random_tensors(shapes: dict, seed=0, *, std=0.02, bias_std: float = 0.0,
                   gain_std: float = 0.0) -> dict:
    """Random float32 arrays for a ``name -> shape`` list, drawn in the list's order.

    ``seed``: an int or a numpy Generator (drawn from, so a test's generator goes on).
    Names ending in ".bias" and BatchNorm's ".running_mean": N(0, bias_std^2) (zeros for 0);
    BatchNorm's ".running_var": exp(N(0, gain_std^2)) (> 0; ones for 0); other 1-D tensors
    (norm gains): 1 + N(0, gain_std^2); the rest: N(0, std^2), ``std`` a number or a function
    (name, shape) -> number (e.g. 1 / sqrt(fan_in))."""
    rng = np.random.default_rng(seed)

    def normal(shape, scale):
        if scale == 0:
            return np.zeros(shape, np.float32)
        x = rng.standard_normal(shape, dtype=np.float32)
        x *= scale
        return x

    tensors = {}
    for name, shape in shapes.items():
        if name.endswith((".bias", ".running_mean")):
            tensors[name] = normal(shape, bias_std)
        elif name.endswith(".running_var"):   # BatchNorm variances, > 0: exp(N(0, gain_std^2))
            tensors[name] = np.exp(normal(shape, gain_std))
        elif len(shape) == 1:
            tensors[name] = normal(shape, gain_std)
            tensors[name] += 1
        else:
            tensors[name] = normal(shape, std(name, shape) if callable(std) else std)
    return tensors


def random_checkpoint(config, seed=0, *, std=0.02, bias_std: float = 0.0,
                      gain_std: float = 0.0, **schema_options) -> dict:
    """Random tensors for every name of ``config``'s checkpoint (a config.json dict or a
    config load_config gave; its model_type picks the family), float32, name -> array.

    ``schema_options`` go to the family's schema (``prefix``, ``lm_head``; BERT's ``pooler``,
    ``mlm``, ``nsp``, ...); the init as in random_tensors."""
    from .io.json_fields import config_dict
    from .loading import family_part, model_type_of
    raw = config_dict(config)
    shapes = family_part(model_type_of(raw), "tensor_shapes")(raw, **schema_options)
    return random_tensors(shapes, seed, std=std, bias_std=bias_std, gain_std=gain_std)



# A tiny SAM for tests: a 128 px input (an 8 x 8 grid), windows of 3 (so the grid is padded to
# 9 x 9, the reference's unmasked padding exercised), block 1 global, widths 32; the decoder
# with the official 8 heads so that the same config round-trips through official names.
TINY_SAM = {
    "model_type": "sam",
    "vision_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                      "mlp_dim": 64, "image_size": 128, "patch_size": 16, "window_size": 3,
                      "global_attn_indexes": [1], "output_channels": 32, "num_pos_feats": 16},
    "prompt_encoder_config": {"hidden_size": 32, "image_size": 128, "patch_size": 16,
                              "mask_input_channels": 8},
    "mask_decoder_config": {"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 8,
                            "iou_head_hidden_dim": 32},
}


def sam_init_std(name: str, shape) -> float:
    """SAM weights whose activations stay O(1) through a random model (a test must see every
    tensor in the outputs): 1 / sqrt(fan_in) for matrices and convolutions (fan_in: every axis
    but the first; ConvTranspose2d's (in, out, kh, kw) likewise, close enough), 0.5 for the
    embeddings, tokens and position / rel-pos tables, 1 for the random-Fourier matrix (the
    official init, N(0, 1))."""
    if "positional" in name:
        return 1.0
    if any(s in name for s in ("pos_embed", "rel_pos", "_embed.", "token")) or \
            name.endswith(("_embed.weight", "tokens.weight")):
        return 0.5
    return 1.0 / float(np.sqrt(np.prod(shape[1:])))


def write_sam_checkpoint(path, config=None, seed=0, official_names: bool = False):
    """Writes a random SAM checkpoint and returns what ``fastattn.load`` takes.

    ``config``: a config.json dict or a SamConfig (default TINY_SAM). Hugging Face layout
    (default): ``path`` is a directory, written with config.json and model.safetensors (the
    tensors transformers' SamModel saves); returns ``path``. ``official_names=True``: one
    .safetensors file of the official segment-anything names; ``path`` is the file (a name
    ending in .safetensors) or a directory to write ``sam_tiny.safetensors`` into; returns the
    file's path. Official checkpoints carry no config: loading infers it from the shapes, with
    the official decoder's 8 heads and LayerNorm eps 1e-5, so the config must have 8 decoder
    heads (ValueError otherwise).

    Weights: sam_init_std (O(1) activations), biases N(0, 0.1^2), norm gains 1 + N(0, 0.1^2)."""
    import os

    from .io import save_checkpoint, save_safetensors
    from .models.sam import SamConfig
    from .models.sam.schema import hf_to_official, sam_tensor_shapes
    c = SamConfig.of(TINY_SAM if config is None else config)
    tensors = random_tensors(sam_tensor_shapes(c), seed, std=sam_init_std, bias_std=0.1,
                             gain_std=0.1)
    path = os.fspath(path)
    if not official_names:
        save_checkpoint(path, c.to_dict(), tensors)
        return path
    if c.decoder.num_attention_heads != 8:
        raise ValueError(f"write_sam_checkpoint: official checkpoints imply 8 decoder heads, the "
                         f"config has {c.decoder.num_attention_heads}")
    if not path.endswith(".safetensors"):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, "sam_tiny.safetensors")
    save_safetensors(path, hf_to_official(tensors, c))
    return path
