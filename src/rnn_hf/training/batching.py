"""Deterministic batches for pretraining, sharded across Accelerate processes.

Batch `i` of epoch `e` is a pure function of (seed, e, i, process): resuming from a checkpoint only needs the
step counter, never the state of a sampler. That is what makes a resumed run bit-identical to an uninterrupted
one; a shuffled `DataLoader` would draw its order from an RNG state that the checkpoint does not hold.
"""

import math

import torch


class BlockBatches:
    """Fixed-size blocks (independent sequences), reshuffled every epoch; each process takes its own rows."""

    def __init__(
        self,
        blocks: torch.LongTensor,  # (num_blocks, block_size)
        batch_size: int,
        seed: int,
        num_processes: int = 1,
        process_index: int = 0,
        shuffle: bool = True,
    ):
        self.blocks, self.batch_size, self.seed, self.shuffle = blocks, batch_size, seed, shuffle
        self.num_processes, self.process_index = num_processes, process_index
        self.num_batches = len(blocks) // (batch_size * num_processes)
        if self.num_batches == 0:
            raise ValueError(
                f"{len(blocks)} blocks cannot fill one batch of {batch_size} per process on {num_processes} processes; "
                "lower the batch size or block size, or give more text"
            )

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, epoch: int, index: int) -> torch.LongTensor:  # (B, block_size)
        if self.shuffle:
            order = torch.randperm(
                len(self.blocks), generator=torch.Generator().manual_seed(self.seed + epoch)
            )
        else:
            order = torch.arange(len(self.blocks))
        global_size = self.batch_size * self.num_processes
        rows = order[index * global_size : (index + 1) * global_size]
        return self.blocks[rows[self.process_index :: self.num_processes]]


class StreamBatches:
    """Truncated BPTT over contiguous text, as AWD-LSTM trains: the stream is cut into parallel rows, and batch
    `i` is the `i`-th window of `bptt` tokens of every row, so the state after batch `i` continues into `i + 1`."""

    def __init__(
        self,
        stream: torch.LongTensor,  # (N,)
        batch_size: int,
        bptt: int,
        num_processes: int = 1,
        process_index: int = 0,
    ):
        num_rows = batch_size * num_processes
        columns = len(stream) // num_rows
        rows = stream[: columns * num_rows].view(
            num_rows, columns
        )  # (R, N // R), row r continues row r's text
        self.rows = rows[process_index * batch_size : (process_index + 1) * batch_size]  # (B, N // R)
        self.bptt = bptt
        self.num_batches = (columns - 1) // bptt
        if self.num_batches == 0:
            raise ValueError(
                f"{len(stream)} tokens cannot fill one window of bptt={bptt} across {num_rows} rows; "
                "lower the batch size or block size, or give more text"
            )

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, epoch: int, index: int) -> tuple[torch.LongTensor, torch.LongTensor]:
        """`(inputs, targets)`, each (B, bptt): targets are the inputs shifted by one token."""
        start = index * self.bptt
        return self.rows[:, start : start + self.bptt], self.rows[:, start + 1 : start + 1 + self.bptt]


class HeldOutBlocks:
    """Every held-out token, in order, as independent blocks: no remainder is dropped.

    The stream is cut into blocks of `block_size` tokens (the last one shorter) and the blocks into batches of
    `batch_size` (the last one shorter); process `p` of `P` takes batches `p, p + P, ...`. With `overlap=1`
    (causal LM) consecutive blocks share one token, the last target of a block being the first input of the next,
    so that every token but the very first is predicted once.
    """

    def __init__(
        self,
        stream: torch.LongTensor,  # (N,)
        block_size: int,
        batch_size: int,
        num_processes: int = 1,
        process_index: int = 0,
        overlap: int = 0,
    ):
        if len(stream) <= overlap:
            raise ValueError(f"the held-out text has {len(stream)} tokens: too few to evaluate on")
        starts = range(0, max(1, len(stream) - overlap), block_size)
        blocks = [stream[start : start + block_size + overlap] for start in starts]
        batches = [blocks[i : i + batch_size] for i in range(0, len(blocks), batch_size)]
        self.batches = batches[process_index::num_processes]

    def __len__(self) -> int:
        return len(self.batches)

    def batch(self, index: int) -> list[torch.LongTensor]:
        """The blocks of batch `index`, of unequal lengths: pad them (`pad_blocks`) or collate them."""
        return self.batches[index]


def pad_blocks(blocks: list[torch.LongTensor], pad_id: int) -> tuple[torch.LongTensor, torch.BoolTensor]:
    """`(ids, present)`, each (B, longest block): the blocks padded on the right with `pad_id`."""
    ids = torch.nn.utils.rnn.pad_sequence(blocks, batch_first=True, padding_value=pad_id)
    lengths = torch.tensor([len(block) for block in blocks])
    return ids, torch.arange(ids.shape[1])[None, :] < lengths[:, None]


class HeldOutStream:
    """Every held-out token as a truncated-BPTT stream, the state carried from window to window.

    The stream is cut into at most `batch_size * num_processes` parallel rows, fewer when the text is short, so
    that each row holds at least one window; the last row is padded (target -100) and the last window may be
    short. Every token but the first of each row is a target once. Process `p` takes rows `p, p + P, ...`.
    """

    def __init__(
        self,
        stream: torch.LongTensor,  # (N,)
        batch_size: int,
        bptt: int,
        pad_id: int,
        num_processes: int = 1,
        process_index: int = 0,
    ):
        if len(stream) < 2:
            raise ValueError(f"the held-out text has {len(stream)} tokens: too few to evaluate on")
        num_rows = max(1, min(batch_size * num_processes, len(stream) // (bptt + 1)))
        columns = math.ceil(len(stream) / num_rows)
        padded = torch.full((num_rows * columns,), pad_id, dtype=stream.dtype)
        padded[: len(stream)] = stream
        targets = padded.clone()
        targets[len(stream) :] = -100
        self.inputs = padded.view(num_rows, columns)[process_index::num_processes]  # (B', C)
        self.targets = targets.view(num_rows, columns)[process_index::num_processes]
        self.bptt = bptt
        self.num_batches = math.ceil((columns - 1) / bptt) if len(self.inputs) else 0

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, index: int) -> tuple[torch.LongTensor, torch.LongTensor]:
        """`(inputs, targets)`, each (B', <= bptt): targets are the inputs shifted by one token."""
        start = index * self.bptt
        stop = min(start + self.bptt, self.inputs.shape[1] - 1)
        return self.inputs[:, start:stop], self.targets[:, start + 1 : stop + 1]
