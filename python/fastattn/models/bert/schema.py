"""The tensors of a Hugging Face BERT checkpoint: the one list that BertModel.from_weights
takes its tensors from and that fastattn.testing writes random checkpoints from."""
from __future__ import annotations

from .config import BertConfig


def bert_tensor_shapes(config, *, prefix: str = "", pooler: bool = True, mlm: bool = False,
                       nsp: bool = False, decoder: bool = False,
                       decoder_bias: bool = False) -> dict[str, tuple[int, ...]]:
    """The tensors of a Hugging Face BERT checkpoint, name -> shape, in checkpoint order.

    ``config``: a config.json dict or a BertConfig. ``prefix``: "bert." for the pre-training /
    MLM classes. The heads (``mlm``: ``cls.predictions``, ``nsp``: ``cls.seq_relationship``)
    are never prefixed. The MLM decoder weight is tied to the word embeddings and so is listed
    only with ``decoder`` (a checkpoint with its own, untied one); ``decoder_bias`` lists
    ``cls.predictions.decoder.bias``, the copy of ``cls.predictions.bias`` transformers may
    save. For writing random checkpoints (tests, benchmarks): what ``from_weights`` reads."""
    c = BertConfig.of(config)
    h, inter, vocab = c.hidden_size, c.intermediate_size, c.vocab_size
    shapes: dict[str, tuple[int, ...]] = {}

    def dense(name, out, inp):
        shapes[name + ".weight"] = (out, inp)
        shapes[name + ".bias"] = (out,)

    def norm(name):
        shapes[name + ".weight"] = (h,)
        shapes[name + ".bias"] = (h,)

    e = prefix + "embeddings."
    shapes[e + "word_embeddings.weight"] = (vocab, h)
    shapes[e + "position_embeddings.weight"] = (c.max_position_embeddings, h)
    shapes[e + "token_type_embeddings.weight"] = (c.type_vocab_size, h)
    norm(e + "LayerNorm")
    for layer in range(c.num_hidden_layers):
        p = f"{prefix}encoder.layer.{layer}."
        for name in ("query", "key", "value"):
            dense(p + f"attention.self.{name}", h, h)
        dense(p + "attention.output.dense", h, h)
        norm(p + "attention.output.LayerNorm")
        dense(p + "intermediate.dense", inter, h)
        dense(p + "output.dense", h, inter)
        norm(p + "output.LayerNorm")
    if pooler:
        dense(prefix + "pooler.dense", h, h)
    if mlm:
        dense("cls.predictions.transform.dense", h, h)
        norm("cls.predictions.transform.LayerNorm")
        shapes["cls.predictions.bias"] = (vocab,)
        if decoder:
            shapes["cls.predictions.decoder.weight"] = (vocab, h)
        if decoder_bias:
            shapes["cls.predictions.decoder.bias"] = (vocab,)
    if nsp:
        dense("cls.seq_relationship", 2, h)
    return shapes
