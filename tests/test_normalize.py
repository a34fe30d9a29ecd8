"""BERT's basic-tokenizer tables (fastattn.tokenizers.normalize)."""
from fastattn.tokenizers.normalize import CJK_RANGES, WHITESPACE, is_cjk, is_whitespace


def test_whitespace_and_cjk_tables():
    """The hard-coded whitespace set equals tab/LF/CR + Zs/Zl/Zp over all code points."""
    expected = {chr(c) for c in range(0x110000) if is_whitespace(chr(c))}
    assert set(WHITESPACE) == expected
    assert all(is_cjk(chr(lo)) and is_cjk(chr(hi)) for lo, hi in CJK_RANGES)
    assert not is_cjk("\u3042") and not is_cjk("\uac00")  # kana, hangul
