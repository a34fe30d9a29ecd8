"""The result of encoding one text (or text pair): token ids plus everything a model or a user
needs to line them up with the input. Attribute names follow the ``tokenizers`` package."""
from __future__ import annotations

from collections.abc import Sequence
from itertools import chain


class Encoding:
    """One encoded sequence (made by ``WordPieceTokenizer.encode``, or by the tokenizer.json
    adapter, ``TokenizerJson.encode``, through ``from_fields``).

    Attributes (all lists of the same length, one entry per token):

    - ``ids``: vocabulary ids;
    - ``tokens``: the token strings (``"##"`` marks a word continuation);
    - ``type_ids``: segment ids, 0 for the first text (and its ``[CLS]``/``[SEP]``), 1 for the
      pair text and its final ``[SEP]`` (tokenizer.json: what its post-processor gives;
      RoBERTa's and XLM-R's are all 0);
    - ``attention_mask``: 1 for every token (padding only happens in ``encode_batch``);
    - ``offsets``: ``(start, end)`` character spans into the ORIGINAL text the token came from
      (the pair's offsets index the pair text); ``text[start:end]`` is the token's surface form
      before lower-casing and accent stripping. Added ``[CLS]``/``[SEP]`` get ``(0, 0)``
      (tokenizer.json: the ``tokenizers`` package's offsets, in characters);
    - ``special_tokens_mask``: 1 for the added ``[CLS]``/``[SEP]``, else 0;
    - ``sequence_ids``: 0 or 1 for tokens of the first or second text, None for added tokens.

    Everything but ``ids`` and ``tokens`` is computed on first access: a model needs the ids
    only, and fewer live lists per encoding also keep Python's garbage collector cheap when
    many encodings are kept.
    """

    __slots__ = ("ids", "tokens", "_offsets", "_layout", "_type_ids", "_attention_mask",
                 "_special_tokens_mask", "_sequence_ids")
    _FIELDS = ("ids", "tokens", "type_ids", "attention_mask", "offsets",
               "special_tokens_mask", "sequence_ids")

    def __init__(self, ids: list[int], tokens: list[str], offsets, n_first: int,
                 n_second: int | None, added_special_tokens: bool):
        self.ids = ids
        self.tokens = tokens
        # A list, or a function that computes it.
        self._offsets = offsets
        self._layout = (n_first, n_second, added_special_tokens)
        self._type_ids = self._attention_mask = None
        self._special_tokens_mask = self._sequence_ids = None

    @classmethod
    def from_fields(cls, ids: list[int], tokens: list[str], offsets, type_ids: list[int],
                    special_tokens_mask: list[int],
                    sequence_ids: list[int | None]) -> "Encoding":
        """An encoding whose per-token lists are given (the tokenizer.json adapter's, from a
        ``tokenizers.Encoding``: layouts such as RoBERTa's ``<s> a </s></s> b </s>`` are the
        post-processor's, not [CLS] a [SEP] b [SEP])."""
        e = cls.__new__(cls)
        e.ids, e.tokens, e._offsets = ids, tokens, offsets
        e._layout = None
        e._type_ids, e._special_tokens_mask = type_ids, special_tokens_mask
        e._sequence_ids, e._attention_mask = sequence_ids, None
        return e

    def _segments(self, first, second, added):
        """Per-token values for the layout [CLS] a [SEP] (b [SEP]) or a (b)."""
        na, nb, special = self._layout
        if special:
            out = [added] + [first] * na + [added]
            if nb is not None:
                out += [second] * nb + [added]
        else:
            out = [first] * na
            if nb is not None:
                out += [second] * nb
        return out

    def _first_segment_length(self) -> int:
        """Tokens of type 0: [CLS] a [SEP] (or a), the whole encoding without a pair."""
        if self._layout is None:     # from_fields: the tokens of type 0
            return self.type_ids.count(0)
        na, nb, special = self._layout
        if nb is None:
            return len(self.ids)
        return na + 2 if special else na

    @property
    def offsets(self) -> list[tuple[int, int]]:
        if callable(self._offsets):
            self._offsets = self._offsets()
        return self._offsets

    @property
    def type_ids(self) -> list[int]:
        if self._type_ids is None:
            self._type_ids = self._segments(0, 1, 0)
            if self._layout[2] and self._layout[1] is not None:
                self._type_ids[-1] = 1  # the pair's closing [SEP] belongs to segment 1
        return self._type_ids

    @property
    def attention_mask(self) -> list[int]:
        if self._attention_mask is None:
            self._attention_mask = [1] * len(self.ids)
        return self._attention_mask

    @property
    def special_tokens_mask(self) -> list[int]:
        if self._special_tokens_mask is None:
            self._special_tokens_mask = self._segments(0, 0, 1)
        return self._special_tokens_mask

    @property
    def sequence_ids(self) -> list[int | None]:
        if self._sequence_ids is None:
            self._sequence_ids = self._segments(0, 1, None)
        return self._sequence_ids

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        shown = " ".join(self.tokens[:12]) + (" ..." if len(self.tokens) > 12 else "")
        return f"Encoding(num_tokens={len(self.ids)}, tokens=[{shown}])"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Encoding):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self._FIELDS)

    __hash__ = None


