"""The tensors of a Hugging Face BERT-family checkpoint (BERT, RoBERTa, XLM-RoBERTa, DistilBERT,
ELECTRA, bare or with a task head): the one list that BertModel.from_weights takes its tensors
from and that fastattn.testing writes random checkpoints from. The names of each family are
here (LAYER_NAMES, MLM_NAMES, head_tensor_names), nowhere else."""
from __future__ import annotations

from .config import BertConfig

# One encoder layer's tensors (dense layers and LayerNorms, each with .weight and .bias), by
# role, in each layout: post-norm  h = LN1(x + O(attention(Q x, K x, V x))),
# x' = LN2(h + DOWN(act(UP h))).
LAYER_NAMES = {
    "bert": dict(root="encoder.layer.{}.", q="attention.self.query", k="attention.self.key",
                 v="attention.self.value", o="attention.output.dense",
                 ln1="attention.output.LayerNorm", up="intermediate.dense",
                 down="output.dense", ln2="output.LayerNorm"),
    "distilbert": dict(root="transformer.layer.{}.", q="attention.q_lin", k="attention.k_lin",
                       v="attention.v_lin", o="attention.out_lin", ln1="sa_layer_norm",
                       up="ffn.lin1", down="ffn.lin2", ln2="output_layer_norm"),
}

# The masked-LM head, LayerNorm(act(W_t x + b_t)) @ E^T + b: transform (dense), norm
# (LayerNorm), bias (b), decoder (E when untied) and decoder_bias (transformers' tied copy of
# b, when saved). Never prefixed.
MLM_NAMES = {
    "bert": dict(transform="cls.predictions.transform.dense",
                 norm="cls.predictions.transform.LayerNorm", bias="cls.predictions.bias",
                 decoder="cls.predictions.decoder.weight",
                 decoder_bias="cls.predictions.decoder.bias"),
    "roberta": dict(transform="lm_head.dense", norm="lm_head.layer_norm", bias="lm_head.bias",
                    decoder="lm_head.decoder.weight", decoder_bias="lm_head.decoder.bias"),
    "distilbert": dict(transform="vocab_transform", norm="vocab_layer_norm",
                       bias="vocab_projector.bias", decoder="vocab_projector.weight",
                       decoder_bias=None),
}


def head_tensor_names(config, task: str | None) -> dict[str, tuple[str, str]]:
    """The dense layers of a task head, role -> (name, rows): the layers of ``config``'s
    family for ``task`` (never prefixed). Roles: "dense" (hidden -> hidden, before the
    activation) and "out" (-> rows: num_labels, 2 for question answering, 1 for ELECTRA's
    replaced-token detection)."""
    c = BertConfig.of(config)
    labels = c.num_labels
    if task == "sequence_classification":
        kind = c.traits["sequence_head"]
        if kind == "pooler":
            return {"out": ("classifier", labels)}
        if kind == "relu":                            # DistilBERT
            return {"dense": ("pre_classifier", "hidden"), "out": ("classifier", labels)}
        return {"dense": ("classifier.dense", "hidden"), "out": ("classifier.out_proj", labels)}
    if task == "token_classification":
        return {"out": ("classifier", labels)}
    if task == "question_answering":
        return {"out": ("qa_outputs", 2)}
    if task == "replaced_token_detection":
        if c.model_type != "electra":
            raise ValueError(f"bert: replaced_token_detection is ELECTRA's head, not "
                             f"{c.model_type}'s")
        return {"dense": ("discriminator_predictions.dense", "hidden"),
                "out": ("discriminator_predictions.dense_prediction", 1)}
    if task in (None, "masked_lm"):
        return {}
    raise ValueError(f"bert: unknown task {task!r}")


