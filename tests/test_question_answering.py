"""fastattn.pipelines.question_answering: the span search against a brute-force loop, answers
from hand-set start / end logits (word alignment, max_answer_len, question tokens excluded,
the empty answer), doc-stride windows over long contexts, batching and errors; then
QuestionAnswerer on random checkpoints of each family against transformers' QA models'
logits decoded by the same brute force (transformers 5 has no question-answering pipeline;
skipped without transformers)."""
import itertools

import numpy as np
import pytest

from fastattn.pipelines import QuestionAnswerer, question_answering
from fastattn.pipelines.question_answering import best_spans, windows
from fastattn.tokenizers import WordPieceTokenizer
from test_text_classification import VOCAB, KnownModel

CONTEXT = "Ada Lovelace was born in London."
QUESTION = "where was ada born ?"


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer(VOCAB)


def qa_model(**logits):
    """Start / end logits per vocabulary token (0 for those not named)."""
    table = np.zeros((len(VOCAB), 2), np.float32)
    for token, (s, e) in logits.items():
        table[VOCAB.index(token.replace("_", "#"))] = (s, e)
    return KnownModel("question_answering", table)


def brute_force(start_logits, end_logits, context, cls, max_answer_len):
    """Every allowed (s, e) scored with a plain loop, best first."""
    allowed = [i for i in range(len(context)) if context[i] or i in cls]

    def probs(x):
        e = {i: np.exp(float(x[i]) - max(float(x[j]) for j in allowed)) for i in allowed}
        total = sum(e.values())
        return {i: v / total for i, v in e.items()}

    ps, pe = probs(start_logits), probs(end_logits)
    spans = [(ps[s] * pe[e], s, e) for s, e in itertools.product(range(len(context)), repeat=2)
             if context[s] and context[e] and s <= e < s + max_answer_len]
    return sorted(spans, key=lambda t: -t[0])


@pytest.mark.parametrize("max_answer_len", [1, 3, 30])
def test_best_spans_equal_brute_force(max_answer_len):
    rng = np.random.default_rng(max_answer_len)
    for _ in range(5):
        n = 12
        start, end = rng.standard_normal(n) * 3, rng.standard_normal(n) * 3
        context = np.zeros(n, bool)
        context[4:11] = True
        got, null = best_spans(start, end, context, [0], max_answer_len)
        want = brute_force(start, end, context, [0], max_answer_len)
        assert [(s, e) for _, s, e in got] == [(s, e) for _, s, e in want]
        # float64 both ways: the same products up to rounding
        np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], rtol=1e-12)
        allowed = np.r_[0, np.arange(4, 11)]
        ps = np.exp(start[allowed] - start[allowed].max())
        pe = np.exp(end[allowed] - end[allowed].max())
        assert null == pytest.approx(ps[0] / ps.sum() * pe[0] / pe.sum(), rel=1e-12)


def test_answer_and_score(tok):
    model = qa_model(london=(6.0, 5.0), born=(2.0, 0.0))
    got = question_answering(model, tok, QUESTION, CONTEXT)
    enc = tok.encode(QUESTION, CONTEXT)
    ctx = np.array([s == 1 for s in enc.sequence_ids])
    shift = 0.5 * np.array(enc.type_ids)     # KnownModel's token-type term
    start = model.table[enc.ids, 0] + shift
    end = model.table[enc.ids, 1] + shift
    score, s, e = brute_force(start, end, ctx, [0], 15)[0]
    assert enc.tokens[s] == enc.tokens[e] == "london"
    assert got == {"score": pytest.approx(score, rel=1e-6), "start": 25, "end": 31,
                   "answer": "London"}
    # "born" is also a question token: its logits there must not count
    two = question_answering(model, tok, QUESTION, CONTEXT, top_k=2)
    assert [a["answer"] for a in two] == ["London", "born in London"]


def test_question_tokens_are_never_the_answer(tok):
    model = qa_model(where=(9.0, 9.0), london=(1.0, 1.0))
    assert question_answering(model, tok, QUESTION, CONTEXT)["answer"] == "London"


def test_answers_are_widened_to_words(tok):
    model = qa_model(__lace=(5.0, 5.0))   # "##lace" ("Lovelace" = love ##lace)
    assert question_answering(model, tok, QUESTION, CONTEXT)["answer"] == "Lovelace"
    raw = question_answering(model, tok, QUESTION, CONTEXT, align_to_words=False)
    assert (raw["answer"], raw["start"], raw["end"]) == ("lace", 8, 12)


