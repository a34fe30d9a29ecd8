"""Text classification (sentiment, NLI, intent, topics): labels and scores of texts from a
checkpoint with a sequence-classification head (config.task "sequence_classification").

    logits = head(encoder([CLS] text [SEP]))            (num_labels,)
    scores = softmax(logits)   single-label (problem_type "single_label_classification",
                               or num_labels > 1 without a problem_type)
           = sigmoid(logits)   multi-label ("multi_label_classification"), or num_labels == 1
           = logits            "regression"

as transformers' text-classification pipeline chooses its ``function_to_apply``; the caller
may force one. Text pairs (NLI: premise, hypothesis) are given as ``(text, pair)`` tuples.
"""
from __future__ import annotations

import numpy as np

from .. import _validate as val
from .encoder_batches import head_outputs, id2label, load_encoder, max_tokens, require_task

FUNCTIONS = ("softmax", "sigmoid", "none")
TASK = "sequence_classification"


def default_function(config, num_labels: int) -> str:
    """transformers' choice: regression -> none; multi-label or a single output -> sigmoid;
    single-label or several outputs -> softmax."""
    problem = getattr(config, "problem_type", None)
    if problem == "regression":
        return "none"
    if problem == "multi_label_classification" or num_labels == 1:
        return "sigmoid"
    return "softmax"


def apply_function(logits: np.ndarray, function: str) -> np.ndarray:
    """Scores (..., C) float64 from logits (..., C): softmax exp(x - max) / sum exp(x - max)
    (the max subtracted so exp cannot overflow), sigmoid 1 / (1 + exp(-x)), or the logits."""
    x = np.asarray(logits, np.float64)
    if function == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if function == "none":
        return x
    raise ValueError(f"function_to_apply must be one of {FUNCTIONS}, got {function!r}")


def top_labels(scores: np.ndarray, labels: list[str], top_k: int | None) -> list[dict]:
    """``{"label", "score"}`` by decreasing score (ties: lower label index first), the first
    ``top_k`` (None: all)."""
    order = np.argsort(-scores, kind="stable")
    if top_k is not None:
        order = order[:top_k]
    return [{"label": labels[i], "score": float(scores[i])} for i in order]


def _check_inputs(op: str, texts):
    """``texts`` as a list of (text, pair or None) and whether a single input was given."""
    def item(i, t):
        if isinstance(t, str):
            return t, None
        if isinstance(t, dict):
            if set(t) - {"text", "text_pair"} or "text" not in t:
                raise ValueError(f"{op}: texts[{i}] as a dict needs the keys 'text' and "
                                 f"optionally 'text_pair', got {sorted(t)}")
            t = (t["text"], t.get("text_pair"))
        if (isinstance(t, tuple) and len(t) == 2 and isinstance(t[0], str)
                and (t[1] is None or isinstance(t[1], str))):
            return t
        raise TypeError(f"{op}: texts[{i}] must be a str, a (text, pair) tuple of str or a "
                        f"dict with 'text' and 'text_pair', got {type(t).__name__}")

    if isinstance(texts, (str, tuple, dict)):
        return [item(0, texts)], True
    if isinstance(texts, bytes) or not hasattr(texts, "__iter__"):
        raise TypeError(f"{op}: texts must be a str, a (text, pair) tuple or a list of them, "
                        f"got {type(texts).__name__}")
    return [item(i, t) for i, t in enumerate(texts)], False


def text_classification(model, tokenizer, texts, top_k: int | None = 1,
                        function_to_apply: str | None = None, batch_size: int = 32,
                        max_length: int | None = None):
    """Labels of ``texts``: for each text (a str, or a ``(text, pair)`` tuple for pair
    classification) a list of ``{"label", "score"}`` by decreasing score, the ``top_k`` best
    (None: every label). A single text (not in a list) gives its list alone.

    ``function_to_apply``: "softmax", "sigmoid" or "none" (None: from the config's
    problem_type and num_labels, as transformers). Texts longer than ``max_length`` tokens
    (default and at most the model's max_position_embeddings) are cut (the pair first when
    longer, as tokenizers' "longest_first"). Texts are run ``batch_size`` at a time after
    sorting by token count (see encoder_batches)."""
    op = "text_classification"
    items, single = _check_inputs(op, texts)
    if top_k is not None:
        top_k = val.integer(op, "top_k", top_k, 1)
    if function_to_apply is not None and function_to_apply not in FUNCTIONS:
        raise ValueError(f"{op}: function_to_apply must be None or one of {FUNCTIONS}, got "
                         f"{function_to_apply!r}")
    limit = max_tokens(op, model, max_length)
    encodings = [tokenizer.encode(t, pair, max_length=limit, truncation=True)
                 for t, pair in items]
    logits = head_outputs(model, op, TASK, encodings, tokenizer, batch_size, ("logits",),
                          per_token=False)
    results = []
    if logits:
        num_labels = logits[0][0].shape[-1]
        labels = id2label(model, num_labels)
        function = function_to_apply or default_function(model.config, num_labels)
        scores = apply_function(np.stack([x for (x,) in logits]), function)
        results = [top_labels(row, labels, top_k) for row in scores]
    return results[0] if single else results


class TextClassifier:
    """A checkpoint directory with a sequence-classification head (config.json, safetensors
    weights, vocab.txt or tokenizer.json) as a text-classification pipeline: model and
    tokenizer loaded once; each call is independent.

        classify = TextClassifier.from_pretrained("path/to/distilbert-sst2")
        classify("a gripping, beautifully shot film")
        # [{"label": "POSITIVE", "score": 0.9991}]
        classify(["great", "awful"], top_k=None)     # every label, per text

    mmap=False reads the weights into memory instead of mapping the files (fastattn.load).
    """

    def __init__(self, model_dir=None, *, model=None, tokenizer=None, mmap: bool = True,
                 weights: str = "as-stored"):
        if model_dir is None and (model is None or tokenizer is None):
            raise ValueError("TextClassifier: give a model directory, or both model and "
                             "tokenizer")
        self.model, self.tokenizer = load_encoder(model_dir, model, tokenizer, mmap=mmap,
                                                  weights=weights, where="TextClassifier")
        require_task("TextClassifier", self.model, TASK, model_dir)

    @classmethod
    def from_pretrained(cls, model_dir, *, mmap: bool = True,
                        weights: str = "as-stored") -> "TextClassifier":
        return cls(model_dir, mmap=mmap, weights=weights)

    def __call__(self, texts, top_k: int | None = 1, function_to_apply: str | None = None,
                 batch_size: int = 32, max_length: int | None = None):
        """See :func:`text_classification`."""
        return text_classification(self.model, self.tokenizer, texts, top_k=top_k,
                                   function_to_apply=function_to_apply,
                                   batch_size=batch_size, max_length=max_length)
