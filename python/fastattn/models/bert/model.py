"""BERT encoder (model_type "bert"): bidirectional post-norm transformer, pooler, heads.

    x = LayerNorm(word[ids] + position[0..L-1] + token_type[types])
    per layer:  h = LayerNorm1(x + Attention(x))      (padding-masked, every token sees all)
                x = LayerNorm2(h + W2 gelu(W1 h))      (exact erf GELU)
    pooler(x) = tanh(W_p x[:, 0] + b_p)
    MLM head:   logits = LayerNorm(gelu(W_t x + b_t)) @ word^T + b    (decoder tied to the
                word embeddings unless the checkpoint has its own decoder weight)
    NSP head:   logits = W_s pooler(x) + b_s           (BertForPreTraining checkpoints)

Checkpoint names are Hugging Face's (BertModel / BertForMaskedLM / BertForPreTraining, with or
without "bert."); the LayerNorm names "gamma" / "beta" of old checkpoints are read as
"weight" / "bias".

The model is pure (arrays in, arrays out); fill-mask and sentence embeddings, which need a
tokenizer, are pipelines: fastattn.pipelines.fill_mask and fastattn.pipelines.embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...layers import (Attention, Embedding, LayerNorm, Linear, MLP, TransformerBlock,
                       activation_name)
from ..output import ModelOutput
from ..weights import take_listed
from .config import BertConfig
from .schema import bert_tensor_shapes


@dataclass
class BertOutput(ModelOutput):
    """What ``BertModel(...)`` returns with ``output_hidden_states``, ``output_attentions`` or
    ``return_dict``: transformers' attribute names; ``out["name"]`` works too.

    - last_hidden_state: (B, L, hidden) float32
    - pooler_output: (B, hidden) tanh(W x[:, 0] + b), or None when the checkpoint has no pooler
    - hidden_states: tuple of num_hidden_layers + 1 arrays (B, L, hidden): the embeddings'
      output, then each layer's (only with output_hidden_states)
    - attentions: tuple of num_hidden_layers arrays (B, H, L, L): each layer's attention
      probabilities, rows summing to 1 over the real keys, exactly 0 on padded keys (only
      with output_attentions)
    """
    last_hidden_state: np.ndarray
    pooler_output: np.ndarray | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class _Renamed:
    """A checkpoint seen with old LayerNorm names ("gamma", "beta") renamed to the current
    ones ("weight", "bias"), as transformers does when it loads such checkpoints."""

    def __init__(self, source):
        self.source = source
        self.names = {}
        for name in source.keys():
            new = name
            if ".LayerNorm." in name or name.startswith("LayerNorm."):
                if name.endswith(".gamma"):
                    new = name[: -len("gamma")] + "weight"
                elif name.endswith(".beta"):
                    new = name[: -len("beta")] + "bias"
            self.names[new] = name

    def keys(self):
        return self.names.keys()

    def __getitem__(self, name):
        return self.source[self.names[name]]




class BertModel:
    """A BERT encoder built from a checkpoint: ``BertModel.from_weights(config, tensors)``, or
    ``fastattn.load(directory)``. See the module docstring for the equations."""

    def __init__(self, config, embeddings, blocks, pooler=None, mlm=None, nsp=None):
        self.config = config
        self.word, self.position, self.token_type, self.embed_norm = embeddings
        self.blocks, self.pooler, self.nsp = blocks, pooler, nsp
        # (transform Linear, LayerNorm, decoder weight (vocab, hidden), decoder bias); the
        # decoder is packed for the matmul on first use (see mlm_logits): a model used only
        # for embeddings never holds a second copy of the word embeddings.
        self._mlm = mlm
        self._decoder = None
        self.hidden_size = self.word.dim
        self.num_layers = len(blocks)
        self.num_heads = config.num_attention_heads

    @property
    def vocab_size(self) -> int:
        return self.word.num_embeddings

    @property
    def max_length(self) -> int:
        """The longest input: max_position_embeddings."""
        return self.position.num_embeddings

    @property
    def has_mlm_head(self) -> bool:
        return self._mlm is not None

    @classmethod
    def from_weights(cls, config, source) -> "BertModel":
        """Builds the model from ``config`` (a BertConfig, a config.json dict, or an object
        with BertConfig's attributes: hidden_size, num_hidden_layers, num_attention_heads,
        intermediate_size, hidden_act, max_position_embeddings, type_vocab_size,
        layer_norm_eps, vocab_size) and ``source``, a mapping of checkpoint names to arrays:
        the tensors bert_tensor_shapes lists. Pooler, masked-LM and next-sentence heads are
        built when their tensors are present. Raises ValueError for an invalid config, a
        missing tensor, a wrong shape, or a tensor the model does not use."""
        c = BertConfig.of(config)
        source = _Renamed(source)
        names = set(source.keys())
        prefix = "bert." if any(n.startswith("bert.") for n in names) else ""
        mlm = "cls.predictions.transform.dense.weight" in names
        shapes = bert_tensor_shapes(
            c, prefix=prefix, pooler=prefix + "pooler.dense.weight" in names, mlm=mlm,
            nsp="cls.seq_relationship.weight" in names,
            decoder=mlm and "cls.predictions.decoder.weight" in names,
            decoder_bias=mlm and "cls.predictions.decoder.bias" in names)
        t = take_listed(source, shapes, ignore=("position_ids",))
        h, heads, eps = c.hidden_size, c.num_attention_heads, c.layer_norm_eps
        act = activation_name(c.hidden_act)

        def dense(name):
            return Linear(t[name + ".weight"], t[name + ".bias"])

        def layer_norm(name):
            return LayerNorm(t[name + ".weight"], t[name + ".bias"], eps)

        e = prefix + "embeddings."
        embeddings = (Embedding(t[e + "word_embeddings.weight"]),
                      Embedding(t[e + "position_embeddings.weight"]),
                      Embedding(t[e + "token_type_embeddings.weight"]),
                      layer_norm(e + "LayerNorm"))
        blocks = []
        for i in range(c.num_hidden_layers):
            p = f"{prefix}encoder.layer.{i}."
            qkv = Linear.concat([(t[p + f"attention.self.{n}.weight"],
                                  t[p + f"attention.self.{n}.bias"])
                                 for n in ("query", "key", "value")])
            attn = Attention(qkv, dense(p + "attention.output.dense"), heads, heads, h // heads,
                             causal=False)
            mlp = MLP(dense(p + "intermediate.dense"), dense(p + "output.dense"), act)
            blocks.append(TransformerBlock(attn, mlp, layer_norm(p + "attention.output.LayerNorm"),
                                           layer_norm(p + "output.LayerNorm"), prenorm=False))
        pooler = dense(prefix + "pooler.dense") if prefix + "pooler.dense.weight" in t else None
        heads_mlm = None
        if mlm:
            # cls.predictions.decoder.bias, when saved, is transformers' second copy of
            # cls.predictions.bias (the two are tied): checked, not used
            heads_mlm = (dense("cls.predictions.transform.dense"),
                         layer_norm("cls.predictions.transform.LayerNorm"),
                         t.get("cls.predictions.decoder.weight", embeddings[0].weight),
                         t["cls.predictions.bias"])
        nsp = dense("cls.seq_relationship") if "cls.seq_relationship.weight" in t else None
        return cls(c, embeddings, blocks, pooler, heads_mlm, nsp)

    # ------------------------------------------------------------------------------ forward
    def _inputs(self, input_ids, attention_mask, token_type_ids):
        ids = np.asarray(input_ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2:
            raise ValueError(f"bert: input_ids must be (batch, length) or (length,), got shape "
                             f"{ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"bert: input_ids must be integers, got {ids.dtype}")
        if ids.shape[1] == 0:
            raise ValueError("bert: input_ids has length 0 (every sequence needs a token)")
        if ids.shape[1] > self.max_length:
            raise ValueError(f"bert: length {ids.shape[1]} exceeds max_position_embeddings "
                             f"{self.max_length}")

        def like_ids(a, name):
            a = np.asarray(a)
            a = a[None] if a.ndim == 1 else a
            if a.shape != ids.shape:
                raise ValueError(f"bert: {name} has shape {a.shape}, expected {ids.shape} "
                                 f"(the shape of input_ids)")
            if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
                raise TypeError(f"bert: {name} must be integers or bool, got {a.dtype}")
            return a

        mask = None
        if attention_mask is not None:
            mask = like_ids(attention_mask, "attention_mask")
            if mask.dtype != bool:
                if mask.size and (mask.min() < 0 or mask.max() > 1):
                    raise ValueError("bert: attention_mask must hold 0 (padding) and 1 (token), "
                                     f"found {int(mask.min() if mask.min() < 0 else mask.max())}")
                mask = mask.astype(bool)
        types = (np.zeros(ids.shape, np.int64) if token_type_ids is None
                 else like_ids(token_type_ids, "token_type_ids"))
        return ids, mask, types

    def embeddings(self, input_ids, token_type_ids=None) -> np.ndarray:
        """The embedding layer's output (B, L, hidden): LayerNorm(word + position + type)."""
        ids, _, types = self._inputs(input_ids, None, token_type_ids)
        positions = np.arange(ids.shape[1])
        x = self.word(ids)
        x += self.position(positions, "positions")  # (L, hidden) broadcast over the batch
        x += self.token_type(types, "token_type_ids")
        return self.embed_norm(x)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *,
                 output_hidden_states: bool = False, output_attentions: bool = False,
                 return_dict: bool = False):
        """Encodes a batch. input_ids (B, L) or (L,) integers; attention_mask (same shape, 1
        for tokens, 0 for padding, default all 1): padded positions are masked out of every
        query's keys, so real tokens' outputs do not depend on the padding; token_type_ids
        (default all 0).

        Returns the last hidden states (B, L, hidden) float32, or with output_hidden_states,
        output_attentions or return_dict a :class:`BertOutput` (last_hidden_state,
        pooler_output, hidden_states, attentions). A padded position's own output is
        computed like any token's (its query sees the real keys) and is meaningless."""
        ids, mask, types = self._inputs(input_ids, attention_mask, token_type_ids)
        x = self.embeddings(ids, types)
        key_mask = None if mask is None or mask.all() else mask
        hidden, attentions = [x], []
        for block in self.blocks:
            if output_attentions:
                x, probs = block(x, key_mask=key_mask, return_weights=True)
                attentions.append(probs)
            else:
                x = block(x, key_mask=key_mask)
            hidden.append(x)
        if not (output_hidden_states or output_attentions or return_dict):
            return x
        return BertOutput(
            last_hidden_state=x,
            pooler_output=self.pooled(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None)

    # -------------------------------------------------------------------------------- heads
    def pooled(self, hidden: np.ndarray) -> np.ndarray:
        """BERT's pooler on last hidden states (B, L, hidden): tanh(W x[:, 0] + b), (B, hidden)."""
        if self.pooler is None:
            raise ValueError("bert: this checkpoint has no pooler weights (pooler.dense.*)")
        return np.tanh(self.pooler(np.ascontiguousarray(hidden[:, 0])))

    def mlm_logits(self, hidden: np.ndarray) -> np.ndarray:
        """Masked-LM logits (..., vocab) for hidden states (..., hidden):
        LayerNorm(act(W_t x + b_t)) @ decoder^T + b."""
        if self._mlm is None:
            raise ValueError("bert: this checkpoint has no masked-LM head (cls.predictions.*)")
        transform, norm, decoder_w, bias = self._mlm
        if self._decoder is None:
            self._decoder = Linear(decoder_w, bias)
        act = activation_name(self.config.hidden_act)
        return self._decoder(norm(transform(np.ascontiguousarray(hidden, np.float32),
                                            activation=act)))

    def nsp_logits(self, pooled: np.ndarray) -> np.ndarray:
        """Next-sentence logits (B, 2) from the pooler output (BertForPreTraining checkpoints):
        index 0 = "B follows A"."""
        if self.nsp is None:
            raise ValueError("bert: this checkpoint has no next-sentence head "
                             "(cls.seq_relationship.*)")
        return self.nsp(np.ascontiguousarray(pooled, np.float32))

    def fill_mask(self, text: str, tokenizer, top_k: int = 5):
        """``fastattn.pipelines.fill_mask(self, tokenizer, text, top_k)``: kept as a method for
        existing callers; the pipeline (``fastattn.pipelines.FillMask``) owns the logic."""
        from ...pipelines.fill_mask import fill_mask
        return fill_mask(self, tokenizer, text, top_k)
