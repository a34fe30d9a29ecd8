"""The BERT-family encoders (model_type "bert", "roberta", "xlm-roberta", "distilbert",
"electra"), one implementation configured per family: config (BertConfig, FAMILY_TRAITS),
checkpoint schema (bert_tensor_shapes: each family's tensor names), the model (BertModel:
builder BertModel.from_weights, forward, pooler, task heads). Classification, fill-mask and
sentence embeddings are pipelines (fastattn.pipelines)."""
from .config import FAMILY_TRAITS, TASKS, BertConfig
from .model import BertModel, BertOutput
from .schema import bert_tensor_shapes

__all__ = ["BertConfig", "FAMILY_TRAITS", "TASKS", "bert_tensor_shapes", "BertModel",
           "BertOutput"]
