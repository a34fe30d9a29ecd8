"""BERT (model_type "bert"): config (BertConfig), checkpoint schema (bert_tensor_shapes), the
model (BertModel: builder BertModel.from_weights, forward, heads). Sentence embeddings and
fill-mask are pipelines (fastattn.pipelines)."""
from .config import BertConfig
from .model import BertModel, BertOutput
from .schema import bert_tensor_shapes

__all__ = ["BertConfig", "bert_tensor_shapes", "BertModel", "BertOutput"]
