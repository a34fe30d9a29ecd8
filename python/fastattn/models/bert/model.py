"""The BERT-family encoder (model_type "bert", "roberta", "xlm-roberta", "distilbert",
"electra"): one bidirectional post-norm transformer, its pooler and task heads. The families
are configurations of this one model (config.py: FAMILY_TRAITS; schema.py: tensor names).

    x = LayerNorm(word[ids] + position[pos] + token_type[types])
        pos = 0..L-1; RoBERTa / XLM-R: pad + 1 + (index among the row's non-pad ids), pad
              for pad ids (transformers' create_position_ids_from_input_ids)
        DistilBERT: no token_type term;  ELECTRA: x = W_e x + b_e (embeddings_project) when
              embedding_size != hidden_size
    per layer:  h = LayerNorm1(x + Attention(x))      (padding-masked, every token sees all)
                x = LayerNorm2(h + W2 act(W1 h))
    pooler(x) = tanh(W_p x[:, 0] + b_p)                (BERT, RoBERTa, XLM-R)
    heads (config.task, found from the checkpoint's tensors):
      sequence_classification  logits = W_c pooler(x) + b_c                        BERT
                               logits = W_o tanh(W_d x[:, 0] + b_d) + b_o          RoBERTa, XLM-R
                               logits = W_o gelu(W_d x[:, 0] + b_d) + b_o          ELECTRA
                               logits = W_c relu(W_p x[:, 0] + b_p) + b_c          DistilBERT
      token_classification     logits = W_c x + b_c                    (B, L, num_labels)
      question_answering       start, end = W_qa x + b_qa              (B, L) each
      replaced_token_detection logits = w act(W_d x + b_d) + b         (B, L), ELECTRA
      masked_lm                LayerNorm(act(W_t x + b_t)) @ word^T + b   (mlm_logits; decoder
                               tied to the word embeddings unless the checkpoint has its own)
      next sentence (BERT pre-training): W_s pooler(x) + b_s          (nsp_logits)

Checkpoint names are Hugging Face's (with or without the family's prefix "bert." /
"roberta." / "distilbert." / "electra."); the LayerNorm names "gamma" / "beta" of old
checkpoints are read as "weight" / "bias". A tensor the model does not use is refused with its
name.

The model is pure (arrays in, arrays out); classification, fill-mask and sentence embeddings,
which need a tokenizer, are pipelines (fastattn.pipelines).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ...layers import (Attention, Embedding, LayerNorm, Linear, MLP, TransformerBlock,
                       activation_name)
from ..output import ModelOutput
from ..weights import take_listed
from .config import BertConfig
from .schema import LAYER_NAMES, bert_tensor_shapes, head_tensor_names, mlm_names


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
    - logits: the task head's (config.task): (B, num_labels) for sequence classification,
      (B, L, num_labels) for token classification, (B, L) for ELECTRA's replaced-token
      detection; None otherwise (masked-LM logits: ``model.mlm_logits(last_hidden_state)``)
    - start_logits, end_logits: (B, L) each, question answering; None otherwise
    """
    last_hidden_state: np.ndarray
    pooler_output: np.ndarray | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    logits: np.ndarray | None = None
    start_logits: np.ndarray | None = None
    end_logits: np.ndarray | None = None

    _HEAD_FIELDS = ("logits", "start_logits", "end_logits")

    def __getitem__(self, name: str):
        # as transformers' ModelOutput, which has no key for a head the model lacks
        if name in self._HEAD_FIELDS and getattr(self, name) is None:
            raise KeyError(name)
        return super().__getitem__(name)


# The heads whose activation is not hidden_act: (task, family's sequence_head) -> activation.
# transformers: RobertaClassificationHead tanh, ElectraClassificationHead get_activation("gelu"),
# DistilBertForSequenceClassification nn.ReLU; ELECTRA's discriminator uses hidden_act.
_HEAD_ACTIVATIONS = {("sequence_classification", "tanh"): "tanh",
                     ("sequence_classification", "gelu"): "gelu",
                     ("sequence_classification", "relu"): "relu"}


