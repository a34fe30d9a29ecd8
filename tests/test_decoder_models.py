"""GPT-2 and LLaMA-family decoders: logits against the float64 reference forward, KV-cached
decoding against full recomputation, left-padded batches against one-by-one, Mistral's sliding
window past the ring's capacity, generation options."""
import types

import numpy as np
import pytest

from fastattn.io import load_config
from fastattn.models.gpt2 import build_gpt2
from fastattn.models.llama import build_llama
from fastattn.reference import models as reference

from conftest import gpt2_checkpoint, llama_checkpoint


def build(config, tensors):
    c = load_config(config)
    return (build_gpt2 if c.model_type == "gpt2" else build_llama)(c, tensors), c


def reference_logits(config, tensors, ids, mask=None):
    w = {k: v.astype(np.float64) for k, v in tensors.items()}
    forward = reference.gpt2 if config.model_type == "gpt2" else reference.llama
    return forward(w, config, ids, mask)


# Each logit is a float32 dot product of hidden states that passed through 2 blocks of float32
# matmuls (K <= 4 * 32), attention and norms: relative rounding ~ 1e-7 * sqrt(K) per op, a few
# tens of ops deep, on logits of magnitude ~ 1..10. 2e-5 of the largest logit leaves ~10x margin
# over the errors observed while staying far below any real bug (a wrong mask or position moves
# logits by O(1)).
def assert_close_logits(got, want):
    scale = np.abs(want).max()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * scale)


CASES = {
    "gpt2": lambda rng: gpt2_checkpoint(rng),
    "gpt2-untied-prefixed": lambda rng: gpt2_checkpoint(rng, tied=False, prefix="transformer."),
    "llama-gqa": lambda rng: llama_checkpoint(rng),
    "llama-mqa-tied": lambda rng: llama_checkpoint(rng, kv_heads=1, tied=True),
    "llama3-scaling": lambda rng: llama_checkpoint(rng, rope_theta=500000.0, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16}),
    "mistral-window": lambda rng: llama_checkpoint(rng, "mistral", window=5),
    "llama-partial-rotary": lambda rng: llama_checkpoint(rng, partial_rotary_factor=0.5),
    "qwen2-bias": lambda rng: llama_checkpoint(rng, "qwen2", heads=4, kv_heads=4, head_dim=16),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_logits_match_reference(case, rng):
    config, tensors = CASES[case](rng)
    model, c = build(config, tensors)
    ids = rng.integers(0, c.vocab_size, (2, 13))
    assert_close_logits(model(ids), reference_logits(c, tensors, ids))
    # left padding: the padded prompt's real positions give the logits of the prompt alone
    mask = np.ones_like(ids)
    mask[1, :4] = 0
    got = model(ids, attention_mask=mask)
    want = reference_logits(c, tensors, ids, mask)
    assert_close_logits(got[:, 4:], want[:, 4:])
    alone = model(ids[1:, 4:])
    assert_close_logits(got[1, 4:], alone[0])


@pytest.mark.parametrize("case", ["gpt2", "llama-gqa", "mistral-window", "qwen2-bias"])
def test_cached_decoding_equals_full_recomputation(case, rng):
    config, tensors = CASES[case](rng)
    model, c = build(config, tensors)
    ids = rng.integers(0, c.vocab_size, (2, 7))
    steps = 20
    cache = model.start_generation(2, ids.shape[1] + steps)
    positions = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
    logits = model.step(cache, ids, positions, None)
    seq = ids
    for t in range(steps):
        full = model(seq)[:, -1]
        assert_close_logits(logits, full)
        nxt = rng.integers(0, c.vocab_size, (2, 1))
        seq = np.concatenate([seq, nxt], axis=1)
        logits = model.step(cache, nxt, np.full((2, 1), seq.shape[1] - 1), None)


@pytest.mark.parametrize("case", ["gpt2", "llama-gqa", "qwen2-bias", "mistral-window"])
def test_padded_batch_generates_what_each_prompt_generates_alone(case, rng):
    config, tensors = CASES[case](rng)
    model, c = build(config, tensors)
    prompts = [rng.integers(0, c.vocab_size - 1, n) for n in (9, 4, 6)]
    length = max(len(p) for p in prompts)
    ids = np.zeros((3, length), np.int64)
    mask = np.zeros((3, length), np.int64)
    for i, p in enumerate(prompts):
        ids[i, length - len(p):], mask[i, length - len(p):] = p, 1
    batch = model.generate(ids, 12, attention_mask=mask, eos_token_id=None)
    for i, p in enumerate(prompts):
        alone = model.generate(p[None], 12, eos_token_id=None)
        assert np.array_equal(batch[i, length:], alone[0, len(p):]), i


