"""End-to-end model benchmarks (issue 6), random weights built here.

- GPT-2 small (124M): greedy generation of 128 tokens after a 128-token prompt, and a 512-token
  prefill (full logits), against Hugging Face `transformers` on PyTorch with the same weights
  (when both are importable).
- TinyLlama-1.1B shape (hidden 2048, 22 layers, 32 heads / 4 KV heads, intermediate 5632,
  float32): one decode step at context 128, against the bandwidth bound (bytes of weights read
  per token / measured read bandwidth, same run), and a 128-token prefill.

``python -m fastattn.bench.models`` prints tokens/s and the bandwidth figures."""
from __future__ import annotations

import types

import numpy as np

from ..testing import random_checkpoint
from . import Case, try_import_torch

GPT2_SMALL = dict(vocab=50257, embd=768, heads=12, layers=12, positions=1024)
GPT2_QUICK = dict(vocab=1000, embd=64, heads=4, layers=2, positions=512)
TINYLLAMA = dict(vocab=32000, hidden=2048, layers=22, heads=32, kv_heads=4, inter=5632)
TINYLLAMA_QUICK = dict(vocab=1000, hidden=256, layers=2, heads=8, kv_heads=2, inter=512)


def _hf_gpt2(shape, torch):
    """A transformers GPT2LMHeadModel with random weights, or None without transformers."""
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except Exception:
        return None
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=shape["vocab"], n_embd=shape["embd"], n_head=shape["heads"],
                     n_layer=shape["layers"], n_positions=shape["positions"],
                     bos_token_id=shape["vocab"] - 1, eos_token_id=shape["vocab"] - 1)
    return GPT2LMHeadModel(cfg).eval()


def gpt2_model(shape, torch=None):
    """(fastattn model, HF model or None), with the same weights when HF is available."""
    from ..models.gpt2 import build_gpt2
    config = dict(
        model_type="gpt2", n_embd=shape["embd"], n_head=shape["heads"],
        n_layer=shape["layers"], n_positions=shape["positions"], vocab_size=shape["vocab"],
        layer_norm_epsilon=1e-5, activation_function="gelu_new", n_inner=None,
        tie_word_embeddings=True, eos_token_id=None)
    hf = _hf_gpt2(shape, torch) if torch is not None else None
    if hf is not None:
        tensors = {k: v.detach().numpy() for k, v in hf.state_dict().items()
                   if k != "lm_head.weight"}
    else:
        tensors = random_checkpoint(config, prefix="transformer.")
    return build_gpt2(types.SimpleNamespace(**config), tensors), hf


def tinyllama_model(shape, seed=0):
    """A LLaMA-architecture DecoderLM of the given shape with random float32 weights; returns
    (model, bytes of weights one decode step reads: every projection and the LM head)."""
    from ..models.llama import build_llama
    h, hq = shape["hidden"], shape["heads"]
    config = dict(
        model_type="llama", hidden_size=h, intermediate_size=shape["inter"],
        num_hidden_layers=shape["layers"], num_attention_heads=hq,
        num_key_value_heads=shape["kv_heads"], head_dim=h // hq, rms_norm_eps=1e-5,
        vocab_size=shape["vocab"], hidden_act="silu", tie_word_embeddings=False,
        rope_theta=10000.0, rope_scaling=None, sliding_window=None,
        max_position_embeddings=2048, eos_token_id=None)
    tensors = random_checkpoint(config, seed)
    read = sum(a.nbytes for k, a in tensors.items() if "embed_tokens" not in k)
    return build_llama(types.SimpleNamespace(**config), tensors), read


