"""The LLaMA family (model_type "llama", "mistral", "qwen2") as a DecoderLM: RoPE, RMSNorm,
grouped-query attention, SwiGLU MLP down(silu(gate x) * up x).

Family differences, all read from the config (see config.py):
- GQA: num_key_value_heads (query head h reads kv head h // (Hq / Hkv)); head_dim explicit in
  newer configs;
- Qwen2: q/k/v projections have biases (o_proj does not); LLaMA's attention_bias adds them all
  (LlamaConfig.qkv_bias);
- Mistral: sliding_window W (key j visible from query i only if i - j < W), served from a ring
  KV cache of W slots;
- tie_word_embeddings: lm_head is the embedding matrix.
"""
from __future__ import annotations

from ...layers import (Attention, Embedding, GatedMLP, Linear, RMSNorm, RotaryConfig,
                       TransformerBlock, activation_name)
from ..decoder import DecoderLM
from ..weights import take_listed
from .config import LlamaConfig
from .schema import llama_tensor_shapes


def build_llama(config, source, weights: str = "float32") -> DecoderLM:
    """A DecoderLM from ``config`` (a LlamaConfig, a config.json dict or an object with its
    attributes) and ``source``, a mapping of checkpoint names to arrays: the tensors
    llama_tensor_shapes lists (lm_head.weight unless tied and absent). ``weights``: the
    format of the blocks' and the LM head's matrices (fastattn.models.weights; a tied head is
    converted too, the embedding stays float32). ValueError for an unsupported activation, a
    missing tensor, a wrong shape or a tensor it does not use."""
    c = LlamaConfig.of(config)
    if activation_name(c.hidden_act) != "silu":
        raise ValueError(f"{c.model_type}: hidden_act {c.hidden_act!r} is not supported "
                         f"(the gated MLP is SwiGLU: silu)")
    names = set(source.keys())
    shapes = llama_tensor_shapes(
        c, lm_head=not c.tie_word_embeddings or "lm_head.weight" in names)
    t = take_listed(source, shapes, ignore=("rotary_emb.inv_freq",), weights=weights)
    d, eps = c.head_dim, c.rms_norm_eps
    # partial rotary (transformers: dim = int(head_dim * partial_rotary_factor))
    rotary_dim = int(d * c.partial_rotary_factor)
    rotary = RotaryConfig(theta=c.rope_theta, style="half", scaling=c.rope_scaling,
                          rotary_dim=None if rotary_dim == d else rotary_dim)

    blocks = []
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        qkv = t.linear([p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"])
        o = t.linear(p + "self_attn.o_proj")
        attn = Attention(qkv, o, c.num_attention_heads, c.num_key_value_heads, d,
                         rotary=rotary, causal=True, window=c.sliding_window)
        gate_up = t.linear([p + "mlp.gate_proj", p + "mlp.up_proj"])
        down = t.linear(p + "mlp.down_proj")
        blocks.append(TransformerBlock(
            attn, GatedMLP(gate_up, down),
            RMSNorm(t[p + "input_layernorm.weight"], eps),
            RMSNorm(t[p + "post_attention_layernorm.weight"], eps)))
    final = RMSNorm(t["model.norm.weight"], eps)
    # tied: the embedding matrix, saved by `fastattn quantize` as lm_head.weight
    head = "lm_head.weight" if "lm_head.weight" in t else "model.embed_tokens.weight"
    lm_head = Linear(t.matrix(head, save_as="lm_head.weight"))
    return DecoderLM(c, Embedding(t["model.embed_tokens.weight"]), blocks, final, lm_head,
                     num_kv_heads=c.num_key_value_heads, head_dim=d, window=c.sliding_window)
