"""DecoderLM: the decoder-only language model shared by GPT-2 and the LLaMA family.

    x = embed(ids) [+ position_embed(positions)]
    for block in blocks: x = block(x)            (causal self-attention, KV-cached when decoding)
    logits = lm_head(final_norm(x))

Positions follow Hugging Face: with an attention mask (left padding), position = number of real
tokens before this one, so a padded prompt gives the same positions as the prompt alone.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..kv_cache import KVCache
from .output import ModelOutput


@dataclasses.dataclass
class DecoderOutput(ModelOutput):
    """What ``model(ids, output_attentions=True)`` returns: ``logits`` (B, L, vocab) and
    ``attentions``, one (B, heads, L, L) array per layer, each row the causal softmax over the
    keys (zeros above the diagonal; from the attention kernel's returned probabilities)."""
    logits: np.ndarray
    attentions: tuple | None = None


def positions_from_mask(mask: np.ndarray) -> np.ndarray:
    """(B, L) 0/1 mask -> (B, L) int64 positions: cumsum(mask) - 1, pads at 0."""
    return np.maximum(np.cumsum(mask.astype(np.int64), axis=1) - 1, 0)


class DecoderLM:
    def __init__(self, config, embed, blocks, final_norm, lm_head, *, position_embed=None,
                 num_kv_heads: int, head_dim: int, window: int | None = None,
                 max_positions: int | None = None):
        self.config = config
        self.embed, self.blocks, self.final_norm, self.lm_head = embed, blocks, final_norm, lm_head
        self.position_embed = position_embed
        self.num_kv_heads, self.head_dim, self.window = num_kv_heads, head_dim, window
        self.max_positions = max_positions
        self.vocab_size = lm_head.out_features

    # -- full forward -------------------------------------------------------------------------
    def __call__(self, input_ids, attention_mask=None, *, output_attentions: bool = False):
        """Logits (B, L, vocab) float32 for input_ids (B, L) (or (L,)), causal, with an optional
        left-padding attention_mask (B, L) of 0/1. ``output_attentions=True`` returns a
        :class:`DecoderOutput` (logits and every layer's attention probabilities)."""
        ids = np.asarray(input_ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2:
            raise ValueError(f"model: input_ids must be (batch, length), got shape {ids.shape}")
        key_mask = None
        if attention_mask is None:
            positions = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
        else:
            mask = np.asarray(attention_mask)
            if mask.ndim == 1:
                mask = mask[None]
            if mask.shape != ids.shape:
                raise ValueError(f"model: attention_mask has shape {mask.shape}, expected "
                                 f"{ids.shape} (the shape of input_ids)")
            positions = positions_from_mask(mask)
            key_mask = None if mask.all() else mask.astype(bool)
        x = self._embed(ids, positions)
        attentions = []
        for i, block in enumerate(self.blocks):
            if output_attentions:
                x, probs = block(x, positions=positions, key_mask=key_mask, layer=i,
                                 return_weights=True)
                attentions.append(probs)
            else:
                x = block(x, positions=positions, key_mask=key_mask, layer=i)
        logits = self.lm_head(self.final_norm(x))
        if output_attentions:
            return DecoderOutput(logits=logits, attentions=tuple(attentions))
        return logits

    def _embed(self, ids, positions):
        x = self.embed(ids)
        if self.position_embed is not None:
            if self.max_positions is not None and positions.size and \
                    positions.max() >= self.max_positions:
                raise ValueError(f"model: position {int(positions.max())} is beyond the model's "
                                 f"{self.max_positions} learned positions")
            x = x + self.position_embed(positions, name="positions")
        return np.ascontiguousarray(x, dtype=np.float32)

    # -- generation protocol (see fastattn.pipelines.generation) ----------------------------------------
    def start_generation(self, batch: int, capacity: int, kv_dtype="float32") -> KVCache:
        if self.max_positions is not None and capacity > self.max_positions:
            raise ValueError(f"generate: prompt + max_new_tokens = {capacity} exceeds the model's "
                             f"{self.max_positions} positions")
        # Sized by the stream: `capacity` slots, also with a window longer than the stream (the
        # cache keeps the window, which the attention layers check, and never wraps); a stream
        # that reaches the window gets a ring (Mistral's rolling buffer): constant memory
        # however long the stream, never more than window + STREAM_CHUNK - 1 slots. kv_dtype:
        # the storage ("float16" / "bfloat16": half the bytes a decode step reads).
        return KVCache.for_stream(len(self.blocks), batch, self.num_kv_heads, self.head_dim,
                                  capacity, window=self.window, dtype=kv_dtype)

    def step(self, cache: KVCache, ids, positions, key_mask) -> np.ndarray:
        x = self._embed(ids, positions)
        for i, block in enumerate(self.blocks):
            x = block(x, positions=positions, key_mask=key_mask, cache=cache, layer=i)
        last = np.ascontiguousarray(x[:, -1:, :])
        return self.lm_head(self.final_norm(last))[:, 0, :]

    def generate(self, input_ids, max_new_tokens: int, *, temperature: float = 0.0,
                 top_k=None, top_p=None, seed=None, eos_token_id=None, attention_mask=None,
                 stream: bool = False, kv_dtype="float32"):
        """Greedy (temperature 0) or sampled generation with a KV cache:
        ``fastattn.pipelines.generate(self, ...)`` (the loop lives there; kept as a method for
        existing callers). eos_token_id defaults to the config's."""
        from ..pipelines.generation import generate
        if eos_token_id is None:
            eos_token_id = getattr(self.config, "eos_token_id", None)
        return generate(self, input_ids, max_new_tokens, temperature=temperature, top_k=top_k,
                        top_p=top_p, seed=seed, eos_token_id=eos_token_id,
                        attention_mask=attention_mask, stream=stream, kv_dtype=kv_dtype)
