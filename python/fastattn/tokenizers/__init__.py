"""Tokenizers: BERT's WordPiece (encode, decode, offsets, batches), WordPiece training, and
``load_tokenizer(model_dir)``: WordPiece from vocab.txt, or a tokenizer.json (RoBERTa's
byte-level BPE, XLM-R's Unigram) through the optional ``tokenizers`` package (TokenizerJson,
the same interface).

Pure Python (no NumPy at import time; ``encode_batch`` imports it when called)."""
from .encoding import Encoding
from .load import load_tokenizer
from .normalize import BasicTokenizer
from .tokenizer_json import TokenizerJson
from .train import Merge, train_wordpiece, write_vocab
from .wordpiece import WordPieceTokenizer, read_vocab

__all__ = ["WordPieceTokenizer", "Encoding", "BasicTokenizer", "train_wordpiece",
           "write_vocab", "read_vocab", "Merge", "load_tokenizer", "TokenizerJson"]
