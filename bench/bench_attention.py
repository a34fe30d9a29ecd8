"""pytest-benchmark: attention vs NumPy and PyTorch SDPA (shapes from fastattn.bench.attention),
plus the memory goal (peak RSS growth of a causal L=16384, H=16, D=64 call) and the SAM
global block's with its relative-position bias."""
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


def test_attention_rel_pos_memory(benchmark):
    # SAM's global blocks: the relative-position bias stays inside the kernel, where a
    # materialised (1, 12, 4096, 4096) float32 bias would take 768 MiB.
    from fastattn.bench.attention import rel_pos_memory
    growth, seconds = benchmark.pedantic(rel_pos_memory, rounds=1, iterations=1)
    benchmark.extra_info.update({"peak_rss_growth_mib": growth, "seconds": seconds})
    assert growth < 64
