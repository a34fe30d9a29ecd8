"""pytest-benchmark: rope vs the NumPy reference (and torch when installed)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("rope"))
def test_rope(benchmark, case, impl):
    run_case(benchmark, case, impl)
