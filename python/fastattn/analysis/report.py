"""What ``fastattn analyze`` prints: per phase of a model (prefill and decode, or one forward)
its cost, the roofline prediction on this machine, the bound, and the measured time when the
directory has weights; and the compute-optimal model of a training budget."""
from __future__ import annotations

import os

from .cost import DECODERS, VISION, cost, resolve_config
from .predict import predict


def has_weights(path) -> bool:
    return any(os.path.exists(os.path.join(path, name)) for name in
               ("model.safetensors", "model.safetensors.index.json"))


def _seconds(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _bytes(b: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.1f} {unit}"
    return f"{b:.0f} B"


def phases(config, *, batch: int, seq_len: int, decode: int, image_size: int | None,
           model=None, weights: str | None = None, **options) -> dict:
    """{phase: Cost}: "prefill" and "decode" for a decoder (a phase of 0 tokens left out),
    "forward" for an encoder or a vision model. ``model``: a loaded model costed instead of
    the config (its Linear layers' formats: cost); ``weights``: the Linear matrices' format
    (every family); ``options``: the decoders' what-ifs."""
    source = config if model is None else model
    if config.model_type in DECODERS:
        out = {}
        if seq_len:
            out["prefill"] = cost(source, batch=batch, seq_len=seq_len, weights=weights,
                                  **options)
        if decode:
            out["decode"] = cost(source, batch=batch, seq_len=decode, mode="decode",
                                 context=seq_len, weights=weights, **options)
        return out
    if config.model_type in VISION:
        return {"forward": cost(source, batch=batch, image_size=image_size, weights=weights)}
    return {"forward": cost(source, batch=batch, seq_len=seq_len, weights=weights)}


def analyze(path, *, seq_len: int = 512, decode: int = 128, batch: int = 1,
            measure: bool = True, image_size: int | None = None, parts: bool = False,
            weights_dtype: str = "float32", kv_dtype: str = "float32",
            kv_heads: int | None = None, weights: str | None = None, out=print) -> None:
    """Prints the analysis of the model directory (or config.json) ``path`` (module
    docstring). ``measure``: run the model when the directory has weights (and the costs
    describe it: float32, its own KV heads), and measure the machine if it is not cached;
    without it, a prediction only from a cached machine. ``weights``: the format the Linear
    matrices are loaded in (fastattn.load(weights=)): with a checkpoint the model is loaded so
    (its PackedMatrix bytes drive the predicted bytes) and measured so; with a config alone
    the format's bytes per weight (analysis.dtypes)."""
    from .machine import cached_machine, machine
    config, _ = resolve_config(path)
    what_if = weights_dtype != "float32" or kv_dtype != "float32" or kv_heads is not None
    options = {}
    if config.model_type in DECODERS:
        options = dict(weights_dtype=weights_dtype, kv_dtype=kv_dtype, kv_heads=kv_heads)
    model = None
    if weights is not None:
        from ..models.weights import check_format
        check_format("analyze", weights)
        if os.path.isdir(path) and has_weights(path):
            from .. import load
            model = load(path, weights=weights)
    costs = phases(config, batch=batch, seq_len=seq_len, decode=decode,
                   image_size=image_size, model=model,
                   # a loaded model: its own PackedMatrix bytes (K padded to 32), not the
                   # format's nominal bytes per weight
                   weights=weights if model is None else None, **options)
    first = next(iter(costs.values()))
    stored = (weights_dtype if first.weights is None
              else f"Linear {first.weights}, the rest {weights_dtype}")
    line = (f"# {config.model_type}: {first.params / 1e6:.1f}M parameters, weights "
            f"{_bytes(first.weight_memory)} ({stored}), batch {batch}")
    if config.model_type in DECODERS:
        line += (f"; KV cache {_bytes(costs.get('decode', first).kv_cache_memory)} "
                 f"({kv_dtype}) at "
                 f"{seq_len + decode} tokens")
    line += f"; peak memory {_bytes(max(c.peak_memory for c in costs.values()))}"
    out(line)
    m = machine() if measure else cached_machine()
    out(f"# machine: {m}" if m else "# machine: not measured yet (run without --no-measure "
                                   "once): costs only")
    measured = {}
    if measure and m is not None and not what_if and os.path.isdir(path) and has_weights(path):
        measured = _measure(path, config, batch=batch, seq_len=seq_len, decode=decode,
                            image_size=first.image_size, model=model)
    out(f"{'phase':<9}{'tokens':>8}{'GFLOP':>10}{'read':>10}{'FLOP/B':>8}"
        f"{'predicted':>12}{'bound':>9}{'measured':>12}{'meas/pred':>10}")
    for name, c in costs.items():
        tokens = c.seq_len * c.batch if c.image_size is None else f"{c.image_size}px"
        row = (f"{name:<9}{tokens!s:>8}{c.flops / 1e9:>10.2f}{_bytes(c.bytes):>10}"
               f"{c.intensity:>8.1f}")
        if m is not None:
            p = predict(c, m)
            row += f"{_seconds(p.seconds):>12}{p.bound:>9}"
            if name in measured:
                row += f"{_seconds(measured[name]):>12}{measured[name] / p.seconds:>10.2f}"
        out(row)
        if name == "decode" and m is not None:
            out(f"{'':<9}per token: predicted {_seconds(predict(c, m).seconds / c.seq_len)}"
                + (f", measured {_seconds(measured[name] / c.seq_len)}" if name in measured
                   else ""))
    if parts:
        for name, c in costs.items():
            out(f"\n# {name}: parts")
            _parts_table(c, m, out)
    if what_if and measure:
        out("# (not measured: the costs assume another dtype or KV-head count than the model "
            "runs)")


def _parts_table(c, m, out) -> None:
    out(f"{'part':<14}{'GFLOP':>10}{'read':>10}{'FLOP/B':>8}{'predicted':>12}{'bound':>9}")
    timed = predict(c, m).parts if m is not None else [None] * len(c.parts)
    for p, t in zip(c.parts, timed):
        intensity = f"{p.intensity:.1f}" if p.bytes else "-"
        row = f"{p.name:<14}{p.flops / 1e9:>10.3f}{_bytes(p.bytes):>10}{intensity:>8}"
        if t is not None:
            row += f"{_seconds(t.seconds):>12}{t.bound:>9}"
        out(row)


def _measure(path, config, *, batch, seq_len, decode, image_size, model=None) -> dict:
    from .. import load
    from .measure import measure_decoder, measure_encoder
    model = load(path) if model is None else model
    if config.model_type in DECODERS:
        return measure_decoder(model, batch=batch, seq_len=seq_len, steps=decode)
    return measure_encoder(model, config, batch=batch, seq_len=seq_len,
                           image_size=image_size or 0)


def scaling_report(flops: float, out=print) -> None:
    """The compute-optimal N and D of a training budget and the loss the fit predicts."""
    from .scaling import compute_optimal
    r = compute_optimal(flops)
    out("# Chinchilla (Hoffmann et al. 2022, approach 3): L(N, D) = 1.69 + 406.4 / N^0.34 + "
        "410.7 / D^0.28, C = 6 N D")
    out(f"budget {flops:.3g} FLOPs: N = {r.params:.3g} parameters, D = {r.tokens:.3g} tokens "
        f"({r.tokens_per_param:.1f} tokens per parameter), predicted loss {r.loss:.3f} nats/token")
