#!/usr/bin/env python
"""Label efficiency: a test score against the number of labels, pretrained RNN vs scratch vs TF-IDF.

    python scripts/label_efficiency.py --clm_checkpoint runs/clm --mlm_checkpoint runs/mlm --output_dir docs/results
    python scripts/label_efficiency.py --clm_checkpoint runs/clm --quick        # a smoke test, in runs/label_efficiency

For each N (labeled documents per class; for regression, in all) and seed it fine-tunes the network from scratch
and from each checkpoint (`rnn_hf.training.finetune`) and trains TF-IDF + a linear model on the same labeled
documents, tested on the same held-out documents (never seen in pretraining). With `--learning_rates`, each
network first gets the rate with the best validation score at `--tune_num_labels` (first seed).

A thin wrapper around `rnn_hf.training.label_efficiency` (resumable runs in `<work_dir>/results.jsonl`, mean ± std
tables and a plot in `<output_dir>`).
"""

import argparse
import shlex
import sys
from pathlib import Path

import datasets

from rnn_hf.training import DataArguments, exit_on_user_error
from rnn_hf.training.cli import check_rnn_checkpoint, labels_per_class, non_negative_int
from rnn_hf.training.finetuning import (
    MIN_PER_CLASS_FOR_VALIDATION,
    default_learning_rate,
    load_finetuning_data,
)
from rnn_hf.training.label_efficiency import (
    FUSIONS,
    LINEAR_MODELS,
    SELF_TRAINING_QUOTAS,
    SELF_TRAINING_STOPS,
    baseline_method,
    feature_methods,
    finetune_method,
    label_efficiency,
    pretraining_line,
    text_study_method_lines,
    tune_learning_rate,
    unseen_by_every_checkpoint,
)

LEGENDS = {"scratch": "RNN from scratch", "clm": "pretrained causal LM", "mlm": "pretrained masked LM",
           "sa": "pretrained sequence autoencoder", "bow": "pretrained document encoder (bag of words)"}  # fmt: skip
