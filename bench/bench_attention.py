"""pytest-benchmark: attention vs NumPy and PyTorch SDPA (shapes from fastattn.bench.attention),
plus the memory goal (peak RSS growth of a causal L=16384, H=16, D=64 call)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("attention"))
def test_attention(benchmark, case, impl):
    run_case(benchmark, case, impl)


def test_attention_memory_goal(benchmark):
    from fastattn.bench.attention import memory_growth
    growth, seconds = benchmark.pedantic(memory_growth, rounds=1, iterations=1)
    benchmark.extra_info.update({"peak_rss_growth_mib": growth, "seconds": seconds})
    assert growth < 64
