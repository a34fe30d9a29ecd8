"""WordPiece vocabulary training (fastattn.tokenizers.train)."""
import pytest

from fastattn.tokenizers import Merge, WordPieceTokenizer, train_wordpiece, write_vocab

# The Hugging Face course's WordPiece example: hug x10, pug x5, pun x12, bun x4, hugs x5.
TRAIN_TEXTS = ["hug " * 10, "pug " * 5, "pun " * 12, "bun " * 4, "hugs " * 5]
ALPHABET = ["b", "g", "h", "n", "p", "s", "u"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Worked by hand (counts: h 15, ##u 36, ##g 20, p 17, ##n 16, b 4, ##s 5):
# 1. (##g,##s) 5/(20*5) = 0.05 beats every other pair's 1/36
# 2. all pairs tie at 1/36 -> the highest pair count, (p,##u) 17
# 3. (h,##u) 15/(15*19) = (##u,##gs) 5/(19*5) = (b,##u) 4/(4*19) = 1/19 -> count 15 wins
# 4. (b,##u) 4/(4*4) = 0.25     5. (hu,##gs) 5/(15*5)      6. (hu,##g) 10/(10*15)
# 7. (bu,##n) 4/(4*16) > (pu,##g) 5/(17*5)      8. (pu,##g) = (pu,##n) = 1/17 -> count 12
# 9. (pu,##g) 5/(5*5)
EXPECTED_MERGES = [
    Merge("##g", "##s", "##gs", 5, 5 / (20 * 5)),
    Merge("p", "##u", "pu", 17, 17 / (17 * 36)),
    Merge("h", "##u", "hu", 15, 15 / (15 * 19)),
    Merge("b", "##u", "bu", 4, 4 / (4 * 4)),
    Merge("hu", "##gs", "hugs", 5, 5 / (15 * 5)),
    Merge("hu", "##g", "hug", 10, 10 / (10 * 15)),
    Merge("bu", "##n", "bun", 4, 4 / (4 * 16)),
    Merge("pu", "##n", "pun", 12, 12 / (17 * 12)),
    Merge("pu", "##g", "pug", 5, 5 / (5 * 5)),
]


def test_train_worked_example():
    tokens, merges = train_wordpiece(TRAIN_TEXTS, 100, return_merges=True)
    assert merges == EXPECTED_MERGES
    assert tokens == (SPECIALS + ALPHABET + ["##" + c for c in ALPHABET]
                      + [m.token for m in EXPECTED_MERGES])
    # vocab_size caps the merges; repeated runs give the same result
    assert train_wordpiece(TRAIN_TEXTS, 21) == tokens[:21]
    assert train_wordpiece(TRAIN_TEXTS, 21) == train_wordpiece(list(reversed(TRAIN_TEXTS)), 21)
    # min_frequency: no pair occurs 40 times -> only specials and the alphabet
    assert train_wordpiece(TRAIN_TEXTS, 100, min_frequency=40) == tokens[:19]
    # limit_alphabet keeps the 6 most frequent characters: "b" (4) goes, with the word "bun"
    small = train_wordpiece(TRAIN_TEXTS, 100, limit_alphabet=6)
    assert "b" not in small and "bu" not in small and "hugs" in small


def test_trained_vocab_loads_and_covers_its_corpus(tmp_path):
    from fastattn.bench.tokenizer import english_corpus
    texts = english_corpus(60_000, seed=3) + ["Ünïcödé wörlds, 我爱你 — ¿qué? 😀"]
    tokens = train_wordpiece(texts, 1500)
    assert len(tokens) == 1500 and len(set(tokens)) == 1500
    assert tokens[:5] == SPECIALS
    path = tmp_path / "vocab.txt"
    write_vocab(tokens, path)
    tok = WordPieceTokenizer.from_vocab(path)
    assert tok.vocab_size == 1500
    for text in texts:
        assert tok.unk_token_id not in tok.encode(text).ids
    assert train_wordpiece(texts, 1500) == tokens  # deterministic


def test_train_errors(tmp_path):
    with pytest.raises(TypeError, match="not a single str"):
        train_wordpiece("hello world", 100)
    with pytest.raises(TypeError, match="item 1 is int"):
        train_wordpiece(["a", 1], 100)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        train_wordpiece(["a"], 10.5)
    with pytest.raises(ValueError, match="min_frequency must be >= 1"):
        train_wordpiece(["a"], 10, min_frequency=0)
    with pytest.raises(ValueError, match="line break"):
        write_vocab(["a\nb"], tmp_path / "v.txt")
