"""The result of a cost count: FLOPs and bytes per part of a model, and their totals.

FLOP convention: a multiply-add is 2 FLOPs, so a (M, K) x (K, N) product is 2 M K N and a
convolution 2 Cout (Cin / groups) kh kw Ho Wo per image — what
``torch.utils.flop_counter.FlopCounterMode`` counts for mm / addmm / bmm / convolution. Bias
adds and the residual adds that fastattn fuses into a matmul's epilogue are not counted
(FlopCounterMode does not count them either). Element-wise work (norms, softmax, activations,
RoPE, pooling) is counted as a few FLOPs per element (the constants are in the modules that
count them); FlopCounterMode counts none of it.

Bytes: what the forward reads from memory, split into weights (in ``weights_dtype``), the KV
cache (in ``kv_dtype``) and activations (float32: inputs read and outputs written by each
kernel). A weight read once per forward is counted once per forward: a decode of ``n`` steps
reads every weight ``n`` times.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Part:
    """One part of a model (all layers summed): ``flops``; bytes read of ``weight_bytes``,
    ``kv_bytes`` and ``activation_bytes``; ``matmul`` true for the parts FlopCounterMode
    counts (matrix products and convolutions); ``calls``, the kernel calls it takes;
    ``streams``, those of its calls that stream an operand from memory (a weight matrix, a
    layer's KV cache), each paying the machine's stream start-up when memory-bound."""
    name: str
    flops: float = 0.0
    weight_bytes: float = 0.0
    kv_bytes: float = 0.0
    activation_bytes: float = 0.0
    matmul: bool = False
    calls: int = 0
    streams: int = 0

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.kv_bytes + self.activation_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte read (inf for a part that reads nothing)."""
        return self.flops / self.bytes if self.bytes else float("inf")


@dataclasses.dataclass(frozen=True)
class Cost:
    """What one call of a model costs (``fastattn.analysis.cost``).

    - ``params``: elements of every tensor of the checkpoint (tied weights once);
    - ``parts``: the Part list, in forward order; ``part(name)``, ``flops_by_part``;
    - ``flops``, ``bytes`` (read: ``weight_bytes + kv_bytes + activation_bytes``),
      ``intensity`` (FLOPs / byte);
    - ``peak_memory``: ``weight_memory`` (params in weights_dtype, the Linear matrices in ``weights``) + ``kv_cache_memory`` (the
      cache a generation of context + seq_len tokens holds; 0 for encoders) +
      ``largest_activation`` (the largest single float32 tensor of the forward: flash
      attention never materialises the (L, L) scores, so it is not one of them).
    """
    model_type: str
    mode: str
    batch: int
    seq_len: int
    context: int
    weights_dtype: str
    kv_dtype: str
    params: int
    parts: tuple
    weight_memory: float
    kv_cache_memory: float
    largest_activation: float
    image_size: int | None = None
    # the Linear matrices' format when it is not weights_dtype (cost's ``weights``, or the
    # formats of a model loaded with fastattn.load(weights=...)): "q8", "q4", ..., "mixed"
    weights: str | None = None

    def _sum(self, field: str) -> float:
        return sum(getattr(p, field) for p in self.parts)

    @property
    def flops(self) -> float:
        return self._sum("flops")

    @property
    def matmul_flops(self) -> float:
        """FLOPs of the matrix products and convolutions only (what FlopCounterMode counts)."""
        return sum(p.flops for p in self.parts if p.matmul)

    @property
    def weight_bytes(self) -> float:
        return self._sum("weight_bytes")

    @property
    def kv_bytes(self) -> float:
        return self._sum("kv_bytes")

    @property
    def activation_bytes(self) -> float:
        return self._sum("activation_bytes")

    @property
    def bytes(self) -> float:
        return self._sum("bytes")

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else float("inf")

    @property
    def peak_memory(self) -> float:
        return self.weight_memory + self.kv_cache_memory + self.largest_activation

    @property
    def flops_by_part(self) -> dict:
        return {p.name: p.flops for p in self.parts}

    def part(self, name: str) -> Part:
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(f"cost: no part {name!r}; parts: {', '.join(p.name for p in self.parts)}")

    def table(self) -> str:
        """The parts as a text table: GFLOP, MB read, FLOPs/byte."""
        rows = [f"{'part':<14}{'GFLOP':>10}{'MB read':>10}{'FLOP/B':>9}"]
        for p in self.parts:
            rows.append(f"{p.name:<14}{p.flops / 1e9:>10.3f}{p.bytes / 1e6:>10.1f}"
                        f"{p.intensity:>9.1f}")
        rows.append(f"{'total':<14}{self.flops / 1e9:>10.3f}{self.bytes / 1e6:>10.1f}"
                    f"{self.intensity:>9.1f}")
        return "\n".join(rows)


class PartCounter:
    """Accumulates Parts by name, in the order first seen (a model's layers add to the same
    parts)."""

    def __init__(self):
        self._parts: dict[str, dict] = {}

    def add(self, name: str, *, flops=0.0, weight_bytes=0.0, kv_bytes=0.0,
            activation_bytes=0.0, matmul=False, calls=1, streams=0) -> None:
        p = self._parts.setdefault(name, dict(flops=0.0, weight_bytes=0.0, kv_bytes=0.0,
                                              activation_bytes=0.0, matmul=matmul, calls=0,
                                              streams=0))
        p["flops"] += flops
        p["weight_bytes"] += weight_bytes
        p["kv_bytes"] += kv_bytes
        p["activation_bytes"] += activation_bytes
        p["calls"] += calls
        p["streams"] += streams

    def parts(self) -> tuple:
        return tuple(Part(name, **fields) for name, fields in self._parts.items())
