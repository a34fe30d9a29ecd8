"""pytest-benchmark: BERT forward (BERT-base shape) vs transformers on PyTorch, and MiniLM-L6
shape sentence embeddings (shapes from fastattn.bench.bert)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("bert"))
def test_bert(benchmark, case, impl):
    run_case(benchmark, case, impl)
