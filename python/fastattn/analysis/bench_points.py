"""Where a ``fastattn bench`` row sits on the roofline: the FLOPs and the bytes of one call,
derived from the row's op and shape where the benchmark counted only one of them.

A row of ``fastattn bench --json`` (``Result.as_dict()``) has ``flops`` (the GFLOP/s column)
and ``bytes`` (the GB/s column), each 0 when the case does not define it: matmul and attention
rows count FLOPs, the row-wise ops count bytes, the models neither. The roofline needs both,
so this module fills in the missing one from the shape the row names, with the conventions of
fastattn.analysis:

- **bytes of a FLOP-counted kernel**: the compulsory traffic, each operand read once and the
  output written once, float32: a matmul (M, K) x (K, N) 4 (M K + K N + M N); attention
  q, k, v and out, 4 x 4 B H L D; a convolution input, weight and output;
- **FLOPs of a byte-counted element-wise op**: elements x analysis.layers' constants (softmax
  5, LayerNorm 8, RMSNorm 4, tanh- or erf-GELU 8, SiLU 4, SwiGLU 5 per output, RoPE 3 per
  rotated element; a pool: its window per output, an interpolation 2 FLOPs per tap);
- **models** (GPT-2, the TinyLlama shape, BERT, MiniLM, ViT, ResNet): ``analysis.cost`` of
  the config the bench case builds (bench/models.py, bert.py, vit.py, resnet.py), the row's
  own FLOPs kept when it has them. A GPT-2 generate row is its prompt's prefill plus the
  new tokens' decode steps.

Rows that do no arithmetic (a KV-cache append, the tokenizer) or whose shape no rule knows
are not placed: ``point(row)`` returns None and the picture lists them.
"""
from __future__ import annotations

import re

F = 4   # float32 bytes

# FLOPs per element (output) of the byte-counted element-wise rows; elements = bytes / (8 x
# tensors): each reads and writes float32 tensors of that size
ELEMENTWISE = {"softmax": (5, 2), "log_softmax": (5, 2), "layer_norm": (8, 2),
               "rms_norm": (4, 2), "gelu_tanh": (8, 2), "gelu": (8, 2), "silu": (4, 2),
               "swiglu": (5, 3)}   # op: (FLOPs per element, float32 tensors moved)
ROPE_FLOPS = 3


def _ints(pattern: str, text: str):
    m = re.search(pattern, text)
    return None if m is None else [int(g) if g and g.isdigit() else g for g in m.groups()]


def _matmul_bytes(row: dict):
    m = _ints(r"(?:(\d+)x\()?(\d+)x(\d+)\s*@\s*(\d+)x(\d+)", row["shape"])
    if m is not None:
        batch, rows, k, _, n = m
        return F * (batch or 1) * (rows * k + k * n + rows * n)
    m = _ints(r"^(\d+)x(\d+)x(\d+)$", row["shape"])      # "MxKxN"
    if m is not None:
        rows, k, n = m
        return F * (rows * k + k * n + rows * n)
    return None


def _attention_bytes(row: dict):
    m = _ints(r"B(\d+) H(\d+) L(\d+) D(\d+)", row["shape"])
    if m is None:
        return None
    b, h, length, d = m
    return F * 4 * b * h * length * d          # q, k, v read, out written


