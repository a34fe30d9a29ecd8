"""GPT-2's forward pass written from the equations with the other references (any float
dtype: the tests run it in float64 on the model's weights)."""
import numpy as np

from ..activation import activate
from ..attention import attention
from ..norm import layer_norm
from .layout import merge_heads, positions_and_mask, split_heads


def gpt2(w, config, input_ids, attention_mask=None):
    """GPT-2 logits (B, L, vocab). Conv1D weights are (in, out): y = x W + b."""
    c = config
    p = "transformer." if any(k.startswith("transformer.") for k in w) else ""
    ids = np.atleast_2d(input_ids)
    pos, mask = positions_and_mask(ids, attention_mask)
    x = w[p + "wte.weight"][ids] + w[p + "wpe.weight"][pos]
    for i in range(c.n_layer):
        h = f"{p}h.{i}."
        a = layer_norm(x, w[h + "ln_1.weight"], w[h + "ln_1.bias"], c.layer_norm_epsilon)
        q, k, v = np.split(a @ w[h + "attn.c_attn.weight"] + w[h + "attn.c_attn.bias"], 3, axis=-1)
        o = attention(split_heads(q, c.n_head), split_heads(k, c.n_head), split_heads(v, c.n_head),
                      mask=mask, causal=True)
        x = x + merge_heads(o) @ w[h + "attn.c_proj.weight"] + w[h + "attn.c_proj.bias"]
        a = layer_norm(x, w[h + "ln_2.weight"], w[h + "ln_2.bias"], c.layer_norm_epsilon)
        f = activate(a @ w[h + "mlp.c_fc.weight"] + w[h + "mlp.c_fc.bias"],
                     c.activation_function)
        x = x + f @ w[h + "mlp.c_proj.weight"] + w[h + "mlp.c_proj.bias"]
    x = layer_norm(x, w[p + "ln_f.weight"], w[p + "ln_f.bias"], c.layer_norm_epsilon)
    return x @ w.get("lm_head.weight", w[p + "wte.weight"]).T
