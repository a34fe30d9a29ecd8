"""WordPiece tokenizer (fastattn.tokenizers.wordpiece): encoding, offsets, truncation,
batches, decoding, loading and saving, and agreement with Hugging Face's ``tokenizers``.

Expected ids below were derived by hand from VOCAB (not computed by the code under test):
BERT's rules are spelled out next to each tricky case."""
import json
import unicodedata

import numpy as np
import pytest

from fastattn.tokenizers import Encoding, WordPieceTokenizer, train_wordpiece, write_vocab

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  # 0-4
         "hello", "world", "wor", "##ld", "##s",        # 5-9
         "un", "##aff", "##able", "aff", ".",           # 10-14
         ",", "!", "?", "'", "don",                     # 15-19
         "t", "我", "爱", "你", "1",                     # 20-24
         "##2", "##3", "3", "a", "##a",                  # 25-29
         "##4", "é"]                                      # 30-31
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


@pytest.fixture(scope="module")
def vocab_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tok(vocab_path):
    return WordPieceTokenizer.from_vocab(vocab_path)


# (text, ids without [CLS]/[SEP], offsets or None when not checked here)
CASES = [
    # lower-cased, accents stripped (NFD, drop Mn): "héllo" -> "hello"
    ("Héllo Wörld", [5, 6], [(0, 5), (6, 11)]),
    ("HELLO, world!", [5, 15, 6, 16], [(0, 5), (5, 6), (7, 12), (12, 13)]),
    # decomposed input: the combining acute (index 2) belongs to the span of "hello"
    ("He\u0301llo", [5], [(0, 6)]),
    # every CJK ideograph is its own word, even without spaces around it
    ("我爱你", [21, 22, 23], [(0, 1), (1, 2), (2, 3)]),
    ("hello我world", [5, 21, 6], [(0, 5), (5, 6), (6, 11)]),
    # an emoji is a symbol (So), not punctuation: a word of its own, unknown
    ("hello 😀", [5, UNK], [(0, 5), (6, 7)]),
    # NUL, BEL (Cc) and zero-width space (Cf) are dropped without splitting the word
    ("hel\x00lo\x07 wor\u200bld", [5, 6], [(0, 6), (8, 14)]),
    ("\thello\nworld\r\n", [5, 6], [(1, 6), (7, 12)]),
    # each punctuation character is a word
    ("...!!??", [14, 14, 14, 16, 16, 17, 17], [(i, i + 1) for i in range(7)]),
    # 101 characters > max_input_chars_per_word (100): one [UNK] for the whole word
    ("a" * 101, [UNK], [(0, 101)]),
    ("a" * 100, [28] + [29] * 99, [(0, 1)] + [(i, i + 1) for i in range(1, 100)]),
    ("", [], []),
    ("  \t\n ", [], []),
    ("\ufffd\x00", [], []),
    ("don't", [19, 18, 20], [(0, 3), (3, 4), (4, 5)]),
    # numbers are words like any other; '.' splits "3.14"
    ("123 3.14", [24, 25, 26, 27, 14, 24, 30], [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6),
                                                  (6, 7), (7, 8)]),
    # greedy longest match first, '##' continuation
    ("unaffable affable", [10, 11, 12, 13, 12], [(0, 2), (2, 5), (5, 9), (10, 13), (13, 17)]),
    ("worlds worldld", [6, 9, 6, 8], [(0, 5), (5, 6), (7, 12), (12, 14)]),
    # "hello" matches but "##xyz" cannot be segmented: the WHOLE word is [UNK]
    ("helloxyz", [UNK], [(0, 8)]),
    # no-break space and ideographic space (Zs) separate words
    ("hello\u00a0world\u3000hello", [5, 6, 5], [(0, 5), (6, 11), (12, 17)]),
    # em dash (Pd), inverted question mark (Po): Unicode punctuation
    ("hello\u2014world", [5, UNK, 6], [(0, 5), (5, 6), (6, 11)]),
    ("¿hello?", [UNK, 5, 17], [(0, 1), (1, 6), (6, 7)]),
    # $ and ^ are not Unicode punctuation (Sc, Sk) but BERT's ASCII ranges include them
    ("$hello^", [UNK, 5, UNK], [(0, 1), (1, 6), (6, 7)]),
    # full-width letters: lower-cased, but BERT does no NFKC, so they stay unknown
    ("ＨＥＬＬＯ", [UNK], [(0, 5)]),
    # special tokens in the text are kept whole (matched before normalisation) ...
    ("hello [MASK] world", [5, MASK, 6], [(0, 5), (6, 12), (13, 18)]),
    ("hello[MASK]", [5, MASK], [(0, 5), (5, 11)]),
    # ... but only verbatim: "[mask]" is "[", "mask", "]", none of them in the vocabulary
    ("[mask]", [UNK, UNK, UNK], [(0, 1), (1, 5), (5, 6)]),
    # "é" is in the vocabulary, but accent stripping maps it to "e", which is not
    ("é", [UNK], [(0, 1)]),
]