CHECKPOINTS = {"clm": "causal-LM checkpoint (scripts/pretrain.py)", "mlm": "masked-LM checkpoint (scripts/pretrain.py)",
               "sa": "sequence-autoencoder checkpoint (pretrain.py --objective seq_autoencoder): its encoder starts "
               "the classifier", "bow": "document-encoder checkpoint (pretrain.py --objective bag_of_words)"}  # fmt: skip


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    for name, text in CHECKPOINTS.items():
        parser.add_argument(f"--{name}_checkpoint", help=text)
    parser.add_argument("--scratch_checkpoint", help="config and tokenizer of the scratch network (default: the "
                        "first checkpoint given, in the order above)")  # fmt: skip
    parser.add_argument("--task", default="single_label_classification",
                        choices=["single_label_classification", "regression"])  # fmt: skip
    parser.add_argument("--train_file", help="labeled documents (default: BBC News, pretraining's split)")
    parser.add_argument("--test_file", help="held-out labeled documents (default: pretraining's test split)")
    parser.add_argument("--text_column", default="text")
    parser.add_argument("--label_column", default="label")
    parser.add_argument("--num_labels_list", nargs="+", type=labels_per_class,
                        help="N or 'all' (default: 5 10 25 50 100 all; --quick: 2 4)")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, help="default: 0 1 2; --quick: 0")
    parser.add_argument("--max_seq_length", type=int, help="default: finetune's 512; --quick: 64")
    parser.add_argument("--num_train_epochs", type=int, help="default: the recipe's; --quick: 1")
    parser.add_argument("--per_device_train_batch_size", type=int, help="default: the recipe's 8 (a GPU may want a "
                        "larger one: another recipe, recorded with each run)")  # fmt: skip
    parser.add_argument("--validation_fraction", type=float, help="labeled share held out for early stopping "
                        "(default: finetune's, 0.2 from 25 labels per class)")  # fmt: skip
    parser.add_argument("--classifier_bptt", type=int, help="read documents in chunks of this many tokens, "
                        "the state carried (ULMFiT's BPT3C: raise --max_seq_length for whole documents)")  # fmt: skip
    parser.add_argument("--classifier_grad_length", type=int, help="with --classifier_bptt: gradients through "
                        "the last N tokens' chunks only")  # fmt: skip
    parser.add_argument("--features", nargs="?", const="also", choices=["also", "only"], help="each pretrained "
                        "network as a fixed feature extractor too (or `only`: no fine-tuning): its pooled states "
                        "+ logistic regression")  # fmt: skip
    parser.add_argument("--self_training", nargs="?", const="predicted", choices=SELF_TRAINING_QUOTAS, help="with "
                        "--features: each also self-trained on the unlabeled pool (pseudo-labels' class quota), TF-IDF too")  # fmt: skip
    parser.add_argument("--self_training_stop", default="rounds", choices=SELF_TRAINING_STOPS, help="self-training "
                        "runs all its rounds, or stops at the first that classifies the labeled documents worse")  # fmt: skip
    parser.add_argument("--with_tfidf", nargs="?", const="equal", choices=FUSIONS, help="with --features: each "
                        "network's features beside TF-IDF too, a logistic regression on each, probabilities averaged "
                        "(what the network adds): equal weights, or `cv`, cross-validated on the labels")  # fmt: skip
    parser.add_argument("--linear_model", default="default", choices=LINEAR_MODELS, help="the linear models' "
                        "strength (TF-IDF's, fixed features'): scikit-learn's default, or cross-validated on the "
                        "N labels")  # fmt: skip
    parser.add_argument("--learning_rates", nargs="+", type=float, help="tune each network's peak rate over these")  # fmt: skip
    parser.add_argument("--tune_num_labels", type=int, default=100, help="labels per class of tuning runs")
    parser.add_argument("--work_dir", default="runs/label_efficiency", help="results.jsonl, temporary models")
    parser.add_argument("--output_dir", default="runs/label_efficiency", help="where the .md and .png go")
    parser.add_argument("--quick", action="store_true", help="a smoke test: N in 2 4, 1 seed, 1 epoch, 64 tokens")  # fmt: skip
    parser.add_argument("--report_only", action="store_true", help="run nothing: report the recorded runs")
    args = parser.parse_args(argv)
    if all(getattr(args, f"{name}_checkpoint") is None for name in CHECKPOINTS):
        parser.error(f"give at least one of {', '.join(f'--{name}_checkpoint' for name in CHECKPOINTS)}")
    quick = {"num_labels_list": ["2", "4"], "seeds": [0], "max_seq_length": 64, "num_train_epochs": 1}
    full = {"num_labels_list": ["5", "10", "25", "50", "100", "all"], "seeds": [0, 1, 2]}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.self_training and (not args.features or args.task == "regression"):
        parser.error("--self_training needs --features and a classification task")
    if args.self_training_stop != "rounds" and not args.self_training:
        parser.error("--self_training_stop needs --self_training")
    if args.with_tfidf and not args.features:
        parser.error("--with_tfidf needs --features")  # the features are what it puts beside TF-IDF
    if args.learning_rates and args.tune_num_labels < MIN_PER_CLASS_FOR_VALIDATION:
        parser.error(f"--tune_num_labels {args.tune_num_labels} leaves no validation split to tune on: use at "
                     f"least {MIN_PER_CLASS_FOR_VALIDATION}")  # fmt: skip
    return args


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    datasets.disable_progress_bars()  # the run bar is the one progress bar
    checkpoints = {name: check_rnn_checkpoint(getattr(args, f"{name}_checkpoint"), f"--{name}_checkpoint")
                   for name in CHECKPOINTS if getattr(args, f"{name}_checkpoint")}  # fmt: skip
    checkpoints = {"scratch": (check_rnn_checkpoint(args.scratch_checkpoint, "--scratch_checkpoint")
                               if args.scratch_checkpoint else next(iter(checkpoints.values()))), **checkpoints}  # fmt: skip
    data_args = DataArguments(task=args.task, train_file=args.train_file, test_file=args.test_file,
                              text_column=args.text_column, label_column=args.label_column)  # fmt: skip
    # Every method sees the same labeled pool and test documents, none of which any checkpoint pretrained on.
    data = load_finetuning_data(data_args, checkpoints["scratch"])
    data = unseen_by_every_checkpoint(data, list(checkpoints.values()), refuse=args.test_file is not None)
    regression = args.task == "regression"
    work_dir = Path(args.work_dir)
    training = {k: getattr(args, k) for k in ("max_seq_length", "num_train_epochs", "classifier_bptt",
                                              "classifier_grad_length", "validation_fraction",
                                              "per_device_train_batch_size")
                if getattr(args, k) is not None}  # fmt: skip

    def network(name: str, learning_rate: float) -> object:
        return finetune_method(name, LEGENDS[name], checkpoints[name], data, work_dir, args.task,
                               from_scratch=name == "scratch", learning_rate=learning_rate, **training)  # fmt: skip

    metric = "rmse" if regression else "accuracy"
    methods, tuning_lines, tuning_runs = [baseline_method(data, args.task, args.linear_model, quota,
                                                          args.self_training_stop)
                                          for quota in dict.fromkeys([None, args.self_training])], [], []  # fmt: skip
    for name in checkpoints if args.features != "only" else ():
        learning_rate = default_learning_rate(from_scratch=name == "scratch")
        if args.learning_rates:
            learning_rate, scores = tune_learning_rate(lambda lr, name=name: network(name, lr), args.learning_rates,
                                                       work_dir, str(args.tune_num_labels), args.seeds[0], metric,
                                                       args.report_only)  # fmt: skip
            cells = [f"**{r[f'best_validation_{metric}']:.4g}**" if lr == learning_rate else
                     f"{r[f'best_validation_{metric}']:.4g}" for lr, r in scores.items()]  # fmt: skip
            tuning_lines.append(f"| {LEGENDS[name]} | " + " | ".join(cells) + " |")
            tuning_runs += [r for lr, r in scores.items() if lr != learning_rate]
        methods.append(network(name, learning_rate))
    fusion = args.with_tfidf or "equal"  # how the states sit beside TF-IDF, when they do
    if args.features:  # "scratch": random weights' features, the control
        methods += feature_methods(checkpoints, LEGENDS, data, args.task, args.max_seq_length or
                                   DataArguments.max_seq_length, args.classifier_bptt, args.self_training,
                                   bool(args.with_tfidf), args.linear_model, work_dir, fusion, args.self_training_stop)  # fmt: skip

    per_class = not regression
    all_size = len(data.pool) / len(set(data.pool["label"])) if per_class else len(data.pool)
    intro = [
        f"Test {'RMSE' if regression else 'accuracy'} against the number of labeled training documents"
        + (" per class" if per_class else "") + f", mean ± std over seeds {', '.join(map(str, args.seeds))}. "
        f"Data: {data.description}",
        "",
        *text_study_method_lines(methods[0].legend, checkpoints["scratch"], args.features != "only",
                                 args.validation_fraction, bool(args.features), args.self_training, args.linear_model,
                                 bool(args.with_tfidf), fusion, args.self_training_stop),
    ]  # fmt: skip
    intro += [line for name in CHECKPOINTS if name in checkpoints
              for line in [pretraining_line(LEGENDS[name], checkpoints[name])] if line]  # fmt: skip
    if tuning_lines:
        intro += ["", "## Learning rates", "",
                  f"Each network's peak learning rate is the one with the best validation {metric} with "
                  f"{args.tune_num_labels} labels per class, seed {args.seeds[0]} (validation: 20% of those labels; "
                  "the test documents play no part); the chosen one in bold, used at every N.", "",
                  "| method | " + " | ".join(f"lr {lr:g}" for lr in args.learning_rates) + " |",
                  "|---|" + "---|" * len(args.learning_rates), *tuning_lines]  # fmt: skip
    elif args.features != "only":  # with fixed features alone no network trains
        intro += ["", "## Learning rates", "", "The recipe's defaults: 5e-3 pretrained, 1e-3 from scratch (not tuned: "
                  "see `--learning_rates`)."]  # fmt: skip
    if args.quick:
        intro += ["", "**Quick mode** (a smoke test: 1 seed, 1 epoch, 64 tokens): these numbers mean nothing."]  # fmt: skip
    return label_efficiency(
        methods, args.num_labels_list, args.seeds, work_dir, args.output_dir,
        metrics=("rmse", "mae", "pearson") if regression else ("accuracy", "macro_f1"),
        intro=intro, all_size=all_size, report_only=args.report_only, extra_runs=tuning_runs,
        x_label="labeled training documents" + (" per class" if per_class else ""),
        command="python scripts/label_efficiency.py " + shlex.join(argv),
        test_labels=None if regression else data.test["label"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
