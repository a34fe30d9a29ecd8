"""pytest-benchmark: max_pool2d, adaptive_avg_pool2d and interpolate vs torch (when installed)
and the NumPy reference."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("resample"))
def test_resample(benchmark, case, impl):
    run_case(benchmark, case, impl)
