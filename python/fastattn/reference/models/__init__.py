"""Reference forward passes of whole models, one module per family, written from the equations
with the other references (any float dtype: the tests run them in float64 on the same weights).

Weights are a dict of Hugging Face checkpoint names -> arrays; configs are the parsed
config.json dataclasses. Left padding follows Hugging Face: position = number of real tokens
before this one; padded keys are masked out of every query's softmax.
"""
from .bert import bert, bert_mlm_logits, bert_pooler, encoder_head, position_ids
from .gpt2 import gpt2
from .layout import merge_heads, positions_and_mask, split_heads
from .llama import llama
from .resnet import resnet
from .vit import vit, vit_patch_embeddings, vit_position_embeddings

__all__ = ["gpt2", "llama", "bert", "bert_pooler", "bert_mlm_logits", "encoder_head",
           "position_ids", "vit", "vit_patch_embeddings",
           "vit_position_embeddings", "resnet", "split_heads",
           "merge_heads", "positions_and_mask"]
