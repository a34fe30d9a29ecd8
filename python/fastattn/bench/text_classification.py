"""Benchmark cases of the encoder pipelines (issue 19). Goals, 2 threads, same run:

- Text classification, BERT-base shape (hidden 768, 12 layers, 12 heads, intermediate 3072,
  vocab 30522) with a 2-label sequence-classification head, 32 texts of 64 tokens (62 words
  + [CLS] [SEP]), end to end (texts in, labels out: tokenization, batching, forward, softmax):
  >= 1.2x transformers' text-classification pipeline (``pipeline("text-classification",
  batch_size=32)``, its fast Rust tokenizer over the same vocabulary, eval mode, the same
  random weights) — the torch column.
- Sentence embeddings, DistilBERT-base shape (dim 768, 6 layers, 12 heads, hidden_dim 3072),
  64 texts of 32 tokens, batch 32, mean pooling and L2 normalisation: >= 1.2x transformers
  (the torch column: its fast tokenizer, DistilBertModel, the same masked mean and
  normalisation), i.e. throughput (texts/s) 1.2x.

Weights: transformers' init (N(0, 0.02), LayerNorm 1 / 0) from fastattn.testing, copied into
the transformers model. FLOP convention as bench/bert.py (dense layers and the two attention
products). ``--quick``: a 2-layer hidden-64 model, 8 texts of 16 tokens.
"""
from __future__ import annotations

import numpy as np

from ..testing import encoder_config, random_checkpoint
from . import Case, try_import_torch
from .bert import forward_flops


def _word_vocab(size: int) -> list[str]:
    """The five special tokens and made-up words w0, w1, ... (one token each)."""
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(size - 5)]


def _texts(rng, vocab: list[str], n: int, words: int) -> list[str]:
    ids = rng.integers(5, len(vocab), (n, words))
    return [" ".join(vocab[w] for w in row) for row in ids]


def _shapes(model_type: str, quick: bool) -> dict:
    if quick:
        return dict(hidden=64, layers=2, heads=4, intermediate=128, max_length=64,
                    vocab_size=1000)
    layers = 6 if model_type == "distilbert" else 12
    return dict(hidden=768, layers=layers, heads=12, intermediate=3072, max_length=512,
                vocab_size=30522)


def _models(model_type: str, task, shapes: dict, torch):
    """(fastattn model, transformers model or None) with the same random weights."""
    from ..models.bert import BertModel
    shapes = dict(shapes)
    vocab_size = shapes.pop("vocab_size")
    config = encoder_config(model_type, task, vocab_size=vocab_size, num_labels=2, **shapes)
    # transformers' init: every stage O(1) as in a trained model (the tests' init is larger)
    tensors = random_checkpoint(config, task=task) if task else random_checkpoint(config)
    model = BertModel.from_weights(config, tensors)
    hf = None
    if torch is not None:
        try:
            import transformers
        except ImportError:
            transformers = None
        if transformers is not None:
            name = config["architectures"][0]
            hf_config = transformers.AutoConfig.for_model(
                **{k: v for k, v in config.items() if k != "architectures"})
            hf = getattr(transformers, name)(hf_config).eval()
            missing, unexpected = hf.load_state_dict(
                {k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
            if unexpected or any(not k.endswith(("position_ids", "token_type_ids"))
                                 for k in missing):
                raise RuntimeError(f"bench {name}: state dict mismatch {missing} {unexpected}")
    return model, hf


def _hf_tokenizer(model_type: str, vocab: list[str]):
    import transformers
    cls = (transformers.DistilBertTokenizer if model_type == "distilbert"
           else transformers.BertTokenizer)
    return cls(vocab={t: i for i, t in enumerate(vocab)})


def cases(quick: bool = False):
    from ..pipelines.embeddings import embed
    from ..pipelines.text_classification import text_classification
    from ..tokenizers import WordPieceTokenizer

    torch = try_import_torch()
    rng = np.random.default_rng(0)

    # --------------------------------------------------- text classification, BERT-base
    shapes = _shapes("bert", quick)
    n, length = (8, 16) if quick else (32, 64)
    vocab = _word_vocab(shapes["vocab_size"])
    tokenizer = WordPieceTokenizer(vocab)
    model, hf = _models("bert", "sequence_classification", shapes, torch)
    texts = _texts(rng, vocab, n, length - 2)
    assert len(tokenizer.encode(texts[0])) == length
    impls = {"fastattn": lambda model=model, tokenizer=tokenizer, texts=texts:
             text_classification(model, tokenizer, texts, batch_size=32)}
    if hf is not None:
        import transformers
        pipe = transformers.pipeline("text-classification", model=hf,
                                     tokenizer=_hf_tokenizer("bert", vocab), device="cpu")

        def hf_classify(pipe=pipe, texts=texts):
            with torch.inference_mode():
                return pipe(texts, batch_size=32, top_k=1)
        impls["torch"] = hf_classify
    name = "hidden 64 x 2 layers" if quick else "BERT-base"
    yield Case("text classification", f"{name} N{n} L{length}", impls,
               flops=forward_flops({"hidden_size": shapes["hidden"],
                                    "intermediate_size": shapes["intermediate"],
                                    "num_hidden_layers": shapes["layers"]}, n, length),
               goal=">= 1.2x torch (transformers text-classification pipeline)",
               extra={"texts": n})

    # --------------------------------------------------------- embeddings, DistilBERT-base
    shapes = _shapes("distilbert", quick)
    n, length = (8, 16) if quick else (64, 32)
    vocab = _word_vocab(shapes["vocab_size"])
    tokenizer = WordPieceTokenizer(vocab)
    model, hf = _models("distilbert", None, shapes, torch)
    texts = _texts(rng, vocab, n, length - 2)
    impls = {"fastattn": lambda model=model, tokenizer=tokenizer, texts=texts:
             embed(model, tokenizer, texts, batch_size=32)}
    if hf is not None:
        hf_tok = _hf_tokenizer("distilbert", vocab)

        def hf_embed(hf=hf, hf_tok=hf_tok, texts=texts):
            out = []
            for start in range(0, len(texts), 32):
                b = hf_tok(texts[start:start + 32], padding=True, truncation=True,
                           return_tensors="pt")
                with torch.inference_mode():
                    h = hf(**b).last_hidden_state
                m = b["attention_mask"][:, :, None].to(h.dtype)
                out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1))
            return torch.cat(out)
        impls["torch"] = hf_embed
    name = "hidden 64 x 2 layers" if quick else "DistilBERT-base"
    yield Case("distilbert embed", f"{name} N{n} L{length}", impls,
               flops=forward_flops({"hidden_size": shapes["hidden"],
                                    "intermediate_size": shapes["intermediate"],
                                    "num_hidden_layers": shapes["layers"]}, n, length),
               goal=">= 1.2x torch (transformers DistilBertModel + mean pooling)",
               extra={"sentences": n})
