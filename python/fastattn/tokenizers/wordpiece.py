"""WordPiece tokenization as BERT does it: the basic tokenizer (normalize.py) cuts normalised
words, then each word is split greedily, longest match first, into vocabulary pieces, every
piece after the first carrying the ``##`` continuation prefix:

    "unaffable" -> "un", "##aff", "##able"   (when those are in the vocabulary)

A word with no complete segmentation, or longer than ``max_input_chars_per_word`` characters
(after normalisation), becomes one ``[UNK]``. Occurrences of the special tokens (``[MASK]``,
``[SEP]``, ...) in the text are matched verbatim, before any normalisation, and kept whole —
this is how ``"Paris is the [MASK] of France."`` reaches a masked-LM.

Speed: results are cached per whitespace-separated chunk of the original text (a word plus its
attached punctuation, e.g. ``"world,"``), so the common case of a repeated word costs one regex
step and one dict lookup. See docs/tokenizer.md for the measured throughput.
"""
from __future__ import annotations

import json
import os
import re
from functools import partial
from itertools import accumulate, chain, compress, islice, repeat
from operator import add, is_, itemgetter
from typing import Iterable, Sequence

from .._validate import integer, is_integer, str_items
from .encoding import Encoding, check_batch_arguments, pad_batch
from .normalize import SPLIT_RE, BasicTokenizer

# Chunks up to this many characters are cached; the cache is emptied when it reaches
# _CACHE_ENTRIES so memory stays bounded on endless streams of novel text.
_CACHE_MAX_CHUNK = 64
_CACHE_ENTRIES = 1 << 18

_first, _second, _third, _fourth = (itemgetter(i) for i in range(4))
_is_none = partial(is_, None)

_TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")


