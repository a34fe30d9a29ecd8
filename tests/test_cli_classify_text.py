"""`fastattn classify-text MODEL_DIR TEXT... [--top-k K]`, through fastattn.cli.main(argv) on
random sequence-classification checkpoints (BERT: vocab.txt; RoBERTa: tokenizer.json)."""
import re

import numpy as np
import pytest

from fastattn.cli import main
from fastattn.pipelines import TextClassifier
from test_text_classification import LABELS3, write_family

LINE = re.compile(r"^\s+(\d+)  (-?\d+\.\d{4})  (\w+)$")
TEXTS = ["This movie was great, I love it!", "the cat sat on the mat."]


def parse(stdout):
    """[(text, [(rank, score, label)])] from the command's output."""
    blocks = []
    for block in stdout.strip().split("\n\n"):
        head, *rows = block.splitlines()
        blocks.append((head, [(int(m[1]), float(m[2]), m[3]) for m in map(LINE.match, rows)]))
    return blocks


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_classify_text_prints_top_k(tmp_path_factory, capsys, family):
    directory = write_family(tmp_path_factory, family, "sequence_classification",
                             id2label=LABELS3)
    assert main(["classify-text", str(directory), *TEXTS, "--top-k", "2"]) == 0
    out = parse(capsys.readouterr().out)
    expected = TextClassifier.from_pretrained(directory)(TEXTS, top_k=2)
    assert [text for text, _ in out] == TEXTS
    for (_, rows), want in zip(out, expected):
        assert [r[0] for r in rows] == [1, 2]
        assert [r[2] for r in rows] == [w["label"] for w in want]
        # printed with 4 decimals
        np.testing.assert_allclose([r[1] for r in rows], [w["score"] for w in want],
                                   atol=5e-5)
    assert main(["classify-text", str(directory), TEXTS[0]]) == 0
    (text, rows), = parse(capsys.readouterr().out)
    assert text == TEXTS[0] and [r[2] for r in rows] == [expected[0][0]["label"]]


def test_classify_text_errors(tmp_path_factory, tmp_path, capsys):
    directory = write_family(tmp_path_factory, "bert", "sequence_classification")
    assert main(["classify-text", str(directory), "a text", "--top-k", "0"]) == 2
    assert "--top-k must be >= 1" in capsys.readouterr().err
    assert main(["classify-text", str(tmp_path / "missing"), "a text"]) == 2
    assert "fastattn classify-text:" in capsys.readouterr().err
    bare = write_family(tmp_path_factory, "bert", None)
    assert main(["classify-text", str(bare), "a text"]) == 2
    assert "no sequence_classification head" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["classify-text", str(directory)])    # no TEXT