def test_max_answer_len(tok):
    model = qa_model(ada=(5.0, 0.0), london=(0.0, 5.0))
    # ada .. london is 7 tokens
    assert question_answering(model, tok, QUESTION, CONTEXT)["answer"] == (
        "Ada Lovelace was born in London")
    short = question_answering(model, tok, QUESTION, CONTEXT, max_answer_len=6)
    assert short["answer"] != "Ada Lovelace was born in London"
    assert len(tok.encode(short["answer"], add_special_tokens=False).ids) <= 6


def test_impossible_answer(tok):
    model = qa_model(**{"[CLS]": (8.0, 8.0), "london": (1.0, 1.0)})
    got = question_answering(model, tok, QUESTION, CONTEXT, top_k=2,
                             handle_impossible_answer=True)
    assert got[0]["answer"] == "" and (got[0]["start"], got[0]["end"]) == (0, 0)
    assert got[1]["answer"] == "London"
    assert question_answering(model, tok, QUESTION, CONTEXT)["answer"] == "London"


def test_windows_cover_a_long_context_with_overlap(tok):
    context = " ".join(["the city ,"] * 20) + " " + CONTEXT   # 60 + 8 context tokens
    wins = windows(tok, "where ?", context, max_seq_len=20, doc_stride=5)
    # [CLS] where ? [SEP] ... [SEP]: 5 fixed tokens, 15 context tokens a window, step 10
    enc = tok.encode("where ?", context)
    ctx = [i for i, s in enumerate(enc.sequence_ids) if s == 1]
    assert len(ctx) == 68
    starts = list(range(0, 68, 10))[:6]   # 0, 10, ..., 50; 50 + 15 = 65 < 68 -> one more
    assert len(wins) == 7 and all(len(w) <= 20 for w in wins)
    for w, s in zip(wins, starts + [60]):
        part = ctx[s:s + 15]
        assert w.ids == enc.ids[:4] + [enc.ids[i] for i in part] + [enc.ids[-1]]
        assert [sp for sp in w.spans if sp] == [tuple(enc.offsets[i]) for i in part]
        assert w.cls == [0]
    model = qa_model(london=(5.0, 5.0))
    got = question_answering(model, tok, "where ?", context, max_seq_len=20, doc_stride=5,
                             top_k=3)
    assert got[0]["answer"] == "London" and context[got[0]["start"]:got[0]["end"]] == "London"
    # a span seen by two overlapping windows is one answer
    assert len({(a["start"], a["end"]) for a in got}) == len(got)
    whole = question_answering(model, tok, "where ?", context, top_k=3)   # one window
    assert whole[0]["start"] == got[0]["start"]
    assert len(model.batches) == 2 and model.batches[0][0] == (7, 20)


def test_lists_of_questions(tok):
    model = qa_model(london=(3.0, 3.0), paris=(4.0, 4.0))
    pairs = [(QUESTION, CONTEXT), ("where ?", "the city of paris ."), ("where ?", CONTEXT)]
    got = question_answering(model, tok, [q for q, _ in pairs], [c for _, c in pairs],
                             batch_size=2)
    assert got == [question_answering(model, tok, q, c) for q, c in pairs]
    assert [g["answer"] for g in got] == ["London", "paris", "London"]


def test_errors(tok):
    model = qa_model(london=(1.0, 1.0))
    with pytest.raises(ValueError, match="context is empty"):
        question_answering(model, tok, QUESTION, "  ")
    with pytest.raises(ValueError, match="question is empty"):
        question_answering(model, tok, "", CONTEXT)
    with pytest.raises(TypeError, match="both be str or both lists"):
        question_answering(model, tok, QUESTION, [CONTEXT])
    with pytest.raises(ValueError, match="2 questions and 1 contexts"):
        question_answering(model, tok, [QUESTION, QUESTION], [CONTEXT])
    with pytest.raises(TypeError, match=r"context\[0\] must be a str"):
        question_answering(model, tok, [QUESTION], [None])
    with pytest.raises(ValueError, match="max_answer_len must be >= 1"):
        question_answering(model, tok, QUESTION, CONTEXT, max_answer_len=0)
    with pytest.raises(ValueError, match="max_seq_len must be an int in"):
        question_answering(model, tok, QUESTION, CONTEXT, max_seq_len=65)
    with pytest.raises(ValueError, match="leaves none for the context"):
        question_answering(model, tok, QUESTION, CONTEXT, max_seq_len=8)
    with pytest.raises(ValueError, match=r"stride \(4\) must be less than the 3 context"):
        question_answering(model, tok, QUESTION, CONTEXT, max_seq_len=11, doc_stride=4)
    with pytest.raises(ValueError, match="no question_answering head"):
        QuestionAnswerer(model=KnownModel("token_classification", np.zeros((21, 2))),
                         tokenizer=tok)


