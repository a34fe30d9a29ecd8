"""What the encoder pipelines (embeddings, fill-mask, text and token classification, question
answering) share: a model directory loaded with its tokenizer, and many encodings run through
the encoder in batches of similar length.

Batching by length: the encodings are sorted by token count and cut into batches of
``batch_size``; each batch is padded only to its own longest encoding. A batch of texts of
10..60 tokens padded to 60 would cost sum over rows of 60 token rows; sorted, the rows of a
batch have nearly the same length and padding costs little. Padded positions are masked out
of every query's keys, so a real token's output does not depend on the batch it lands in
(beyond float32 rounding of a different blocking).
"""
from __future__ import annotations

import numpy as np

from .. import _validate as val


def load_encoder(model_dir, model=None, tokenizer=None, *, mmap: bool = True,
                 weights: str = "as-stored", where: str = "load_encoder"):
    """(model, tokenizer) of a model directory: ``fastattn.load`` (``weights``: the Linear
    matrices' format, docs/quantization.md) and ``fastattn.tokenizers.load_tokenizer``
    (vocab.txt or tokenizer.json), each only when not given. ``weights`` is checked even when
    ``model`` is given (ValueError from ``where``), so a typo never passes silently."""
    from ..models.weights import check_format
    check_format(where, weights)
    if tokenizer is None:
        from ..tokenizers import load_tokenizer
        tokenizer = load_tokenizer(model_dir)
    if model is None:
        from ..loading import load
        model = load(model_dir, mmap=mmap, weights=weights)
    return model, tokenizer


def backend(tokenizer):
    """The ``tokenizers.Tokenizer`` behind a tokenizer.json adapter (``TokenizerJson.tokenizer``:
    RoBERTa, XLM-R), or None (fastattn's WordPiece). The pipelines ask it what transformers'
    fast tokenizers ask it: its decoder on token strings, its words, its model's sub-word
    prefix."""
    inner = getattr(tokenizer, "tokenizer", None)
    return inner if hasattr(inner, "decoder") and hasattr(inner, "encode") else None


def subword_prefix(tokenizer) -> str | None:
    """The continuing-sub-word prefix of a WordPiece vocabulary ("##"), None for byte-level
    BPE (RoBERTa's has none) and Unigram (XLM-R)."""
    inner = backend(tokenizer)
    if inner is not None:
        return getattr(inner.model, "continuing_subword_prefix", None) or None
    return getattr(tokenizer, "continuing_subword_prefix", None) or None


def uses_token_types(model) -> bool:
    """Whether the model reads token type ids: BERT / ELECTRA (type_vocab_size 2) do; RoBERTa
    and XLM-R (type_vocab_size 1) and DistilBERT (no token-type embedding) do not, and their
    tokenizers' pair type ids (1 on the second text) must not reach the model — transformers'
    tokenizers for them do not return token_type_ids either."""
    config = getattr(model, "config", None)
    size = getattr(config, "type_vocab_size", None)
    if size is None:
        table = getattr(model, "token_type", None)
        size = getattr(table, "num_embeddings", 0) if table is not None else 0
    return size > 1


def check_texts(op: str, name: str, texts) -> tuple[list[str], bool]:
    """``texts`` as a list of str and whether a single str was given (then the pipeline
    returns one result, not a list of one)."""
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, bytes) or not hasattr(texts, "__iter__"):
        raise TypeError(f"{op}: {name} must be a str or a list of str, got "
                        f"{type(texts).__name__}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{op}: {name}[{i}] must be a str, got {type(t).__name__}")
    return texts, False


def max_tokens(op: str, model, max_length) -> int:
    """The longest encoding the pipeline makes: ``max_length`` (at least 2 for the special
    tokens), at most the model's max_position_embeddings (its ``max_length``)."""
    limit = model.max_length
    if max_length is not None:
        limit = min(limit, val.integer(op, "max_length", max_length, 2))
    return limit


