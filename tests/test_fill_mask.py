"""fastattn.pipelines.fill_mask: FillMask, the pipeline built from a model directory (it
loads vocab.txt itself; `model.fill_mask(text)` needed the tokenizer passed in), against
fill_mask() with the same model and tokenizer. fill_mask's scores against the float64
reference are tested in test_bert.py. Every family with a masked-LM head (<mask> for RoBERTa /
XLM-R) against transformers' fill-mask pipeline."""
import numpy as np
import pytest

import fastattn
from fastattn import WordPieceTokenizer
from fastattn.pipelines import FillMask, fill_mask
from test_bert import VOCAB, bert_config, bert_tensors


def write(directory, mlm=True):
    config = bert_config()
    fastattn.save_checkpoint(directory, config, bert_tensors(config, mlm=mlm))
    WordPieceTokenizer(VOCAB).save_pretrained(directory)
    return directory


def test_fill_mask_pipeline_reads_its_tokenizer(tmp_path):
    unmask = FillMask(write(tmp_path))
    text = "the [MASK] sat on the [MASK] ."
    got = unmask(text, top_k=4)
    model, tok = fastattn.load(tmp_path), WordPieceTokenizer.from_pretrained(tmp_path)
    assert got == fill_mask(model, tok, text, 4) == model.fill_mask(text, tok, top_k=4)
    assert len(got) == 2 and all(len(c) == 4 for c in got)
    assert all(c["token"] == VOCAB[c["token_id"]] for cands in got for c in cands)


def test_fill_mask_pipeline_needs_a_masked_lm_head(tmp_path):
    with pytest.raises(ValueError, match="no masked-LM head"):
        FillMask(write(tmp_path, mlm=False))


# ----------------------------------------- every family vs transformers' fill-mask pipeline
@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta", "distilbert"])
def test_fill_mask_every_family_equals_transformers(tmp_path_factory, family):
    from test_text_classification import hf_tokenizer, write_family
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    directory = write_family(tmp_path_factory, family, "masked_lm")
    unmask = FillMask(directory)
    text = f"the cat sat on the {unmask.tokenizer.mask_token}."
    got = unmask(text, top_k=5)
    assert len(got) == 1
    hf = transformers.AutoModelForMaskedLM.from_pretrained(str(directory)).eval()
    pipe = transformers.pipeline("fill-mask", model=hf, tokenizer=hf_tokenizer(family, directory),
                                 device="cpu")
    want = pipe(text, top_k=5)
    assert [c["token_id"] for c in got[0]] == [w["token"] for w in want]
    # probabilities over the vocabulary from float32 logits of a 2-layer O(1) model
    np.testing.assert_allclose([c["score"] for c in got[0]], [w["score"] for w in want],
                               atol=1e-5)