def decode_step_fn(model, prompt: int, vocab: int, spare: int = 512):
    """One KV-cached decode step per call at context ~prompt (the cache is refilled when the
    spare slots run out, which a benchmark's few dozen calls never reach); also the
    decode_formats suite's step."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, (1, prompt))
    cache = model.start_generation(1, prompt + spare)
    token = np.array([[1]])

    def prefill():
        cache.reset()
        model.step(cache, ids, np.arange(prompt)[None], None)

    prefill()

    def step():
        if int(cache.lengths[0]) >= prompt + spare:
            prefill()
        model.step(cache, token, np.array([[int(cache.lengths[0])]]), None)
    return step


def cases(quick: bool = False):
    torch = try_import_torch()
    # -- GPT-2 small ------------------------------------------------------------------------
    shape = GPT2_QUICK if quick else GPT2_SMALL
    prompt, new, prefill_len = (16, 8, 64) if quick else (128, 128, 512)
    model, hf = gpt2_model(shape, torch)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, shape["vocab"], (1, prompt))
    long_ids = rng.integers(0, shape["vocab"], (1, prefill_len))
    impls = {"fastattn": lambda: model.generate(ids, new, eos_token_id=None)}
    pre = {"fastattn": lambda: model(long_ids)}
    if hf is not None:
        ids_t, long_t = torch.from_numpy(ids), torch.from_numpy(long_ids)

        # hf and the inputs bound as defaults: pytest-benchmark (bench/conftest.py) collects
        # every case before running any, after this generator has deleted its locals
        def hf_generate(hf=hf, ids_t=ids_t):
            with torch.no_grad():
                hf.generate(ids_t, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                            pad_token_id=0, attention_mask=torch.ones_like(ids_t))

        def hf_prefill(hf=hf, long_t=long_t):
            with torch.no_grad():
                hf(long_t)
        impls["torch"], pre["torch"] = hf_generate, hf_prefill
    label = "124M" if not quick else "tiny"
    yield Case("gpt2 generate", f"{label} {prompt}+{new} tok", impls,
               goal=">= 2x transformers (decode)", extra={"new_tokens": new})
    yield Case("gpt2 prefill", f"{label} {prefill_len} tok", pre,
               goal=">= 1.2x transformers", extra={"tokens": prefill_len})
    del model, hf, impls, pre
    # -- TinyLlama shape ---------------------------------------------------------------------
    shape = TINYLLAMA_QUICK if quick else TINYLLAMA
    model, read = tinyllama_model(shape)
    step = decode_step_fn(model, 128, shape["vocab"])
    label = "1.1B f32" if not quick else "tiny"
    yield Case("llama decode", f"{label} ctx 128", {"fastattn": step}, bytes=read,
               goal=">= 80% of read-BW bound", extra={"weight_bytes": read})
    ids = np.random.default_rng(2).integers(0, shape["vocab"], (1, 128))
    yield Case("llama prefill", f"{label} 128 tok", {"fastattn": lambda: model(ids)},
               goal=">= 1.2x 79 tok/s", extra={"tokens": 128})


def main() -> None:
    import argparse

    from . import run
    from .. import get_num_threads
    from .kv_cache import read_bandwidth
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads = get_num_threads()
    bw = read_bandwidth(threads=threads)
    print(f"# read bandwidth {bw / 1e9:.1f} GB/s ({threads} threads, numpy.sum over 1 GiB)")
    for case in cases(args.quick):
        (r,) = run([case], repeats=args.repeats)
        t = r.seconds
        line = f"{r.op:<14} {r.shape:<22} fastattn {t['fastattn'] * 1e3:9.1f} ms"
        if "torch" in t:
            line += f"  transformers {t['torch'] * 1e3:9.1f} ms  ({t['torch'] / t['fastattn']:.2f}x)"
        if "new_tokens" in r.extra:
            line += f"  {r.extra['new_tokens'] / t['fastattn']:.1f} tok/s (incl. prefill)"
        if "tokens" in r.extra:
            line += f"  {r.extra['tokens'] / t['fastattn']:.1f} tok/s"
        if r.bytes:
            bound = bw / r.bytes
            line += (f"  {1 / t['fastattn']:.2f} tok/s, {r.bytes / t['fastattn'] / 1e9:.1f} GB/s;"
                     f" bound {bound:.2f} tok/s ({r.bytes / 1e9:.2f} GB/token) ->"
                     f" {100 / t['fastattn'] / bound:.0f}% of bound")
        print(line, flush=True)


if __name__ == "__main__":
    main()
