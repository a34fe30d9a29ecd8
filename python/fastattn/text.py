"""Text in, text out for the decoder models: a Hugging Face `tokenizer.json` (BPE, byte-level
BPE, ...) read by the optional `tokenizers` package (`pip install "fastattn[text]"`), and
incremental detokenisation for streaming.

Why a dependency: tokenizer.json describes a pipeline (normalizers, pre-tokenizers with
byte-level regexes, BPE merges, post-processors, added tokens) whose exact behaviour is defined
by the `tokenizers` package itself; re-implementing it would only be a source of mismatches.
BERT's WordPiece, simple and fully specified, is ours (fastattn.tokenizers)."""
from __future__ import annotations

import os
import time
from typing import Iterator


def load_tokenizer(model_dir: str):
    """The `tokenizers.Tokenizer` of `model_dir/tokenizer.json`."""
    path = os.path.join(model_dir, "tokenizer.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no tokenizer.json in {model_dir!r} (fastattn generate needs "
                                f"the checkpoint's Hugging Face tokenizer file)")
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise ImportError("reading tokenizer.json needs the optional 'tokenizers' package: "
                          "pip install \"fastattn[text]\"") from e
    return Tokenizer.from_file(path)


class TextStream:
    """Turns new token ids into printable text pieces. Decoding token by token would split
    multi-byte characters and drop the spaces that byte-level BPE attaches to the next token,
    so each push decodes a short window: the tokens already emitted by the previous piece
    (`prefix`, for context) plus the new ones, and emits what the new ones add. A trailing
    U+FFFD means an unfinished UTF-8 sequence: wait for the next token. The window only ever
    holds the last emitted piece's tokens and the pending ones, so a step costs O(1) in the
    length of the generation (decoding the whole suffix each step would be O(n) per token)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_start = 0   # ids[prefix_start:read_start]: context already emitted
        self.read_start = 0     # ids[read_start:]: not emitted yet

    def _new_text(self, complete_only: bool) -> str:
        decode = self.tokenizer.decode
        prefix = decode(self.ids[self.prefix_start:self.read_start])
        text = decode(self.ids[self.prefix_start:])
        if len(text) <= len(prefix) or (complete_only and text.endswith("\ufffd")):
            return ""
        self.prefix_start, self.read_start = self.read_start, len(self.ids)
        return text[len(prefix):]

    def push(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        return self._new_text(complete_only=True)

    def flush(self) -> str:
        return self._new_text(complete_only=False)


def generate_text(model, tokenizer, prompt: str, max_new_tokens: int, *, temperature=0.0,
                  top_k=None, top_p=None, seed=None, stats: dict | None = None) -> Iterator[str]:
    """Yields the continuation of `prompt` piece by piece (greedy or sampled). If `stats` is a
    dict it receives prompt_tokens, new_tokens, prefill_s and decode_s."""
    import numpy as np

    ids = np.asarray([tokenizer.encode(prompt).ids], dtype=np.int64)
    if ids.shape[1] == 0:
        raise ValueError("generate: the prompt encodes to no tokens")
    eos = getattr(model.config, "eos_token_id", None)
    stream = TextStream(tokenizer)
    t0 = time.perf_counter()
    first = None
    count = 0
    for tokens in model.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k,
                                 top_p=top_p, seed=seed, eos_token_id=eos, stream=True):
        if first is None:
            first = time.perf_counter()
        count += 1
        token = int(tokens[0])
        if eos is not None and token in set(np.atleast_1d(eos).tolist()):
            break
        piece = stream.push(token)
        if piece:
            yield piece
    tail = stream.flush()
    if tail:
        yield tail
    end = time.perf_counter()
    if stats is not None:
        stats.update(prompt_tokens=int(ids.shape[1]), new_tokens=count,
                     prefill_s=(first or end) - t0, decode_s=end - (first or end))
