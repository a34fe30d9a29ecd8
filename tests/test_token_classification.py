"""fastattn.pipelines.token_classification: entities, character offsets and each aggregation
("none", "simple", "first", "average", "max") from hand-set per-token probabilities; the
sub-word rules; [UNK] words; batching and errors; then TokenClassifier on random checkpoints
of each family against transformers' token-classification pipeline on the same weights
(skipped without transformers)."""
from types import SimpleNamespace

import numpy as np
import pytest

from fastattn.pipelines import TokenClassifier, token_classification
from fastattn.pipelines.token_classification import merge_overlapping, pre_entities, split_tag
from fastattn.tokenizers import WordPieceTokenizer
from test_text_classification import VOCAB, KnownModel

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXT = "Ada Lovelace was born in London."
#       0   4   8   12  16   21 24 25   31


def probs_table(rows: dict) -> np.ndarray:
    """Logits log(p) per vocabulary id (softmax gives p back); "O" with p 0.96 elsewhere."""
    p = np.full((len(VOCAB), len(LABELS)), 0.01)
    p[:, 0] = 0.96
    for token, row in rows.items():
        p[VOCAB.index(token)] = row
    assert np.allclose(p.sum(axis=1), 1)
    return np.log(p)


# love: B-LOC 0.49 just above I-PER 0.48; ##lace: I-LOC 0.51 just above I-PER 0.45.
# first -> B-LOC (love's), max -> I-LOC (0.51 is the largest single probability),
# average -> I-PER ((0.48 + 0.45) / 2 = 0.465 beats (0.49 + 0.02) / 2 and (0.01 + 0.51) / 2).
ROWS = {"ada": [0.02, 0.9, 0.04, 0.02, 0.02], "love": [0.01, 0.01, 0.48, 0.49, 0.01],
        "##lace": [0.02, 0.01, 0.45, 0.01, 0.51], "london": [0.02, 0.02, 0.02, 0.9, 0.04],
        "[UNK]": [0.05, 0.8, 0.05, 0.05, 0.05]}


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer(VOCAB)


@pytest.fixture(scope="module")
def model():
    return KnownModel("token_classification", probs_table(ROWS), LABELS)


def ent(group, score, word, start, end):
    return {"entity_group": group, "score": pytest.approx(score, abs=1e-6), "word": word,
            "start": start, "end": end}


def test_none_lists_every_labelled_token(tok, model):
    got = token_classification(model, tok, TEXT, aggregation="none")
    # probabilities from float32 logits log(p): relative error ~1e-7
    assert got == [
        {"entity": "B-PER", "score": pytest.approx(0.9, abs=1e-6), "index": 1, "word": "ada",
         "start": 0, "end": 3},
        {"entity": "B-LOC", "score": pytest.approx(0.49, abs=1e-6), "index": 2,
         "word": "love", "start": 4, "end": 8},
        {"entity": "I-LOC", "score": pytest.approx(0.51, abs=1e-6), "index": 3,
         "word": "##lace", "start": 8, "end": 12},
        {"entity": "B-LOC", "score": pytest.approx(0.9, abs=1e-6), "index": 7,
         "word": "london", "start": 25, "end": 31}]
    assert all(TEXT[e["start"]:e["end"]].lower() == e["word"].lstrip("#") for e in got)


def test_simple_groups_adjacent_tags(tok, model):
    # love (B-LOC) and ##lace (I-LOC) form one LOC entity; ada (B-PER) its own.
    assert token_classification(model, tok, TEXT) == [
        ent("PER", 0.9, "ada", 0, 3), ent("LOC", (0.49 + 0.51) / 2, "lovelace", 4, 12),
        ent("LOC", 0.9, "london", 25, 31)]


def test_word_aggregations_force_one_label_per_word(tok, model):
    first = token_classification(model, tok, TEXT, aggregation="first")
    assert first == [ent("PER", 0.9, "ada", 0, 3), ent("LOC", 0.49, "lovelace", 4, 12),
                     ent("LOC", 0.9, "london", 25, 31)]
    biggest = token_classification(model, tok, TEXT, aggregation="max")
    assert biggest == [ent("PER", 0.9, "ada", 0, 3), ent("LOC", 0.51, "lovelace", 4, 12),
                       ent("LOC", 0.9, "london", 25, 31)]
    # I-PER continues ada's PER: one entity, the mean of the words' scores
    mean = token_classification(model, tok, TEXT, aggregation="average")
    assert mean == [ent("PER", (0.9 + 0.465) / 2, "ada lovelace", 0, 12),
                    ent("LOC", 0.9, "london", 25, 31)]


