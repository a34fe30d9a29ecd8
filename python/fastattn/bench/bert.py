"""Benchmark cases for the BERT encoder (issue 7). Goals, 2 threads, same run:

- BERT-base shape (hidden 768, 12 layers, 12 heads, intermediate 3072, vocab 30522), batch 8 x
  128 tokens, forward to the last hidden states: >= 1.5x Hugging Face transformers' BertModel
  on PyTorch CPU (torch column; eval mode, no_grad, the same random weights);
- MiniLM-L6 shape (hidden 384, 6 layers, 12 heads, intermediate 1536) sentence embeddings of
  32-token sentences (30 words + [CLS] [SEP]), tokenization and mean pooling included:
  >= 300 sentences/s (sentences/s = N / the time per call). The torch column runs the same
  tokenizer, then transformers' BertModel and the same masked mean and normalisation.

Weights are random (N(0, 0.02) like transformers' init, LayerNorm 1 / 0), built with
fastattn.testing.random_checkpoint and copied into the transformers model, so a case costs a few seconds to set up and no
download. FLOP convention: 2 per multiply-add of the dense layers and of the two attention
products (Q K^T, P V); softmax, GELU, LayerNorm and the embedding gathers are not counted.
``--quick`` uses a 4-layer hidden-256 model at batch 2 x 64 and 16 sentences.
"""
from __future__ import annotations

import types

import numpy as np

from ..testing import random_checkpoint
from . import Case, try_import_torch


def bert_config(hidden, layers, heads, intermediate, vocab=30522, max_positions=512):
    return {"model_type": "bert", "vocab_size": vocab, "hidden_size": hidden,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": intermediate, "hidden_act": "gelu",
            "max_position_embeddings": max_positions, "type_vocab_size": 2,
            "layer_norm_eps": 1e-12, "pad_token_id": 0}


def forward_flops(config: dict, batch: int, length: int) -> float:
    h, i, n = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    per_token_layer = 2 * (4 * h * h + 2 * h * i) + 4 * length * h
    return float(batch * length * n * per_token_layer)


def hf_model(torch, config: dict, tensors: dict):
    """transformers' BertModel (eval, eager attention) holding `tensors`, or None without
    transformers."""
    try:
        import transformers
    except Exception:
        return None
    hf_config = transformers.BertConfig(**{k: v for k, v in config.items() if k != "model_type"})
    model = transformers.BertModel(hf_config).eval()
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    if unexpected or any(not k.endswith(("position_ids", "token_type_ids")) for k in missing):
        raise RuntimeError(f"bench bert: state dict mismatch {missing} {unexpected}")
    return model


def _word_vocab(size: int) -> list[str]:
    """A vocabulary of the five special tokens and made-up lowercase words."""
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(size - 5)]


def cases(quick: bool = False):
    import fastattn
    from fastattn.models.bert import BertModel
    from fastattn.tokenizers import WordPieceTokenizer

    torch = try_import_torch()
    rng = np.random.default_rng(0)

    # BERT-base forward
    if quick:
        config, batch, length = bert_config(256, 4, 4, 1024, max_positions=128), 2, 64
    else:
        config, batch, length = bert_config(768, 12, 12, 3072), 8, 128
    tensors = random_checkpoint(config)  # BertModel's: no prefix, a pooler
    model = BertModel.from_weights(types.SimpleNamespace(**config), tensors)
    ids = rng.integers(5, config["vocab_size"], (batch, length))
    mask = np.ones_like(ids)
    # (cases are built lazily, one after the other: default arguments pin each closure's
    # objects, the names are reused by the next case)
    impls = {"fastattn": lambda model=model, ids=ids, mask=mask: model(ids, mask)}
    hf = hf_model(torch, config, tensors) if torch is not None else None
    if hf is not None:
        t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)

        def hf_forward(hf=hf, t_ids=t_ids, t_mask=t_mask):
            with torch.inference_mode():
                return hf(input_ids=t_ids, attention_mask=t_mask).last_hidden_state
        impls["torch"] = hf_forward
    del tensors
    name = "hidden 256 x 4 layers" if quick else "BERT-base"
    yield Case("bert forward", f"{name} B{batch} L{length}", impls,
               flops=forward_flops(config, batch, length),
               goal=">= 1.5x torch (transformers BertModel)")

    # MiniLM-L6 sentence embeddings
    if quick:
        config, n = bert_config(256, 2, 4, 1024, vocab=2000, max_positions=64), 16
    else:
        config, n = bert_config(384, 6, 12, 1536), 64
    tensors = random_checkpoint(config, seed=1)
    model = BertModel.from_weights(types.SimpleNamespace(**config), tensors)
    vocab = _word_vocab(config["vocab_size"])
    tokenizer = WordPieceTokenizer(vocab)
    words = rng.integers(5, len(vocab), (n, 30))
    texts = [" ".join(vocab[w] for w in row) for row in words]
    assert all(len(tokenizer.encode(t)) == 32 for t in texts[:4])
    # No numpy column: the float32 NumPy reference forward takes ~11x fastattn's time here
    # (4.8 s per call, measured once), which would make this case cost a minute.
    impls = {"fastattn": lambda: fastattn.embed(model, tokenizer, texts, batch_size=32)}
    hf = hf_model(torch, config, tensors) if torch is not None else None
    if hf is not None:
        def hf_embed():
            out = []
            for start in range(0, n, 32):
                b = tokenizer.encode_batch(texts[start:start + 32])
                t_mask = torch.from_numpy(b["attention_mask"])
                with torch.inference_mode():
                    h = hf(input_ids=torch.from_numpy(b["input_ids"]), attention_mask=t_mask,
                           token_type_ids=torch.from_numpy(b["token_type_ids"])).last_hidden_state
                m = t_mask[:, :, None].to(h.dtype)
                out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1))
            return torch.cat(out)
        impls["torch"] = hf_embed
    name = "hidden 256 x 2 layers" if quick else "MiniLM-L6"
    yield Case("bert embed", f"{name} N{n} L32", impls,
               flops=forward_flops(config, n, 32),
               goal=">= 300 sentences/s", extra={"sentences": n})

