"""`weights=` through the pipelines and `--weights` / `--kv-dtype` through the CLI: each loads
its model directory with fastattn.load(weights=...) (every Linear matrix in the format asked),
and prints what a model loaded so computes; a bad format is a ValueError naming the
pipeline and the formats (argparse refuses it on the command line)."""
import re

import numpy as np
import pytest

import fastattn
from fastattn import analysis
from fastattn.analysis.cost import linear_layers
from fastattn.cli import main
from fastattn.models.weights import LOAD_FORMATS
from fastattn.pipelines import (FillMask, QuestionAnswerer, SentenceEmbedder, TextClassifier,
                                TextGenerator, TokenClassifier)
from fastattn.pipelines.image_classification import ImageClassifier
from test_image_classification import write_tiny_vit
from test_text_classification import write_family
from test_text_generation import byte_bpe  # noqa: F401  (a fixture)

BAD = "weights must be one of " + ", ".join(LOAD_FORMATS) + ", got 'q3'"


def formats(model) -> set:
    return {layer.weights for layer in linear_layers(model)}


@pytest.fixture(scope="module")
def decoder_dir(tmp_path_factory, byte_bpe):  # noqa: F811
    from conftest import llama_checkpoint
    directory = tmp_path_factory.mktemp("weights-llama")
    config, tensors = llama_checkpoint(np.random.default_rng(0),
                                       vocab=byte_bpe.get_vocab_size())
    fastattn.save_checkpoint(directory, config, tensors)
    byte_bpe.save(str(directory / "tokenizer.json"))
    return directory


ENCODER_PIPELINES = [
    (SentenceEmbedder, None), (FillMask, "masked_lm"),
    (TextClassifier.from_pretrained, "sequence_classification"),
    (TokenClassifier.from_pretrained, "token_classification"),
    (QuestionAnswerer.from_pretrained, "question_answering"),
]


@pytest.mark.parametrize("make, task", ENCODER_PIPELINES)
def test_encoder_pipelines_load_in_the_format(tmp_path_factory, make, task):
    directory = write_family(tmp_path_factory, "bert", task)
    assert formats(make(directory).model) == {"float32"}        # as-stored: a float32 file
    for weights in ("q8", "bfloat16"):
        assert formats(make(directory, weights=weights).model) == {weights}
    name = getattr(make, "__self__", make).__name__
    with pytest.raises(ValueError, match=re.escape(f"{name}: {BAD}")):
        make(directory, weights="q3")


def test_text_classifier_q8_computes_as_the_q8_model(tmp_path_factory):
    from fastattn.pipelines.text_classification import text_classification
    directory = write_family(tmp_path_factory, "bert", "sequence_classification")
    texts = ["a good film", "the cat sat on the mat"]
    pipeline = TextClassifier.from_pretrained(directory, weights="q8")
    expected = text_classification(fastattn.load(directory, weights="q8"), pipeline.tokenizer,
                                   texts, top_k=None)
    assert pipeline(texts, top_k=None) == expected


def test_text_generator_and_image_classifier(decoder_dir, tmp_path):
    gen = TextGenerator(decoder_dir, weights="q4", kv_dtype="float16")
    assert formats(gen.model) == {"q4"}
    ids = np.asarray([gen.tokenizer.encode("the lazy").ids])
    out = gen.model.generate(ids, 6, kv_dtype="float16")
    assert gen("the lazy", 6) == gen.tokenizer.decode(out[0, ids.shape[1]:].tolist())
    with pytest.raises(ValueError, match=re.escape(f"TextGenerator: {BAD}")):
        TextGenerator(decoder_dir, weights="q3")
    vit = write_tiny_vit(tmp_path / "vit")
    assert formats(ImageClassifier.from_pretrained(vit, weights="q8").model) == {"q8"}
    with pytest.raises(ValueError, match=re.escape(f"ImageClassifier: {BAD}")):
        ImageClassifier.from_pretrained(vit, weights="q3")


# -- the command line ----------------------------------------------------------------------------

def test_generate_weights_and_kv_dtype(decoder_dir, capsys):
    assert main(["generate", str(decoder_dir), "--prompt", "the quick", "--max-new-tokens", "7",
                 "--weights", "q8", "--kv-dtype", "bfloat16"]) == 0
    printed = capsys.readouterr().out
    model = fastattn.load(decoder_dir, weights="q8")
    from fastattn.tokenizers.tokenizer_json import load_tokenizer_json
    tok = load_tokenizer_json(str(decoder_dir))
    ids = np.asarray([tok.encode("the quick").ids])
    out = model.generate(ids, 7, kv_dtype="bfloat16")
    assert printed.rstrip("\n") == "the quick" + tok.decode(out[0, ids.shape[1]:].tolist())
    with pytest.raises(SystemExit):
        main(["generate", str(decoder_dir), "--prompt", "x", "--kv-dtype", "int8"])
    with pytest.raises(SystemExit):
        main(["generate", str(decoder_dir), "--prompt", "x", "--weights", "q3"])


