"""Tokenizers: BERT's WordPiece (encode, decode, offsets, batches) and WordPiece training.

Pure Python (no NumPy at import time; ``encode_batch`` imports it when called)."""
from .encoding import Encoding
from .normalize import BasicTokenizer
from .train import Merge, train_wordpiece, write_vocab
from .wordpiece import WordPieceTokenizer, read_vocab

__all__ = ["WordPieceTokenizer", "Encoding", "BasicTokenizer", "train_wordpiece",
           "write_vocab", "read_vocab", "Merge"]
