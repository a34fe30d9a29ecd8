"""Turns fastattn.bench cases into pytest-benchmark runs: one benchmark per (case, impl)."""
import pytest


def params_for(suite, quick=True):
    from fastattn.bench import iter_cases
    out = []
    for case in iter_cases([suite], quick=quick):
        for impl in case.impls:
            out.append(pytest.param(case, impl, id=f"{case.op}[{case.shape}]-{impl}"))
    return out


def run_case(benchmark, case, impl):
    benchmark.extra_info.update({"op": case.op, "shape": case.shape, "impl": impl,
                                 "bytes": case.bytes, "flops": case.flops})
    benchmark(case.impls[impl])
