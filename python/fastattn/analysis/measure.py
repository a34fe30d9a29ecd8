"""Measured times of the phases a cost predicts, by running the loaded model on random inputs:

- decoders: ``prefill`` = ``model(ids)`` over ``seq_len`` tokens (logits for every position, as
  ``cost(mode="prefill")`` counts); ``decode`` = ``steps`` single-token ``model.step`` calls
  after a prefill of ``seq_len`` tokens through the KV cache (untimed), summed;
- BERT: ``forward`` = ``model(ids, return_dict=True)`` (encoder and pooler);
- ViT / ResNet: ``forward`` = ``model(pixel_values)`` at ``image_size`` pixels square.

Each timed call runs once untimed first (first-touch of buffers, thread start); a whole call
is then timed ``repeats`` times and the best kept (a decode phase: ``repeats`` times from a
fresh cache, its steps summed, the best sum kept). The best, not the median, because the
prediction it is compared with is built from best-of figures (the machine's peak and
bandwidth, analysis/machine.py): on a machine shared with other jobs a neighbour only ever
adds time, so the best of several runs is the estimate of the unloaded time on both sides.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from .cost import ENCODERS


def seconds(fn, repeats: int = 3, *, best: bool = False) -> float:
    """Wall seconds of ``fn()``: run once untimed, then ``repeats`` timed runs; their median,
    or with ``best`` their minimum (the machine's peak figures: what the hardware can do, not
    what a loaded machine lets through)."""
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return min(samples) if best else statistics.median(samples)


def measure_decoder(model, *, batch: int, seq_len: int, steps: int, repeats: int = 3,
                    seed: int = 0) -> dict:
    """{"prefill": seconds, "decode": seconds of ``steps`` steps} (module docstring); a phase
    of 0 tokens is left out."""
    rng = np.random.default_rng(seed)
    vocab = model.vocab_size
    out = {}
    ids = rng.integers(0, vocab, (batch, seq_len))
    if seq_len:
        out["prefill"] = seconds(lambda: model(ids), repeats, best=True)
    if steps:
        cache = model.start_generation(batch, seq_len + steps)
        positions = np.broadcast_to(np.arange(seq_len), (batch, seq_len))
        token = rng.integers(0, vocab, (batch, 1))
        totals = []
        for _ in range(max(repeats, 1)):
            cache.reset()
            if seq_len:
                model.step(cache, ids, positions, None)
            total = 0.0
            for i in range(steps):
                pos = np.full((batch, 1), seq_len + i)
                t0 = time.perf_counter()
                model.step(cache, token, pos, None)
                total += time.perf_counter() - t0
            totals.append(total)
        out["decode"] = min(totals)
    return out


def measure_encoder(model, config, *, batch: int, seq_len: int = 0, image_size: int = 0,
                    repeats: int = 3, seed: int = 0) -> dict:
    """{"forward": seconds} of a BERT forward over ``seq_len`` tokens, or of a vision model
    at ``image_size`` pixels square."""
    rng = np.random.default_rng(seed)
    if config.model_type in ENCODERS:
        ids = rng.integers(0, config.vocab_size, (batch, seq_len))
        return {"forward": seconds(lambda: model(ids, return_dict=True), repeats, best=True)}
    pixels = rng.standard_normal((batch, config.num_channels, image_size, image_size),
                                 dtype=np.float32)
    return {"forward": seconds(lambda: model(pixels), repeats, best=True)}
