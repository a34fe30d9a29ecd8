"""Text in, text out for the decoder models: incremental detokenisation (TextStream), a
prompt's continuation piece by piece (generate_text), and TextGenerator, the pipeline that
loads a model directory with its tokenizer.json."""
from __future__ import annotations

import os
import time
from typing import Iterator

import numpy as np

from ..tokenizers.tokenizer_json import load_tokenizer_json
from .generation import generate


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
                  top_k=None, top_p=None, seed=None, stats: dict | None = None,
                  kv_dtype="float32") -> Iterator[str]:
    """Yields the continuation of `prompt` piece by piece (greedy or sampled). If `stats` is a
    dict it receives prompt_tokens, new_tokens, prefill_s and decode_s. `kv_dtype`: the KV
    cache's storage, "float32", "float16" or "bfloat16" (fastattn.pipelines.generate)."""
    ids = np.asarray([tokenizer.encode(prompt).ids], dtype=np.int64)
    if ids.shape[1] == 0:
        raise ValueError("generate: the prompt encodes to no tokens")
    eos = getattr(model.config, "eos_token_id", None)
    stream = TextStream(tokenizer)
    t0 = time.perf_counter()
    first = None
    count = 0
    for tokens in generate(model, ids, max_new_tokens, temperature=temperature, top_k=top_k,
                           top_p=top_p, seed=seed, eos_token_id=eos, stream=True,
                           kv_dtype=kv_dtype):
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


class TextGenerator:
    """A decoder model directory (config.json, safetensors weights, tokenizer.json) as a
    text-in, text-out pipeline: the model and its tokenizer loaded once, each call a fresh
    generation (its own KV cache), so one TextGenerator serves several threads.

        gen = TextGenerator("path/to/model")
        gen("The capital of France is", max_new_tokens=16)        # -> the continuation (str)
        for piece in gen.stream("Once upon a time", 64): print(piece, end="")

    mmap=False reads the weights into memory instead of mapping the files (fastattn.load): for
    a long-running service whose model files may be replaced or truncated under it.
    kv_dtype="float16" / "bfloat16" keeps each generation's KV cache in 16 bits (half the
    bytes; docs/kv_cache.md); a call may override it (``gen(prompt, kv_dtype="float32")``).
    weights="q8" / "q4" / "bfloat16" / ... loads the Linear matrices in that format
    (fastattn.load; docs/quantization.md); the default keeps the checkpoint's own.
    """

    def __init__(self, model_dir, *, model=None, tokenizer=None, mmap: bool = True,
                 kv_dtype="float32", weights: str = "as-stored"):
        from ..kv_cache import kv_dtype as check_kv_dtype
        from ..loading import load
        from ..models.weights import check_format
        self.kv_dtype = check_kv_dtype("TextGenerator", kv_dtype)
        check_format("TextGenerator", weights)
        model_dir = os.fspath(model_dir)
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer_json(model_dir)
        self.model = model if model is not None else load(model_dir, mmap=mmap, weights=weights)

    def stream(self, prompt: str, max_new_tokens: int = 64, **sampling) -> Iterator[str]:
        """The continuation piece by piece; ``sampling``: temperature, top_k, top_p, seed,
        stats, kv_dtype (default: this pipeline's; see generate_text)."""
        sampling.setdefault("kv_dtype", self.kv_dtype)
        return generate_text(self.model, self.tokenizer, prompt, max_new_tokens, **sampling)

    def __call__(self, prompt: str, max_new_tokens: int = 64, **sampling) -> str:
        """The continuation of ``prompt`` (without the prompt)."""
        return "".join(self.stream(prompt, max_new_tokens, **sampling))