@pytest.mark.parametrize("text,ids,offsets", CASES, ids=[repr(c[0])[:30] for c in CASES])
def test_encode_table(tok, text, ids, offsets):
    enc = tok.encode(text, add_special_tokens=False)
    assert enc.ids == ids
    assert enc.tokens == [VOCAB[i] for i in ids]
    assert enc.offsets == offsets
    full = tok.encode(text)
    assert full.ids == [CLS] + ids + [SEP]
    assert full.offsets == [(0, 0)] + offsets + [(0, 0)]
    assert full.special_tokens_mask == [1] + [0] * len(ids) + [1]
    assert full.type_ids == [0] * (len(ids) + 2)
    assert full.attention_mask == [1] * (len(ids) + 2)
    assert len(full) == len(ids) + 2
    assert tok.tokenize(text) == [VOCAB[i] for i in ids]


def _surface(s):
    """What BERT's normalisation makes of an original span (independent implementation):
    drop NUL/U+FFFD/control/format characters, lower-case, NFD, drop nonspacing marks."""
    s = "".join(c for c in s if c not in "\x00\ufffd" and unicodedata.category(c)[0] != "C")
    s = unicodedata.normalize("NFD", s.lower())
    return "".join(c for c in s if unicodedata.category(c) != "Mn")


@pytest.mark.parametrize("text", [c[0] for c in CASES] + [
    "Ünïcödé wörlds, HÉLLO! Don't — 我爱你 hello\u200bworld",
    "x" * 30 + "hello" + " \x00\x00hello\x01,",
])
def test_offsets_point_at_the_token(tok, text):
    enc = tok.encode(text, add_special_tokens=False)
    for token, (s, e) in zip(enc.tokens, enc.offsets):
        assert 0 <= s < e <= len(text)
        if token == "[UNK]":
            continue
        surface = token[2:] if token.startswith("##") else token
        if token == "[MASK]":
            assert text[s:e] == "[MASK]"
        else:
            assert _surface(text[s:e]) == surface, (token, text[s:e])


def test_cased_and_option_variants(vocab_path):
    cased = WordPieceTokenizer.from_vocab(vocab_path, lowercase=False)
    assert cased.tokenize("Hello hello Héllo") == ["[UNK]", "hello", "[UNK]"]
    strip_only = WordPieceTokenizer.from_vocab(vocab_path, lowercase=False, strip_accents=True)
    assert strip_only.tokenize("héllo Héllo") == ["hello", "[UNK]"]
    keep_accents = WordPieceTokenizer.from_vocab(vocab_path, strip_accents=False)
    # lower-cased but accents kept: "É" -> "é" (id 31), "Héllo" -> "héllo" (unknown)
    assert keep_accents.encode("É Héllo", add_special_tokens=False).ids == [31, UNK]
    no_cjk = WordPieceTokenizer.from_vocab(vocab_path, tokenize_chinese_chars=False)
    # one word "我爱你": "我" matches, "##爱" does not -> [UNK]
    assert no_cjk.encode("我爱你", add_special_tokens=False).ids == [UNK]
    short = WordPieceTokenizer.from_vocab(vocab_path, max_input_chars_per_word=5)
    assert short.tokenize("hello worlds") == ["hello", "[UNK]"]


def test_pair_type_ids_and_offsets(tok):
    enc = tok.encode("hello world", "unaffable")
    assert enc.ids == [CLS, 5, 6, SEP, 10, 11, 12, SEP]
    assert enc.type_ids == [0, 0, 0, 0, 1, 1, 1, 1]
    assert enc.special_tokens_mask == [1, 0, 0, 1, 0, 0, 0, 1]
    # the pair's offsets index the pair text
    assert enc.offsets == [(0, 0), (0, 5), (6, 11), (0, 0), (0, 2), (2, 5), (5, 9), (0, 0)]
    assert enc.sequence_ids == [None, 0, 0, None, 1, 1, 1, None]
    assert tok.encode("hello", "", add_special_tokens=False).ids == [5]


