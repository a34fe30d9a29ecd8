"""Training a WordPiece vocabulary from a corpus.

Algorithm (the WordPiece likelihood criterion, Schuster & Nakajima 2012; as described in the
Hugging Face course's WordPiece chapter):

1. Pre-tokenise every text with BERT's basic tokenizer (the one the tokenizer will use:
   cleanup, CJK isolation, lower-casing + accent stripping, punctuation split) and count the
   words.
2. The alphabet is every character of those words (or the ``limit_alphabet`` most frequent
   ones, ties broken by code point; words containing a character outside it are left out of
   training — the tokenizer would make them [UNK] anyway). The vocabulary starts as the special
   tokens, then each alphabet character ``c`` and its continuation form ``##c``, both sorted by
   code point, so any word made of alphabet characters can always be segmented.
3. Each word is a sequence of symbols: its first character plain, the others ``##c``.
4. Repeat until the vocabulary has ``vocab_size`` tokens or no pair is left: over all adjacent
   symbol pairs (a, b) whose pair count is >= ``min_frequency``, pick the one maximising the
   score

       score(a, b) = count(ab) / (count(a) * count(b))

   where counts are weighted by word frequency (count(ab): how often b directly follows a;
   count(a): how often symbol a occurs). Merge it everywhere (non-overlapping, left to right
   within a word) into the symbol ``a + b`` without b's ``##`` (``"##u" + "##g" -> "##ug"``)
   and add that token to the vocabulary (if it is not already there).
   Ties are broken deterministically: higher pair count first, then the lexicographically
   smaller (a, b) strings. The score is a Python float (an IEEE double, correctly rounded, so
   the same on every platform).

Unlike BPE's plain frequency, the score prefers pairs whose parts rarely occur apart — merging
them loses little information (it is the gain in corpus likelihood of a unigram model, up to
a monotone transform).

Efficiency: pair counts, the words containing each pair and the pairs containing each symbol
are kept up to date incrementally; a merge only rewrites the words that contain the pair, and
re-scores only the pairs whose counts (or whose symbols' counts) changed. The best pair comes
from a heap with lazy deletion (an entry whose score is stale is skipped; the current score
was pushed when it changed).
"""
from __future__ import annotations

import heapq
import os
from collections import Counter
from typing import Iterable, NamedTuple

from .._validate import integer, str_items
from .normalize import CHUNK_RE, BasicTokenizer

DEFAULT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class Merge(NamedTuple):
    """One training step: ``left`` and ``right`` were merged into ``token``."""
    left: str
    right: str
    token: str
    pair_count: int
    score: float


def count_words(texts: Iterable[str], basic: BasicTokenizer) -> Counter:
    """Word frequencies of a corpus after BERT's basic tokenization."""
    chunks: Counter = Counter()
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts must contain str, item {i} is {type(text).__name__}")
        chunks.update(CHUNK_RE.findall(text))
    words: Counter = Counter()
    for chunk, n in chunks.items():
        for word, _ in basic.split_chunk(chunk):
            words[word] += n
    return words


