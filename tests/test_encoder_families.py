"""The BERT-family encoders as configurations of the one encoder (fastattn.models.bert):
BERT, RoBERTa, XLM-RoBERTa, DistilBERT and ELECTRA bare encoders, written by
fastattn.testing.write_encoder_checkpoint (no torch) and by transformers' save_pretrained,
loaded with fastattn.load, against the float64 NumPy reference
(fastattn.reference.models.bert) and transformers; their configs, RoBERTa's position ids,
DistilBERT's missing token types, ELECTRA's embedding projection, and errors.

Tolerances (as tests/test_bert.py, same sizes: hidden 32, 2 layers, intermediate 64, weights
N(0, 1/fan_in), embeddings N(0, 1), LayerNorm gains 1 +/- 0.1, biases 0.1). The model runs in
float32, the reference in float64 on the same weights. Each stage (q/k/v, scores, softmax,
P V, output projection, LayerNorm, intermediate with GELU, output projection, LayerNorm) is a
dot product of length K <= 64 over O(1) terms, off by about sqrt(K) u |terms| ~ 1.5e-6
(u = 2^-24); the next layer amplifies it by at most ~2 (its random weights' norm) times
LayerNorm's 1/std (~1): two layers stay below HIDDEN_ATOL = 2e-5 (measured ~1e-6). ELECTRA's
embeddings_project adds one dense layer of K = 16 before the blocks: ~4e-7 more, inside it.
transformers' float32 forward is within HIDDEN_ATOL of the float64 one too, so the two
float32 implementations differ by at most 2 * HIDDEN_ATOL.
"""
import types

import numpy as np
import pytest

import fastattn
from fastattn.models.bert import BertConfig, BertModel
from fastattn.reference import models as ref
from fastattn.testing import encoder_config, write_encoder_checkpoint

from conftest import assert_thread_invariant

HIDDEN_ATOL = 2e-5
FAMILIES = ("bert", "roberta", "xlm-roberta", "distilbert", "electra")


def as64(model_dir):
    """The checkpoint's tensors in float64, for the reference."""
    from fastattn.io.checkpoint import Checkpoint
    with Checkpoint(model_dir) as c:
        return {k: np.asarray(c[k], np.float64) for k in c.keys()}


def batch(rng, config, lengths, width, left=False):
    """Random ids (B, width) of the given real lengths, padded with the family's pad id
    (on the left with ``left``), and the attention mask. Ids avoid the specials (< 5)."""
    pad = config["pad_token_id"]
    ids = rng.integers(5, config["vocab_size"], (len(lengths), width))
    cols = np.arange(width)[None]
    n = np.array(lengths)[:, None]
    mask = (cols >= width - n) if left else (cols < n)
    ids[~mask] = pad
    return ids, mask.astype(np.int64)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    config = write_encoder_checkpoint(directory, request.param, tokenizer=False,
                                      vocab_size=50)
    return types.SimpleNamespace(name=request.param, dir=directory, config=config,
                                 cfg=fastattn.load_config(directory), w64=as64(directory),
                                 model=fastattn.load(directory))


# ------------------------------------------------------------------------------- forward
def test_forward_matches_reference(family, rng):
    assert isinstance(family.model, BertModel)
    assert family.model.task is None
    ids, mask = batch(rng, family.config, [11, 7, 1], 11)
    types_ = np.zeros_like(ids)
    if family.cfg.type_vocab_size > 1:
        types_[:, 5:] = 1                        # BERT, ELECTRA: token types matter
    got = family.model(ids, mask, types_, output_hidden_states=True)
    want, hidden, _ = ref.bert(family.w64, family.cfg, ids, mask, types_, return_all=True)
    real = mask.astype(bool)
    for g, h in zip(got.hidden_states, hidden):
        np.testing.assert_allclose(g[real], h[real], rtol=0, atol=HIDDEN_ATOL)
    if family.model.pooler is not None:
        # tanh has slope <= 1: the pooler's error is at most its input's
        np.testing.assert_allclose(got.pooler_output, ref.bert_pooler(family.w64, want),
                                   rtol=0, atol=HIDDEN_ATOL)
    else:
        assert family.name in ("distilbert", "electra") and got.pooler_output is None


