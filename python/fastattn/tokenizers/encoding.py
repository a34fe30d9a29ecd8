"""The result of encoding one text (or text pair): token ids plus everything a model or a user
needs to line them up with the input. Attribute names follow the ``tokenizers`` package."""
from __future__ import annotations


class Encoding:
    """One encoded sequence.

    Attributes (all lists of the same length, one entry per token):

    - ``ids``: vocabulary ids;
    - ``tokens``: the token strings (``"##"`` marks a word continuation);
    - ``type_ids``: segment ids, 0 for the first text (and its ``[CLS]``/``[SEP]``), 1 for the
      pair text and its final ``[SEP]``;
    - ``attention_mask``: 1 for every token (padding only happens in ``encode_batch``);
    - ``offsets``: ``(start, end)`` character spans into the ORIGINAL text the token came from
      (the pair's offsets index the pair text); ``text[start:end]`` is the token's surface form
      before lower-casing and accent stripping. Added ``[CLS]``/``[SEP]`` get ``(0, 0)``;
    - ``special_tokens_mask``: 1 for the added ``[CLS]``/``[SEP]``, else 0;
    - ``sequence_ids``: 0 or 1 for tokens of the first or second text, None for added tokens.
    """

    __slots__ = ("ids", "tokens", "type_ids", "attention_mask", "offsets",
                 "special_tokens_mask", "sequence_ids")

    def __init__(self, ids, tokens, type_ids, offsets, special_tokens_mask, sequence_ids):
        self.ids = ids
        self.tokens = tokens
        self.type_ids = type_ids
        self.attention_mask = [1] * len(ids)
        self.offsets = offsets
        self.special_tokens_mask = special_tokens_mask
        self.sequence_ids = sequence_ids

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        shown = " ".join(self.tokens[:12]) + (" ..." if len(self.tokens) > 12 else "")
        return f"Encoding(num_tokens={len(self.ids)}, tokens=[{shown}])"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Encoding):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)
