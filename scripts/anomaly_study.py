"""Anomaly detection: the EncDec-AD reconstruction autoencoder against an isolation forest, on labelled real data.

- KDD-TSAD 135 (a heart-rate series): both detectors fit on windows of its anomaly-free start; every test step is
  scored (the largest score of the windows that cover it); AUROC and best F1 per time step, and the F1 at a
  threshold set on held-out normal steps (the highest score there).
- A UCR set with one class normal and the others anomalous (`one_class_split`): both fit on normal training
  series; a threshold is chosen on the labelled validation split (best F1 there) and applied to the test split.

The autoencoder's error model (EncDec-AD's Gaussian) is fitted on normal data it did not train on. Writes
anomaly_detection.md and anomaly_detection.png.

    python scripts/anomaly_study.py --output_dir docs/results
"""

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch
from sklearn.metrics import f1_score
from transformers.utils import logging as hf_logging

from rnn_hf.data.series import load_kdd_tsad_135, one_class_split, window_scores_to_points, windows
from rnn_hf.hub import hardware
from rnn_hf.training import exit_on_user_error
from rnn_hf.training.series import (
    SeriesModelArguments,
    pretrain_autoencoder,
    reconstruction_errors,
    series_tensor,
    step_scores_to_points,
    training_arguments,
)
from rnn_hf.training.series_baselines import auroc, best_f1, isolation_forest_scores

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--window", type=int, default=64, help="window length on KDD-TSAD 135")
parser.add_argument("--ucr_set", default="GunPoint")
parser.add_argument("--normal_class", default="1")
parser.add_argument("--max_steps", type=int, default=600, help="optimizer steps per autoencoder")
parser.add_argument("--hidden_size", type=int, default=64)
parser.add_argument("--learning_rate", type=float, default=3e-3)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument(
    "--output_dir", default="runs/anomaly", help="where the report goes (docs/results for make)"
)
args = parser.parse_args()
if args.window < 2:
    parser.error(f"--window must be at least 2 (each step reads the value before it), got {args.window}")
hf_logging.set_verbosity_error()
started = time.time()
torch.manual_seed(args.seed)
model_args = SeriesModelArguments(hidden_size=args.hidden_size, scaling=None, dropout=0.0)
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)


def train_autoencoder(values: torch.Tensor, run: str):
    training = training_arguments(str(output_dir / run), args.max_steps, args.learning_rate, 32, args.seed)
    return pretrain_autoencoder(values, model_args, training)


def fit_errors(model, normal_values: torch.Tensor, teacher_forcing: bool) -> None:
    errors, _ = reconstruction_errors(model, normal_values, teacher_forcing=teacher_forcing)
    model.fit_error_distribution(errors)


# the autoencoder scores two ways: its decoder free-running (EncDec-AD's inference) or reading the true previous
# values (teacher-forced: each error is a one-step error, local to where the series departs)
SCORINGS = {"free-running decoder": False, "teacher-forced decoder": True}


@exit_on_user_error  # an unknown set or class, a window longer than a series: one line, status 2, before training
def load_data():
    series = load_kdd_tsad_135()
    mean, deviation = series.train.mean(), series.train.std()
    train, test = (
        (series.train - mean) / deviation,
        (series.test - mean) / deviation,
    )  # z-scores of the normal part
    # the autoencoder trains on the first 80% of the normal part and fits its error model on the next 10%; the last
    # 10%, held out from both, sets the threshold (there are no labelled anomalies to pick it on)
    split, split2 = int(0.8 * len(train)), int(0.9 * len(train))
    parts = {name: torch.tensor(windows(values, args.window, 1))[:, :, None]  # (N, W, 1)
             for name, values in (("fit", train[:split]), ("error model", train[split:split2]),
                                  ("threshold", train[split2:]), ("test", test))}  # fmt: skip
    one_class = one_class_split(args.ucr_set, args.normal_class, args.seed, validation_fraction=0.3)
    return series, train, test, split, split2, parts, one_class


rows = []
series, train, test, split, split2, parts, split_sets = load_data()
# ---- KDD-TSAD 135: one long series, windows
print(
    f"KDD-TSAD 135: {len(parts['fit'])} training windows, {len(parts['test'])} test windows of {args.window}"
)
autoencoder = train_autoencoder(parts["fit"], "kdd")
point_scores = {}  # method: (scores of the threshold part's steps, of the test steps)
for scoring, teacher_forcing in SCORINGS.items():
    fit_errors(autoencoder, parts["error model"], teacher_forcing)
    point_scores[f"EncDec-AD autoencoder, {scoring} (ours)"] = [
        step_scores_to_points(reconstruction_errors(autoencoder, parts[name], teacher_forcing=teacher_forcing)[1]
                              .numpy(), length, args.window, 1)
        for name, length in (("threshold", len(train) - split2), ("test", len(test)))]  # fmt: skip
forests = isolation_forest_scores(windows(train[:split2], args.window, 1),
                                  [parts[name][:, :, 0].numpy() for name in ("threshold", "test")], args.seed)  # fmt: skip
point_scores["IsolationForest on windows"] = [window_scores_to_points(forest, length, args.window, 1) for forest,
                                              length in zip(forests, (len(train) - split2, len(test)), strict=True)]  # fmt: skip
