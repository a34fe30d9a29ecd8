"""BERT (model_type "bert"): config (BertConfig), checkpoint schema (bert_tensor_shapes), the
model (BertModel: builder BertModel.from_weights, forward, heads) and sentence embeddings
(embed)."""
from .config import BertConfig
from .model import BertModel, BertOutput, embed
from .schema import bert_tensor_shapes

__all__ = ["BertConfig", "bert_tensor_shapes", "BertModel", "BertOutput", "embed"]
