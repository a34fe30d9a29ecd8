"""The result of encoding one text (or text pair): token ids plus everything a model or a user
needs to line them up with the input. Attribute names follow the ``tokenizers`` package."""
from __future__ import annotations


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
