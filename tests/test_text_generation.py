"""Text generation around the decoder models: incremental detokenisation and the
`fastattn generate` command, with a small byte-level BPE tokenizer trained in the test."""
import subprocess
import sys

import numpy as np
import pytest

tokenizers = pytest.importorskip("tokenizers")

from fastattn.pipelines import TextStream  # noqa: E402

CORPUS = ["the quick brown fox jumps over the lazy dog", "naïve café — 東京 🙂 déjà vu",
          "attention is all you need", "fast kernels on a small cpu"] * 20


@pytest.fixture(scope="module")
def byte_bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"]))
    return tok


def test_stream_pieces_join_to_the_full_decode(byte_bpe):
    # multi-byte characters span several byte-level tokens: no piece may hold half of one
    text = "naïve café — 東京 🙂 the lazy fox"
    ids = byte_bpe.encode(text).ids
    stream = TextStream(byte_bpe)
    pieces = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == byte_bpe.decode(ids) == text
    assert not any("\ufffd" in p for p in pieces)


def test_stream_decodes_a_bounded_window(byte_bpe, rng):
    # a long generation: each push decodes only the last piece's tokens plus the pending ones,
    # and the pieces still join to the full decode, for real text and for random token ids
    # (which include lone UTF-8 continuation bytes)
    for ids in (byte_bpe.encode(" ".join(CORPUS)).ids,
                rng.integers(0, byte_bpe.get_vocab_size(), 600).tolist()):
        stream = TextStream(byte_bpe)
        pieces, widest = [], 0
        for i in ids:
            pieces.append(stream.push(i))
            widest = max(widest, len(stream.ids) - stream.prefix_start)
        pieces.append(stream.flush())
        assert len(ids) > 400 and widest <= 16
        assert "".join(pieces) == byte_bpe.decode(ids)


def test_generate_command_streams_text(byte_bpe, tmp_path, rng):
    import fastattn
    from conftest import llama_checkpoint
    config, tensors = llama_checkpoint(rng, vocab=byte_bpe.get_vocab_size())
    fastattn.save_checkpoint(tmp_path, config, tensors)
    byte_bpe.save(str(tmp_path / "tokenizer.json"))
    run = subprocess.run([sys.executable, "-m", "fastattn", "generate", str(tmp_path),
                          "--prompt", "the quick", "--max-new-tokens", "7"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("the quick")
    assert "tokens/s" in run.stderr and "7 new tokens" in run.stderr
    # the printed continuation is the greedy continuation of the loaded model
    model = fastattn.load(tmp_path)
    ids = np.asarray([byte_bpe.encode("the quick").ids])
    out = model.generate(ids, 7)
    assert run.stdout.rstrip("\n") == "the quick" + byte_bpe.decode(out[0, ids.shape[1]:].tolist())


def test_missing_tokenizer_file_is_named(tmp_path):
    from fastattn.tokenizers.tokenizer_json import load_tokenizer_json
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_tokenizer_json(tmp_path)


def test_text_generator_loads_the_directory_and_continues_greedily(byte_bpe, tmp_path, rng):
    """TextGenerator(dir) reads tokenizer.json itself; its continuation is the greedy
    continuation of the same model, the streamed pieces join to it, and two calls are
    independent (each generation has its own KV cache)."""
    import fastattn
    from conftest import llama_checkpoint
    from fastattn.pipelines import TextGenerator
    config, tensors = llama_checkpoint(rng, vocab=byte_bpe.get_vocab_size())
    fastattn.save_checkpoint(tmp_path, config, tensors)
    byte_bpe.save(str(tmp_path / "tokenizer.json"))
    gen = TextGenerator(tmp_path)
    ids = np.asarray([byte_bpe.encode("the lazy").ids])
    expected = byte_bpe.decode(gen.model.generate(ids, 9)[0, ids.shape[1]:].tolist())
    assert gen("the lazy", 9) == expected == "".join(gen.stream("the lazy", 9))
    sampled = [gen("the lazy", 9, temperature=1.0, seed=3) for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_text_generator_names_a_missing_tokenizer(tmp_path, rng):
    import fastattn
    from conftest import llama_checkpoint
    from fastattn.pipelines import TextGenerator
    config, tensors = llama_checkpoint(rng)
    fastattn.save_checkpoint(tmp_path, config, tensors)
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        TextGenerator(tmp_path)
