"""Random checkpoints for tests and benchmarks, written from the families' checkpoint schemas.

    tensors = random_checkpoint(config)               # {Hugging Face name: float32 array}
    tensors = random_tensors({"w": (4, 3)}, seed=0)   # any name -> shape list

The tensor list is the model family's schema (fastattn.loading.FAMILIES: the one the builder
reads), so a random checkpoint always loads. The default init is transformers': matrices
N(0, 0.02^2), biases 0, norm gains (the other 1-D weights) 1 — weights a benchmark can time.
A test that must see a wrong layout, transpose or bias in the outputs asks for larger ones:
``std``, ``bias_std`` and ``gain_std`` (gains are then 1 + N(0, gain_std^2)).
"""
from __future__ import annotations

import numpy as np


def random_tensors(shapes: dict, seed=0, *, std=0.02, bias_std: float = 0.0,
                   gain_std: float = 0.0) -> dict:
    """Random float32 arrays for a ``name -> shape`` list, drawn in the list's order.

    ``seed``: an int or a numpy Generator (drawn from, so a test's generator goes on).
    Names ending in ".bias" and BatchNorm's ".running_mean": N(0, bias_std^2) (zeros for 0);
    BatchNorm's ".running_var": exp(N(0, gain_std^2)) (> 0; ones for 0); other 1-D tensors
    (norm gains): 1 + N(0, gain_std^2); the rest: N(0, std^2), ``std`` a number or a function
    (name, shape) -> number (e.g. 1 / sqrt(fan_in))."""
    rng = np.random.default_rng(seed)

    def normal(shape, scale):
        if scale == 0:
            return np.zeros(shape, np.float32)
        x = rng.standard_normal(shape, dtype=np.float32)
        x *= scale
        return x

    tensors = {}
    for name, shape in shapes.items():
        if name.endswith((".bias", ".running_mean")):
            tensors[name] = normal(shape, bias_std)
        elif name.endswith(".running_var"):   # BatchNorm variances, > 0: exp(N(0, gain_std^2))
            tensors[name] = np.exp(normal(shape, gain_std))
        elif len(shape) == 1:
            tensors[name] = normal(shape, gain_std)
            tensors[name] += 1
        else:
            tensors[name] = normal(shape, std(name, shape) if callable(std) else std)
    return tensors


def random_checkpoint(config, seed=0, *, std=0.02, bias_std: float = 0.0,
                      gain_std: float = 0.0, **schema_options) -> dict:
    """Random tensors for every name of ``config``'s checkpoint (a config.json dict or a
    config load_config gave; its model_type picks the family), float32, name -> array.

    ``schema_options`` go to the family's schema (``prefix``, ``lm_head``; BERT's ``pooler``,
    ``mlm``, ``nsp``, ...); the init as in random_tensors."""
    from .io.json_fields import config_dict
    from .loading import family_part, model_type_of
    raw = config_dict(config)
    shapes = family_part(model_type_of(raw), "tensor_shapes")(raw, **schema_options)
    return random_tensors(shapes, seed, std=std, bias_std=bias_std, gain_std=gain_std)



# ------------------------------------------------------------------ BERT-family encoders
# Random-weight model directories of the BERT-family encoders (bert, roberta, xlm-roberta,
# distilbert, electra), bare or with a task head, with a tokenizer that fits the vocabulary:
# the test checkpoints of tests/test_encoder_families.py, test_task_heads.py and the pipelines'.
#
#     config = write_encoder_checkpoint(tmp_path, "roberta", "sequence_classification")
#     model = fastattn.load(tmp_path); tokenizer = fastattn.tokenizers.load_tokenizer(tmp_path)
#
# Tokenizers: BERT, DistilBERT, ELECTRA get vocab.txt (ENCODER_WORDS, our WordPiece); RoBERTa a
# byte-level BPE tokenizer.json trained on ENCODER_CORPUS, XLM-R a Unigram (SentencePiece-like,
# Metaspace) tokenizer.json of fixed pieces: both built with the optional `tokenizers` package.

ENCODER_WORDS = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on", "mat",
    "ran", "in", "park", "is", "happy", "sad", "##s", "##ing", "play", ".", ",", "!", "?",
    "hello", "world", "bird", "fly", "tree", "red", "blue", "sun", "rain", "and", "big",
    "small", "house", "##y", "run", "john", "smith", "works", "at", "acme", "corp", "new",
    "york", "paris", "berlin", "france", "capital", "of", "who", "where", "what", "lives",
    "##es", "##ed", "jo", "##hn", "sm", "##ith", "good", "bad", "movie", "this", "was",
    "great", "terrible", "i", "love", "hate", "it"]

