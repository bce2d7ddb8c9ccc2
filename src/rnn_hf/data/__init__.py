"""Data loading for rnn_hf: text corpora, splits and tokenizers."""

from .text import DataError, load_bbc_news, load_text_dataset, sample_per_class, split_by_document
from .tokenization import SPECIAL_TOKENS, load_or_train_tokenizer, train_tokenizer

__all__ = [
    "SPECIAL_TOKENS",
    "DataError",
    "load_bbc_news",
    "load_or_train_tokenizer",
    "load_text_dataset",
    "sample_per_class",
    "split_by_document",
    "train_tokenizer",
]
