"""A Hugging Face `tokenizer.json` (BPE, byte-level BPE, Unigram, ...) read by the optional
`tokenizers` package (`pip install "fastattn[text]"`).

Why a dependency: tokenizer.json describes a pipeline (normalizers, pre-tokenizers with
byte-level regexes, BPE merges, post-processors, added tokens) whose exact behaviour is defined
by the `tokenizers` package itself; re-implementing it would only be a source of mismatches.
BERT's WordPiece, simple and fully specified, is ours (fastattn.tokenizers.wordpiece)."""
from __future__ import annotations

import os

from .encoding import check_batch_arguments, pad_batch


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


# Special tokens looked for in the vocabulary when no tokenizer_config.json names them:
# role -> candidates (RoBERTa / XLM-R spelling first, then BERT's).
_SPECIAL_CANDIDATES = {"cls_token": ("<s>", "[CLS]"), "sep_token": ("</s>", "[SEP]"),
                       "pad_token": ("<pad>", "[PAD]"), "mask_token": ("<mask>", "[MASK]"),
                       "unk_token": ("<unk>", "[UNK]"), "bos_token": ("<s>",),
                       "eos_token": ("</s>",)}
_TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")


class TokenizerJson:
    """A ``tokenizers.Tokenizer`` (a model directory's tokenizer.json: RoBERTa's byte-level
    BPE, XLM-R's Unigram, ...) behind the interface of fastattn's WordPieceTokenizer, so that
    the pipelines take either: ``encode`` -> :class:`fastattn.tokenizers.Encoding` (ids,
    tokens, offsets as character spans into the original text, type_ids, attention_mask,
    special_tokens_mask, sequence_ids), ``encode_batch``, ``decode``, the special tokens and
    their ids, ``convert_ids_to_tokens`` / ``convert_tokens_to_ids``.

    Ids, tokens and offsets are the ``tokenizers`` package's, which are transformers' fast
    tokenizer's. Truncation is computed per call (the package's own truncation setting is
    state on the shared Tokenizer, and is switched off here): the whole text (pair) is
    encoded, then each text's tokens are cut to the lengths of truncation_lengths (the
    package's "longest_first" / "only_first" / "only_second"), special tokens kept. The
    package cuts before its post-processor adds the special tokens; the result is the same,
    because the post-processor only adds tokens around the texts and adjusts each token's
    own offsets (RoBERTa's trim_offsets). Thread-safe: no per-call state."""

    def __init__(self, tokenizer, *, model_max_length: int | None = None, **special_tokens):
        self._tok = tokenizer
        # a tokenizer.json may carry truncation / padding settings; they would apply to every
        # encode (and are state): the caller's arguments decide instead
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.model_max_length = model_max_length
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        for role, candidates in _SPECIAL_CANDIDATES.items():
            token = special_tokens.get(role)
            if token is None:
                token = next((t for t in candidates if t in vocab), None)
            setattr(self, role, token)
        self._special_ids = frozenset(
            vocab[t] for t in (self.cls_token, self.sep_token, self.pad_token, self.mask_token,
                               self.unk_token, self.bos_token, self.eos_token)
            if t is not None and t in vocab)

    @classmethod
    def from_pretrained(cls, directory) -> "TokenizerJson":
        """The tokenizer of ``directory``: tokenizer.json, with the special tokens and
        model_max_length of tokenizer_config.json / special_tokens_map.json when present."""
        from .wordpiece import _options_from_config, _read_json_if_present
        options = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            config = _read_json_if_present(os.path.join(os.fspath(directory), name))
            for key, value in _options_from_config(config).items():
                if key.endswith("_token") or key == "model_max_length":
                    options[key] = value
            for key in ("bos_token", "eos_token"):
                value = config.get(key)
                value = value.get("content") if isinstance(value, dict) else value
                if isinstance(value, str):
                    options[key] = value
        return cls(load_tokenizer_json(directory), **options)

    # --------------------------------------------------------------------- vocabulary
    @property
    def tokenizer(self):
        """The wrapped ``tokenizers.Tokenizer``."""
        return self._tok

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab(with_added_tokens=True)

    def _id(self, token):
        return None if token is None else self._tok.token_to_id(token)

    @property
    def cls_token_id(self) -> int | None:
        return self._id(self.cls_token)

    @property
    def sep_token_id(self) -> int | None:
        return self._id(self.sep_token)

    @property
    def pad_token_id(self) -> int | None:
        return self._id(self.pad_token)

    @property
    def mask_token_id(self) -> int | None:
        return self._id(self.mask_token)

    @property
    def unk_token_id(self) -> int | None:
        return self._id(self.unk_token)

    @property
    def bos_token_id(self) -> int | None:
        return self._id(self.bos_token)

    @property
    def eos_token_id(self) -> int | None:
        return self._id(self.eos_token)

    @property
    def all_special_ids(self) -> list[int]:
        return sorted(self._special_ids)

    def convert_tokens_to_ids(self, tokens):
        """Ids of a token or a list of tokens (the unknown token's id for tokens outside the
        vocabulary, None when there is no unknown token)."""
        if isinstance(tokens, str):
            i = self._tok.token_to_id(tokens)
            return self.unk_token_id if i is None else i
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def _check_ids(self, ids) -> list[int]:
        """ids (a sequence or 1-D array of integers) as a list of ints inside the vocabulary:
        TypeError / ValueError naming the problem otherwise."""
        from .._validate import is_integer
        if hasattr(ids, "ndim") and hasattr(ids, "tolist"):      # a NumPy array
            if ids.ndim != 1:
                raise ValueError(f"ids must be one-dimensional, got {ids.ndim} dimensions")
            ids = ids.tolist()
        elif isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise TypeError(f"ids must be a sequence of ints, got {type(ids).__name__}")
        n = self.vocab_size
        out = []
        for i in ids:
            if not is_integer(i):
                raise TypeError(f"token ids must be integers, got {type(i).__name__}")
            if not 0 <= i < n:
                raise ValueError(f"token id {int(i)} is outside the vocabulary [0, {n})")
            out.append(int(i))
        return out

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """The token string of an id, or the list of a sequence of ids."""
        from .._validate import is_integer
        if is_integer(ids):
            return self._tok.id_to_token(self._check_ids([ids])[0])
        return [self._tok.id_to_token(i) for i in self._check_ids(ids)
                if not (skip_special_tokens and i in self._special_ids)]

    # ----------------------------------------------------------------------- encoding
    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text`` (no special tokens)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._tok.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str, pair: str | None = None, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: bool | str = False):
        """Encodes a text, or a text pair, into an :class:`Encoding`, special tokens placed by
        the tokenizer.json's post-processor (RoBERTa: ``<s> a </s></s> b </s>``). Truncation
        as WordPieceTokenizer.encode (True = "longest_first"; the cut keeps at most
        ``max_length`` tokens, default model_max_length, special tokens included); without
        truncation a result longer than ``max_length`` raises ValueError."""
        _check_text("text", text)
        if pair is not None:
            _check_text("pair", pair, "None or a str")
        max_length, truncation = self._limits(max_length, truncation)
        enc = self._tok.encode(text, pair, add_special_tokens=add_special_tokens)
        return self._finish(enc, pair is not None, max_length, truncation)

    def _limits(self, max_length, truncation):
        """(max_length, truncation) checked: truncation False or a strategy name, and with
        truncation the length limit (max_length, else model_max_length)."""
        from .._validate import integer
        max_length = integer("TokenizerJson.encode", "max_length", max_length, 0, optional=True)
        if truncation is True:
            truncation = "longest_first"
        if truncation is not False and truncation not in _TRUNCATION_STRATEGIES:
            raise ValueError(f"truncation must be a bool or one of {_TRUNCATION_STRATEGIES}, "
                             f"got {truncation!r}")
        if truncation:
            max_length = max_length if max_length is not None else self.model_max_length
            if max_length is None:
                raise ValueError("truncation needs max_length (the tokenizer has no "
                                 "model_max_length)")
        return max_length, truncation

    @staticmethod
    def _finish(enc, is_pair: bool, max_length, truncation):
        """Our Encoding of a ``tokenizers.Encoding``, cut or checked against max_length."""
        from .encoding import Encoding
        fields = (enc.ids, enc.tokens, enc.offsets, enc.type_ids, enc.special_tokens_mask,
                  enc.sequence_ids)
        if max_length is not None and len(enc.ids) > max_length:
            if not truncation:
                raise ValueError(f"the encoding has {len(enc.ids)} tokens, more than "
                                 f"max_length={max_length}; pass truncation=True to cut it")
            fields = _truncated(fields, is_pair, max_length, truncation)
        return Encoding.from_fields(*fields)

    def encode_batch(self, texts, pairs=None, padding: bool | str = True,
                     max_length: int | None = None, truncation: bool | str = False,
                     add_special_tokens: bool = True, return_numpy: bool = True) -> dict:
        """``input_ids``, ``token_type_ids`` and ``attention_mask`` of a batch, padded on the
        right with the pad id (as WordPieceTokenizer.encode_batch: ``padding`` True /
        "longest" / "max_length" / False; NumPy int64 (batch, length) arrays, or lists with
        ``return_numpy=False``)."""
        padding = check_batch_arguments(texts, pairs, padding, max_length)
        for i, t in enumerate(texts):
            _check_text(f"texts[{i}]", t)
            if pairs is not None:
                _check_text(f"pairs[{i}]", pairs[i])
        limit, truncation = self._limits(max_length, truncation)
        # the package encodes a batch in parallel (Rust threads; results do not depend on
        # their number)
        inputs = list(texts) if pairs is None else list(zip(texts, pairs))
        encs = [self._finish(e, pairs is not None, limit, truncation)
                for e in self._tok.encode_batch(inputs, add_special_tokens=add_special_tokens)]
        return pad_batch(encs, padding, max_length, self.pad_token_id,
                         "padding needs a pad token (none in the vocabulary)", return_numpy)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """The text of a sequence of ids (the tokenizer.json's decoder: byte-level BPE
        restores the bytes and spaces, Metaspace turns "▁" back into spaces)."""
        return self._tok.decode(self._check_ids(ids), skip_special_tokens=skip_special_tokens)

    def __call__(self, text, pair=None, **kwargs):
        return self.encode(text, pair, **kwargs)

    def __repr__(self) -> str:
        return (f"TokenizerJson(vocab_size={self.vocab_size}, model="
                f"{type(self._tok.model).__name__}, model_max_length={self.model_max_length})")


def _truncated(fields, is_pair: bool, limit: int, strategy: str):
    """The per-token lists (ids, tokens, offsets, type_ids, special_tokens_mask,
    sequence_ids) of an encoding with each text's tokens cut (truncation_lengths), the
    special tokens (sequence id None) kept in place."""
    from .wordpiece import truncation_lengths
    sequence_ids = fields[5]
    counts = [sequence_ids.count(0), sequence_ids.count(1)]
    n_added = len(sequence_ids) - counts[0] - counts[1]
    if limit < n_added:
        raise ValueError(f"max_length={limit} is too small for the {n_added} special tokens "
                         "added")
    keep_a, keep_b = truncation_lengths(counts[0], counts[1] if is_pair else None,
                                        limit - n_added, strategy)
    keep = [keep_a, keep_b or 0]
    seen = [0, 0]
    rows = []
    for i, s in enumerate(sequence_ids):
        if s is None:
            rows.append(i)
        else:
            seen[s] += 1
            if seen[s] <= keep[s]:
                rows.append(i)
    return tuple([values[i] for i in rows] for values in fields)


def _check_text(name: str, value, expected: str = "a str") -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
