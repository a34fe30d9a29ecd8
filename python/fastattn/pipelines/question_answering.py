"""Extractive question answering: the span of a context that answers a question, from a
checkpoint with a question-answering head (config.task "question_answering": start and end
logits per token), as transformers' question-answering pipeline finds it.

    input   [CLS] question [SEP] context window [SEP]      (the tokenizer's pair layout)
    p_s = softmax(start_logits), p_e = softmax(end_logits)   over the window's context tokens
                                                             and [CLS] (others at -10000)
    score(s, e) = p_s[s] * p_e[e]     s <= e <= s + max_answer_len - 1, s and e context tokens

A context longer than the model's input is cut into windows of context tokens that overlap
by ``doc_stride`` tokens (window w holds context tokens [w * step, w * step + n), step =
n - doc_stride, n the tokens left after the question and the special tokens — as tokenizers'
overflowing tokens with a stride); each window is scored alone (its own softmax) and the best
spans of all windows are ranked together. A span is widened to whole words
(``align_to_words``): from the start of the word of its first token to the end of the word of
its last token. With ``handle_impossible_answer`` the empty answer competes with the score
p_s[CLS] * p_e[CLS] (the least over the windows).
"""
from __future__ import annotations

import numpy as np

from .. import _validate as val
from .encoder_batches import (backend, head_outputs, load_encoder, require_task, subword_prefix,
                             window_indices)

TASK = "question_answering"
# Logit given to tokens that cannot be in an answer before the softmax (transformers' value):
# exp(-10000 - max) underflows to 0 for any real logit.
MASKED_LOGIT = -10000.0


class Window:
    """One model input of a (question, context) pair: ``ids``, ``type_ids`` (lists), and for
    each token its context character span or None (question and special tokens): ``spans``;
    ``words``: the word index of each context token (None elsewhere); ``cls``: positions of
    the [CLS] token (which keeps its probability mass, for unanswerable questions)."""

    __slots__ = ("ids", "type_ids", "spans", "words", "cls")

    def __init__(self, ids, type_ids, spans, words, cls):
        self.ids, self.type_ids, self.spans, self.words, self.cls = (ids, type_ids, spans,
                                                                     words, cls)

    def __len__(self) -> int:
        return len(self.ids)


def word_ids(tokenizer, encoding, text: str, pair: str | None = None) -> list[int | None]:
    """The word of each token of ``encoding`` (of ``text``, ``pair``): for a tokenizer.json
    the ``tokenizers`` package's word ids (its pre-tokenizer's words, what transformers
    widens answers to); with a WordPiece vocabulary a token continuing with the ``##``
    prefix belongs to the word before it; otherwise each token is its own word."""
    inner = backend(tokenizer)
    if inner is not None:
        words = inner.encode(text, pair).word_ids
        if len(words) == len(encoding.ids):
            return list(words)
    prefix = subword_prefix(tokenizer)
    out, word = [], -1
    for tok in encoding.tokens:
        if not (prefix and tok.startswith(prefix) and word >= 0):
            word += 1
        out.append(word)
    return out


def windows(tokenizer, question: str, context: str, max_seq_len: int,
            doc_stride: int) -> list[Window]:
    """The model inputs of one (question, context) pair (see the module docstring)."""
    enc = tokenizer.encode(question, context)
    ids, types, offsets, seq = enc.ids, enc.type_ids, enc.offsets, enc.sequence_ids
    words = word_ids(tokenizer, enc, question, context)
    cls_id = getattr(tokenizer, "cls_token_id", None)
    out = []
    for keep in window_indices("question_answering", enc, 1, max_seq_len, doc_stride,
                               "context"):
        w_ids = [ids[i] for i in keep]
        spans = [tuple(offsets[i]) if seq[i] == 1 else None for i in keep]
        wds = [words[i] if seq[i] == 1 else None for i in keep]
        cls = [p for p, i in enumerate(w_ids) if i == cls_id]
        out.append(Window(w_ids, [types[i] for i in keep], spans, wds, cls))
    return out


