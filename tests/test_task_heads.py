"""Task heads of the BERT-family encoders: sequence classification (BERT's pooler + classifier,
RoBERTa / XLM-R's dense-tanh-out, ELECTRA's dense-gelu-out, DistilBERT's pre_classifier-ReLU-
classifier), token classification, extractive question answering, ELECTRA's discriminator and
the masked-LM heads of RoBERTa and DistilBERT, loaded from checkpoints written by
fastattn.testing (no torch) and by transformers' save_pretrained; against the NumPy reference
(fastattn.reference.models.bert.encoder_head) and transformers' logits; labels
(id2label / label2id / problem_type), task detection, and refusals.

Tolerances. Hidden states are within HIDDEN_ATOL = 2e-5 of the float64 forward (derivation
in tests/test_encoder_families.py). A head is one or two dense layers over them: a logit
W x + b, each row of W ~ N(0, 1/hidden) of norm ~1, moves by at most ||row|| ||dx|| <=
sqrt(hidden) HIDDEN_ATOL ~ 1.1e-4 (hidden 32; every component off by the bound at once),
plus its own float32 rounding, sqrt(K) u |terms| ~ 1e-6; a first dense layer (spectral norm
of a random square N(0, 1/h) matrix ~ 2) then tanh / GELU / ReLU (slopes <= 1.13) multiplies
the bound by <= 2.3, so LOGIT_ATOL = 3 sqrt(hidden) HIDDEN_ATOL = 3.4e-4 covers every head
(measured ~1e-6). transformers' float32 logits are within the same bound of the float64
ones: ours and theirs differ by at most 2 LOGIT_ATOL. Masked-LM logits (vocab rows of the
word embeddings, N(0, 1), norm ~ sqrt(hidden)) carry relative errors like the hidden states':
2e-5 * max |logit| as tests/test_bert.py.
"""
import numpy as np
import pytest

import fastattn
from fastattn.models.bert import BertConfig, BertModel, BertOutput
from fastattn.reference import models as ref
from fastattn.testing import encoder_config, write_encoder_checkpoint

HIDDEN = 32
HIDDEN_ATOL = 2e-5
LOGIT_ATOL = 3 * HIDDEN ** 0.5 * HIDDEN_ATOL

# (family, task) pairs transformers has classes for
CASES = [(f, t) for f in ("bert", "roberta", "xlm-roberta", "distilbert", "electra")
         for t in ("sequence_classification", "token_classification", "question_answering")]
CASES += [("electra", "replaced_token_detection"), ("roberta", "masked_lm"),
          ("distilbert", "masked_lm"), ("bert", "masked_lm")]


def tensors_of(model_dir, dtype=np.float64):
    from fastattn.io.checkpoint import Checkpoint
    with Checkpoint(model_dir) as c:
        return {k: np.asarray(c[k], dtype) for k in c.keys()}


def batch(rng, config, lengths, width):
    pad = config["pad_token_id"]
    ids = rng.integers(5, config["vocab_size"], (len(lengths), width))
    mask = np.arange(width)[None] < np.array(lengths)[:, None]
    ids[~mask] = pad
    return ids, mask.astype(np.int64)


def reference_outputs(w64, cfg, ids, mask, task):
    hidden = ref.bert(w64, cfg, ids, mask)
    if task == "masked_lm":
        return ref.bert_mlm_logits(w64, cfg, hidden)
    return ref.encoder_head(w64, cfg, hidden, task)


def our_outputs(model, ids, mask, task):
    out = model(ids, mask, return_dict=True)
    if task == "masked_lm":
        return model.mlm_logits(out.last_hidden_state)
    if task == "question_answering":
        return out.start_logits, out.end_logits
    return out.logits


def assert_close(got, want, real, atol, per_token):
    for g, w in (zip(got, want) if isinstance(got, tuple) else [(got, want)]):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == np.float32
        # padded positions' own outputs are meaningless (tests/test_bert.py)
        np.testing.assert_allclose(g[real] if per_token else g, w[real] if per_token else w,
                                   rtol=0, atol=atol)


