"""A Hugging Face `tokenizer.json` (BPE, byte-level BPE, Unigram, ...) read by the optional
`tokenizers` package (`pip install "fastattn[text]"`).

Why a dependency: tokenizer.json describes a pipeline (normalizers, pre-tokenizers with
byte-level regexes, BPE merges, post-processors, added tokens) whose exact behaviour is defined
by the `tokenizers` package itself; re-implementing it would only be a source of mismatches.
BERT's WordPiece, simple and fully specified, is ours (fastattn.tokenizers.wordpiece)."""
from __future__ import annotations

import os


def load_tokenizer_json(model_dir) -> "tokenizers.Tokenizer":  # noqa: F821
    """The `tokenizers.Tokenizer` of `model_dir/tokenizer.json` (FileNotFoundError naming the file
    when absent; ImportError naming the extra when `tokenizers` is not installed)."""
    model_dir = os.fspath(model_dir)
    path = os.path.join(model_dir, "tokenizer.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no tokenizer.json in {model_dir!r} (a decoder "
                                f"checkpoint's Hugging Face tokenizer file)")
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise ImportError("reading tokenizer.json needs the optional 'tokenizers' package: "
                          "pip install \"fastattn[text]\"") from e
    return Tokenizer.from_file(path)
