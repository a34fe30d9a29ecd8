"""BERT's basic tokenizer: text cleanup, CJK isolation, lower-casing, accent stripping and the
whitespace / punctuation split, with an alignment from every normalised character back to the
original text.

The rules are those of BERT (Devlin et al. 2018; transformers' ``BasicTokenizer`` and the
``tokenizers`` package's ``BertNormalizer`` + ``BertPreTokenizer``), applied character by
character in this order:

1. cleanup: NUL, U+FFFD and control characters (any category ``C*``: Cc, Cf, Cn, Co, Cs) are
   dropped, except tab, newline and carriage return, which are whitespace;
2. whitespace (tab, LF, CR, category Zs, and the line/paragraph separators U+2028/U+2029, which
   ``str.split`` and Rust's ``char::is_whitespace`` both treat as whitespace) separates words;
3. CJK ideographs (the code point blocks in :data:`CJK_RANGES`) become words of their own;
4. when lower-casing: ``str.lower`` per character, then (``strip_accents`` defaults to the
   lower-casing flag) NFD decomposition with every nonspacing mark (category Mn) dropped;
5. punctuation (ASCII 33-47, 58-64, 91-96, 123-126 — so ``$``, ``^``, backquote count — and
   every Unicode category ``P*``) becomes single-character words.

Two deliberate choices where the two Hugging Face implementations differ: lower-casing is per
character (as ``tokenizers``: a final capital sigma becomes ``σ``, not ``ς``), and there is no
NFC pass before splitting (transformers' slow tokenizer composes first; ``tokenizers`` — what
``AutoTokenizer`` loads — does not). Both only matter for cased vocabularies fed decomposed text.

Speed: text is cut into whitespace-separated chunks by one regex; a chunk that is pure ASCII
without control characters needs no ``unicodedata`` call at all (``str.lower`` and a
punctuation regex), other chunks go character by character through a per-character cache.
"""
from __future__ import annotations

import re
import unicodedata

from .._validate import flag

# CJK Unified Ideographs (+ Extension A..E) and the two CJK Compatibility Ideographs blocks:
# the ranges BERT's `_is_chinese_char` tests. Hangul, kana and CJK punctuation are not in them
# (Japanese and Korean are written with spaces or are split by punctuation instead).
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)

# Every character that separates words: tab/LF/CR plus categories Zs, Zl, Zp (Unicode 15;
# tests/test_normalize.py checks this list against unicodedata over all code points).
WHITESPACE = ("\t\n\r \u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B))
              + "\u2028\u2029\u202f\u205f\u3000")

_ASCII_PUNCT_CLASS = r"!-/:-@\[-`{-~"
# A chunk is a maximal run of non-whitespace characters; words never cross chunks.
CHUNK_RE = re.compile("[^" + re.escape(WHITESPACE) + "]+")
# Splits text into chunk, whitespace run, chunk, ..., chunk (the first/last may be empty).
SPLIT_RE = re.compile("([" + re.escape(WHITESPACE) + "]+)")
# ASCII control characters other than tab/LF/CR (which never occur inside a chunk).
_ASCII_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Inside a clean ASCII chunk: a run of non-punctuation, or one punctuation character.
_ASCII_WORD_RE = re.compile("[^" + _ASCII_PUNCT_CLASS + "]+|[" + _ASCII_PUNCT_CLASS + "]")
_SPACE_RUN_RE = re.compile("[^ ]+")


def is_whitespace(ch: str) -> bool:
    """Tab, newline, carriage return, or a space/line/paragraph separator (Zs, Zl, Zp)."""
    return ch in "\t\n\r" or unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def is_control(ch: str) -> bool:
    """A category C* character, except tab/newline/CR which BERT counts as whitespace."""
    return ch not in "\t\n\r" and unicodedata.category(ch)[0] == "C"


def is_punctuation(ch: str) -> bool:
    """BERT's punctuation: all non-alphanumeric printable ASCII, or any Unicode category P*."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch)[0] == "P"


def is_cjk(ch: str) -> bool:
    """A CJK ideograph in one of :data:`CJK_RANGES`."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


class BasicTokenizer:
    """Normalises text and splits it into words the BERT way (see the module docstring).

    ``strip_accents=None`` follows ``lowercase`` (BERT's default); ``True``/``False`` force it.
    :meth:`split_chunk` is the core: for one whitespace-free chunk of the original text it
    returns ``(word, positions)`` pairs where ``positions[j]`` is the index, in the chunk, of
    the original character that produced the word's j-th normalised character.
    """

    def __init__(self, lowercase: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True):
        op = "BasicTokenizer"
        lowercase = flag(op, "lowercase", lowercase)
        tokenize_chinese_chars = flag(op, "tokenize_chinese_chars", tokenize_chinese_chars)
        strip_accents = flag(op, "strip_accents", strip_accents, optional=True)
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        # char -> its normalised form, with " " marking a word boundary (whitespace, and
        # around CJK ideographs and punctuation); "" when the character is dropped.
        self._char_cache: dict[str, str] = {}

    def _normalize_char(self, ch: str) -> str:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            return ""
        if is_whitespace(ch):
            return " "
        s = ch
        if self.lowercase:
            s = s.lower()
        if self.strip_accents:
            s = "".join(c for c in unicodedata.normalize("NFD", s)
                        if unicodedata.category(c) != "Mn")
        if self.tokenize_chinese_chars and is_cjk(ch):
            return " " + s + " "
        # Punctuation is judged after normalisation, as BERT splits the normalised text.
        return "".join(" " + c + " " if is_punctuation(c) else c for c in s)

    def split_ascii_chunk(self, chunk: str) -> list[str] | None:
        """Fast path: the words of a chunk that is pure ASCII without control characters (then
        they cover the chunk exactly, in order: lower() keeps the length); None otherwise."""
        if chunk.isascii() and _ASCII_CONTROL_RE.search(chunk) is None:
            return _ASCII_WORD_RE.findall(chunk.lower() if self.lowercase else chunk)
        return None

    def split_chunk(self, chunk: str) -> list[tuple[str, "range | list[int]"]]:
        """Words of one whitespace-free chunk, each with the chunk position of the original
        character behind each of its characters."""
        words = self.split_ascii_chunk(chunk)
        if words is not None:
            out, pos = [], 0
            for w in words:
                out.append((w, range(pos, pos + len(w))))
                pos += len(w)
            return out
        cache = self._char_cache
        parts = []
        positions: list[int] = []
        for i, ch in enumerate(chunk):
            s = cache.get(ch)
            if s is None:
                s = cache[ch] = self._normalize_char(ch)
            if s:
                parts.append(s)
                positions.extend([i] * len(s))
        norm = "".join(parts)
        return [(m.group(), positions[m.start():m.end()])
                for m in _SPACE_RUN_RE.finditer(norm)]

    def tokenize(self, text: str) -> list[str]:
        """The words of ``text`` after normalisation (no offsets)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        words = []
        for chunk in CHUNK_RE.findall(text):
            words.extend(w for w, _ in self.split_chunk(chunk))
        return words