ENCODER_CORPUS = [
    "the cat sat on the mat.", "Hello world! The dogs are running in the park.",
    "Paris is the capital of France, and Berlin of Germany.",
    "John Smith works at Acme Corp in New York.", "a small bird flies over the big red house",
    "Who lives in Paris? Where does John work?", "This movie was great, I love it!",
    "This movie was terrible, I hate it.", "Numbers like 42 and 3.14 appear too.",
    "Où est la gare? Ça va très bien, merci."]

# transformers' class name of each family (config.json's "architectures")
_ENCODER_CLASSES = {"bert": "Bert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta",
                    "distilbert": "DistilBert", "electra": "Electra"}
_TASK_CLASSES = {None: "Model", "sequence_classification": "ForSequenceClassification",
                 "token_classification": "ForTokenClassification",
                 "question_answering": "ForQuestionAnswering", "masked_lm": "ForMaskedLM",
                 "replaced_token_detection": "ForPreTraining"}

# RoBERTa's and XLM-R's special tokens, in their ids' order (<s> 0, <pad> 1, </s> 2, <unk> 3)
_ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def encoder_config(model_type: str = "bert", task: str | None = None, *, vocab_size: int,
                   hidden: int = 32, layers: int = 2, heads: int = 4, intermediate: int = 64,
                   max_length: int = 40, num_labels: int = 3, id2label: dict | None = None,
                   problem_type: str | None = None, embedding_size: int | None = None,
                   act: str = "gelu") -> dict:
    """A config.json dict as transformers writes it for ``model_type`` and ``task`` (its
    names: DistilBERT's dim / n_layers / n_heads / hidden_dim / activation; "architectures"
    naming the class, e.g. "RobertaForSequenceClassification"). ``max_length``: the longest
    input (RoBERTa / XLM-R get max_length + 2 positions, as their 514 for 512 tokens).
    ``id2label`` (default {i: "LABEL_i"} for num_labels) and ``problem_type`` for the heads.
    ELECTRA's ``embedding_size`` defaults to hidden // 2 (so embeddings_project is used)."""
    if model_type not in _ENCODER_CLASSES:
        raise ValueError(f"encoder_config: model_type must be one of "
                         f"{', '.join(_ENCODER_CLASSES)}, got {model_type!r}")
    if task not in _TASK_CLASSES:
        raise ValueError(f"encoder_config: task must be one of {list(_TASK_CLASSES)}, got "
                         f"{task!r}")
    roberta = model_type in ("roberta", "xlm-roberta")
    if task == "question_answering":
        num_labels = 2      # transformers' qa_outputs has num_labels (start, end) rows
    labels = {int(k): v for k, v in (id2label or {i: f"LABEL_{i}"
                                                  for i in range(num_labels)}).items()}
    if task == "replaced_token_detection" and model_type != "electra":
        raise ValueError("encoder_config: replaced_token_detection is ELECTRA's head")
    name = _ENCODER_CLASSES[model_type] + _TASK_CLASSES[task]
    c = {"model_type": model_type, "architectures": [name], "vocab_size": vocab_size,
         "max_position_embeddings": max_length + (2 if roberta else 0),
         "pad_token_id": 1 if roberta else 0,
         "id2label": {str(k): v for k, v in labels.items()},
         "label2id": {v: k for k, v in labels.items()}}
    if problem_type is not None:
        c["problem_type"] = problem_type
    if model_type == "distilbert":
        c.update(dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=intermediate,
                 activation=act, sinusoidal_pos_embds=False)
        return c
    c.update(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
             intermediate_size=intermediate, hidden_act=act, layer_norm_eps=1e-12,
             type_vocab_size=1 if roberta else 2)
    if roberta:
        c.update(bos_token_id=0, eos_token_id=2)
    if model_type == "electra":
        c["embedding_size"] = embedding_size or hidden // 2
    return c


def encoder_test_init(seed=0) -> dict:
    """random_checkpoint options for test encoders: weights N(0, 1/fan_in) (attention scores
    ~ N(0, 1), non-uniform probabilities), embeddings N(0, 1), LayerNorm gains 1 +/- 0.1,
    biases N(0, 0.1^2): every stage O(1) and the heads' logits spread, so a wrong layout,
    transpose or bias shows in the outputs."""
    return dict(seed=seed, bias_std=0.1, gain_std=0.1,
                std=lambda name, shape: 1.0 if "embeddings." in name else shape[1] ** -0.5)


