"""Token classification (named entities, part of speech): a label per token from a checkpoint
with a token-classification head (config.task "token_classification"), grouped into entities
with character offsets into the original text, as transformers' token-classification
pipeline does.

    p(label | token t) = softmax(logits[t])        (per token, special tokens dropped)

Aggregation (``aggregation``):

- "none": every token with its best label: {"entity", "score", "index", "word", "start", "end"};
- "simple": adjacent tokens whose labels share a tag (``B-PER``, ``I-PER`` -> ``PER``) form an
  entity, a ``B-`` label starting a new one: {"entity_group", "score" (mean of the tokens'
  scores), "word", "start", "end"};
- "first" / "average" / "max": first the sub-word tokens of a word are forced to one label —
  the first token's, the best of the mean of their probability vectors, or the label of
  the token with the highest single probability — then grouped as "simple". A word is a
  token and the sub-word tokens after it: with a WordPiece vocabulary a token is a sub-word
  when its text is longer than its span in the input (the ``##``), otherwise (byte-level
  BPE, Unigram) when it does not follow a space (transformers' heuristic).

Entities whose label (or group) is in ``ignore_labels`` (default "O") are dropped. Long
texts: cut at the model's length, or with ``stride`` read in overlapping windows whose
entities are merged (the longer of two overlapping entities kept).
"""
from __future__ import annotations

import numpy as np

from .. import _validate as val
from .encoder_batches import (backend, check_texts, head_outputs, id2label, load_encoder,
                              max_tokens, require_task, subword_prefix, window_indices)

