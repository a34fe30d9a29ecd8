"""GPT-2 (model_type "gpt2"): learned positions, pre-norm blocks, fused q/k/v (c_attn),
GELU-tanh ("gelu_new") MLP, final LayerNorm, lm_head tied to the token embeddings.

Hugging Face stores GPT-2's projections as Conv1D: weight (in, out) and y = x W + b, not
x W^T; Linear(layout="in_out") takes them as they are. Names with or without "transformer.".
"""
from __future__ import annotations

from ..layers import (Attention, Embedding, LayerNorm, Linear, MLP, TransformerBlock,
                      activation_name)
from .decoder import DecoderLM
from .weights import Weights


def gpt2_tensor_shapes(config: dict, *, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """The tensors of a Hugging Face GPT-2 checkpoint, name -> shape (Conv1D weights (in, out)).

    ``config``: a config.json dict; ``prefix``: "transformer." as GPT2LMHeadModel saves them.
    ``lm_head.weight`` (never prefixed) is listed only when ``tie_word_embeddings`` is false.
    For writing random checkpoints (tests, benchmarks): what ``build_gpt2`` reads."""
    e, vocab = config["n_embd"], config["vocab_size"]
    inner = config.get("n_inner") or 4 * e
    shapes: dict[str, tuple[int, ...]] = {prefix + "wte.weight": (vocab, e),
                                          prefix + "wpe.weight": (config["n_positions"], e)}
    for i in range(config["n_layer"]):
        p = f"{prefix}h.{i}."
        for name, fan_in, fan_out in (("attn.c_attn", e, 3 * e), ("attn.c_proj", e, e),
                                      ("mlp.c_fc", e, inner), ("mlp.c_proj", inner, e)):
            shapes[p + name + ".weight"] = (fan_in, fan_out)
            shapes[p + name + ".bias"] = (fan_out,)
        for norm in ("ln_1", "ln_2"):
            shapes[p + norm + ".weight"] = (e,)
            shapes[p + norm + ".bias"] = (e,)
    shapes[prefix + "ln_f.weight"] = (e,)
    shapes[prefix + "ln_f.bias"] = (e,)
    if not config.get("tie_word_embeddings", True):
        shapes["lm_head.weight"] = (vocab, e)
    return shapes


def build_gpt2(config, source) -> DecoderLM:
    names = set(source.keys())
    prefix = "transformer." if any(n.startswith("transformer.") for n in names) else ""
    # attn.bias / attn.masked_bias are causal-mask buffers older checkpoints carry.
    w = Weights(source, prefix, ignore=(".attn.bias", ".attn.masked_bias"))
    c = config
    e, heads, eps = c.n_embd, c.n_head, c.layer_norm_epsilon
    inner = getattr(c, "n_inner", None) or 4 * e
    act = activation_name(c.activation_function)
    blocks = []
    for i in range(c.n_layer):
        p = f"h.{i}."
        qkv = Linear(w.take(p + "attn.c_attn.weight", (e, 3 * e)),
                     w.take(p + "attn.c_attn.bias", (3 * e,)), layout="in_out")
        proj = Linear(w.take(p + "attn.c_proj.weight", (e, e)),
                      w.take(p + "attn.c_proj.bias", (e,)), layout="in_out")
        attn = Attention(qkv, proj, heads, heads, e // heads, causal=True)
        mlp = MLP(Linear(w.take(p + "mlp.c_fc.weight", (e, inner)),
                         w.take(p + "mlp.c_fc.bias", (inner,)), layout="in_out"),
                  Linear(w.take(p + "mlp.c_proj.weight", (inner, e)),
                         w.take(p + "mlp.c_proj.bias", (e,)), layout="in_out"), act)
        blocks.append(TransformerBlock(
            attn, mlp,
            LayerNorm(w.take(p + "ln_1.weight", (e,)), w.take(p + "ln_1.bias", (e,)), eps),
            LayerNorm(w.take(p + "ln_2.weight", (e,)), w.take(p + "ln_2.bias", (e,)), eps)))
    wte = w.take("wte.weight", (c.vocab_size, e))
    wpe = w.take("wpe.weight", (c.n_positions, e))
    final = LayerNorm(w.take("ln_f.weight", (e,)), w.take("ln_f.bias", (e,)), eps)
    head = Weights(source)
    lm_head_w = wte
    if "lm_head.weight" in names:
        lm_head_w = head.take("lm_head.weight", (c.vocab_size, e))
    w.taken |= head.taken
    w.check_all_used()
    return DecoderLM(config, Embedding(wte), blocks, final, Linear(lm_head_w),
                     position_embed=Embedding(wpe), num_kv_heads=heads, head_dim=e // heads,
                     max_positions=c.n_positions)
