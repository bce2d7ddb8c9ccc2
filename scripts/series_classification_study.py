"""Few-label series classification: an RNN pretrained on the unlabeled training series (by forecasting, or by
reconstruction) against the same RNN from scratch, ROCKET and 1-NN DTW, at 1, 2, 5 and all labels per class.

Per UCR/UEA set: the forecaster and the autoencoder pretrain on every series of the archive's train split without
their labels; each seed draws the labeled series from that split; every method is scored on the archive's test
split. Runs are recorded and resumed as in the text study (`rnn_hf.training.label_efficiency`). Writes
series_classification_<set>.md and .png per set.

    python scripts/series_classification_study.py --datasets GunPoint ArrowHead ItalyPowerDemand --output_dir docs/results
"""

import argparse
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from transformers.utils import logging as hf_logging

from rnn_hf.data import DataError
from rnn_hf.data.series import GENERAL_UCR_SETS, draw_labeled, load_ucr
from rnn_hf.training import exit_on_user_error
from rnn_hf.training.cli import labels_per_class, non_negative_int
from rnn_hf.training.label_efficiency import Method, label_efficiency, linear_model_scores
from rnn_hf.training.series import (
    SeriesModelArguments,
    classifier_from,
    finetune_classifier,
    pooled_series_features,
    predict_classes,
    pretrained_backbones,
    series_tensor,
    training_arguments,
)
from rnn_hf.training.series_baselines import knn_dtw_accuracy, one_length, rocket_classifier_accuracy

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--datasets", nargs="+", default=["GunPoint", "ArrowHead", "ItalyPowerDemand"])
parser.add_argument("--num_labels_list", nargs="+", type=labels_per_class, default=["1", "2", "5", "all"])
parser.add_argument("--seeds", nargs="+", type=non_negative_int, default=[0, 1, 2])
parser.add_argument("--pretraining_steps", type=int, default=600)
parser.add_argument("--general_pretraining_steps", type=int, default=0, help="first pretrain this long on "
                    "rnn_hf.data.series.general_series_windows (every other offline series; 0: no general stage)")  # fmt: skip
parser.add_argument("--finetuning_steps", type=int, default=150)
parser.add_argument("--learning_rate", type=float, default=3e-3)
parser.add_argument("--backbone_lr_ratio", type=float, default=1.0, help="the pretrained backbones fine-tune at this "
                    "x --learning_rate (0: fixed, the head alone learns)")  # fmt: skip
parser.add_argument("--objective_weight", type=float, default=0.0, help="the pretrained RNNs keep their pretraining "
                    "loss on the unlabeled training series at this weight while they fine-tune; >0 adds scratch "
                    "with the reconstruction loss kept")  # fmt: skip
parser.add_argument("--features", nargs="?", const="also", choices=["also", "only"], help="each backbone (random "
                    "weights for scratch) also, or only, as fixed features + logistic regression")  # fmt: skip
parser.add_argument("--hidden_size", type=int, default=64)
parser.add_argument("--no_baselines", action="store_true", help="the RNNs alone (no ROCKET, no 1-NN DTW)")
parser.add_argument("--equal_length", action="store_true", help="equal-length sets (for ROCKET)")
parser.add_argument("--work_dir", default="runs/series_classification", help="pretrained models and runs")
parser.add_argument("--output_dir", default="runs/series_classification", help="docs/results for make")
args = parser.parse_args()
if args.general_pretraining_steps < 0 or args.pretraining_steps < (0 if args.general_pretraining_steps else 1):  # fmt: skip
    parser.error("--pretraining_steps must be at least 1 (0 only after --general_pretraining_steps)")
if not 0 <= args.backbone_lr_ratio <= 1 or args.objective_weight < 0:
    parser.error("--backbone_lr_ratio must lie in [0, 1], --objective_weight must be at least 0")
if args.objective_weight and (args.backbone_lr_ratio == 0 or args.features == "only"):
    parser.error("--objective_weight needs backbones that fine-tune (--backbone_lr_ratio > 0, no --features only)")  # fmt: skip
