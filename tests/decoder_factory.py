"""Small random decoder checkpoints (config dict + Hugging Face-named float32 tensors) for the
model tests: GPT-2 and the LLaMA family (llama, mistral, qwen2)."""
import numpy as np

from fastattn.models.gpt2 import gpt2_tensor_shapes
from fastattn.models.llama import llama_tensor_shapes


def _normal(rng, *shape, scale=0.2):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def random_tensors(rng, shapes):
    """N(0, 0.2^2) for every tensor, except norm gains (the 1-D weights) 1 + N(0, 0.2^2): large
    enough that a wrong layout, transpose or bias shows in the logits."""
    return {name: (1 + _normal(rng, *shape)) if len(shape) == 1 and name.endswith(".weight")
            else _normal(rng, *shape) for name, shape in shapes.items()}


def gpt2_checkpoint(rng, *, vocab=61, embd=32, heads=4, layers=2, positions=96, tied=True,
                    prefix=""):
    config = dict(model_type="gpt2", n_embd=embd, n_head=heads, n_layer=layers,
                  n_positions=positions, vocab_size=vocab, layer_norm_epsilon=1e-5,
                  activation_function="gelu_new", n_inner=None, tie_word_embeddings=tied)
    return config, random_tensors(rng, gpt2_tensor_shapes(config, prefix=prefix))


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
    return config, random_tensors(rng, llama_tensor_shapes(config))