def test_truncation(tok):
    four = "hello world hello world"   # 4 tokens
    two = "hello world"                # 2 tokens
    assert tok.encode(four, max_length=4, truncation=True).ids == [CLS, 5, 6, SEP]
    # longest_first, budget 7 - 3 = 4: cutting the longer text to 2 suffices
    assert tok.encode(four, two, max_length=7, truncation=True).ids == [
        CLS, 5, 6, SEP, 5, 6, SEP]
    assert tok.encode(two, four, max_length=7, truncation=True).ids == [
        CLS, 5, 6, SEP, 5, 6, SEP]
    # both must be cut: half the budget each; the odd token goes to the pair on a tie
    enc = tok.encode(four, four, max_length=8, truncation=True)
    assert enc.ids == [CLS, 5, 6, SEP, 5, 6, 5, SEP]
    assert enc.type_ids == [0, 0, 0, 0, 1, 1, 1, 1]
    assert tok.encode(four, two, max_length=7, truncation="only_first").ids == [
        CLS, 5, 6, SEP, 5, 6, SEP]
    assert tok.encode(two, four, max_length=7, truncation="only_second").ids == [
        CLS, 5, 6, SEP, 5, 6, SEP]
    # nothing to cut: unchanged
    assert tok.encode(two, max_length=10, truncation=True).ids == [CLS, 5, 6, SEP]
    assert tok.encode(four, max_length=0, truncation=True, add_special_tokens=False).ids == []
    with pytest.raises(ValueError, match="too small for the 3 special tokens"):
        tok.encode("hello", "world", max_length=2, truncation=True)
    with pytest.raises(ValueError, match="pass truncation=True"):
        tok.encode(four, max_length=4)
    with pytest.raises(ValueError, match="needs max_length"):
        tok.encode(four, truncation=True)
    with pytest.raises(ValueError, match="only_first"):
        tok.encode(two, four, max_length=5, truncation="only_first")
    with pytest.raises(ValueError, match="truncation must be"):
        tok.encode(two, truncation="longest")


def test_encode_batch_padding(tok):
    out = tok.encode_batch(["hello", "hello world", ""])
    assert set(out) == {"input_ids", "token_type_ids", "attention_mask"}
    for v in out.values():
        assert v.dtype == np.int64 and v.shape == (3, 4)
    np.testing.assert_array_equal(out["input_ids"], [[CLS, 5, SEP, PAD], [CLS, 5, 6, SEP],
                                                     [CLS, SEP, PAD, PAD]])
    np.testing.assert_array_equal(out["attention_mask"], [[1, 1, 1, 0], [1, 1, 1, 1],
                                                          [1, 1, 0, 0]])
    np.testing.assert_array_equal(out["token_type_ids"], np.zeros((3, 4)))
    pairs = tok.encode_batch(["hello", "world"], ["un", "hello world"])
    np.testing.assert_array_equal(pairs["input_ids"], [[CLS, 5, SEP, 10, SEP, PAD],
                                                       [CLS, 6, SEP, 5, 6, SEP]])
    np.testing.assert_array_equal(pairs["token_type_ids"], [[0, 0, 0, 1, 1, 0],
                                                            [0, 0, 0, 1, 1, 1]])
    fixed = tok.encode_batch(["hello", "hello world hello"], padding="max_length",
                             max_length=4, truncation=True)
    np.testing.assert_array_equal(fixed["input_ids"], [[CLS, 5, SEP, PAD], [CLS, 5, 6, SEP]])
    ragged = tok.encode_batch(["hello", "hello world"], padding=False, return_numpy=False)
    assert ragged["input_ids"] == [[CLS, 5, SEP], [CLS, 5, 6, SEP]]
    empty = tok.encode_batch([])
    assert empty["input_ids"].shape == (0, 0)
    with pytest.raises(ValueError, match="different lengths"):
        tok.encode_batch(["hello", "hello world"], padding=False)
    with pytest.raises(ValueError, match="texts and pairs have different lengths: 2 and 1"):
        tok.encode_batch(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="texts must be a list of str"):
        tok.encode_batch("hello")
    with pytest.raises(ValueError, match="more than max_length"):
        tok.encode_batch(["hello world hello"], max_length=3)


@pytest.mark.parametrize("pairs", [None, ["un", "", "hello world hello world", "!"]])
@pytest.mark.parametrize("kwargs", [{}, {"padding": "max_length", "max_length": 9,
                                         "truncation": True},
                                    {"max_length": 5, "truncation": "longest_first"}])