def test_b_label_starts_a_new_entity_and_ignore_labels(tok):
    rows = dict(ROWS, london=[0.02, 0.02, 0.02, 0.9, 0.04], paris=[0.02, 0.02, 0.02, 0.9, 0.04])
    model = KnownModel("token_classification", probs_table(rows), LABELS)
    got = token_classification(model, tok, "london paris", aggregation="simple")
    assert [e["word"] for e in got] == ["london", "paris"]   # B-LOC B-LOC: two entities
    everything = token_classification(model, tok, "ada was", ignore_labels=())
    assert [(e["entity_group"], e["word"]) for e in everything] == [("PER", "ada"),
                                                                    ("O", "was")]
    assert token_classification(model, tok, "ada was", ignore_labels=["PER", "O"]) == []


def test_unknown_word_shows_its_text(tok, model):
    text = "Zorblax was born in London"
    got = token_classification(model, tok, text)
    assert got[0] == ent("PER", 0.8, "Zorblax", 0, 7)
    none = token_classification(model, tok, text, aggregation="none")
    assert none[0]["word"] == "Zorblax" and none[0]["index"] == 1


def test_subword_rules(tok):
    enc = tok.encode(TEXT)
    scores = np.zeros((len(enc.ids), len(LABELS)))
    wordpiece = pre_entities(tok, TEXT, enc, scores)
    assert [e["is_subword"] for e in wordpiece] == [False, False, True, False, False, False,
                                                    False, False]
    # without a WordPiece prefix: "not after a space" (transformers' heuristic; it also
    # glues the "." to "london", the heuristic's known failure on punctuation)
    plain = SimpleNamespace(unk_token_id=tok.unk_token_id)
    assert [e["is_subword"] for e in pre_entities(plain, TEXT, enc, scores)] == [
        False, False, True, False, False, False, False, True]


def test_split_tag():
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("I-LOC") == ("I", "LOC")
    assert split_tag("MISC") == ("I", "MISC")


def test_batches_keep_input_order(tok, model):
    texts = [TEXT, "london", "ada was born in london , the city of paris .", "was"]
    together = token_classification(model, tok, texts, batch_size=2)
    assert together == [token_classification(model, tok, t) for t in texts]
    assert together[3] == []
    assert token_classification(model, tok, []) == []


def test_tokens_past_max_length_are_dropped(tok, model):
    got = token_classification(model, tok, TEXT, max_length=4)   # [CLS] ada love [SEP]
    assert got == [ent("PER", 0.9, "ada", 0, 3), ent("LOC", 0.49, "love", 4, 8)]


def test_stride_reads_a_long_text_in_windows(tok):
    text = " ".join(["Ada Lovelace was born in London."] * 6)     # 48 text tokens
    short = KnownModel("token_classification", probs_table(ROWS), LABELS, max_length=12)
    whole = KnownModel("token_classification", probs_table(ROWS), LABELS, max_length=64)
    for aggregation in ("simple", "first", "average", "max"):
        want = token_classification(whole, tok, text, aggregation=aggregation)
        assert len(want) == (12 if aggregation == "average" else 18)   # 6 x (2 or 3)
        # logits depend on the token alone: each window finds the entities it holds; with
        # windows overlapping by >= 2 tokens every entity (<= 3 tokens) lies whole in one,
        # and the merge keeps it over the cut pieces of its neighbours
        for stride in (2, 3, 9):
            got = token_classification(short, tok, text, aggregation=aggregation,
                                       stride=stride)
            assert got == want
        # stride 0: a word cut between two windows stays cut (as transformers')
        cut = token_classification(short, tok, text, aggregation=aggregation, stride=0)
        assert cut != want and {e["start"] for e in cut} >= {e["start"] for e in want}
        # without stride: cut at 12 tokens, what the text's first 10 tokens give
        assert token_classification(short, tok, text, aggregation=aggregation) == (
            token_classification(whole, tok, text[:41], aggregation=aggregation))
    assert token_classification(short, tok, ["", "ada"], stride=2) == [
        [], [ent("PER", 0.9, "ada", 0, 3)]]