@pytest.mark.parametrize("family,task", CASES)
def test_head_matches_reference(family, task, rng, tmp_path):
    config = write_encoder_checkpoint(tmp_path, family, task, tokenizer=False, vocab_size=50,
                                      num_labels=3, seed=hash(family + task) % 1000)
    model = fastattn.load(tmp_path)
    assert model.task == task and model.config.task == task
    ids, mask = batch(rng, config, [9, 5, 2], 9)
    got = our_outputs(model, ids, mask, task)
    want = reference_outputs(tensors_of(tmp_path), model.config, ids, mask, task)
    if task == "masked_lm":
        atol = 2e-5 * np.abs(want).max()
    else:
        atol = LOGIT_ATOL
    assert_close(got, want, mask.astype(bool), atol, task != "sequence_classification")
    if task == "sequence_classification":
        assert got.shape == (3, 3)
    elif task == "token_classification":
        assert got.shape == (3, 9, 3)


def test_output_is_a_bert_output_with_the_heads_fields(tmp_path, rng):
    """With a classification head a call returns a BertOutput (logits needs one); fields of
    a head the model lacks raise KeyError by name, as transformers' ModelOutput."""
    config = write_encoder_checkpoint(tmp_path, "bert", "question_answering", tokenizer=False,
                                      vocab_size=50)
    model = fastattn.load(tmp_path)
    ids, mask = batch(rng, config, [6, 4], 6)
    out = model(ids, mask)
    assert isinstance(out, BertOutput)
    assert out.logits is None and out["start_logits"] is out.start_logits
    with pytest.raises(KeyError):
        out["logits"]
    np.testing.assert_array_equal(out.end_logits, model.head_logits(out.last_hidden_state)[1])
    bare = write_encoder_checkpoint(tmp_path / "bare", "bert", tokenizer=False, vocab_size=50)
    assert isinstance(fastattn.load(tmp_path / "bare")(batch(rng, bare, [3], 3)[0]),
                      np.ndarray)
    with pytest.raises(ValueError, match="no classification"):
        fastattn.load(tmp_path / "bare").head_logits(np.zeros((1, 3, HIDDEN), np.float32))


def test_labels_and_problem_type_are_honoured(tmp_path):
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    write_encoder_checkpoint(tmp_path, "roberta", "sequence_classification", tokenizer=False,
                             vocab_size=50, id2label=labels,
                             problem_type="multi_label_classification")
    c = fastattn.load(tmp_path).config
    assert c.id2label == labels and c.num_labels == 3
    assert c.label2id == {"negative": 0, "neutral": 1, "positive": 2}
    assert c.problem_type == "multi_label_classification"
    # transformers may write "label2id": null; no id2label: LABEL_i as transformers names them
    raw = dict(encoder_config("bert", "sequence_classification", vocab_size=50),
               label2id=None, num_labels=4)
    del raw["id2label"]
    c = BertConfig.from_dict(raw)
    assert c.id2label == {i: f"LABEL_{i}" for i in range(4)}
    assert c.label2id == {f"LABEL_{i}": i for i in range(4)}
    assert c.problem_type is None


def test_label_config_errors():
    base = encoder_config("bert", "sequence_classification", vocab_size=50)
    with pytest.raises(ValueError, match="problem_type must be null or one of"):
        BertConfig.from_dict({**base, "problem_type": "ranking"})
    with pytest.raises(ValueError, match="num_labels \\(5\\) differs from the 3 entries"):
        BertConfig.from_dict({**base, "num_labels": 5})
    with pytest.raises(ValueError, match="id2label's keys must be 0..1"):
        BertConfig.from_dict({**base, "id2label": {"0": "a", "2": "b"}})
    with pytest.raises(ValueError, match="label2id\\['x'\\]"):
        BertConfig.from_dict({**base, "label2id": {"x": "zero"}})


def test_num_labels_must_fit_the_classifier(tmp_path):
    config = write_encoder_checkpoint(tmp_path, "distilbert", "sequence_classification",
                                      tokenizer=False, vocab_size=50, num_labels=3)
    t = tensors_of(tmp_path, np.float32)
    wrong = {**config, "id2label": {"0": "a", "1": "b"}, "label2id": {"a": 0, "b": 1}}
    with pytest.raises(ValueError, match="'classifier.weight' has shape \\(3, 32\\), "
                                         "expected \\(2, 32\\)"):
        BertModel.from_weights(wrong, t)


