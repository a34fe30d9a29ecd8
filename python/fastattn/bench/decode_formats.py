"""Decode and prefill per weight format (issue 15), TinyLlama-1.1B shape with random weights
and vocabulary 2000 (the issue's llama-bench setting), and the resident memory of a load.

Per format (float32, bfloat16, float16, q8, q4): one KV-cached decode step at context 128
(tokens/s, against the format's bandwidth bound: bytes of the Linear weights one token reads /
the measured read bandwidth of fastattn.analysis.machine) and a 128-token prefill (tokens/s).
The llama.cpp comparison runs `llama-bench` when it is on PATH (its own model files are
needed: LLAMA_BENCH_MODELS=dir of F32/F16/Q8_0/Q4_0 .gguf files); otherwise the rows carry the
issue's figures for llama.cpp on this kind of machine as the reference (`LLAMA_CPP`).

Resident memory (`load_memory`): a subprocess loads a checkpoint with fastattn.load(weights=)
and reports its RSS growth (VmRSS, RssAnon, RssFile of /proc/self/status) after the load and
after one forward, next to `held_bytes` (the bytes the model's arrays and matrices hold).

    python -m fastattn.bench.decode_formats [--quick] [--memory]
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np

from . import Case
from ..weight_formats import WEIGHT_FORMATS
from .models import decode_step_fn

FORMATS = WEIGHT_FORMATS
TINYLLAMA = dict(vocab=2000, hidden=2048, layers=22, heads=32, kv_heads=4, inter=5632)
QUICK = dict(vocab=500, hidden=128, layers=2, heads=4, kv_heads=2, inter=256)
CONTEXT, PREFILL = 128, 128
# the llama-bench figures (tokens/s, AMD EPYC Zen 4, 2 threads, flash attention,
# TinyLlama-1.1B shape, vocab 2000): (prefill 128, decode), midpoints of the ranges given
LLAMA_CPP = {"float32": ("F32", 77.5, 8.15), "float16": ("F16", 96.0, 17.1),
             "bfloat16": ("F16", 96.0, 17.1), "q8": ("Q8_0", 113.0, 26.5),
             "q4": ("Q4_0", 134.0, 53.8)}


def llama_config(shape) -> dict:
    h, hq = shape["hidden"], shape["heads"]
    return dict(model_type="llama", hidden_size=h, intermediate_size=shape["inter"],
                num_hidden_layers=shape["layers"], num_attention_heads=hq,
                num_key_value_heads=shape["kv_heads"], head_dim=h // hq, rms_norm_eps=1e-5,
                vocab_size=shape["vocab"], hidden_act="silu", tie_word_embeddings=False,
                rope_theta=10000.0, max_position_embeddings=2048)


def matrices(model) -> list:
    """The PackedMatrix of every Linear of a DecoderLM (blocks and LM head)."""
    from ..layers import Linear
    found, seen = [], set()

    def walk(obj, depth=0):
        if id(obj) in seen or depth > 6:
            return
        seen.add(id(obj))
        if isinstance(obj, Linear):
            found.append(obj.weight)
        elif isinstance(obj, (list, tuple)):
            for x in obj:
                walk(x, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, (np.ndarray, type)):
            for x in vars(obj).values():
                walk(x, depth + 1)
    walk(model)
    return found


def held_bytes(model) -> int:
    """Bytes a model holds in its weights: every PackedMatrix's nbytes plus every float32
    array it keeps (embeddings, norms, biases), each buffer once (views of one mapping or
    array counted by their base)."""
    from ..ops import PackedMatrix
    total, seen, bases = 0, set(), set()

    def walk(obj, depth=0):
        nonlocal total
        if id(obj) in seen or depth > 8:
            return
        seen.add(id(obj))
        if isinstance(obj, PackedMatrix):
            total += obj.nbytes
        elif isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base, np.ndarray) and base.base is not None:
                base = base.base
            key = (id(base), obj.__array_interface__["data"][0])
            if key not in bases:
                bases.add(key)
                total += obj.nbytes
        elif isinstance(obj, (list, tuple)):
            for x in obj:
                walk(x, depth + 1)
        elif isinstance(obj, dict):
            for x in obj.values():
                walk(x, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            for x in vars(obj).values():
                walk(x, depth + 1)
    walk(model)
    return total


def resident() -> dict:
    """This process's VmRSS, RssAnon and RssFile in bytes (/proc/self/status)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024
    return out


_CHILD = r"""
import gc, json, sys
import numpy as np
import fastattn
from fastattn.bench.decode_formats import held_bytes, resident
path, weights, mmap = sys.argv[1], sys.argv[2], sys.argv[3] == "mmap"
gc.collect()
before = resident()
model = fastattn.load(path, weights=weights, mmap=mmap)
gc.collect()
loaded = resident()
held = held_bytes(model)
model(np.zeros((1, 1), np.int64))
gc.collect()
used = resident()
print(json.dumps({"held": held,
                  "load": {k: loaded[k] - before[k] for k in before},
                  "forward": {k: used[k] - before[k] for k in before}}))
"""


