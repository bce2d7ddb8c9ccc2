"""Why rnn_hf's decoding steps read fused, transposed copies of the weights: the raw products, side by side.

1. A two-layer LSTM decoding loop (the demo LM's shapes, batch 1) with `torch.lstm_cell` against one product of
   `[x; h]` with a fused `[weight_ih | weight_hh]`, in both layouts, with the LM head in both layouts.
2. One product `rows @ W` for an 8000 x 256 output layer and a 2048 x 1024 LSTM gate matrix, `W` stored `(out, in)`
   (as `nn.Linear` and `nn.LSTM` keep it) or `(in, out)`, for 1 to 16 rows, with other weights read in between (as
   in a real step, which evicts the cache).
Medians, milliseconds. Run: `python benchmarks/bench_decode_layout.py`.
"""

import statistics
import time

import torch
import torch.nn.functional as F

HIDDEN, EMB, VOCAB = 512, 256, 8000


def median_ms(fn, repeats: int = 200, between=None) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeats):
        if between is not None:
            between()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def lstm_step(inputs, hidden, cell, weight, bias):
    gates = torch.addmm(bias, torch.cat([inputs, hidden], dim=1), weight)
    i, f, g, o = gates.chunk(4, dim=1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(cell), cell


@torch.no_grad()
def decoding_loops(steps: int = 256) -> None:
    torch.manual_seed(0)
    embedding = torch.randn(VOCAB, EMB)
    layers = [
        (
            torch.randn(4 * HIDDEN, size) * 0.05,
            torch.randn(4 * HIDDEN, HIDDEN) * 0.05,
            torch.zeros(4 * HIDDEN),
        )
        for size in (EMB, HIDDEN)
    ]
    projection, decoder, decoder_bias = torch.randn(EMB, HIDDEN) * 0.05, embedding, torch.zeros(VOCAB)
    fused = [(torch.cat([w_ih, w_hh], 1), bias, bias) for w_ih, w_hh, bias in layers]
    variants = {
        "torch.lstm_cell, nn.Linear head": ("cell", "out_in"),
        "fused (4H, C+H).t(), nn.Linear head": ("fused_out_in", "out_in"),
        "fused (C+H, 4H), nn.Linear head": ("fused_in_out", "out_in"),
        "fused (C+H, 4H), (in, out) head": ("fused_in_out", "in_out"),
    }
    head = {
        "out_in": (projection, decoder),
        "in_out": (projection.t().contiguous(), decoder.t().contiguous()),
    }
    weights = {
        "fused_out_in": [(w.t(), b_ih + b_hh) for w, b_ih, b_hh in fused],
        "fused_in_out": [(w.t().contiguous(), b_ih + b_hh) for w, b_ih, b_hh in fused],
    }

    def run(recurrent: str, head_layout: str) -> float:
        token = torch.tensor([7])
        states = [(torch.zeros(1, HIDDEN), torch.zeros(1, HIDDEN)) for _ in layers]
        proj, dec = head[head_layout]
        start = time.perf_counter()
        for _ in range(steps):
            x = F.embedding(token, embedding)
            for index, (w_ih, w_hh, bias) in enumerate(layers):
                if recurrent == "cell":
                    states[index] = torch.lstm_cell(x, states[index], w_ih, w_hh, bias, bias)
                else:
                    weight, fused_bias = weights[recurrent][index]
                    states[index] = lstm_step(x, *states[index], weight, fused_bias)
                x = states[index][0]
            if head_layout == "out_in":
                logits = F.linear(F.linear(x, proj), dec, decoder_bias)
            else:
                logits = torch.addmm(decoder_bias, x @ proj, dec)
            token = logits.argmax(-1)
        return (time.perf_counter() - start) / steps * 1e3

    print(f"1. Two-layer LSTM LM decoding loop, batch 1, ms per token (median of 5 loops of {steps} tokens)")
    results = {name: [] for name in variants}
    for _ in range(5):  # alternate the variants, so a busy machine slows them alike
        for name, (recurrent, head_layout) in variants.items():
            results[name].append(run(recurrent, head_layout))
    for name, values in results.items():
        print(f"   {name:<40}{statistics.median(values):>8.2f}")


def products() -> None:
    print("\n2. One product rows @ W, ms (median of 200), other weights read in between")
    other = torch.randn(2048, 1024)
    other_rows = torch.randn(1, 1024)

    def evict():
        torch.addmm(torch.zeros(1, 2048), other_rows, other.t())
        torch.addmm(torch.zeros(1, 2048), other_rows, other.t())

    print(f"   {'matrix':<26}{'rows':>5}{'(out, in).t()':>15}{'(in, out)':>11}")
    for name, (out_features, in_features) in {"output layer 8000 x 256": (VOCAB, EMB),
                                              "LSTM gates 2048 x 1024": (4 * HIDDEN, 2 * HIDDEN)}.items():  # fmt: skip
        weight = torch.randn(out_features, in_features)
        weight_t = weight.t().contiguous()
        bias = torch.randn(out_features)
        for rows in (1, 2, 4, 8, 16):
            inputs = torch.randn(rows, in_features)
            out_in = median_ms(lambda: torch.addmm(bias, inputs, weight.t()), between=evict)  # noqa: B023
            in_out = median_ms(lambda: torch.addmm(bias, inputs, weight_t), between=evict)  # noqa: B023
            print(f"   {name:<26}{rows:>5}{out_in:>15.3f}{in_out:>11.3f}")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    decoding_loops()
    products()
