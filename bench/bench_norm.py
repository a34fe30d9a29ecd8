"""pytest-benchmark: layer_norm and rms_norm vs NumPy (and torch when installed)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("norm"))
def test_norm(benchmark, case, impl):
    run_case(benchmark, case, impl)
