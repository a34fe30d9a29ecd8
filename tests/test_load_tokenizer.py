"""fastattn.tokenizers.load_tokenizer and TokenizerJson, the tokenizer.json adapter: WordPiece
from vocab.txt, and a byte-level BPE (RoBERTa's pipeline) and a Unigram (XLM-R's) built in
the test with the `tokenizers` package (fastattn.testing.write_encoder_tokenizer, no
downloads), whose ids, offsets, type ids and special-token masks equal transformers' fast
tokenizer's for single texts, pairs and every truncation strategy; the Encoding interface the
pipelines use; batches, decoding, errors."""
import json

import numpy as np
import pytest

from fastattn.testing import write_encoder_tokenizer
from fastattn.tokenizers import Encoding, TokenizerJson, WordPieceTokenizer, load_tokenizer

TEXTS = ["Hello  the cat <mask> sat!", "Où est la gare? Ça va très bien",
         "John Smith works at Acme Corp in New York.", "  leading spaces and trailing  ",
         "émoji 😀 and 中文 text", "tabs\tand\nnewlines", "x", ""]
PAIRS = [None, "where is he?", "Paris, France — the capital"]
TRUNCATIONS = [{}, {"truncation": True, "max_length": 9},
               {"truncation": "only_first", "max_length": 14},
               {"truncation": "only_second", "max_length": 14},
               {"truncation": "longest_first", "max_length": 7}]


@pytest.fixture(scope="module", params=["roberta", "xlm-roberta"])
def json_dir(request, tmp_path_factory):
    pytest.importorskip("tokenizers")
    directory = tmp_path_factory.mktemp(request.param)
    write_encoder_tokenizer(directory, request.param, max_length=40)
    return directory


def test_load_tokenizer_picks_the_kind(json_dir, tmp_path):
    tok = load_tokenizer(json_dir)
    assert isinstance(tok, TokenizerJson)
    assert (tok.cls_token, tok.sep_token, tok.pad_token, tok.mask_token, tok.unk_token) == \
        ("<s>", "</s>", "<pad>", "<mask>", "<unk>")
    assert (tok.cls_token_id, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id) == \
        (0, 1, 2, 3)
    assert tok.mask_token_id == tok.vocab_size - 1 or tok.mask_token_id == 4
    assert tok.model_max_length == 40
    write_encoder_tokenizer(tmp_path / "wp", "bert")
    assert isinstance(load_tokenizer(tmp_path / "wp"), WordPieceTokenizer)
    # vocab.txt wins when both are there (WordPiece is ours)
    (tmp_path / "wp" / "tokenizer.json").write_bytes((json_dir / "tokenizer.json").read_bytes())
    assert isinstance(load_tokenizer(tmp_path / "wp"), WordPieceTokenizer)


def test_matches_transformers_fast_tokenizer(json_dir):
    """Ids, offsets (character spans into the original text), type ids, special-token masks
    and attention masks equal transformers' (AutoTokenizer on the same directory: its
    RobertaTokenizer / XLMRobertaTokenizer, tokenizers-backed) for texts with repeated and
    leading spaces, accents, emoji, CJK, tabs, the mask token, pairs and truncation."""
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(json_dir)
    ours = load_tokenizer(json_dir)
    for text in TEXTS:
        for pair in PAIRS:
            for kw in TRUNCATIONS:
                try:
                    want = hf(text, pair, return_offsets_mapping=True,
                              return_special_tokens_mask=True, return_token_type_ids=True,
                              **kw)
                except Exception:            # e.g. only_second without a pair
                    with pytest.raises(ValueError):
                        ours.encode(text, pair, **kw)
                    continue
                got = ours.encode(text, pair, **kw)
                where = (text, pair, kw)
                assert got.ids == want["input_ids"], where
                assert got.offsets == [tuple(o) for o in want["offset_mapping"]], where
                assert got.type_ids == want["token_type_ids"], where
                assert got.special_tokens_mask == want["special_tokens_mask"], where
                assert got.attention_mask == want["attention_mask"], where
                assert got.tokens == want.encodings[0].tokens, where
                assert got.sequence_ids == want.sequence_ids(0), where