def test_left_padding_and_position_ids(family, rng):
    """A left-padded row gives its tokens the outputs they have unpadded: RoBERTa's positions
    count non-pad tokens (pad + 1, pad + 2, ...), the others' count from 0 whatever the
    padding, which HF models share (left padding moves BERT's positions; both agree)."""
    ids, mask = batch(rng, family.config, [9, 4], 9, left=True)
    got = family.model(ids, mask)
    want = ref.bert(family.w64, family.cfg, ids, mask)
    real = mask.astype(bool)
    np.testing.assert_allclose(got[real], want[real], rtol=0, atol=HIDDEN_ATOL)
    positions = family.model.positions(ids)
    if family.name in ("roberta", "xlm-roberta"):
        pad = family.config["pad_token_id"]
        assert positions[1].tolist() == [pad] * 5 + [pad + 1, pad + 2, pad + 3, pad + 4]
        # hence a RoBERTa row's outputs do not depend on its left padding
        alone = family.model(ids[1:, 5:])
        np.testing.assert_allclose(got[1, 5:], alone[0], rtol=0, atol=HIDDEN_ATOL)
    else:
        assert positions.tolist() == list(range(9))


def test_position_ids_reference():
    """The reference's loop against a hand-worked row: pad 1, ids [0, 7, 1, 8, 1]."""
    assert ref.position_ids("roberta", [[0, 7, 1, 8, 1]], 1).tolist() == [[2, 3, 1, 4, 1]]
    assert ref.position_ids("bert", [[0, 7, 1]], 0).tolist() == [[0, 1, 2]]


def test_thread_invariant(family, rng):
    ids, mask = batch(rng, family.config, [10, 6], 10)
    assert_thread_invariant(lambda: family.model(ids, mask))


def test_distilbert_has_no_token_types(rng, tmp_path):
    """DistilBERT has no token-type embeddings: token_type_ids are accepted (pipelines pass
    them for every family) and change nothing."""
    config = write_encoder_checkpoint(tmp_path, "distilbert", tokenizer=False, vocab_size=50)
    model = fastattn.load(tmp_path)
    assert model.token_type is None and model.pooler is None
    ids, mask = batch(rng, config, [8, 5], 8)
    np.testing.assert_array_equal(model(ids, mask, np.ones_like(ids)), model(ids, mask))


def test_electra_projects_embeddings(rng, tmp_path):
    """ELECTRA's embeddings are embedding_size wide (16 here) and projected to hidden_size."""
    write_encoder_checkpoint(tmp_path, "electra", tokenizer=False, vocab_size=50,
                             embedding_size=16)
    model = fastattn.load(tmp_path)
    assert model.word.dim == 16 and model.project is not None and model.hidden_size == 32
    ids = rng.integers(5, 50, (2, 6))
    assert model.embeddings(ids).shape == (2, 6, 32)


# -------------------------------------------------------------------------------- configs
def test_configs_of_each_family():
    sizes = dict(vocab_size=50, hidden=32, layers=2, heads=4, intermediate=64, max_length=20)
    bert = fastattn.load_config(encoder_config("bert", **sizes))
    roberta = fastattn.load_config(encoder_config("roberta", **sizes))
    xlmr = fastattn.load_config(encoder_config("xlm-roberta", **sizes))
    distil = fastattn.load_config(encoder_config("distilbert", **sizes))
    electra = fastattn.load_config(encoder_config("electra", **sizes))
    for c in (bert, roberta, xlmr, distil, electra):
        assert isinstance(c, BertConfig)
        assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
                c.intermediate_size, c.vocab_size) == (32, 2, 4, 64, 50)
        assert c.max_length == 20
    assert (bert.position_offset, bert.pad_token_id, bert.type_vocab_size) == (0, 0, 2)
    # RoBERTa / XLM-R: 22 positions, ids start after the padding id 1
    assert (roberta.position_offset, roberta.pad_token_id, roberta.max_position_embeddings) \
        == (2, 1, 22)
    assert xlmr.position_offset == 2 and xlmr.type_vocab_size == 1
    # DistilBERT: its names (dim, n_layers, ...) read; no token types; eps fixed at 1e-12
    assert (distil.type_vocab_size, distil.layer_norm_eps, distil.hidden_act) == (0, 1e-12,
                                                                                  "gelu")
    assert "dim" not in distil.extra and "n_layers" not in distil.extra
    assert electra.embedding_size == 16 and electra.embedding_width == 16
    assert bert.embedding_width == 32
    # a parsed config written back parses again (DistilBERT's then has the shared names)
    again = BertConfig.of(fastattn.io.json_fields.config_dict(distil))
    assert again.hidden_size == 32 and again.model_type == "distilbert"


