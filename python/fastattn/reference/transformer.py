"""Reference forward passes of whole models, written from the equations with the other
references (any float dtype: the tests run them in float64 on the same weights).

Weights are a dict of Hugging Face checkpoint names -> arrays; configs are the parsed
config.json dataclasses. Left padding follows Hugging Face: position = number of real tokens
before this one; padded keys are masked out of every query's softmax.
"""
import numpy as np

from .activation import gelu, silu
from .attention import attention
from .norm import layer_norm, rms_norm
from .rope import rope


def _positions(ids, attention_mask):
    if attention_mask is None:
        return np.broadcast_to(np.arange(ids.shape[1]), ids.shape), None
    mask = np.asarray(attention_mask).astype(bool)
    positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
    return positions, mask[:, None, None, :]


def split_heads(x, n):
    """(B, L, n * d) -> (B, n, L, d)."""
    b, l, e = x.shape
    return x.reshape(b, l, n, e // n).transpose(0, 2, 1, 3)


def merge_heads(x):
    b, h, l, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, l, h * d)


_ACT = {"gelu": lambda x: gelu(x), "gelu_new": lambda x: gelu(x, "tanh"),
        "gelu_pytorch_tanh": lambda x: gelu(x, "tanh"), "relu": lambda x: np.maximum(x, 0),
        "silu": silu}


def gpt2(w, config, input_ids, attention_mask=None):
    """GPT-2 logits (B, L, vocab). Conv1D weights are (in, out): y = x W + b."""
    c = config
    p = "transformer." if any(k.startswith("transformer.") for k in w) else ""
    ids = np.atleast_2d(input_ids)
    pos, mask = _positions(ids, attention_mask)
    x = w[p + "wte.weight"][ids] + w[p + "wpe.weight"][pos]
    for i in range(c.n_layer):
        h = f"{p}h.{i}."
        a = layer_norm(x, w[h + "ln_1.weight"], w[h + "ln_1.bias"], c.layer_norm_epsilon)
        q, k, v = np.split(a @ w[h + "attn.c_attn.weight"] + w[h + "attn.c_attn.bias"], 3, axis=-1)
        o = attention(split_heads(q, c.n_head), split_heads(k, c.n_head), split_heads(v, c.n_head),
                      mask=mask, causal=True)
        x = x + merge_heads(o) @ w[h + "attn.c_proj.weight"] + w[h + "attn.c_proj.bias"]
        a = layer_norm(x, w[h + "ln_2.weight"], w[h + "ln_2.bias"], c.layer_norm_epsilon)
        f = _ACT[c.activation_function](a @ w[h + "mlp.c_fc.weight"] + w[h + "mlp.c_fc.bias"])
        x = x + f @ w[h + "mlp.c_proj.weight"] + w[h + "mlp.c_proj.bias"]
    x = layer_norm(x, w[p + "ln_f.weight"], w[p + "ln_f.bias"], c.layer_norm_epsilon)
    return x @ w.get("lm_head.weight", w[p + "wte.weight"]).T


def llama(w, config, input_ids, attention_mask=None):
    """LLaMA / Mistral / Qwen2 logits (B, L, vocab): RMSNorm, RoPE (rotate-half), GQA, SwiGLU."""
    c = config
    ids = np.atleast_2d(input_ids)
    pos, mask = _positions(ids, attention_mask)
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


def bert(w, config, input_ids, attention_mask=None, token_type_ids=None, return_all=False):
    """BERT last hidden states (B, L, hidden): post-norm blocks, bidirectional attention with
    padded keys masked, learned positions 0..L-1 (whatever the padding).

    return_all: (last, hidden_states, attentions) instead: the embeddings' output and each
    layer's (num_hidden_layers + 1 arrays), and each layer's probabilities (B, H, L, L)."""
    c = config
    p = "bert." if any(k.startswith("bert.") for k in w) else ""
    ids = np.atleast_2d(input_ids)
    types = np.zeros_like(ids) if token_type_ids is None else np.atleast_2d(token_type_ids)
    mask = None if attention_mask is None else \
        np.atleast_2d(attention_mask).astype(bool)[:, None, None, :]
    e = p + "embeddings."
    x = (w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][
        np.arange(ids.shape[1])] + w[e + "token_type_embeddings.weight"][types])
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], c.layer_norm_eps)
    heads = c.num_attention_heads
    hidden, attentions = [x], []

    def dense(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    for i in range(c.num_hidden_layers):
        h = f"{p}encoder.layer.{i}."
        q, k, v = (split_heads(dense(x, h + f"attention.self.{n}"), heads)
                   for n in ("query", "key", "value"))
        o, probs = attention(q, k, v, mask=mask, return_weights=True)
        a = dense(merge_heads(o), h + "attention.output.dense")
        x = layer_norm(x + a, w[h + "attention.output.LayerNorm.weight"],
                       w[h + "attention.output.LayerNorm.bias"], c.layer_norm_eps)
        f = dense(_ACT[c.hidden_act](dense(x, h + "intermediate.dense")), h + "output.dense")
        x = layer_norm(x + f, w[h + "output.LayerNorm.weight"], w[h + "output.LayerNorm.bias"],
                       c.layer_norm_eps)
        hidden.append(x)
        attentions.append(probs)
    return (x, hidden, attentions) if return_all else x


def bert_pooler(w, hidden):
    """BERT's pooler: tanh(W x[:, 0] + b) for last hidden states (B, L, hidden)."""
    p = "bert." if any(k.startswith("bert.") for k in w) else ""
    return np.tanh(hidden[:, 0] @ w[p + "pooler.dense.weight"].T + w[p + "pooler.dense.bias"])


def bert_mlm_logits(w, config, hidden):
    """BERT's masked-LM head: LayerNorm(act(W_t x + b_t)) @ E^T + b, E the decoder weight
    (the word embeddings when the checkpoint ties them)."""
    t = "cls.predictions.transform."
    p = "bert." if any(k.startswith("bert.") for k in w) else ""
    x = _ACT[config.hidden_act](hidden @ w[t + "dense.weight"].T + w[t + "dense.bias"])
    x = layer_norm(x, w[t + "LayerNorm.weight"], w[t + "LayerNorm.bias"], config.layer_norm_eps)
    decoder = w.get("cls.predictions.decoder.weight", w[p + "embeddings.word_embeddings.weight"])
    return x @ decoder.T + w["cls.predictions.bias"]