# ------------------------------------------------ random checkpoints of each family vs HF
from test_text_classification import FAMILIES, hf_tokenizer, write_family  # noqa: E402

QA_CASES = [("who lives in paris?", "John Smith works at Acme Corp in New York."),
            ("where is the cat?", "the cat sat on the mat. Hello world!"),
            ("what is the capital of France?",
             "Paris is the capital of France, and Berlin of Germany.")]


@pytest.fixture(scope="module", params=FAMILIES)
def qa_dir(request, tmp_path_factory):
    # 128 positions: RoBERTa's 300-token byte-level test vocabulary spends many tokens on a
    # question and context, which must fit one window here
    return request.param, write_family(tmp_path_factory, request.param, "question_answering",
                                       max_length=128)


def hf_answers(family, directory, question, context, top_k, max_answer_len=15):
    """transformers' QA model on transformers' tokenizer, decoded as transformers' (4.x)
    question-answering pipeline did: softmax over context tokens and [CLS], the best spans
    by p_s * p_e (brute force), widened to the words (its word_ids) of the start and end
    tokens."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(str(directory)).eval()
    tok = hf_tokenizer(family, directory)
    enc = tok(question, context, return_tensors="pt", return_offsets_mapping=True)
    offsets = enc.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        out = model(**enc)
    seq, words = enc.sequence_ids(0), enc.word_ids(0)
    ctx = np.array([s == 1 for s in seq])
    spans = brute_force(out.start_logits[0].numpy(), out.end_logits[0].numpy(), ctx, [0],
                        max_answer_len)
    found = []
    for score, s, e in spans:
        a = min(offsets[i][0] for i in range(len(seq)) if seq[i] == 1 and words[i] == words[s])
        b = max(offsets[i][1] for i in range(len(seq)) if seq[i] == 1 and words[i] == words[e])
        if all((a, b) != (f["start"], f["end"]) for f in found):
            found.append({"score": score, "start": a, "end": b, "answer": context[a:b]})
        if len(found) == top_k:
            break
    return found


def test_question_answerer_equals_transformers(qa_dir):
    family, directory = qa_dir
    qa = QuestionAnswerer.from_pretrained(directory)
    ours = qa([q for q, _ in QA_CASES], [c for _, c in QA_CASES], top_k=3)
    for (question, context), mine in zip(QA_CASES, ours):
        want = hf_answers(family, directory, question, context, 3)
        assert [(a["start"], a["end"], a["answer"]) for a in mine] == [
            (a["start"], a["end"], a["answer"]) for a in want]
        # products of two probabilities from float32 logits of a 2-layer O(1) model
        np.testing.assert_allclose([a["score"] for a in mine], [a["score"] for a in want],
                                   atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta", "distilbert"])
def test_windows_equal_tokenizers_overflow(tmp_path_factory, family):
    directory = write_family(tmp_path_factory, family, "question_answering")
    from fastattn.tokenizers import load_tokenizer
    ours_tok, theirs_tok = load_tokenizer(directory), hf_tokenizer(family, directory)
    question = "who lives in paris?"
    context = " ".join(CORPUS_LONG)
    for max_len, stride in ((24, 4), (30, 10), (40, 0)):
        want = theirs_tok(question, context, truncation="only_second", max_length=max_len,
                          stride=stride, return_overflowing_tokens=True)["input_ids"]
        got = windows(ours_tok, question, context, max_len, stride)
        assert len(want) > 1
        assert [w.ids for w in got] == [list(w) for w in want]


CORPUS_LONG = ["the cat sat on the mat.", "Hello world! The dogs are running in the park.",
               "Paris is the capital of France, and Berlin of Germany.",
               "John Smith works at Acme Corp in New York.",
               "a small bird flies over the big red house"]