def test_sliding_window_runs_past_the_ring_with_constant_memory(rng):
    config, tensors = CASES["mistral-window"](rng)
    model, c = build(config, tensors)
    ids = rng.integers(0, c.vocab_size - 1, (1, 6))
    new = 90                                   # > window + ring chunk: the ring wraps
    cache = model.start_generation(1, ids.shape[1] + new)
    assert cache.capacity < ids.shape[1] + new  # storage bounded by the window, not the length
    out = model.generate(ids, new, eos_token_id=None)
    # greedy tokens agree with recomputing the full sequence (window mask) at every step
    logits = model(out[:, :-1])
    assert np.array_equal(logits[0, ids.shape[1] - 1:].argmax(-1), out[0, ids.shape[1]:])


def test_long_sliding_window_does_not_size_a_short_generation(rng):
    # A config's sliding_window (131072 here) once sized the ring however short the stream:
    # 131135 slots per layer, sequence and kv head for 26 tokens. Now the stream's length.
    config, tensors = llama_checkpoint(rng, "mistral", window=131072)
    model, c = build(config, tensors)
    ids = rng.integers(0, c.vocab_size - 1, (2, 6))
    new = 20
    cache = model.start_generation(2, ids.shape[1] + new)
    assert cache.window == 131072 and cache.capacity == ids.shape[1] + new
    assert cache._k.nbytes == 2 * 2 * c.num_key_value_heads * (ids.shape[1] + new) * 8 * 4
    out = model.generate(ids, new, eos_token_id=None)
    # a window longer than the stream excludes nothing: the tokens of the model without one
    plain, _ = build({**config, "sliding_window": None}, tensors)
    assert plain.window is None
    assert np.array_equal(out, plain.generate(ids, new, eos_token_id=None))
    logits = model(out[:, :-1])
    assert np.array_equal(logits[:, ids.shape[1] - 1:].argmax(-1), out[:, ids.shape[1]:])


def test_generation_options(rng):
    config, tensors = CASES["llama-gqa"](rng)
    model, c = build(config, tensors)
    ids = rng.integers(0, c.vocab_size - 1, (2, 5))
    a = model.generate(ids, 8, temperature=0.8, top_k=10, top_p=0.9, seed=3)
    b = model.generate(ids, 8, temperature=0.8, top_k=10, top_p=0.9, seed=3)
    assert np.array_equal(a, b) and a.shape == (2, 13)
    streamed = list(model.generate(ids, 8, stream=True, eos_token_id=None))
    greedy = model.generate(ids, 8, eos_token_id=None)
    assert np.array_equal(np.stack(streamed, axis=1), greedy[:, 5:])
    # EOS: the first greedy token as EOS stops every sequence after one step
    first = greedy[:, 5]
    out = model.generate(ids, 8, eos_token_id=list(set(first.tolist())))
    assert out.shape[1] <= 5 + 8 and np.isin(out[:, 5], first).all()


def test_positions_beyond_gpt2_table_raise(rng):
    config, tensors = gpt2_checkpoint(rng, positions=16)
    model, _ = build(config, tensors)
    with pytest.raises(ValueError, match="positions"):
        model(np.zeros((1, 17), np.int64))
    with pytest.raises(ValueError, match="exceeds"):
        model.generate(np.zeros((1, 10), np.int64), 7)


def test_build_llama_accepts_an_unset_partial_rotary_factor(rng):
    # A hand-made config (not through load_config) may carry partial_rotary_factor = None, as
    # transformers' configs do for models without partial rotary: it means the whole head.
    config, tensors = llama_checkpoint(rng)
    c = load_config(config)
    raw = types.SimpleNamespace(**{**vars(c), "partial_rotary_factor": None})
    ids = np.array([[3, 1, 4, 1, 5]])
    assert np.array_equal(build_llama(raw, tensors)(ids), build(config, tensors)[0](ids))


def test_tensor_shape_lists(rng):
    # the lists are exactly what the builders read: a checkpoint built from them loads with
    # no tensor left over (check_all_used) — every case above relies on that; here the options
    from fastattn.models.gpt2 import gpt2_tensor_shapes
    from fastattn.models.llama import llama_tensor_shapes
    config, _ = gpt2_checkpoint(rng, tied=False)
    shapes = gpt2_tensor_shapes(config, prefix="transformer.")
    assert shapes["transformer.h.1.mlp.c_fc.weight"] == (32, 128)
    assert shapes["lm_head.weight"] == (61, 32) and "transformer.lm_head.weight" not in shapes
    config, _ = llama_checkpoint(rng, "qwen2")
    shapes = llama_tensor_shapes(config)
    assert "model.layers.0.self_attn.q_proj.bias" in shapes
    assert "model.layers.0.self_attn.o_proj.bias" not in shapes
    assert "model.layers.0.mlp.up_proj.bias" in llama_tensor_shapes({**config, "mlp_bias": True})
    for fn in (gpt2_tensor_shapes, llama_tensor_shapes):
        with pytest.raises(KeyError):
            fn({})
