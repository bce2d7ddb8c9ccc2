#!/usr/bin/env python
"""Label efficiency: test accuracy against labeled documents per class, pretrained LSTM vs scratch vs TF-IDF.

    python scripts/label_efficiency.py --clm_checkpoint runs/clm --mlm_checkpoint runs/mlm
    python scripts/label_efficiency.py --clm_checkpoint runs/clm --quick --output_dir /tmp/le   # smoke test

For N in 5, 10, 25, 50, 100 labeled documents per class and all of them, and 3 seeds each, it fine-tunes
(`scripts/finetune.py`, called in-process) the network from scratch, from the causal-LM checkpoint and from the
masked-LM checkpoint (either may be left out), and trains the baseline a practitioner would try first: TF-IDF
and logistic regression on the same labeled documents (same seeds), tested on the same held-out documents.

With `--learning_rates`, each LSTM first gets its own peak learning rate: the one of the grid with the best
validation accuracy at `--tune_num_labels` labeled documents per class (whose 20% validation split is carved from
the labeled documents, never from the test set), first seed. A from-scratch network wants a lower rate than a
pretrained one; a baseline trained at the other's rate would flatter pretraining.

Every run is appended to `<work_dir>/results.jsonl` with the settings it ran under (checkpoint, sequence length,
epochs, learning rate, document split). A rerun skips the runs already there with the same settings and leaves out
of the report those made with other ones: an interrupted study resumes, and a new checkpoint for one method reruns
only that method. Writes `<output_dir>/label_efficiency.md` (tables, command, date, hardware, wall time) and `.png`.
"""

import argparse
import datetime
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

import datasets
import matplotlib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import finetune  # noqa: E402  (scripts/finetune.py)

from rnn_hf.data import sample_per_class  # noqa: E402
from rnn_hf.hub import hardware  # noqa: E402
from rnn_hf.training import UserError, check_rnn_checkpoint, exit_on_user_error  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHODS = {  # key -> legend, in table order
    "tfidf": "TF-IDF + logistic regression",
    "scratch": "LSTM from scratch",
    "clm": "pretrained causal LM",
    "mlm": "pretrained masked LM",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Test accuracy against labeled documents per class: pretrained vs scratch vs TF-IDF.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clm_checkpoint", default=None, help="causal-LM checkpoint (scripts/pretrain.py)")
    parser.add_argument("--mlm_checkpoint", default=None, help="masked-LM checkpoint (scripts/pretrain.py)")
    parser.add_argument(
        "--scratch_checkpoint",
        default=None,
        help="the from-scratch LSTM copies this checkpoint's config (dropouts included) and tokenizer, with "
        "random weights (default: --clm_checkpoint, else --mlm_checkpoint)",
    )
    parser.add_argument(
        "--num_labels_list",
        nargs="+",
        default=None,
        help="labeled documents per class, or 'all', run in this order (default: 5 10 25 50 100 all; --quick: 2 4)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2; --quick: 0")
    parser.add_argument(
        "--max_seq_length",
        type=int,
        default=None,
        help="passed to finetune.py (default: its 512; --quick: 64)",
    )
    parser.add_argument(
        "--num_train_epochs",
        type=int,
        default=None,
        help="passed to finetune.py (default: its own; --quick: 1)",
    )
    parser.add_argument(
        "--learning_rates",
        nargs="+",
        type=float,
        default=None,
        help="tune each LSTM's peak learning rate over these, on validation accuracy at --tune_num_labels "
        "(first seed); default: finetune.py's defaults, no tuning",
    )
    parser.add_argument(
        "--tune_num_labels",
        type=int,
        default=100,
        help="labeled documents per class of the tuning runs (at least finetune.py's "
        f"{finetune.MIN_PER_CLASS_FOR_VALIDATION}, so that they have a validation split)",
    )
    parser.add_argument(
        "--work_dir", default="runs/label_efficiency", help="results.jsonl and temporary models"
    )
    parser.add_argument("--output_dir", default="docs/results", help="where the .md and .png go")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: N in 2 4, 1 seed, 1 epoch, 64 tokens"
    )
    parser.add_argument(
        "--report_only",
        action="store_true",
        help="run nothing: write the report from the runs recorded in --work_dir (missing cells show '–', "
        "cells with fewer seeds their count)",
    )
    args = parser.parse_args(argv)

    if args.clm_checkpoint is None and args.mlm_checkpoint is None:
        parser.error("give --clm_checkpoint, --mlm_checkpoint or both")
    quick = {"num_labels_list": ["2", "4"], "seeds": [0], "max_seq_length": 64, "num_train_epochs": 1}
    full = {"num_labels_list": ["5", "10", "25", "50", "100", "all"], "seeds": [0, 1, 2]}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for value in args.num_labels_list:
        if value != "all" and not (value.isdigit() and int(value) > 0):
            parser.error(f"--num_labels_list takes positive integers or 'all', got {value!r}")
    if args.learning_rates is not None:
        if not all(lr > 0 for lr in args.learning_rates):
            parser.error(f"--learning_rates must be positive, got {args.learning_rates}")
        if args.tune_num_labels < finetune.MIN_PER_CLASS_FOR_VALIDATION:
            parser.error(
                f"--tune_num_labels {args.tune_num_labels} leaves no validation split to tune on: "
                f"use at least {finetune.MIN_PER_CLASS_FOR_VALIDATION}"
            )
    return args