def test_classify_text_and_embed_weights(tmp_path_factory, tmp_path, capsys):
    directory = write_family(tmp_path_factory, "bert", "sequence_classification")
    texts = ["a good film", "the cat sat on the mat"]
    assert main(["classify-text", str(directory), *texts, "--top-k", "2",
                 "--weights", "q4"]) == 0
    out = capsys.readouterr().out
    for text, rows in zip(texts, TextClassifier.from_pretrained(directory, weights="q4")(
            texts, top_k=2)):
        assert text in out
        for row in rows:
            assert f"{row['score']:.4f}  {row['label']}" in out
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(texts + ["a third line"]) + "\n", encoding="utf-8")
    assert main(["embed", str(directory), "--file", str(lines), "--query", texts[0],
                 "-k", "3", "--weights", "q8"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    embedder = SentenceEmbedder(directory, weights="q8")
    corpus = embedder(texts + ["a third line"])
    _, scores = fastattn.top_k_neighbours(embedder([texts[0]]), corpus, 3)
    assert [row.split(None, 2)[1] for row in rows] == [f"{s:+.4f}" for s in scores[0]]


def test_classify_weights(tmp_path, capsys, monkeypatch):
    pytest.importorskip("PIL")
    from PIL import Image
    vit = write_tiny_vit(tmp_path / "vit")
    image = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3),
                                                      dtype=np.uint8)).save(image)
    loaded = []
    real = fastattn.loading.load

    def spy(path, **kw):
        model = real(path, **kw)
        loaded.append(formats(model))
        return model
    monkeypatch.setattr(fastattn.loading, "load", spy)
    assert main(["classify", str(vit), str(image), "--top-k", "2", "--weights", "q8"]) == 0
    out = capsys.readouterr().out
    assert loaded == [{"q8"}]
    top = ImageClassifier.from_pretrained(vit, weights="q8").classify(str(image), top_k=2)[0]
    for label, score in top:
        assert f"{score:.4f}  {label}" in out


def _header_bytes(out: str) -> str:
    return re.search(r"weights ([\d.]+ [kMG]?B) \(", out)[1]


def test_analyze_weights_drive_the_bytes(decoder_dir, tmp_path, capsys, monkeypatch):
    from fastattn.analysis.report import _bytes
    monkeypatch.setenv("FASTATTN_CACHE_DIR", str(tmp_path / "cache"))
    # a checkpoint: the model is loaded in q8 and its PackedMatrix bytes are the figures
    assert main(["analyze", str(decoder_dir), "--seq", "8", "--decode", "4", "--no-measure",
                 "--weights", "q8"]) == 0
    out = capsys.readouterr().out
    model = fastattn.load(decoder_dir, weights="q8")
    prefill = analysis.cost(model, seq_len=8)
    decode = analysis.cost(model, seq_len=4, mode="decode", context=8)
    assert "(Linear q8, the rest float32)" in out
    assert _header_bytes(out) == _bytes(prefill.weight_memory)
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith(("prefill", "decode"))}
    assert " ".join(rows["prefill"][3:5]) == _bytes(prefill.bytes)
    assert " ".join(rows["decode"][3:5]) == _bytes(decode.bytes)
    float32 = analysis.cost(fastattn.load(decoder_dir), seq_len=4, mode="decode", context=8)
    assert decode.bytes < float32.bytes
    # a config alone: the format's bytes per weight
    (tmp_path / "config.json").write_text((decoder_dir / "config.json").read_text())
    assert main(["analyze", str(tmp_path), "--seq", "8", "--decode", "4", "--no-measure",
                 "--weights", "q4"]) == 0
    out = capsys.readouterr().out
    config_cost = analysis.cost(str(tmp_path), seq_len=8, weights="q4")
    assert _header_bytes(out) == _bytes(config_cost.weight_memory)
    assert "(Linear q4, the rest float32)" in out


def test_a_format_the_family_lacks_is_a_clean_error(tmp_path, capsys):
    # ResNet keeps float32 in memory: classify / analyze --weights q8 exit 2 with load's message
    from test_quantize import write
    resnet = {"model_type": "resnet", "num_channels": 3, "hidden_act": "relu",
              "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1],
              "layer_type": "basic"}
    write(tmp_path / "resnet", resnet)
    image = tmp_path / "a.png"
    image.write_bytes(b"not read: the load fails first")
    assert main(["classify", str(tmp_path / "resnet"), str(image), "--weights", "q8"]) == 2
    assert "weights='q8' is not available for 'resnet'" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "resnet"), "--no-measure", "--weights", "q8"]) == 2
    assert "weights='q8' is not available for 'resnet'" in capsys.readouterr().err
