"""The tensors of a Hugging Face LLaMA / Mistral / Qwen2 checkpoint: the one list that
build_llama takes its tensors from and that fastattn.testing writes random checkpoints from."""
from __future__ import annotations

from .config import LlamaConfig


def llama_tensor_shapes(config, *, lm_head: bool | None = None) -> dict[str, tuple[int, ...]]:
    """The tensors of a Hugging Face LLaMA / Mistral / Qwen2 checkpoint, name -> shape.

    ``config``: a config.json dict or a LlamaConfig. Biases as the config says: q/k/v's when
    ``qkv_bias`` (Qwen2, or ``attention_bias``, which adds o_proj's), the MLP's for
    ``mlp_bias``. ``lm_head.weight`` is listed when ``lm_head`` is true; by default when
    ``tie_word_embeddings`` is false. For writing random checkpoints (tests, benchmarks): what
    ``build_llama`` reads."""
    c = LlamaConfig.of(config)
    h, inter, vocab = c.hidden_size, c.intermediate_size, c.vocab_size
    hq, hkv, d = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, h)}

    def linear(name, out_f, in_f, bias):
        shapes[name + ".weight"] = (out_f, in_f)
        if bias:
            shapes[name + ".bias"] = (out_f,)

    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (h,)
        linear(p + "self_attn.q_proj", hq * d, h, c.qkv_bias)
        linear(p + "self_attn.k_proj", hkv * d, h, c.qkv_bias)
        linear(p + "self_attn.v_proj", hkv * d, h, c.qkv_bias)
        linear(p + "self_attn.o_proj", h, hq * d, c.attention_bias)
        shapes[p + "post_attention_layernorm.weight"] = (h,)
        linear(p + "mlp.gate_proj", inter, h, c.mlp_bias)
        linear(p + "mlp.up_proj", inter, h, c.mlp_bias)
        linear(p + "mlp.down_proj", h, inter, c.mlp_bias)
    shapes["model.norm.weight"] = (h,)
    if lm_head is None:
        lm_head = not c.tie_word_embeddings
    if lm_head:
        shapes["lm_head.weight"] = (vocab, h)
    return shapes