# ------------------------------------------------------------------------------ batches
# What WordPieceTokenizer.encode_batch and TokenizerJson.encode_batch share: the checks of
# their arguments and the padding of the encodings into (batch, length) arrays.

def check_batch_arguments(texts, pairs, padding, max_length):
    """TypeError / ValueError for bad ``texts`` / ``pairs`` lists or a bad ``padding``; returns
    ``padding`` normalised to False, "longest" or "max_length"."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a list of str, got {type(texts).__name__}")
    if pairs is not None:
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
            raise TypeError(f"pairs must be None or a list of str, got "
                            f"{type(pairs).__name__}")
        if len(pairs) != len(texts):
            raise ValueError(f"texts and pairs have different lengths: {len(texts)} and "
                             f"{len(pairs)}")
    if padding is True:
        padding = "longest"
    if padding not in (False, "longest", "max_length"):
        raise ValueError(f"padding must be a bool, 'longest' or 'max_length', got "
                         f"{padding!r}")
    if padding == "max_length" and max_length is None:
        raise ValueError("padding='max_length' needs max_length")
    return padding


def pad_batch(encs, padding, max_length, pad_token_id, no_pad_message: str,
              return_numpy: bool) -> dict:
    """``input_ids``, ``token_type_ids`` and ``attention_mask`` of ``encs`` padded on the right
    (pad id, type 0, mask 0) to the longest (``padding="longest"``) or to ``max_length``
    (``"max_length"``); NumPy int64 (batch, length) arrays or lists (``return_numpy=False``).
    ``padding=False``: unequal lengths need ``return_numpy=False``. ``no_pad_message``: the
    ValueError's text when padding is asked and ``pad_token_id`` is None."""
    lengths = [len(e) for e in encs]
    if padding:
        if pad_token_id is None:
            raise ValueError(no_pad_message)
        width = max_length if padding == "max_length" else max(lengths, default=0)
    elif len(set(lengths)) > 1:
        if return_numpy:
            raise ValueError("sequences have different lengths: use padding=True or "
                             "return_numpy=False")
        return {"input_ids": [e.ids for e in encs],
                "token_type_ids": [e.type_ids for e in encs],
                "attention_mask": [e.attention_mask for e in encs]}
    else:
        width = lengths[0] if lengths else 0
    pad = pad_token_id if padding else 0
    if not return_numpy:
        return {"input_ids": [e.ids + [pad] * (width - len(e)) for e in encs],
                "token_type_ids": [e.type_ids + [0] * (width - len(e)) for e in encs],
                "attention_mask": [[1] * len(e) + [0] * (width - len(e)) for e in encs]}
    import numpy as np
    n = len(encs)
    lens = np.array(lengths, dtype=np.int64).reshape(n, 1)
    cols = np.arange(width, dtype=np.int64)
    valid = cols < lens  # (n, width): True on real tokens, False on padding
    input_ids = np.full((n, width), pad, dtype=np.int64)
    # Row-major boolean assignment fills row 0's tokens, then row 1's, ...
    input_ids[valid] = np.fromiter(chain.from_iterable(e.ids for e in encs), np.int64,
                                   count=int(lens.sum()))
    first = np.array([e._first_segment_length() for e in encs], dtype=np.int64).reshape(n, 1)
    return {"input_ids": input_ids,
            "token_type_ids": ((cols >= first) & valid).astype(np.int64),
            "attention_mask": valid.astype(np.int64)}
