"""Fill-mask: the most probable tokens at each mask token of a text ([MASK] for BERT, <mask>
for RoBERTa / XLM-R: the tokenizer's mask_token), from a BERT-family model's masked-LM head.

    p(token | text) = softmax(mlm_logits(encoder(text))[mask position])
"""
from __future__ import annotations

import numbers

import numpy as np

from ..ops.softmax import softmax
from .encoder_batches import load_encoder, uses_token_types


def fill_mask(model, tokenizer, text: str, top_k: int = 5):
    """For each mask token in ``text`` (in order), the ``top_k`` most probable tokens: a
    list (one entry per mask) of lists of ``{"token", "token_id", "score"}``, highest
    score first (ties: lower id first). ``score`` is the softmax probability over the
    whole vocabulary of the masked-LM logits at that position."""
    if not isinstance(text, str):
        raise TypeError(f"fill_mask: text must be a str, got {type(text).__name__}")
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ValueError(f"fill_mask: top_k must be an int >= 1, got {top_k!r}")
    if tokenizer.mask_token_id is None:
        raise ValueError(f"fill_mask: the tokenizer's vocabulary has no mask token "
                         f"{tokenizer.mask_token!r}")
    if tokenizer.vocab_size > model.vocab_size:
        raise ValueError(f"fill_mask: the tokenizer has {tokenizer.vocab_size} tokens, the "
                         f"model's vocabulary {model.vocab_size}")
    enc = tokenizer.encode(text)
    if len(enc.ids) > model.max_length:
        raise ValueError(f"fill_mask: the text has {len(enc.ids)} tokens, more than the "
                         f"model's max_position_embeddings {model.max_length}")
    ids = np.asarray(enc.ids, np.int64)
    where = np.flatnonzero(ids == tokenizer.mask_token_id)
    if where.size == 0:
        raise ValueError(f"fill_mask: the text has no mask token {tokenizer.mask_token!r}")
    types = np.asarray(enc.type_ids, np.int64)[None] if uses_token_types(model) else None
    hidden = model(ids[None], token_type_ids=types)
    if not isinstance(hidden, np.ndarray):   # a model output object
        hidden = hidden.last_hidden_state
    probs = softmax(model.mlm_logits(hidden[0, where]))
    k = min(top_k, probs.shape[1])
    results = []
    for row in probs:
        best = np.argsort(-row, kind="stable")[:k]
        tokens = tokenizer.convert_ids_to_tokens([int(i) for i in best])
        results.append([{"token": t, "token_id": int(i), "score": float(row[i])}
                        for t, i in zip(tokens, best)])
    return results


class FillMask:
    """A BERT-family model directory with a masked-LM head (config.json, safetensors weights,
    vocab.txt or tokenizer.json) as a fill-mask pipeline: model and tokenizer loaded once.

        unmask = FillMask("path/to/bert-base-uncased")
        unmask("the capital of france is [MASK] .", top_k=3)
        # [[{"token": "paris", "token_id": ..., "score": ...}, ...]]   one list per [MASK]

    mmap=False reads the weights into memory instead of mapping the files (fastattn.load): for
    a long-running service whose model files may be replaced or truncated under it.
    """

    def __init__(self, model_dir, *, model=None, tokenizer=None, mmap: bool = True,
                 weights: str = "as-stored"):
        self.model, self.tokenizer = load_encoder(model_dir, model, tokenizer, mmap=mmap,
                                                  weights=weights, where="FillMask")
        if not self.model.has_mlm_head:
            raise ValueError(f"FillMask: the checkpoint in {model_dir!r} has no masked-LM head "
                             "(cls.predictions.* / lm_head.* / vocab_projector.*)")

    def __call__(self, text: str, top_k: int = 5):
        return fill_mask(self.model, self.tokenizer, text, top_k)