def _task_of(c: BertConfig, names: set, has_pooler: bool) -> str | None:
    """The head a checkpoint holds, from its tensor names. BERT's sequence and token
    classifiers are both "classifier.*": config.task (config.json's architectures) decides,
    else the pooler does (the sequence classifier reads it; transformers' token classifier
    is built without one)."""
    if "qa_outputs.weight" in names:
        return "question_answering"
    if "discriminator_predictions.dense.weight" in names:
        return "replaced_token_detection"
    if "classifier.dense.weight" in names or "pre_classifier.weight" in names:
        return "sequence_classification"
    if "classifier.weight" in names:
        if c.task in ("sequence_classification", "token_classification"):
            return c.task
        if c.traits["sequence_head"] == "pooler" and has_pooler:
            return "sequence_classification"
        return "token_classification"
    kind = c.traits["mlm"]
    if kind is not None and mlm_names(c)["transform"] + ".weight" in names:
        return "masked_lm"
    return None


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

    def __getattr__(self, attribute):
        """The source's per-tensor accessors (raw, dtype, shape, release, record_matrix:
        fastattn.models.weights) under the new names; AttributeError where it has none."""
        if attribute in ("source", "names"):   # not set yet (copy, pickle): no recursion
            raise AttributeError(attribute)
        method = getattr(self.source, attribute)
        if not callable(method):           # e.g. a checkpoint's `mmap` flag
            return method
        if attribute == "record_matrix":
            return lambda name, layout, saved: method(self.names[name], layout,
                                                      self.names.get(saved, saved))
        return lambda name, *rest: method(self.names[name], *rest)




