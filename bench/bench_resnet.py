"""pytest-benchmark: ResNet-50 at 224 x 224, batch 1, vs transformers' ResNetForImageClassification
on PyTorch (shapes from fastattn.bench.resnet)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("resnet"))
def test_resnet(benchmark, case, impl):
    run_case(benchmark, case, impl)
