"""fastattn.pipelines.fill_mask: FillMask, the pipeline built from a model directory (it
loads vocab.txt itself; `model.fill_mask(text)` needed the tokenizer passed in), against
fill_mask() with the same model and tokenizer. fill_mask's scores against the float64
reference are tested in test_bert.py."""
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
