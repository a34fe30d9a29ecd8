"""pytest-benchmark: matmul (square, batched, GEMV, prefill, fused Linear + GELU) vs numpy."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("matmul"))
def test_matmul(benchmark, case, impl):
    run_case(benchmark, case, impl)
