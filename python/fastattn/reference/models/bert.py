"""The BERT-family encoders (BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA): forward pass, pooler,
masked-LM head and task heads written from the equations with the other references (any float
dtype: the tests run them in float64 on the model's weights). The tensor names are written
here from transformers' modeling files, apart from the model's schema, so that a wrong name
mapping in the model shows up as a difference."""
import numpy as np

from ..activation import activate
from ..attention import attention
from ..norm import layer_norm
from .layout import merge_heads, split_heads

_PREFIXES = ("bert.", "roberta.", "distilbert.", "electra.")

# model_type -> the checkpoint names of one layer: (root, q, k, v, o, ln1, up, down, ln2)
_LAYERS = {
    "bert": ("encoder.layer.{}.", "attention.self.query", "attention.self.key",
             "attention.self.value", "attention.output.dense", "attention.output.LayerNorm",
             "intermediate.dense", "output.dense", "output.LayerNorm"),
    "distilbert": ("transformer.layer.{}.", "attention.q_lin", "attention.k_lin",
                   "attention.v_lin", "attention.out_lin", "sa_layer_norm", "ffn.lin1",
                   "ffn.lin2", "output_layer_norm"),
}


def _prefix(w):
    return next((p for p in _PREFIXES if any(k.startswith(p) for k in w)), "")


def _model_type(config):
    return getattr(config, "model_type", "bert")


def _dense(w, x, name):
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def position_ids(model_type, input_ids, pad_token_id):
    """0..L-1; RoBERTa / XLM-R: each non-pad token's 1-based rank among the row's non-pad
    tokens plus pad_token_id, pad_token_id on pad tokens (transformers'
    create_position_ids_from_input_ids), written as a loop."""
    ids = np.atleast_2d(input_ids)
    if model_type not in ("roberta", "xlm-roberta"):
        return np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
    out = np.full(ids.shape, pad_token_id)
    for b in range(ids.shape[0]):
        rank = 0
        for j in range(ids.shape[1]):
            if ids[b, j] != pad_token_id:
                rank += 1
                out[b, j] = pad_token_id + rank
    return out


def bert(w, config, input_ids, attention_mask=None, token_type_ids=None, return_all=False):
    """Last hidden states (B, L, hidden) of a BERT-family encoder (config.model_type; "bert"
    when the config has none): post-norm blocks, bidirectional attention with padded keys
    masked, learned positions (RoBERTa / XLM-R: position_ids), token types (none in
    DistilBERT), ELECTRA's embeddings_project when present.

    return_all: (last, hidden_states, attentions) instead: the embeddings' output and each
    layer's (num_hidden_layers + 1 arrays), and each layer's probabilities (B, H, L, L)."""
    c = config
    model_type = _model_type(c)
    p = _prefix(w)
    ids = np.atleast_2d(input_ids)
    types = np.zeros_like(ids) if token_type_ids is None else np.atleast_2d(token_type_ids)
    mask = None if attention_mask is None else \
        np.atleast_2d(attention_mask).astype(bool)[:, None, None, :]
    e = p + "embeddings."
    pad = getattr(c, "pad_token_id", 0)
    x = (w[e + "word_embeddings.weight"][ids]
         + w[e + "position_embeddings.weight"][position_ids(model_type, ids, pad)])
    if model_type != "distilbert":
        x = x + w[e + "token_type_embeddings.weight"][types]
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], c.layer_norm_eps)
    if p + "embeddings_project.weight" in w:
        x = _dense(w, x, p + "embeddings_project")
    heads = c.num_attention_heads
    hidden, attentions = [x], []
    root, q_, k_, v_, o_, ln1, up, down, ln2 = _LAYERS[
        "distilbert" if model_type == "distilbert" else "bert"]

    def norm(x, name):
        return layer_norm(x, w[name + ".weight"], w[name + ".bias"], c.layer_norm_eps)

    for i in range(c.num_hidden_layers):
        h = p + root.format(i)
        q, k, v = (split_heads(_dense(w, x, h + n), heads) for n in (q_, k_, v_))
        o, probs = attention(q, k, v, mask=mask, return_weights=True)
        x = norm(x + _dense(w, merge_heads(o), h + o_), h + ln1)
        f = _dense(w, activate(_dense(w, x, h + up), c.hidden_act), h + down)
        x = norm(x + f, h + ln2)
        hidden.append(x)
        attentions.append(probs)
    return (x, hidden, attentions) if return_all else x


