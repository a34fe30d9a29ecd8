"""pytest-benchmark: text classification (BERT-base shape, end to end) vs transformers'
pipeline, and DistilBERT-shape sentence embeddings (shapes from
fastattn.bench.text_classification)."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("text_classification"))
def test_text_classification(benchmark, case, impl):
    run_case(benchmark, case, impl)