def train_wordpiece(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2,
                    lowercase: bool = True, strip_accents: bool | None = None,
                    tokenize_chinese_chars: bool = True,
                    special_tokens: Iterable[str] = DEFAULT_SPECIAL_TOKENS,
                    limit_alphabet: int | None = None, continuing_subword_prefix: str = "##",
                    return_merges: bool = False):
    """Learns a WordPiece vocabulary of (at most) ``vocab_size`` tokens from ``texts``.

    Returns the token list (id = position: special tokens first, then the alphabet, then the
    merged tokens in the order they were learned); with ``return_merges=True`` a pair
    ``(tokens, merges)`` where ``merges`` lists every :class:`Merge` with its score. The
    algorithm is in this module's docstring. The alphabet is always kept whole, so the result
    is longer than ``vocab_size`` when the special tokens plus the alphabet alone are (use
    ``limit_alphabet``). Write it with :func:`write_vocab`; load it with
    ``WordPieceTokenizer.from_vocab(path, lowercase=...)`` using the same normalisation flags.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be an iterable of str, not a single str")
    op = "train_wordpiece"
    vocab_size = integer(op, "vocab_size", vocab_size, 0)
    min_frequency = integer(op, "min_frequency", min_frequency, 1)
    limit_alphabet = integer(op, "limit_alphabet", limit_alphabet, 0, optional=True)
    if not isinstance(continuing_subword_prefix, str) or not continuing_subword_prefix:
        raise TypeError("continuing_subword_prefix must be a non-empty str")
    if isinstance(special_tokens, str):
        raise TypeError("special_tokens must be an iterable of str, not a single str")
    special_tokens = list(dict.fromkeys(str_items(op, "special_tokens", special_tokens)))
    prefix = continuing_subword_prefix
    basic = BasicTokenizer(lowercase, strip_accents, tokenize_chinese_chars)
    word_counts = count_words(texts, basic)

    char_counts: Counter = Counter()
    for word, n in word_counts.items():
        for ch in word:
            char_counts[ch] += n
    alphabet = sorted(char_counts, key=lambda c: (-char_counts[c], c))
    if limit_alphabet is not None:
        alphabet = alphabet[:limit_alphabet]
    alphabet.sort()
    allowed = set(alphabet)

    vocab = list(special_tokens)
    in_vocab = set(vocab)
    for t in alphabet + [prefix + c for c in alphabet]:
        if t not in in_vocab:
            vocab.append(t)
            in_vocab.add(t)

    # Symbols are small ints; sym_str[s] is the token string.
    sym_str: list[str] = []
    sym_id: dict[str, int] = {}

    def symbol(s: str) -> int:
        i = sym_id.get(s)
        if i is None:
            i = sym_id[s] = len(sym_str)
            sym_str.append(s)
        return i

    words: list[list[int]] = []
    freqs: list[int] = []
    # Sorted so that symbol ids, and everything after, do not depend on hash order.
    for word in sorted(word_counts):
        if len(word) < 2 or not set(word) <= allowed:
            continue
        words.append([symbol(word[0])] + [symbol(prefix + c) for c in word[1:]])
        freqs.append(word_counts[word])

    sym_count: list[int] = [0] * len(sym_str)
    pair_count: dict[tuple[int, int], int] = {}
    pair_words: dict[tuple[int, int], set[int]] = {}
    sym_pairs: dict[int, set[tuple[int, int]]] = {}
    for w, (syms, f) in enumerate(zip(words, freqs)):
        for s in syms:
            sym_count[s] += f
        for p in zip(syms, syms[1:]):
            pair_count[p] = pair_count.get(p, 0) + f
            pair_words.setdefault(p, set()).add(w)
    for p in pair_count:
        sym_pairs.setdefault(p[0], set()).add(p)
        sym_pairs.setdefault(p[1], set()).add(p)

    def entry(p):
        c = pair_count[p]
        score = c / (sym_count[p[0]] * sym_count[p[1]])
        return (-score, -c, sym_str[p[0]], sym_str[p[1]], p)

    heap = [entry(p) for p, c in pair_count.items() if c >= min_frequency]
    heapq.heapify(heap)
    merges: list[Merge] = []

    while len(vocab) < vocab_size and heap:
        neg_score, neg_count, left, right, p = heapq.heappop(heap)
        c = pair_count.get(p, 0)
        if c < min_frequency or c != -neg_count:
            continue
        score = c / (sym_count[p[0]] * sym_count[p[1]])
        if score != -neg_score:
            continue  # stale: the current score was pushed when it changed
        a, b = p
        token = left + right[len(prefix):]
        new = symbol(token)
        if new == len(sym_count):
            sym_count.append(0)
        if token not in in_vocab:
            vocab.append(token)
            in_vocab.add(token)
        merges.append(Merge(left, right, token, c, score))

        changed: set[tuple[int, int]] = set()
        # Visiting order does not matter: counts are sums, and the heap's order is total.
        for w in list(pair_words[p]):
            syms, f = words[w], freqs[w]
            merged = []
            i, n = 0, len(syms)
            while i < n:
                if i + 1 < n and syms[i] == a and syms[i + 1] == b:
                    merged.append(new)
                    i += 2
                else:
                    merged.append(syms[i])
                    i += 1
            old_pairs = list(zip(syms, syms[1:]))
            new_pairs = list(zip(merged, merged[1:]))
            for q in old_pairs:
                pair_count[q] -= f
                changed.add(q)
            for q in new_pairs:
                pair_count[q] = pair_count.get(q, 0) + f
                changed.add(q)
            for q in set(old_pairs) - set(new_pairs):
                pair_words[q].discard(w)
            for q in set(new_pairs) - set(old_pairs):
                pair_words.setdefault(q, set()).add(w)
            k = (n - len(merged))  # merges made in this word
            sym_count[a] -= k * f
            sym_count[b] -= k * f
            sym_count[new] += k * f
            words[w] = merged
        # Keep the symbol -> pairs index to pairs that still occur.
        for q in changed:
            alive = pair_count[q] > 0
            for s in q:
                bucket = sym_pairs.setdefault(s, set())
                if alive:
                    bucket.add(q)
                else:
                    bucket.discard(q)
            if not alive:
                del pair_count[q]
                pair_words.pop(q, None)
        # The counts of a, b and new changed: every pair containing them has a new score.
        rescore = changed | sym_pairs.get(a, set()) | sym_pairs.get(b, set())
        for q in rescore:
            if pair_count.get(q, 0) >= min_frequency:
                heapq.heappush(heap, entry(q))

    return (vocab, merges) if return_merges else vocab


def write_vocab(tokens: Iterable[str], path: str | os.PathLike) -> None:
    """Writes a vocab.txt: one token per line, UTF-8, id = line number."""
    tokens = str_items("write_vocab", "tokens", tokens)
    for t in tokens:
        if "\n" in t or "\r" in t:
            raise ValueError(f"token {t!r} contains a line break and cannot be written")
    with open(os.fspath(path), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in tokens))