def test_defaults_as_transformers():
    """RoBERTa's pad_token_id defaults to 1 (RobertaConfig), ELECTRA's embedding_size to 128
    (ElectraConfig), DistilBERT's activation to gelu."""
    base = dict(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                intermediate_size=64, max_position_embeddings=20)
    assert BertConfig.from_dict({"model_type": "roberta", **base}).pad_token_id == 1
    assert BertConfig.from_dict({"model_type": "electra", **base}).embedding_size == 128
    d = BertConfig.from_dict({"model_type": "distilbert", "vocab_size": 50, "dim": 32,
                              "n_layers": 1, "n_heads": 4, "hidden_dim": 64,
                              "max_position_embeddings": 20})
    assert (d.hidden_act, d.sinusoidal_pos_embds) == ("gelu", False)


def test_config_errors():
    base = encoder_config("roberta", vocab_size=50)
    with pytest.raises(ValueError, match="position_embedding_type 'relative_key'"):
        BertConfig.from_dict({**base, "position_embedding_type": "relative_key"})
    with pytest.raises(ValueError, match="leaves no position.*pad_token_id \\+ 1"):
        BertConfig.from_dict({**base, "max_position_embeddings": 2})
    distil = encoder_config("distilbert", vocab_size=50)
    del distil["dim"]
    with pytest.raises(ValueError, match="'dim' is required"):   # its own name
        BertConfig.from_dict(distil)
    with pytest.raises(ValueError, match="multiple of"):
        BertConfig.from_dict({**encoder_config("distilbert", vocab_size=50), "n_heads": 5})


def test_input_length_limit_names_the_offset(tmp_path):
    write_encoder_checkpoint(tmp_path, "roberta", tokenizer=False, vocab_size=50,
                             max_length=12)
    model = fastattn.load(tmp_path)
    assert model.max_length == 12 and model.position.num_embeddings == 14
    model(np.full((1, 12), 7))
    with pytest.raises(ValueError, match="length 13 exceeds 12.*position offset"):
        model(np.full((1, 13), 7))


def test_unknown_tensors_refused_by_name(tmp_path):
    from fastattn.io.checkpoint import Checkpoint
    config = write_encoder_checkpoint(tmp_path, "roberta", tokenizer=False, vocab_size=50)
    with Checkpoint(tmp_path) as c:
        tensors = {k: np.asarray(c[k]) for k in c.keys()}
    tensors["encoder.layer.0.adapter.weight"] = np.zeros((4, 32), np.float32)
    with pytest.raises(ValueError, match="unexpected tensor.*encoder.layer.0.adapter.weight"):
        BertModel.from_weights(config, tensors)
    # a pooler is no part of DistilBERT: refused by name, not silently dropped
    d = write_encoder_checkpoint(tmp_path / "d", "distilbert", tokenizer=False, vocab_size=50)
    with Checkpoint(tmp_path / "d") as c:
        tensors = {k: np.asarray(c[k]) for k in c.keys()}
    tensors["pooler.dense.weight"] = np.zeros((32, 32), np.float32)
    tensors["pooler.dense.bias"] = np.zeros(32, np.float32)
    with pytest.raises(ValueError, match="unexpected tensor.*pooler.dense.bias"):
        BertModel.from_weights(d, tensors)