def read_vocab(path: str | os.PathLike) -> list[str]:
    """Tokens of a vocab.txt, one per line, the line number being the id."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"vocabulary file not found: {path!r}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()  # the newline that ends the last line
    return [t.rstrip("\r") for t in tokens]


class WordPieceTokenizer:
    """BERT's WordPiece tokenizer over a vocabulary (a list of token strings, id = position).

    Build one with :meth:`from_vocab` (a vocab.txt), :meth:`from_pretrained` (a checkpoint
    directory) or directly from a token list. Options follow transformers' ``BertTokenizer``:
    ``lowercase`` (``do_lower_case``), ``strip_accents`` (None: same as ``lowercase``),
    ``tokenize_chinese_chars``, the five special tokens, ``max_input_chars_per_word``, and
    ``model_max_length`` (the default ``max_length`` when truncating).
    """

    def __init__(self, vocab: Sequence[str], *, lowercase: bool = True,
                 strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                 unk_token: str = "[UNK]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                 cls_token: str = "[CLS]", mask_token: str = "[MASK]",
                 max_input_chars_per_word: int = 100, continuing_subword_prefix: str = "##",
                 model_max_length: int | None = None):
        if isinstance(vocab, (str, bytes)) or not isinstance(vocab, Sequence):
            raise TypeError(f"vocab must be a list of str, got {type(vocab).__name__}")
        tokens = str_items("WordPieceTokenizer", "vocab tokens", vocab)
        specials = {"unk_token": unk_token, "sep_token": sep_token, "pad_token": pad_token,
                    "cls_token": cls_token, "mask_token": mask_token,
                    "continuing_subword_prefix": continuing_subword_prefix}
        for name, value in specials.items():
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        op = "WordPieceTokenizer"
        max_input_chars_per_word = integer(op, "max_input_chars_per_word",
                                           max_input_chars_per_word)
        model_max_length = integer(op, "model_max_length", model_max_length, optional=True)
        self._basic = BasicTokenizer(lowercase, strip_accents, tokenize_chinese_chars)
        self._id_to_token = tokens
        # A token listed twice maps to its last line, as transformers and tokenizers do.
        self._vocab = {t: i for i, t in enumerate(tokens)}
        if unk_token not in self._vocab:
            raise ValueError(f"the vocabulary has no unknown token {unk_token!r}")
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.continuing_subword_prefix = continuing_subword_prefix
        self.model_max_length = model_max_length
        # No piece is longer than the longest token: bounds the longest-match search.
        self._max_piece_chars = max((len(t) for t in tokens), default=0)
        present = [t for t in (unk_token, sep_token, pad_token, cls_token, mask_token)
                   if t and t in self._vocab]
        self._special_ids = frozenset(self._vocab[t] for t in present)
        # Longest first, so that a special token that is a prefix of another never wins.
        self._special_firsts = frozenset(t[0] for t in present)
        self._special_re = (re.compile("|".join(re.escape(t) for t in
                                                sorted(set(present), key=len, reverse=True)))
                            if present else None)
        # Caches: whitespace-separated chunk of original text -> (ids, tokens, starts, ends)
        # relative to the chunk; normalised word -> the same relative to the word.
        self._cache: dict[str, tuple] = {}
        self._word_cache: dict[str, tuple] = {}

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def from_vocab(cls, path: str | os.PathLike, lowercase: bool = True,
                   strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                   unk_token: str = "[UNK]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                   cls_token: str = "[CLS]", mask_token: str = "[MASK]",
                   max_input_chars_per_word: int = 100, **kwargs) -> "WordPieceTokenizer":
        """Loads a vocab.txt (one token per line, UTF-8; the line number is the id).

        Raises FileNotFoundError (naming the path) when the file does not exist and
        ValueError when the vocabulary lacks ``unk_token``."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        return cls(read_vocab(path), lowercase=lowercase, strip_accents=strip_accents,
                   tokenize_chinese_chars=tokenize_chinese_chars, unk_token=unk_token,
                   sep_token=sep_token, pad_token=pad_token, cls_token=cls_token,
                   mask_token=mask_token, max_input_chars_per_word=max_input_chars_per_word,
                   **kwargs)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides) -> "WordPieceTokenizer":
        """Loads a Hugging Face checkpoint directory: ``vocab.txt`` plus, when present,
        ``tokenizer_config.json`` (``do_lower_case``, ``strip_accents``,
        ``tokenize_chinese_chars``, the special tokens, ``model_max_length``) and
        ``special_tokens_map.json``. Keyword arguments override the files."""
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a str or os.PathLike, got "
                            f"{type(directory).__name__}")
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"checkpoint directory not found: {directory!r}")
        options: dict = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            options.update(_options_from_config(
                _read_json_if_present(os.path.join(directory, name))))
        options.update(overrides)
        return cls.from_vocab(os.path.join(directory, "vocab.txt"), **options)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Writes ``vocab.txt`` and ``tokenizer_config.json`` that :meth:`from_pretrained`
        (and transformers' ``BertTokenizer``) read back."""
        from .train import write_vocab
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        write_vocab(self._id_to_token, os.path.join(directory, "vocab.txt"))
        b = self._basic
        config = {"tokenizer_class": "BertTokenizer", "do_lower_case": b.lowercase,
                  "strip_accents": None if b.strip_accents == b.lowercase else b.strip_accents,
                  "tokenize_chinese_chars": b.tokenize_chinese_chars,
                  "unk_token": self.unk_token, "sep_token": self.sep_token,
                  "pad_token": self.pad_token, "cls_token": self.cls_token,
                  "mask_token": self.mask_token}
        if self.model_max_length is not None:
            config["model_max_length"] = self.model_max_length
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
            f.write("\n")

    # -------------------------------------------------------------------------- vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self._id_to_token)

    def __len__(self) -> int:
        return len(self._id_to_token)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    @property
    def lowercase(self) -> bool:
        return self._basic.lowercase

    @property
    def strip_accents(self) -> bool:
        return self._basic.strip_accents

    @property
    def tokenize_chinese_chars(self) -> bool:
        return self._basic.tokenize_chinese_chars

    @property
    def unk_token_id(self) -> int:
        return self._vocab[self.unk_token]

    @property
    def sep_token_id(self) -> int | None:
        return self._vocab.get(self.sep_token)

    @property
    def pad_token_id(self) -> int | None:
        return self._vocab.get(self.pad_token)

    @property
    def cls_token_id(self) -> int | None:
        return self._vocab.get(self.cls_token)

    @property
    def mask_token_id(self) -> int | None:
        return self._vocab.get(self.mask_token)

    @property
    def all_special_ids(self) -> list[int]:
        return sorted(self._special_ids)

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Id of a token (``[UNK]``'s id when unknown), or a list of ids for a list."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            return self._vocab.get(tokens, unk)
        return [self._vocab.get(t, unk)
                for t in str_items("convert_tokens_to_ids", "tokens", tokens)]

    def _check_id(self, i) -> int:
        if not is_integer(i):
            raise TypeError(f"token ids must be ints, found {type(i).__name__}")
        i = int(i)
        if not 0 <= i < len(self._id_to_token):
            raise ValueError(f"token id {i} is out of range for a vocabulary of "
                             f"{len(self._id_to_token)} tokens")
        return i

    def _check_ids(self, ids) -> list[int]:
        if hasattr(ids, "ndim") and hasattr(ids, "tolist"):  # NumPy array (or alike)
            if ids.ndim != 1:
                raise ValueError(f"ids must be one-dimensional, got {ids.ndim} dimensions")
            if ids.dtype.kind not in "iu":
                raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
            ids = ids.tolist()
        elif isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"ids must be a sequence of ints, got {type(ids).__name__}")
        return [self._check_id(i) for i in ids]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Token string of an id, or a list of them for a sequence of ids."""
        if is_integer(ids):
            return self._id_to_token[self._check_id(ids)]
        toks = self._id_to_token
        return [toks[i] for i in self._check_ids(ids)
                if not (skip_special_tokens and i in self._special_ids)]

    # ---------------------------------------------------------------------------- encoding
    def _wordpiece(self, word: str):
        """Greedy longest-match-first pieces of one normalised word, as (token, start, end)
        character spans of the word; None when the word must become [UNK]."""
        n = len(word)
        if n > self.max_input_chars_per_word:
            return None
        vocab = self._vocab
        prefix = self.continuing_subword_prefix
        longest = self._max_piece_chars
        pieces = []
        start = 0
        while start < n:
            end = min(n, start + longest)
            while end > start:
                piece = word[start:end] if start == 0 else prefix + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            else:
                return None
            pieces.append((piece, start, end))
            start = end
        return pieces

    def _word_entry(self, word: str):
        """(ids, tokens, starts, ends) of one normalised word, offsets relative to the word;
        cached (short words only, bounded)."""
        entry = self._word_cache.get(word)
        if entry is not None:
            return entry
        pieces = self._wordpiece(word)
        if pieces is None:
            entry = ((self._vocab[self.unk_token],), (self.unk_token,), (0,), (len(word),))
        else:
            toks, starts, ends = zip(*pieces)
            entry = (tuple(map(self._vocab.__getitem__, toks)), toks, starts, ends)
        if len(word) <= _CACHE_MAX_CHUNK:
            if len(self._word_cache) >= _CACHE_ENTRIES:
                self._word_cache.clear()
            self._word_cache[word] = entry
        return entry

    def _chunk_entries(self, chunk: str):
        """(ids, tokens, starts, ends) of one whitespace-free chunk, offsets relative to it."""
        words = self._basic.split_ascii_chunk(chunk)
        if words is not None and len(words) == 1:
            return self._word_entry(words[0])  # the common case: a plain word
        ids, toks, starts, ends = [], [], [], []
        if words is not None:
            # ASCII: words tile the chunk, so a word's offsets shift by its start.
            pos = 0
            for word in words:
                e = self._word_entry(word)
                ids += e[0]
                toks += e[1]
                starts += [pos + a for a in e[2]]
                ends += [pos + b for b in e[3]]
                pos += len(word)
        else:
            for word, pos in self._basic.split_chunk(chunk):
                e = self._word_entry(word)
                ids += e[0]
                toks += e[1]
                starts += [pos[a] for a in e[2]]
                ends += [pos[b - 1] + 1 for b in e[3]]
        return tuple(ids), tuple(toks), tuple(starts), tuple(ends)

    def _encode_span(self, text: str, ids, toks, pending, offset: int = 0) -> None:
        """Appends the ids and tokens of ``text`` (no special tokens inside), and to
        ``pending`` what :func:`_offsets` needs to compute their offsets (+ ``offset``) later.

        The per-chunk work is done by C-level iterators so that a text of cached chunks costs
        no Python bytecode per chunk or per token: the text is split into chunks and
        separators, one dict lookup per chunk via map(), the pieces chained. Offsets are only
        computed when ``Encoding.offsets`` is read (a model needs ids only)."""
        parts = SPLIT_RE.split(text)
        chunks = parts[::2]
        cache = self._cache
        entries = list(map(cache.get, chunks))
        if None in entries:
            # Computed into a local dict and merged without a second cache lookup, so a
            # concurrent thread clearing the cache cannot make an entry vanish mid-way.
            missing = set(compress(chunks, map(_is_none, entries)))
            new = {chunk: self._chunk_entries(chunk) for chunk in missing}
            entries = list(map(new.get, chunks, entries))
            if len(cache) + len(new) > _CACHE_ENTRIES:
                cache.clear()
            for chunk, entry in new.items():
                if len(chunk) <= _CACHE_MAX_CHUNK:  # keep the cache to short, reusable chunks
                    cache[chunk] = entry
        ids.extend(chain.from_iterable(map(_first, entries)))
        toks.extend(chain.from_iterable(map(_second, entries)))
        pending.append((entries, parts, offset))

    def _encode_text(self, text: str):
        """(ids, tokens, offsets thunk) of one text, special tokens in it kept whole."""
        ids: list[int] = []
        toks: list[str] = []
        pending: list = []
        pos = 0
        if self._special_re is not None and any(c in text for c in self._special_firsts):
            for m in self._special_re.finditer(text):
                self._encode_span(text[pos:m.start()], ids, toks, pending, pos)
                tok = m.group()
                ids.append(self._vocab[tok])
                toks.append(tok)
                pending.append((None, m.span(), None))
                pos = m.end()
        self._encode_span(text[pos:] if pos else text, ids, toks, pending, pos)
        return ids, toks, partial(_offsets, pending)

    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text`` (no [CLS]/[SEP])."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._encode_text(text)[1]

    def encode(self, text: str, pair: str | None = None, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: bool | str = False) -> Encoding:
        """Encodes a text, or a text pair, into an :class:`Encoding`.

        With ``add_special_tokens``: ``[CLS] text [SEP]`` or ``[CLS] text [SEP] pair [SEP]``
        (type id 1 for the pair and its ``[SEP]``). ``truncation`` (True = ``"longest_first"``,
        or ``"only_first"`` / ``"only_second"``) cuts the tokens so the result, special tokens
        included, has at most ``max_length`` tokens (default ``model_max_length``).
        ``"longest_first"`` follows the ``tokenizers`` package: if both texts must be cut,
        each gets half the budget, the extra odd token going to the longer one; otherwise
        only the longer one is cut. Without truncation, a result longer than ``max_length``
        raises ValueError rather than being silently kept or cut.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if pair is not None and not isinstance(pair, str):
            raise TypeError(f"pair must be None or a str, got {type(pair).__name__}")
        max_length = integer("WordPieceTokenizer.encode", "max_length", max_length, 0,
                             optional=True)
        if truncation is True:
            truncation = "longest_first"
        if truncation is not False and truncation not in _TRUNCATION_STRATEGIES:
            raise ValueError(f"truncation must be a bool or one of {_TRUNCATION_STRATEGIES}, "
                             f"got {truncation!r}")
        if add_special_tokens and (self.cls_token_id is None or self.sep_token_id is None):
            raise ValueError(f"add_special_tokens needs {self.cls_token!r} and "
                             f"{self.sep_token!r} in the vocabulary")
        a = self._encode_text(text)
        b = self._encode_text(pair) if pair is not None else None
        n_added = (2 if b is None else 3) if add_special_tokens else 0
        total = len(a[0]) + (len(b[0]) if b is not None else 0) + n_added
        if truncation:
            limit = max_length if max_length is not None else self.model_max_length
            if limit is None:
                raise ValueError("truncation needs max_length (the tokenizer has no "
                                 "model_max_length)")
            if limit < n_added:
                raise ValueError(f"max_length={limit} is too small for the {n_added} special "
                                 "tokens added")
            if total > limit:
                a, b = _truncate(a, b, limit - n_added, truncation)
        elif max_length is not None and total > max_length:
            raise ValueError(f"the encoding has {total} tokens, more than max_length="
                             f"{max_length}; pass truncation=True to cut it")
        return self._assemble(a, b, add_special_tokens)

    def _assemble(self, a, b, add_special_tokens: bool) -> Encoding:
        ids, toks = a[0], a[1]
        if add_special_tokens:
            ids = [self.cls_token_id, *ids, self.sep_token_id]
            toks = [self.cls_token, *toks, self.sep_token]
        if b is not None:
            ids += b[0]
            toks += b[1]
            if add_special_tokens:
                ids.append(self.sep_token_id)
                toks.append(self.sep_token)
        offsets = partial(_join_offsets, a[2], None if b is None else b[2], add_special_tokens)
        return Encoding(ids, toks, offsets, len(a[0]), None if b is None else len(b[0]),
                        add_special_tokens)

    def encode_batch(self, texts: Sequence[str], pairs: Sequence[str] | None = None,
                     padding: bool | str = True, max_length: int | None = None,
                     truncation: bool | str = False, add_special_tokens: bool = True,
                     return_numpy: bool = True) -> dict:
        """Encodes a batch into ``input_ids``, ``token_type_ids`` and ``attention_mask``.

        ``padding``: True / ``"longest"`` pads on the right with the pad id (type id 0,
        attention mask 0) to the longest sequence of the batch; ``"max_length"`` pads to
        ``max_length``; False pads nothing (then ``return_numpy=False`` is required unless all
        lengths agree). Returns NumPy int64 arrays of shape (batch, length) by default, lists
        of lists with ``return_numpy=False``.
        """
        padding = check_batch_arguments(texts, pairs, padding, max_length)
        encs = [self.encode(t, None if pairs is None else pairs[i],
                            add_special_tokens=add_special_tokens,
                            max_length=max_length if truncation else None,
                            truncation=truncation) for i, t in enumerate(texts)]
        if max_length is not None and not truncation:
            for i, e in enumerate(encs):
                if len(e) > max_length:
                    raise ValueError(f"texts[{i}] has {len(e)} tokens, more than max_length="
                                     f"{max_length}; pass truncation=True to cut it")
        return pad_batch(encs, padding, max_length, self.pad_token_id,
                         f"padding needs {self.pad_token!r} in the vocabulary", return_numpy)

    # ---------------------------------------------------------------------------- decoding
    def decode(self, ids, skip_special_tokens: bool = True,
               clean_up_tokenization_spaces: bool = True) -> str:
        """Text of a sequence of ids: tokens joined by spaces, ``##`` pieces glued to the
        piece before. With ``clean_up_tokenization_spaces`` (the default, as BERT's tokenizer
        config and the ``tokenizers`` WordPiece decoder) the space before ``. ? ! ,`` and
        before the English contractions ``n't 'm 's 've 're`` is removed, and ``" ' "``
        becomes ``"'"`` — so ``decode(encode("Hello, world!").ids)`` is ``"hello, world!"``.
        Raises ValueError for an id outside the vocabulary."""
        toks = self.convert_ids_to_tokens(self._check_ids(ids),
                                          skip_special_tokens=skip_special_tokens)
        text = " ".join(toks).replace(" " + self.continuing_subword_prefix, "").strip()
        if clean_up_tokenization_spaces:
            for dirty, clean in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","),
                                 (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"),
                                 (" 've", "'ve"), (" 're", "'re")):
                text = text.replace(dirty, clean)
        return text

    def __repr__(self) -> str:
        return (f"WordPieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase}, "
                f"strip_accents={self.strip_accents}, "
                f"tokenize_chinese_chars={self.tokenize_chinese_chars})")

    def __call__(self, text, pair=None, **kwargs) -> Encoding:
        return self.encode(text, pair, **kwargs)


