"""``load_tokenizer(model_dir)``: the tokenizer of a Hugging Face model directory, for the
encoder pipelines.

- vocab.txt (BERT, DistilBERT, ELECTRA; also when a tokenizer.json sits next to it):
  fastattn's WordPieceTokenizer, pure Python, read with tokenizer_config.json's options;
- otherwise tokenizer.json (RoBERTa's byte-level BPE, XLM-R's Unigram, ...): TokenizerJson,
  the ``tokenizers`` package behind the same interface (``pip install "fastattn[text]"``).
"""
from __future__ import annotations

import os


def load_tokenizer(model_dir):
    """The tokenizer of ``model_dir``: a WordPieceTokenizer when it has vocab.txt, else a
    TokenizerJson over its tokenizer.json. FileNotFoundError (naming the directory and the
    files looked for) when it has neither; ImportError naming the extra when tokenizer.json
    needs the missing ``tokenizers`` package."""
    if not isinstance(model_dir, (str, os.PathLike)):
        raise TypeError(f"load_tokenizer: model_dir must be a str or os.PathLike, got "
                        f"{type(model_dir).__name__}")
    model_dir = os.fspath(model_dir)
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"load_tokenizer: no such model directory: {model_dir!r}")
    if os.path.isfile(os.path.join(model_dir, "vocab.txt")):
        from .wordpiece import WordPieceTokenizer
        return WordPieceTokenizer.from_pretrained(model_dir)
    if os.path.isfile(os.path.join(model_dir, "tokenizer.json")):
        from .tokenizer_json import TokenizerJson
        return TokenizerJson.from_pretrained(model_dir)
    raise FileNotFoundError(f"load_tokenizer: {model_dir!r} has neither vocab.txt (WordPiece) "
                            "nor tokenizer.json (a Hugging Face fast tokenizer)")