def bert_tensor_shapes(config, *, prefix: str | None = None, pooler: bool | None = None,
                       mlm: bool = False, nsp: bool = False, decoder: bool = False,
                       decoder_bias: bool = False,
                       task: str | None = None) -> dict[str, tuple[int, ...]]:
    """The tensors of a Hugging Face BERT-family checkpoint, name -> shape, in checkpoint order.

    ``config``: a config.json dict or a BertConfig; its model_type picks the names.
    ``prefix``: the encoder's ("bert.", "roberta.", "distilbert.", "electra."), default "" for
    a bare encoder and the family's for a checkpoint with a head (``task``, ``mlm``).
    ``pooler`` (default: BERT / RoBERTa / XLM-R without a task head or with the MLM head,
    and BERT's sequence classifier, which reads it; DistilBERT and ELECTRA have none). ``task``: the head
    ("sequence_classification", "token_classification", "question_answering",
    "replaced_token_detection"; "masked_lm" is ``mlm=True``). ``mlm`` / ``nsp``: BERT's
    pre-training heads (``cls.predictions``, ``cls.seq_relationship``; RoBERTa's
    ``lm_head``, DistilBERT's ``vocab_*``), never prefixed. The MLM decoder weight is tied to
    the word embeddings and so is listed only with ``decoder`` (a checkpoint with its own,
    untied one); ``decoder_bias`` lists transformers' saved copy of the MLM bias. For writing
    random checkpoints (tests, benchmarks): what ``from_weights`` reads."""
    c = BertConfig.of(config)
    if task == "masked_lm":
        task, mlm = None, True
    head = head_tensor_names(c, task)
    if prefix is None:
        prefix = c.traits["prefix"] if (task or mlm or nsp) else ""
    if pooler is None:
        pooler = (c.traits["sequence_head"] == "pooler" if task == "sequence_classification"
                  else task is None and c.model_type in ("bert", "roberta", "xlm-roberta"))
    if pooler and c.model_type in ("distilbert", "electra"):
        raise ValueError(f"bert: {c.model_type} has no pooler")
    h, inter, vocab, e_dim = c.hidden_size, c.intermediate_size, c.vocab_size, c.embedding_width
    shapes: dict[str, tuple[int, ...]] = {}

    def dense(name, out, inp):
        shapes[name + ".weight"] = (out, inp)
        shapes[name + ".bias"] = (out,)

    def norm(name, width=h):
        shapes[name + ".weight"] = (width,)
        shapes[name + ".bias"] = (width,)

    e = prefix + "embeddings."
    shapes[e + "word_embeddings.weight"] = (vocab, e_dim)
    shapes[e + "position_embeddings.weight"] = (c.max_position_embeddings, e_dim)
    if c.type_vocab_size:
        shapes[e + "token_type_embeddings.weight"] = (c.type_vocab_size, e_dim)
    norm(e + "LayerNorm", e_dim)
    if e_dim != h:
        dense(prefix + "embeddings_project", h, e_dim)
    n = LAYER_NAMES[c.traits["layout"]]
    for layer in range(c.num_hidden_layers):
        p = prefix + n["root"].format(layer)
        for role in ("q", "k", "v", "o"):
            dense(p + n[role], h, h)
        norm(p + n["ln1"])
        dense(p + n["up"], inter, h)
        dense(p + n["down"], h, inter)
        norm(p + n["ln2"])
    if pooler:
        dense(prefix + "pooler.dense", h, h)
    if mlm:
        m = mlm_names(c)
        dense(m["transform"], h, h)
        norm(m["norm"])
        shapes[m["bias"]] = (vocab,)
        if decoder:
            shapes[m["decoder"]] = (vocab, h)
        if decoder_bias and m["decoder_bias"]:
            shapes[m["decoder_bias"]] = (vocab,)
    if nsp:
        if c.model_type != "bert":
            raise ValueError(f"bert: the next-sentence head is BERT's, not {c.model_type}'s")
        dense("cls.seq_relationship", 2, h)
    for name, rows in head.values():
        dense(name, h if rows == "hidden" else rows, h)
    return shapes


def mlm_names(config) -> dict:
    """The masked-LM head's tensor names of ``config``'s family (ValueError for ELECTRA,
    whose generator head is not implemented)."""
    c = BertConfig.of(config)
    kind = c.traits["mlm"]
    if kind is None:
        raise ValueError(f"bert: the masked-LM head of {c.model_type} is not supported")
    return MLM_NAMES[kind]