def write_encoder_tokenizer(directory, model_type: str = "bert", max_length: int = 40) -> int:
    """Writes ``model_type``'s test tokenizer into ``directory``: vocab.txt (+
    tokenizer_config.json) for BERT / DistilBERT / ELECTRA, tokenizer.json (+
    tokenizer_config.json naming transformers' tokenizer class) for RoBERTa (byte-level BPE)
    and XLM-R (Unigram). Returns the vocabulary size (the model's vocab_size). RoBERTa and
    XLM-R need the `tokenizers` package."""
    import json
    import os
    os.makedirs(directory, exist_ok=True)
    if model_type in ("bert", "distilbert", "electra"):
        from .tokenizers import WordPieceTokenizer
        tokenizer = WordPieceTokenizer(ENCODER_WORDS, model_max_length=max_length)
        tokenizer.save_pretrained(directory)
        return len(ENCODER_WORDS)
    if model_type == "roberta":
        tok, cls = _byte_level_bpe(), "RobertaTokenizer"
    elif model_type == "xlm-roberta":
        tok, cls = _unigram(), "XLMRobertaTokenizer"
    else:
        raise ValueError(f"write_encoder_tokenizer: unknown model_type {model_type!r}")
    tok.save(os.path.join(directory, "tokenizer.json"))
    config = {"tokenizer_class": cls, "bos_token": "<s>", "eos_token": "</s>",
              "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
              "pad_token": "<pad>", "mask_token": "<mask>", "model_max_length": max_length}
    if model_type == "roberta":
        config.update(add_prefix_space=False, trim_offsets=True)
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    return tok.get_vocab_size()


def _byte_level_bpe():
    """RoBERTa's tokenizer pipeline (byte-level pre-tokenizer and decoder, BPE, RoBERTa's
    post-processor with trimmed offsets, <mask> eating the space before it) trained on
    ENCODER_CORPUS to 300 tokens (the 256 bytes, the 5 specials, merges)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, \
        processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=_ROBERTA_SPECIALS + ["<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(ENCODER_CORPUS, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0),
                                                      trim_offsets=True, add_prefix_space=False)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    return tok


def _unigram():
    """XLM-R's tokenizer pipeline (whitespace split, Metaspace "▁" prefix, Unigram, the
    "<s> A </s> </s> B </s>" template) over fixed pieces: the specials, every character of
    ENCODER_CORPUS lower and upper case, and "▁"-words of the corpus, scored by length (a
    Unigram vocabulary is log-probabilities: longer pieces are preferred). Built, not
    trained: the `tokenizers` Unigram trainer is not deterministic."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    chars = sorted({ch for text in ENCODER_CORPUS for ch in text.lower() + text.upper()
                    if not ch.isspace()})
    words = sorted({w.strip(".,!?").lower() for text in ENCODER_CORPUS for w in text.split()}
                   - {""})
    pieces = [(s, 0.0) for s in _ROBERTA_SPECIALS]
    pieces += [("▁", -3.0)] + [(ch, -5.0) for ch in chars]
    pieces += [("▁" + w, -2.0 - 0.1 * len(w)) for w in words if len(w) > 1]
    pieces += [(w[:n], -4.0) for w in words if len(w) > 4 for n in (2, 3)]
    seen, vocab = set(), []
    for piece, score in pieces:
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))
    vocab.append(("<mask>", 0.0))
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    # as transformers' XLMRobertaTokenizer builds it (no normalizer without a SentencePiece
    # charsmap; whitespace split, then "▁" prepended to each word)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.add_special_tokens([AddedToken(s, special=True) for s in _ROBERTA_SPECIALS]
                           + [AddedToken("<mask>", lstrip=True, special=True)])
    return tok


