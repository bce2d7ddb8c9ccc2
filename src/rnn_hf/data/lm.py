"""Language-modelling data: documents -> token ids -> fixed-size blocks or one contiguous stream."""

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase


def tokenize_documents(
    dataset: Dataset, tokenizer: PreTrainedTokenizerBase, num_proc: int | None = None
) -> Dataset:
    """A `Dataset` with one `input_ids` list per document, each followed by the eos token."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def encode(batch):
        ids = tokenizer(batch["text"], add_special_tokens=False, verbose=False)["input_ids"]
        return {"input_ids": [row + eos for row in ids]}

    return dataset.map(
        encode, batched=True, num_proc=num_proc, remove_columns=dataset.column_names, desc="Tokenizing"
    )


def token_stream(tokenized: Dataset) -> torch.LongTensor:
    """All documents' ids end to end: the contiguous text that truncated BPTT walks through."""
    return torch.tensor([token for row in tokenized["input_ids"] for token in row], dtype=torch.long)  # (N,)


def group_blocks(tokenized: Dataset, block_size: int) -> torch.LongTensor:
    """The stream cut into `block_size` blocks (the remainder is dropped), as `run_clm.py`'s `group_texts`."""
    stream = token_stream(tokenized)
    num_blocks = len(stream) // block_size
    if num_blocks == 0:
        raise ValueError(
            f"the text has {len(stream)} tokens, fewer than one block of block_size={block_size}"
        )
    return stream[: num_blocks * block_size].view(num_blocks, block_size)  # (num_blocks, block_size)