AGGREGATIONS = ("none", "simple", "first", "average", "max")
TASK = "token_classification"


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """softmax over the last axis, float64: exp(x - max) / sum exp(x - max)."""
    x = np.asarray(logits, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def split_tag(label: str) -> tuple[str, str]:
    """("B" | "I", tag) of an IOB label; a label without a B-/I- prefix counts as "I"
    (continues an entity of the same tag)."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def tokens_to_string(tokenizer, ids: list[int], tokens: list[str],
                     pieces: list[str] | None = None) -> str:
    """The text of a run of tokens as transformers' convert_tokens_to_string gives it: the
    ``tokenizers`` decoder on ``pieces`` (default ``tokens``: the token strings) for a
    tokenizer.json, else the WordPiece decoder on the ids (special tokens kept) with each
    unknown token replaced by its entry of ``tokens`` (its span of the input, as transformers
    shows an [UNK])."""
    inner = backend(tokenizer)
    if inner is not None:
        return inner.decoder.decode(tokens if pieces is None else pieces)
    unk_id = getattr(tokenizer, "unk_token_id", None)
    text = tokenizer.decode(ids, skip_special_tokens=False)
    unknown = [w for i, w in zip(ids, tokens) if i == unk_id]
    if unknown:
        marker = tokenizer.convert_ids_to_tokens([unk_id])[0]
        parts = text.split(marker)
        if len(parts) == len(unknown) + 1:
            text = parts[0] + "".join(w + p for w, p in zip(unknown, parts[1:]))
    return text


def pre_entities(tokenizer, text: str, encoding, scores: np.ndarray) -> list[dict]:
    """The non-special tokens of ``encoding`` with their probability rows: ``{"id", "word",
    "scores", "start", "end", "index", "is_subword"}`` (see the module docstring for
    is_subword). An unknown token's word is its span of the text."""
    prefix = subword_prefix(tokenizer)
    unk_id = getattr(tokenizer, "unk_token_id", None)
    ids = encoding.ids
    tokens = encoding.tokens
    special = encoding.special_tokens_mask
    out = []
    for idx, (start, end) in enumerate(encoding.offsets):
        if special[idx]:
            continue
        word, ref = tokens[idx], text[start:end]
        if prefix:
            is_subword = len(word) != len(ref)
        else:
            is_subword = start > 0 and " " not in text[start - 1:start + 1]
        if ids[idx] == unk_id:
            word, is_subword = ref, False
        out.append({"id": ids[idx], "word": word, "scores": scores[idx], "start": start,
                    "end": end, "index": idx, "is_subword": is_subword})
    return out


def _word_entity(tokenizer, group: list[dict], strategy: str, labels: list[str]) -> dict:
    """One word (a token and its sub-word tokens) forced to one label."""
    if strategy == "first":
        scores = group[0]["scores"]
    elif strategy == "max":
        scores = max(group, key=lambda e: e["scores"].max())["scores"]
    else:  # average
        scores = np.mean([e["scores"] for e in group], axis=0)
    best = int(np.argmax(scores))
    ids = [i for e in group for i in e["ids"]]
    tokens = [t for e in group for t in e["tokens"]]
    # transformers decodes each word, then the group from the words' texts (pieces): the same
    # text for WordPiece (decoded from the ids), not always for a tokenizers decoder
    return {"entity": labels[best], "score": float(scores[best]), "ids": ids,
            "tokens": tokens, "pieces": [tokens_to_string(tokenizer, ids, tokens)],
            "start": group[0]["start"], "end": group[-1]["end"]}


def _token_entities(pre: list[dict], labels: list[str]) -> list[dict]:
    out = []
    for e in pre:
        best = int(np.argmax(e["scores"]))
        out.append({"entity": labels[best], "score": float(e["scores"][best]),
                    "index": e["index"], "ids": [e["id"]], "tokens": [e["word"]],
                    "pieces": [e["word"]],
                    "start": e["start"], "end": e["end"]})
    return out


def _words(tokenizer, pre: list[dict], strategy: str, labels: list[str]) -> list[dict]:
    groups: list[list[dict]] = []
    for e in pre:
        e = dict(e, ids=[e["id"]], tokens=[e["word"]])
        if groups and e["is_subword"]:
            groups[-1].append(e)
        else:
            groups.append([e])
    return [_word_entity(tokenizer, g, strategy, labels) for g in groups]


def _group(tokenizer, entities: list[dict]) -> list[dict]:
    """Adjacent entities with the same tag, a B- starting a new group: one entity each with
    the mean score and the joined text."""
    groups: list[list[dict]] = []
    for e in entities:
        bi, tag = split_tag(e["entity"])
        if groups and bi != "B" and split_tag(groups[-1][-1]["entity"])[1] == tag:
            groups[-1].append(e)
        else:
            groups.append([e])
    out = []
    for g in groups:
        out.append({"entity_group": split_tag(g[0]["entity"])[1],
                    "score": float(np.mean([e["score"] for e in g])),
                    "word": tokens_to_string(tokenizer, [i for e in g for i in e["ids"]],
                                             [t for e in g for t in e["tokens"]],
                                             [p for e in g for p in e["pieces"]]),
                    "start": g[0]["start"], "end": g[-1]["end"]})
    return out


def aggregate(tokenizer, text: str, encoding, logits: np.ndarray, labels: list[str],
              aggregation: str = "simple", ignore_labels=("O",)) -> list[dict]:
    """Entities of one text from its encoding and per-token logits (L, num_labels); see the
    module docstring."""
    pre = pre_entities(tokenizer, text, encoding, softmax_rows(logits))
    if aggregation == "none":
        entities = _token_entities(pre, labels)
        return [{"entity": e["entity"], "score": e["score"], "index": e["index"],
                 "word": e["tokens"][0], "start": e["start"], "end": e["end"]}
                for e in entities if e["entity"] not in ignore_labels]
    if aggregation == "simple":
        words = _token_entities(pre, labels)
    else:
        words = _words(tokenizer, pre, aggregation, labels)
    return [e for e in _group(tokenizer, words) if e["entity_group"] not in ignore_labels]


class _Window:
    """The tokens ``keep`` of an encoding (a window of a long text): the fields the pipeline
    reads."""

    __slots__ = ("ids", "tokens", "offsets", "type_ids", "special_tokens_mask")

    def __init__(self, enc, keep: list[int]):
        self.ids = [enc.ids[i] for i in keep]
        self.tokens = [enc.tokens[i] for i in keep]
        self.offsets = [enc.offsets[i] for i in keep]
        self.type_ids = [enc.type_ids[i] for i in keep]
        self.special_tokens_mask = [enc.special_tokens_mask[i] for i in keep]


def merge_overlapping(entities: list[dict]) -> list[dict]:
    """Entities of overlapping windows as one list (transformers' rule): by start; of two
    entities whose spans overlap the longer is kept, on equal lengths the higher score."""
    out: list[dict] = []
    for e in sorted(entities, key=lambda e: e["start"]):
        if out and out[-1]["start"] <= e["start"] < out[-1]["end"]:
            kept = out[-1]
            longer = e["end"] - e["start"] - (kept["end"] - kept["start"])
            if longer > 0 or (longer == 0 and e["score"] > kept["score"]):
                out[-1] = e
        else:
            out.append(e)
    return out


def token_classification(model, tokenizer, texts, aggregation: str = "simple",
                         ignore_labels=("O",), batch_size: int = 32,
                         max_length: int | None = None, stride: int | None = None):
    """Entities of ``texts`` (a str, or a list of str: then a list of entity lists), each
    ``{"entity_group", "score", "word", "start", "end"}`` (``{"entity", "score", "index",
    "word", "start", "end"}`` with aggregation "none"), ``start``/``end`` character offsets
    into the text. See the module docstring for the aggregations.

    A text longer than ``max_length`` tokens (default and at most the model's
    max_position_embeddings) is cut there; with ``stride`` it is read whole instead, in
    windows of ``max_length`` tokens whose text tokens overlap by ``stride`` (tokenizers'
    overflowing tokens), each window's entities found alone and those of overlapping windows
    merged (merge_overlapping), as transformers' pipeline with ``stride``."""
    op = "token_classification"
    items, single = check_texts(op, "texts", texts)
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"{op}: aggregation must be one of {AGGREGATIONS}, got "
                         f"{aggregation!r}")
    if isinstance(ignore_labels, str):
        ignore_labels = (ignore_labels,)
    ignore = set(val.str_items(op, "ignore_labels", list(ignore_labels or ())))
    limit = max_tokens(op, model, max_length)
    pieces, owner = [], []
    if stride is None:
        pieces = [tokenizer.encode(t, max_length=limit, truncation=True) for t in items]
        owner = list(range(len(items)))
    else:
        stride = val.integer(op, "stride", stride, 0)
        if aggregation == "none":
            raise ValueError(f"{op}: stride needs an aggregation other than 'none' (the "
                             "tokens of overlapping windows are merged as entities)")
        for k, t in enumerate(items):
            enc = tokenizer.encode(t)
            if 0 not in enc.sequence_ids:     # an empty text: the special tokens alone
                pieces.append(enc)
                owner.append(k)
                continue
            for keep in window_indices(op, enc, 0, limit, stride):
                pieces.append(_Window(enc, keep))
                owner.append(k)
    logits = head_outputs(model, op, TASK, pieces, tokenizer, batch_size, ("logits",),
                          per_token=True)
    results: list[list[dict]] = [[] for _ in items]
    windows = [0] * len(items)
    if logits:
        labels = id2label(model, logits[0][0].shape[-1])
        for k, piece, (x,) in zip(owner, pieces, logits):
            results[k] += aggregate(tokenizer, items[k], piece, x, labels, aggregation, ignore)
            windows[k] += 1
    results = [merge_overlapping(r) if n > 1 else r for r, n in zip(results, windows)]
    return results[0] if single else results