def load_memory(path, weights: str, mmap: bool = True) -> dict:
    """{"held": bytes the model holds, "load": RSS growth by fastattn.load(path, weights=,
    mmap=),
    "forward": RSS growth after one 1-token forward} (growths: dicts VmRSS / RssAnon /
    RssFile, bytes), measured in a fresh interpreter so nothing else is counted."""
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", _CHILD, os.fspath(path), weights,
                           "mmap" if mmap else "read"], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"load_memory: the child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def format_model(tensors: dict, config: dict, weights: str):
    from ..models.llama import build_llama
    return build_llama(types.SimpleNamespace(**config), tensors, weights=weights)


def cases(quick: bool = False):
    from ..testing import random_checkpoint
    shape = QUICK if quick else TINYLLAMA
    config = llama_config(shape)
    tensors = random_checkpoint(config)
    label = "tiny" if quick else "1.1B v2000"
    ids = np.random.default_rng(2).integers(0, shape["vocab"], (1, PREFILL))
    for fmt in FORMATS:
        model = format_model(tensors, config, fmt)
        read = sum(m.nbytes for m in matrices(model))   # bytes of weights one token streams
        ref = LLAMA_CPP[fmt]
        step = decode_step_fn(model, CONTEXT, shape["vocab"], spare=256)
        yield Case("llama decode", f"{label} {fmt} ctx {CONTEXT}", {"fastattn": step}, bytes=read,
                   goal=f">= llama.cpp {ref[0]} {ref[2]} tok/s, >= 80% of BW bound",
                   extra={"weight_bytes": read, "format": fmt, "llama_cpp_tok_s": ref[2]})
        yield Case("llama prefill", f"{label} {fmt} {PREFILL} tok",
                   {"fastattn": (lambda model=model: model(ids))},
                   goal=f">= llama.cpp {ref[0]} {ref[1]} tok/s",
                   extra={"tokens": PREFILL, "format": fmt, "llama_cpp_tok_s": ref[1]})
        del model


def llama_bench() -> str | None:
    """llama-bench's output over $LLAMA_BENCH_MODELS/*.gguf (prefill 128, decode 128, 2
    threads, flash attention), or None when llama-bench or the models are not there."""
    exe = shutil.which("llama-bench")
    folder = os.environ.get("LLAMA_BENCH_MODELS")
    if exe is None or not folder or not os.path.isdir(folder):
        return None
    models = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".gguf"))
    if not models:
        return None
    args = [exe, "-p", str(PREFILL), "-n", "128", "-t", "2", "-fa", "1"]
    for m in models:
        args += ["-m", m]
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


def memory_rows(shape, formats=FORMATS) -> list[dict]:
    """load_memory of each format for a random checkpoint of `shape` written to a temporary
    directory (float32), plus its size."""
    from ..io import save_checkpoint
    from ..testing import random_checkpoint
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tensors = random_checkpoint(llama_config(shape))
        save_checkpoint(tmp, llama_config(shape), tensors)
        del tensors
        for fmt in formats:
            rows.append(dict(format=fmt, **load_memory(tmp, fmt)))
    return rows


# accuracy models: GPT-2 small's shape, TinyLlama's width with 4 layers (vocab 2000), and
# all-MiniLM-L6-v2's shape for sentence embeddings (random weights: transformers' init)
ACCURACY_GPT2 = dict(model_type="gpt2", n_embd=768, n_head=12, n_layer=12, n_positions=1024,
                     vocab_size=50257, layer_norm_epsilon=1e-5, activation_function="gelu_new")
ACCURACY_LLAMA = dict(llama_config(dict(TINYLLAMA, layers=4)), max_position_embeddings=2048)
ACCURACY_MINILM = dict(model_type="bert", hidden_size=384, num_hidden_layers=6,
                       num_attention_heads=12, intermediate_size=1536, vocab_size=30522,
                       max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                       hidden_act="gelu", architectures=["BertModel"])


