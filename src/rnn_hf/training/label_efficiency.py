"""Label-efficiency studies as a library: a score against the number of labels, per method, over seeds.

    from rnn_hf.training.label_efficiency import Method, label_efficiency
    report = label_efficiency([tfidf, scratch, pretrained], ["10", "100", "all"], seeds=[0, 1, 2],
                              work_dir="runs/le", output_dir="runs/le")

A `Method` is a name, the settings it runs under and a function `(num_labels, seed) -> metrics`. Every run is
appended to `<work_dir>/results.jsonl` with its settings: a rerun skips the runs already recorded under the same
settings (an interrupted study resumes; a new checkpoint for one method reruns only that method) and leaves those
made under other settings out of the report. The report is `<output_dir>/label_efficiency.md` (mean ± std tables
of each metric, command, date, hardware, wall time) and `label_efficiency.png` (the first metric, ± std bands).

`finetune_method`, `feature_method` and `baseline_method` build the methods of a text study: an rnn_hf checkpoint
fine-tuned with `finetune` (pretrained or from scratch), the same checkpoint as a fixed feature extractor under a
linear model, and TF-IDF + a linear model, the baseline users try first.
"""

import dataclasses
import datetime
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import scipy.sparse
import torch
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm
from transformers import AutoTokenizer, set_seed

from ..data import DocumentSplit
from ..hub import hardware
from .cli import UserError
from .finetuning import (
    MIN_PER_CLASS_FOR_VALIDATION,
    TASKS,
    DataArguments,
    FinetuningData,
    ModelArguments,
    finetune,
    load_model,
    recipe_training_arguments,
    regression_metrics,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LOWER_IS_BETTER = {"rmse", "mae", "loss"}
NOT_PRETRAINED = (
    "scratch",
    "baseline",
    "tfidf",
    "tfidf_self_training",
    "rocket",
    "knn_dtw",
    "scratch_features",
    "scratch_features_self_training",
    "scratch_features_tfidf",
    "scratch_features_tfidf_self_training",
    "scratch_objective",
)  # method names label_savings and paired_with_scratch leave out


def percent_scale(metric: str) -> int:
    """100 for a rate shown in % (accuracy, F1), 1 for an error or a correlation."""
    return 1 if metric in LOWER_IS_BETTER or metric in ("pearson", "spearman") else 100


@dataclass
class Method:
    name: str  # the key in results.jsonl
    legend: str  # the column and legend title
    run: Callable[[str, int], dict]  # (num_labels: "N" or "all", seed) -> metrics
    settings: dict = field(default_factory=dict)  # what the runs depend on: another value reruns them


class RunStore:
    """`results.jsonl`: one record per run, keyed by method, labels, seed and settings."""

    def __init__(self, path: Path):
        self.path = path
        self.records = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    @staticmethod
    def key(method: str, num_labels: str, seed: int, settings: dict) -> tuple:
        return method, num_labels, seed, json.dumps(settings, sort_keys=True)

    def find(self, method: str, num_labels: str, seed: int, settings: dict) -> dict | None:
        key = self.key(method, num_labels, seed, settings)
        return next((r for r in self.records if self.key(r["method"], r["num_labels"], r["seed"],
                                                         r.get("settings")) == key), None)  # fmt: skip

    def add(self, record: dict) -> None:
        self.records.append(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")


def run_once(store: RunStore, method: Method, num_labels: str, seed: int) -> dict:
    start = time.time()
    metrics = method.run(num_labels, seed)
    record = {"method": method.name, "num_labels": num_labels, "seed": seed, "wall_time_s": time.time() - start,
              **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str, type(None)))},
              "settings": method.settings}  # fmt: skip
    store.add(record)
    return record


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


def table_header(unit: str, methods: list[Method]) -> list[str]:
    """The first two lines of a report's Markdown table: the N column (`unit`), then one column per method."""
    return [f"| {unit} | " + " | ".join(m.legend for m in methods) + " |", "|---|" + "---|" * len(methods)]


def row_label(num_labels: str, all_size: float | None) -> str:
    """A table row's N: "all" with the size it stands for when known (`all (≈312)`)."""
    return f"all (≈{all_size:.0f})" if num_labels == "all" and all_size else num_labels