def write_encoder_checkpoint(directory, model_type: str = "bert", task: str | None = None, *,
                             seed=0, tokenizer: bool = True, init: dict | None = None,
                             **config_options) -> dict:
    """A random-weight model directory of ``model_type`` ("bert", "roberta", "xlm-roberta",
    "distilbert", "electra") with ``task``'s head (None: the bare encoder,
    "sequence_classification", "token_classification", "question_answering", "masked_lm",
    "replaced_token_detection" for ELECTRA): config.json as transformers writes it
    (encoder_config; ``config_options`` go there: hidden, layers, heads, intermediate,
    max_length, num_labels, id2label, problem_type, ...), model.safetensors with the
    checkpoint names of transformers' class, and the family's tokenizer (see
    write_encoder_tokenizer; ``tokenizer=False``: none, vocab_size from config_options or 64).
    ``init``: random_checkpoint options (default encoder_test_init(seed)). Returns the
    config.json dict. No torch needed (RoBERTa / XLM-R tokenizers need `tokenizers`)."""
    from .io.checkpoint import save_checkpoint
    max_length = config_options.get("max_length", 40)
    if tokenizer:
        vocab_size = write_encoder_tokenizer(directory, model_type, max_length)
    else:
        vocab_size = config_options.pop("vocab_size", 64)
    config = encoder_config(model_type, task, vocab_size=vocab_size, **config_options)
    options = encoder_test_init(seed) if init is None else dict(init)
    if task == "masked_lm":
        # transformers' *ForMaskedLM: no pooler, the decoder tied (not saved)
        tensors = random_checkpoint(config, mlm=True, pooler=False, **options)
    else:
        tensors = random_checkpoint(config, task=task, **options)
    save_checkpoint(directory, config, tensors)
    return config


# A tiny SAM for tests: a 128 px input (an 8 x 8 grid), windows of 3 (so the grid is padded to
# 9 x 9, the reference's unmasked padding exercised), block 1 global, widths 32; the decoder
# with the official 8 heads so that the same config round-trips through official names.
TINY_SAM = {
    "model_type": "sam",
    "vision_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                      "mlp_dim": 64, "image_size": 128, "patch_size": 16, "window_size": 3,
                      "global_attn_indexes": [1], "output_channels": 32, "num_pos_feats": 16},
    "prompt_encoder_config": {"hidden_size": 32, "image_size": 128, "patch_size": 16,
                              "mask_input_channels": 8},
    "mask_decoder_config": {"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 8,
                            "iou_head_hidden_dim": 32},
}


def sam_init_std(name: str, shape) -> float:
    """SAM weights whose activations stay O(1) through a random model (a test must see every
    tensor in the outputs): 1 / sqrt(fan_in) for matrices and convolutions (fan_in: every axis
    but the first; ConvTranspose2d's (in, out, kh, kw) likewise, close enough), 0.5 for the
    embeddings, tokens and position / rel-pos tables, 1 for the random-Fourier matrix (the
    official init, N(0, 1))."""
    if "positional" in name:
        return 1.0
    if any(s in name for s in ("pos_embed", "rel_pos", "_embed.", "token")) or \
            name.endswith(("_embed.weight", "tokens.weight")):
        return 0.5
    return 1.0 / float(np.sqrt(np.prod(shape[1:])))


def write_sam_checkpoint(path, config=None, seed=0, official_names: bool = False):
    """Writes a random SAM checkpoint and returns what ``fastattn.load`` takes.

    ``config``: a config.json dict or a SamConfig (default TINY_SAM). Hugging Face layout
    (default): ``path`` is a directory, written with config.json and model.safetensors (the
    tensors transformers' SamModel saves); returns ``path``. ``official_names=True``: one
    .safetensors file of the official segment-anything names; ``path`` is the file (a name
    ending in .safetensors) or a directory to write ``sam_tiny.safetensors`` into; returns the
    file's path. Official checkpoints carry no config: loading infers it from the shapes, with
    the official decoder's 8 heads and LayerNorm eps 1e-5, so the config must have 8 decoder
    heads (ValueError otherwise).

    Weights: sam_init_std (O(1) activations), biases N(0, 0.1^2), norm gains 1 + N(0, 0.1^2)."""
    import os

    from .io import save_checkpoint, save_safetensors
    from .models.sam import SamConfig
    from .models.sam.schema import hf_to_official, sam_tensor_shapes
    c = SamConfig.of(TINY_SAM if config is None else config)
    tensors = random_tensors(sam_tensor_shapes(c), seed, std=sam_init_std, bias_std=0.1,
                             gain_std=0.1)
    path = os.fspath(path)
    if not official_names:
        save_checkpoint(path, c.to_dict(), tensors)
        return path
    if c.decoder.num_attention_heads != 8:
        raise ValueError(f"write_sam_checkpoint: official checkpoints imply 8 decoder heads, the "
                         f"config has {c.decoder.num_attention_heads}")
    if not path.endswith(".safetensors"):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, "sam_tiny.safetensors")
    save_safetensors(path, hf_to_official(tensors, c))
    return path
