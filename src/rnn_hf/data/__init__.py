"""Data loading for rnn_hf: text corpora, splits and tokenizers."""

from .bible import DEFAULT_TEST_BOOKS, TRANSLATIONS, load_bible_pairs
from .split import DEFAULT_SPLIT, SPLIT_FILE, DocumentSplit, document_digest
from .text import (
    DataError,
    load_bbc_news,
    load_text_dataset,
    load_trump_tweets,
    sample_per_class,
    split_by_document,
)
from .tokenization import SPECIAL_TOKENS, load_or_train_tokenizer, train_tokenizer

__all__ = [
    "DEFAULT_TEST_BOOKS",
    "TRANSLATIONS",
    "load_bible_pairs",
    "DEFAULT_SPLIT",
    "SPLIT_FILE",
    "DocumentSplit",
    "document_digest",
    "SPECIAL_TOKENS",
    "DataError",
    "load_bbc_news",
    "load_or_train_tokenizer",
    "load_text_dataset",
    "load_trump_tweets",
    "sample_per_class",
    "split_by_document",
    "train_tokenizer",
]
