"""pytest-benchmark: WordPiece encode on ~256 kB of synthetic English (the quick corpus of
fastattn.bench.tokenizer); fastattn, and the `tokenizers` package when installed."""
import os

import pytest
from conftest import params_for, run_case


@pytest.mark.parametrize("case,impl", params_for("tokenizer"))
def test_tokenizer(benchmark, case, impl):
    run_case(benchmark, case, impl)


def test_tokenizer_hf_tokenizers(benchmark, tmp_path):
    """The Rust `tokenizers` BertWordPieceTokenizer on the same corpus and vocabulary, one
    string at a time (for comparison only; never a dependency)."""
    hf = pytest.importorskip("tokenizers")
    from fastattn.bench.tokenizer import english_corpus, make_tokenizer_vocab
    from fastattn.tokenizers import write_vocab
    lines = english_corpus(256 << 10)
    vocab = make_tokenizer_vocab(lines[: len(lines) // 5])
    write_vocab(vocab, tmp_path / "vocab.txt")
    tok = hf.BertWordPieceTokenizer(os.fspath(tmp_path / "vocab.txt"))
    benchmark.extra_info.update({"op": "wordpiece_warm", "impl": "tokenizers",
                                 "bytes": sum(len(s.encode()) + 1 for s in lines)})

    def encode_all():
        for line in lines:
            tok.encode(line)
    benchmark(encode_all)
