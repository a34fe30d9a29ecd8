"""fastattn.pipelines.text_classification: scores (softmax / sigmoid / none per problem_type),
top-k order, batching by length, text pairs and errors on a model whose logits are a known
function of the tokens; then TextClassifier on random checkpoints of each family against
transformers' text-classification pipeline on the same weights (skipped without
transformers)."""
from types import SimpleNamespace

import numpy as np
import pytest

from fastattn.pipelines import TextClassifier, text_classification
from fastattn.pipelines.text_classification import apply_function, default_function, top_labels
from fastattn.tokenizers import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ada", "love", "##lace", "was", "born",
         "in", "london", "paris", "the", "city", ",", ".", "where", "?", "a", "b"]


class KnownModel:
    """A stand-in encoder with a head whose outputs are known functions of the ids: per token
    ``table[id]`` (token classification; question answering: columns 0 and 1 are the start
    and end logits); per sequence the sum of ``table[id]`` over the real tokens (attention
    mask 1), so a wrong mask, order or padding shows in the logits. Records each batch."""

    def __init__(self, task, table, labels=None, problem_type=None, type_vocab_size=2,
                 max_length=64):
        labels = labels or []
        self.config = SimpleNamespace(task=task, id2label=dict(enumerate(labels)),
                                      label2id={v: k for k, v in enumerate(labels)},
                                      problem_type=problem_type,
                                      type_vocab_size=type_vocab_size)
        self.table = np.asarray(table, np.float32)
        self.max_length = max_length
        self.batches = []

    def __call__(self, ids, attention_mask=None, token_type_ids=None, return_dict=False):
        ids, mask = np.asarray(ids), np.asarray(attention_mask)
        self.batches.append((ids.shape, token_type_ids is not None))
        per = self.table[ids]
        if token_type_ids is not None:   # type 1 shifts a sequence's logits: pairs show
            per = per + 0.5 * np.asarray(token_type_ids)[..., None]
        if self.config.task == "sequence_classification":
            return SimpleNamespace(logits=(per * mask[..., None]).sum(axis=1))
        if self.config.task == "question_answering":
            return SimpleNamespace(start_logits=per[..., 0], end_logits=per[..., 1])
        return SimpleNamespace(logits=per)


def expected_logits(tok, text, table, pair=None):
    enc = tok.encode(text, pair)
    return table[enc.ids].sum(axis=0) + 0.5 * np.sum(enc.type_ids) * (pair is not None)


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer(VOCAB)


@pytest.fixture(scope="module")
def table():
    return np.random.default_rng(0).standard_normal((len(VOCAB), 3)).astype(np.float32)


def softmax(x):
    e = np.exp(np.asarray(x, np.float64) - np.max(x))
    return e / e.sum()


# ------------------------------------------------------------------ post-processing functions
@pytest.mark.parametrize("problem, n, function", [
    ("regression", 1, "none"), ("regression", 3, "none"),
    ("multi_label_classification", 4, "sigmoid"), (None, 1, "sigmoid"),
    ("single_label_classification", 3, "softmax"), (None, 2, "softmax")])
def test_default_function_follows_problem_type(problem, n, function):
    assert default_function(SimpleNamespace(problem_type=problem), n) == function


