"""The attention of a text model over a text, for ``fastattn attention``: tokenize, run the
model with ``output_attentions=True`` (the attention kernel's returned probabilities), pick a
layer and a head (or the mean over heads).

BERT-family directories (BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA) are tokenized by
``fastattn.tokenizers.load_tokenizer`` (vocab.txt: fastattn's WordPiece; else tokenizer.json),
decoders (GPT-2, LLaMA, Mistral, Qwen2) with their tokenizer.json (the ``tokenizers`` package).
"""
from __future__ import annotations

import numpy as np

from .cost import DECODERS, ENCODERS


def tokenize(model_dir, model_type: str, text: str) -> tuple[list[int], list[str]]:
    """(ids, token strings) of ``text`` with the directory's tokenizer."""
    if model_type in ENCODERS:
        from ..tokenizers import load_tokenizer
        enc = load_tokenizer(model_dir).encode(text)
        return list(enc.ids), list(enc.tokens)
    if model_type in DECODERS:
        from ..tokenizers.tokenizer_json import load_tokenizer_json
        enc = load_tokenizer_json(model_dir).encode(text)
        return list(enc.ids), list(enc.tokens)
    raise ValueError(f"attention maps of text models only ({', '.join(ENCODERS + DECODERS)}); "
                     f"{model_type!r} is not one")


def select(attentions, layer, head):
    """The (T, T) map of ``layer`` (an index into the layers, negative from the end) and
    ``head`` (an index, or "mean" over the heads) of a model's attentions (one (1, H, T, T)
    array per layer); ValueError naming the valid range otherwise."""
    n = len(attentions)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
            or not -n <= layer < n:
        raise ValueError(f"layer must be an integer in [{-n}, {n - 1}] (the model has {n} "
                         f"layers), got {layer!r}")
    probs = attentions[layer][0]                     # (H, T, T)
    heads = probs.shape[0]
    if head == "mean":
        return probs.mean(axis=0)
    if isinstance(head, bool) or not isinstance(head, (int, np.integer)) \
            or not 0 <= head < heads:
        raise ValueError(f"head must be 'mean' or an integer in [0, {heads - 1}] (the model "
                         f"has {heads} heads per layer), got {head!r}")
    return probs[head]


def text_attention(model_dir, text: str, *, layer=-1, head="mean", model=None):
    """(tokens, (T, T) attention map, title) of ``text`` through the model in ``model_dir``
    (loaded unless ``model`` is given): rows the attending tokens, columns the attended
    ones."""
    from ..loading import load, load_config
    config = load_config(model_dir)
    if config.model_type not in ENCODERS + DECODERS:
        raise ValueError(f"attention maps of text models only ({', '.join(ENCODERS + DECODERS)}); "
                         f"{config.model_type!r} is not one (vision: fastattn classify --rollout)")
    ids, tokens = tokenize(model_dir, config.model_type, text)
    if not ids:
        raise ValueError(f"the text {text!r} has no tokens")
    model = load(model_dir) if model is None else model
    out = model(np.asarray(ids, np.int64)[None], output_attentions=True)
    matrix = select(out.attentions, layer, head)
    n = len(out.attentions)
    shown = layer if layer >= 0 else n + layer
    title = (f"{config.model_type}: layer {shown} of {n}, "
             f"{'mean over heads' if head == 'mean' else f'head {head}'}")
    return tokens, matrix, title
