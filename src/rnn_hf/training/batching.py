"""Deterministic batches for pretraining, sharded across Accelerate processes.

Batch `i` of epoch `e` is a pure function of (seed, e, i, process): resuming from a checkpoint only needs the
step counter, never the state of a sampler. That is what makes a resumed run bit-identical to an uninterrupted
one; a shuffled `DataLoader` would draw its order from an RNG state that the checkpoint does not hold.
"""

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
