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
- text_classification: ``TextClassifier(model_dir)``, ``text_classification(model, tokenizer,
  texts, top_k)`` (labels and scores; softmax / sigmoid per problem_type);
- token_classification: ``TokenClassifier(model_dir)``, ``token_classification(model,
  tokenizer, texts, aggregation)`` (entities with character offsets);
- question_answering: ``QuestionAnswerer(model_dir)``, ``question_answering(model, tokenizer,
  question, context)`` (answer spans; doc-stride windows over long contexts);
- encoder_batches: what the encoder pipelines share (loading, batching by length);
- image_classification: ``ImageClassifier.from_pretrained(model_dir)`` (preprocessing,
  top-k labels, attention maps), ``classify(model, images)``;
- sam_predictor: ``SamPredictor(model)`` (Segment Anything: one image encoded once, point /
  box / mask prompts, batched prompts, embeddings saved and loaded).
"""
from .embeddings import SentenceEmbedder, embed
from .fill_mask import FillMask, fill_mask
from .image_classification import ImageClassifier
from .question_answering import QuestionAnswerer, question_answering
from .text_classification import TextClassifier, text_classification
from .token_classification import TokenClassifier, token_classification
from .generation import filter_logits, generate, iterate_generation, sample_next
from .sam_predictor import SamPredictor
from .text_generation import TextGenerator, TextStream, generate_text

__all__ = ["generate", "iterate_generation", "sample_next", "filter_logits", "TextGenerator",
           "TextStream", "generate_text", "SentenceEmbedder", "embed", "FillMask", "fill_mask",
           "ImageClassifier", "TextClassifier", "text_classification", "TokenClassifier",
           "token_classification", "QuestionAnswerer", "question_answering", "SamPredictor"]