def tfidf_logistic_regression(labeled, test) -> dict:
    """The classical baseline: sublinear TF-IDF features and an L2 logistic regression, scikit-learn defaults."""
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    classifier = LogisticRegression(max_iter=2000)
    classifier.fit(vectorizer.fit_transform(labeled["text"]), labeled["label"])
    predictions = classifier.predict(vectorizer.transform(test["text"]))
    return {
        "accuracy": float(accuracy_score(test["label"], predictions)),
        "macro_f1": float(f1_score(test["label"], predictions, average="macro")),
        "num_train": len(labeled),
        "num_validation": 0,
    }


def run_key(record: dict) -> tuple:
    """What makes two runs the same: method, labels per class, seed and settings (those of older runs: none)."""
    settings = json.dumps(record.get("settings"), sort_keys=True)
    return record["method"], record["num_labels"], record["seed"], settings


def summarize(records: list[dict], num_labels_list: list[str], methods: list[str], metric: str) -> dict:
    """`{(method, N): (mean, std, count)}` of `metric` over seeds (sample std; 0 for a single seed)."""
    table = {}
    for method in methods:
        for num_labels in num_labels_list:
            values = [r[metric] for r in records if r["method"] == method and r["num_labels"] == num_labels]
            if values:
                std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                table[method, num_labels] = (float(np.mean(values)), std, len(values))
    return table


