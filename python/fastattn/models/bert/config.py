"""The config of the BERT-family encoders (model_type "bert", "roberta", "xlm-roberta",
"distilbert", "electra"), parsed from config.json with transformers' names and defaults.

The five are one architecture (models/bert/model.py); what differs is configuration, kept
here in one table (FAMILY_TRAITS) and in a few fields:

- RoBERTa / XLM-RoBERTa: position ids start after the padding id (``position_offset`` =
  pad_token_id + 1, transformers' create_position_ids_from_input_ids), pad_token_id 1 by
  default, the sequence-classification head is dense-tanh-out on the first token.
- DistilBERT: its own config names (dim, n_layers, n_heads, hidden_dim, activation), its own
  tensor names (schema.py), no token types (type_vocab_size 0), no pooler, pre_classifier +
  ReLU + classifier on the first token.
- ELECTRA: embeddings of width ``embedding_size`` projected to hidden_size
  (embeddings_project) when the two differ; no pooler; dense-GELU-out classification head.

Task heads: ``num_labels``, ``id2label`` ({int: str}), ``label2id`` ({str: int}) and
``problem_type`` as transformers' PretrainedConfig; ``task`` is what ``architectures`` names
(the builder settles it from the checkpoint's tensors; see model.py)."""
from __future__ import annotations

import dataclasses

from ...io.json_fields import JsonFields
from ..config import FamilyConfig, parse_id2label

# model_type -> what the family changes in the shared encoder:
#   prefix: the encoder's name prefix in checkpoints with a head ("bert.encoder...")
#   layout: tensor names of the layers: "bert" (encoder.layer.N.attention.self.query...) or
#           "distilbert" (transformer.layer.N.attention.q_lin...), see schema.py
#   positions_after_padding: position ids = pad_token_id + 1 + index among non-pad tokens
#   sequence_head: input and activation of the sequence classifier:
#           "pooler"  BERT: classifier(pooler(x))
#           "tanh" / "gelu" / "relu": out(act(dense(x[:, 0])))  RoBERTa / ELECTRA / DistilBERT
#   mlm: the masked-LM head's tensor names (None: not supported for the family)
FAMILY_TRAITS = {
    "bert": dict(prefix="bert.", layout="bert", positions_after_padding=False,
                 sequence_head="pooler", mlm="bert"),
    "roberta": dict(prefix="roberta.", layout="bert", positions_after_padding=True,
                    sequence_head="tanh", mlm="roberta"),
    "xlm-roberta": dict(prefix="roberta.", layout="bert", positions_after_padding=True,
                        sequence_head="tanh", mlm="roberta"),
    "electra": dict(prefix="electra.", layout="bert", positions_after_padding=False,
                    sequence_head="gelu", mlm=None),
    "distilbert": dict(prefix="distilbert.", layout="distilbert",
                       positions_after_padding=False, sequence_head="relu", mlm="distilbert"),
}

TASKS = ("sequence_classification", "token_classification", "question_answering",
         "masked_lm", "replaced_token_detection")
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")

# transformers class-name suffix -> task (config.json's "architectures")
_ARCHITECTURE_TASKS = {
    "ForSequenceClassification": "sequence_classification",
    "ForTokenClassification": "token_classification",
    "ForQuestionAnswering": "question_answering",
    "ForMaskedLM": "masked_lm", "ForPreTraining": "masked_lm",
}

# DistilBERT's config.json names -> the shared encoder's
_DISTILBERT_NAMES = {"hidden_size": "dim", "num_hidden_layers": "n_layers",
                     "num_attention_heads": "n_heads", "intermediate_size": "hidden_dim",
                     "hidden_act": "activation"}


def task_of_architectures(architectures) -> str | None:
    """The task config.json's ``architectures`` names ("BertForTokenClassification" ->
    "token_classification"); None for a bare encoder or an unknown class."""
    for name in architectures or ():
        if not isinstance(name, str):
            continue
        if name == "ElectraForPreTraining":     # ELECTRA's discriminator, not an MLM
            return "replaced_token_detection"
        for suffix, task in _ARCHITECTURE_TASKS.items():
            if name.endswith(suffix):
                return task
    return None


