"""pytest-benchmark: softmax and log_softmax vs NumPy (and torch when installed)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("softmax"))
def test_softmax(benchmark, case, impl):
    run_case(benchmark, case, impl)
