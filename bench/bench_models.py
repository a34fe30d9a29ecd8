"""pytest-benchmark: end-to-end decoders (GPT-2 small generate / prefill vs transformers,
TinyLlama-shape decode step and prefill). Heavy: builds the models with random weights."""
import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("models"))
def test_models(benchmark, case, impl):
    run_case(benchmark, case, impl)