def test_offsets_index_the_original_text(json_dir):
    """Every non-special token's span lies inside its text, spans never go backwards, and the
    text a span covers is what the token stands for (byte-level: its bytes; Unigram: the
    piece without its "▁")."""
    tok = load_tokenizer(json_dir)
    text, pair = "Où est la gare? Ça va", "the big red house"
    enc = tok.encode(text, pair)
    last = {0: 0, 1: 0}
    for t, (s, e), seq, special in zip(enc.tokens, enc.offsets, enc.sequence_ids,
                                       enc.special_tokens_mask):
        if special:
            assert seq is None and (s, e) == (0, 0)
            continue
        source = text if seq == 0 else pair
        assert 0 <= s <= e <= len(source) and s >= last[seq]
        last[seq] = s
        if t.startswith("▁") and len(t) > 1:
            assert source[s:e] == t[1:]
    assert tok.decode(enc.ids).replace("  ", " ").startswith("Où est la gare?")


def test_encoding_interface(json_dir):
    tok = load_tokenizer(json_dir)
    enc = tok("a small bird", "the house")
    assert isinstance(enc, Encoding) and len(enc) == len(enc.ids)
    assert enc.ids[0] == tok.cls_token_id and enc.ids[-1] == tok.sep_token_id
    assert enc.sequence_ids.count(None) == 4          # <s> a </s> </s> b </s>
    assert enc.attention_mask == [1] * len(enc)
    assert enc == tok.encode("a small bird", "the house")
    plain = tok.encode("a small bird", add_special_tokens=False)
    assert tok.cls_token_id not in plain.ids and plain.special_tokens_mask == [0] * len(plain)
    assert tok.tokenize("a small bird") == plain.tokens
    assert tok.convert_ids_to_tokens(plain.ids) == [tok.tokenizer.id_to_token(i)
                                                    for i in plain.ids]
    assert tok.convert_ids_to_tokens(enc.ids, skip_special_tokens=True) == \
        [t for t, m in zip(enc.tokens, enc.special_tokens_mask) if not m]
    assert tok.convert_tokens_to_ids("<mask>") == tok.mask_token_id
    assert tok.convert_tokens_to_ids(["<s>", "no-such-token"]) == [0, tok.unk_token_id]
    assert sorted(tok.all_special_ids)[:4] == [0, 1, 2, 3]
    assert len(tok) == tok.vocab_size == len(tok.get_vocab())


