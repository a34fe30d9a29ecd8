"""GPT-2 (model_type "gpt2") as a DecoderLM: learned positions, pre-norm blocks, fused q/k/v
(c_attn), GELU-tanh ("gelu_new") MLP, final LayerNorm, lm_head tied to the token embeddings.

Hugging Face stores GPT-2's projections as Conv1D: weight (in, out) and y = x W + b, not
x W^T; Linear(layout="in_out") takes them as they are. Names with or without "transformer.".
"""
from __future__ import annotations

from ...layers import (Attention, Embedding, LayerNorm, Linear, MLP, TransformerBlock,
                       activation_name)
from ..decoder import DecoderLM
from ..weights import take_listed
from .config import GPT2Config
from .schema import gpt2_tensor_shapes


def build_gpt2(config, source, weights: str = "float32") -> DecoderLM:
    """A DecoderLM from ``config`` (a GPT2Config, a config.json dict or an object with its
    attributes) and ``source``, a mapping of checkpoint names to arrays: the tensors
    gpt2_tensor_shapes lists (lm_head.weight when the checkpoint has one, else the tied
    embeddings). ``weights``: the format of the blocks' and the LM head's matrices
    (fastattn.models.weights; the tied head is converted too, the embedding it is tied to
    stays float32). ValueError for a missing tensor, a wrong shape or a tensor it does not
    use."""
    c = GPT2Config.of(config)
    names = set(source.keys())
    prefix = "transformer." if any(n.startswith("transformer.") for n in names) else ""
    shapes = gpt2_tensor_shapes(c, prefix=prefix, lm_head="lm_head.weight" in names)
    # attn.bias / attn.masked_bias are causal-mask buffers older checkpoints carry.
    t = take_listed(source, shapes, ignore=(".attn.bias", ".attn.masked_bias"), weights=weights)
    e, heads, eps = c.n_embd, c.n_head, c.layer_norm_epsilon
    act = activation_name(c.activation_function)

    def conv1d(name):
        return t.linear(name, layout="in_out")

    def layer_norm(name):
        return LayerNorm(t[name + ".weight"], t[name + ".bias"], eps)

    blocks = []
    for i in range(c.n_layer):
        p = f"{prefix}h.{i}."
        attn = Attention(conv1d(p + "attn.c_attn"), conv1d(p + "attn.c_proj"), heads, heads,
                         e // heads, causal=True)
        mlp = MLP(conv1d(p + "mlp.c_fc"), conv1d(p + "mlp.c_proj"), act)
        blocks.append(TransformerBlock(attn, mlp, layer_norm(p + "ln_1"),
                                       layer_norm(p + "ln_2")))
    # the LM head: its own tensor, or the token embeddings (tied), saved by `fastattn
    # quantize` as lm_head.weight either way
    head = "lm_head.weight" if "lm_head.weight" in t else prefix + "wte.weight"
    lm_head = Linear(t.matrix(head, save_as="lm_head.weight"))
    return DecoderLM(c, Embedding(t[prefix + "wte.weight"]), blocks,
                     layer_norm(prefix + "ln_f"), lm_head,
                     position_embed=Embedding(t[prefix + "wpe.weight"]), num_kv_heads=heads,
                     head_dim=e // heads, max_positions=c.n_positions)
