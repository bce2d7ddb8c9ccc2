"""Generation speed and memory: the demo's LSTM LM against a GPT-2 of similar size, side by side in one process.

Greedy `generate` of N new tokens from a 16-token prompt, at batch 1 and batch 8; the two models alternate call by
call, so a busy machine slows them alike. Prints median tokens/s, the ratio, and each model's cache size after 128
and after N new tokens (a recurrent state stays flat; an attention cache grows with every token).
Run: `python benchmarks/bench_generate.py [--new_tokens 1024] [--repeats 3] [--device cuda]`.
"""

import argparse
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rnn_hf import RnnConfig, RnnForCausalLM

VOCAB, PROMPT = 8000, 16


def rnn_lm() -> RnnForCausalLM:
    """The demo's language model: 2 x 512 LSTM, embeddings 256, tied decoder."""
    return RnnForCausalLM(RnnConfig(vocab_size=VOCAB, embedding_size=256, hidden_size=512, num_layers=2))


def gpt2_lm(max_positions: int) -> GPT2LMHeadModel:
    """A GPT-2 of similar size: 6 layers x 256, 4 heads, the same vocabulary."""
    config = GPT2Config(vocab_size=VOCAB, n_embd=256, n_layer=6, n_head=4, n_positions=max_positions)
    return GPT2LMHeadModel(config)


def cache_bytes(cache) -> int:
    """Bytes held by every tensor a generation cache keeps."""
    seen, total = set(), 0
    for layer in cache.layers:
        tensors = [v for v in vars(layer).values() if isinstance(v, torch.Tensor)]
        for value in vars(layer).values():
            if isinstance(value, dict):
                tensors += [v for v in value.values() if isinstance(v, torch.Tensor)]
        for tensor in tensors:
            if tensor.data_ptr() not in seen:
                seen.add(tensor.data_ptr())
                total += tensor.numel() * tensor.element_size()
    return total


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def generate(model, prompt: torch.Tensor, new_tokens: int, **kwargs):
    return model.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=0,
        **kwargs,
    )


@torch.no_grad()
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--new_tokens", type=int, default=1024)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed generate calls per model and batch size"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    lengths = sorted({128, args.new_tokens})  # the cache sizes are read after these many new tokens
    models = {"rnn_hf LSTM": rnn_lm(), "GPT-2": gpt2_lm(PROMPT + lengths[-1])}
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    for name, model in models.items():
        model.to(device).eval()
        model.generation_config.eos_token_id = None
        print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")

    print(
        f"\nGreedy generation of {args.new_tokens} new tokens, {PROMPT}-token prompt, median of {args.repeats}"
    )
    print(f"{'batch':>5}{'model':>14}{'median s':>10}{'tokens/s':>10}{'ratio':>8}")
    for batch_size in args.batch_sizes:
        prompt = torch.randint(5, VOCAB, (batch_size, PROMPT), device=device)
        for model in models.values():  # warm-up
            generate(model, prompt, 16)
        times = {name: [] for name in models}
        for _ in range(args.repeats):
            for name, model in models.items():
                sync(device)
                start = time.perf_counter()
                out = generate(model, prompt, args.new_tokens)
                sync(device)
                times[name].append(time.perf_counter() - start)
                assert out.shape == (batch_size, PROMPT + args.new_tokens)
        speeds = {name: batch_size * args.new_tokens / statistics.median(t) for name, t in times.items()}
        for name in models:
            ratio = speeds[name] / speeds["GPT-2"]
            print(
                f"{batch_size:>5}{name:>14}{statistics.median(times[name]):>10.3f}{speeds[name]:>10.0f}{ratio:>8.2f}"
            )

    print("\nCache size after N new tokens (batch 1)")
    prompt = torch.randint(5, VOCAB, (1, PROMPT), device=device)
    print(f"{'model':>14}" + "".join(f"{n:>12}" for n in lengths))
    for name, model in models.items():
        outputs = [generate(model, prompt, n, return_dict_in_generate=True) for n in lengths]
        # transformers 5.17 calls the returned cache `past_key_values`, later versions `cache`
        sizes = [cache_bytes(getattr(out, "cache", None) or out.past_key_values) for out in outputs]
        print(f"{name:>14}" + "".join(f"{s / 1024:>10.0f}KB" for s in sizes))


if __name__ == "__main__":
    main()
