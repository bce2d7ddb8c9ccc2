"""How fast does the language model *learn*? rnn_hf's causal LM against a raw PyTorch LSTM LM, same data.

Every variant trains for the same number of optimizer steps on the same shuffled blocks of BBC News training
documents (byte-level BPE 8k), with the same optimizer, and is scored on the same held-out documents. It prints
held-out perplexity, median seconds per step, and the perplexity ratio to the raw model. Differences between
variants are then the model's (initialization, dropouts, tying), not the data's or the loop's.

    python benchmarks/bench_lm.py --steps 150 [--variants raw,rnn_hf,rnn_hf_awd] [--lr 3e-3]
"""

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnn_hf import RnnConfig, RnnForCausalLM
from rnn_hf.data import load_or_train_tokenizer, load_text_dataset, split_by_document
from rnn_hf.data.lm import group_blocks, tokenize_documents

EMB, HIDDEN, LAYERS, VOCAB_SIZE = 256, 512, 2, 8000
AWD = dict(
    embedding_dropout=0.05, input_dropout=0.1, hidden_dropout=0.1, weight_dropout=0.2, output_dropout=0.1
)


class RawLSTMLM(nn.Module):
    """nn.Embedding + nn.LSTM + projection + tied decoder, PyTorch's default initialization, no dropout."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMB)
        self.lstm = nn.LSTM(EMB, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.projection = nn.Linear(HIDDEN, EMB, bias=False)
        self.decoder = nn.Linear(EMB, vocab_size)
        self.decoder.weight = self.embedding.weight

    def forward(self, input_ids):  # (B, T) -> (B, T, V)
        hidden_states, _ = self.lstm(self.embedding(input_ids))
        return self.decoder(self.projection(hidden_states))


def rnn_hf_model(vocab_size: int, **overrides) -> nn.Module:
    config = RnnConfig(vocab_size=vocab_size, embedding_size=EMB, hidden_size=HIDDEN, num_layers=LAYERS,
                       **overrides)  # fmt: skip
    model = RnnForCausalLM(config)
    return LogitsOnly(model)


class LogitsOnly(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids).logits


VARIANTS = {
    "raw": lambda v: RawLSTMLM(v),
    "rnn_hf": lambda v: rnn_hf_model(v),
    "rnn_hf_awd": lambda v: rnn_hf_model(v, **AWD),
    "rnn_hf_emb1": lambda v: rnn_hf_model(v, embedding_init_range=1.0),
    "rnn_hf_pytorch_init": lambda v: rnn_hf_model(
        v, recurrent_initializer="pytorch", embedding_init_range=1.0
    ),
    "rnn_hf_emb1.7": lambda v: rnn_hf_model(v, embedding_init_range=3**0.5),
    "rnn_hf_emb1_fb0": lambda v: rnn_hf_model(v, embedding_init_range=1.0, forget_gate_bias=0.0),
    "rnn_hf_emb1_fb0_awd": lambda v: rnn_hf_model(v, embedding_init_range=1.0, forget_gate_bias=0.0, **AWD),
}


def load_blocks(block_size: int, cache_dir: Path):
    docs = load_text_dataset()["train"]
    splits = split_by_document(docs, test_size=0.2, validation_size=0.1, seed=0)
    tokenizer_dir = cache_dir / "tokenizer"
    tokenizer = load_or_train_tokenizer(
        str(tokenizer_dir) if tokenizer_dir.exists() else None, splits["train"]["text"], VOCAB_SIZE, "bpe"
    )
    tokenizer.save_pretrained(tokenizer_dir)
    train = group_blocks(tokenize_documents(splits["train"], tokenizer), block_size + 1)
    validation = group_blocks(tokenize_documents(splits["validation"], tokenizer), block_size + 1)
    return len(tokenizer), train, validation


@torch.no_grad()
def perplexity(model, blocks, batch_size) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        block = blocks[start : start + batch_size]
        logits = model(block[:, :-1])
        total += F.cross_entropy(logits.flatten(0, 1), block[:, 1:].flatten(), reduction="sum").item()
        count += block[:, 1:].numel()
    model.train()
    return math.exp(total / count)


def train(name, vocab_size, train_blocks, val_blocks, args) -> dict:
    torch.manual_seed(args.seed)
    model = VARIANTS[name](vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = 20
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps))),
    )
    order = torch.randperm(len(train_blocks), generator=torch.Generator().manual_seed(args.seed))
    times, curve = [], []
    model.train()
    for step in range(args.steps):
        rows = order[(step * args.batch_size) % len(order) :][: args.batch_size]
        block = train_blocks[rows]
        start = time.perf_counter()
        logits = model(block[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), block[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        times.append(time.perf_counter() - start)
        if (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            curve.append((step + 1, perplexity(model, val_blocks, 32)))
    curve.append((args.steps, perplexity(model, val_blocks, 32)))
    return {"ppl": curve[-1][1], "s_per_step": statistics.median(times), "curve": curve}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--block_size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval_every", type=int, default=50)
    parser.add_argument("--val_blocks", type=int, default=256, help="held-out blocks scored (of 129 tokens)")
    parser.add_argument("--variants", default="raw,rnn_hf,rnn_hf_awd")
    parser.add_argument("--cache_dir", default="runs/bench_lm")
    args = parser.parse_args()
    vocab_size, train_blocks, val_blocks = load_blocks(args.block_size, Path(args.cache_dir))
    val_blocks = val_blocks[: args.val_blocks]
    print(f"train {len(train_blocks)} blocks, held-out {len(val_blocks)} blocks of {args.block_size + 1} tokens; "
          f"{args.steps} steps of {args.batch_size} blocks, AdamW lr {args.lr}, clip {args.clip}")  # fmt: skip
    results = {}
    for name in args.variants.split(","):
        results[name] = train(name, vocab_size, train_blocks, val_blocks, args)
        curve = "  ".join(f"{s}:{p:.0f}" for s, p in results[name]["curve"])
        print(f"{name:<22} ppl {results[name]['ppl']:8.1f}  {results[name]['s_per_step']:.3f} s/step  [{curve}]",
              flush=True)  # fmt: skip
    base = results.get("raw")
    print("\n| variant | held-out ppl | median s/step | ppl ratio to raw |\n|---|---|---|---|")
    for name, r in results.items():
        ratio = f"{r['ppl'] / base['ppl']:.3f}" if base else "-"
        print(f"| {name} | {r['ppl']:.1f} | {r['s_per_step']:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