def test_bert_classifier_kind_from_architectures(tmp_path, rng):
    """BERT's sequence and token classifiers are both classifier.* (num_labels, hidden):
    architectures decides; without it the pooler does (the sequence classifier reads it,
    transformers builds the token classifier without one)."""
    config = write_encoder_checkpoint(tmp_path, "bert", "sequence_classification",
                                      tokenizer=False, vocab_size=50)
    t = tensors_of(tmp_path, np.float32)
    no_arch = {k: v for k, v in config.items() if k != "architectures"}
    assert BertModel.from_weights(no_arch, t).task == "sequence_classification"
    as_tokens = {**config, "architectures": ["BertForTokenClassification"]}
    model = BertModel.from_weights(as_tokens, t)     # a token classifier that kept a pooler
    assert model.task == "token_classification"
    ids, mask = batch(rng, config, [5], 5)
    assert model(ids, mask).logits.shape == (1, 5, 3)
    no_pooler = {k: v for k, v in t.items() if "pooler" not in k}
    assert BertModel.from_weights(no_arch, no_pooler).task == "token_classification"
    # a sequence classifier needs its pooler
    with pytest.raises(ValueError, match="missing tensor 'bert.pooler.dense.weight'"):
        BertModel.from_weights(config, no_pooler)


def test_head_checkpoints_with_a_saved_pooler_load(tmp_path, rng):
    """Older transformers saved the pooler of RoBERTa's classifiers too (they never read it):
    it is read and left unused, the logits unchanged."""
    config = write_encoder_checkpoint(tmp_path, "roberta", "sequence_classification",
                                      tokenizer=False, vocab_size=50)
    t = tensors_of(tmp_path, np.float32)
    with_pooler = {**t, "roberta.pooler.dense.weight": np.eye(HIDDEN, dtype=np.float32),
                   "roberta.pooler.dense.bias": np.zeros(HIDDEN, np.float32)}
    model = BertModel.from_weights(config, with_pooler)
    ids, mask = batch(rng, config, [6, 3], 6)
    np.testing.assert_array_equal(model(ids, mask).logits,
                                  BertModel.from_weights(config, t)(ids, mask).logits)


def test_head_refusals(tmp_path):
    """An incomplete head is refused naming the missing tensor; an unknown extra tensor
    next to a head is refused by name."""
    config = write_encoder_checkpoint(tmp_path, "roberta", "sequence_classification",
                                      tokenizer=False, vocab_size=50)
    t = tensors_of(tmp_path, np.float32)
    with pytest.raises(ValueError, match="missing tensor 'classifier.out_proj.bias'"):
        BertModel.from_weights(config, {k: v for k, v in t.items()
                                        if k != "classifier.out_proj.bias"})
    with pytest.raises(ValueError, match="unexpected tensor.*'classifier.extra.weight'"):
        BertModel.from_weights(config, {**t, "classifier.extra.weight": t["classifier.dense.bias"]})
    # ELECTRA's generator (ElectraForMaskedLM) is not implemented: its tensors are named
    e = write_encoder_checkpoint(tmp_path / "e", "electra", tokenizer=False, vocab_size=50)
    te = tensors_of(tmp_path / "e", np.float32)
    te["generator_lm_head.bias"] = np.zeros(50, np.float32)
    with pytest.raises(ValueError, match="unexpected tensor.*generator_lm_head.bias"):
        BertModel.from_weights(e, te)


# --------------------------------------------------------------------------- transformers
HF_CLASSES = ["BertForSequenceClassification", "BertForTokenClassification",
              "BertForQuestionAnswering", "RobertaForSequenceClassification",
              "XLMRobertaForSequenceClassification", "DistilBertForSequenceClassification",
              "DistilBertForTokenClassification", "DistilBertForQuestionAnswering",
              "ElectraForSequenceClassification", "ElectraForPreTraining",
              "RobertaForMaskedLM", "DistilBertForMaskedLM"]


