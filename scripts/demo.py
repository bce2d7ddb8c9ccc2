"""The main job in one command (`make demo`): pretrain an LSTM language model on unlabeled BBC News, fine-tune it
with 10 labels per class, and compare with the same network trained from scratch on the same 10 labels.

Steps, each a real run of the project's scripts (so every printed number comes from them):
  1. scripts/pretrain.py   causal LM on shuffled 128-token blocks of the training documents (tokenizer trained
                           first)
  2. scripts/finetune.py   from the pretrained LM, 10 labeled documents per class (ULMFiT recipe)
  3. scripts/finetune.py   --from_scratch: same network, same labels, random initial weights
  4. TF-IDF + logistic regression on the same labels, the classical baseline
Then it samples text from the LM, draws runs/demo/demo.png, prints a table, and quotes what the studies beyond its
budget reached (a general-domain LM before BBC: docs/results/three_stages, `make three-stages` on 2 CPU cores, and
docs/results/three_stages_gpu, ULMFiT's larger network, `make three-stages-gpu` on one GPU; the same general LM after
6 epochs of BBC, beside TF-IDF and self-trained on the unlabeled pool, against TF-IDF self-trained:
docs/results/bbc_from_general_6epochs_beside_tfidf; and spam filtering, where two epochs of domain pretraining pass
TF-IDF: `make spam`). On 2 CPU cores
`make demo` from a fresh clone takes about 15 minutes, the venv included (the README has the measured time); with
a GPU the same steps simply run faster.
"""

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
# ULMFiT's stages (a general LM, BBC, classifier): on 2 CPU cores with the demo's network, on one GPU with ULMFiT's
STUDIES = {
    "docs/results/three_stages_gpu/fixed_features/label_efficiency.json": "ULMFiT's 3 x 1150 network, "
    "`make three-stages-gpu`, about 8 minutes on one GPU",
    # the general LM, 6 epochs of BBC: its states beside TF-IDF (weighed) and the unlabeled pool (self-training)
    "docs/results/bbc_from_general_6epochs_fusion_cv/label_efficiency.json": "6 epochs of BBC after the general "
    "LM, features beside TF-IDF (weighed) and self-trained, `make three-stages`, about 4 hours on 2 CPU cores",
    # ... then continued with the document objective (bag_of_words: which words share a document), random windows
    "docs/results/bbc_document_encoder_windows_self_training/label_efficiency.json": "that LM continued as a "
    "document encoder (30 epochs), beside TF-IDF and self-trained, `make three-stages`, about 50 minutes more",
    # another set, two epochs of its own emails, also against TF-IDF self-trained on the unlabeled emails
    "docs/results/spam_lm_2epochs_whole_emails_self_training/label_efficiency.json": "spam filtering "
    "(SpamAssassin), beside TF-IDF and self-trained, `make spam`, about 85 minutes on 2 CPU cores",
    # sentiment: an epoch of the unlabeled reviews, whole reviews, the same controls (self-training stopped before
    # it misclassifies the labeled reviews: unstopped, it collapses on some draws), then the document objective
    "docs/results/imdb_lm_epoch_whole_reviews_self_training_stopped/label_efficiency.json": "sentiment (IMDB), "
    "beside TF-IDF (weighed) and self-trained, `make imdb`, about 5.5 hours on 2 CPU cores",
    "docs/results/imdb_document_encoder/label_efficiency.json": "the IMDB LM continued as a document encoder, "
    "`make imdb`, 21 minutes more and the study's 11",
}


def run(script: str, args: list[str]) -> None:
    command = [sys.executable, str(SCRIPTS / script), *args]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"demo: {script} failed (see above)")


def tfidf_accuracy(lm_dir: Path, num_labeled_per_class: int, seed: int) -> float:
    """TF-IDF + logistic regression on the same labeled documents and the same held-out test documents."""
    from rnn_hf.training import DataArguments, load_finetuning_data
    from rnn_hf.training.label_efficiency import baseline_method  # the study's baseline: the same model

    data = load_finetuning_data(DataArguments(), lm_dir)
    return baseline_method(data).run(str(num_labeled_per_class), seed)["accuracy"]


def sample_text(model_dir: Path, prompt: str, seed: int) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    input_ids = tokenizer(prompt, return_tensors="pt").input_ids
    output = model.generate(input_ids, max_new_tokens=40, do_sample=True, top_k=40, temperature=0.8)
    return tokenizer.decode(output[0], skip_special_tokens=True).strip()