def window_indices(op: str, encoding, sequence: int, max_len: int, stride: int,
                   what: str = "text") -> list[list[int]]:
    """Token indices of the windows of an encoding too long for the model, as tokenizers'
    overflowing tokens with a stride: the tokens of sequence ``sequence`` (0: the text, 1: a
    pair's second text) are cut into runs of n (n = ``max_len`` less the other tokens:
    special tokens, a question), consecutive runs sharing ``stride`` tokens (step n -
    stride); every window keeps all the other tokens around its run. One window when the
    encoding fits."""
    seq = encoding.sequence_ids
    where = [i for i, s in enumerate(seq) if s == sequence]
    if not where:
        raise ValueError(f"{op}: the {what} has no token")
    c0, c1 = where[0], where[-1] + 1
    total = len(seq)
    n = max_len - (total - (c1 - c0))
    if n <= 0:
        raise ValueError(f"{op}: the special tokens{' and question' if sequence else ''} take "
                         f"{total - (c1 - c0)} tokens, a window of {max_len} leaves none for "
                         f"the {what}")
    if c1 - c0 > n and stride >= n:
        raise ValueError(f"{op}: the stride ({stride}) must be less than the {n} {what} "
                         f"tokens a window of {max_len} holds")
    out, start = [], c0
    while True:
        stop = min(start + n, c1)
        out.append(list(range(c0)) + list(range(start, stop)) + list(range(c1, total)))
        if stop == c1:
            return out
        start += n - stride


def padded_batches(model, tokenizer, encodings, batch_size: int):
    """Yields ``(rows, lengths, input_ids, attention_mask, token_type_ids)`` per batch:
    ``rows`` the indices into ``encodings`` (sorted by length, stable), ``lengths`` their
    token counts, the arrays (len(rows), longest) int64 padded on the right with the pad id,
    mask 0 and type 0; ``token_type_ids`` None for a model without token types."""
    lengths = np.array([len(e.ids) for e in encodings], np.int64)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with_types = uses_token_types(model)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(encodings), batch_size):
        rows = order[start:start + batch_size]
        n = lengths[rows]
        width = int(n.max())
        ids = np.full((len(rows), width), pad, np.int64)
        types = np.zeros((len(rows), width), np.int64) if with_types else None
        for r, i in enumerate(rows):
            ids[r, :n[r]] = encodings[i].ids
            if with_types:
                types[r, :n[r]] = encodings[i].type_ids
        mask = (np.arange(width) < n[:, None]).astype(np.int64)
        yield rows, n, ids, mask, types


def head_outputs(model, op: str, task: str, encodings, tokenizer, batch_size: int, names,
                 per_token: bool):
    """Runs ``encodings`` through ``model`` (a checkpoint with the ``task`` head) by length
    batches; returns, per encoding, a tuple of the output arrays ``names`` (e.g. ("logits",)
    or ("start_logits", "end_logits")), float32, cut to the encoding's real tokens when
    ``per_token`` (arrays (B, L, ...)), else its row (arrays (B, ...))."""
    batch_size = val.integer(op, "batch_size", batch_size, 1)
    out = [None] * len(encodings)
    for rows, n, ids, mask, types in padded_batches(model, tokenizer, encodings, batch_size):
        result = model(ids, mask, types, return_dict=True)
        arrays = []
        for name in names:
            a = getattr(result, name, None)
            if a is None:
                raise ValueError(f"{op}: the model returned no {name} (a {task} head is "
                                 "needed)")
            arrays.append(np.asarray(a, np.float32))
        for r, i in enumerate(rows):
            out[i] = tuple(a[r, :n[r]] if per_token else a[r] for a in arrays)
    return out


def require_task(op: str, model, task: str, model_dir=None) -> None:
    """ValueError unless the model's ``config.task`` is ``task``."""
    got = getattr(getattr(model, "config", None), "task", None)
    if got != task:
        where = f" in {str(model_dir)!r}" if model_dir is not None else ""
        raise ValueError(f"{op}: the checkpoint{where} has no {task} head (its task is "
                         f"{got!r}; expected {task!r})")


def id2label(model, num_labels: int) -> list[str]:
    """The label names of the head's outputs 0..num_labels-1: ``config.id2label``, else
    transformers' default ``LABEL_<i>``."""
    table = getattr(getattr(model, "config", None), "id2label", None) or {}
    return [str(table.get(i, table.get(str(i), f"LABEL_{i}"))) for i in range(num_labels)]