def _task_of_class(name):
    for suffix, task in (("ForSequenceClassification", "sequence_classification"),
                         ("ForTokenClassification", "token_classification"),
                         ("ForQuestionAnswering", "question_answering"),
                         ("ForMaskedLM", "masked_lm"),
                         ("ForPreTraining", "replaced_token_detection")):
        if name.endswith(suffix):
            return task


_FAMILY_OF = {"Bert": "bert", "Roberta": "roberta", "XLMRoberta": "xlm-roberta",
              "DistilBert": "distilbert", "Electra": "electra"}


def _family_of_class(name):
    return _FAMILY_OF[max((k for k in _FAMILY_OF if name.startswith(k)), key=len)]


@pytest.mark.parametrize("name", HF_CLASSES)
def test_transformers_save_pretrained_logits(name, rng, tmp_path):
    """transformers' class, weights randomized (tests/test_encoder_families.py: randomize),
    written by save_pretrained (tied decoders left out, its config.json with id2label):
    fastattn.load finds the head and gives transformers' logits."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from test_encoder_families import hf_config, randomize
    task, family = _task_of_class(name), _family_of_class(name)
    labelled = task in ("sequence_classification", "token_classification")
    config = encoder_config(family, task, vocab_size=50,
                            id2label={0: "O", 1: "B-PER", 2: "I-PER"} if labelled else None)
    hf = getattr(transformers, name)(hf_config(transformers, config))
    randomize(torch, hf, seed=len(name))
    if task == "masked_lm":
        hf.tie_weights()     # randomize drew the decoder apart from the word embeddings
    hf.eval().save_pretrained(tmp_path)
    model = fastattn.load(tmp_path)
    assert model.task == task
    if labelled:
        assert model.config.id2label == {0: "O", 1: "B-PER", 2: "I-PER"}
    ids, mask = batch(rng, config, [10, 7, 3], 10)
    with torch.no_grad():
        out = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    real = mask.astype(bool)
    got = our_outputs(model, ids, mask, task)
    if task == "question_answering":
        want = (out.start_logits.numpy(), out.end_logits.numpy())
    else:
        want = out.logits.numpy()
    atol = (2 * 2e-5 * np.abs(want).max() if task == "masked_lm" else 2 * LOGIT_ATOL)
    assert_close(got, want, real, atol, task != "sequence_classification")


@pytest.mark.parametrize("family,task", [("bert", "sequence_classification"),
                                         ("bert", "token_classification"),
                                         ("bert", "question_answering"),
                                         ("roberta", "sequence_classification"),
                                         ("distilbert", "sequence_classification"),
                                         ("electra", "sequence_classification")])
def test_fastattn_testing_checkpoints_load_in_transformers(family, task, rng, tmp_path):
    """The other way: a directory fastattn.testing wrote (no torch) is read by transformers'
    Auto classes, with the same logits: the writers produce real checkpoints."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = write_encoder_checkpoint(tmp_path, family, task, tokenizer=False, vocab_size=50)
    auto = {"sequence_classification": transformers.AutoModelForSequenceClassification,
            "token_classification": transformers.AutoModelForTokenClassification,
            "question_answering": transformers.AutoModelForQuestionAnswering}[task]
    hf = auto.from_pretrained(tmp_path).eval()
    model = fastattn.load(tmp_path)
    ids, mask = batch(rng, config, [8, 4], 8)
    with torch.no_grad():
        out = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    want = ((out.start_logits.numpy(), out.end_logits.numpy())
            if task == "question_answering" else out.logits.numpy())
    assert_close(our_outputs(model, ids, mask, task), want, mask.astype(bool),
                 2 * LOGIT_ATOL, task != "sequence_classification")
    assert hf.config.id2label == model.config.id2label


def test_model_types_share_one_implementation():
    """Families are configurations, not copies: every model_type loads through BertModel."""
    from fastattn.loading import FAMILIES
    entries = {FAMILIES[t] for t in ("bert", "roberta", "xlm-roberta", "distilbert", "electra")}
    assert len(entries) == 1