def _conv_bytes(row: dict):
    s = row["shape"]
    if row["op"] == "conv2d patch":           # "16/16 1024^2 3->768"
        m = _ints(r"(\d+)/(\d+) (\d+)\^2 (\d+)->(\d+)", s)
        if m is None:
            return None
        k, stride, hw, cin, cout = m
        ho = (hw - k) // stride + 1
        return F * (cin * hw * hw + cout * cin * k * k + cout * ho * ho)
    m = _ints(r"(depthwise )?(\d+)x(\d+)(?:/(\d+))? (\d+)->(\d+) (\d+)\^2(?: b(\d+))?", s)
    if m is None:
        return None
    depthwise, k, _, stride, cin, cout, hw, batch = m
    stride, batch = stride or 1, batch or 1
    groups = cin if depthwise else 1
    if row["op"] == "conv_transpose2d":       # kernel = stride: the output is hw x stride
        ho = hw * stride
    else:
        ho = (hw + 2 * (k // 2) - k) // stride + 1
    return F * (batch * cin * hw * hw + cout * (cin // groups) * k * k + batch * cout * ho * ho)


def _elementwise_flops(row: dict):
    op = row["op"]
    if op in ELEMENTWISE and row.get("bytes"):
        per, tensors = ELEMENTWISE[op]
        return per * row["bytes"] / (F * tensors)
    if op == "rope" and row.get("bytes"):
        rotated = 0.5 if "rot 64" in row["shape"] else 1.0     # rot 64 of 128 features
        return ROPE_FLOPS * rotated * row["bytes"] / (F * 2)
    s = row["shape"]
    if op == "max_pool2d":                    # "1x64x112x112 3x3/2": a max over the window
        m = _ints(r"(\d+)x(\d+)x(\d+)x(\d+) (\d+)x(\d+)/(\d+)", s)
        if m is None:
            return None
        n, c, h, w, kh, kw, stride = m
        ho, wo = (h + 2 * (kh // 2) - kh) // stride + 1, (w + 2 * (kw // 2) - kw) // stride + 1
        return (kh * kw - 1) * n * c * ho * wo
    if op == "adaptive_avg_pool2d":           # one add per input element
        m = _ints(r"(\d+)x(\d+)x(\d+)x(\d+)", s)
        return None if m is None else m[0] * m[1] * m[2] * m[3]
    if op == "interpolate":                   # a multiply-add per tap and output
        m = _ints(r"(\d+)x(\d+)x\d+x\d+ (\w+) (\d+)x(\d+)", s)
        if m is None:
            return None
        n, c, mode, ho, wo = m
        taps = {"bicubic": 16, "bilinear": 4, "nearest": 0}.get(mode)
        return None if not taps else 2 * taps * n * c * ho * wo
    return None


def _model_cost(row: dict):
    """(flops, bytes) of a model row from analysis.cost of the bench case's config."""
    from ..bench import models as bm
    from .cost import cost
    op, s = row["op"], row["shape"]
    if op.startswith("gpt2"):
        shape = bm.GPT2_QUICK if s.startswith("tiny") else bm.GPT2_SMALL
        config = dict(model_type="gpt2", n_embd=shape["embd"], n_head=shape["heads"],
                      n_layer=shape["layers"], n_positions=shape["positions"],
                      vocab_size=shape["vocab"])
        if op == "gpt2 prefill":
            m = _ints(r"(\d+) tok", s)
            return None if m is None else _sum(cost(config, seq_len=m[0]))
        m = _ints(r"(\d+)\+(\d+) tok", s)      # generate: prefill, then new - 1 steps
        if m is None:
            return None
        prompt, new = m
        parts = [cost(config, seq_len=prompt)]
        if new > 1:
            parts.append(cost(config, seq_len=new - 1, mode="decode", context=prompt))
        return _sum(*parts)
    if op.startswith("llama"):
        shape = bm.TINYLLAMA_QUICK if s.startswith("tiny") else bm.TINYLLAMA
        config = dict(model_type="llama", hidden_size=shape["hidden"],
                      intermediate_size=shape["inter"], num_hidden_layers=shape["layers"],
                      num_attention_heads=shape["heads"], num_key_value_heads=shape["kv_heads"],
                      vocab_size=shape["vocab"])
        if op == "llama decode":
            m = _ints(r"ctx (\d+)", s)
            return None if m is None else _sum(cost(config, seq_len=1, mode="decode",
                                                    context=m[0]))
        m = _ints(r"(\d+) tok", s)
        return None if m is None else _sum(cost(config, seq_len=m[0]))
    if op in ("bert forward", "bert embed"):
        from ..bench.bert import bert_config
        configs = {"BERT-base": bert_config(768, 12, 12, 3072),
                   "MiniLM-L6": bert_config(384, 6, 12, 1536),
                   "hidden 256 x 4 layers": bert_config(256, 4, 4, 1024, max_positions=128),
                   "hidden 256 x 2 layers": bert_config(256, 2, 4, 1024, vocab=2000,
                                                        max_positions=64)}
        m = _ints(r"(?:B|N)(\d+) L(\d+)$", s)
        name = next((k for k in configs if s.startswith(k)), None)
        if m is None or name is None:
            return None
        return _sum(cost(configs[name], batch=m[0], seq_len=m[1]))
    if op == "vit forward":
        from ..bench.vit import vit_config
        m = _ints(r"B(\d+)$", s)
        if m is None:
            return None
        config = (vit_config(64, 2, 4, 256, image=32, patch=8, labels=10)
                  if s.startswith("tiny") else vit_config())
        return _sum(cost(config, batch=m[0]))
    if op == "resnet forward":
        from ..bench.resnet import resnet_config
        m = _ints(r"(\d+)x(\d+) B(\d+)$", s)
        if m is None:
            return None
        config = (resnet_config(16, (32, 64), (1, 1), num_labels=10)
                  if s.startswith("width") else resnet_config())
        return _sum(cost(config, batch=m[2], image_size=m[0]))
    return None


def _sum(*costs):
    return sum(c.flops for c in costs), sum(c.bytes for c in costs)


def point(row: dict):
    """(flops, bytes) of one call of a bench row (module docstring), or None when the row
    does no arithmetic or no rule knows its shape."""
    flops, nbytes = float(row.get("flops") or 0.0), float(row.get("bytes") or 0.0)
    op = row["op"]
    model = None
    if op.split()[0] in ("gpt2", "llama", "bert", "vit", "resnet") and \
            op not in ("vit matmul",):
        model = _model_cost(row)
        if model is None:
            return None
        # the row's own FLOPs are what its GFLOP/s column used; the bytes come from the cost
        return (flops or model[0]), model[1]
    if not flops:
        flops = _elementwise_flops(row) or 0.0
    if not nbytes:
        if op.startswith("attention"):
            nbytes = _attention_bytes(row) or 0.0
        elif op.startswith(("conv", "conv_transpose")):
            nbytes = _conv_bytes(row) or 0.0
        else:
            nbytes = _matmul_bytes(row) or 0.0
    if not flops or not nbytes:
        return None
    return flops, nbytes
