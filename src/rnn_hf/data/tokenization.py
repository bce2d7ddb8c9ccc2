"""Tokenizers: train a byte-level BPE or Unigram tokenizer with `tokenizers`, or load one with `AutoTokenizer`."""

import warnings
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from .text import DataError, _short_reason

# Trained tokenizers put these first, so their ids are pad=0, bos=1, eos=2, mask=3, unk=4 (RnnConfig's defaults).
SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "mask_token": "<mask>",
    "unk_token": "<unk>",
}


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 8000, kind: str = "bpe", model_max_length: int = 1_000_000
) -> PreTrainedTokenizerFast:
    """Train a tokenizer on `texts` and wrap it for `transformers`.

    `kind="bpe"` is a byte-level BPE (GPT-2 style, with a space added before the first word, so `decode` returns
    a leading space); `kind="unigram"` is a SentencePiece-style Unigram with a Metaspace pre-tokenizer. No
    bos/eos is added automatically: the pretraining script puts eos between documents itself.
    """
    special_tokens = list(SPECIAL_TOKENS.values())
    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=special_tokens,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    elif kind == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=special_tokens, unk_token=SPECIAL_TOKENS["unk_token"]
        )
    else:
        raise ValueError(f"kind must be 'bpe' or 'unigram', got {kind!r}")
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, **SPECIAL_TOKENS, model_max_length=model_max_length, padding_side="right"
    )


def load_or_train_tokenizer(
    tokenizer_name: str | None, texts: Iterable[str], vocab_size: int, kind: str = "bpe"
) -> PreTrainedTokenizerBase:
    """Load `tokenizer_name` with `AutoTokenizer`, or train a new tokenizer on `texts` when it is None.

    A loaded tokenizer without a pad or mask token gets the missing ones from `SPECIAL_TOKENS`, with a warning:
    they take new ids at the end of the vocabulary.
    """
    if tokenizer_name is None:
        return train_tokenizer(texts, vocab_size=vocab_size, kind=kind)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_name)
    except (OSError, ValueError) as err:
        raise DataError(
            f"could not load tokenizer '{tokenizer_name}' ({_short_reason(err)}); "
            "pass a local tokenizer directory, or leave out --tokenizer_name to train one"
        ) from err

    missing = {
        key: SPECIAL_TOKENS[key] for key in ("pad_token", "mask_token") if getattr(tokenizer, key) is None
    }
    if missing:
        tokenizer.add_special_tokens(missing)
        added = ", ".join(
            f"{key}={token!r} (id {tokenizer.convert_tokens_to_ids(token)})" for key, token in missing.items()
        )
        warnings.warn(
            f"tokenizer '{tokenizer_name}' had no {' or '.join(missing)}; added {added}", stacklevel=2
        )
    return tokenizer
