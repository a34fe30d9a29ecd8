"""fastattn.pipelines.embeddings: SentenceEmbedder, the pipeline built from a model directory
(it loads vocab.txt itself), against embed() with the same model and tokenizer. embed's own
numerics (pooling, batching, truncation, errors) are tested in test_bert.py. Every family
(BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA) against transformers' models, mean-pooled."""
import numpy as np
import pytest

import fastattn
from fastattn import WordPieceTokenizer
from fastattn.pipelines import SentenceEmbedder, embed
from test_bert import VOCAB, bert_config, bert_tensors

TEXTS = ["the cat sat on the mat .", "a dog ran in the park", "hello world !", "sun"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bert-embed")
    config = bert_config()
    fastattn.save_checkpoint(directory, config, bert_tensors(config, mlm=False))
    WordPieceTokenizer(VOCAB).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_sentence_embedder_equals_embed(model_dir, pooling):
    embedder = SentenceEmbedder(model_dir, pooling=pooling)
    model, tok = fastattn.load(model_dir), WordPieceTokenizer.from_pretrained(model_dir)
    want = embed(model, tok, TEXTS, pooling=pooling)
    # the same model and tokenizer, the same batches: the same bits
    np.testing.assert_array_equal(embedder(TEXTS), want)
    np.testing.assert_array_equal(embedder(TEXTS, batch_size=1),
                                  embed(model, tok, TEXTS, pooling=pooling, batch_size=1))
    raw = SentenceEmbedder(model_dir, pooling=pooling, normalize=False)(TEXTS)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), want,
                               rtol=0, atol=1e-6)


def test_sentence_embedder_errors(model_dir, tmp_path):
    with pytest.raises(ValueError, match="pooling"):
        SentenceEmbedder(model_dir, pooling="max")
    with pytest.raises(FileNotFoundError):
        SentenceEmbedder(tmp_path)           # no vocab.txt, no config.json


# ----------------------------------------- every family vs transformers (same checkpoint)
@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta", "distilbert", "electra"])
def test_sentence_embedder_every_family_equals_transformers(tmp_path_factory, family):
    from test_text_classification import CORPUS, hf_tokenizer, write_family
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    directory = write_family(tmp_path_factory, family, None)
    ours = SentenceEmbedder(directory)(CORPUS, batch_size=4)
    hf = transformers.AutoModel.from_pretrained(str(directory)).eval()
    batch = hf_tokenizer(family, directory)(CORPUS, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = hf(**batch).last_hidden_state
    m = batch["attention_mask"][:, :, None].to(h.dtype)
    want = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1).numpy()
    # unit vectors from float32 forwards of a 2-layer O(1) model: components agree to ~1e-6
    np.testing.assert_allclose(ours, want, atol=1e-5)
