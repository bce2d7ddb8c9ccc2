"""Core benchmark: rnn_hf's training step against a raw PyTorch LSTM LM, and generation's growth with length.

Prints medians and ratios measured side by side in one process (the variants alternate step by step, so a busy
machine slows them alike). Run: `make bench` or `python benchmarks/bench_core.py [--steps 15] [--device cuda]`.
"""

import argparse
import statistics
import time

import torch
from torch import nn

from rnn_hf import RnnConfig, RnnForCausalLM

VOCAB, EMB, HIDDEN, LAYERS, BATCH, SEQ = 8000, 256, 512, 2, 32, 128


class RawLSTMLM(nn.Module):
    """The baseline: nn.Embedding + nn.LSTM + nn.Linear, nothing else."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMB)
        self.lstm = nn.LSTM(EMB, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.decoder = nn.Linear(HIDDEN, VOCAB)

    def forward(self, input_ids, labels):
        hidden_states, _ = self.lstm(self.embedding(input_ids))  # (B, T, H)
        logits = self.decoder(hidden_states)  # (B, T, V)
        return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1))


def rnn_hf_model(awd: bool) -> RnnForCausalLM:
    dropouts = (
        dict(
            embedding_dropout=0.1,
            input_dropout=0.3,
            hidden_dropout=0.25,
            weight_dropout=0.5,
            output_dropout=0.4,
        )
        if awd
        else {}
    )
    config = RnnConfig(
        vocab_size=VOCAB, embedding_size=EMB, hidden_size=HIDDEN, num_layers=LAYERS, tie_word_embeddings=False,
        **dropouts,
    )  # fmt: skip
    return RnnForCausalLM(config)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_training(steps: int, device: torch.device) -> dict[str, list[float]]:
    torch.manual_seed(0)
    variants = {
        "raw nn.LSTM": RawLSTMLM(),
        "rnn_hf, dropouts 0": rnn_hf_model(awd=False),
        "rnn_hf, AWD dropouts": rnn_hf_model(awd=True),
    }
    optimizers = {}
    for name, model in variants.items():
        model.to(device).train()
        optimizers[name] = torch.optim.AdamW(model.parameters(), lr=1e-3)
    input_ids = torch.randint(0, VOCAB, (BATCH, SEQ), device=device)

    def step(name):
        model, optimizer = variants[name], optimizers[name]
        sync(device)
        start = time.perf_counter()
        if isinstance(model, RawLSTMLM):
            loss = model(input_ids, input_ids)
        else:
            loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        return time.perf_counter() - start

    for name in variants:  # warm-up
        step(name), step(name)
    times = {name: [] for name in variants}
    for _ in range(steps):
        for name in variants:
            times[name].append(step(name))
    return times


def time_generation(repeats: int, device: torch.device) -> dict[int, list[float]]:
    torch.manual_seed(0)
    model = rnn_hf_model(awd=False).to(device).eval()
    model.generation_config.eos_token_id = None
    prompt = torch.randint(0, VOCAB, (1, 16), device=device)
    times = {128: [], 1024: []}
    model.generate(prompt, max_new_tokens=16, do_sample=False)  # warm-up
    for _ in range(repeats):
        for new_tokens in times:
            sync(device)
            start = time.perf_counter()
            out = model.generate(
                prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
            )
            sync(device)
            times[new_tokens].append(time.perf_counter() - start)
            assert out.shape[1] == 16 + new_tokens
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=15, help="timed training steps per variant")
    parser.add_argument("--repeats", type=int, default=3, help="timed generate calls per length")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")

    print(
        f"\nTraining step: emb {EMB}, hidden {HIDDEN}, {LAYERS} layers, vocab {VOCAB}, batch {BATCH} x {SEQ} tokens"
    )
    times = time_training(args.steps, device)
    base = statistics.median(times["raw nn.LSTM"])
    print(f"{'variant':<24}{'median s/step':>15}{'ratio to raw':>14}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24}{median:>15.4f}{median / base:>14.3f}")

    print("\nGeneration, batch 1, greedy, state carried between steps")
    gen = time_generation(args.repeats, device)
    short, long = statistics.median(gen[128]), statistics.median(gen[1024])
    print(
        f"128 new tokens: {short:.3f} s   1024 new tokens: {long:.3f} s   ratio 1024/128: {long / short:.2f} (8 = linear)"
    )


if __name__ == "__main__":
    main()