def _masked_probs(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """softmax over the window's tokens, disallowed ones at MASKED_LOGIT, float64."""
    x = np.where(allowed, np.asarray(logits, np.float64), MASKED_LOGIT)
    e = np.exp(x - x.max())
    return e / e.sum()


def best_spans(start_logits, end_logits, context: np.ndarray, cls: list[int],
               max_answer_len: int):
    """Every allowed (score, s, e) of one window by decreasing score (ties: lower s, then
    lower e), score = p_s[s] * p_e[e] over context tokens s <= e < s + max_answer_len
    (``context``: bool per token); and the null score p_s[cls] * p_e[cls] (None without a
    [CLS])."""
    allowed = context.copy()
    allowed[cls] = True
    ps = _masked_probs(start_logits, allowed)
    pe = _masked_probs(end_logits, allowed)
    null = float(ps[cls[0]] * pe[cls[0]]) if cls else None
    idx = np.flatnonzero(context)
    # idx is increasing: token e follows s by idx[j] - idx[i] positions.
    gap = idx[None, :] - idx[:, None]
    i, j = np.nonzero((gap >= 0) & (gap <= max_answer_len - 1))
    scores = ps[idx[i]] * pe[idx[j]]
    order = np.argsort(-scores, kind="stable")   # (i, j) come row-major: ties by s, then e
    return [(float(scores[k]), int(idx[i[k]]), int(idx[j[k]])) for k in order], null


def char_span(window: Window, s: int, e: int, align_to_words: bool) -> tuple[int, int]:
    """Character span of tokens s..e of a window; with ``align_to_words`` from the start of
    s's word to the end of e's word (their tokens within the window)."""
    start, end = window.spans[s][0], window.spans[e][1]
    if not align_to_words:
        return start, end
    ws, we = window.words[s], window.words[e]
    # a token outside any word (tokenizers gives added tokens no word) stays itself
    if ws is not None:
        start = min(sp[0] for sp, w in zip(window.spans, window.words) if w == ws and sp)
    if we is not None:
        end = max(sp[1] for sp, w in zip(window.spans, window.words) if w == we and sp)
    return start, end


def answers(tokenizer, context: str, wins: list[Window], logits, top_k: int,
            max_answer_len: int, handle_impossible_answer: bool,
            align_to_words: bool) -> list[dict]:
    """The ``top_k`` answers ``{"score", "start", "end", "answer"}`` of one pair from its
    windows and their (start_logits, end_logits): distinct character spans, each with its
    best score (token spans widened to the same words, or one span seen by two
    overlapping windows, count once)."""
    best: dict[tuple[int, int], float] = {}
    null = None
    for win, (start_logits, end_logits) in zip(wins, logits):
        context_mask = np.array([sp is not None for sp in win.spans])
        spans, w_null = best_spans(start_logits, end_logits, context_mask, win.cls,
                                   max_answer_len)
        if w_null is not None:
            null = w_null if null is None else min(null, w_null)
        # the window's top_k distinct answers: token spans inside one word widen to the
        # same characters
        seen = set()
        for score, s, e in spans:
            key = char_span(win, s, e, align_to_words)
            if key in seen:
                continue
            seen.add(key)
            if score > best.get(key, -1.0):
                best[key] = score
            if len(seen) == top_k:
                break
    found = [{"score": sc, "start": a, "end": b, "answer": context[a:b]}
             for (a, b), sc in best.items()]
    if handle_impossible_answer and null is not None:
        found.append({"score": null, "start": 0, "end": 0, "answer": ""})
    found.sort(key=lambda d: (-d["score"], d["start"], d["end"]))
    return found[:top_k]


def question_answering(model, tokenizer, question, context, top_k: int = 1,
                       max_answer_len: int = 15, max_seq_len: int | None = None,
                       doc_stride: int | None = None, handle_impossible_answer: bool = False,
                       align_to_words: bool = True, batch_size: int = 32):
    """The answer to ``question`` in ``context``: ``{"answer", "score", "start", "end"}``
    (``context[start:end] == answer``), or with ``top_k`` > 1 a list of the best ones. Lists
    of questions and contexts (same length) give a list of those.

    ``max_seq_len``: tokens per model input (default min(384, the model's
    max_position_embeddings)); ``doc_stride``: context tokens shared by consecutive windows
    of a long context (default min(max_seq_len // 2, 128)); ``max_answer_len``: the most
    tokens in an answer. See the module docstring for the scores."""
    op = "question_answering"
    single = isinstance(question, str)
    if single != isinstance(context, str):
        raise TypeError(f"{op}: question and context must both be str or both lists of str, "
                        f"got {type(question).__name__} and {type(context).__name__}")
    questions = [question] if single else list(question)
    contexts = [context] if single else list(context)
    if len(questions) != len(contexts):
        raise ValueError(f"{op}: {len(questions)} questions and {len(contexts)} contexts")
    for name, items in (("question", questions), ("context", contexts)):
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise TypeError(f"{op}: {name}[{i}] must be a str, got {type(t).__name__}")
            if not t.strip():
                raise ValueError(f"{op}: {name}{'' if single else f'[{i}]'} is empty")
    top_k = val.integer(op, "top_k", top_k, 1)
    max_answer_len = val.integer(op, "max_answer_len", max_answer_len, 1)
    if max_seq_len is None:
        max_seq_len = min(384, model.max_length)
    max_seq_len = val.integer(op, "max_seq_len", max_seq_len, 4, model.max_length)
    if doc_stride is None:
        doc_stride = min(max_seq_len // 2, 128)
    doc_stride = val.integer(op, "doc_stride", doc_stride, 0)
    align_to_words = val.flag(op, "align_to_words", align_to_words)
    handle_impossible_answer = val.flag(op, "handle_impossible_answer",
                                        handle_impossible_answer)
    per_pair = [windows(tokenizer, q, c, max_seq_len, doc_stride)
                for q, c in zip(questions, contexts)]
    flat = [w for wins in per_pair for w in wins]
    logits = head_outputs(model, op, TASK, flat, tokenizer, batch_size,
                          ("start_logits", "end_logits"), per_token=True)
    results, at = [], 0
    for c, wins in zip(contexts, per_pair):
        found = answers(tokenizer, c, wins, logits[at:at + len(wins)], top_k, max_answer_len,
                        handle_impossible_answer, align_to_words)
        at += len(wins)
        results.append(found[0] if top_k == 1 else found)
    return results[0] if single else results


class QuestionAnswerer:
    """A checkpoint directory with a question-answering head (config.json, safetensors
    weights, vocab.txt or tokenizer.json) as an extractive question-answering pipeline.

        qa = QuestionAnswerer.from_pretrained("path/to/distilbert-squad")
        qa("Where was Ada born?", "Ada Lovelace was born in London in 1815.")
        # {"answer": "London", "score": 0.97, "start": 25, "end": 31}

    mmap=False reads the weights into memory instead of mapping the files (fastattn.load).
    """

    def __init__(self, model_dir=None, *, model=None, tokenizer=None, mmap: bool = True,
                 weights: str = "as-stored"):
        if model_dir is None and (model is None or tokenizer is None):
            raise ValueError("QuestionAnswerer: give a model directory, or both model and "
                             "tokenizer")
        self.model, self.tokenizer = load_encoder(model_dir, model, tokenizer, mmap=mmap,
                                                  weights=weights, where="QuestionAnswerer")
        require_task("QuestionAnswerer", self.model, TASK, model_dir)

    @classmethod
    def from_pretrained(cls, model_dir, *, mmap: bool = True,
                        weights: str = "as-stored") -> "QuestionAnswerer":
        return cls(model_dir, mmap=mmap, weights=weights)

    def __call__(self, question, context, **options):
        """See :func:`question_answering` for the options."""
        return question_answering(self.model, self.tokenizer, question, context, **options)
