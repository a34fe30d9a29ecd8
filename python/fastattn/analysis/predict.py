"""The roofline prediction of a Cost on a Machine: each part takes

    seconds = max(flops / peak_flops, bytes / bandwidth)

(compute-bound above the machine's ridge intensity, memory-bound below it), and the call
takes the sum of its parts (the kernels run one after another). What the model leaves out:
per-call overhead (Python and kernel launch, ~10 us a call: it matters for tiny models and
single-token steps of small ones), caches (a part whose bytes fit in L2 reads them faster than
DRAM's bandwidth), and kernels that run below the large-matmul peak (small or thin matrices,
attention's softmax).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PartTime:
    """One part's predicted seconds and its bound: "compute" or "memory"."""
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
        """What bounds the call: the bound of the parts holding most of its time."""
        return "compute" if self.compute_seconds >= self.memory_seconds else "memory"

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
        compute = p.flops / machine.peak_flops
        memory = p.bytes / machine.bandwidth
        parts.append(PartTime(p.name, max(compute, memory),
                              "compute" if compute >= memory else "memory"))
    return Prediction(sum(p.seconds for p in parts), tuple(parts), cost, machine)
