"""The LLaMA family's forward pass (llama, mistral, qwen2) written from the equations with
the other references (any float dtype: the tests run it in float64 on the model's weights)."""
import numpy as np

from ..activation import silu
from ..attention import attention
from ..norm import rms_norm
from ..rope import rope
from .layout import merge_heads, positions_and_mask, split_heads


def llama(w, config, input_ids, attention_mask=None):
    """LLaMA / Mistral / Qwen2 logits (B, L, vocab): RMSNorm, RoPE (rotate-half), GQA, SwiGLU."""
    c = config
    ids = np.atleast_2d(input_ids)
    pos, mask = positions_and_mask(ids, attention_mask)
    window = getattr(c, "sliding_window", None)

    def proj(x, name):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    x = w["model.embed_tokens.weight"][ids]
    for i in range(c.num_hidden_layers):
        h = f"model.layers.{i}."
        a = rms_norm(x, w[h + "input_layernorm.weight"], c.rms_norm_eps)
        q = split_heads(proj(a, h + "self_attn.q_proj"), c.num_attention_heads)
        k = split_heads(proj(a, h + "self_attn.k_proj"), c.num_key_value_heads)
        v = split_heads(proj(a, h + "self_attn.v_proj"), c.num_key_value_heads)
        rot = int(q.shape[-1] * getattr(c, "partial_rotary_factor", 1.0))
        q = rope(q, pos, theta=c.rope_theta, scaling=c.rope_scaling, rotary_dim=rot)
        k = rope(k, pos, theta=c.rope_theta, scaling=c.rope_scaling, rotary_dim=rot)
        o = attention(q, k, v, mask=mask, causal=True, window=window)
        x = x + proj(merge_heads(o), h + "self_attn.o_proj")
        a = rms_norm(x, w[h + "post_attention_layernorm.weight"], c.rms_norm_eps)
        x = x + proj(silu(proj(a, h + "mlp.gate_proj")) * proj(a, h + "mlp.up_proj"),
                     h + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], c.rms_norm_eps)
    return x @ w.get("lm_head.weight", w["model.embed_tokens.weight"]).T