def decoder_accuracy(config, prompt: int = 16, new: int = 64, seed: int = 0) -> list[dict]:
    """Per format vs float32 on a random checkpoint of `config`: max |logit difference| over
    the float32 greedy continuation (prompt + new tokens, teacher-forced), the rms of the
    float32 logits, the share of positions whose top-1 agrees (teacher-forced), and the
    number of tokens a free-running greedy continuation in the format matches float32's
    before the first difference."""
    from ..loading import builder_for
    tensors = random_checkpoint_of(config, seed)
    build = builder_for(config["model_type"])
    cfg = types.SimpleNamespace(**config) if config["model_type"] == "llama" else config
    reference = build(cfg, tensors, weights="float32")
    ids = np.random.default_rng(seed).integers(0, config["vocab_size"], (1, prompt))
    tokens = reference.generate(ids, new, eos_token_id=None)
    seq = tokens if tokens.shape[1] == prompt + new else np.concatenate([ids, tokens], 1)
    expected = reference(seq)[0, prompt - 1:-1]
    rows = []
    for fmt in FORMATS[1:]:
        model = build(cfg, tensors, weights=fmt)
        logits = model(seq)[0, prompt - 1:-1]
        free = model.generate(ids, new, eos_token_id=None)
        free = free if free.shape[1] == prompt + new else np.concatenate([ids, free], 1)
        same = np.flatnonzero(free[0, prompt:] != seq[0, prompt:])
        rows.append(dict(format=fmt, max_abs_diff=float(np.abs(logits - expected).max()),
                         logit_rms=float(np.sqrt(np.mean(expected**2))),
                         top1_agreement=float(np.mean(np.argmax(logits, -1)
                                                      == np.argmax(expected, -1))),
                         greedy_prefix=int(same[0]) if same.size else new))
        del model
    return rows


def random_checkpoint_of(config, seed=0):
    from ..testing import random_checkpoint
    return random_checkpoint(config, seed)


def embedding_accuracy(config=None, seed: int = 0) -> list[dict]:
    """Per format: min and mean cosine similarity to float32 of mean-pooled sentence embeddings
    (8 random sentences of 32 tokens) of a random BERT of `config` (MiniLM's shape)."""
    from ..models.bert import BertModel
    config = config or ACCURACY_MINILM
    tensors = random_checkpoint_of(config, seed)
    ids = np.random.default_rng(seed).integers(5, config["vocab_size"], (8, 32))
    mask = np.ones_like(ids)
    a = BertModel.from_weights(config, tensors, weights="float32")(ids, mask).mean(1)
    rows = []
    for fmt in FORMATS[1:]:
        b = BertModel.from_weights(config, tensors, weights=fmt)(ids, mask).mean(1)
        cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        rows.append(dict(format=fmt, min_cos=float(cos.min()), mean_cos=float(cos.mean())))
    return rows


def main() -> None:
    import argparse

    from . import run
    from .. import get_num_threads
    from ..analysis.machine import machine
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory", action="store_true",
                        help="also the resident memory of a load per format")
    parser.add_argument("--accuracy", action="store_true",
                        help="only the accuracy tables (no timing)")
    args = parser.parse_args()
    if args.accuracy:
        for name, config in (("gpt2", ACCURACY_GPT2), ("llama", ACCURACY_LLAMA)):
            for r in decoder_accuracy(config):
                print(f"accuracy {name:<6} {r['format']:<9} max|dlogit| {r['max_abs_diff']:.4f} "
                      f"(logit rms {r['logit_rms']:.3f})  top-1 agreement "
                      f"{100 * r['top1_agreement']:.1f}%  greedy prefix {r['greedy_prefix']}",
                      flush=True)
        for r in embedding_accuracy():
            print(f"accuracy minilm {r['format']:<9} cosine min {r['min_cos']:.6f} "
                  f"mean {r['mean_cos']:.6f}", flush=True)
        return
    bw = machine().bandwidth
    print(f"# read bandwidth {bw / 1e9:.1f} GB/s ({get_num_threads()} threads, "
          "fastattn.analysis.machine)")
    bench = llama_bench()
    if bench:
        print(bench)
    else:
        print("# llama-bench not on PATH (or no LLAMA_BENCH_MODELS): llama.cpp figures are "
              "the issue's reference (Zen 4, 2 threads)")
    for case in cases(args.quick):
        (r,) = run([case], repeats=args.repeats)
        s = r.seconds["fastattn"]
        if r.bytes:
            bound = bw / r.bytes
            line = (f"{r.op:<14} {r.shape:<28} {1 / s:7.2f} tok/s  {r.bytes / 2**20:8.1f} MiB/tok"
                    f"  bound {bound:7.2f} tok/s -> {100 / s / bound:4.0f}%")
        else:
            line = f"{r.op:<14} {r.shape:<28} {r.extra['tokens'] / s:7.1f} tok/s"
        print(line + f"  (llama.cpp ref {r.extra['llama_cpp_tok_s']})", flush=True)
    if args.memory:
        shape = QUICK if args.quick else TINYLLAMA
        for row in memory_rows(shape):
            print(f"memory {row['format']:<9} held {row['held'] / 2**20:8.1f} MiB  "
                  f"RSS after load +{row['load']['VmRSS'] / 2**20:8.1f} MiB (file "
                  f"{row['load']['RssFile'] / 2**20:.1f})  after a forward "
                  f"+{row['forward']['VmRSS'] / 2**20:8.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