def test_encode_batch_rows_match_encode(tok, pairs, kwargs):
    texts = ["hello", "", "unaffable worlds, hello!", "我爱你 don't"]
    out = tok.encode_batch(texts, pairs, **kwargs)
    lists = tok.encode_batch(texts, pairs, return_numpy=False, **kwargs)
    width = out["input_ids"].shape[1]
    for i, text in enumerate(texts):
        enc = tok.encode(text, None if pairs is None else pairs[i],
                         max_length=kwargs.get("max_length"),
                         truncation=kwargs.get("truncation", False))
        n = len(enc)
        pad = width - n
        assert out["input_ids"][i].tolist() == enc.ids + [PAD] * pad == lists["input_ids"][i]
        assert (out["token_type_ids"][i].tolist() == enc.type_ids + [0] * pad
                == lists["token_type_ids"][i])
        assert out["attention_mask"][i].tolist() == [1] * n + [0] * pad


def test_decode(tok):
    assert tok.decode([CLS, 10, 11, 12, 15, 6, 16, SEP]) == "unaffable, world!"
    assert (tok.decode([CLS, 10, 11, 12, 15, 6, 16, SEP], skip_special_tokens=False)
            == "[CLS] unaffable, world! [SEP]")
    assert tok.decode([19, 18, 20]) == "don't"
    assert tok.decode([19, 18, 20], clean_up_tokenization_spaces=False) == "don ' t"
    assert tok.decode(np.array([5, 6], dtype=np.int32)) == "hello world"
    assert tok.decode([]) == ""
    with pytest.raises(ValueError, match="token id 32 is out of range for a vocabulary of 32"):
        tok.decode([5, 32])
    with pytest.raises(ValueError, match="token id -1 is out of range"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="token ids must be ints"):
        tok.decode([5.0])
    with pytest.raises(TypeError, match="ids must be"):
        tok.decode("hello")


@pytest.mark.parametrize("text,expected", [
    ("Hello, World!", "hello, world!"),
    ("Unaffable worlds... don't!", "unaffable worlds... don't!"),
    ("我爱你", "我 爱 你"),
    ("  hello\n\tworld  ", "hello world"),
])
def test_round_trip(tok, text, expected):
    assert tok.decode(tok.encode(text).ids) == expected


def test_vocabulary_api(tok):
    assert tok.vocab_size == len(tok) == 32
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id,
            tok.mask_token_id) == (0, 1, 2, 3, 4)
    assert tok.convert_tokens_to_ids("hello") == 5
    assert tok.convert_tokens_to_ids(["##able", "nope"]) == [12, UNK]
    assert tok.convert_ids_to_tokens(12) == "##able"
    assert tok.convert_ids_to_tokens([5, 9]) == ["hello", "##s"]
    assert tok.all_special_ids == [0, 1, 2, 3, 4]
    assert isinstance(tok.encode("hello"), Encoding)
    with pytest.raises(ValueError, match="out of range"):
        tok.convert_ids_to_tokens(100)


def test_loading_errors(tmp_path):
    missing = tmp_path / "nope" / "vocab.txt"
    with pytest.raises(FileNotFoundError, match="nope"):
        WordPieceTokenizer.from_vocab(missing)
    no_unk = tmp_path / "v.txt"
    no_unk.write_text("[PAD]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no unknown token '\[UNK\]'"):
        WordPieceTokenizer.from_vocab(no_unk)
    with pytest.raises(TypeError, match="path must be"):
        WordPieceTokenizer.from_vocab(123)
    with pytest.raises(TypeError, match="lowercase must be a bool"):
        WordPieceTokenizer.from_vocab(no_unk, lowercase="yes", unk_token="hello")
    with pytest.raises(FileNotFoundError, match="checkpoint directory not found"):
        WordPieceTokenizer.from_pretrained(tmp_path / "missing")


def test_argument_types(tok):
    with pytest.raises(TypeError, match="text must be a str, got int"):
        tok.encode(123)
    with pytest.raises(TypeError, match="pair must be None or a str"):
        tok.encode("a", b"b")
    with pytest.raises(TypeError, match="max_length must be None or an int"):
        tok.encode("a", max_length=3.0, truncation=True)
    with pytest.raises(TypeError, match="text must be a str"):
        tok.tokenize(None)


