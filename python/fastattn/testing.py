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