hf_logging.set_verbosity_error()
warnings.filterwarnings("ignore", message=".*unsafe cast.*")
model_args = SeriesModelArguments(hidden_size=args.hidden_size)
command = "python scripts/series_classification_study.py " + " ".join(sys.argv[1:])


def run_study(name: str) -> None:
    ucr = load_ucr(name, equal_length=args.equal_length)
    train, test = ucr["train"], ucr["test"]
    if not args.no_baselines and not one_length(train, test):  # before training
        raise DataError(f"the series of {name} differ in length, and ROCKET needs one: pass --equal_length")
    num_classes = train.features["label"].num_classes
    train_values, test_values = series_tensor(train), series_tensor(test)
    test_labels = np.asarray(test["label"])
    work_dir = Path(args.work_dir) / (name + ("_equal_length" if args.equal_length else ""))
    exclude = {name} & set(GENERAL_UCR_SETS)  # the general stage must not see the set's test split
    inits = {"scratch": None, **pretrained_backbones(train_values, model_args, work_dir, args.pretraining_steps,
                                                     args.learning_rate, args.general_pretraining_steps, exclude)}  # fmt: skip

    def labeled(num_labels: str, seed: int):
        return draw_labeled(train, None if num_labels == "all" else int(num_labels), seed)

    def scores(predictions: np.ndarray) -> dict:
        return {"accuracy": float((predictions == test_labels).mean()),
                "macro_f1": float(f1_score(test_labels, predictions, average="macro"))}  # fmt: skip

    def rnn_method(init: str):
        def run(num_labels: str, seed: int) -> dict:
            rows = labeled(num_labels, seed)
            torch.manual_seed(seed)
            training = training_arguments(str(work_dir / "finetune"), args.finetuning_steps, args.learning_rate, 16,
                                          seed)  # fmt: skip
            ratio = 1.0 if init.startswith("scratch") else args.backbone_lr_ratio
            weight = 0.0 if init == "scratch" else args.objective_weight
            autoencoder = inits["reconstruct"]  # scratch_objective: a random one, its loss kept
            pretrained = inits[init] if init in inits else type(autoencoder)(autoencoder.config)
            model = finetune_classifier(pretrained, model_args, series_tensor(rows), np.asarray(rows["label"]),
                                        num_classes, training, backbone_lr_ratio=ratio, unlabeled=train_values,
                                        objective_weight=weight)  # fmt: skip
            return scores(predict_classes(model, test_values))

        return run

    def feature_method(init: str):
        """The backbone's pooled states (fixed; random weights, seed 0, for scratch), standardized, then a logistic
        regression (scikit-learn defaults) on the labeled series; on the GPU where there is one."""
        torch.manual_seed(0)
        model = classifier_from(inits[init], model_args, train_values.size(2), num_classes)
        model.to("cuda" if torch.cuda.is_available() else "cpu")
        test_features = pooled_series_features(model, test_values)

        def run(num_labels: str, seed: int) -> dict:
            rows = labeled(num_labels, seed)
            train = pooled_series_features(model, series_tensor(rows))
            return linear_model_scores(train, rows["label"], test_features, test_labels,
                                       "single_label_classification", standardize=True)  # fmt: skip

        return run

    def baseline(function):
        def run(num_labels: str, seed: int) -> dict:
            rows = labeled(num_labels, seed)
            seeded = (seed,) if function is rocket_classifier_accuracy else ()
            return {"accuracy": function(rows, test, *seeded)}

        return run

    settings = {"model": asdict(model_args), "pretraining_steps": args.pretraining_steps,
                "finetuning_steps": args.finetuning_steps, "learning_rate": args.learning_rate}  # fmt: skip
    kept = {"objective_weight": args.objective_weight} if args.objective_weight else {}
    general = {"general_pretraining_steps": args.general_pretraining_steps} if args.general_pretraining_steps else {}  # fmt: skip
    pretrained_settings = {**settings, "set": name, **kept, **general}
    if args.backbone_lr_ratio != 1:
        pretrained_settings["backbone_lr_ratio"] = args.backbone_lr_ratio
    methods = [
        Method("rocket", "ROCKET (aeon, 10,000 kernels)", baseline(rocket_classifier_accuracy), {"set": name}),
        Method("knn_dtw", "1-NN DTW (aeon)", baseline(knn_dtw_accuracy), {"set": name}),
        Method("scratch", "RNN from scratch", rnn_method("scratch"), {**settings, "set": name}),
        Method("forecast", "RNN pretrained by forecasting" + ", loss kept" * bool(kept), rnn_method("forecast"),
               pretrained_settings),  # fmt: skip
        Method("reconstruct", "RNN pretrained by reconstruction" + ", loss kept" * bool(kept),
               rnn_method("reconstruct"), pretrained_settings),  # fmt: skip
    ][2 * args.no_baselines : None if args.features != "only" else 2] + [
        Method("scratch_objective", "RNN from scratch, reconstruction loss kept", rnn_method("scratch_objective"),
               {**settings, "set": name, **kept})] * bool(kept)  # fmt: skip
    legends = {"scratch": "RNN, random weights", "forecast": "RNN pretrained by forecasting",
               "reconstruct": "RNN pretrained by reconstruction"}  # fmt: skip
    methods += [Method(f"{init}_features", f"{legend}, fixed features + logistic regression", feature_method(init),
                       {"model": asdict(model_args), "set": name, "features": True}
                       | ({} if init == "scratch" else {"pretraining_steps": args.pretraining_steps} | general))
                for init, legend in legends.items() if args.features]  # fmt: skip
    features_text = (" Fixed features: the backbone's pooled states (last, max, mean), standardized, then a "
                     "logistic regression (scikit-learn defaults) on the labeled series.") if args.features else ""  # fmt: skip
    backbone_rate = {1: "every weight at that rate", 0: "the pretrained backbones fixed, the head alone learns"}.get(
        args.backbone_lr_ratio, f"the pretrained backbones at {args.backbone_lr_ratio} x that rate") + (
        f"; each pretrained network keeps its pretraining loss, and one more network from scratch a reconstruction "
        f"loss, on 16 unlabeled training series drawn at each step, at weight {args.objective_weight} beside the "
        "classification loss: WithPretrainingObjective" if kept else "")  # fmt: skip
    label_efficiency(
        methods,
        args.num_labels_list,
        args.seeds,
        work_dir=work_dir,
        output_dir=args.output_dir,
        metrics=("accuracy",),
        title=f"Few-label series classification: {name}",
        intro=[
            f"Test accuracy (%, mean ± std over seeds) on the {len(test)} series of {name}'s test split, "
            f"{num_classes} classes, against the number of labeled training series per class (drawn from its "
            f"{len(train)} training series). The RNNs ({model_args}) pretrain"
            + (
                f" for {args.general_pretraining_steps} steps on 128-step windows of every other series that "
                f"installs offline (general_series_windows, {name} left out), then"
                if general
                else ""
            )
            + f" on the {len(train)} training series "
            f"without labels ({args.pretraining_steps} steps: forecasting = next-value likelihood, "
            f"reconstruction = EncDec-AD), then fine-tune for {args.finetuning_steps} steps (lr "
            f"{args.learning_rate}, batch 16; {backbone_rate})."
            + ("" if args.no_baselines else " ROCKET and 1-NN DTW train on the same labeled series.")
            + features_text
            + (" Series: the archive's equal-length version of the set." if args.equal_length else "")
        ],
        x_label="labeled training series per class",
        all_size=len(train) / num_classes,
        command=command,
        report_name=f"series_classification_{name}",
        test_labels=test_labels.tolist(),
    )


exit_on_user_error(lambda: [run_study(name) for name in args.datasets])()  # bad input: one line, status 2