def test_merge_overlapping():
    def e(start, end, score):
        return {"start": start, "end": end, "score": score}
    merged = merge_overlapping([e(10, 14, 0.5), e(0, 4, 0.9), e(2, 8, 0.1), e(10, 14, 0.6),
                                e(20, 22, 0.3)])
    # (2, 8) is longer than (0, 4); of the equal (10, 14) the higher score
    assert merged == [e(2, 8, 0.1), e(10, 14, 0.6), e(20, 22, 0.3)]


def test_errors(tok, model):
    with pytest.raises(ValueError, match="aggregation must be one of"):
        token_classification(model, tok, TEXT, aggregation="longest")
    with pytest.raises(TypeError, match=r"texts\[0\] must be a str"):
        token_classification(model, tok, [b"bytes"])
    with pytest.raises(TypeError, match="ignore_labels"):
        token_classification(model, tok, TEXT, ignore_labels=[0])
    with pytest.raises(ValueError, match="no token_classification head"):
        TokenClassifier(model=KnownModel("sequence_classification", np.zeros((21, 2))),
                        tokenizer=tok)
    with pytest.raises(ValueError, match="aggregation must be one of"):
        TokenClassifier(model=model, tokenizer=tok, aggregation="all")
    with pytest.raises(ValueError, match="stride needs an aggregation"):
        token_classification(model, tok, TEXT, aggregation="none", stride=2)
    with pytest.raises(ValueError, match=r"stride \(10\) must be less than the 10 text"):
        token_classification(model, tok, TEXT * 3, max_length=12, stride=10)
    with pytest.raises(ValueError, match="stride must be >= 0"):
        token_classification(model, tok, TEXT, stride=-1)


# ------------------------------------------------ random checkpoints of each family vs HF
from test_text_classification import FAMILIES, hf_pipeline, write_family  # noqa: E402

NER_TEXTS = ["John Smith works at Acme Corp in New York.",
             "Paris is the capital of France, and Berlin of Germany.",
             "Hello world! The dogs are running in the park.", "who lives in paris?"]


@pytest.fixture(scope="module", params=FAMILIES)
def ner_dir(request, tmp_path_factory):
    return request.param, write_family(tmp_path_factory, request.param, "token_classification",
                                       id2label=dict(enumerate(LABELS)))


def comparable(entities):
    """Entities with scores as floats (transformers gives numpy float32) and without keys
    order."""
    return [dict(e, score=float(e["score"])) for e in entities]


@pytest.mark.parametrize("aggregation", ["none", "simple", "first", "average", "max"])
def test_token_classifier_equals_transformers_pipeline(ner_dir, aggregation):
    family, directory = ner_dir
    ours = TokenClassifier.from_pretrained(directory)(NER_TEXTS, aggregation=aggregation,
                                                      batch_size=3)
    pipe = hf_pipeline("token-classification", family, directory)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # its "fallback heuristic" warning (BPE, Unigram)
        theirs = [pipe(t, aggregation_strategy=aggregation) for t in NER_TEXTS]
    assert sum(len(e) for e in ours) > 0
    for mine, want in zip(ours, theirs):
        want = comparable(want)
        assert [{k: v for k, v in e.items() if k != "score"} for e in mine] == [
            {k: v for k, v in e.items() if k != "score"} for e in want]
        # probabilities from float32 logits of a 2-layer O(1) model: well under 1e-5
        np.testing.assert_allclose([e["score"] for e in mine], [e["score"] for e in want],
                                   atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta"])
@pytest.mark.parametrize("aggregation", ["simple", "max"])
def test_stride_equals_transformers_pipeline(tmp_path_factory, family, aggregation):
    directory = write_family(tmp_path_factory, family, "token_classification",
                             id2label=dict(enumerate(LABELS)), max_length=24)
    text = " ".join(NER_TEXTS * 2)
    ours = TokenClassifier.from_pretrained(directory)(text, aggregation=aggregation, stride=6)
    pipe = hf_pipeline("token-classification", family, directory)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = comparable(pipe(text, aggregation_strategy=aggregation, stride=6))
    assert ours and max(e["end"] for e in ours) > len(text) // 2   # past the first window
    assert [{k: v for k, v in e.items() if k != "score"} for e in ours] == [
        {k: v for k, v in e.items() if k != "score"} for e in want]
    np.testing.assert_allclose([e["score"] for e in ours], [e["score"] for e in want],
                               atol=1e-5)
