#!/usr/bin/env python
"""Translation with little parallel data: an RNN encoder-decoder from scratch vs initialized from language models.

    python scripts/seq2seq_study.py --output_dir docs/results      # English (KJV) -> French (Louis Segond)
    python scripts/seq2seq_study.py --quick                         # a smoke test, in runs/seq2seq_study

Pretrains a masked LM on the source side and a causal LM on the target side of the training verses (monolingual
text; the held-out books are never read), then for each number of training pairs trains the same encoder-decoder
from random weights and from the two LMs (`RnnForSeq2SeqLM.from_encoder_decoder_pretrained`; with
--pretrained_lr_ratios, once per rate of the copied weights), and scores
the held-out books with sacreBLEU and chrF, beside a copy baseline (the source as the translation). Resumable: runs
recorded in `<work_dir>/results.jsonl` are not repeated.
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from transformers import Seq2SeqTrainingArguments, set_seed

from rnn_hf.training import PretrainingArguments, UserError, exit_on_user_error, pretrain
from rnn_hf.training.seq2seq import (
    PairArguments,
    Seq2SeqModelArguments,
    build_model,
    load_pairs,
    score_translations,
    train_seq2seq,
    translate,
)

INITS = {"scratch": "random initialization", "lm": "initialized from the two LMs"}


def legend(run: dict) -> str:
    ratio = run.get("pretrained_lr_ratio", 1.0)
    if run["init"] == "scratch" or ratio == 1.0:
        return INITS[run["init"]]
    return INITS["lm"] + (", frozen" if ratio == 0 else f", their weights at {ratio:g} x the rate")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    parser.add_argument("--work_dir", default="runs/seq2seq_study")
    parser.add_argument("--output_dir", default=None, help="table, plot, samples (default: --work_dir)")
    parser.add_argument("--num_pairs_list", nargs="+", default=["1000", "5000"], help="N or 'all'")
    parser.add_argument("--lm_steps", type=int, default=500, help="pretraining steps of each language model")
    parser.add_argument("--num_train_epochs", type=float, default=6)
    parser.add_argument("--input_feeding", action="store_true", help="Luong's input feeding (a per-step decoder "
                        "loop in training: ~3x slower per step on a CPU than the fused kernel)")  # fmt: skip
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--lm_loss_weight", type=float, default=0.0)
    parser.add_argument("--pretrained_lr_ratios", nargs="+", type=float, default=[1.0], help="an LM-initialized "
                        "run per ratio: the LMs' weights learn at ratio x --learning_rate (0 freezes them)")  # fmt: skip
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_beams", type=int, default=1, help="beams when scoring the held-out books")
    parser.add_argument("--inits", nargs="+", default=list(INITS), choices=list(INITS),
                        help="which networks to train")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny LMs, 200 pairs, 100 test verses")
    args = parser.parse_args(argv)
    if args.quick:
        args.num_pairs_list, args.lm_steps, args.num_train_epochs = ["200"], 20, 1
    args.output_dir = Path(args.output_dir or args.work_dir)
    return args


def pretrain_lm(work: Path, name: str, texts: list[str], objective: str, hidden_size: int, args) -> Path:
    out = work / name
    if (out / "results.json").is_file():
        return out
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.txt").write_text("\n\n".join(texts[300:]))
    (work / f"{name}_valid.txt").write_text("\n\n".join(texts[:300]))
    size = dict(embedding_size=32, hidden_size=32) if args.quick else dict(embedding_size=256,
                                                                          hidden_size=hidden_size)  # fmt: skip
    pretrain(PretrainingArguments(output_dir=str(out), objective=objective, train_file=str(work / f"{name}.txt"),
                                  validation_file=str(work / f"{name}_valid.txt"), vocab_size=4000, num_layers=1,
                                  block_size=64, max_train_steps=args.lm_steps, learning_rate=3e-3, seed=args.seed,
                                  **size))  # fmt: skip
    return out


def check_settings(work: Path, args) -> None:
    """One work_dir, one setting: recorded runs are reused only under the settings that made them."""
    names = ("quick", "lm_steps", "num_train_epochs", "learning_rate", "lm_loss_weight", "batch_size", "num_beams",
             "seed", "input_feeding")  # fmt: skip
    settings, path = {name: getattr(args, name) for name in names}, work / "settings.json"
    if path.is_file() and json.loads(path.read_text()) != settings:
        raise UserError(f"{work} holds runs made with other settings ({path.read_text().strip()}): use another "
                        "--work_dir")  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings))


@exit_on_user_error
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    work = Path(args.work_dir)
    check_settings(work, args)
    pairs = load_pairs(PairArguments())
    test = pairs["test"].select(range(100)) if args.quick else pairs["test"]
    shuffled = pairs["train"].shuffle(seed=args.seed)
    encoder = pretrain_lm(work, "source_mlm", shuffled["source"], "mlm", 256, args)
    decoder = pretrain_lm(work, "target_clm", shuffled["target"], "clm", 512, args)
    store = work / "results.jsonl"
    runs = [json.loads(line) for line in store.read_text().splitlines()] if store.is_file() else []
    references = test["target"]
    copy = score_translations(test["source"], references)
    samples = {}
    for n in args.num_pairs_list:
        count = len(shuffled) if n == "all" else int(n)
        variants = [("scratch", 1.0)] * ("scratch" in args.inits)
        variants += [("lm", ratio) for ratio in args.pretrained_lr_ratios] * ("lm" in args.inits)
        for init, ratio in variants:
            key = {"pairs": count, "init": init, "pretrained_lr_ratio": ratio}
            if any({k: r.get(k, 1.0) for k in key} == key for r in runs):
                continue
            set_seed(args.seed)
            model, source_tok, target_tok = build_model(Seq2SeqModelArguments(
                str(encoder), str(decoder), from_scratch=init == "scratch", lm_loss_weight=args.lm_loss_weight,
                input_feeding=args.input_feeding, pretrained_lr_ratio=ratio))  # fmt: skip
            start, name = time.time(), f"{init}_{count}" + (f"_lr{ratio:g}" if ratio != 1.0 else "")
            training = Seq2SeqTrainingArguments(
                output_dir=str(work / name), per_device_train_batch_size=args.batch_size,
                num_train_epochs=args.num_train_epochs, learning_rate=args.learning_rate, lr_scheduler_type="cosine",
                warmup_steps=50, max_grad_norm=1.0, weight_decay=0.01, logging_steps=50, save_strategy="no",
                report_to=[], seed=args.seed, use_cpu=True)  # fmt: skip
            trainer = train_seq2seq(model, source_tok, target_tok, shuffled.select(range(count)),
                                    PairArguments(), training, pretrained_lr_ratio=ratio)  # fmt: skip
            hypotheses = translate(model, source_tok, target_tok, test["source"], num_beams=args.num_beams)
            run = {**key, **score_translations(hypotheses, references),
                   "steps": trainer.state.global_step, "train_seconds": round(time.time() - start, 1)}  # fmt: skip
            print(json.dumps(run))
            runs.append(run)
            with store.open("a") as handle:
                handle.write(json.dumps(run) + "\n")
            samples[legend(run)] = hypotheses
            model.save_pretrained(work / name)
            source_tok.save_pretrained(work / name)
            target_tok.save_pretrained(work / name / "target_tokenizer")
    report(args, runs, copy, test, samples, encoder, decoder, argv)


def report(args, runs, copy, test, samples, encoder, decoder, argv):
    args.output_dir.mkdir(parents=True, exist_ok=True)
    counts = sorted({r["pairs"] for r in runs})
    lines = ["# Translation from little parallel data: English (KJV) -> French (Louis Segond)", "",
             f"Command: `python scripts/seq2seq_study.py {shlex.join(argv)}`", "",
             f"Held-out books (never read in pretraining or training): {len(test)} verses. BLEU and chrF: sacreBLEU "
             f"on detokenized text, {'greedy decoding' if args.num_beams == 1 else f'{args.num_beams} beams'}.", "",
             f"Language models: masked LM `{encoder}` (source), causal LM `{decoder}` (target):"]  # fmt: skip
    for path in (encoder, decoder):
        measured = json.loads((path / "results.json").read_text())
        lines.append(
            f"- `{path.name}`: {measured['steps']} steps, held-out perplexity {measured['eval_perplexity']:.1f}"
        )
    lines += ["", "| training pairs | method | BLEU | chrF | steps | train s |", "|---|---|---|---|---|---|"]
    lines.append(f"| - | copy the source | {copy['bleu']:.2f} | {copy['chrf']:.1f} | - | - |")
    for r in sorted(runs, key=lambda r: (r["pairs"], r["init"] == "lm", -r.get("pretrained_lr_ratio", 1))):
        lines.append(f"| {r['pairs']} | {legend(r)} | {r['bleu']:.2f} | {r['chrf']:.1f} | {r['steps']} | "
                     f"{r['train_seconds']:.0f} |")  # fmt: skip
    if len(samples) >= 2:
        lines += ["", f"Sample translations ({counts[-1]} pairs, held-out verses):", ""]
        for index in range(0, len(test), max(1, len(test) // 5))[:5]:
            row = test[index]
            lines += [f"- source: {row['source']}", f"  - reference: {row['target']}"]
            lines += [f"  - {name}: {hypotheses[index]}" for name, hypotheses in samples.items()]
    (args.output_dir / "seq2seq.md").write_text("\n".join(lines) + "\n")
    plot(args.output_dir / "seq2seq.png", runs, copy)
    print("\n".join(lines))


def plot(path, runs, copy):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(legend(r) for r in sorted(runs, key=lambda r: r["init"] != "scratch")):
        points = sorted((r["pairs"], r["bleu"]) for r in runs if legend(r) == name)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.axhline(copy["bleu"], color="grey", linestyle="--", label="copy the source")
    ax.set_xscale("log")
    ax.set(xlabel="training pairs", ylabel="BLEU (held-out books)",
           title="English -> French, RNN encoder-decoder")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