def _truncate(a, b, budget: int, strategy: str):
    """Cuts (ids, tokens, offsets) triples a (and b) to a total of ``budget`` tokens."""
    def cut(x, n):
        return x if len(x[0]) <= n else (x[0][:n], x[1][:n], partial(_cut_offsets, x[2], n))

    na, nb = truncation_lengths(len(a[0]), None if b is None else len(b[0]), budget, strategy)
    return cut(a, na), (None if b is None else cut(b, nb))


def truncation_lengths(na: int, nb: int | None, budget: int, strategy: str):
    """The lengths two token sequences of na and nb tokens (nb None: no pair) are cut to so
    that together they have at most ``budget``, by ``strategy`` ("longest_first",
    "only_first", "only_second") as the ``tokenizers`` package; ValueError when the strategy
    cannot reach the budget. Shared by WordPiece and the tokenizer.json adapter."""
    if nb is None:
        if strategy == "only_second":
            raise ValueError("truncation='only_second' needs a pair")
        return min(na, budget), None
    if strategy == "only_first":
        if nb > budget:
            raise ValueError(f"truncation='only_first': the pair alone has {nb} tokens, more "
                             f"than the {budget} left after special tokens")
        return min(na, budget - nb), nb
    if strategy == "only_second":
        if na > budget:
            raise ValueError(f"truncation='only_second': the first text alone has {na} tokens,"
                             f" more than the {budget} left after special tokens")
        return na, min(nb, budget - na)
    # longest_first: cut only the longer text if that suffices, else both to half the budget
    # (the odd token going to the longer text, to the pair on a tie).
    short = min(na, nb)
    new_long = short if short > budget else max(short, budget - short)
    new_short = short
    if new_short + new_long > budget:
        new_short = budget // 2
        new_long = new_short + budget % 2
    if na > nb:
        return min(na, new_long), min(nb, new_short)
    return min(na, new_short), min(nb, new_long)