for method, (normal_points, points) in point_scores.items():
    f1, _ = best_f1(points, series.test_labels)
    rows.append({"data": series.name, "method": method, "auroc": auroc(points, series.test_labels), "best_f1": f1,
                 "f1_at_validation_threshold": float(f1_score(series.test_labels, points > normal_points.max()))})  # fmt: skip
point_scores = {method: points for method, (_, points) in point_scores.items()}

# ---- a UCR set, one class normal
normal, validation, test_set = (series_tensor(s) for s in split_sets[:3])
half = max(1, len(normal) // 4)  # a quarter of the normal series fits the error model
autoencoder_ucr = train_autoencoder(normal[half:], "ucr")
validation_labels = np.asarray(split_sets.validation["is_anomaly"])
flat = {name: values[:, :, 0].numpy() for name, values in (("normal", normal), ("validation", validation),
                                                              ("test", test_set))}  # fmt: skip
ucr_scores = {}
for scoring, teacher_forcing in SCORINGS.items():
    fit_errors(autoencoder_ucr, normal[:half], teacher_forcing)
    ucr_scores[f"EncDec-AD autoencoder, {scoring} (ours)"] = [
        reconstruction_errors(autoencoder_ucr, v, teacher_forcing=teacher_forcing)[1].mean(1).numpy()
        for v in (validation, test_set)
    ]
ucr_scores["IsolationForest on series"] = isolation_forest_scores(flat["normal"], [flat["validation"], flat["test"]],
                                                                 args.seed)  # fmt: skip
for method, (validation_scores, test_scores) in ucr_scores.items():
    _, threshold = best_f1(validation_scores, validation_labels)
    f1, _ = best_f1(test_scores, split_sets.test_labels)
    rows.append({"data": f"{args.ucr_set} (class {args.normal_class} normal)", "method": method,
                 "auroc": auroc(test_scores, split_sets.test_labels), "best_f1": f1,
                 "f1_at_validation_threshold": float(f1_score(split_sets.test_labels, test_scores >= threshold))})  # fmt: skip

# ---- report
(output_dir / "anomaly_detection.json").write_text(json.dumps(rows, indent=2))
steps = np.arange(len(test)) + series.test_start
anomalous = np.flatnonzero(series.test_labels)
panels = [(series.test, "heart rate (test part)")] + [(points, f"{method}: score")
                                                      for method, points in point_scores.items()]  # fmt: skip
figure, axes = plt.subplots(len(panels), 1, figsize=(11, 2.4 * len(panels)), sharex=True)
for axis, (values, title) in zip(axes, panels, strict=True):
    axis.plot(steps, values, linewidth=0.7)
    axis.axvspan(steps[anomalous[0]], steps[anomalous[-1]], color="red", alpha=0.3, label="labelled anomaly")
    axis.set_title(title, fontsize=9)
axes[0].legend(loc="upper left", fontsize=8)
axes[-1].set_xlabel("time step of KDD-TSAD 135")
figure.tight_layout()
figure.savefig(output_dir / "anomaly_detection.png", dpi=110)
table = ["| data | method | AUROC | best F1 | F1 at the validation threshold |", "|---|---|---|---|---|"]
for row in rows:
    at_threshold = (
        "–" if row["f1_at_validation_threshold"] is None else f"{row['f1_at_validation_threshold']:.3f}"
    )
    table.append(
        f"| {row['data']} | {row['method']} | {row['auroc']:.3f} | {row['best_f1']:.3f} | {at_threshold} |"
    )
lines = [
    "# Anomaly detection: reconstruction autoencoder vs isolation forest", "",
    f"KDD-TSAD 135: {len(series.train)} anomaly-free steps to fit on (z-scored with their mean and deviation), "
    f"{len(series.test)} test steps of which {int(series.test_labels.sum())} are the labelled anomaly; windows of "
    f"{args.window} steps, stride 1; each test step gets the largest score of the windows covering it (the "
    "autoencoder's score is per step: EncDec-AD's Mahalanobis distance of the step's reconstruction error under a "
    "Gaussian fitted on the normal part's second-to-last 10%, which the autoencoder did not train on; one "
    "autoencoder, scored with its decoder free-running, as EncDec-AD does, and teacher-forced). The autoencoder "
    "trains on the first 80% of the normal part, the isolation forest on the first 90%; the last 10%, which neither "
    "saw, sets each method's threshold at its highest score there (no labelled anomaly to choose it on: anomalous "
    "means scoring above every held-out normal step). "
    f"{args.ucr_set}: class {args.normal_class} is normal; the autoencoder trains on three quarters of the normal "
    "training series and fits its error model on the rest; a series' score is the mean of its step scores; the "
    "threshold is the best-F1 one on a labelled validation split of the training series. AUROC and best F1 need "
    "no threshold (best F1 is an upper bound).", "",
    *table, "", "![scores over the test series](anomaly_detection.png)", "", "## How this was measured", "",
    f"- Command: `python scripts/anomaly_study.py {' '.join(sys.argv[1:])}`",
    f"- Date: {datetime.date.today().isoformat()}; hardware: {hardware()}",
    f"- Autoencoder: {model_args}, {args.max_steps} steps, lr {args.learning_rate}, batch 32, seed {args.seed}",
    f"- Wall time: {(time.time() - started) / 60:.1f} min.", "",
]  # fmt: skip
(output_dir / "anomaly_detection.md").write_text("\n".join(lines))
print("\n".join(table))
print(f"wrote {output_dir / 'anomaly_detection.md'} and {output_dir / 'anomaly_detection.png'}")