def plot(output_dir: Path, lm_dir: Path, accuracies: dict[str, float]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {"train": ([], []), "eval": ([], [])}  # perplexity of each logged training batch, and held out
    with (lm_dir / "metrics.csv").open() as file:
        for row in csv.DictReader(file):
            if row["metric"] == "loss" and row["split"] in curves:
                curves[row["split"]][0].append(int(row["step"]))
                curves[row["split"]][1].append(math.exp(float(row["value"])))
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(*curves["train"], color="tab:blue", alpha=0.6, label="training batch")
    left.plot(*curves["eval"], "o", color="tab:red", label="held-out documents")
    left.legend()
    left.set(xlabel="optimizer step", ylabel="perplexity", yscale="log", title="Pretraining (causal LM)")
    vocab_size = json.loads((lm_dir / "config.json").read_text())["vocab_size"]
    left.set_ylim(top=vocab_size)  # a uniform guess; the first steps of a random LM lie above it
    names, values = list(accuracies), [100 * v for v in accuracies.values()]
    bars = right.bar(names, values, color=["tab:blue", "tab:gray", "tab:orange"])
    right.bar_label(bars, fmt="%.1f")
    right.set(ylabel="test accuracy (%)", ylim=(0, 100), title="10 labels per class, BBC News (5 topics)")
    figure.tight_layout()
    path = output_dir / "demo.png"
    figure.savefig(path, dpi=120)
    return path


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_dir", default="runs/demo")
    parser.add_argument("--num_labeled_per_class", type=int, default=10)
    parser.add_argument("--pretrain_steps", type=int, default=560)
    parser.add_argument(
        "--pretrain_minutes",
        type=float,
        default=8.0,
        help="time cap on pretraining: with the venv (~2.5 min), the fine-tunes (~1.5 min from scratch, ~1 "
        "pretrained) and evaluations, `make demo` from a fresh clone stays under 15 minutes on 2 cores",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--study_reports", nargs="*", default=[str(SCRIPTS.parent / path) for path in STUDIES],
                        help="label-efficiency studies' .json: their rows at the demo's N are printed last")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a tiny end-to-end run, for tests")
    args = parser.parse_args()
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    lm_dir, pretrained_dir, scratch_dir = (
        output_dir / "lm",
        output_dir / "clf_pretrained",
        output_dir / "clf_scratch",
    )
    start = time.time()

    # Independent blocks, not truncated BPTT: each block starts from a zero state, as each document does when the
    # classifier reads it, and the shuffled blocks make less correlated batches (they fine-tuned better: README).
    pretrain_args = ["--objective", "clm", "--output_dir", str(lm_dir), "--seed", str(args.seed),
                     "--max_train_steps", str(args.pretrain_steps), "--max_train_minutes", str(args.pretrain_minutes),
                     "--per_device_train_batch_size", "16", "--learning_rate", "3e-3",
                     "--no_eval_each_epoch"]  # fmt: skip
    # One held-out evaluation, at the end: each costs part of the time cap. No dropout (pretrain.py's default):
    # about one pass over the corpus does not overfit, and the AWD dropouts cost perplexity there (CHANGELOG).
    # 128 tokens, as in the label-efficiency study: the demo is one of its cells (other LM, seed 0)
    finetune_args = ["--num_labeled_per_class", str(args.num_labeled_per_class), "--seed", str(args.seed),
                     "--max_seq_length", "128"]  # fmt: skip
    if args.quick:
        pretrain_args += ["--max_train_samples", "80", "--vocab_size", "500", "--embedding_size", "32",
                          "--hidden_size", "48", "--block_size", "32", "--per_device_train_batch_size", "8"]  # fmt: skip
        finetune_args += ["--max_seq_length", "64", "--num_train_epochs", "2"]
    run("pretrain.py", pretrain_args)
    run(
        "finetune.py",
        ["--model_name_or_path", str(lm_dir), "--output_dir", str(pretrained_dir), *finetune_args],
    )
    run("finetune.py", ["--model_name_or_path", str(lm_dir), "--from_scratch", "--output_dir", str(scratch_dir),
                        *finetune_args])  # fmt: skip

    lm = json.loads((lm_dir / "results.json").read_text())
    pretrained = json.loads((pretrained_dir / "metrics.json").read_text())
    scratch = json.loads((scratch_dir / "metrics.json").read_text())
    accuracies = {
        "pretrained LSTM": pretrained["accuracy"],
        "LSTM from scratch": scratch["accuracy"],
        "TF-IDF + log. reg.": tfidf_accuracy(lm_dir, args.num_labeled_per_class, args.seed),
    }
    prompt = "The government said"
    sample = sample_text(lm_dir, prompt, args.seed)
    figure = plot(output_dir, lm_dir, accuracies)

    n = args.num_labeled_per_class
    print("\n" + "=" * 78)
    print(
        f"rnn_hf demo: BBC News, pretrain on unlabeled training documents, fine-tune with {n} labels per class"
    )
    print("=" * 78)
    print(f"pretraining         {lm['steps']} steps in {lm['train_seconds']:.0f} s, "
          f"held-out perplexity {lm['eval_perplexity']:.1f}")  # fmt: skip
    print(f"{'classifier':<22}{'test accuracy':>14}{'macro-F1':>10}")
    print(f"{'pretrained LSTM':<22}{100 * pretrained['accuracy']:>13.1f}%{pretrained['macro_f1']:>10.3f}")
    print(f"{'LSTM from scratch':<22}{100 * scratch['accuracy']:>13.1f}%{scratch['macro_f1']:>10.3f}")
    print(f"{'TF-IDF + log. reg.':<22}{100 * accuracies['TF-IDF + log. reg.']:>13.1f}%")
    gain = 100 * (pretrained["accuracy"] - scratch["accuracy"])
    print(f"pretraining gain     {gain:+.1f} accuracy points over the same network from scratch")
    print(f"sample ({prompt!r}): {sample}")
    from rnn_hf.training.label_efficiency import study_summary_lines

    print(
        "beyond the demo's budget: a general LM, then BBC (ULMFiT's three stages); spam filtering; sentiment"
    )
    hows = {str(SCRIPTS.parent / path): how for path, how in STUDIES.items()}
    for report in args.study_reports:
        print(*([f"- {hows[report]}:"] if report in hows else []), *study_summary_lines(report, n), sep="\n")
    print(f"models: {lm_dir} (LM), {pretrained_dir}, {scratch_dir}   plot: {figure}")
    print(f"total time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