def bert_pooler(w, hidden):
    """BERT's pooler: tanh(W x[:, 0] + b) for last hidden states (B, L, hidden)."""
    p = _prefix(w)
    return np.tanh(hidden[:, 0] @ w[p + "pooler.dense.weight"].T + w[p + "pooler.dense.bias"])


def bert_mlm_logits(w, config, hidden):
    """The masked-LM head: LayerNorm(act(W_t x + b_t)) @ E^T + b, E the decoder weight (the
    word embeddings when the checkpoint ties them). BERT: cls.predictions, act hidden_act;
    RoBERTa / XLM-R: lm_head, act gelu; DistilBERT: vocab_transform / vocab_layer_norm /
    vocab_projector, act hidden_act (its "activation")."""
    model_type = _model_type(config)
    p = _prefix(w)
    if model_type in ("roberta", "xlm-roberta"):
        t, n, b, d, act = ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias",
                           "lm_head.decoder.weight", "gelu")
    elif model_type == "distilbert":
        t, n, b, d, act = ("vocab_transform", "vocab_layer_norm", "vocab_projector.bias",
                           "vocab_projector.weight", config.hidden_act)
    else:
        t, n, b, d, act = ("cls.predictions.transform.dense",
                           "cls.predictions.transform.LayerNorm", "cls.predictions.bias",
                           "cls.predictions.decoder.weight", config.hidden_act)
    x = activate(_dense(w, hidden, t), act)
    x = layer_norm(x, w[n + ".weight"], w[n + ".bias"], config.layer_norm_eps)
    decoder = w.get(d, w[p + "embeddings.word_embeddings.weight"])
    return x @ decoder.T + w[b]


def encoder_head(w, config, hidden, task):
    """A task head on last hidden states (B, L, hidden), as transformers' classes:

    - sequence_classification: BERT W_c pooler(x) + b_c; RoBERTa / XLM-R
      W_o tanh(W_d x[:, 0] + b_d) + b_o (classifier.dense / out_proj); ELECTRA the same
      with gelu; DistilBERT W_c relu(W_p x[:, 0] + b_p) + b_c (pre_classifier / classifier)
    - token_classification: W_c x + b_c per token
    - question_answering: (start, end) = the two columns of W_qa x + b_qa
    - replaced_token_detection (ELECTRA): w act(W_d x + b_d) + b per token, act hidden_act
    """
    model_type = _model_type(config)
    if task == "sequence_classification":
        if model_type == "bert":
            return _dense(w, bert_pooler(w, hidden), "classifier")
        first = hidden[:, 0]
        if model_type == "distilbert":
            return _dense(w, np.maximum(_dense(w, first, "pre_classifier"), 0), "classifier")
        inner = _dense(w, first, "classifier.dense")
        inner = activate(inner, "gelu") if model_type == "electra" else np.tanh(inner)
        return _dense(w, inner, "classifier.out_proj")
    if task == "token_classification":
        return _dense(w, hidden, "classifier")
    if task == "question_answering":
        y = _dense(w, hidden, "qa_outputs")
        return y[..., 0], y[..., 1]
    if task == "replaced_token_detection":
        inner = activate(_dense(w, hidden, "discriminator_predictions.dense"), config.hidden_act)
        return _dense(w, inner, "discriminator_predictions.dense_prediction")[..., 0]
    raise ValueError(f"unknown task {task!r}")
