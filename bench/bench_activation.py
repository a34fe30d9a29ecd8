"""pytest-benchmark: gelu, gelu_tanh, silu, swiglu vs NumPy (and torch when installed)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("activation"))
def test_activation(benchmark, case, impl):
    run_case(benchmark, case, impl)
