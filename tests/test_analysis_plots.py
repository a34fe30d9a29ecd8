"""The analysis pictures and what they rest on: the crossover length (attention's QK^T + PV
FLOPs reaching the linear layers') against hand computations and cost()'s counts, the bench
rows' roofline coordinates, a decoder's returned attentions against transformers', the PNGs
(skipped without matplotlib) and the CLI's exit codes and errors."""
from __future__ import annotations

import json
import struct

import fastattn
import numpy as np
import pytest
from fastattn import analysis
from fastattn.analysis.bench_points import point
from fastattn.analysis.crossover import crossover, split_flops
from fastattn.analysis.machine import Machine
from fastattn.testing import random_checkpoint

GPT2_SMALL = dict(model_type="gpt2", n_embd=768, n_head=12, n_layer=12, n_positions=1024,
                  vocab_size=50257)
BERT_BASE = dict(model_type="bert", hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512,
                 vocab_size=30522)
TINYLLAMA = dict(model_type="llama", hidden_size=2048, intermediate_size=5632,
                 num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                 vocab_size=32000)
GPT2 = dict(model_type="gpt2", n_embd=32, n_head=4, n_layer=2, n_positions=64, vocab_size=100)
BERT = dict(model_type="bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=64, vocab_size=100)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAKE_MACHINE = Machine(200e9, 25e9, 2, "avx512", "test CPU", "now", 20e-6)


# -- the crossover ------------------------------------------------------------------------------

def test_crossover_of_gpt2_small_by_hand():
    # blocks: 2 L (12 h^2) = 2 h L (L + 1)  ->  L = 12 h - 1 = 9215 (exactly: equal FLOPs)
    h, vocab, n = 768, 50257, 12
    blocks = crossover(GPT2_SMALL, head=False)
    assert blocks.length == pytest.approx(12 * h - 1) and blocks.tokens == 9215
    # whole model: the LM head adds 2 L h V: L = (12 n h^2 + h V) / (n h) - 1 = 12 h + V / 12 - 1
    whole = crossover(GPT2_SMALL)
    assert whole.length == pytest.approx(12 * h + vocab / n - 1)       # 13403.08
    assert whole.tokens == 13404


def test_crossover_of_bert_base_and_tinyllama_by_hand():
    # bidirectional: 2 L 12 h^2 = 4 h L^2 -> L = 6 h; the pooler's fixed 2 h^2 moves the root
    # by 2 h^2 / (2 L lin) ~ 1e-2 token
    assert crossover(BERT_BASE, head=False).length == pytest.approx(6 * 768)
    assert crossover(BERT_BASE).length == pytest.approx(6 * 768, abs=0.01)
    # LLaMA: P = h (Hq + 2 Hkv) D + Hq D h + 3 h I, Hq D = h -> L = P / h - 1
    h, inter, kv = 2048, 5632, 4 * 64
    p = h * (h + 2 * kv) + h * h + 3 * h * inter
    assert crossover(TINYLLAMA, head=False).length == pytest.approx(p / h - 1)   # 21503


@pytest.mark.parametrize("config", [GPT2_SMALL, BERT_BASE, TINYLLAMA, GPT2, BERT,
                                    dict(TINYLLAMA, model_type="mistral", sliding_window=16384)],
                         ids=["gpt2", "bert", "tinyllama", "gpt2-tiny", "bert-tiny",
                              "mistral-window"])
@pytest.mark.parametrize("head", [False, True])
def test_crossover_is_where_costs_counts_cross(config, head):
    # the formula against cost()'s own part counts one token either side of the answer
    c = crossover(config, head=head)
    at, before = (split_flops(analysis.cost(config, seq_len=n), head=head)
                  for n in (c.tokens, c.tokens - 1))
    assert at[1] >= at[0]
    assert before[1] < before[0]
    assert c.tokens - 1 < c.length <= c.tokens + 1e-9


def test_a_short_sliding_window_never_crosses():
    # window 4096: attention grows by 4 Hq D W = 4 * 2048 * 4096 per token and layer, less
    # than the linear layers' 2 P ~ 8.8e7; it never catches up
    c = crossover(dict(TINYLLAMA, model_type="mistral", sliding_window=4096))
    assert c.length is None and c.tokens is None
    linear, attention = split_flops(analysis.cost(dict(TINYLLAMA, model_type="mistral",
                                                       sliding_window=4096), seq_len=10 ** 6))
    assert attention < linear


def test_crossover_refuses_vision_models():
    with pytest.raises(ValueError, match="text models only"):
        crossover(dict(model_type="vit", hidden_size=32, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=64, image_size=32,
                       patch_size=8))


# -- bench rows on the roofline -------------------------------------------------------------------

def _row(op, shape, flops=0.0, nbytes=0, **extra):
    return dict(op=op, shape=shape, flops=flops, bytes=nbytes,
                seconds={"fastattn": 0.01, "numpy": 0.02}, **extra)


def test_bench_points_fill_in_the_missing_count():
    # matmul: the compulsory traffic 4 (MK + KN + MN)
    assert point(_row("matmul", "64x64x64", 2.0 * 64 ** 3)) == (2.0 * 64 ** 3, 4 * 3 * 64 * 64)
    assert point(_row("vit matmul", "197x768 @ 768x3072 +gelu", 1.0))[1] == \
        4 * (197 * 768 + 768 * 3072 + 197 * 3072)
    assert point(_row("matmul batched", "32x(128x64@64x128)", 1.0))[1] == \
        4 * 32 * (128 * 64 + 64 * 128 + 128 * 128)
    # attention: q, k, v, out
    assert point(_row("attention causal", "B1 H16 L1024 D64", 1.0))[1] == 4 * 4 * 16 * 1024 * 64
    # conv: input, weight, output; 3x3/2 on 28^2 with padding 1 -> 14^2
    assert point(_row("conv2d", "3x3/2 128->128 28^2 b8", 1.0))[1] == \
        4 * (8 * 128 * 28 * 28 + 128 * 128 * 9 + 8 * 128 * 14 * 14)
    # softmax 5 FLOPs per element; the row's bytes read x and write out
    assert point(_row("softmax", "16x16", nbytes=2 * 4 * 256)) == (5 * 256, 2 * 4 * 256)
    # both counts given: kept
    assert point(_row("attention decode", "Hq32 Hkv8 Lk4096 D128", 3.0, 7)) == (3.0, 7.0)
    # no arithmetic, or a shape no rule knows
    assert point(_row("kv_append 1 token", "after 1000 Hkv8 D128", nbytes=16384)) is None
    assert point(_row("wordpiece_cold", "1.05MB/12134lines")) is None


def test_bench_points_of_model_rows_come_from_cost():
    c = analysis.cost(GPT2_SMALL, seq_len=512)
    assert point(_row("gpt2 prefill", "124M 512 tok")) == (c.flops, c.bytes)
    # generate: the prompt's prefill and new - 1 decode steps
    pre = analysis.cost(GPT2_SMALL, seq_len=128)
    dec = analysis.cost(GPT2_SMALL, seq_len=127, mode="decode", context=128)
    assert point(_row("gpt2 generate", "124M 128+128 tok")) == pytest.approx(
        (pre.flops + dec.flops, pre.bytes + dec.bytes))
    # a row's own FLOPs are kept (its GFLOP/s column used them)
    bert = point(_row("bert forward", "BERT-base B8 L128", 1.5e11))
    assert bert[0] == 1.5e11
    assert bert[1] == analysis.cost(dict(BERT_BASE, type_vocab_size=2), batch=8,
                                    seq_len=128).bytes


# -- a decoder's attentions ------------------------------------------------------------------

def test_decoder_returns_its_attentions_as_transformers():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from fastattn.bench.models import gpt2_model
    model, hf = gpt2_model(dict(vocab=100, embd=32, heads=4, layers=2, positions=64), torch)
    hf.set_attn_implementation("eager")
    ids = np.random.default_rng(0).integers(0, 100, (2, 9))
    out = model(ids, output_attentions=True)
    with torch.no_grad():
        ref = hf(torch.from_numpy(ids), output_attentions=True)
    assert len(out.attentions) == 2
    for got, want in zip(out.attentions, ref.attentions):
        assert got.shape == (2, 4, 9, 9)
        # probabilities in [0, 1] from float32 softmaxes of the same scores: ~1e-6 apart
        np.testing.assert_allclose(got, want.numpy(), atol=2e-6)
    np.testing.assert_array_equal(out.logits, model(ids))   # the same forward either way


# -- pictures --------------------------------------------------------------------------------------

@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


def is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" \
        and min(struct.unpack(">II", data[16:24])) > 100


def test_cost_chart_writes_a_png(mpl, tmp_path):
    from fastattn.analysis.plots import cost_chart
    fig, blocks, whole = cost_chart(GPT2_SMALL, tmp_path / "c.png", max_seq=20000)
    assert is_png(tmp_path / "c.png")
    assert (blocks.tokens, whole.tokens) == (9215, 13404)
    assert len(fig.axes[0].get_lines()) == 3 + 2      # three curves, two crossover lines


def test_roofline_and_speedup_charts_write_pngs(mpl, tmp_path):
    from fastattn.analysis.plots import placed_rows, roofline_chart, speedup_chart
    rows = [_row("matmul", "64x64x64", 2.0 * 64 ** 3, speedup_vs_numpy=1.3),
            _row("softmax", "16x16", nbytes=2048, speedup_vs_torch=0.8),
            _row("wordpiece_cold", "1.05MB/12134lines")]
    placed, missing = placed_rows(rows)
    assert [r["op"] for r, *_ in placed] == ["matmul", "softmax"]
    assert missing == ["wordpiece_cold 1.05MB/12134lines"]
    roofline_chart(rows, FAKE_MACHINE, tmp_path / "r.png")
    speedup_chart(rows, tmp_path / "s.png")
    assert is_png(tmp_path / "r.png") and is_png(tmp_path / "s.png")
    with pytest.raises(ValueError, match="no row has"):
        speedup_chart(rows[2:], tmp_path / "none.png")


# -- the CLI ---------------------------------------------------------------------------------------

def _run_cli(argv, capsys):
    from fastattn.cli import main
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_analyze_plot_cost(mpl, tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(GPT2_SMALL))
    code, out, _ = _run_cli(["analyze", str(tmp_path), "--plot-cost", str(tmp_path / "c.png"),
                             "--max-seq", "16384"], capsys)
    assert code == 0 and is_png(tmp_path / "c.png")
    assert "at 9215 tokens" in out and "at 13404 tokens" in out
    code, _, err = _run_cli(["analyze", str(tmp_path), "--plot-cost", str(tmp_path / "d.png"),
                             "--max-seq", "1"], capsys)
    assert code == 2 and "--max-seq must be >= 2" in err
    code, _, err = _run_cli(["analyze", str(tmp_path), "--max-seq", "100"], capsys)
    assert code == 2 and "--plot-cost" in err


def test_cli_bench_plots_a_saved_run(mpl, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(analysis, "machine", lambda: FAKE_MACHINE)   # no measurement here
    run = {"date": "2026-11-30", "results": [
        _row("matmul", "64x64x64", 2.0 * 64 ** 3, speedup_vs_numpy=1.3),
        _row("attention causal", "B1 H2 L64 D16", 1e6, speedup_vs_torch=1.6)]}
    (tmp_path / "run.json").write_text(json.dumps(run))
    code, _, err = _run_cli(["bench", "--from-json", str(tmp_path / "run.json"), "--plot",
                             str(tmp_path / "roof.png")], capsys)
    assert code == 0, err
    assert is_png(tmp_path / "roof.png") and is_png(tmp_path / "roof_speedup.png")
    code, _, err = _run_cli(["bench", "--from-json", str(tmp_path / "run.json")], capsys)
    assert code == 2 and "--from-json needs --plot" in err
    (tmp_path / "bad.json").write_text("[1, 2]")
    code, _, err = _run_cli(["bench", "--from-json", str(tmp_path / "bad.json"), "--plot",
                             str(tmp_path / "x.png")], capsys)
    assert code == 2 and "not a `fastattn bench --json` run" in err
    code, _, err = _run_cli(["bench", "--from-json", str(tmp_path / "missing.json"), "--plot",
                             str(tmp_path / "x.png")], capsys)
    assert code == 2 and "cannot read" in err
    assert not (tmp_path / "x.png").exists()


def test_cli_bench_runs_and_plots(mpl, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(analysis, "machine", lambda: FAKE_MACHINE)
    code, out, err = _run_cli(["bench", "--quick", "--suite", "softmax", "--repeats", "1",
                               "--filter", "log_softmax", "--plot", str(tmp_path / "r.png")],
                              capsys)
    assert code == 0, err
    assert "log_softmax" in out
    assert is_png(tmp_path / "r.png") and is_png(tmp_path / "r_speedup.png")


def _bert_dir(path):
    from fastattn import WordPieceTokenizer
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat"]
    config = dict(BERT, vocab_size=len(vocab))
    fastattn.save_checkpoint(path, config, random_checkpoint(config))
    WordPieceTokenizer(vocab).save_pretrained(path)
    return path


def test_cli_attention_of_bert(mpl, tmp_path, capsys):
    d = _bert_dir(tmp_path / "bert")
    out_png = tmp_path / "heat.png"
    code, _, err = _run_cli(["attention", str(d), "--text", "the cat sat on the mat",
                             "--layer", "1", "--head", "2", "--out", str(out_png)], capsys)
    assert code == 0, err
    assert is_png(out_png) and "layer 1 of 2, head 2, 8 tokens" in err
    code, _, err = _run_cli(["attention", str(d), "--text", "the cat", "--out",
                             str(tmp_path / "mean.png")], capsys)
    assert code == 0 and "layer 1 of 2, mean over heads" in err


def test_attention_map_is_the_models_probabilities(tmp_path):
    from fastattn.analysis.attention_map import text_attention
    d = _bert_dir(tmp_path / "bert")
    tokens, m, _ = text_attention(d, "the cat sat", layer=0, head=3)
    assert tokens == ["[CLS]", "the", "cat", "sat", "[SEP]"]
    model = fastattn.load(d)
    ids = fastattn.WordPieceTokenizer.from_pretrained(d).encode("the cat sat").ids
    want = model(np.array([ids]), output_attentions=True).attentions[0][0, 3]
    np.testing.assert_array_equal(m, want)
    _, mean, _ = text_attention(d, "the cat sat", layer=-2, head="mean", model=model)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, atol=1e-5)   # rows of probabilities


@pytest.mark.parametrize("argv, message", [
    (["--layer", "2"], "layer must be an integer in [-2, 1] (the model has 2 layers)"),
    (["--layer", "-3"], "layer must be an integer in [-2, 1]"),
    (["--head", "4"], "head must be 'mean' or an integer in [0, 3] (the model has 4 heads"),
    (["--head", "max"], "--head must be 'mean' or a head index, got 'max'"),
])
def test_cli_attention_errors(mpl, tmp_path, capsys, argv, message):
    d = _bert_dir(tmp_path / "bert")
    code, _, err = _run_cli(["attention", str(d), "--text", "the cat", "--out",
                             str(tmp_path / "x.png"), *argv], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "x.png").exists()


def test_cli_attention_refuses_a_vision_model(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(dict(
        model_type="vit", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, image_size=32, patch_size=8)))
    code, _, err = _run_cli(["attention", str(tmp_path), "--text", "x", "--out",
                             str(tmp_path / "x.png")], capsys)
    assert code == 2 and "text models only" in err


def test_cli_attention_of_a_decoder(mpl, tmp_path, capsys):
    tokenizers = pytest.importorskip("tokenizers")
    words = ["[UNK]", "the", "cat", "sat", "on", "mat"]
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(
        {w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    config = dict(GPT2, vocab_size=len(words))
    fastattn.save_checkpoint(tmp_path, config, random_checkpoint(config, prefix="transformer."))
    tok.save(str(tmp_path / "tokenizer.json"))
    code, _, err = _run_cli(["attention", str(tmp_path), "--text", "the cat sat on the mat",
                             "--head", "0", "--out", str(tmp_path / "h.png")], capsys)
    assert code == 0, err
    assert is_png(tmp_path / "h.png") and "gpt2: layer 1 of 2, head 0, 6 tokens" in err
    from fastattn.analysis.attention_map import text_attention
    tokens, m, _ = text_attention(tmp_path, "the cat sat", layer=0, head=1)
    assert tokens == ["the", "cat", "sat"]
    assert np.all(np.triu(m, 1) == 0)                    # causal: no weight on later tokens
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-6)


def test_goals_command_refuses_unknown_cases(capsys):
    # (the goal shapes themselves take minutes and gigabytes: docs/analysis.md has their run)
    from fastattn.analysis.goals import main
    with pytest.raises(SystemExit) as e:
        main(["--only", "gpt2,gpt5"])
    assert e.value.code == 2 and "unknown case(s) gpt5" in capsys.readouterr().err


@pytest.mark.parametrize("model_type", ["roberta", "distilbert"])
def test_text_attention_of_other_encoder_families(tmp_path, model_type):
    """fastattn attention reads every BERT-family directory (tokenizer from load_tokenizer):
    one row per token, each a probability distribution."""
    if model_type == "roberta":
        pytest.importorskip("tokenizers")
    from fastattn.analysis.attention_map import text_attention
    from fastattn.testing import write_encoder_checkpoint
    write_encoder_checkpoint(tmp_path, model_type)
    tokens, matrix, title = text_attention(tmp_path, "the cat sat on the mat", head=0)
    assert matrix.shape == (len(tokens), len(tokens)) and model_type in title
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
