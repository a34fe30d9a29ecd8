"""BERT encoder: a random small checkpoint against the float64 NumPy reference forward
(fastattn.reference.models.bert), padding, token types, attention probabilities, hidden
states, pooler, masked-LM head and fill_mask, sentence embeddings, errors, Hugging Face
transformers (when installed) and the `fastattn embed` command.

The main test model goes the user's way, through a checkpoint directory:
save_checkpoint(dir, config, tensors) + fastattn.load(dir) (`load_model`); name variants and
error cases build from in-memory tensors with BertModel.from_weights (`build`).

Tolerances. The model runs in float32, the reference in float64 on the same (float32-valued)
weights. Hidden states leave each layer through a LayerNorm, so they are O(1) (gamma ~ 1 +/-
0.1, beta ~ 0.1 here). Each stage (q/k/v, scores, softmax, P V, output projection, LayerNorm,
intermediate with GELU, output projection, LayerNorm) rounds a handful of times; a float32 dot
product of length K (K <= 64 here) is off by about sqrt(K) u |terms| with u = 2^-24 = 6e-8 and
|terms| <= ~3, so ~1.5e-6 per stage; the next layer amplifies what it receives by at most the
norm of its random 1/sqrt(fan_in) weights (~2) and LayerNorm's 1/std (~1): two layers stay
below HIDDEN_ATOL = 2e-5 (measured: ~1e-6). Attention probabilities are softmaxes of O(1)
scores: an error d in a score changes p by at most p d, so PROB_ATOL = 1e-5 (measured ~3e-7).
"""
import io
import types
from contextlib import redirect_stdout

import numpy as np
import pytest

import fastattn
from fastattn import BertModel, BertOutput, WordPieceTokenizer, embed, save_checkpoint
from fastattn.reference import models as ref
from fastattn.testing import random_checkpoint

from conftest import assert_thread_invariant

HIDDEN_ATOL = 2e-5
PROB_ATOL = 1e-5

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on",
         "mat", "ran", "in", "park", "is", "happy", "sad", "##s", "##ing", "play", ".", ",",
         "!", "?", "hello", "world", "bird", "fly", "tree", "red", "blue", "sun", "rain", "and",
         "big", "small", "house", "##y", "run"]


def bert_config(vocab_size=len(VOCAB), hidden=32, layers=2, heads=4, intermediate=64,
                max_positions=24, type_vocab=2, act="gelu"):
    """A Hugging Face style config.json dict."""
    return {"model_type": "bert", "architectures": ["BertForPreTraining"],
            "vocab_size": vocab_size, "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "intermediate_size": intermediate, "hidden_act": act,
            "max_position_embeddings": max_positions, "type_vocab_size": type_vocab,
            "layer_norm_eps": 1e-12, "pad_token_id": 0}


def bert_tensors(config, seed=0, prefix="bert.", pooler=True, mlm=True, nsp=False):
    """Random float32 tensors with Hugging Face names. Scales keep every stage O(1): weights
    N(0, 1/fan_in) (attention scores ~ N(0, 1), non-uniform probabilities), embeddings N(0, 1),
    LayerNorm gamma 1 +/- 0.1, biases 0.1."""
    return random_checkpoint(
        config, seed, prefix=prefix, pooler=pooler, mlm=mlm, nsp=nsp, bias_std=0.1,
        gain_std=0.1, std=lambda name, shape: 1.0 if "embeddings" in name else shape[1] ** -0.5)


def build(config, tensors):
    """A model straight from in-memory tensors."""
    return BertModel.from_weights(types.SimpleNamespace(**config), tensors)


def load_model(directory, config, tensors):
    """A model through a checkpoint directory (config.json + model.safetensors, float32)."""
    save_checkpoint(directory, config, tensors)
    model = fastattn.load(directory)
    assert isinstance(model, BertModel)
    return model


