"""Sentence embeddings from an encoder (BERT family): ``embed`` (model + tokenizer + texts ->
vectors) and ``SentenceEmbedder``, the pipeline that loads a model directory with its
tokenizer (vocab.txt, or tokenizer.json for RoBERTa / XLM-R).

    e_text = pool(encoder([CLS] text [SEP]))      pool: mean over real tokens, or [CLS]
    e_text /= ||e_text||                          (normalize=True: dot product = cosine)
"""
from __future__ import annotations

import numpy as np

from .. import _validate as val
from .encoder_batches import load_encoder, max_tokens, padded_batches

POOLINGS = ("mean", "cls")


def _pooled_rows(hidden: np.ndarray, lengths: np.ndarray, pooling: str) -> np.ndarray:
    """One vector per row of hidden (B, L, H): the [CLS] vector, or the mean over the row's
    first lengths[b] (real) positions, summed in float64 so padding cannot enter the sum."""
    if pooling == "cls":
        return hidden[:, 0].astype(np.float32)
    out = np.empty((hidden.shape[0], hidden.shape[2]), np.float32)
    for b, n in enumerate(lengths):
        out[b] = hidden[b, :n].sum(axis=0, dtype=np.float64) / n
    return out


def embed(model, tokenizer, texts, pooling: str = "mean", normalize: bool = True,
          batch_size: int = 32, max_length: int | None = None) -> np.ndarray:
    """Sentence embeddings (N, hidden) float32 of ``texts`` (a list of str).

    Each text is encoded as ``[CLS] text [SEP]`` (cut to ``max_length`` tokens, default and
    at most the model's max_position_embeddings) and run through ``model``; the embedding
    is the mean of its token vectors over the attention mask ([CLS] and [SEP] included, as
    sentence-transformers' mean pooling; padding excluded), ``pooling="mean"``, or its
    [CLS] vector, ``pooling="cls"`` (the raw vector, not the pooler's tanh layer). With
    ``normalize`` rows are scaled to unit L2 norm (then dot products are cosines).

    Texts are batched ``batch_size`` at a time after sorting by token count, so a batch
    holds texts of similar length and little padding (encoder_batches). A text's embedding
    does not depend on the batch it lands in beyond float32 rounding (the attention
    kernel's blocking differs with the padded length); the tests check this.

    ``model``: a BERT-family encoder (BERT, RoBERTa, XLM-R, DistilBERT, ...) or any object
    with ``hidden_size``, ``max_length`` and ``model(input_ids, attention_mask,
    token_type_ids) -> (B, L, hidden)`` (or an output with ``last_hidden_state``);
    ``token_type_ids`` is None for a model without token types (encoder_batches).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"embed: pooling must be 'mean' or 'cls', got {pooling!r}")
    if isinstance(texts, (str, bytes)):
        raise TypeError("embed: texts must be a list of str, got a single "
                        f"{type(texts).__name__}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"embed: texts[{i}] must be a str, got {type(t).__name__}")
    batch_size = val.integer("embed", "batch_size", batch_size, 1)
    limit = max_tokens("embed", model, max_length)
    encodings = [tokenizer.encode(t, max_length=limit, truncation=True) for t in texts]
    out = np.empty((len(texts), model.hidden_size), np.float32)
    for rows, n, ids, mask, types in padded_batches(model, tokenizer, encodings, batch_size):
        hidden = model(ids, mask, types)
        if not isinstance(hidden, np.ndarray):   # a model output object (task heads)
            hidden = hidden.last_hidden_state
        out[rows] = _pooled_rows(hidden, n, pooling)
    if normalize:
        norms = np.sqrt(np.einsum("ij,ij->i", out, out, dtype=np.float64))
        out = (out / np.maximum(norms, 1e-12)[:, None]).astype(np.float32)
    return out


class SentenceEmbedder:
    """A BERT-family model directory (config.json, safetensors weights, vocab.txt or
    tokenizer.json) as a sentence-embedding pipeline: model and tokenizer loaded once; each call is
    independent, so one SentenceEmbedder serves several threads.

        embedder = SentenceEmbedder("path/to/all-MiniLM-L6-v2")
        vectors = embedder(["a first sentence", "another one"])     # (2, hidden), unit rows

    mmap=False reads the weights into memory instead of mapping the files (fastattn.load): for
    a long-running service whose model files may be replaced or truncated under it.
    """

    def __init__(self, model_dir, *, pooling: str = "mean", normalize: bool = True,
                 model=None, tokenizer=None, mmap: bool = True,
                 weights: str = "as-stored"):
        if pooling not in POOLINGS:
            raise ValueError(f"SentenceEmbedder: pooling must be one of {POOLINGS}, got "
                             f"{pooling!r}")
        self.pooling, self.normalize = pooling, normalize
        self.model, self.tokenizer = load_encoder(model_dir, model, tokenizer, mmap=mmap,
                                                  weights=weights, where="SentenceEmbedder")

    def __call__(self, texts, *, batch_size: int = 32, max_length: int | None = None):
        """Embeddings (N, hidden) float32 of ``texts`` (see ``embed``)."""
        return embed(self.model, self.tokenizer, texts, pooling=self.pooling,
                     normalize=self.normalize, batch_size=batch_size, max_length=max_length)