def markdown_table(
    table: dict, num_labels_list: list[str], methods: list[str], all_per_class: float, num_seeds: int
) -> str:
    """Mean ± std per cell; a cell with fewer seeds than the others says how many (`n=1`)."""
    lines = [
        "| labels per class | " + " | ".join(METHODS[m] for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for num_labels in num_labels_list:
        row = f"all (≈{all_per_class:.0f})" if num_labels == "all" else num_labels
        cells = []
        for method in methods:
            mean, std, count = table.get((method, num_labels), (None, None, 0))
            if mean is None:
                cells.append("–")
            elif count == 1 and num_seeds > 1:  # one seed has no spread to show
                cells.append(f"{100 * mean:.1f} (n=1)")
            else:
                cells.append(
                    f"{100 * mean:.1f} ± {100 * std:.1f}" + (f" (n={count})" if count < num_seeds else "")
                )
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def label_savings(table: dict, num_labels_list: list[str], methods: list[str]) -> list[str]:
    """One sentence per pretrained method: the fewest labels per class at which its mean accuracy reaches that of
    the LSTM from scratch with the most labels per class (numbers only; 'all' has no count to compare)."""
    counts = sorted(int(n) for n in num_labels_list if n != "all" and ("scratch", n) in table)
    if not counts:
        return []
    most = str(counts[-1])
    target = table["scratch", most][0]
    sentences = []
    for method in (m for m in methods if m in ("clm", "mlm")):
        reached = [n for n in counts if (method, str(n)) in table and table[method, str(n)][0] >= target]
        if reached:
            mean = table[method, str(reached[0])][0]
            sentences.append(
                f"- {METHODS[method]}: {reached[0]} labels per class ({100 * mean:.1f}%) reach the LSTM from "
                f"scratch with {most} ({100 * target:.1f}%), {int(most) / reached[0]:g}x fewer labels."
            )
        else:
            sentences.append(
                f"- {METHODS[method]}: does not reach the LSTM from scratch with {most} labels per class "
                f"({100 * target:.1f}%) at any N up to {most}."
            )
    return sentences


def plot(
    table: dict, num_labels_list: list[str], methods: list[str], all_per_class: float, path: Path
) -> None:
    """Accuracy against labels per class (log axis), the mean with a ±std band per method."""
    x_of = {n: (all_per_class if n == "all" else float(n)) for n in num_labels_list}
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for method in methods:
        points = sorted((x_of[n], *table[method, n][:2]) for n in num_labels_list if (method, n) in table)
        if not points:
            continue
        x, mean, std = (np.array(column) for column in zip(*points, strict=True))
        axes.plot(x, 100 * mean, marker="o", label=METHODS[method])
        axes.fill_between(x, 100 * (mean - std), 100 * (mean + std), alpha=0.2)
    ticks = sorted(x_of.values())
    axes.set_xscale("log")
    axes.set_xticks(ticks)
    axes.set_xticklabels(
        [f"all\n(≈{x:.0f})" if x == all_per_class and "all" in x_of else f"{x:g}" for x in ticks]
    )
    axes.minorticks_off()
    axes.set_xlabel("labeled training documents per class")
    axes.set_ylabel("test accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    start_time = time.time()
    datasets.disable_progress_bars()  # the run bar is the one progress bar
    checkpoints = {
        "clm": check_rnn_checkpoint(args.clm_checkpoint, "--clm_checkpoint") if args.clm_checkpoint else None,
        "mlm": check_rnn_checkpoint(args.mlm_checkpoint, "--mlm_checkpoint") if args.mlm_checkpoint else None,
    }
    # The scratch baseline copies a checkpoint's config and tokenizer: the causal LM's unless told otherwise.
    checkpoints["scratch"] = (
        check_rnn_checkpoint(args.scratch_checkpoint, "--scratch_checkpoint")
        if args.scratch_checkpoint
        else checkpoints["clm"] or checkpoints["mlm"]
    )
    methods = ["tfidf", "scratch"] + [m for m in ("clm", "mlm") if checkpoints[m] is not None]

    # Every method sees the same labeled pool and test documents: pretraining's document split.
    split_settings = {
        m: finetune.read_split_settings(checkpoints[m]) for m in ("clm", "mlm", "scratch") if checkpoints[m]
    }
    if len({json.dumps(s, sort_keys=True) for s in split_settings.values()}) > 1:
        raise UserError(f"the checkpoints were pretrained on different document splits: {split_settings}")
    split_settings = next(iter(split_settings.values()))
    data_args = finetune.parse_args(  # finetune.py's data defaults: the BBC News corpus
        ["--model_name_or_path", str(checkpoints["scratch"]), "--output_dir", "-"]
    )
    pool, test, label_names, _ = finetune.load_data(data_args, split_settings)
    all_per_class = len(pool) / len(label_names)

    # Each run records the settings it ran under; only runs under the current ones count (and are skipped).
    def settings_of(method: str, learning_rate: float | None = None) -> dict:
        if method == "tfidf":
            return {"split": split_settings}
        if learning_rate is None:
            learning_rate = finetune.default_learning_rate(from_scratch=method == "scratch")
        return {
            "checkpoint": str(checkpoints[method]),
            "max_seq_length": args.max_seq_length,
            "num_train_epochs": args.num_train_epochs,
            "learning_rate": learning_rate,
            "classifier_norm": finetune.DEFAULT_CLASSIFIER_NORM,
            "drop_last_train_batch": finetune.DEFAULT_CLASSIFIER_NORM == "batch",
            "split": split_settings,
        }

    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    results_file = work_dir / "results.jsonl"
    all_records = (
        [json.loads(line) for line in results_file.read_text().splitlines()] if results_file.is_file() else []
    )

    def find(method: str, num_labels: str, seed: int, settings: dict) -> dict | None:
        key = (method, num_labels, seed, json.dumps(settings, sort_keys=True))
        matches = (r for r in all_records if run_key(r) == key)
        return next(matches, None)

    def run(method: str, num_labels: str, seed: int, settings: dict) -> dict:
        run_start = time.time()
        if method == "tfidf":  # trains on all N labeled documents: it needs no validation set to stop early
            labeled = pool if num_labels == "all" else sample_per_class(pool, int(num_labels), seed=seed)
            metrics = tfidf_logistic_regression(labeled, test)
        else:
            run_dir = work_dir / f"{method}-n{num_labels}-seed{seed}"
            finetune_argv = ["--model_name_or_path", str(checkpoints[method]), "--output_dir", str(run_dir)]
            finetune_argv += ["--seed", str(seed), "--learning_rate", str(settings["learning_rate"])]
            finetune_argv += ["--quiet"]
            finetune_argv += ["--from_scratch"] if method == "scratch" else []
            finetune_argv += ["--num_labeled_per_class", num_labels] if num_labels != "all" else []
            for name in ("max_seq_length", "num_train_epochs"):
                if settings[name] is not None:
                    finetune_argv += [f"--{name}", str(settings[name])]
            metrics = finetune.main(finetune_argv)
            shutil.rmtree(run_dir)  # the metrics are all the study needs; a model is tens of MB
        record = {
            "method": method,
            "num_labels": num_labels,
            "seed": seed,
            "wall_time_s": time.time() - run_start,
        }
        record.update({key: metrics[key] for key in ("accuracy", "macro_f1", "num_train", "num_validation")})
        record["best_validation_accuracy"] = metrics.get("best_validation_accuracy")
        record["epochs_trained"] = metrics.get("epochs_trained")
        record["settings"] = settings
        all_records.append(record)
        with results_file.open("a") as file:
            file.write(json.dumps(record) + "\n")
        return record

    # ---- tuning: each LSTM's learning rate, picked on validation accuracy (never on the test documents)
    lstm_methods = [method for method in methods if method != "tfidf"]
    tuning = {}  # method -> [(learning rate, its tuning run)]
    if args.learning_rates:
        tune_n, tune_seed = str(args.tune_num_labels), args.seeds[0]
        jobs = [(method, lr) for method in lstm_methods for lr in args.learning_rates]
        progress = tqdm(jobs, desc="tuning learning rates", unit="run")
        for method, lr in progress:
            progress.set_postfix_str(f"{method} lr={lr:g}")
            settings = settings_of(method, lr)
            record = find(method, tune_n, tune_seed, settings)
            if record is None or record.get("best_validation_accuracy") is None:  # older records lack it
                if args.report_only:
                    raise UserError(
                        f"--report_only: no recorded tuning run of {method} at lr {lr:g} in '{results_file}'"
                    )
                record = run(method, tune_n, tune_seed, settings)
            tuning.setdefault(method, []).append((lr, record))
    chosen = {method: None for method in lstm_methods}  # None: finetune.py's default
    for method, tried in tuning.items():  # `max` keeps the first of equals: ties go to the earlier rate
        chosen[method] = max(tried, key=lambda pair: pair[1]["best_validation_accuracy"])[0]
    current = {"tfidf": settings_of("tfidf")} | {
        method: settings_of(method, chosen[method]) for method in lstm_methods
    }

    runs = [
        (method, num_labels, seed)
        for num_labels in args.num_labels_list
        for seed in args.seeds
        for method in methods
        if find(method, num_labels, seed, current[method]) is None
    ]
    if args.report_only:
        print(f"--report_only: {len(runs)} runs of this study are not recorded yet; reporting without them")
        runs = []
    progress = tqdm(runs, desc="label efficiency", unit="run")
    for method, num_labels, seed in progress:
        progress.set_postfix_str(f"{method} N={num_labels} seed={seed}")
        run(method, num_labels, seed, current[method])

    # ---- report: tables, plot (rows in increasing N, whatever order the runs took)
    args.num_labels_list = sorted(args.num_labels_list, key=lambda n: float("inf") if n == "all" else int(n))
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    records = [
        record
        for record in all_records
        if record["num_labels"] in args.num_labels_list
        and record["seed"] in args.seeds
        and record["method"] in current
        and record.get("settings") == current[record["method"]]
    ]
    accuracy = summarize(records, args.num_labels_list, methods, "accuracy")
    macro_f1 = summarize(records, args.num_labels_list, methods, "macro_f1")
    plot(accuracy, args.num_labels_list, methods, all_per_class, output_dir / "label_efficiency.png")

    tuning_only = [  # the tuning runs at the rates not chosen: not in the tables, but part of the study's cost
        record for method, tried in tuning.items() for lr, record in tried if lr != chosen[method]
    ]
    total_run_time = sum(r["wall_time_s"] for r in records + tuning_only)
    seeds = ", ".join(str(seed) for seed in args.seeds)
    lines = [
        "# Label efficiency",
        "",
        "Test accuracy and macro-F1 (%, mean ± std over seeds " + seeds + f") on {len(test)} held-out test "
        f"documents ({len(label_names)} classes: {', '.join(label_names)}), against the number of labeled "
        "training documents per class. The test documents are those of the document split the language models "
        f"were pretrained without ({', '.join(f'{k}={v}' for k, v in split_settings.items())}); the labeled "
        f"documents are drawn from its {len(pool)} train documents with each seed.",
        "",
        "- The LSTMs fine-tune with `scripts/finetune.py` defaults (ULMFiT: discriminative learning rates, slanted "
        "triangular schedule, gradual unfreezing for the pretrained ones, concat pooling, ULMFiT's two-layer head with "
        f"{finetune.DEFAULT_CLASSIFIER_NORM} norm; about "
        "2,000 document passes (5 to 20 epochs) when pretrained, 4,000 (10 to 40 epochs) from scratch) and the "
        "peak learning rate below; from "
        f"{finetune.MIN_PER_CLASS_FOR_VALIDATION} labeled documents per class they hold 20% of them out for early "
        "stopping, below that they train a fixed number of epochs on all. The scratch LSTM copies the config and "
        "tokenizer of "
        f"`{checkpoints['scratch']}`.",
        "- TF-IDF + logistic regression (scikit-learn, `sublinear_tf=True`, default C) trains on all N labeled "
        "documents.",
    ]
    for method in (
        "clm",
        "mlm",
    ):  # what pretraining measured (its results.json), so the table says what it got
        path = checkpoints[method] / "results.json" if checkpoints[method] else None
        if path is not None and path.is_file():
            pretrained = json.loads(path.read_text())
            measured = ", ".join(
                f"{k.removeprefix('eval_')} {v:.4g}" for k, v in pretrained.items() if k.startswith("eval_")
            )
            lines.append(f"- {METHODS[method]} `{checkpoints[method]}`: {pretrained.get('steps')} steps in "
                         f"{pretrained.get('train_seconds')} s of pretraining; held-out {measured}.")  # fmt: skip
    lines += ["", "## Learning rates", ""]
    if tuning:
        grid = args.learning_rates
        lines += [
            f"Each LSTM's peak learning rate is the one of {', '.join(f'{lr:g}' for lr in grid)} with the best "
            f"validation accuracy (%) with {args.tune_num_labels} labeled documents per class, seed "
            f"{args.seeds[0]} (validation: 20% of those labeled documents; the test documents play no part). "
            "The chosen one in bold; it is used at every N.",
            "",
            "| method | " + " | ".join(f"lr {lr:g}" for lr in grid) + " |",
            "|---|" + "---|" * len(grid),
        ]
        for method, tried in tuning.items():
            scores = [(lr, 100 * record["best_validation_accuracy"]) for lr, record in tried]
            cells = [f"**{score:.1f}**" if lr == chosen[method] else f"{score:.1f}" for lr, score in scores]
            lines.append(f"| {METHODS[method]} | " + " | ".join(cells) + " |")
    else:
        lines.append(
            f"finetune.py's defaults: {finetune.PRETRAINED_LEARNING_RATE:g} for the pretrained LSTMs, "
            f"{finetune.SCRATCH_LEARNING_RATE:g} from scratch (not tuned in this run: see `--learning_rates`)."
        )
    if args.quick:
        lines += [
            "",
            "**Quick mode** (a smoke test: 1 seed, 1 epoch, 64 tokens): these numbers mean nothing.",
        ]
    savings = label_savings(accuracy, args.num_labels_list, methods)
    if savings:
        lines += ["", "## Labels saved by pretraining (mean accuracy)", "", *savings]
    lines += [
        "",
        "## Accuracy",
        "",
        markdown_table(accuracy, args.num_labels_list, methods, all_per_class, len(args.seeds)),
        "",
        "## Macro-F1",
        "",
        markdown_table(macro_f1, args.num_labels_list, methods, all_per_class, len(args.seeds)),
        "",
        "![accuracy against labels per class](label_efficiency.png)",
        "",
        "## How this was measured",
        "",
        f"- Command: `python scripts/label_efficiency.py {shlex.join(argv)}`",
        f"- Date: {datetime.date.today().isoformat()}",
        f"- Hardware: {hardware()}",
        f"- Wall time: {total_run_time / 60:.1f} min over {len(records) + len(tuning_only)} runs "
        f"({(time.time() - start_time) / 60:.1f} min in this invocation; runs recorded in `{results_file}`).",
        "",
    ]
    report = output_dir / "label_efficiency.md"
    report.write_text("\n".join(lines))
    print(f"wrote {report} and {output_dir / 'label_efficiency.png'}")
    return report


if __name__ == "__main__":
    main()
