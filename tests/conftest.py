"""Shared fixtures: every kernel test runs on every ISA path this machine has (`isa`), and
helpers check that results are bit-identical for any thread count; small random decoder
checkpoints (GPT-2, the LLaMA family) for the model tests."""
import numpy as np
import pytest

import fastattn
from fastattn import testing

ISAS = fastattn.available_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs the test with the kernels forced onto one ISA path, then restores the default."""
    with fastattn.use_isa(request.param):
        yield request.param


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: reproducible, different per test."""
    seed = sum(request.node.nodeid.encode()) * 2654435761 % (2**32)
    return np.random.default_rng(seed)


def assert_thread_invariant(fn, thread_counts=(1, 2, 3)):
    """fn() must give bit-identical results for every thread count."""
    results = []
    for n in thread_counts:
        with fastattn.threads(n):
            results.append(fn())
    for n, r in zip(thread_counts[1:], results[1:]):
        assert np.array_equal(results[0], r, equal_nan=True), f"threads=1 and threads={n} differ"
    return results[0]


def max_rel_error(actual, expected, floor=0.0):
    """max |actual - expected| / max(|expected|, floor) over all elements."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    denom = np.maximum(np.abs(expected), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(actual == expected, 0.0, np.abs(actual - expected) / denom)
    return float(np.max(err)) if err.size else 0.0


def assert_classify_matches_logits(model, pixel_values, top_k=3):
    """model.classify on a preprocessed batch gives, per image, the top_k labels of
    softmax(logits) in order ("class i" labels) with their probabilities."""
    top = model.classify(pixel_values, top_k=top_k)     # a preprocessed batch goes in as it is
    logits = model(pixel_values).logits.astype(np.float64)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    for row, probs in zip(top, p):
        order = np.argsort(-probs)[:top_k]
        assert [label for label, _ in row] == [f"class {i}" for i in order]
        # a float32 softmax of a few O(1) logits: a few ulps
        np.testing.assert_allclose([q for _, q in row], probs[order], rtol=1e-5)


def assert_epilogue_within(y, expected, z, tol, *, epilogue: bool, residual=None):
    """y (float32) against the float64 `expected` = act(z + bias) + residual of a product
    (matmul, conv2d) whose own rounding is bounded by `tol`. The epilogue widens the bound:
    the activation sees z with error tol + U|z| (1.2x: its slope is at most ~1.13 for GELU)
    and adds its own approximation error (2e-6 (1 + z^2) relative, the erfc bound with room);
    adding the residual rounds once more (2U relative)."""
    u = 2.0 ** -24
    if epilogue:
        act = expected if residual is None else expected - np.asarray(residual, np.float64)
        tol = 1.2 * (tol + u * np.abs(z)) + 2e-6 * (1 + z * z) * np.abs(act)
    if residual is not None:
        tol = tol + 2 * u * np.abs(expected)
    assert y.shape == expected.shape and y.dtype == np.float32
    err = np.abs(y.astype(np.float64) - expected)
    assert np.all(err <= tol), f"max err {err.max():.3g}, worst ratio {(err / tol).max():.3g}"


# -- small random checkpoints: (config.json dict, Hugging Face-named float32 tensors) ----------

# N(0, 0.2^2) for every tensor, norm gains 1 + N(0, 0.2^2): large enough that a wrong layout,
# transpose or bias shows in the logits.
LARGE_INIT = dict(std=0.2, bias_std=0.2, gain_std=0.2)


def gpt2_checkpoint(rng, *, vocab=61, embd=32, heads=4, layers=2, positions=96, tied=True,
                    prefix=""):
    config = dict(model_type="gpt2", n_embd=embd, n_head=heads, n_layer=layers,
                  n_positions=positions, vocab_size=vocab, layer_norm_epsilon=1e-5,
                  activation_function="gelu_new", n_inner=None, tie_word_embeddings=tied)
    return config, testing.random_checkpoint(config, rng, prefix=prefix, **LARGE_INIT)


def llama_checkpoint(rng, model_type="llama", *, vocab=61, hidden=32, heads=4, kv_heads=2,
                     head_dim=None, inter=48, layers=2, tied=False, window=None,
                     rope_scaling=None, rope_theta=10000.0, partial_rotary_factor=None):
    d = head_dim or hidden // heads
    config = dict(model_type=model_type, hidden_size=hidden, intermediate_size=inter,
                  num_hidden_layers=layers, num_attention_heads=heads,
                  num_key_value_heads=kv_heads, head_dim=d, rms_norm_eps=1e-6,
                  vocab_size=vocab, hidden_act="silu", tie_word_embeddings=tied,
                  rope_theta=rope_theta, rope_scaling=rope_scaling,
                  max_position_embeddings=256)
    if partial_rotary_factor is not None:
        config["partial_rotary_factor"] = partial_rotary_factor
    if model_type == "mistral":
        config["sliding_window"] = window
    if model_type == "qwen2":
        config["use_sliding_window"] = False
    return config, testing.random_checkpoint(config, rng, **LARGE_INIT)


# -- small configs and tensors for the io / config / loading tests ----------------------------

TINY_GPT2 = {"model_type": "gpt2", "n_embd": 8, "n_head": 2, "n_layer": 1, "n_positions": 16,
             "vocab_size": 11}


def random_tensors(rng, n=7):
    return testing.random_tensors({f"layer.{i}.weight": (i + 1, 3) for i in range(n)}, rng,
                                  std=1.0)


LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 160,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 100, "max_position_embeddings": 2048}

BERT = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64,
        "vocab_size": 50}


def _owner(array):
    """The object at the end of an array's .base chain (through NumPy's memoryview wrapper)."""
    while True:
        if isinstance(array, np.ndarray) and array.base is not None:
            array = array.base
        elif isinstance(array, memoryview):
            array = array.obj
        else:
            return array