class TokenClassifier:
    """A checkpoint directory with a token-classification head (config.json, safetensors
    weights, vocab.txt or tokenizer.json) as a named-entity pipeline.

        ner = TokenClassifier.from_pretrained("path/to/bert-base-NER")
        ner("Ada Lovelace was born in London")
        # [{"entity_group": "PER", "score": 0.99, "word": "Ada Lovelace", "start": 0, "end": 12},
        #  {"entity_group": "LOC", "score": 0.99, "word": "London", "start": 25, "end": 31}]

    mmap=False reads the weights into memory instead of mapping the files (fastattn.load).
    """

    def __init__(self, model_dir=None, *, model=None, tokenizer=None, mmap: bool = True,
                 aggregation: str = "simple", weights: str = "as-stored"):
        if model_dir is None and (model is None or tokenizer is None):
            raise ValueError("TokenClassifier: give a model directory, or both model and "
                             "tokenizer")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"TokenClassifier: aggregation must be one of {AGGREGATIONS}, "
                             f"got {aggregation!r}")
        self.aggregation = aggregation
        self.model, self.tokenizer = load_encoder(model_dir, model, tokenizer, mmap=mmap,
                                                  weights=weights, where="TokenClassifier")
        require_task("TokenClassifier", self.model, TASK, model_dir)

    @classmethod
    def from_pretrained(cls, model_dir, *, mmap: bool = True, aggregation: str = "simple",
                        weights: str = "as-stored") -> "TokenClassifier":
        return cls(model_dir, mmap=mmap, aggregation=aggregation, weights=weights)

    def __call__(self, texts, aggregation: str | None = None, ignore_labels=("O",),
                 batch_size: int = 32, max_length: int | None = None,
                 stride: int | None = None):
        """See :func:`token_classification`."""
        return token_classification(self.model, self.tokenizer, texts,
                                    aggregation=aggregation or self.aggregation,
                                    ignore_labels=ignore_labels, batch_size=batch_size,
                                    max_length=max_length, stride=stride)
