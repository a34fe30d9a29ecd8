"""pytest-benchmark: softmax, norms, activations vs NumPy (and torch when installed)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("rowwise"))
def test_rowwise(benchmark, case, impl):
    run_case(benchmark, case, impl)
