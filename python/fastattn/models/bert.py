"""BERT encoder (model_type "bert"): bidirectional post-norm transformer, masked-LM head.

    x = LayerNorm(word[ids] + position[pos] + token_type[types])
    per layer:  h = LayerNorm1(x + Attention(x))      (padding-masked, every token sees all)
                x = LayerNorm2(h + W2 gelu(W1 h))      (exact erf GELU)
    pooler(x) = tanh(W_p x[:, 0] + b_p)
    MLM head:   logits = LayerNorm(gelu(W_t x)) @ word^T + b    (decoder tied to the embeddings)

Checkpoint names are Hugging Face's (BertModel / BertForMaskedLM, with or without "bert.").
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..layers import (Attention, Embedding, LayerNorm, Linear, MLP, TransformerBlock,
                      activation_name)
from .weights import Weights


class BertModel:
    def __init__(self, config, embeddings, blocks, pooler=None, mlm=None):
        self.config = config
        self.word, self.position, self.token_type, self.embed_norm = embeddings
        self.blocks, self.pooler, self.mlm = blocks, pooler, mlm
        self.hidden_size = self.word.dim

    @classmethod
    def from_weights(cls, config, source) -> "BertModel":
        names = set(source.keys())
        prefix = "bert." if any(n.startswith("bert.") for n in names) else ""
        w = Weights(source, prefix, ignore=("position_ids",))
        c = config
        h, inter = c.hidden_size, c.intermediate_size
        heads = c.num_attention_heads
        act = activation_name(c.hidden_act)
        eps = c.layer_norm_eps
        embeddings = (
            Embedding(w.take("embeddings.word_embeddings.weight", (c.vocab_size, h))),
            Embedding(w.take("embeddings.position_embeddings.weight",
                             (c.max_position_embeddings, h))),
            Embedding(w.take("embeddings.token_type_embeddings.weight", (c.type_vocab_size, h))),
            LayerNorm(w.take("embeddings.LayerNorm.weight", (h,)),
                      w.take("embeddings.LayerNorm.bias", (h,)), eps),
        )
        blocks = []
        for i in range(c.num_hidden_layers):
            p = f"encoder.layer.{i}."
            qkv = Linear.concat([(w.take(p + f"attention.self.{n}.weight", (h, h)),
                                  w.take(p + f"attention.self.{n}.bias", (h,)))
                                 for n in ("query", "key", "value")])
            attn = Attention(qkv, Linear(w.take(p + "attention.output.dense.weight", (h, h)),
                                         w.take(p + "attention.output.dense.bias", (h,))),
                             heads, heads, h // heads, causal=False)
            mlp = MLP(Linear(w.take(p + "intermediate.dense.weight", (inter, h)),
                             w.take(p + "intermediate.dense.bias", (inter,))),
                      Linear(w.take(p + "output.dense.weight", (h, inter)),
                             w.take(p + "output.dense.bias", (h,))), act)
            norm1 = LayerNorm(w.take(p + "attention.output.LayerNorm.weight", (h,)),
                              w.take(p + "attention.output.LayerNorm.bias", (h,)), eps)
            norm2 = LayerNorm(w.take(p + "output.LayerNorm.weight", (h,)),
                              w.take(p + "output.LayerNorm.bias", (h,)), eps)
            blocks.append(TransformerBlock(attn, mlp, norm1, norm2, prenorm=False))
        pooler = None
        if w.has("pooler.dense.weight"):
            pooler = Linear(w.take("pooler.dense.weight", (h, h)),
                            w.take("pooler.dense.bias", (h,)))
        mlm = None
        head = Weights(source, "", ignore=("position_ids",))
        if head.has("cls.predictions.transform.dense.weight"):
            decoder_w = embeddings[0].weight
            if head.has("cls.predictions.decoder.weight"):
                decoder_w = head.take("cls.predictions.decoder.weight", (c.vocab_size, h))
            if head.has("cls.predictions.decoder.bias"):
                head.take("cls.predictions.decoder.bias", (c.vocab_size,))
            mlm = (Linear(head.take("cls.predictions.transform.dense.weight", (h, h)),
                          head.take("cls.predictions.transform.dense.bias", (h,))),
                   LayerNorm(head.take("cls.predictions.transform.LayerNorm.weight", (h,)),
                             head.take("cls.predictions.transform.LayerNorm.bias", (h,)), eps),
                   Linear(decoder_w, head.take("cls.predictions.bias", (c.vocab_size,))))
        w.taken |= head.taken
        w.check_all_used()
        return cls(config, embeddings, blocks, pooler, mlm)

    def _inputs(self, input_ids, attention_mask, token_type_ids):
        ids = np.asarray(input_ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2:
            raise ValueError(f"bert: input_ids must be (batch, length), got shape {ids.shape}")
        if ids.shape[1] > self.position.num_embeddings:
            raise ValueError(f"bert: length {ids.shape[1]} exceeds max_position_embeddings "
                             f"{self.position.num_embeddings}")
        def like_ids(a, name, default):
            if a is None:
                return default
            a = np.asarray(a)
            a = a[None] if a.ndim == 1 else a
            if a.shape != ids.shape:
                raise ValueError(f"bert: {name} has shape {a.shape}, expected {ids.shape} "
                                 f"(the shape of input_ids)")
            return a
        mask = like_ids(attention_mask, "attention_mask", np.ones(ids.shape, np.int64))
        types = like_ids(token_type_ids, "token_type_ids", np.zeros(ids.shape, np.int64))
        return ids, mask.astype(bool), types

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *,
                 output_hidden_states: bool = False, output_attentions: bool = False):
        """Last hidden states (B, L, hidden). With output_hidden_states / output_attentions,
        returns a dict with "last_hidden_state", "hidden_states" (embeddings + each layer) and
        "attentions" (each layer's probabilities (B, H, L, L))."""
        ids, mask, types = self._inputs(input_ids, attention_mask, token_type_ids)
        positions = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
        x = (self.word(ids) + self.position(positions, "positions")
             + self.token_type(types, "token_type_ids"))
        x = self.embed_norm(np.ascontiguousarray(x, np.float32))
        key_mask = None if mask.all() else mask
        hidden, attentions = [x], []
        for block in self.blocks:
            if output_attentions:
                x, probs = block(x, key_mask=key_mask, return_weights=True)
                attentions.append(probs)
            else:
                x = block(x, key_mask=key_mask)
            hidden.append(x)
        if not (output_hidden_states or output_attentions):
            return x
        out = {"last_hidden_state": x}
        if output_hidden_states:
            out["hidden_states"] = hidden
        if output_attentions:
            out["attentions"] = attentions
        return out

    def pooled(self, hidden: np.ndarray) -> np.ndarray:
        """BERT's pooler: tanh(W x[:, 0] + b)."""
        if self.pooler is None:
            raise ValueError("bert: this checkpoint has no pooler weights")
        return np.tanh(self.pooler(np.ascontiguousarray(hidden[:, 0])))

    def mlm_logits(self, hidden: np.ndarray) -> np.ndarray:
        """Masked-LM logits (..., vocab) for hidden states (..., hidden)."""
        if self.mlm is None:
            raise ValueError("bert: this checkpoint has no masked-LM head (cls.predictions.*)")
        transform, norm, decoder = self.mlm
        return decoder(norm(transform(hidden, activation=activation_name(self.config.hidden_act))))

    def fill_mask(self, text: str, tokenizer, top_k: int = 5):
        """For each [MASK] in text, the top_k candidates: a list (one per mask) of lists of
        {"token", "token_id", "score"} sorted by probability."""
        enc = tokenizer.encode(text)
        ids = np.asarray(enc.ids)
        where = np.flatnonzero(ids == tokenizer.mask_token_id)
        if where.size == 0:
            raise ValueError("fill_mask: the text has no mask token "
                             f"{tokenizer.mask_token!r}")
        hidden = self(ids[None], token_type_ids=np.asarray(enc.type_ids)[None])
        probs = ops.softmax(self.mlm_logits(np.ascontiguousarray(hidden[0, where])))
        results = []
        for row in probs:
            best = np.argsort(-row, kind="stable")[:top_k]
            results.append([{"token": tokenizer.convert_ids_to_tokens([int(i)])[0],
                             "token_id": int(i), "score": float(row[i])} for i in best])
        return results


def embed(model: BertModel, tokenizer, texts, pooling: str = "mean", normalize: bool = True,
          batch_size: int = 32, max_length: int | None = None) -> np.ndarray:
    """Sentence embeddings (N, hidden) float32: mean of the token vectors over the attention
    mask ("mean") or the [CLS] vector ("cls"); L2-normalised when normalize."""
    if pooling not in ("mean", "cls"):
        raise ValueError(f"embed: pooling must be 'mean' or 'cls', got {pooling!r}")
    if isinstance(texts, str):
        raise TypeError("embed: texts must be a list of strings, got a single str")
    texts = list(texts)
    out = np.empty((len(texts), model.hidden_size), np.float32)
    limit = max_length or model.position.num_embeddings
    for start in range(0, len(texts), batch_size):
        batch = tokenizer.encode_batch(texts[start:start + batch_size], padding=True,
                                       max_length=limit, truncation=True)
        mask = np.asarray(batch["attention_mask"])
        hidden = model(batch["input_ids"], mask, batch["token_type_ids"])
        if pooling == "cls":
            vec = hidden[:, 0]
        else:
            m = mask[:, :, None].astype(np.float32)
            vec = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
        out[start:start + len(vec)] = vec
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
