"""Small random decoder checkpoints (config dict + Hugging Face-named float32 tensors) for the
model tests: GPT-2 and the LLaMA family (llama, mistral, qwen2)."""
import numpy as np


def _normal(rng, *shape, scale=0.2):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def gpt2_checkpoint(rng, *, vocab=61, embd=32, heads=4, layers=2, positions=96, tied=True,
                    prefix=""):
    config = dict(model_type="gpt2", n_embd=embd, n_head=heads, n_layer=layers,
                  n_positions=positions, vocab_size=vocab, layer_norm_epsilon=1e-5,
                  activation_function="gelu_new", n_inner=None, tie_word_embeddings=tied)
    t = {prefix + "wte.weight": _normal(rng, vocab, embd),
         prefix + "wpe.weight": _normal(rng, positions, embd),
         prefix + "ln_f.weight": 1 + _normal(rng, embd), prefix + "ln_f.bias": _normal(rng, embd)}
    for i in range(layers):
        p = f"{prefix}h.{i}."
        t.update({p + "ln_1.weight": 1 + _normal(rng, embd), p + "ln_1.bias": _normal(rng, embd),
                  p + "ln_2.weight": 1 + _normal(rng, embd), p + "ln_2.bias": _normal(rng, embd),
                  # Conv1D layout: (in, out)
                  p + "attn.c_attn.weight": _normal(rng, embd, 3 * embd),
                  p + "attn.c_attn.bias": _normal(rng, 3 * embd),
                  p + "attn.c_proj.weight": _normal(rng, embd, embd),
                  p + "attn.c_proj.bias": _normal(rng, embd),
                  p + "mlp.c_fc.weight": _normal(rng, embd, 4 * embd),
                  p + "mlp.c_fc.bias": _normal(rng, 4 * embd),
                  p + "mlp.c_proj.weight": _normal(rng, 4 * embd, embd),
                  p + "mlp.c_proj.bias": _normal(rng, embd)})
    if not tied:
        t["lm_head.weight"] = _normal(rng, vocab, embd)
    return config, t


def llama_checkpoint(rng, model_type="llama", *, vocab=61, hidden=32, heads=4, kv_heads=2,
                     head_dim=None, inter=48, layers=2, tied=False, window=None,
                     rope_scaling=None, rope_theta=10000.0, partial_rotary_factor=None):
    d = head_dim or hidden // heads
    config = dict(model_type=model_type, hidden_size=hidden, intermediate_size=inter,
                  num_hidden_layers=layers, num_attention_heads=heads,
                  num_key_value_heads=kv_heads, head_dim=d, rms_norm_eps=1e-6,
                  vocab_size=vocab, hidden_act="silu", tie_word_embeddings=tied,
                  rope_theta=rope_theta, rope_scaling=rope_scaling,
                  max_position_embeddings=256)
    if partial_rotary_factor is not None:
        config["partial_rotary_factor"] = partial_rotary_factor
    if model_type == "mistral":
        config["sliding_window"] = window
    if model_type == "qwen2":
        config["use_sliding_window"] = False
    bias = model_type == "qwen2"       # q/k/v biases, no o_proj bias
    t = {"model.embed_tokens.weight": _normal(rng, vocab, hidden),
         "model.norm.weight": 1 + _normal(rng, hidden)}
    if not tied:
        t["lm_head.weight"] = _normal(rng, vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        t.update({p + "input_layernorm.weight": 1 + _normal(rng, hidden),
                  p + "post_attention_layernorm.weight": 1 + _normal(rng, hidden),
                  p + "self_attn.q_proj.weight": _normal(rng, heads * d, hidden),
                  p + "self_attn.k_proj.weight": _normal(rng, kv_heads * d, hidden),
                  p + "self_attn.v_proj.weight": _normal(rng, kv_heads * d, hidden),
                  p + "self_attn.o_proj.weight": _normal(rng, hidden, heads * d),
                  p + "mlp.gate_proj.weight": _normal(rng, inter, hidden),
                  p + "mlp.up_proj.weight": _normal(rng, inter, hidden),
                  p + "mlp.down_proj.weight": _normal(rng, hidden, inter)})
        if bias:
            for n, size in (("q", heads * d), ("k", kv_heads * d), ("v", kv_heads * d)):
                t[p + f"self_attn.{n}_proj.bias"] = _normal(rng, size)
    return config, t