def test_distilbert_sinusoidal_positions_are_read_from_the_checkpoint(tmp_path, rng):
    """sinusoidal_pos_embds: transformers computes the table at init and saves it as
    position_embeddings.weight; the loader reads that tensor (the flag is kept in the
    config) and the forward matches the reference on it."""
    from fastattn.io.checkpoint import save_checkpoint
    from fastattn.testing import encoder_test_init, random_checkpoint
    config = dict(encoder_config("distilbert", vocab_size=50), sinusoidal_pos_embds=True)
    tensors = random_checkpoint(config, **encoder_test_init(3))
    n, dim = tensors["embeddings.position_embeddings.weight"].shape
    pos = np.arange(n)[:, None] / np.power(10000, 2 * (np.arange(dim) // 2) / dim)[None]
    tensors["embeddings.position_embeddings.weight"] = np.where(
        np.arange(dim) % 2 == 0, np.sin(pos), np.cos(pos)).astype(np.float32)
    save_checkpoint(tmp_path, config, tensors)
    model = fastattn.load(tmp_path)
    assert model.config.sinusoidal_pos_embds
    ids = rng.integers(5, 50, (2, 7))
    want = ref.bert({k: v.astype(np.float64) for k, v in tensors.items()}, model.config, ids)
    np.testing.assert_allclose(model(ids), want, rtol=0, atol=HIDDEN_ATOL)


# --------------------------------------------------------------------------- transformers
HF_BARE = {"bert": "BertModel", "roberta": "RobertaModel", "xlm-roberta": "XLMRobertaModel",
           "distilbert": "DistilBertModel", "electra": "ElectraModel"}


def hf_config(transformers, config):
    """transformers' config class of a config.json dict (encoder_config's)."""
    cls = transformers.AutoConfig.for_model(config["model_type"]).__class__
    return cls(**{k: v for k, v in config.items() if k not in ("model_type",)})


def randomize(torch, model, seed=0):
    """transformers' own init (std 0.02, zero biases, unit gains) leaves outputs nearly
    constant; the tests' scales instead (encoder_test_init's)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                base = 1.0 if ("LayerNorm" in name or "layer_norm" in name) and \
                    name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            elif "embeddings" in name and "project" not in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * p.shape[1] ** -0.5)


@pytest.mark.parametrize("name", FAMILIES)
def test_transformers_save_pretrained_loads(name, rng, tmp_path):
    """transformers' bare model of each family (XLMRobertaModel, DistilBertModel, ...), its
    weights randomized, written by save_pretrained (its config.json, its names), loads with
    fastattn.load and gives transformers' last hidden states (and pooler output)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = encoder_config(name, vocab_size=50)
    hf = getattr(transformers, HF_BARE[name])(hf_config(transformers, config))
    randomize(torch, hf)
    hf.eval().save_pretrained(tmp_path)
    model = fastattn.load(tmp_path)
    assert model.config.model_type == name and model.task is None
    ids, mask = batch(rng, config, [10, 6, 3], 10)
    with torch.no_grad():
        out = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    ours = model(ids, mask, return_dict=True)
    real = mask.astype(bool)
    np.testing.assert_allclose(ours.last_hidden_state[real],
                               out.last_hidden_state.numpy()[real], rtol=0,
                               atol=2 * HIDDEN_ATOL)
    if getattr(out, "pooler_output", None) is not None:
        np.testing.assert_allclose(ours.pooler_output, out.pooler_output.numpy(), rtol=0,
                                   atol=2 * HIDDEN_ATOL)


@pytest.mark.parametrize("name", ["roberta", "xlm-roberta"])
def test_roberta_left_padding_as_transformers(name, rng, tmp_path):
    """Left padding through transformers' own position ids (create_position_ids_from_input_ids)
    on a checkpoint fastattn.testing wrote (no torch needed to write it)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = write_encoder_checkpoint(tmp_path, name, tokenizer=False, vocab_size=50)
    model = fastattn.load(tmp_path)
    hf = transformers.AutoModel.from_pretrained(tmp_path).eval()
    ids, mask = batch(rng, config, [9, 4, 6], 9, left=True)
    with torch.no_grad():
        want = hf(input_ids=torch.from_numpy(ids),
                  attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()
    real = mask.astype(bool)
    np.testing.assert_allclose(model(ids, mask)[real], want[real], rtol=0,
                               atol=2 * HIDDEN_ATOL)