def test_encode_batch(json_dir):
    tok = load_tokenizer(json_dir)
    texts = ["a small bird flies", "x", "the capital of France"]
    b = tok.encode_batch(texts)
    encs = [tok.encode(t) for t in texts]
    width = max(len(e) for e in encs)
    assert b["input_ids"].shape == (3, width) and b["input_ids"].dtype == np.int64
    for row, e in enumerate(encs):
        n = len(e)
        assert b["input_ids"][row, :n].tolist() == e.ids
        assert (b["input_ids"][row, n:] == tok.pad_token_id).all()
        assert b["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
    fixed = tok.encode_batch(texts, padding="max_length", max_length=30)
    assert fixed["input_ids"].shape == (3, 30)
    with pytest.raises(ValueError, match="more than max_length=4; pass truncation=True"):
        tok.encode_batch(texts, padding="max_length", max_length=4)
    lists = tok.encode_batch(texts, padding=False, return_numpy=False)
    assert lists["input_ids"] == [e.ids for e in encs]
    cut = tok.encode_batch(["a small bird flies over the big red house"] * 2,
                           pairs=["where?", "who?"], truncation=True, max_length=8)
    assert cut["input_ids"].shape == (2, 8)
    with pytest.raises(ValueError, match="different lengths"):
        tok.encode_batch(texts, padding=False)
    with pytest.raises(ValueError, match="texts and pairs"):
        tok.encode_batch(texts, pairs=["a"])
    with pytest.raises(ValueError, match="padding='max_length' needs max_length"):
        tok.encode_batch(texts, padding="max_length")
    with pytest.raises(TypeError, match="texts\\[1\\] must be a str, got int"):
        tok.encode_batch(["a", 3])
    assert tok.encode_batch([])["input_ids"].shape == (0, 0)
    # the package's parallel batch encoding gives each text its own encode's ids
    many = [f"the big red house {i} " * (1 + i % 5) for i in range(64)]
    lists = tok.encode_batch(many, padding=False, return_numpy=False)["input_ids"]
    assert lists == [tok.encode(t).ids for t in many]


def test_decode(json_dir):
    tok = load_tokenizer(json_dir)
    text = "This movie was great, I love it!"
    assert tok.decode(tok.encode(text).ids) == text
    assert tok.decode(tok.encode(text).ids, skip_special_tokens=False).startswith("<s>")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
    with pytest.raises(TypeError, match="integers"):
        tok.decode(["a"])


def test_errors(json_dir, tmp_path):
    tok = load_tokenizer(json_dir)
    with pytest.raises(TypeError, match="text must be a str"):
        tok.encode(3)
    with pytest.raises(TypeError, match="pair must be None or a str"):
        tok.encode("a", 3)
    with pytest.raises(ValueError, match="truncation must be"):
        tok.encode("a", truncation="middle")
    with pytest.raises(ValueError, match="more than max_length=3; pass truncation=True"):
        tok.encode("a small bird flies", max_length=3)
    with pytest.raises(ValueError, match="too small for the 4 special tokens"):
        tok.encode("a small bird", "the house", truncation=True, max_length=3)
    with pytest.raises(ValueError, match="only_second.*needs a pair"):
        tok.encode("a small bird flies over the big red house", truncation="only_second",
                   max_length=4)
    with pytest.raises(FileNotFoundError, match="neither vocab.txt.*nor tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        load_tokenizer(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="model_dir must be"):
        load_tokenizer(3)


def test_file_truncation_and_padding_settings_do_not_apply(json_dir, tmp_path):
    """A tokenizer.json may enable truncation / padding (state the `tokenizers` package then
    applies to every call); the adapter switches them off: the caller's arguments decide."""
    data = json.loads((json_dir / "tokenizer.json").read_text(encoding="utf-8"))
    data["truncation"] = {"direction": "Right", "max_length": 3, "strategy": "LongestFirst",
                          "stride": 0}
    data["padding"] = {"strategy": {"Fixed": 30}, "direction": "Right", "pad_to_multiple_of":
                       None, "pad_id": 1, "pad_type_id": 0, "pad_token": "<pad>"}
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    tok = load_tokenizer(tmp_path)
    reference = load_tokenizer(json_dir)
    text = "a small bird flies over the big red house"
    assert tok.encode(text).ids == reference.encode(text).ids
    assert tok.model_max_length is None             # no tokenizer_config.json here
    with pytest.raises(ValueError, match="truncation needs max_length"):
        tok.encode(text, truncation=True)


def test_wordpiece_directories_need_no_tokenizers_package(tmp_path, monkeypatch):
    """vocab.txt is read by our WordPiece: no optional package involved (the package is made
    unimportable here); a tokenizer.json without the package is an ImportError naming the
    extra to install; a directory with neither is a FileNotFoundError."""
    monkeypatch.setitem(__import__("sys").modules, "tokenizers", None)
    assert write_encoder_tokenizer(tmp_path / "wp", "distilbert") > 5
    tok = load_tokenizer(tmp_path / "wp")
    assert isinstance(tok, WordPieceTokenizer) and tok.model_max_length == 40
    assert tok.encode("the cat sat").tokens == ["[CLS]", "the", "cat", "sat", "[SEP]"]
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "tokenizer.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ImportError, match=r"fastattn\[text\]"):
        load_tokenizer(tmp_path / "json")
    with pytest.raises(FileNotFoundError, match="neither vocab.txt"):
        load_tokenizer(tmp_path)
