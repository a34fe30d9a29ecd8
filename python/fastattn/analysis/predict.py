"""The roofline prediction of a Cost on a Machine: each part takes

    seconds = max(flops / peak_flops, bytes / bandwidth + streams x stream_startup)
              + calls x call_overhead

and the model call takes the sum of its parts (the kernels run one after another). Each term
has its physical reason and its own measurement (analysis/machine.py):

- ``flops / peak_flops``: the arithmetic at the large-matmul peak (compute-bound parts, above
  the machine's ridge intensity);
- ``bytes / bandwidth``: the bytes read at the streaming bandwidth of a matrix-vector product
  (memory-bound parts: a decode step's weights and KV cache);
- ``streams x stream_startup``: each kernel call that streams an operand from memory (a
  weight matrix, a layer's KV cache) starts slower than the bandwidth: prefetchers ramp up,
  the first touch of each page misses the TLB, threads fork and join. It belongs to the
  memory term (a compute-bound call hides it behind its arithmetic); it is what a decode
  step of a small model (GPT-2: 48 matrices of 2.4-9.4 MB per token) pays beyond its bytes;
- ``calls x call_overhead``: the fixed price of every kernel call (Python layers, checks,
  binding, small reshapes), which only small parts notice.

What the model leaves out: caches (a part whose bytes fit in L2 or L3 reads them faster than
the measured streaming bandwidth), and kernels that run below the large-matmul peak (thin
matrices, attention's exp and its short rows).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PartTime:
    """One part's predicted seconds and its bound: "compute", "memory", or "calls" when its
    kernel calls' overhead is the largest term."""
    name: str
    seconds: float
    bound: str


@dataclasses.dataclass(frozen=True)
class Prediction:
    """``seconds`` (the sum of ``parts``), ``parts`` (PartTime, in the cost's order), and the
    totals of the compute-bound and memory-bound parts."""
    seconds: float
    parts: tuple
    cost: object
    machine: object

    def _bound_seconds(self, bound: str) -> float:
        return sum(p.seconds for p in self.parts if p.bound == bound)

    @property
    def compute_seconds(self) -> float:
        return self._bound_seconds("compute")

    @property
    def memory_seconds(self) -> float:
        return self._bound_seconds("memory")

    @property
    def bound(self) -> str:
        """What bounds the call: the bound ("compute", "memory", "calls") of the parts holding
        most of its time."""
        totals = {b: self._bound_seconds(b) for b in ("compute", "memory", "calls")}
        return max(totals, key=totals.get)

    def part(self, name: str) -> PartTime:
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(f"prediction: no part {name!r}")


def predict(cost, machine) -> Prediction:
    """The roofline time of ``cost`` (fastattn.analysis.cost) on ``machine``
    (fastattn.analysis.machine()); module docstring."""
    parts = []
    for p in cost.parts:
        startup = p.streams * getattr(machine, "stream_startup", 0.0)
        terms = {"compute": p.flops / machine.peak_flops,
                 "memory": p.bytes / machine.bandwidth + startup}
        calls = p.calls * machine.call_overhead
        bound = max(terms, key=terms.get)
        if calls > terms[bound]:
            bound = "calls"
        parts.append(PartTime(p.name, max(terms.values()) + calls, bound))
    return Prediction(sum(p.seconds for p in parts), tuple(parts), cost, machine)
