"""Token generation for decoder models: greedy decoding and temperature / top-k / nucleus
sampling, batched prompts with left padding, EOS per sequence, streaming.

The loop is model-agnostic. A model provides

    model.start_generation(batch, capacity, kv_dtype) -> state
        fresh per-call decoding state (its KV cache, stored in kv_dtype: "float32", or
        "float16" / "bfloat16" for half the bytes, fastattn.KVCache)
    model.step(state, input_ids (B, T), positions (B, T), key_mask (B, Lk) bool or None)
        -> logits (B, V) float32 of the LAST position of the chunk

where ``key_mask[b, j]`` says whether cached key j of sequence b is a real token (False for
left padding) and ``positions`` are each sequence's own absolute positions (a padded prompt's
first real token is position 0). The prompt is one chunk (prefill); each later step feeds one
token per sequence and reads O(context) from the cache.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..kv_cache import kv_dtype as _kv_dtype


def _check_ids(input_ids, attention_mask):
    ids = np.asarray(input_ids)
    if ids.ndim == 1:
        ids = ids[None, :]
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"generate: input_ids must be (batch, length) with length >= 1, "
                         f"got shape {tuple(ids.shape)}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"generate: input_ids must be integers, got {ids.dtype}")
    if attention_mask is None:
        mask = np.ones(ids.shape, bool)
    else:
        mask = np.asarray(attention_mask)
        if mask.ndim == 1:
            mask = mask[None, :]
        if mask.shape != ids.shape:
            raise ValueError(f"generate: attention_mask has shape {tuple(mask.shape)}, expected "
                             f"{tuple(ids.shape)} (the shape of input_ids)")
        mask = mask.astype(bool)
        # Left padding only: once a row's real tokens start, they continue to the end.
        starts = mask.argmax(axis=1)
        expected = np.arange(ids.shape[1])[None, :] >= starts[:, None]
        if not np.array_equal(mask, expected & mask.any(axis=1, keepdims=True)) or \
                not mask.any(axis=1).all():
            raise ValueError("generate: attention_mask must be left padding: zeros then ones, "
                             "with at least one real token per row")
    return ids.astype(np.int64), mask


def filter_logits(logits: np.ndarray, top_k: int | None = None,
                  top_p: float | None = None) -> np.ndarray:
    """Returns logits (B, V) with the tokens outside the top-k / nucleus set set to -inf.

    top_k keeps the k largest logits (ties with the k-th are kept, as in transformers);
    top_p keeps the smallest set of most-probable tokens whose probability reaches top_p
    (the most probable token is always kept)."""
    out = np.array(logits, dtype=np.float32, copy=True)
    if top_k is not None and top_k < out.shape[-1]:
        kth = np.partition(out, -top_k, axis=-1)[:, -top_k][:, None]
        out[out < kth] = -np.inf
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-out, axis=-1, kind="stable")
        sorted_logits = np.take_along_axis(out, order, axis=-1)
        z = sorted_logits - sorted_logits[:, :1]
        probs = np.exp(z.astype(np.float64))
        probs /= probs.sum(axis=-1, keepdims=True)
        before = np.cumsum(probs, axis=-1) - probs   # probability mass of better tokens
        remove_sorted = before >= top_p
        remove_sorted[:, 0] = False
        remove = np.zeros_like(remove_sorted)
        np.put_along_axis(remove, order, remove_sorted, axis=-1)
        out[remove] = -np.inf
    return out


def sample_next(logits: np.ndarray, *, temperature: float = 0.0, top_k: int | None = None,
                top_p: float | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """Next token per row of logits (B, V): argmax when temperature == 0, else a draw from
    softmax(filter(logits / temperature))."""
    if temperature == 0.0:
        return np.argmax(logits, axis=-1).astype(np.int64)
    scaled = filter_logits(np.asarray(logits, np.float32) / np.float32(temperature), top_k, top_p)
    z = scaled.astype(np.float64) - scaled.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    u = (rng or np.random.default_rng()).random(p.shape[0])
    cdf = np.cumsum(p, axis=-1)
    tokens = (cdf < u[:, None] * cdf[:, -1:]).sum(axis=-1)
    return np.minimum(tokens, p.shape[-1] - 1).astype(np.int64)


def _check_sampling(max_new_tokens, temperature, top_k, top_p):
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) \
            or max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"generate: temperature must be finite and >= 0, got {temperature}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"generate: top_k must be an int >= 1 or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"generate: top_p must be in (0, 1] or None, got {top_p!r}")


def iterate_generation(model, input_ids, max_new_tokens: int, *, temperature: float = 0.0,
                       top_k: int | None = None, top_p: float | None = None,
                       seed: int | None = None, eos_token_id=None,
                       attention_mask=None, kv_dtype="float32") -> Iterator[np.ndarray]:
    """Returns an iterator yielding the next token of every sequence, (B,) int64, one step at a
    time. Sequences that have produced an EOS token keep yielding it; the loop ends when all
    have, or after max_new_tokens steps. ``kv_dtype``: the KV cache's storage ("float32",
    "float16" or "bfloat16": half the cache bytes, K/V rounded to 16 bits; docs/kv_cache.md).
    Arguments are validated here, before any step."""
    _check_sampling(max_new_tokens, temperature, top_k, top_p)
    ids, mask = _check_ids(input_ids, attention_mask)
    kv_dtype = _kv_dtype("generate", kv_dtype)
    eos = set(np.atleast_1d(eos_token_id).tolist()) if eos_token_id is not None else set()
    return _steps(model, ids, mask, max_new_tokens, temperature, top_k, top_p, seed, eos,
                  kv_dtype)


def _steps(model, ids, mask, max_new_tokens, temperature, top_k, top_p, seed, eos, kv_dtype):
    batch, length = ids.shape
    if max_new_tokens == 0:
        return
    rng = np.random.default_rng(seed)
    state = model.start_generation(batch, length + max_new_tokens, kv_dtype=kv_dtype)
    positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
    key_mask = None if mask.all() else mask
    logits = model.step(state, ids, positions, key_mask)
    next_pos = positions[:, -1] + 1
    finished = np.zeros(batch, bool)
    for step in range(max_new_tokens):
        tokens = sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p, rng=rng)
        if eos:
            fill = next(iter(eos))
            tokens = np.where(finished, fill, tokens)
            finished |= np.isin(tokens, list(eos))
        yield tokens
        if finished.all() or step + 1 == max_new_tokens:
            return
        if key_mask is not None:
            key_mask = np.concatenate([key_mask, np.ones((batch, 1), bool)], axis=1)
        logits = model.step(state, tokens[:, None], next_pos[:, None], key_mask)
        next_pos = next_pos + 1


def generate(model, input_ids, max_new_tokens: int, *, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             eos_token_id=None, attention_mask=None, stream: bool = False,
             kv_dtype="float32"):
    """Generates up to max_new_tokens tokens after each prompt.

    Returns (B, length + new) int64: the prompts followed by the new tokens (sequences that hit
    EOS early are padded with it). With stream=True returns an iterator over each step's (B,)
    tokens instead. ``kv_dtype``: the KV cache's storage (iterate_generation). See the module
    docstring for the model protocol."""
    steps = iterate_generation(model, input_ids, max_new_tokens, temperature=temperature,
                               top_k=top_k, top_p=top_p, seed=seed, eos_token_id=eos_token_id,
                               attention_mask=attention_mask, kv_dtype=kv_dtype)
    if stream:
        return steps
    ids, _ = _check_ids(input_ids, attention_mask)
    new = list(steps)
    if not new:
        return ids
    return np.concatenate([ids, np.stack(new, axis=1)], axis=1)