class BertModel:
    """A BERT-family encoder built from a checkpoint: ``BertModel.from_weights(config, tensors)``,
    or ``fastattn.load(directory)``. See the module docstring for the equations.

    ``task``: the head the checkpoint has (config.task; None for a bare encoder). With a
    classification, question-answering or replaced-token-detection head, a call returns a
    :class:`BertOutput` carrying ``logits`` (or ``start_logits`` / ``end_logits``)."""

    def __init__(self, config, embeddings, blocks, pooler=None, mlm=None, nsp=None, head=None):
        self.config = config
        self.word, self.position, self.token_type, self.embed_norm, self.project = embeddings
        self.blocks, self.pooler, self.nsp = blocks, pooler, nsp
        # (dense Linear or None, its activation, out Linear) of config.task's head
        self.head = head
        # (transform Linear, LayerNorm, decoder weight (vocab, hidden), decoder bias); the
        # decoder is packed for the matmul on first use (see mlm_logits): a model used only
        # for embeddings never holds a second copy of the word embeddings.
        self._mlm = mlm
        self._decoder = None
        self.hidden_size = config.hidden_size
        self.num_layers = len(blocks)
        self.num_heads = config.num_attention_heads

    @property
    def vocab_size(self) -> int:
        return self.word.num_embeddings

    @property
    def max_length(self) -> int:
        """The longest input: max_position_embeddings (less pad_token_id + 1 for RoBERTa /
        XLM-R, whose positions start after the padding id)."""
        return self.config.max_length

    @property
    def task(self) -> str | None:
        return self.config.task

    @property
    def has_mlm_head(self) -> bool:
        return self._mlm is not None

    @classmethod
    def from_weights(cls, config, source, weights: str = "float32") -> "BertModel":
        """Builds the model from ``config`` (a BertConfig, a config.json dict, or an object
        with BertConfig's attributes) and ``source``, a mapping of checkpoint names to arrays:
        the tensors bert_tensor_shapes lists. The pooler and the heads are built when their
        tensors are present; the task is found from them (``config.architectures`` decides
        between BERT's sequence and token classifiers, whose tensors have the same names).
        Raises ValueError for an invalid config, a missing tensor, a wrong shape, or a tensor
        the model does not use (named). ``weights``: the format of the Linear layers'
        matrices (the encoder's, the pooler's and the task heads'; fastattn.models.weights);
        embeddings, norms and the masked-LM decoder (tied to the word embeddings) stay
        float32."""
        c = BertConfig.of(config)
        source = _Renamed(source)
        names = set(source.keys())
        family_prefix = c.traits["prefix"]
        prefix = family_prefix if any(n.startswith(family_prefix) for n in names) else ""
        has_pooler = (prefix + "pooler.dense.weight" in names
                      and c.model_type not in ("distilbert", "electra"))
        task = _task_of(c, names, has_pooler)
        c = dataclasses.replace(c, task=task)
        mlm = task == "masked_lm"
        m = mlm_names(c) if mlm else None
        shapes = bert_tensor_shapes(
            c, prefix=prefix,
            # BERT's sequence classifier reads the pooler: required (listed) there; other
            # heads' checkpoints may carry one (older transformers saved it): read, unused
            pooler=has_pooler or (task == "sequence_classification"
                                  and c.traits["sequence_head"] == "pooler"),
            mlm=mlm, nsp="cls.seq_relationship.weight" in names and c.model_type == "bert",
            decoder=mlm and m["decoder"] in names,
            decoder_bias=mlm and m["decoder_bias"] is not None and m["decoder_bias"] in names,
            task=None if mlm else task)
        t = take_listed(source, shapes, ignore=("position_ids",), weights=weights)
        h, heads, eps = c.hidden_size, c.num_attention_heads, c.layer_norm_eps
        act = activation_name(c.hidden_act)

        def dense(name):
            return t.linear(name)

        def layer_norm(name):
            return LayerNorm(t[name + ".weight"], t[name + ".bias"], eps)

        e = prefix + "embeddings."
        embeddings = (Embedding(t[e + "word_embeddings.weight"]),
                      Embedding(t[e + "position_embeddings.weight"]),
                      (Embedding(t[e + "token_type_embeddings.weight"]) if c.type_vocab_size
                       else None),
                      layer_norm(e + "LayerNorm"),
                      (dense(prefix + "embeddings_project")
                       if prefix + "embeddings_project.weight" in t else None))
        n = LAYER_NAMES[c.traits["layout"]]
        blocks = []
        for i in range(c.num_hidden_layers):
            p = prefix + n["root"].format(i)
            qkv = t.linear([p + n[r] for r in ("q", "k", "v")])
            attn = Attention(qkv, dense(p + n["o"]), heads, heads, h // heads, causal=False)
            mlp = MLP(dense(p + n["up"]), dense(p + n["down"]), act)
            blocks.append(TransformerBlock(attn, mlp, layer_norm(p + n["ln1"]),
                                           layer_norm(p + n["ln2"]), prenorm=False))
        pooler = dense(prefix + "pooler.dense") if prefix + "pooler.dense.weight" in t else None
        heads_mlm = None
        if mlm:
            # the decoder bias, when saved, is transformers' second copy of the MLM bias (the
            # two are tied): checked, not used
            heads_mlm = (dense(m["transform"]), layer_norm(m["norm"]),
                         t.get(m["decoder"], embeddings[0].weight), t[m["bias"]])
        nsp = dense("cls.seq_relationship") if "cls.seq_relationship.weight" in t else None
        head = None
        if task not in (None, "masked_lm"):
            layers = head_tensor_names(c, task)
            head = (dense(layers["dense"][0]) if "dense" in layers else None,
                    _HEAD_ACTIVATIONS.get((task, c.traits["sequence_head"]), c.hidden_act),
                    dense(layers["out"][0]))
        return cls(c, embeddings, blocks, pooler, heads_mlm, nsp, head)

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
            if self.config.position_offset:
                raise ValueError(f"bert: length {ids.shape[1]} exceeds {self.max_length}, "
                                 f"max_position_embeddings "
                                 f"{self.config.max_position_embeddings} less the position "
                                 f"offset pad_token_id + 1 = {self.config.position_offset}")
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

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Position ids: 0..L-1, (L,); RoBERTa / XLM-R (B, L): pad + cumsum(ids != pad) on
        non-pad ids and pad on pad ids, as transformers' create_position_ids_from_input_ids
        (so a left-padded row's first token still gets position pad + 1)."""
        if not self.config.position_offset:
            return np.arange(ids.shape[1])
        pad = self.config.pad_token_id
        real = ids != pad
        return np.cumsum(real, axis=1) * real + pad

    def embeddings(self, input_ids, token_type_ids=None) -> np.ndarray:
        """The embedding layer's output (B, L, hidden): LayerNorm(word + position + type),
        projected to hidden_size by ELECTRA's embeddings_project. DistilBERT has no token
        types: token_type_ids is ignored."""
        ids, _, types = self._inputs(input_ids, None, token_type_ids)
        x = self.word(ids)
        x += self.position(self.positions(ids), "positions")  # (L, hidden) broadcasts
        if self.token_type is not None:
            x += self.token_type(types, "token_type_ids")
        x = self.embed_norm(x)
        return self.project(x) if self.project is not None else x

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *,
                 output_hidden_states: bool = False, output_attentions: bool = False,
                 return_dict: bool = False):
        """Encodes a batch. input_ids (B, L) or (L,) integers; attention_mask (same shape, 1
        for tokens, 0 for padding, default all 1): padded positions are masked out of every
        query's keys, so real tokens' outputs do not depend on the padding; token_type_ids
        (default all 0; ignored by DistilBERT, which has none).

        Returns the last hidden states (B, L, hidden) float32; or a :class:`BertOutput`
        (last_hidden_state, pooler_output, hidden_states, attentions, and the head's logits)
        with output_hidden_states, output_attentions or return_dict, and always when the
        checkpoint has a classification, question-answering or replaced-token-detection head
        (config.task). A padded position's own output is computed like any token's (its
        query sees the real keys) and is meaningless."""
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
        if not (output_hidden_states or output_attentions or return_dict or self.head):
            return x
        pooled = self.pooled(x) if self.pooler is not None else None
        out = BertOutput(
            last_hidden_state=x, pooler_output=pooled,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None)
        if self.head is not None:
            logits = self.head_logits(x, pooled)
            if self.task == "question_answering":
                out.start_logits, out.end_logits = logits
            else:
                out.logits = logits
        return out

    # -------------------------------------------------------------------------------- heads
    def pooled(self, hidden: np.ndarray) -> np.ndarray:
        """BERT's pooler on last hidden states (B, L, hidden): tanh(W x[:, 0] + b), (B, hidden)."""
        if self.pooler is None:
            raise ValueError("bert: this checkpoint has no pooler weights (pooler.dense.*)")
        return np.tanh(self.pooler(np.ascontiguousarray(hidden[:, 0])))

    def head_logits(self, hidden: np.ndarray, pooled: np.ndarray | None = None):
        """The task head (config.task) on last hidden states (B, L, hidden): logits (B,
        num_labels) for sequence classification, (B, L, num_labels) for token
        classification, (B, L) for replaced-token detection, (start, end) logits (B, L) each
        for question answering. ``pooled``: the pooler output when already computed."""
        if self.head is None:
            raise ValueError(f"bert: this checkpoint has no classification / question-"
                             f"answering head (task {self.task!r})")
        dense, act, out = self.head
        task = self.task
        x = np.ascontiguousarray(hidden, np.float32)
        if task == "sequence_classification":
            if self.config.traits["sequence_head"] == "pooler":
                x = pooled if pooled is not None else self.pooled(x)
            else:
                x = np.ascontiguousarray(x[:, 0])
        if dense is not None:
            if act == "tanh":    # no tanh epilogue in the matmul kernel
                x = np.tanh(dense(x))
            else:
                x = dense(x, activation=activation_name(act))
        y = out(x)
        if task == "question_answering":
            return np.ascontiguousarray(y[..., 0]), np.ascontiguousarray(y[..., 1])
        if task == "replaced_token_detection":
            return np.ascontiguousarray(y[..., 0])
        return y

    def mlm_logits(self, hidden: np.ndarray) -> np.ndarray:
        """Masked-LM logits (..., vocab) for hidden states (..., hidden):
        LayerNorm(act(W_t x + b_t)) @ decoder^T + b."""
        if self._mlm is None:
            raise ValueError("bert: this checkpoint has no masked-LM head (cls.predictions.*, "
                             "lm_head.*, vocab_*)")
        transform, norm, decoder_w, bias = self._mlm
        if self._decoder is None:
            self._decoder = Linear(decoder_w, bias)
        # RobertaLMHead applies gelu whatever hidden_act is; BERT and DistilBERT hidden_act
        act = activation_name("gelu" if self.config.traits["mlm"] == "roberta"
                              else self.config.hidden_act)
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
