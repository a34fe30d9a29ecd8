"""pytest-benchmark: ViT-B/16 forward at 224, batch 1 and 8, vs transformers on PyTorch, and the
matmul ceiling (shapes from fastattn.bench.vit)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("vit"))
def test_vit(benchmark, case, impl):
    run_case(benchmark, case, impl)