@dataclasses.dataclass(kw_only=True)
class BertConfig(FamilyConfig):
    """hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
    max_position_embeddings, vocab_size: required (DistilBERT: dim, n_layers, n_heads,
    hidden_dim, max_position_embeddings, vocab_size).

    Defaults as transformers': hidden_act "gelu" (exact, erf), type_vocab_size 2 (DistilBERT:
    0, no token types), layer_norm_eps 1e-12, pad_token_id 0 (RoBERTa / XLM-R: 1),
    tie_word_embeddings True (the MLM decoder is the word embeddings), position_embedding_type
    "absolute" (the only one implemented: learned positions added to the token embeddings),
    embedding_size = hidden_size (ELECTRA's own default 128), num_labels 2 (or
    len(id2label)), id2label {i: "LABEL_i"}, label2id its inverse, problem_type None."""

    MODEL_TYPES = tuple(FAMILY_TRAITS)

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    vocab_size: int
    hidden_act: str = "gelu"
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    tie_word_embeddings: bool = True
    position_embedding_type: str = "absolute"
    embedding_size: int | None = None
    sinusoidal_pos_embds: bool = False
    num_labels: int = 2
    id2label: dict = dataclasses.field(default_factory=dict)
    label2id: dict = dataclasses.field(default_factory=dict)
    problem_type: str | None = None
    task: str | None = None

    # ------------------------------------------------------------------ family traits
    @property
    def traits(self) -> dict:
        return FAMILY_TRAITS[self.model_type]

    @property
    def position_offset(self) -> int:
        """The first position id of a real token: pad_token_id + 1 for RoBERTa / XLM-R
        (positions count non-pad tokens after the padding id), 0 otherwise."""
        return self.pad_token_id + 1 if self.traits["positions_after_padding"] else 0

    @property
    def max_length(self) -> int:
        """The longest input: max_position_embeddings less the position offset (RoBERTa's
        514 positions hold 512 tokens)."""
        return self.max_position_embeddings - self.position_offset

    @property
    def embedding_width(self) -> int:
        """The embeddings' width: embedding_size (ELECTRA) or hidden_size."""
        return self.embedding_size or self.hidden_size

    # ------------------------------------------------------------------------ parsing
    @classmethod
    def _parse(cls, r: JsonFields, model_type: str) -> dict:
        d = cls.defaults()
        if model_type == "distilbert":
            # transformers' DistilBertConfig names; the shared names are read too, so that a
            # parsed config written back (to_dict) parses again
            c = {}
            for key, name in _DISTILBERT_NAMES.items():
                source = name if name in r.raw or key not in r.raw else key
                c[key] = (r.get(source, "str", d[key]) if key == "hidden_act"
                          else r.positive_int(source))
                r.used.update((key, name))
            c["type_vocab_size"] = 0
            c["layer_norm_eps"] = 1e-12      # hard-coded in DistilBERT's LayerNorms
            c["sinusoidal_pos_embds"] = r.get("sinusoidal_pos_embds", "bool", False)
            r.used.update(("type_vocab_size", "layer_norm_eps"))
        else:
            c = cls._sizes(r)
            c["hidden_act"] = r.get("hidden_act", "str", d["hidden_act"])
            c["type_vocab_size"] = r.positive_int("type_vocab_size", d["type_vocab_size"])
            c["layer_norm_eps"] = r.positive_float("layer_norm_eps", d["layer_norm_eps"])
        r.divides("hidden_size", c["hidden_size"], "num_attention_heads",
                  c["num_attention_heads"])
        c["max_position_embeddings"] = r.positive_int("max_position_embeddings")
        c["vocab_size"] = r.positive_int("vocab_size")
        pad_default = 1 if FAMILY_TRAITS[model_type]["positions_after_padding"] else 0
        c["pad_token_id"] = r.get("pad_token_id", "int", pad_default, minimum=0)
        c["tie_word_embeddings"] = r.get("tie_word_embeddings", "bool", d["tie_word_embeddings"])
        kind = r.get("position_embedding_type", "str", d["position_embedding_type"])
        if kind != "absolute":
            r.error(f"position_embedding_type {kind!r} is not supported (only 'absolute': learned "
                    "positions added to the token embeddings)")
        c["position_embedding_type"] = kind
        if model_type == "electra":
            c["embedding_size"] = r.positive_int("embedding_size", 128)
        else:
            c["embedding_size"] = None
            r.used.add("embedding_size")
        if (FAMILY_TRAITS[model_type]["positions_after_padding"]
                and c["max_position_embeddings"] <= c["pad_token_id"] + 1):
            r.error(f"max_position_embeddings ({c['max_position_embeddings']}) leaves no position "
                    f"for a token: {model_type} positions start at pad_token_id + 1 "
                    f"({c['pad_token_id'] + 1})")
        c.update(cls._parse_labels(r))
        return c

    @staticmethod
    def _parse_labels(r: JsonFields) -> dict:
        """num_labels / id2label / label2id / problem_type / task, as transformers: num_labels
        is len(id2label) when id2label is given, else num_labels (default 2); missing labels
        are "LABEL_i"; label2id defaults to the inverse of id2label."""
        c = {"id2label": parse_id2label(r)}
        c["num_labels"] = r.get("num_labels", "int", len(c["id2label"]) or 2, minimum=1)
        if c["id2label"] and c["num_labels"] != len(c["id2label"]):
            r.error(f"num_labels ({c['num_labels']}) differs from the {len(c['id2label'])} "
                    "entries of id2label")
        if not c["id2label"]:
            c["id2label"] = {i: f"LABEL_{i}" for i in range(c["num_labels"])}
        elif sorted(c["id2label"]) != list(range(c["num_labels"])):
            r.error(f"id2label's keys must be 0..{c['num_labels'] - 1}, got "
                    f"{sorted(c['id2label'])}")
        raw = r.get("label2id", "dict", None, nullable=True) or {}
        label2id = {}
        for name, index in raw.items():
            r.check(f"label2id[{name!r}]", index, "int", minimum=0)
            label2id[name] = index
        c["label2id"] = label2id or {name: i for i, name in c["id2label"].items()}
        problem = r.get("problem_type", "str", None, nullable=True)
        if problem is not None and problem not in PROBLEM_TYPES:
            r.error(f"problem_type must be null or one of {', '.join(PROBLEM_TYPES)}, got "
                    f"{problem!r}")
        c["problem_type"] = problem
        task = r.get("task", "str", None, nullable=True)
        if task is not None and task not in TASKS:
            r.error(f"task must be null or one of {', '.join(TASKS)}, got {task!r}")
        architectures = r.raw.get("architectures")   # kept in extra as well
        c["task"] = task or task_of_architectures(
            architectures if isinstance(architectures, list) else None)
        return c
