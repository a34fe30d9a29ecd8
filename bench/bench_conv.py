"""pytest-benchmark: conv2d (3x3, 1x1, strided, depthwise, patch embedding) and
conv_transpose2d vs torch, the patch embedding vs its matmul."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("conv"))
def test_conv(benchmark, case, impl):
    run_case(benchmark, case, impl)
