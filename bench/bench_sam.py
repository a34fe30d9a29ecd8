"""pytest-benchmark: SAM's ViT-B image encoder at 1024 x 1024 and one click (prompt encoder +
mask decoder) vs transformers on PyTorch (shapes from fastattn.bench.sam)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("sam"))
def test_sam(benchmark, case, impl):
    run_case(benchmark, case, impl)
