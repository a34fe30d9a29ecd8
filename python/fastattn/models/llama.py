"""LLaMA family (model_type "llama", "mistral", "qwen2"): RoPE, RMSNorm, grouped-query
attention, SwiGLU MLP down(silu(gate x) * up x).

Family differences, all read from config.json:
- GQA: num_key_value_heads (query head h reads kv head h // (Hq / Hkv)); head_dim explicit in
  newer configs;
- Qwen2: q/k/v projections have biases (o_proj does not); LLaMA's attention_bias adds them all;
- Mistral: sliding_window W (key j visible from query i only if i - j < W), served from a ring
  KV cache of W slots;
- tie_word_embeddings: lm_head is the embedding matrix.
"""
from __future__ import annotations

from ..layers import (Attention, Embedding, GatedMLP, Linear, RMSNorm, RotaryConfig,
                      TransformerBlock, activation_name)
from .decoder import DecoderLM
from .weights import Weights


def llama_tensor_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """The tensors of a Hugging Face LLaMA / Mistral / Qwen2 checkpoint, name -> shape.

    ``config``: a config.json dict. Biases as ``build_llama`` reads them: q/k/v for Qwen2 or
    ``attention_bias`` (which adds o_proj's), the MLP's for ``mlp_bias``; ``lm_head.weight``
    only when ``tie_word_embeddings`` is false. For writing random checkpoints (tests,
    benchmarks)."""
    h, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    hq = config["num_attention_heads"]
    hkv = config.get("num_key_value_heads") or hq
    d = config.get("head_dim") or h // hq
    qkv_bias = config.get("model_type") == "qwen2" or bool(config.get("attention_bias"))
    o_bias, mlp_bias = bool(config.get("attention_bias")), bool(config.get("mlp_bias"))
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, h)}

    def linear(name, out_f, in_f, bias):
        shapes[name + ".weight"] = (out_f, in_f)
        if bias:
            shapes[name + ".bias"] = (out_f,)

    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (h,)
        linear(p + "self_attn.q_proj", hq * d, h, qkv_bias)
        linear(p + "self_attn.k_proj", hkv * d, h, qkv_bias)
        linear(p + "self_attn.v_proj", hkv * d, h, qkv_bias)
        linear(p + "self_attn.o_proj", h, hq * d, o_bias)
        shapes[p + "post_attention_layernorm.weight"] = (h,)
        linear(p + "mlp.gate_proj", inter, h, mlp_bias)
        linear(p + "mlp.up_proj", inter, h, mlp_bias)
        linear(p + "mlp.down_proj", h, inter, mlp_bias)
    shapes["model.norm.weight"] = (h,)
    if not config.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = (vocab, h)
    return shapes


def build_llama(config, source) -> DecoderLM:
    c = config
    h, inter, eps = c.hidden_size, c.intermediate_size, c.rms_norm_eps
    hq, hkv = c.num_attention_heads, c.num_key_value_heads
    d = c.head_dim
    if activation_name(c.hidden_act) != "silu":
        raise ValueError(f"{c.model_type}: hidden_act {c.hidden_act!r} is not supported "
                         f"(the gated MLP is SwiGLU: silu)")
    w = Weights(source, "model.", ignore=("rotary_emb.inv_freq",))
    qkv_bias = bool(getattr(c, "qkv_bias", False) or getattr(c, "attention_bias", False))
    o_bias = bool(getattr(c, "attention_bias", False))
    mlp_bias = bool(getattr(c, "mlp_bias", False))
    # partial rotary (transformers: dim = int(head_dim * partial_rotary_factor))
    rotary_dim = int(d * (getattr(c, "partial_rotary_factor", None) or 1.0))
    rotary = RotaryConfig(theta=c.rope_theta, style="half", scaling=c.rope_scaling,
                          rotary_dim=None if rotary_dim == d else rotary_dim)
    window = getattr(c, "sliding_window", None)

    def linear(name, out_f, in_f, bias):
        return (w.take(name + ".weight", (out_f, in_f)),
                w.take(name + ".bias", (out_f,)) if bias else None)

    blocks = []
    for i in range(c.num_hidden_layers):
        p = f"layers.{i}."
        qkv = Linear.concat([linear(p + "self_attn.q_proj", hq * d, h, qkv_bias),
                             linear(p + "self_attn.k_proj", hkv * d, h, qkv_bias),
                             linear(p + "self_attn.v_proj", hkv * d, h, qkv_bias)])
        o = Linear(*linear(p + "self_attn.o_proj", h, hq * d, o_bias))
        attn = Attention(qkv, o, hq, hkv, d, rotary=rotary, causal=True, window=window)
        gate_up = Linear.concat([linear(p + "mlp.gate_proj", inter, h, mlp_bias),
                                 linear(p + "mlp.up_proj", inter, h, mlp_bias)])
        down = Linear(*linear(p + "mlp.down_proj", h, inter, mlp_bias))
        blocks.append(TransformerBlock(
            attn, GatedMLP(gate_up, down),
            RMSNorm(w.take(p + "input_layernorm.weight", (h,)), eps),
            RMSNorm(w.take(p + "post_attention_layernorm.weight", (h,)), eps)))
    embed = w.take("embed_tokens.weight", (c.vocab_size, h))
    final = RMSNorm(w.take("norm.weight", (h,)), eps)
    head = Weights(source)
    if c.tie_word_embeddings and not head.has("lm_head.weight"):
        lm_head_w = embed
    else:
        lm_head_w = head.take("lm_head.weight", (c.vocab_size, h))
    w.taken |= head.taken
    w.check_all_used()
    return DecoderLM(config, Embedding(embed), blocks, final, Linear(lm_head_w),
                     num_kv_heads=hkv, head_dim=d, window=window)
