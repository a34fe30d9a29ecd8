"""pytest-benchmark: KV-cache decode / prefill attend and append (NumPy matmul decode as the
competitor)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("kv_cache"))
def test_kv_cache(benchmark, case, impl):
    run_case(benchmark, case, impl)
