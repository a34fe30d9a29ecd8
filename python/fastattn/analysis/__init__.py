"""fastattn.analysis: what a model costs, what this machine can do, and what that predicts.

    from fastattn import analysis
    c = analysis.cost("path/to/model", seq_len=512)          # params, FLOPs by part, bytes
    analysis.kv_cache_bytes(config, tokens=4096)             # what KVCache allocates
    analysis.attention_variants(config, 4096)                # MHA vs GQA vs MQA
    m = analysis.machine()                                   # measured once, cached on disk
    analysis.predict(c, m).seconds                           # roofline time, per part
    analysis.compute_optimal(1e21)                           # Chinchilla's N, D and loss

Each piece is one small module: result (Part, Cost, the FLOP convention), layers (per-layer
counts), transformer / text / vision / convnet (the families), cost, kv, machine, predict,
scaling, compare (CNN vs ViT). docs/analysis.md has the formulas and measured figures.
"""
from .cost import cost
from .kv import attention_variants, kv_cache_bytes
from .machine import Machine, machine
from .predict import Prediction, predict
from .result import Cost, Part
from .scaling import chinchilla_loss, compute_optimal

__all__ = ["cost", "Cost", "Part", "kv_cache_bytes", "attention_variants", "machine",
           "Machine", "predict", "Prediction", "chinchilla_loss", "compute_optimal"]