def markdown_table(table: dict, num_labels_list: list[str], methods: list[Method], num_seeds: int, scale: float,
                   all_size: float | None, unit: str) -> str:  # fmt: skip
    """Mean ± std per cell; a cell with fewer seeds than the others says how many (`n=1`)."""
    lines = table_header(unit, methods)
    for num_labels in num_labels_list:
        cells = []
        for method in methods:
            mean, std, count = table.get((method.name, num_labels), (None, None, 0))
            if mean is None:
                cells.append("–")
            elif count == 1 and num_seeds > 1:
                cells.append(f"{scale * mean:.1f} (n=1)" if scale == 100 else f"{mean:.3f} (n=1)")
            else:
                text = (
                    f"{scale * mean:.1f} ± {scale * std:.1f}" if scale == 100 else f"{mean:.3f} ± {std:.3f}"
                )
                cells.append(text + (f" (n={count})" if count < num_seeds else ""))
        lines.append(f"| {row_label(num_labels, all_size)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rounds_table(records: list[dict], num_labels_list: list[str], methods: list[Method], all_size: float | None,
                 unit: str) -> str:  # fmt: skip
    """The self-training rounds each of `methods` kept (their records' "self_training_rounds"): mean (fewest–most)
    over seeds per N; "–" where none was recorded."""
    lines = table_header(unit, methods)
    for num_labels in num_labels_list:
        cells = []
        for method in methods:
            rounds = [r["self_training_rounds"] for r in records if r["method"] == method.name
                      and r["num_labels"] == num_labels and "self_training_rounds" in r]  # fmt: skip
            cells.append(f"{np.mean(rounds):.1f} ({min(rounds)}–{max(rounds)})" if rounds else "–")
        lines.append(f"| {row_label(num_labels, all_size)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def label_savings(table: dict, num_labels_list: list[str], methods: list[Method], metric: str) -> list[str]:
    """Per pretrained method (any but `scratch` and the baseline): the fewest labels at which its mean reaches
    that of the network from scratch with the most labels."""
    counts = sorted(int(n) for n in num_labels_list if n != "all" and ("scratch", n) in table)
    if len([n for n in num_labels_list if n != "all"]) < 2 or not counts:  # one N: nothing to trade
        return []
    most, lower = str(counts[-1]), metric in LOWER_IS_BETTER
    target = table["scratch", most][0]
    sentences = []
    for method in (m for m in methods if m.name not in NOT_PRETRAINED):
        reached = [n for n in sorted(int(n) for n in num_labels_list if n != "all") if (method.name, str(n)) in table
                   and (table[method.name, str(n)][0] <= target if lower else table[method.name, str(n)][0] >= target)]  # fmt: skip
        if reached and reached[0] < int(most):
            sentences.append(f"- {method.legend}: {reached[0]} labels reach the network from scratch with {most} "
                             f"({metric} {table[method.name, str(reached[0])][0]:.4g} vs {target:.4g}), "
                             f"{int(most) / reached[0]:g}x fewer labels.")  # fmt: skip
        elif reached:  # level or ahead only with as many labels: no saving the studied numbers can show
            sentences.append(f"- {method.legend}: at {most} labels it reaches the network from scratch with {most} "
                             f"({metric} {table[method.name, most][0]:.4g} vs {target:.4g}), with fewer it does "
                             f"not: no saving measurable below {most}.")  # fmt: skip
        else:
            sentences.append(f"- {method.legend}: does not reach the network from scratch with {most} labels "
                             f"({metric} {target:.4g}) at any N up to {most}.")  # fmt: skip
    return sentences


def paired_with_scratch(records: list[dict], num_labels_list: list[str], methods: list[Method], metric: str,
                        reference: str = "scratch") -> dict:  # fmt: skip
    """Per pretrained method (as `label_savings`) and N: its `metric` minus the network from scratch's on the same
    seed (the same labeled draw), over the seeds both ran: `{(method, N): (mean, standard error, ahead, behind,
    seeds)}`, "ahead" meaning better (lower for `LOWER_IS_BETTER`); cells with fewer than 2 seeds are left out. A
    difference of means hides how much of the spread over seeds the draw explains; these pairs take it out.
    `reference`: another method to subtract instead (e.g. "tfidf", the baseline: then every other method is
    paired with it, the networks from scratch included)."""
    scores = {(r["method"], r["num_labels"], r["seed"]): r[metric] for r in records if metric in r}
    sign = -1 if metric in LOWER_IS_BETTER else 1
    table = {}
    compared = [m for m in methods
                if (m.name not in NOT_PRETRAINED if reference == "scratch" else m.name != reference)]  # fmt: skip
    for method in compared:
        for n in num_labels_list:
            differences = np.array([value - scores[reference, n, seed] for (name, m, seed), value in scores.items()
                                    if name == method.name and m == n and (reference, n, seed) in scores])  # fmt: skip
            if len(differences) >= 2:
                error = float(np.std(differences, ddof=1) / np.sqrt(len(differences)))
                ahead, behind = int((sign * differences > 0).sum()), int((sign * differences < 0).sum())
                table[method.name, n] = (float(differences.mean()), error, ahead, behind, len(differences))
    return table


def paired_json(table: dict) -> dict:
    """`paired_with_scratch`'s cells as `{method: {N: {"mean", "standard_error", "ahead", "behind", "count"}}}`."""
    differences = {name: {} for name, _ in table}
    for (name, n), (mean, error, ahead, behind, count) in table.items():
        differences[name][n] = {"mean": mean, "standard_error": error, "ahead": ahead, "behind": behind,
                                "count": count}  # fmt: skip
    return differences


def paired_table(
    table: dict, num_labels_list: list[str], methods: list[Method], scale: float, unit: str
) -> str:
    """Cells "mean ± standard error (ahead / behind of seeds)" of `paired_with_scratch`."""
    shown = [m for m in methods if any((m.name, n) in table for n in num_labels_list)]
    lines = table_header(unit, shown)
    digits = 1 if scale == 100 else 3
    for n in (n for n in num_labels_list if any((m.name, n) in table for m in shown)):
        cells = []
        for method in shown:
            if (method.name, n) not in table:
                cells.append("–")
                continue
            mean, error, ahead, behind, seeds = table[method.name, n]
            cells.append(f"{scale * mean:+.{digits}f} ± {scale * error:.{digits}f} "
                         f"({ahead} ahead, {behind} behind of {seeds})")  # fmt: skip
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def majority_class_scores(test_labels: list) -> dict[str, float]:
    """Accuracy and macro-F1 of always predicting the most frequent class of `test_labels`: the floor a classifier
    must beat (on an imbalanced test set, well above chance)."""
    labels = np.asarray(test_labels)
    values, counts = np.unique(labels, return_counts=True)
    predicted = np.full_like(labels, values[np.argmax(counts)])
    return {"accuracy": float(accuracy_score(labels, predicted)),
            "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0))}  # fmt: skip


def plot(table: dict, num_labels_list: list[str], methods: list[Method], metric: str, all_size: float | None,
         path: Path, x_label: str, floor: float | None = None) -> None:  # fmt: skip
    """The metric against labels (log axis), the mean with a ±std band per method; `floor` (e.g. the majority
    class's accuracy) as a dashed line."""
    x_of = {n: (all_size or 2 * max([int(m) for m in num_labels_list if m != "all"] or [1])) if n == "all"
            else float(n) for n in num_labels_list}  # fmt: skip
    scale = percent_scale(metric)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for method in methods:
        points = sorted(
            (x_of[n], *table[method.name, n][:2]) for n in num_labels_list if (method.name, n) in table
        )
        if points:
            x, mean, std = (np.array(column) for column in zip(*points, strict=True))
            axes.plot(x, scale * mean, marker="o", label=method.legend)
            axes.fill_between(x, scale * (mean - std), scale * (mean + std), alpha=0.2)
    if floor is not None:
        axes.axhline(scale * floor, color="gray", linestyle="--", linewidth=1, label="majority class")
    ticks = sorted(x_of.values())
    axes.set_xscale("log")
    axes.set_xticks(ticks)
    axes.set_xticklabels(
        [f"all\n(≈{x:.0f})" if n == "all" else f"{x:g}" for n, x in sorted(x_of.items(), key=lambda i: i[1])]
    )
    axes.minorticks_off()
    axes.set(xlabel=x_label, ylabel=f"test {metric}" + (" (%)" if scale == 100 else ""))
    axes.grid(alpha=0.3)
    # below the axes: a study's legends (a method and how it learns) are long and would cover the curves
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize="small")
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def label_efficiency(
    methods: list[Method],
    num_labels_list: list[str],
    seeds: list[int],
    work_dir: str | Path,
    output_dir: str | Path,
    metrics: tuple[str, ...] = ("accuracy", "macro_f1"),
    title: str = "Label efficiency",
    intro: list[str] | None = None,
    x_label: str = "labeled training documents per class",
    all_size: float | None = None,
    report_only: bool = False,
    command: str | None = None,
    extra_runs: list[dict] | None = None,
    report_name: str = "label_efficiency",
    test_labels: list | None = None,
) -> Path:
    """Run what `results.jsonl` lacks, then write the report; returns the path of the `.md` file.

    `all_size` is the x position of "all" (e.g. labeled documents per class in the whole pool); `extra_runs` are
    records that count towards the wall time without a cell (e.g. tuning runs); `test_labels` (classification)
    give the floor every table and the plot show: always predicting the test set's most frequent class. The report
    is written as `<output_dir>/<report_name>.md` and `.png`, its tables as `.json` (`{"scores": {metric: {method:
    {N: {"mean", "std", "count"}}}}, "methods": {name: legend}, "command", ...}`).
    """
    start = time.time()
    work_dir, output_dir = Path(work_dir), Path(output_dir)
    store = RunStore(work_dir / "results.jsonl")
    missing = [(method, n, seed) for n in num_labels_list for seed in seeds for method in methods
               if store.find(method.name, n, seed, method.settings) is None]  # fmt: skip
    if report_only:
        print(
            f"--report_only: {len(missing)} runs of this study are not recorded yet; reporting without them"
        )
        missing = []
    progress = tqdm(missing, desc="label efficiency", unit="run")
    for method, num_labels, seed in progress:
        progress.set_postfix_str(f"{method.name} N={num_labels} seed={seed}")
        run_once(store, method, num_labels, seed)

    order = sorted(num_labels_list, key=lambda n: float("inf") if n == "all" else int(n))
    records = [r for method in methods for n in order for seed in seeds
               if (r := store.find(method.name, n, seed, method.settings)) is not None]  # fmt: skip
    tables = {metric: summarize(records, order, [m.name for m in methods], metric) for metric in metrics}
    output_dir.mkdir(parents=True, exist_ok=True)
    floors = majority_class_scores(test_labels) if test_labels is not None else {}
    plot(tables[metrics[0]], order, methods, metrics[0], all_size, output_dir / f"{report_name}.png", x_label,
         floors.get(metrics[0]))  # fmt: skip
    total = sum(r["wall_time_s"] for r in records + (extra_runs or []))
    unit = "labels per class" if "per class" in x_label else "labels"
    lines = [f"# {title}", "", *(intro or [])]
    savings = label_savings(tables[metrics[0]], order, methods, metrics[0])
    if savings:
        lines += ["", f"## Labels saved by pretraining (mean {metrics[0]})", "", *savings]
    for metric in metrics:
        scale = percent_scale(metric)
        lines += ["", f"## {metric}" + (" (%)" if scale == 100 else ""), "",
                  markdown_table(tables[metric], order, methods, len(seeds), scale, all_size, unit)]  # fmt: skip
        if metric in floors:
            lines += ["", f"Floor: always predicting the test set's most frequent class scores "
                          f"{scale * floors[metric]:.1f}."]  # fmt: skip
    paired = paired_with_scratch(records, order, methods, metrics[0])
    if paired:
        scale = percent_scale(metrics[0])
        lines += ["", f"## Against the network from scratch, seed by seed ({metrics[0]})", "",
                  f"Each pretrained network's {metrics[0]} minus the network from scratch's on the same seed (the "
                  "same labeled examples): mean ± standard error over seeds, and on how many seeds it is ahead or "
                  "behind.", "", paired_table(paired, order, methods, scale, unit)]  # fmt: skip
    against_baselines = {}
    for baseline in (m for name in BASELINES for m in methods if m.name == name):
        # the plain baseline with every other method; the self-trained one with the networks
        compared = [m for m in methods if m.name not in BASELINES[: BASELINES.index(baseline.name)]]
        against = paired_with_scratch(records, order, compared, metrics[0], baseline.name)
        if not against:
            continue
        against_baselines[baseline.name] = against
        lines += ["", f"## Against {baseline.legend}, seed by seed ({metrics[0]})", "",
                  f"Each method's {metrics[0]} minus this baseline's on the same seed (the same labeled documents): "
                  "mean ± standard error over seeds, and on how many seeds it is ahead or behind.", "",
                  paired_table(against, order, compared, percent_scale(metrics[0]), unit)]  # fmt: skip
    stopped = [m for m in methods if m.settings.get("self_training_stop")]
    if stopped:
        lines += ["", "## Self-training rounds kept", "",
                  "Rounds of self-training each stopped method kept (of 5; fewer when its stop ended it): mean over "
                  "seeds (fewest–most).", "", rounds_table(records, order, stopped, all_size, unit)]  # fmt: skip
    lines += [
        "", f"![{metrics[0]} against labels]({report_name}.png)", "", "## How this was measured", "",
        *([f"- Command: `{command}`"] if command else []),
        f"- Date: {datetime.date.today().isoformat()}",
        f"- Hardware: {hardware()}",
        f"- Seeds: {', '.join(str(s) for s in seeds)}",
        f"- Wall time: {total / 60:.1f} min over {len(records) + len(extra_runs or [])} runs "
        f"({(time.time() - start) / 60:.1f} min in this invocation; runs recorded in `{store.path}`).", "",
    ]  # fmt: skip
    report = output_dir / f"{report_name}.md"
    report.write_text("\n".join(lines))
    scores = {metric: {method.name: {} for method in methods} for metric in metrics}
    for metric, table in tables.items():
        for (name, n), (mean, std, count) in table.items():
            scores[metric][name][n] = {"mean": mean, "std": std, "count": count}
    summary = {"title": title, "command": command, "seeds": seeds, "num_labels": order,
               "methods": {m.name: m.legend for m in methods}, "floor": floors, "scores": scores,
               "minus_scratch": {metrics[0]: paired_json(paired)}}  # fmt: skip
    for name, against in against_baselines.items():
        summary[f"minus_{name}"] = {metrics[0]: paired_json(against)}
    (output_dir / f"{report_name}.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {report}, {report_name}.png and {report_name}.json (the tables, for other scripts to read)")
    return report


def study_summary_lines(report: str | Path, num_labels: str | int, metric: str = "accuracy") -> list[str]:
    """Lines that quote a study's written tables (`label_efficiency`'s `.json`) at one number of labels: each
    method's mean ± std of `metric`, and the command that reproduces it (e.g. `make demo` quotes what a study beyond
    its budget reached)."""
    report, n = Path(report), str(num_labels)
    if not report.is_file():
        return [f"(no study report at {report})"]
    study = json.loads(report.read_text())
    rows = [
        (study["methods"][name], cells[n]) for name, cells in study["scores"][metric].items() if n in cells
    ]
    if not rows:
        return [f"(the study {report} has no runs at N={n}; it has N = {', '.join(study['num_labels'])})"]
    scale = percent_scale(metric)
    seeds = ", ".join(str(seed) for seed in study["seeds"])
    width = max(len(legend) for legend, _ in rows) + 2
    return [f"{study['title']} ({report.with_suffix('.md')}), N={n}, {metric}, seeds {seeds}:",
            *(f"  {legend:<{width}}{scale * cell['mean']:.1f} ± {scale * cell['std']:.1f}" for legend, cell in rows),
            f"  reproduce: {study['command']}"]  # fmt: skip


# ---- the methods of a text study


def study_data_args(
    task: str, num_labels: str, max_seq_length: int = DataArguments.max_seq_length, **settings
) -> DataArguments:
    """The `DataArguments` of one run with N labels ("all": the whole pool): per class for single-label tasks;
    `settings`: other `DataArguments` fields (e.g. `validation_fraction`)."""
    count = None if num_labels == "all" else int(num_labels)
    per_class = task == "single_label_classification"
    return DataArguments(task=task, max_seq_length=max_seq_length, num_labeled_per_class=count if per_class else None,
                         num_labeled=None if per_class else count, **settings)  # fmt: skip


def unseen_by_every_checkpoint(data: FinetuningData, checkpoints: list, refuse: bool) -> FinetuningData:
    """`data` less the test documents any of `checkpoints` pretrained on (their `split.json`), so that every method
    of a study is tested on the same documents, new to all of them. `refuse`: raise instead (the user's own test
    documents are never dropped silently)."""
    for checkpoint in checkpoints:
        split = DocumentSplit.load(checkpoint)
        seen = split.seen(data.test["text"])
        if refuse and any(seen):
            split.check_unseen(data.test["text"])  # raises, saying how many
        data = FinetuningData(data.pool, data.test.select([row for row, was in enumerate(seen) if not was]),
                              data.description)  # fmt: skip
    return data


LINEAR_MODELS = ("default", "cv")
# the regularization strengths cross-validation picks from: C of the logistic regression, 1/alpha of ridge
CV_STRENGTHS = np.logspace(-4, 4, 17)
CV_FOLDS = 5


def fit_linear_model(features, labels, task: str, regularization: str = "default"):
    """A scikit-learn linear model fitted on `features`: logistic regression, or ridge for regression.
    `regularization`: "default", scikit-learn's (C = 1, alpha = 1); "cv", the strength of `CV_STRENGTHS` with the
    best held-out log loss (squared error for ridge) in stratified `CV_FOLDS`-fold cross-validation on these rows
    alone (fewer folds when a class has fewer rows; the default strength below 2), refitted on all of them. With
    ten labels per class the default's strength is a guess; cross-validation on the labels is what a user without
    a validation set can do instead."""
    if regularization not in LINEAR_MODELS:
        raise UserError(f"regularization must be one of {LINEAR_MODELS}, got {regularization!r}")
    regression = task == "regression"
    model = Ridge() if regression else LogisticRegression(max_iter=2000)
    split = label_folds(labels, task)
    if regularization == "default" or split is None:
        return model.fit(features, labels)
    grid = {"alpha": 1 / CV_STRENGTHS} if regression else {"C": CV_STRENGTHS}
    search = GridSearchCV(
        model, grid, cv=split, scoring="neg_mean_squared_error" if regression else "neg_log_loss"
    )
    return search.fit(features, labels).best_estimator_


def label_folds(labels, task: str) -> KFold | StratifiedKFold | None:
    """The cross-validation the linear models' choices use on the N labeled rows: `CV_FOLDS` folds (stratified for
    classification; fewer when a class has fewer rows), shuffled with seed 0; None when that leaves fewer than 2."""
    regression = task == "regression"
    folds = min(CV_FOLDS, len(labels) if regression else int(np.unique(labels, return_counts=True)[1].min()))
    if folds < 2:
        return None
    return (KFold if regression else StratifiedKFold)(folds, shuffle=True, random_state=0)


def linear_model_scores(train_features, train_labels, test_features, test_labels, task: str,
                        standardize: bool = False, regularization: str = "default") -> dict:  # fmt: skip
    """`fit_linear_model` (logistic regression, or ridge for regression; `regularization` as it takes it) fitted on
    the training features, scored on the test ones. `standardize`: scale both by the training features' mean and
    standard deviation first (pooled network states, whose units differ by dimension)."""
    if standardize:
        scaler = StandardScaler().fit(train_features)
        train_features, test_features = scaler.transform(train_features), scaler.transform(test_features)
    predicted = fit_linear_model(train_features, train_labels, task, regularization).predict(test_features)
    return prediction_scores(predicted, test_labels, task, len(train_labels))


def prediction_scores(predicted, test_labels, task: str, num_train: int) -> dict:
    """A study run's metrics from its test predictions: `regression_metrics` for regression, else
    `classification_scores`, with how many labeled rows the model trained on."""
    if task == "regression":
        return {**regression_metrics(predicted, test_labels), "num_train": num_train}
    return classification_scores(predicted, test_labels, num_train)


def classification_scores(predicted, test_labels, num_train: int) -> dict:
    """Accuracy and macro-F1 of predicted class ids, with how many labeled rows the model trained on."""
    return {"accuracy": float(accuracy_score(test_labels, predicted)),
            "macro_f1": float(f1_score(test_labels, predicted, average="macro")), "num_train": num_train}  # fmt: skip


def baseline_method(data: FinetuningData, task: str = "single_label_classification",
                    regularization: str = "default", self_training: str | None = None,
                    self_training_stop: str = "rounds") -> Method:  # fmt: skip
    """Sublinear TF-IDF + an L2 logistic regression (classification) or ridge regression, scikit-learn defaults
    or (`regularization="cv"`) its strength cross-validated on the labels (`fit_linear_model`), trained on all N
    labeled documents (it needs no validation set to stop early). `self_training` (classification; a quota of
    `SELF_TRAINING_QUOTAS`): TF-IDF fitted on the whole pool instead, then `self_trained_linear_model` with that
    quota on the pool's unlabeled documents, and `self_training_stop` (`SELF_TRAINING_STOPS`), the control for the
    networks' self-training (named "tfidf_self_training": "tfidf" stays the plain baseline every report pairs the
    networks with)."""
    check_self_training(self_training, task, self_training_stop)
    pool_words = pool_tfidf(data)

    def run(num_labels: str, seed: int) -> dict:
        # the documents `finetune` draws for the same N and seed
        labeled = TASKS[task](study_data_args(task, num_labels)).draw_labeled(data.pool, seed)
        if self_training:
            words, test = pool_words()
            rows = labeled_rows(data.pool, labeled)
            predicted, trained = self_trained_predictions([words], [test], rows, labeled["label"], self_training,
                                                          regularization, stop=self_training_stop)  # fmt: skip
            return {**classification_scores(predicted, data.test["label"], len(rows)),
                    "self_training_rounds": trained.rounds}  # fmt: skip
        train, test = tfidf_features(labeled["text"], data.test["text"])
        return linear_model_scores(train, labeled["label"], test, data.test["label"], task,
                                   regularization=regularization)  # fmt: skip

    legend = "TF-IDF + ridge regression" if task == "regression" else "TF-IDF + logistic regression"
    if self_training:
        legend += self_training_legend(self_training, self_training_stop)
    settings = {"task": task, "test": len(data.test), **regularization_setting(regularization)}
    return Method("tfidf" + "_self_training" * bool(self_training), legend + CV_LEGEND.get(regularization, ""), run,
                  {**settings, **self_training_settings(self_training, self_training_stop)})  # fmt: skip


def self_training_legend(quota: str, stop: str = "rounds") -> str:
    """What a self-trained method's legend ends with: the quota, and the stop unless it is the default."""
    return f", self-trained ({quota}{', stopped by the labels' if stop == 'labels' else ''})"


# the baselines every report pairs the other methods with, seed by seed, when the study ran them
BASELINES = ("tfidf", "tfidf_self_training")


def self_training_settings(self_training: str | None, stop: str = "rounds") -> dict:
    """The settings a self-training run records: its quota, and its stop unless it is the default (the runs
    recorded before the choice existed keep their key); none without self-training."""
    if not self_training:
        return {}
    return {"self_training": self_training, **({"self_training_stop": stop} if stop != "rounds" else {})}


def check_self_training(self_training: str | None, task: str, stop: str = "rounds") -> None:
    """Refuses a `self_training` quota that is not one of `SELF_TRAINING_QUOTAS` (None: no self-training), one with
    a regression task, or a `stop` not in `SELF_TRAINING_STOPS`."""
    if self_training and task == "regression":
        raise UserError("self-training picks confident class labels: it needs a classification task")
    if self_training not in (None, *SELF_TRAINING_QUOTAS):
        raise UserError(f"self_training must be one of {SELF_TRAINING_QUOTAS} or None, got {self_training!r}")
    if stop not in SELF_TRAINING_STOPS:
        raise UserError(f"self_training_stop must be one of {SELF_TRAINING_STOPS}, got {stop!r}")


def labeled_rows(pool, labeled) -> np.ndarray:
    """The pool rows of the `labeled` documents a draw took (a text that occurs twice: its last row; the other copy
    stays among the unlabeled rows self-training reads, as it always has)."""
    row_of = {text: row for row, text in enumerate(pool["text"])}
    return np.array([row_of[text] for text in labeled["text"]], dtype=int)


def pool_tfidf(data: FinetuningData) -> Callable[[], tuple]:
    """`tfidf_features` fitted on the whole pool, of the pool and the test documents, computed on the first call and
    kept in `data.derived`: self-training reads them in every run, the baseline's and each network's alike."""

    def words() -> tuple:
        if "pool_tfidf" not in data.derived:
            data.derived["pool_tfidf"] = tfidf_features(data.pool["text"], data.test["text"])
        return data.derived["pool_tfidf"]

    return words


def tfidf_features(train_texts, test_texts):
    """The baseline's features: sublinear TF-IDF fitted on the labeled texts (rows of unit norm, sparse)."""
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    return vectorizer.fit_transform(train_texts), vectorizer.transform(test_texts)


def beside_tfidf(train_states: np.ndarray, test_states: np.ndarray, train_texts, test_texts, train_labels,
                 task: str, regularization: str = "default", fusion: str = "equal") -> tuple[np.ndarray, float]:  # fmt: skip
    """Test predictions of pooled network states beside the baseline's TF-IDF (late fusion), and the states'
    weight in it: one linear model on the standardized states, one on the TF-IDF of the same texts
    (`fit_linear_model`, each its own strength when `regularization` is "cv"), their class probabilities (their
    predictions, for regression) averaged with equal weights, or (`fusion="cv"`) with the states' weight
    cross-validated on the labels (`fusion_weight`). Two models rather than one on both blocks: one penalty cannot
    suit unit-norm TF-IDF rows and standardized states alike."""
    scaler = StandardScaler().fit(train_states)
    words = tfidf_features(train_texts, test_texts)
    views = [scaler.transform(train_states), words[0]]
    models = [fit_linear_model(train, train_labels, task, regularization) for train in views]
    weight = fusion_weight(views, train_labels, models, task) if fusion == "cv" else 0.5
    tests = (scaler.transform(test_states), words[1])
    if task == "regression":
        return np.average([model.predict(test) for model, test in zip(models, tests, strict=True)], axis=0,
                          weights=[weight, 1 - weight]), weight  # fmt: skip
    return models[0].classes_[averaged_probabilities(models, tests, [weight, 1 - weight]).argmax(1)], weight


FUSIONS = ("equal", "cv")
FUSION_LEGEND = {"cv": " (weights cross-validated)"}
FUSION_WEIGHTS = np.round(np.linspace(0, 1, 11), 1)


def fusion_weight(views: list, labels, models: list, task: str) -> float:
    """The first view's weight (the second's: 1 - it) in the late fusion of two linear models fitted on two views of
    the same labeled rows: the one of `FUSION_WEIGHTS` (0 to 1) whose mix of the two models' out-of-fold class
    probabilities is right most often (predictions, for regression: the least squared error), in `CV_FOLDS`-fold
    cross-validation on these rows (stratified; fewer folds when a class has fewer rows), each model refitted per
    fold with its own strength (`models`, fitted on all the rows, give it); of equally good weights, the nearest to
    equal ones. 0.5 when no class has 2 rows. Accuracy, not log loss: a linear model on unit-norm TF-IDF rows gives
    flat probabilities where one on standardized states gives sharp ones, and log loss would pick the sharp view
    whichever is right more often. With 10 labels per class the weight is noisy."""
    if len(views) != 2 or len(models) != 2:
        raise ValueError(f"a fusion weight mixes two views, got {len(views)} views and {len(models)} models")
    labels = np.asarray(labels)
    regression, split = task == "regression", label_folds(labels, task)
    if split is None:
        return 0.5
    method = "predict" if regression else "predict_proba"
    first, second = (cross_val_predict(clone(model), view, labels, cv=split, method=method)
                     for model, view in zip(models, views, strict=True))  # fmt: skip
    mixes = [w * first + (1 - w) * second for w in FUSION_WEIGHTS]
    if regression:
        scores = np.array([-np.mean((mix - labels) ** 2) for mix in mixes])
    else:
        classes = np.unique(labels)
        scores = np.array([np.mean(classes[mix.argmax(1)] == labels) for mix in mixes])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(FUSION_WEIGHTS[best[np.argmin(np.abs(FUSION_WEIGHTS[best] - 0.5))]])


CV_LEGEND = {"cv": " (strength cross-validated)"}


def regularization_setting(regularization: str) -> dict:
    """The setting a run records for its linear model's regularization: none for the default, so that the runs
    recorded before the choice existed keep their key."""
    return {} if regularization == "default" else {"linear_model": regularization}


@torch.no_grad()
def pooled_features(
    model, tokenizer, texts: list[str], max_seq_length: int, batch_size: int = 16
) -> np.ndarray:
    """What an rnn_hf sequence classifier feeds its head, one row per text: the pooled states of its top layer
    (`config.classifier_pooling`; read in chunks when `config.classifier_bptt` is set), texts truncated to
    `max_seq_length` tokens. The model runs in eval mode, so no dropout."""
    model.eval()
    captured: list[torch.Tensor] = []
    hook = model.classifier.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch together
    try:
        for start in tqdm(range(0, len(texts), batch_size), desc="features", leave=False):
            batch = tokenizer([texts[i] for i in order[start : start + batch_size]], truncation=True,
                              max_length=max_seq_length, padding=True, return_tensors="pt").to(model.device)  # fmt: skip
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        hook.remove()
    features = torch.cat(captured).float().cpu().numpy()
    return features[np.argsort(order)]


SELF_TRAINING_QUOTAS = ("predicted", "balanced")
# when self-training ends: after its last round, or at the first round whose model classifies the labeled rows worse
# than the first model did (the round before it kept)
SELF_TRAINING_STOPS = ("rounds", "labels")


def self_trained_linear_model(train_features: np.ndarray, train_labels, pool_features: np.ndarray,
                               rounds: int = 5, final_fraction: float = 0.5, quota: str = "predicted",
                               regularization: str = "default", stop: str = "rounds") -> LogisticRegression:  # fmt: skip
    """Self-training of a logistic regression (`fit_linear_model` with `regularization`: with "cv" the strength is
    cross-validated on the labeled rows once and kept for every round) on fixed features: fitted on the labeled rows,
    it labels the unlabeled `pool_features`, and in round r of `rounds` refits on the labeled rows plus the pool rows
    it is most confident of, `final_fraction * r / rounds` of the pool in all. `quota` says how that share is split
    among the classes: "predicted", each class takes that share of the rows predicted as it (the predicted class
    proportions are kept: right for imbalanced sets); "balanced", each class takes an equal number of rows (its most
    confident of those predicted as it), which pushes a minority class's share up to an equal one. `stop` (one of
    `SELF_TRAINING_STOPS`): "rounds", all of them; "labels", at the first round whose model classifies the labeled
    rows worse than the first model did, keeping the round before it: the pseudo-labels must not outvote the labels
    (with ten labels per class a round can tip every pseudo-label into one class). Returns the last model kept. The
    labeled rows should not be in the pool (they would count twice). `self_trained_linear_models` does the same
    with several views of the rows."""
    return self_trained_linear_models([train_features], train_labels, [pool_features], rounds, final_fraction, quota,
                                      regularization, stop=stop).models[0]  # fmt: skip


@dataclass
class SelfTrained:
    """What `self_trained_linear_models` returns: the models kept (one per view), the views' weights, and the rounds
    whose models were kept (fewer than asked when a stop ended them)."""

    models: list
    weights: list[float]
    rounds: int


def self_trained_linear_models(train_views: list, train_labels, pool_views: list, rounds: int = 5,
                               final_fraction: float = 0.5, quota: str = "predicted", regularization: str = "default",
                               fusion: str = "equal", stop: str = "rounds") -> SelfTrained:  # fmt: skip
    """`self_trained_linear_model` on several views of the same rows (e.g. a network's standardized states and the
    TF-IDF of the same documents; dense or sparse): one logistic regression per view, and the pseudo-labels and
    confidences of every round come from their class probabilities averaged (`averaged_probabilities`, late fusion
    as `beside_tfidf` predicts), so each view learns from the rows the views agree on: with equal weights, or
    (`fusion="cv"`, two views) the weights `fusion_weight` finds on the labeled rows once, kept for every round.
    `stop="labels"` reads the labeled rows' accuracy of those averaged probabilities."""
    if not 0 < final_fraction <= 1 or rounds < 1:
        raise ValueError(f"need rounds >= 1 and 0 < final_fraction <= 1, got {rounds} and {final_fraction}")
    if quota not in SELF_TRAINING_QUOTAS:
        raise ValueError(f"quota must be one of {SELF_TRAINING_QUOTAS}, got {quota!r}")
    if stop not in SELF_TRAINING_STOPS:
        raise ValueError(f"stop must be one of {SELF_TRAINING_STOPS}, got {stop!r}")
    if len(train_views) != len(pool_views) or not train_views:
        raise ValueError(
            f"need one pool view per training view, got {len(train_views)} and {len(pool_views)}"
        )
    train_labels = np.asarray(train_labels)
    models = [fit_linear_model(view, train_labels, "single_label_classification", regularization)
              for view in train_views]  # fmt: skip
    weights = [1 / len(models)] * len(models)
    if fusion == "cv":
        first = fusion_weight(train_views, train_labels, models, "single_label_classification")
        weights = [first, 1 - first]

    def labels_accuracy(fitted: list) -> float:
        predicted = averaged_probabilities(fitted, train_views, weights).argmax(1)
        return float(np.mean(fitted[0].classes_[predicted] == train_labels))

    first_accuracy = labels_accuracy(models)
    num_pool, kept = pool_views[0].shape[0], 0
    for round_ in range(1, rounds + 1 if num_pool else 1):
        share = final_fraction * round_ / rounds
        probabilities = averaged_probabilities(models, pool_views, weights)  # (P, classes)
        guesses = probabilities.argmax(1)
        classes = models[0].classes_
        chosen = []
        for k in range(len(classes)):
            rows = np.flatnonzero(guesses == k)
            count = int(share * (len(rows) if quota == "predicted" else num_pool / len(classes)))
            chosen.append(rows[np.argsort(-probabilities[rows, k], kind="stable")[:count]])
        chosen = np.concatenate(chosen)
        labels = np.concatenate([train_labels, classes[guesses[chosen]]])
        refitted = [LogisticRegression(C=model.C, max_iter=2000).fit(stack_rows(train, pool[chosen]), labels)
                    for model, train, pool in zip(models, train_views, pool_views, strict=True)]  # fmt: skip
        if stop == "labels" and labels_accuracy(refitted) < first_accuracy:
            break
        models, kept = refitted, round_
    return SelfTrained(models, weights, kept)


def self_trained_predictions(views: list, test_views: list, rows: np.ndarray, labels, quota: str,
                             regularization: str = "default", fusion: str = "equal",
                             stop: str = "rounds") -> tuple[np.ndarray, SelfTrained]:  # fmt: skip
    """Test predictions of `self_trained_linear_models` on `views` of the whole pool (labeled `rows` with `labels`,
    every other pool row unlabeled; the test rows' class is the argmax of the views' averaged probabilities), and
    what it returned (the views' weights, the rounds kept)."""
    unlabeled = np.setdiff1d(np.arange(views[0].shape[0]), rows)
    trained = self_trained_linear_models([view[rows] for view in views], labels, [view[unlabeled] for view in views],
                                         quota=quota, regularization=regularization, fusion=fusion, stop=stop)  # fmt: skip
    probabilities = averaged_probabilities(trained.models, test_views, trained.weights)
    return trained.models[0].classes_[probabilities.argmax(1)], trained


def averaged_probabilities(models: list, views: list, weights: list | None = None) -> np.ndarray:
    """Class probabilities of classifiers fitted on the same labels, each on its view of the same rows, averaged
    (with `weights`, one per view, when given)."""
    return np.average([model.predict_proba(view) for model, view in zip(models, views, strict=True)], axis=0,
                      weights=weights)  # fmt: skip


def stack_rows(top, bottom):
    """Rows of `bottom` under those of `top`: dense arrays or scipy sparse matrices (TF-IDF)."""
    return scipy.sparse.vstack([top, bottom]) if scipy.sparse.issparse(top) else np.concatenate([top, bottom])


def feature_method(name: str, legend: str, checkpoint: str | Path, data: FinetuningData,
                   task: str = "single_label_classification", max_seq_length: int = DataArguments.max_seq_length,
                   classifier_bptt: int | None = None, from_scratch: bool = False, self_training: str | None = None,
                   cache_dir: Path | None = None, regularization: str = "default",
                   with_tfidf: bool = False, fusion: str = "equal", self_training_stop: str = "rounds") -> Method:  # fmt: skip
    """The pretrained network as a fixed feature extractor, no fine-tuning: its pooled states (`pooled_features`,
    computed once per study for the test documents and for the pool documents the draws need, the whole pool when
    self-training, and kept in `cache_dir` when given, so that a rerun or a second method on the same features reads
    them), standardized, then the TF-IDF baseline's linear model (`regularization`: scikit-learn's defaults, or its
    strength cross-validated, `fit_linear_model`) on the N labeled documents `finetune` would draw.
    `from_scratch`: the same network with random weights (seed 0), the control that shows what pretraining adds to
    the features. `self_training` (classification; a quota of `SELF_TRAINING_QUOTAS`): standardized on the whole
    pool, then `self_trained_linear_model` with that quota and `self_training_stop` (`SELF_TRAINING_STOPS`) on the
    pool's unlabeled documents (each run records the rounds kept as "self_training_rounds"). `with_tfidf`: a
    linear model on the states beside the baseline's on TF-IDF, probabilities averaged (`beside_tfidf`): what the
    network adds to what a user has already. Both: the two self-trained together on the pool (TF-IDF fitted on the
    whole pool; `self_trained_linear_models`), pseudo-labels from their averaged probabilities. `fusion` (with
    `with_tfidf`, one of `FUSIONS`): "equal" weights in that average, or "cv", the states' weight cross-validated on
    the labels (`fusion_weight`; each run records it as "states_weight")."""
    check_self_training(self_training, task, self_training_stop)
    if fusion not in FUSIONS:
        raise UserError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    settings = {"checkpoint": str(checkpoint), "task": task, "max_seq_length": max_seq_length,
                "classifier_bptt": classifier_bptt, "test": len(data.test), **({"from_scratch": True} if from_scratch
                                                                                   else {})}  # fmt: skip
    cache_file = None
    # the file's name follows the settings, the documents and the checkpoint's weight files (retrained: new features)
    if cache_dir is not None:
        weights = [(f.name, f.stat().st_size, f.stat().st_mtime_ns)
                   for f in sorted(Path(checkpoint).glob("*.safetensors"))]  # fmt: skip
        identity = json.dumps({**settings, "pool": list(data.pool["text"]), "test_documents": list(data.test["text"]),
                               "weights": weights}, sort_keys=True)  # fmt: skip
        cache_file = Path(cache_dir) / f"features-{hashlib.sha1(identity.encode()).hexdigest()[:12]}.npz"

    # "test", and the pool rows computed so far ("pool_rows") with their features ("pool")
    cache: dict[str, np.ndarray] = {}
    loaded: dict = {}

    def compute(texts) -> np.ndarray:
        if not loaded:
            kind = TASKS[task](DataArguments(task=task, max_seq_length=max_seq_length))
            kind.prepare_labels(data.pool, data.test)  # the label names the classifier's config needs
            set_seed(0)
            model = load_model(ModelArguments(str(checkpoint), from_scratch=from_scratch, freeze_backbone=True,
                                              classifier_bptt=classifier_bptt), kind, Path(checkpoint), quiet=True)  # fmt: skip
            # on the GPU where there is one, as fine-tuning's Trainer would put it
            loaded.update(model=model.to("cuda" if torch.cuda.is_available() else "cpu"),
                          tokenizer=AutoTokenizer.from_pretrained(checkpoint))  # fmt: skip
        return pooled_features(loaded["model"], loaded["tokenizer"], texts, max_seq_length)

    def features(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The features of the pool's `rows` and of the test documents. A pool row is read the first time a draw
        needs it: without self-training a study reads a few hundred documents of a pool that may hold tens of
        thousands."""
        if not cache and cache_file is not None and cache_file.is_file():
            with np.load(cache_file) as saved:
                cache.update({split: saved[split] for split in saved.files})
            cache.setdefault("pool_rows", np.arange(len(cache["pool"])))  # a file of the whole pool
        if not cache:
            test = compute(data.test["text"])
            cache.update(test=test, pool_rows=np.zeros(0, dtype=int), pool=test[:0])
        missing = np.setdiff1d(rows, cache["pool_rows"])
        if len(missing):
            new = compute(data.pool.select(missing.tolist())["text"])
            cache.update(pool=np.concatenate([cache["pool"], new]),
                         pool_rows=np.concatenate([cache["pool_rows"], missing]))  # fmt: skip
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache_file, **cache)
        order = np.argsort(cache["pool_rows"])
        return cache["pool"][order[np.searchsorted(cache["pool_rows"], rows, sorter=order)]], cache["test"]

    pool_words = pool_tfidf(data)

    def run(num_labels: str, seed: int) -> dict:
        labeled = TASKS[task](study_data_args(task, num_labels)).draw_labeled(data.pool, seed)
        rows = labeled_rows(data.pool, labeled)  # duplicates share their features
        if with_tfidf and not self_training:
            predicted, weight = beside_tfidf(*features(rows), labeled["text"], data.test["text"], labeled["label"],
                                             task, regularization, fusion)  # fmt: skip
            return {
                **prediction_scores(predicted, data.test["label"], task, len(rows)),
                "states_weight": weight,
            }
        if not self_training:
            train, test = features(rows)
            return linear_model_scores(train, labeled["label"], test, data.test["label"], task, standardize=True,
                                       regularization=regularization)  # fmt: skip
        pool, test = features(np.arange(len(data.pool)))
        scaler = StandardScaler().fit(pool)
        views, tests = [scaler.transform(pool)], [scaler.transform(test)]
        if with_tfidf:  # beside TF-IDF of the same pool documents
            words, test_words = pool_words()
            views, tests = [*views, words], [*tests, test_words]
        predicted, trained = self_trained_predictions(views, tests, rows, labeled["label"], self_training,
                                                      regularization, fusion if with_tfidf else "equal",
                                                      self_training_stop)  # fmt: skip
        scores = {**classification_scores(predicted, data.test["label"], len(rows)),
                  "self_training_rounds": trained.rounds}  # fmt: skip
        return {**scores, "states_weight": trained.weights[0]} if with_tfidf else scores

    # the equal-weight runs recorded before the choice existed keep their key
    fused = with_tfidf and fusion != "equal"
    return Method(name, legend + CV_LEGEND.get(regularization, ""), run,
                  {**settings, **self_training_settings(self_training, self_training_stop),
                   **({"with_tfidf": True} if with_tfidf else {}), **({"fusion": fusion} if fused else {}),
                   **regularization_setting(regularization)})  # fmt: skip


def feature_methods(checkpoints: dict[str, str | Path], legends: dict[str, str], data: FinetuningData,
                    task: str = "single_label_classification", max_seq_length: int = DataArguments.max_seq_length,
                    classifier_bptt: int | None = None, self_training: str | None = None, with_tfidf: bool = False,
                    regularization: str = "default", cache_dir: Path | None = None,
                    fusion: str = "equal", self_training_stop: str = "rounds") -> list[Method]:  # fmt: skip
    """A text study's fixed-feature methods: `feature_method` for each of `checkpoints` (`{name: path}`; the name
    "scratch" reads the first one's network with random weights, the control), named `<name>_features`; then, with
    `self_training`, each self-trained with that quota (`<name>_features_self_training`); then, `with_tfidf`, each
    beside TF-IDF (`<name>_features_tfidf`); then, with both, each beside TF-IDF, the two self-trained together
    (`<name>_features_tfidf_self_training`); `fusion` weighs the views beside TF-IDF and `self_training_stop` ends
    self-training (`feature_method`). Legends start with `legends[name]`."""
    variants = [(quota, tfidf) for tfidf in (False, True)[: 1 + with_tfidf]
                for quota in dict.fromkeys([None, self_training])]  # fmt: skip
    methods = []
    for (quota, tfidf), name in [(variant, name) for variant in variants for name in checkpoints]:
        suffix = "_tfidf" * tfidf + "_self_training" * bool(quota)
        legend = ("fixed features beside TF-IDF" + FUSION_LEGEND.get(fusion, "") + " + logistic regression" if tfidf
                  else "fixed features + logistic regression") + (self_training_legend(quota, self_training_stop) if quota else "")  # fmt: skip
        methods.append(feature_method(f"{name}_features{suffix}", f"{legends[name]}, {legend}", checkpoints[name],
                                      data, task, max_seq_length, classifier_bptt, from_scratch=name == "scratch",
                                      self_training=quota, cache_dir=cache_dir, regularization=regularization,
                                      with_tfidf=tfidf, fusion=fusion, self_training_stop=self_training_stop))  # fmt: skip
    return methods


def finetune_method(name: str, legend: str, checkpoint: str | Path, data: FinetuningData, work_dir: Path,
                    task: str = "single_label_classification", from_scratch: bool = False, settings: dict | None = None,
                    **training) -> Method:  # fmt: skip
    """An rnn_hf checkpoint fine-tuned by `finetune` with the recipe's defaults; `training` overrides
    `TrainingArguments`, `DataArguments` and `ModelArguments` fields (`learning_rate`, `num_train_epochs`,
    `max_seq_length`, `validation_fraction`, `classifier_bptt`, ...)."""
    max_seq_length = training.pop("max_seq_length", DataArguments.max_seq_length)
    model_fields = {f.name for f in dataclasses.fields(ModelArguments)} & training.keys()
    model_settings = {name: training.pop(name) for name in sorted(model_fields)}
    data_settings = {name: training.pop(name) for name in ("validation_fraction",) if name in training}

    def run(num_labels: str, seed: int) -> dict:
        run_dir = work_dir / f"{name}-n{num_labels}-seed{seed}"
        metrics = finetune(ModelArguments(str(checkpoint), from_scratch=from_scratch, **model_settings),
                           study_data_args(task, num_labels, max_seq_length, **data_settings),
                           recipe_training_arguments(str(run_dir), quiet=True, seed=seed, **training), data=data)  # fmt: skip
        shutil.rmtree(run_dir)  # the metrics are all a study needs; a model is tens of MB
        best = metrics.pop("best_validation") or {}
        return {**metrics, **{f"best_validation_{k}": v for k, v in best.items()}}

    recorded = {"checkpoint": str(checkpoint), "task": task, "max_seq_length": max_seq_length, **training,
                **model_settings, **data_settings, **(settings or {})}  # fmt: skip
    return Method(name, legend, run, recorded)


def text_study_method_lines(baseline_legend: str, scratch_checkpoint: str | Path, fine_tuned: bool = True,
                            validation_fraction: float | None = None, features: bool = False,
                            self_training: str | None = None, regularization: str = "default",
                            with_tfidf: bool = False, fusion: str = "equal",
                            self_training_stop: str = "rounds") -> list[str]:  # fmt: skip
    """A text study report's lines on how its methods learn from the N labels: the fine-tuned networks (when
    `fine_tuned`; `validation_fraction` as `DataArguments` takes it, None: the recipe's), the TF-IDF baseline, the
    fixed features, their self-training, the features beside TF-IDF, and the linear models' regularization
    (`fit_linear_model`)."""
    if not fine_tuned:
        networks = ("- No network is fine-tuned: each one's pooled states (concat pooling of its top layer, the "
                    "input of ULMFiT's head) are fixed features")  # fmt: skip
    else:
        networks = ("- The networks fine-tune with `rnn_hf.training.finetune` (ULMFiT: discriminative learning rates, "
                    "slanted triangular schedule, gradual unfreezing when pretrained, concat pooling, ULMFiT's head); "
                    + (f"they hold 20% of the labels out for early stopping from {MIN_PER_CLASS_FOR_VALIDATION} per "
                       "class, else train a fixed number of epochs" if validation_fraction is None else
                       f"they hold {validation_fraction:.0%} of the labels out for early stopping" if
                       validation_fraction else "they train a fixed number of epochs on all the labels"))  # fmt: skip
    return [
        networks + f". The scratch network copies the config and tokenizer of `{scratch_checkpoint}`.",
        f"- {baseline_legend} (scikit-learn, `sublinear_tf=True`) trains on all N labeled documents"
        + ("; so does the same linear model on each pretrained network's standardized pooled states (fixed "
           "features)." if features else ".") + (" Self-trained: standardized on the whole pool, then 5 rounds that "
           "add the pool documents the model is most confident of, 50% of the pool by the last round, split among "
           f"classes {'as predicted' if self_training == 'predicted' else 'equally'}"
           + ("; it stops at the first round whose model classifies the N labeled documents worse than the first "
              "model did, keeping the round before" if self_training_stop == "labels" else "")
           + "; TF-IDF + logistic regression self-trains alike (its vocabulary fitted on the whole pool), the "
           "control." if self_training else "")
        + (" Beside TF-IDF: that linear model on the states and the baseline's on TF-IDF, each fitted on the N "
           "documents, their class probabilities averaged" + (
               f", the states' weight the one of {len(FUSION_WEIGHTS)} from 0 to 1 whose mix of the two models' "
               f"out-of-fold probabilities is right most often in stratified {CV_FOLDS}-fold cross-validation on the "
               "N labeled documents, of equally good ones the nearest to equal weights (recorded with each run)."
               if fusion == "cv" else " with equal weights.")
           if with_tfidf else "")
        + (" Beside TF-IDF, self-trained: the two self-train together, each round's pseudo-labels from their "
           "averaged probabilities." if with_tfidf and self_training else "")
        + (f" The linear models' strength (C) is the one of {len(CV_STRENGTHS)} from {CV_STRENGTHS[0]:g} to "
           f"{CV_STRENGTHS[-1]:g} with the best log loss in stratified {CV_FOLDS}-fold cross-validation on the N "
           "labeled documents (fewer folds below 5 per class), refitted on all of them; the test documents play no "
           "part." if regularization == "cv" else " The linear models keep scikit-learn's default strength (C = 1; "
           "ridge: alpha = 1)."),
    ]  # fmt: skip


def pretraining_line(legend: str, checkpoint: Path) -> str | None:
    """A report's line on how a checkpoint was pretrained, from the `results.json` pretraining wrote beside it
    (steps, seconds, held-out metrics); None when there is none."""
    results = Path(checkpoint) / "results.json"
    if not results.is_file():
        return None
    measured = json.loads(results.read_text())
    held_out = ", ".join(
        f"{k.removeprefix('eval_')} {v:.4g}" for k, v in measured.items() if k.startswith("eval_")
    )
    return (f"- {legend} `{checkpoint}`: {measured.get('steps')} steps in {measured.get('train_seconds')} s of "
            f"pretraining; held-out {held_out}.")  # fmt: skip


def tune_learning_rate(method_factory: Callable[[float], Method], learning_rates: list[float], store_dir: Path,
                       num_labels: str, seed: int, metric: str, report_only: bool = False) -> tuple[float, dict]:  # fmt: skip
    """The learning rate whose run has the best validation `metric` at `num_labels`, seed `seed` (the validation
    set is carved from the labeled documents: the test documents play no part). Returns `(rate, {rate: score})`."""
    store, scores = RunStore(store_dir / "results.jsonl"), {}
    for learning_rate in learning_rates:
        method = method_factory(learning_rate)
        record = store.find(method.name, num_labels, seed, method.settings)
        if record is None:
            if report_only:
                raise UserError(
                    f"--report_only: no recorded tuning run of {method.name} at lr {learning_rate:g}"
                )
            record = run_once(store, method, num_labels, seed)
        score = record.get(f"best_validation_{metric}")
        if score is None:
            raise UserError(f"tuning {method.name}: no validation {metric} at {num_labels} labels (too few to carve "
                            "a validation set out of)")  # fmt: skip
        scores[learning_rate] = record
    lower = metric in LOWER_IS_BETTER
    best = min if lower else max  # ties go to the earlier rate
    chosen = best(learning_rates, key=lambda lr: scores[lr][f"best_validation_{metric}"])
    return chosen, scores
