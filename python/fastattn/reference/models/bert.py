"""BERT's forward pass, pooler and masked-LM head written from the equations with the other
references (any float dtype: the tests run them in float64 on the model's weights)."""
import numpy as np

from ..activation import activate
from ..attention import attention
from ..norm import layer_norm
from .layout import merge_heads, split_heads


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
        f = dense(activate(dense(x, h + "intermediate.dense"), c.hidden_act),
                  h + "output.dense")
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
    x = activate(hidden @ w[t + "dense.weight"].T + w[t + "dense.bias"], config.hidden_act)
    x = layer_norm(x, w[t + "LayerNorm.weight"], w[t + "LayerNorm.bias"], config.layer_norm_eps)
    decoder = w.get("cls.predictions.decoder.weight", w[p + "embeddings.word_embeddings.weight"])
    return x @ decoder.T + w["cls.predictions.bias"]