def as64(tensors):
    return {k: v.astype(np.float64) for k, v in tensors.items()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    config = bert_config()
    tensors = bert_tensors(config, nsp=True)
    directory = tmp_path_factory.mktemp("bert")
    return types.SimpleNamespace(config=config, cfg=types.SimpleNamespace(**config),
                                 tensors=tensors, w64=as64(tensors), directory=directory,
                                 model=load_model(directory, config, tensors))


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(VOCAB)


def padded_batch(rng, lengths, width, vocab=len(VOCAB)):
    """Random ids (B, width) with rows of the given real lengths, right-padded with 0;
    token types 0 on the first half of each row's real tokens, 1 after."""
    b = len(lengths)
    ids = rng.integers(5, vocab, (b, width))
    mask = (np.arange(width)[None] < np.array(lengths)[:, None]).astype(np.int64)
    ids[mask == 0] = 0
    types_ = ((np.arange(width)[None] >= (np.array(lengths)[:, None] + 1) // 2)
              & (mask == 1)).astype(np.int64)
    return ids, mask, types_


# ----------------------------------------------------------------------------- forward
def test_forward_matches_reference(small, rng, isa):
    ids, mask, tt = padded_batch(rng, [17, 12, 5, 1], 17)
    out = small.model(ids, mask, tt)
    expected = ref.bert(small.w64, small.cfg, ids, mask, tt)
    assert out.dtype == np.float32 and out.shape == (4, 17, 32)
    np.testing.assert_allclose(out, expected, rtol=0, atol=HIDDEN_ATOL)


def test_no_mask_and_1d_inputs(small, rng):
    ids = rng.integers(0, len(VOCAB), 9)
    out = small.model(ids)
    np.testing.assert_allclose(out, ref.bert(small.w64, small.cfg, ids[None]), atol=HIDDEN_ATOL)
    # an all-ones mask takes the unmasked path: same numbers
    np.testing.assert_array_equal(small.model(ids, np.ones(9, np.int64)), out)
    # default token types are 0
    np.testing.assert_array_equal(small.model(ids, None, np.zeros(9, np.int64)), out)


def test_token_types_matter(small, rng):
    ids = rng.integers(5, len(VOCAB), (1, 8))
    a = small.model(ids, token_type_ids=np.zeros_like(ids))
    b = small.model(ids, token_type_ids=np.ones_like(ids))
    assert np.abs(a - b).max() > 1e-2
    np.testing.assert_allclose(b, ref.bert(small.w64, small.cfg, ids, None, np.ones_like(ids)),
                               atol=HIDDEN_ATOL)


def test_padding_does_not_change_real_tokens(small, rng):
    lengths = [3, 11, 1, 8]
    ids, mask, tt = padded_batch(rng, lengths, 20)
    batched = small.model(ids, mask, tt)
    for b, n in enumerate(lengths):
        alone = small.model(ids[b:b + 1, :n], None, tt[b:b + 1, :n])
        # float32 rounding only (the kernels block differently for other lengths; measured 0)
        np.testing.assert_allclose(batched[b, :n], alone[0], rtol=0, atol=HIDDEN_ATOL)
    # what sits in the padded positions does not matter either
    other = ids.copy()
    other[mask == 0] = 7
    np.testing.assert_array_equal(small.model(other, mask, tt)[mask == 1], batched[mask == 1])


def test_all_padding_row_is_finite(small, rng):
    """A row whose mask is all 0 attends to nothing: zero attention output and weights, no
    NaN (transformers gives a uniform softmax there; the row is meaningless either way), and
    the other rows are unaffected."""
    ids, mask, tt = padded_batch(rng, [6, 6], 6)
    mask[1] = 0
    out = small.model(ids, mask, tt, output_attentions=True)
    assert np.isfinite(out.last_hidden_state).all()
    assert all(np.all(p[1] == 0) for p in out.attentions)
    np.testing.assert_allclose(out.last_hidden_state[0], small.model(ids[:1], None, tt[:1])[0],
                               rtol=0, atol=HIDDEN_ATOL)


def test_thread_invariant(small, rng):
    ids, mask, tt = padded_batch(rng, [23, 9, 15], 23)
    assert_thread_invariant(lambda: small.model(ids, mask, tt))


def test_output_attentions(small, rng):
    lengths = [10, 4, 7]
    ids, mask, tt = padded_batch(rng, lengths, 10)
    out = small.model(ids, mask, tt, output_attentions=True)
    assert isinstance(out, BertOutput) and out.hidden_states is None
    _, _, expected = ref.bert(small.w64, small.cfg, ids, mask, tt, return_all=True)
    assert len(out.attentions) == small.cfg.num_hidden_layers
    for probs, want in zip(out.attentions, expected):
        assert probs.shape == (3, 4, 10, 10) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=0, atol=1e-5)
        for b, n in enumerate(lengths):
            assert np.all(probs[b, :, :, n:] == 0.0)     # padded keys get exactly 0
        assert np.all(probs >= 0)
        np.testing.assert_allclose(probs, want, rtol=0, atol=PROB_ATOL)
    # the probabilities path does not change the hidden states
    np.testing.assert_array_equal(out.last_hidden_state, small.model(ids, mask, tt))


def test_output_hidden_states_and_pooler(small, rng):
    ids, mask, tt = padded_batch(rng, [6, 3], 6)
    out = small.model(ids, mask, tt, output_hidden_states=True)
    last, hidden, _ = ref.bert(small.w64, small.cfg, ids, mask, tt, return_all=True)
    assert out.attentions is None
    assert len(out.hidden_states) == small.cfg.num_hidden_layers + 1
    for got, want in zip(out.hidden_states, hidden):
        np.testing.assert_allclose(got, want, rtol=0, atol=HIDDEN_ATOL)
    np.testing.assert_allclose(out.hidden_states[0], small.model.embeddings(ids, tt),
                               rtol=0, atol=0)
    assert out.hidden_states[-1] is out.last_hidden_state
    assert out["last_hidden_state"] is out.last_hidden_state
    with pytest.raises(KeyError):
        out["logits"]
    # pooler: tanh, so its error is at most the pre-activation's (|tanh'| <= 1)
    np.testing.assert_allclose(out.pooler_output, ref.bert_pooler(small.w64, last),
                               rtol=0, atol=HIDDEN_ATOL)
    d = small.model(ids, mask, tt, return_dict=True)
    np.testing.assert_array_equal(d.pooler_output, out.pooler_output)
    assert d.hidden_states is None and d.attentions is None


def test_without_pooler_or_heads(rng):
    config = bert_config(layers=1)
    m = build(config, bert_tensors(config, prefix="", pooler=False, mlm=False))
    out = m(rng.integers(0, 40, (2, 5)), return_dict=True)
    assert out.pooler_output is None and not m.has_mlm_head
    with pytest.raises(ValueError, match="no pooler"):
        m.pooled(out.last_hidden_state)
    with pytest.raises(ValueError, match="no masked-LM head"):
        m.mlm_logits(out.last_hidden_state)
    with pytest.raises(ValueError, match="no next-sentence head"):
        m.nsp_logits(np.zeros((1, 32), np.float32))


def test_checkpoint_name_variants(rng):
    """"bert." prefix or none, old LayerNorm gamma/beta names, an explicit (untied) decoder."""
    config = bert_config(layers=1)
    t = bert_tensors(config)
    ids = rng.integers(0, 40, (1, 7))
    want = build(config, t)(ids)
    plain = {k.removeprefix("bert."): v for k, v in t.items()}
    np.testing.assert_array_equal(build(config, plain)(ids), want)
    old = {(k[:-6] + "gamma" if k.endswith("LayerNorm.weight") else
            k[:-4] + "beta" if k.endswith("LayerNorm.bias") else k): v for k, v in t.items()}
    assert any(k.endswith("gamma") for k in old)
    np.testing.assert_array_equal(build(config, old)(ids), want)
    # decoder saved explicitly: used instead of the word embeddings
    untied = dict(t)
    untied["cls.predictions.decoder.weight"] = -t["bert.embeddings.word_embeddings.weight"]
    untied["cls.predictions.decoder.bias"] = t["cls.predictions.bias"]
    h = want[0]
    np.testing.assert_allclose(build(config, untied).mlm_logits(h),
                               ref.bert_mlm_logits(as64(untied), types.SimpleNamespace(**config),
                                                   h.astype(np.float64)), atol=1e-4)


# ------------------------------------------------------------------------------- heads
def test_mlm_logits_and_nsp(small, rng):
    ids, mask, tt = padded_batch(rng, [9], 9)
    h = small.model(ids, mask, tt)
    logits = small.model.mlm_logits(h)
    want = ref.bert_mlm_logits(small.w64, small.cfg, h.astype(np.float64))
    assert logits.shape == (1, 9, len(VOCAB))
    # |logit| ~ sqrt(32) * O(1): a hidden-size dot product of O(1) terms, float32 rounding
    # ~ sqrt(32) u * 6 per stage over three stages
    np.testing.assert_allclose(logits, want, rtol=0, atol=1e-5 * np.abs(want).max())
    pooled = small.model.pooled(h)
    nsp = small.model.nsp_logits(pooled)
    np.testing.assert_allclose(nsp, pooled.astype(np.float64) @ small.w64[
        "cls.seq_relationship.weight"].T + small.w64["cls.seq_relationship.bias"], atol=1e-5)


def softmax64(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_fill_mask(small, tokenizer):
    text = "the [MASK] sat on the mat . a [MASK] ran"
    results = small.model.fill_mask(text, tokenizer, top_k=5)
    assert len(results) == 2
    enc = tokenizer.encode(text)
    ids = np.array(enc.ids)
    where = np.flatnonzero(ids == tokenizer.mask_token_id)
    hidden = ref.bert(small.w64, small.cfg, ids[None], None, np.array(enc.type_ids)[None])
    probs = softmax64(ref.bert_mlm_logits(small.w64, small.cfg, hidden[0, where]))
    for cands, p in zip(results, probs):
        scores = [c["score"] for c in cands]
        assert len(cands) == 5 and scores == sorted(scores, reverse=True)
        assert 0 < sum(scores) <= 1 + 1e-6
        assert [c["token_id"] for c in cands] == list(np.argsort(-p, kind="stable")[:5])
        for c in cands:
            assert c["token"] == VOCAB[c["token_id"]]
            # a probability's relative error is at most twice the logits' absolute error
            assert c["score"] == pytest.approx(p[c["token_id"]], rel=1e-4)
    everything = small.model.fill_mask("[MASK]", tokenizer, top_k=1000)[0]
    assert len(everything) == len(VOCAB)
    assert sum(c["score"] for c in everything) == pytest.approx(1.0, abs=1e-5)


def test_fill_mask_errors(small, tokenizer):
    with pytest.raises(ValueError, match="no mask token"):
        small.model.fill_mask("the cat sat", tokenizer)
    with pytest.raises(ValueError, match="top_k"):
        small.model.fill_mask("the [MASK]", tokenizer, top_k=0)
    with pytest.raises(TypeError, match="text must be a str"):
        small.model.fill_mask(["the [MASK]"], tokenizer)
    with pytest.raises(ValueError, match="34 tokens, more than the model's "
                                         "max_position_embeddings 24"):
        small.model.fill_mask("the [MASK] " + "cat " * 30, tokenizer)


# ------------------------------------------------------------------------------- embed
TEXTS = ["the cat sat on the mat .", "a dog ran in the park", "hello world !",
         "the big red house and the small blue house", "sun", "rain and sun , the birds fly",
         "happy", "the dogs play in the rain and the cats sat on the mat"]


def test_embed_mean_and_cls(small, tokenizer):
    emb = embed(small.model, tokenizer, TEXTS, pooling="mean", normalize=False)
    cls = embed(small.model, tokenizer, TEXTS, pooling="cls", normalize=False)
    assert emb.shape == cls.shape == (len(TEXTS), 32) and emb.dtype == np.float32
    for i, text in enumerate(TEXTS):
        enc = tokenizer.encode(text)
        h = ref.bert(small.w64, small.cfg, np.array(enc.ids)[None])[0]
        # means and the [CLS] row of hidden states within HIDDEN_ATOL
        np.testing.assert_allclose(emb[i], h.mean(axis=0), rtol=0, atol=HIDDEN_ATOL)
        np.testing.assert_allclose(cls[i], h[0], rtol=0, atol=HIDDEN_ATOL)
    unit = embed(small.model, tokenizer, TEXTS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(unit, emb / np.linalg.norm(emb, axis=1, keepdims=True),
                               rtol=0, atol=1e-6)


def test_embed_batching_and_padding_do_not_matter(small, tokenizer):
    one = embed(small.model, tokenizer, TEXTS, batch_size=1, normalize=False)
    for bs in (2, 3, 100):
        for pooling in ("mean",):
            got = embed(small.model, tokenizer, TEXTS, batch_size=bs, normalize=False,
                        pooling=pooling)
            # float32 rounding of the forward only: the mean is summed over the real tokens
            # in float64, padding never enters it
            np.testing.assert_allclose(got, one, rtol=0, atol=HIDDEN_ATOL)
    # a short text batched with a long one (padded by 10+ positions) vs alone, both poolings
    for pooling in ("mean", "cls"):
        pair = embed(small.model, tokenizer, [TEXTS[4], TEXTS[7]], pooling=pooling,
                     normalize=False)
        alone = embed(small.model, tokenizer, [TEXTS[4]], pooling=pooling, normalize=False)
        np.testing.assert_allclose(pair[0], alone[0], rtol=0, atol=HIDDEN_ATOL)
    # the result is in input order whatever the length sort did
    rev = embed(small.model, tokenizer, TEXTS[::-1], batch_size=3, normalize=False)
    np.testing.assert_allclose(rev[::-1], one, rtol=0, atol=HIDDEN_ATOL)


def test_embed_truncates_and_edge_cases(small, tokenizer):
    long = " ".join(["cat"] * 60)          # 62 tokens > max_position_embeddings (24)
    e = embed(small.model, tokenizer, [long], normalize=False)
    enc = tokenizer.encode(long, max_length=24, truncation=True)
    h = ref.bert(small.w64, small.cfg, np.array(enc.ids)[None])[0]
    np.testing.assert_allclose(e[0], h.mean(axis=0), atol=HIDDEN_ATOL)
    short = embed(small.model, tokenizer, [long], max_length=6, normalize=False)
    h = ref.bert(small.w64, small.cfg, np.array(tokenizer.encode(
        long, max_length=6, truncation=True).ids)[None])[0]
    np.testing.assert_allclose(short[0], h.mean(axis=0), atol=HIDDEN_ATOL)
    assert embed(small.model, tokenizer, []).shape == (0, 32)
    empty = embed(small.model, tokenizer, [""], pooling="mean")   # [CLS] [SEP] only
    assert np.isfinite(empty).all()


def test_embed_errors(small, tokenizer):
    with pytest.raises(TypeError, match="single str"):
        embed(small.model, tokenizer, "the cat")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        embed(small.model, tokenizer, ["a", 3])
    with pytest.raises(ValueError, match="pooling"):
        embed(small.model, tokenizer, ["a"], pooling="max")
    with pytest.raises(ValueError, match="batch_size"):
        embed(small.model, tokenizer, ["a"], batch_size=0)
    with pytest.raises(ValueError, match="max_length"):
        embed(small.model, tokenizer, ["a"], max_length=1)


def test_embed_with_geometry(small, tokenizer):
    corpus = embed(small.model, tokenizer, TEXTS)
    idx, scores = fastattn.top_k_neighbours(corpus[2:3], corpus, 3)
    assert idx[0, 0] == 2 and scores[0, 0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(fastattn.cosine_similarity(corpus, corpus),
                               fastattn.dot_scores(corpus, corpus), atol=1e-6)


# ------------------------------------------------------------------------------ errors
def test_input_errors(small):
    m = small.model
    with pytest.raises(ValueError, match="exceeds max_position_embeddings 24"):
        m(np.zeros((1, 25), np.int64))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 4\), expected \(1, 5\)"):
        m(np.zeros((1, 5), np.int64), np.ones((1, 4), np.int64))
    with pytest.raises(ValueError, match="token_type_ids has shape"):
        m(np.zeros((2, 5), np.int64), None, np.zeros((1, 5), np.int64))
    with pytest.raises(ValueError, match=r"input_ids contains 40, outside \[0, 40\)"):
        m(np.array([[1, 40]]))
    with pytest.raises(ValueError, match=r"input_ids contains -1"):
        m(np.array([[1, -1]]))
    with pytest.raises(ValueError, match=r"token_type_ids contains 2"):
        m(np.array([[1, 2]]), None, np.array([[0, 2]]))
    with pytest.raises(TypeError, match="input_ids must be integers"):
        m(np.array([[1.0, 2.0]]))
    with pytest.raises(TypeError, match="attention_mask must be integers or bool"):
        m(np.array([[1, 2]]), np.array([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="attention_mask must hold 0 .* and 1"):
        m(np.array([[1, 2]]), np.array([[1, -10000]]))
    with pytest.raises(ValueError, match="length 0"):
        m(np.zeros((1, 0), np.int64))
    with pytest.raises(ValueError, match=r"\(batch, length\)"):
        m(np.zeros((1, 2, 3), np.int64))


def test_checkpoint_errors():
    config = bert_config(layers=1)
    t = bert_tensors(config)
    missing = {k: v for k, v in t.items() if "layer.0.output.dense.bias" not in k}
    with pytest.raises(ValueError, match="missing tensor 'bert.encoder.layer.0.output.dense.bias'"):
        build(config, missing)
    wrong = dict(t)
    wrong["bert.pooler.dense.weight"] = np.zeros((32, 31), np.float32)
    with pytest.raises(ValueError, match=r"pooler.dense.weight' has shape \(32, 31\), expected"):
        build(config, wrong)
    extra = dict(t)
    # (classifier.* is a task head now, tests/test_task_heads.py; a name no head has is refused)
    extra["adapter.weight"] = np.zeros((2, 32), np.float32)
    with pytest.raises(ValueError, match="unexpected tensor.*adapter.weight"):
        build(config, extra)
    with pytest.raises(ValueError, match="multiple of"):
        build(bert_config(heads=5), t)


# ---------------------------------------------------------------------- Hugging Face
def test_matches_transformers(small, rng):
    """Same random tensors in transformers' BertForPreTraining (float32, PyTorch CPU). Both are
    float32 implementations within HIDDEN_ATOL of the float64 forward, so they differ by at
    most twice that (measured ~1e-6)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    c = small.config
    hf_config = transformers.BertConfig(**{k: v for k, v in c.items()
                                           if k not in ("model_type", "architectures")})
    hf_config._attn_implementation = "eager"   # returns attention probabilities
    hf = transformers.BertForPreTraining(hf_config).eval()
    state = {k: torch.from_numpy(v) for k, v in small.tensors.items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected
    # tied to the word embeddings / to cls.predictions.bias, or non-persistent buffers
    assert set(missing) <= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
                            "bert.embeddings.position_ids", "bert.embeddings.token_type_ids"}
    ids, mask, tt = padded_batch(rng, [14, 9, 3], 14)
    with torch.no_grad():
        out = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                 token_type_ids=torch.from_numpy(tt), output_hidden_states=True,
                 output_attentions=True)
    ours = small.model(ids, mask, tt, output_hidden_states=True, output_attentions=True)
    real = mask.astype(bool)   # HF's padded query rows differ (it adds finfo.min, not -inf)
    for got, want in zip(ours.hidden_states, out.hidden_states):
        np.testing.assert_allclose(got[real], want.numpy()[real], rtol=0, atol=2 * HIDDEN_ATOL)
    for got, want in zip(ours.attentions, out.attentions):
        np.testing.assert_allclose(got.transpose(0, 2, 1, 3)[real],
                                   want.numpy().transpose(0, 2, 1, 3)[real],
                                   rtol=0, atol=2 * PROB_ATOL)
    logits = small.model.mlm_logits(ours.last_hidden_state)
    want = out.prediction_logits.numpy()
    np.testing.assert_allclose(logits[real], want[real], rtol=0, atol=2e-5 * np.abs(want).max())
    np.testing.assert_allclose(small.model.nsp_logits(ours.pooler_output),
                               out.seq_relationship_logits.numpy(), rtol=0, atol=1e-4)


def test_loads_a_transformers_save_pretrained_directory(small, tokenizer, tmp_path):
    """A directory written by transformers' save_pretrained (its config.json, its safetensors
    names, the tied decoder left out) loads with fastattn.load and gives transformers'
    outputs; fill_mask's scores are the softmax of transformers' MLM logits."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("safetensors")
    c = small.config
    hf_config = transformers.BertConfig(**{k: v for k, v in c.items()
                                           if k not in ("model_type", "architectures")})
    hf = transformers.BertForPreTraining(hf_config).eval()
    hf.load_state_dict({k: torch.from_numpy(v) for k, v in small.tensors.items()}, strict=False)
    hf.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = fastattn.load(tmp_path)
    text = "the [MASK] sat on the mat"
    enc = tokenizer.encode(text)
    ids = np.array([enc.ids])
    with torch.no_grad():
        out = hf(torch.from_numpy(ids))
    ours = model(ids, return_dict=True)
    np.testing.assert_allclose(ours.last_hidden_state, small.model(ids), rtol=0, atol=0)
    logits = out.prediction_logits.numpy()[0]
    np.testing.assert_allclose(model.mlm_logits(ours.last_hidden_state)[0], logits, rtol=0,
                               atol=2e-5 * np.abs(logits).max())
    where = enc.tokens.index("[MASK]")
    p = softmax64(logits[where].astype(np.float64))
    for cand in model.fill_mask(text, tokenizer, top_k=3)[0]:
        assert cand["score"] == pytest.approx(p[cand["token_id"]], rel=1e-4)


# -------------------------------------------------------------------------------- CLI
def _cli(argv):
    from fastattn import cli
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = cli.main(argv)
    return rc, buf.getvalue()


def _write_lines(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(TEXTS[:6]) + "\n\n", encoding="utf-8")
    return path


def test_cli_embed(small, tokenizer, tmp_path):
    """`fastattn embed` on a checkpoint directory: the lines ranked as top_k_neighbours ranks
    fastattn.embed's vectors, scores printed to 4 decimals."""
    directory = tmp_path / "model"
    loaded = load_model(directory, small.config, small.tensors)
    tokenizer.save_pretrained(directory)
    ids = np.arange(5, 15)[None]
    np.testing.assert_array_equal(loaded(ids), small.model(ids))
    lines = _write_lines(tmp_path)
    rc, out = _cli(["embed", str(directory), "--file", str(lines), "--query", TEXTS[1],
                    "-k", "3"])
    assert rc == 0
    rows = out.strip().splitlines()
    assert rows[0] == f"query: {TEXTS[1]}" and len(rows) == 4
    assert rows[1].split(None, 2) == ["1", "+1.0000", TEXTS[1]]
    corpus = embed(small.model, tokenizer, TEXTS[:6])
    idx, scores = fastattn.top_k_neighbours(corpus[1:2], corpus, 3)
    for row, i, s in zip(rows[1:], idx[0], scores[0]):
        assert row.split(None, 2)[1:] == [f"{s:+.4f}", TEXTS[i]]
    rc, out = _cli(["embed", str(directory), "--file", str(lines), "--query", "sun",
                    "--query", "dog", "-k", "50", "--pooling", "cls"])
    assert rc == 0 and out.count("query:") == 2 and len(out.strip().splitlines()) == 2 * 7 + 1


def test_cli_embed_errors(small, tmp_path, capsys):
    lines = _write_lines(tmp_path)
    rc, _ = _cli(["embed", str(small.directory), "--file", str(tmp_path / "nope.txt"),
                  "--query", "x"])
    assert rc == 2 and "cannot read" in capsys.readouterr().err
    rc, _ = _cli(["embed", str(tmp_path / "no-model"), "--file", str(lines), "--query", "x"])
    assert rc == 2 and "no-model" in capsys.readouterr().err
    # small.directory has weights but no vocab.txt
    rc, _ = _cli(["embed", str(small.directory), "--file", str(lines), "--query", "x"])
    assert rc == 2 and "vocab.txt" in capsys.readouterr().err
    rc, _ = _cli(["embed", str(small.directory), "--file", str(lines), "--query", "x", "-k", "0"])
    assert rc == 2