def _offsets(pending) -> list[tuple[int, int]]:
    """Absolute offsets from what _encode_span / _encode_text deferred: for each span, chunk
    start (a running sum of the chunk and separator lengths) repeated once per token of the
    chunk, plus the token's offsets within its chunk — all with C-level iterators."""
    offs: list[tuple[int, int]] = []
    for entries, parts, offset in pending:
        if entries is None:  # a special token matched in the text: its span
            offs.append(parts)
            continue
        chunk_starts = islice(accumulate(map(len, parts), initial=offset), 0, None, 2)
        bases = list(chain.from_iterable(map(repeat, chunk_starts,
                                             map(len, map(_first, entries)))))
        offs.extend(zip(map(add, bases, chain.from_iterable(map(_third, entries))),
                        map(add, bases, chain.from_iterable(map(_fourth, entries)))))
    return offs


def _cut_offsets(offsets, n: int):
    return offsets()[:n]


def _join_offsets(a, b, add_special_tokens: bool):
    """Offsets of [CLS] a [SEP] b [SEP] (added tokens at (0, 0)) from the parts' thunks."""
    offs = a()
    if add_special_tokens:
        offs = [(0, 0), *offs, (0, 0)]
    if b is not None:
        offs += b()
        if add_special_tokens:
            offs.append((0, 0))
    return offs


def _read_json_if_present(p: str) -> dict:
    """The JSON object in file p, {} when there is no such file (ValueError naming the file
    for invalid JSON or another JSON value)."""
    if not os.path.isfile(p):
        return {}
    with open(p, encoding="utf-8") as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: invalid JSON ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{p}: expected a JSON object")
    return config


def _options_from_config(config: dict) -> dict:
    """Tokenizer options from a tokenizer_config.json / special_tokens_map.json."""
    options = {}
    for key, name in (("do_lower_case", "lowercase"), ("strip_accents", "strip_accents"),
                      ("tokenize_chinese_chars", "tokenize_chinese_chars")):
        if key in config:
            options[name] = config[key]
    for name in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        value = config.get(name)
        if isinstance(value, dict):  # a serialised AddedToken
            value = value.get("content")
        if isinstance(value, str):
            options[name] = value
    n = config.get("model_max_length", config.get("max_len"))
    # transformers writes int(1e30) when a checkpoint declares no limit.
    if is_integer(n) and 0 < n < 1 << 40:
        options["model_max_length"] = int(n)
    return options
