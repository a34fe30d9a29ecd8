"""Pipelines: the stateful, tokenizer-aware conveniences around the pure models.

A model maps arrays to arrays (``fastattn.models``). A pipeline holds what a task needs
besides: a tokenizer loaded from the model directory, a generation loop with its KV cache,
pooling and normalisation, top-k decoding of a head's logits.

- generation: ``generate`` / ``iterate_generation`` (greedy, temperature, top-k, top-p, EOS,
  left-padded batches) over any model with the generation protocol (DecoderLM);
- text_generation: ``TextGenerator(model_dir)`` (text in, text out; streaming), ``TextStream``
  (incremental detokenisation), ``generate_text``;
- embeddings: ``SentenceEmbedder(model_dir)``, ``embed(model, tokenizer, texts)``;
- fill_mask: ``FillMask(model_dir)``, ``fill_mask(model, tokenizer, text)``;
- image_classification: ``ImageClassifier.from_pretrained(model_dir)`` (preprocessing,
  top-k labels, attention maps), ``classify(model, images)``;
- sam_predictor: ``SamPredictor(model)`` (Segment Anything: one image encoded once, point /
  box / mask prompts, batched prompts, embeddings saved and loaded).
"""
from .embeddings import SentenceEmbedder, embed
from .fill_mask import FillMask, fill_mask
from .image_classification import ImageClassifier
from .generation import filter_logits, generate, iterate_generation, sample_next
from .sam_predictor import SamPredictor
from .text_generation import TextGenerator, TextStream, generate_text

__all__ = ["generate", "iterate_generation", "sample_next", "filter_logits", "TextGenerator",
           "TextStream", "generate_text", "SentenceEmbedder", "embed", "FillMask", "fill_mask",
           "ImageClassifier", "SamPredictor"]
