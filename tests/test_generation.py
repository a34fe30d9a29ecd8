"""The generation loop and sampling filters, on a toy model that follows the model protocol."""
import numpy as np
import pytest

from fastattn.pipelines.generation import filter_logits, generate, sample_next

VOCAB = 11


class ToyModel:
    """logits depend on every real token seen so far and on positions, through the key mask,
    like a real decoder: padding handled wrongly changes the output."""

    def __init__(self, seed=0):
        self.table = np.random.default_rng(seed).standard_normal((VOCAB * 7, VOCAB)).astype(np.float32)
        self.calls = []

    def start_generation(self, batch, capacity, kv_dtype="float32"):
        return {"history": [[] for _ in range(batch)], "capacity": capacity}

    def step(self, state, ids, positions, key_mask):
        self.calls.append(ids.shape)
        batch, t = ids.shape
        out = []
        for b in range(batch):
            state["history"][b].extend(zip(ids[b].tolist(), positions[b].tolist()))
            assert len(state["history"][b]) <= state["capacity"]
            real = [(tok, pos) for j, (tok, pos) in enumerate(state["history"][b])
                    if key_mask is None or key_mask[b, j]]
            assert real[-1][1] == len(real) - 1, "positions must count real tokens from 0"
            h = sum((tok + 1) * (pos + 3) for tok, pos in real)
            out.append(self.table[h % len(self.table)])
        return np.stack(out)


def test_greedy_is_deterministic_and_one_token_per_step():
    m = ToyModel()
    out = generate(m, np.array([[1, 2, 3]]), 5)
    assert out.shape == (1, 8) and np.array_equal(out[0, :3], [1, 2, 3])
    assert m.calls == [(1, 3)] + [(1, 1)] * 4  # prefill once, then one token per step
    assert np.array_equal(generate(ToyModel(), np.array([[1, 2, 3]]), 5), out)


def test_left_padded_batch_equals_each_prompt_alone():
    prompts = [[4, 5, 6, 7], [9], [1, 2]]
    alone = [generate(ToyModel(), np.array([p]), 6)[0, len(p):] for p in prompts]
    width = max(map(len, prompts))
    ids = np.array([[0] * (width - len(p)) + p for p in prompts])
    mask = np.array([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    batched = generate(ToyModel(), ids, 6, attention_mask=mask)
    for b in range(3):
        assert np.array_equal(batched[b, width:], alone[b])


def test_eos_stops_each_sequence():
    m = ToyModel()
    free = generate(m, np.array([[1], [2]]), 8)
    eos = int(free[0, 3])  # the token sequence 0 emits at step 3
    out = generate(ToyModel(), np.array([[1], [2]]), 8, eos_token_id=eos)
    first = int(np.argmax(out[0, 1:] == eos))
    assert np.all(out[0, 1 + first:] == eos)
    steps = list(generate(ToyModel(), np.array([[1]]), 8, eos_token_id=eos, stream=True))
    assert steps[-1][0] == eos and len(steps) == first + 1


def test_stream_yields_the_same_tokens():
    full = generate(ToyModel(), np.array([[3, 1]]), 4, temperature=0.8, seed=5)
    steps = list(generate(ToyModel(), np.array([[3, 1]]), 4, temperature=0.8, seed=5, stream=True))
    assert np.array_equal(np.stack(steps, axis=1), full[:, 2:])


def test_sampling_is_seeded():
    a = generate(ToyModel(), np.array([[1, 2]]), 10, temperature=1.0, seed=1)
    b = generate(ToyModel(), np.array([[1, 2]]), 10, temperature=1.0, seed=1)
    c = generate(ToyModel(), np.array([[1, 2]]), 10, temperature=1.0, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_top_k_and_top_p_filters():
    logits = np.log(np.array([[0.5, 0.2, 0.15, 0.1, 0.05]], np.float32))
    k2 = filter_logits(logits, top_k=2)
    assert np.isfinite(k2[0, :2]).all() and np.isneginf(k2[0, 2:]).all()
    # nucleus 0.6: 0.5 alone is not enough, 0.5 + 0.2 reaches it -> keep 2 tokens
    p = filter_logits(logits, top_p=0.6)
    assert np.isfinite(p[0, :2]).all() and np.isneginf(p[0, 2:]).all()
    assert np.isfinite(filter_logits(logits, top_p=0.5)[0]).sum() == 1
    assert np.isfinite(filter_logits(logits, top_p=1.0)[0]).all()
    ties = np.array([[1.0, 3.0, 3.0, 0.0]], np.float32)
    assert np.isfinite(filter_logits(ties, top_k=1)[0]).sum() == 2  # ties with the k-th kept


def test_sampled_frequencies_follow_the_distribution():
    probs = np.array([0.6, 0.3, 0.1])
    logits = np.tile(np.log(probs).astype(np.float32), (20000, 1))
    draws = sample_next(logits, temperature=1.0, rng=np.random.default_rng(0))
    freq = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(freq, probs, atol=0.015)  # 4+ sigma for n = 20000
    top1 = sample_next(logits[:100], temperature=1.0, top_k=1, rng=np.random.default_rng(0))
    assert np.all(top1 == 0)


@pytest.mark.parametrize("kwargs,match", [
    ({"max_new_tokens": -1}, "max_new_tokens must be an int >= 0"),
    ({"temperature": -1.0}, "temperature must be finite and >= 0"),
    ({"top_k": 0}, "top_k must be an int >= 1"),
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
])
def test_argument_errors(kwargs, match):
    args = {"max_new_tokens": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        generate(ToyModel(), np.array([[1]]), **args)
    with pytest.raises(ValueError, match=match):
        generate(ToyModel(), np.array([[1]]), stream=True, **args)  # eager, not at first next()


def test_input_errors():
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 2\), expected \(1, 3\)"):
        generate(ToyModel(), np.array([[1, 2, 3]]), 2, attention_mask=np.ones((1, 2)))
    with pytest.raises(ValueError, match="left padding"):
        generate(ToyModel(), np.array([[1, 2, 3]]), 2, attention_mask=np.array([[1, 0, 1]]))
    with pytest.raises(TypeError, match="input_ids must be integers"):
        generate(ToyModel(), np.array([[1.0]]), 2)
    with pytest.raises(ValueError, match="length >= 1"):
        generate(ToyModel(), np.zeros((1, 0), np.int64), 2)