def test_from_pretrained_and_save(tmp_path, vocab_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "vocab.txt").write_text(open(vocab_path, encoding="utf-8").read(), encoding="utf-8")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "do_lower_case": False, "model_max_length": 6, "tokenize_chinese_chars": True,
        "mask_token": {"content": "[MASK]", "lstrip": False}}), encoding="utf-8")
    tok = WordPieceTokenizer.from_pretrained(d)
    assert tok.lowercase is False and tok.strip_accents is False
    assert tok.model_max_length == 6
    assert tok.tokenize("Hello hello") == ["[UNK]", "hello"]
    # truncation without max_length uses model_max_length
    assert tok.encode("hello " * 10, truncation=True).ids == [CLS, 5, 5, 5, 5, SEP]
    tok.save_pretrained(tmp_path / "saved")
    again = WordPieceTokenizer.from_pretrained(tmp_path / "saved")
    assert again.get_vocab() == tok.get_vocab()
    assert (again.lowercase, again.model_max_length) == (False, 6)
    assert WordPieceTokenizer.from_pretrained(d, lowercase=True).tokenize("Hello") == ["hello"]


# ------------------------------------------------- optional: Hugging Face `tokenizers`
MULTILINGUAL = [
    "Héllo Wörld! Ça va? Naïve café, résumé — déjà vu. İstanbul'da ıIiİ",
    "我爱你，中国。東京は日本の首都です。한국어 텍스트입니다.",
    "Привет, мир! Ελληνικά: ΟΔΟΣ οδός. Ünïcödé straße ẞ ß",
    "emoji 😀👍🏽 family 👨\u200d👩\u200d👧 flags 🇫🇷 ❤️ end",
    "tabs\tand\nnewlines\r\nand\x00nul\x07bell\u200bzwsp\ufeffbom\ufffdrepl",
    "punct...!!??;;--((x))[y]{z}<a>`b`~c~^d^$e$ don't can't it's «guillemets» „quotes“",
    "numbers 3.14159 1,000,000 42nd 2024-01-01 +1 (555) 123-4567 ½ ² ⅷ",
    "ﬁne ligatures ǅ Å Å e\u0301 Ｆｕｌｌｗｉｄｔｈ",
    "a" * 120 + " short " + "b" * 100,
    "",
    "   \t\n  ",
    "foo[MASK]bar [SEP] [CLS]x [PAD][UNK] [mask] [MASK]",
    "line\u2028sep\u2029para\u00a0nbsp\u3000ideo\u2003em\u202fnarrow",
    "हिन्दी पाठ। ไทย ภาษา עברית",
]


def _fuzz_texts(n, seed):
    """Random strings over blocks whose characters' categories are the same in the Unicode
    versions of Python's unicodedata and of the `tokenizers` Rust crates (newer additions,
    e.g. U+061D, a Po since Unicode 14, are judged differently by the older tables)."""
    import random
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x900, 0x97F),
              (0x1E00, 0x1FFF), (0x2000, 0x2064), (0x2100, 0x218F), (0x3000, 0x30FF),
              (0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0xF900, 0xFA2D), (0xFF00, 0xFFEF),
              (0x1F300, 0x1F5FF)]
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rnd.randint(0, 60)):
            if rnd.random() < 0.15:
                chars.append(" ")
            else:
                lo, hi = rnd.choice(blocks)
                c = chr(rnd.randint(lo, hi))
                if unicodedata.category(c) not in ("Cn", "Co", "Cs"):
                    chars.append(c)
        out.append("".join(chars))
    return out


@pytest.mark.parametrize("lowercase,strip_accents", [(True, None), (False, None),
                                                    (True, False), (False, True)])
def test_matches_huggingface_tokenizers(tmp_path, lowercase, strip_accents):
    hf_tokenizers = pytest.importorskip("tokenizers")
    texts = MULTILINGUAL + _fuzz_texts(400, seed=int(lowercase) * 2 + bool(strip_accents))
    tokens = train_wordpiece(texts[:200], 3000, lowercase=lowercase)
    path = str(tmp_path / "vocab.txt")
    write_vocab(tokens, path)
    ours = WordPieceTokenizer.from_vocab(path, lowercase=lowercase, strip_accents=strip_accents)
    theirs = hf_tokenizers.BertWordPieceTokenizer(path, lowercase=lowercase,
                                                  strip_accents=strip_accents)
    for i, text in enumerate(texts):
        pair = texts[-1 - i]
        for a, b in ((ours.encode(text), theirs.encode(text)),
                     (ours.encode(text, pair), theirs.encode(text, pair))):
            assert a.ids == b.ids, text
            assert a.offsets == [tuple(o) for o in b.offsets], text
            assert a.type_ids == b.type_ids
            assert a.special_tokens_mask == b.special_tokens_mask
            assert a.tokens == b.tokens