def test_apply_function_formulas():
    x = np.array([[2.0, -1.0, 0.5], [1000.0, 999.0, -1000.0]], np.float32)
    soft = apply_function(x, "softmax")
    np.testing.assert_allclose(soft[0], softmax(x[0]), rtol=1e-12)
    # the max is subtracted before exp: no overflow at logit 1000
    np.testing.assert_allclose(soft[1], [1 / (1 + np.exp(-1.0)), np.exp(-1.0) /
                                         (1 + np.exp(-1.0)), 0.0], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(apply_function(x[:1], "sigmoid"),
                               1 / (1 + np.exp(-x[:1].astype(np.float64))), rtol=1e-12)
    np.testing.assert_array_equal(apply_function(x, "none"), x)
    with pytest.raises(ValueError, match="function_to_apply"):
        apply_function(x, "relu")


def test_top_labels_order_and_ties():
    scores = np.array([0.2, 0.5, 0.2, 0.1])
    got = top_labels(scores, ["a", "b", "c", "d"], None)
    assert [d["label"] for d in got] == ["b", "a", "c", "d"]   # tie: lower index first
    assert top_labels(scores, ["a", "b", "c", "d"], 2) == [{"label": "b", "score": 0.5},
                                                           {"label": "a", "score": 0.2}]


# -------------------------------------------------------------------- pipeline, known logits
TEXTS = ["ada was born in london .", "paris", "the city , the city , where ?", "love ##lace",
         "a b a b a b a b a", "london"]


def test_known_logits_give_known_labels_in_input_order(tok, table):
    model = KnownModel("sequence_classification", table, ["neg", "neu", "pos"])
    got = text_classification(model, tok, TEXTS, top_k=None, batch_size=2)
    for text, result in zip(TEXTS, got):
        p = softmax(expected_logits(tok, text, table))
        order = np.argsort(-p, kind="stable")
        assert [r["label"] for r in result] == [["neg", "neu", "pos"][i] for i in order]
        # float32 logits summed by the model (<= 12 terms of |x| < 4: error ~1e-6) vs float64
        np.testing.assert_allclose([r["score"] for r in result], p[order], atol=1e-5)
    # sorted by length, padded within a batch of 2: widths are the pairs' longest
    lengths = sorted(len(tok.encode(t)) for t in TEXTS)
    assert [s[1] for s, _ in model.batches] == lengths[1::2]
    assert all(with_types for _, with_types in model.batches)


def test_top_k_default_and_single_text(tok, table):
    model = KnownModel("sequence_classification", table, ["neg", "neu", "pos"])
    one = text_classification(model, tok, "paris")
    assert isinstance(one, list) and len(one) == 1
    p = softmax(expected_logits(tok, "paris", table))
    assert one[0]["label"] == ["neg", "neu", "pos"][int(np.argmax(p))]
    assert text_classification(model, tok, ["paris"], top_k=2)[0][:1] == one
    assert text_classification(model, tok, []) == []


def test_multi_label_sigmoid_and_regression(tok, table):
    multi = KnownModel("sequence_classification", table, ["x", "y", "z"],
                       problem_type="multi_label_classification")
    got = text_classification(multi, tok, "ada was born", top_k=None)
    x = expected_logits(tok, "ada was born", table)
    want = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert sorted(r["score"] for r in got) == pytest.approx(sorted(want), abs=1e-6)
    assert sum(r["score"] for r in got) != pytest.approx(1.0, abs=1e-3)   # not a softmax
    reg = KnownModel("sequence_classification", table[:, :1], ["value"],
                     problem_type="regression")
    got = text_classification(reg, tok, "ada was born", top_k=None)
    assert got == [{"label": "value", "score": pytest.approx(float(x[0]), abs=1e-5)}]
    forced = text_classification(multi, tok, "ada was born", top_k=None,
                                 function_to_apply="softmax")
    assert sum(r["score"] for r in forced) == pytest.approx(1.0, abs=1e-12)


def test_text_pairs(tok, table):
    model = KnownModel("sequence_classification", table, ["neg", "neu", "pos"])
    got = text_classification(model, tok, [("ada was born", "in london"),
                                           {"text": "paris", "text_pair": "the city"}],
                              top_k=None)
    for result, (a, b) in zip(got, [("ada was born", "in london"), ("paris", "the city")]):
        p = softmax(expected_logits(tok, a, table, b))
        np.testing.assert_allclose(sorted(r["score"] for r in result), sorted(p), atol=1e-5)
    # a model without token types (RoBERTa, DistilBERT) never receives them
    no_types = KnownModel("sequence_classification", table, ["neg", "neu", "pos"],
                          type_vocab_size=1)
    text_classification(no_types, tok, [("ada was born", "in london")])
    assert no_types.batches[0][1] is False


def test_long_texts_are_cut_to_the_model(tok, table):
    model = KnownModel("sequence_classification", table, ["neg", "neu", "pos"], max_length=8)
    text_classification(model, tok, ["a " * 40, "b"])
    assert max(s[1] for s, _ in model.batches) == 8
    text_classification(model, tok, ["a " * 40], max_length=5)
    assert model.batches[-1][0] == (1, 5)


def test_errors(tok, table):
    model = KnownModel("sequence_classification", table, ["neg", "neu", "pos"])
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        text_classification(model, tok, ["a"], top_k=0)
    with pytest.raises(TypeError, match="top_k must be"):
        text_classification(model, tok, ["a"], top_k=1.5)
    with pytest.raises(ValueError, match="function_to_apply"):
        text_classification(model, tok, ["a"], function_to_apply="tanh")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        text_classification(model, tok, ["a", 3])
    with pytest.raises(TypeError, match="texts must be"):
        text_classification(model, tok, 3)
    with pytest.raises(ValueError, match="text_pair"):
        text_classification(model, tok, [{"premise": "a"}])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        text_classification(model, tok, ["a"], batch_size=0)
    with pytest.raises(ValueError, match="max_length must be >= 2"):
        text_classification(model, tok, ["a"], max_length=1)
    with pytest.raises(ValueError, match="no sequence_classification head"):
        TextClassifier(model=KnownModel("token_classification", table), tokenizer=tok)
    with pytest.raises(ValueError, match="give a model directory"):
        TextClassifier(model=model)


# ------------------------------------------------ random checkpoints of each family vs HF
FAMILIES = ["bert", "roberta", "xlm-roberta", "distilbert", "electra"]
LABELS3 = {0: "negative", 1: "neutral", 2: "positive"}
CORPUS = ["the cat sat on the mat.", "This movie was great, I love it!",
          "Paris is the capital of France, and Berlin of Germany.", "who lives in paris?",
          "a small bird", "John Smith works at Acme Corp in New York."]


def write_family(tmp_path_factory, family, task, **options):
    """A random checkpoint directory of ``family`` with ``task``'s head and its tokenizer."""
    from fastattn.testing import write_encoder_checkpoint
    if family in ("roberta", "xlm-roberta"):
        pytest.importorskip("tokenizers")
    directory = tmp_path_factory.mktemp(f"{task}-{family}")
    write_encoder_checkpoint(directory, family, task, **options)
    return directory


def hf_tokenizer(family, directory):
    """transformers' tokenizer of a test checkpoint directory (the fast, Rust one)."""
    transformers = pytest.importorskip("transformers")
    if family in ("roberta", "xlm-roberta"):
        return transformers.AutoTokenizer.from_pretrained(str(directory))
    cls = {"bert": transformers.BertTokenizer, "electra": transformers.ElectraTokenizer,
           "distilbert": transformers.DistilBertTokenizer}[family]
    import json
    config = json.loads((directory / "tokenizer_config.json").read_text())
    return cls(vocab=str(directory / "vocab.txt"), model_max_length=config["model_max_length"])


_HF_PIPELINES = {}


def hf_pipeline(task, family, directory):
    """transformers' pipeline ``task`` over the checkpoint, built once per directory
    (skipped without transformers / torch); options go to its calls."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    key = (task, str(directory))
    if key not in _HF_PIPELINES:
        auto = {"text-classification": transformers.AutoModelForSequenceClassification,
                "token-classification": transformers.AutoModelForTokenClassification}[task]
        model = auto.from_pretrained(str(directory)).eval()
        _HF_PIPELINES[key] = transformers.pipeline(
            task, model=model, tokenizer=hf_tokenizer(family, directory), device="cpu")
    return _HF_PIPELINES[key]


@pytest.fixture(scope="module", params=FAMILIES)
def family_dir(request, tmp_path_factory):
    return request.param, write_family(tmp_path_factory, request.param,
                                       "sequence_classification", id2label=LABELS3)


def test_text_classifier_equals_transformers_pipeline(family_dir):
    family, directory = family_dir
    ours = TextClassifier.from_pretrained(directory)(CORPUS, top_k=None, batch_size=4)
    theirs = hf_pipeline("text-classification", family, directory)(CORPUS, top_k=None)
    for mine, want in zip(ours, theirs):
        assert [r["label"] for r in mine] == [r["label"] for r in want]
        # float32 forwards of a 2-layer O(1) model: logits agree to ~1e-6 relative, so
        # probabilities in [0, 1] to well under 1e-5
        np.testing.assert_allclose([r["score"] for r in mine], [r["score"] for r in want],
                                   atol=1e-5)


@pytest.mark.parametrize("problem", ["multi_label_classification", "regression"])
def test_problem_types_equal_transformers_pipeline(tmp_path_factory, problem):
    labels = {0: "value"} if problem == "regression" else LABELS3
    directory = write_family(tmp_path_factory, "bert", "sequence_classification",
                             id2label=labels, problem_type=problem)
    ours = TextClassifier.from_pretrained(directory)(CORPUS, top_k=None)
    theirs = hf_pipeline("text-classification", "bert", directory)(CORPUS, top_k=None)
    for mine, want in zip(ours, theirs):
        assert [r["label"] for r in mine] == [r["label"] for r in want]
        # regression scores are raw logits of size O(1): the same float32 bound
        np.testing.assert_allclose([r["score"] for r in mine], [r["score"] for r in want],
                                   atol=1e-5)


def test_text_pairs_equal_transformers_pipeline(tmp_path_factory):
    directory = write_family(tmp_path_factory, "bert", "sequence_classification",
                             id2label=LABELS3)
    pairs = [("the cat sat on the mat.", "a small bird"), ("who lives in paris?", "john")]
    ours = TextClassifier.from_pretrained(directory)(pairs, top_k=None)
    pipe = hf_pipeline("text-classification", "bert", directory)
    for (a, b), mine in zip(pairs, ours):
        want = pipe({"text": a, "text_pair": b}, top_k=None)
        assert [r["label"] for r in mine] == [r["label"] for r in want]
        np.testing.assert_allclose([r["score"] for r in mine], [r["score"] for r in want],
                                   atol=1e-5)


def test_classifier_refuses_other_heads(tmp_path_factory):
    directory = write_family(tmp_path_factory, "bert", "token_classification")
    with pytest.raises(ValueError, match="no sequence_classification head"):
        TextClassifier.from_pretrained(directory)
