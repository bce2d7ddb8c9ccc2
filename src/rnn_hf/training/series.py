"""Training the time-series models on sets of series with `Trainer`: pretraining on unlabeled series (forecasting
the next values, or reconstructing the window), fine-tuning a classifier with few labels, and EncDec-AD anomaly
scores from a reconstruction autoencoder.

    values = series_tensor(load_ucr("GunPoint")["train"])                   # (N, T, C), NaN where missing
    forecaster = pretrain_forecaster(values, SeriesModelArguments(), training_arguments("runs/f", steps=300))
    classifier = finetune_classifier(forecaster, labeled_rows, num_labels=2, args=...)
    accuracy = float((predict_classes(classifier, test_values) == test_labels).mean())
"""

import copy
import functools
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from torch import nn
from transformers import Trainer, TrainingArguments

from ..configuration_rnn_time_series import RnnTimeSeriesConfig
from ..data.series import general_series_windows, window_starts
from ..data.text import DataError
from ..modeling_rnn_time_series import (
    RnnForSequenceReconstruction,
    RnnForTimeSeriesClassification,
    RnnForTimeSeriesPrediction,
    RnnTimeSeriesPreTrainedModel,
)
from .cli import UserError
from .ulmfit import PretrainedRateTrainer


@dataclass
class SeriesModelArguments:
    """The recurrent network of a series study (shared by the forecaster, the autoencoder and the classifier)."""

    cell_type: str = field(default="lstm", metadata={"help": "lstm or gru"})
    hidden_size: int = field(default=64, metadata={"help": "width of each recurrent layer"})
    num_layers: int = field(default=1, metadata={"help": "number of recurrent layers"})
    dropout: float = field(
        default=0.1, metadata={"help": "dropout between layers and before the output layers"}
    )
    lags_sequence: list[int] = field(default_factory=lambda: [1], metadata={"help": "lags read at each step"})
    scaling: str | None = field(default="std", metadata={"help": "per-series scaling: mean, std or None"})

    def config(self, input_size: int, **settings) -> RnnTimeSeriesConfig:
        return RnnTimeSeriesConfig(
            input_size=input_size,
            cell_type=self.cell_type,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            dropout=self.dropout,
            lags_sequence=list(self.lags_sequence),
            scaling=self.scaling,
            **settings,
        )


def series_tensor(dataset: Dataset) -> torch.Tensor:
    """The "values" (channels x length) of a series set as one `(N, T, C)` float tensor; a shorter series is padded
    at its end with NaN (missing values)."""
    series = [
        torch.tensor(np.asarray(values, dtype=np.float32)).T for values in dataset["values"]
    ]  # (T_i, C)
    length = max(s.size(0) for s in series)
    padded = torch.full((len(series), length, series[0].size(1)), float("nan"))
    for row, values in enumerate(series):
        padded[row, : values.size(0)] = values
    return padded


def training_arguments(output_dir: str, steps: int, learning_rate: float, batch_size: int, seed: int,
                       **overrides) -> TrainingArguments:  # fmt: skip
    """Quiet `TrainingArguments` for the many short runs of a study: `steps` optimizer steps, no checkpoints."""
    settings = dict(
        output_dir=output_dir,
        max_steps=steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, steps // 10),
        weight_decay=0.01,
        max_grad_norm=1.0,
        logging_steps=max(1, steps // 5),
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=seed,
        use_cpu=not torch.cuda.is_available(),
    )
    settings.update(overrides)
    return TrainingArguments(**settings)


def fit(
    model: RnnTimeSeriesPreTrainedModel | nn.Module,
    rows: Dataset,
    args: TrainingArguments,
    backbone_lr_ratio: float = 1.0,
) -> Trainer:
    """Train with `Trainer`; the backbone (`model.model`) learns at `backbone_lr_ratio` times the learning rate
    of the rest (ULMFiT's discriminative rates: a pretrained backbone moves less than a new head)."""
    common = dict(model=model, args=args, train_dataset=rows.with_format("torch"))
    if backbone_lr_ratio == 1.0:
        trainer = Trainer(**common)
    else:
        backbone = [p for p in model.model.parameters() if p.requires_grad]
        trainer = PretrainedRateTrainer(**common, pretrained=backbone, pretrained_lr_ratio=backbone_lr_ratio)
    trainer.train()
    return trainer


def _start_from(model: RnnTimeSeriesPreTrainedModel, init: RnnTimeSeriesPreTrainedModel | None) -> None:
    """Copy the weights of `init` (the same kind of model, from an earlier stage) into `model`; the two may differ
    in window length, not in anything that shapes a weight."""
    if init is None:
        return
    if type(init) is not type(model):
        raise ValueError(f"cannot continue a {type(init).__name__} as a {type(model).__name__}")
    mine, theirs = model.state_dict(), init.state_dict()
    if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
        raise ValueError(
            f"the {type(init).__name__} to continue from does not fit these model arguments (hidden size, layers, "
            f"lags, channels): {init.config.to_diff_dict()}"
        )
    model.load_state_dict(theirs)


def forecasting_split(values: torch.Tensor, horizon: int) -> dict[str, torch.Tensor]:
    """A forecaster's training rows from whole `(N, T, C)` series: the last `horizon` steps are the future, the rest
    the past (pretraining, and the loss `WithPretrainingObjective` keeps, read series the same way)."""
    return {
        "past_values": values[:, : values.size(1) - horizon],
        "future_values": values[:, values.size(1) - horizon :],
    }


def pretrain_forecaster(
    values: torch.Tensor,
    model_args: SeriesModelArguments,
    args: TrainingArguments,
    horizon: int = 1,
    init: RnnForTimeSeriesPrediction | None = None,
) -> RnnForTimeSeriesPrediction:
    """Pretrain by forecasting on unlabeled `(N, T, C)` series: each whole series is one training window whose
    every step from `max(lags)` on is predicted from the steps before it (teacher forcing), the last `horizon`
    steps as its future. `init`: a forecaster from an earlier stage (e.g. on `general_series_windows`) to
    continue from, on windows of any length."""
    length = values.size(1)
    context = length - max(model_args.lags_sequence) - horizon
    if context < 1:
        raise ValueError(
            f"Series of {length} steps are too short for lags {model_args.lags_sequence} and horizon {horizon}."
        )
    config = model_args.config(
        values.size(2), prediction_length=horizon, context_length=context, distribution_output="student_t"
    )
    model = RnnForTimeSeriesPrediction(config)
    _start_from(model, init)
    rows = Dataset.from_dict(
        {name: part.numpy() for name, part in forecasting_split(values, horizon).items()}
    )
    fit(model, rows, args)
    return model


def pretrain_autoencoder(
    values: torch.Tensor,
    model_args: SeriesModelArguments,
    args: TrainingArguments,
    init: RnnForSequenceReconstruction | None = None,
) -> RnnForSequenceReconstruction:
    """Pretrain an EncDec-AD autoencoder on `(N, T, C)` windows (reversed target, mean squared error); `init`: an
    autoencoder from an earlier stage to continue from."""
    model = RnnForSequenceReconstruction(model_args.config(values.size(2)))
    _start_from(model, init)
    fit(model, Dataset.from_dict({"past_values": values.numpy()}), args)
    return model


def pretrain_once(
    kind: str,
    values: torch.Tensor | Callable[[], torch.Tensor],
    model_args: SeriesModelArguments,
    directory: str | Path,
    steps: int,
    learning_rate: float,
    init: RnnTimeSeriesPreTrainedModel | None = None,
) -> RnnTimeSeriesPreTrainedModel:
    """A forecaster (`kind` "forecast") or an EncDec-AD autoencoder ("reconstruct") pretrained for `steps` (batch 16,
    seed 0) on unlabeled `(N, T, C)` `values` (or a function that makes them, called only when it trains), from
    `init` (a model of an earlier stage) or random weights, and saved in `directory`; reloaded from there when an
    earlier run saved it (with the same kind, steps, rate and model arguments: `pretraining.json` records them, and
    a directory that holds another model is refused). `steps` 0 returns `init` as it is."""
    model_class = {"forecast": RnnForTimeSeriesPrediction, "reconstruct": RnnForSequenceReconstruction}.get(
        kind
    )
    if model_class is None:
        raise ValueError(f"kind must be 'forecast' or 'reconstruct', got {kind!r}")
    if steps == 0 and init is not None:
        return init
    if steps < 1:
        raise ValueError(f"steps must be at least 1 (0 only to keep an `init` as it is), got {steps}")
    directory = Path(directory)
    settings = {"kind": kind, "steps": steps, "learning_rate": learning_rate, "model": asdict(model_args)}
    settings = json.loads(json.dumps(settings))  # as the record reads back (tuples as lists)
    record = directory / "pretraining.json"
    if (directory / "model.safetensors").is_file():
        saved = json.loads(record.read_text()) if record.is_file() else "not recorded"
        if saved != settings:
            raise UserError(
                f"{directory} holds a model pretrained with {saved}, not {settings}: pass another directory (a "
                "script's --work_dir) or delete it"
            )
        return model_class.from_pretrained(directory)
    torch.manual_seed(0)
    args = training_arguments(str(directory / "trainer"), steps, learning_rate, 16, 0)
    train = pretrain_forecaster if kind == "forecast" else pretrain_autoencoder
    model = train(values() if callable(values) else values, model_args, args, init=init)
    model.save_pretrained(directory)
    record.write_text(json.dumps(settings, indent=2) + "\n")
    return model


def pretrained_backbones(
    values: torch.Tensor,
    model_args: SeriesModelArguments,
    work_dir: str | Path,
    steps: int,
    learning_rate: float,
    general_steps: int = 0,
    exclude: Iterable[str] = (),
) -> dict[str, RnnTimeSeriesPreTrainedModel]:
    """The forecaster ("forecast") and the autoencoder ("reconstruct") of a series study, each trained once and kept
    under `work_dir` in a directory named for its steps (`pretrain_once`): on the unlabeled `(N, T, C)` `values`
    for `steps`, after `general_steps` on `general_series_windows(exclude)` when those are more than 0 (ULMFiT's
    general stage, for univariate series; `exclude` the studied set, whose test split is among the general windows
    otherwise)."""
    if general_steps and values.size(2) != 1:
        raise DataError(
            f"the general stage pretrains on univariate series; these have {values.size(2)} channels"
        )
    # cut once, and only if a general model is not saved yet
    general_windows = functools.cache(
        lambda: torch.from_numpy(general_series_windows(exclude=exclude))[..., None]  # (N, 128, 1)
    )
    models = {}
    for kind, name in (("forecast", "forecaster"), ("reconstruct", "autoencoder")):
        init = None
        if general_steps:
            general_dir = Path(work_dir) / f"general_{name}_{general_steps}"
            init = pretrain_once(kind, general_windows, model_args, general_dir, general_steps, learning_rate)
        stage = f"{name}_{steps}" + (f"_after_general_{general_steps}" if general_steps else "")
        models[kind] = pretrain_once(
            kind, values, model_args, Path(work_dir) / stage, steps, learning_rate, init
        )
    return models


def classifier_from(
    pretrained: RnnTimeSeriesPreTrainedModel | None,
    model_args: SeriesModelArguments,
    input_size: int,
    num_labels: int,
) -> RnnForTimeSeriesClassification:
    """An untrained classifier whose backbone is copied from `pretrained` (a forecaster or an autoencoder), or
    random (None: `model_args` at `input_size` channels)."""
    if pretrained is not None:
        config = RnnTimeSeriesConfig.from_dict({**pretrained.config.to_dict(), "num_labels": num_labels})
    else:
        config = model_args.config(input_size, num_labels=num_labels)
    config.problem_type = "single_label_classification"
    model = RnnForTimeSeriesClassification(config)
    if pretrained is not None:
        model.model.load_state_dict(pretrained.model.state_dict())
    return model


class WithPretrainingObjective(nn.Module):
    """A classifier that keeps its backbone's pretraining objective while it fine-tunes: each training step adds
    `weight` x the loss of `objective` (a forecaster or an autoencoder, its head training too, its backbone the
    classifier's) on `batch_size` series drawn from the unlabeled `(N, T, C)` `unlabeled` (`generator`: the draw)
    to the classification loss. A semi-supervised use of the unlabeled pool, and a guard against forgetting what
    pretraining taught while few labels move the backbone."""

    def __init__(
        self,
        classifier: RnnForTimeSeriesClassification,
        objective: RnnTimeSeriesPreTrainedModel,
        unlabeled: torch.Tensor,
        weight: float,
        batch_size: int = 16,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not isinstance(objective, (RnnForTimeSeriesPrediction, RnnForSequenceReconstruction)):
            raise TypeError(
                f"objective must be a forecaster or an autoencoder, got {type(objective).__name__}"
            )
        if (
            unlabeled.dim() != 3
            or unlabeled.size(0) == 0
            or unlabeled.size(2) != classifier.config.input_size
        ):
            raise ValueError(
                f"unlabeled must hold (N, T, {classifier.config.input_size}) series, got {tuple(unlabeled.shape)}"
            )
        self.classifier = classifier
        # the objective's head copied, its backbone not: the classifier's stands in (one backbone, two heads)
        self.objective = copy.deepcopy(objective, memo={id(objective.model): classifier.model})
        self.register_buffer("unlabeled", unlabeled, persistent=False)
        self.weight, self.batch_size = weight, batch_size
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    @property
    def model(self) -> nn.Module:
        """The shared backbone (as `classifier.model`: `fit` reads it for discriminative rates)."""
        return self.classifier.model

    def objective_loss(self) -> torch.Tensor:
        rows = torch.randint(self.unlabeled.size(0), (self.batch_size,), generator=self.generator)
        batch = self.unlabeled[rows.to(self.unlabeled.device)]
        if isinstance(self.objective, RnnForSequenceReconstruction):
            return self.objective(past_values=batch).loss
        return self.objective(**forecasting_split(batch, self.objective.config.prediction_length)).loss

    def forward(self, past_values: torch.Tensor, labels: torch.Tensor | None = None):
        outputs = self.classifier(past_values=past_values, labels=labels)
        if self.training and labels is not None and self.weight:
            outputs.loss = outputs.loss + self.weight * self.objective_loss()
        return outputs


def finetune_classifier(
    pretrained: RnnTimeSeriesPreTrainedModel | None,
    model_args: SeriesModelArguments,
    values: torch.Tensor,
    labels: np.ndarray,
    num_labels: int,
    args: TrainingArguments,
    freeze_backbone: bool = False,
    backbone_lr_ratio: float = 1.0,
    unlabeled: torch.Tensor | None = None,
    objective_weight: float = 0.0,
) -> RnnForTimeSeriesClassification:
    """A classifier trained on labeled `(N, T, C)` series, its backbone copied from `pretrained` (a forecaster or
    an autoencoder) or random (None); `freeze_backbone` (or `backbone_lr_ratio=0`) trains the head alone on the
    backbone's pooled features, `backbone_lr_ratio` scales the backbone's learning rate (see `fit`).
    `objective_weight` > 0 keeps `pretrained`'s own loss on the `unlabeled` `(N, T, C)` series on while the
    classifier trains (`WithPretrainingObjective`; batches as `args`, drawn with its seed)."""
    if not 0 <= backbone_lr_ratio <= 1:
        raise ValueError(f"backbone_lr_ratio must lie in [0, 1], got {backbone_lr_ratio}")
    if objective_weight < 0:
        raise ValueError(f"objective_weight must be at least 0, got {objective_weight}")
    frozen = freeze_backbone or backbone_lr_ratio == 0
    if objective_weight and (pretrained is None or unlabeled is None or frozen):
        raise ValueError(
            "objective_weight needs a pretrained model, unlabeled series and a backbone that learns"
        )
    model = classifier_from(pretrained, model_args, values.size(2), num_labels)
    model.model.requires_grad_(not frozen)
    rows = Dataset.from_dict({"past_values": values.numpy(), "labels": np.asarray(labels)})
    trained = model
    if objective_weight:
        generator = torch.Generator().manual_seed(args.seed)
        trained = WithPretrainingObjective(
            model, pretrained, unlabeled, objective_weight, args.per_device_train_batch_size, generator
        )
    fit(trained, rows, args, 1.0 if frozen else backbone_lr_ratio)
    return model


@torch.no_grad()
def predict_classes(
    model: RnnForTimeSeriesClassification, values: torch.Tensor, batch_size: int = 64
) -> np.ndarray:
    model.eval()
    logits = [
        model(values[i : i + batch_size].to(model.device)).logits.cpu()
        for i in range(0, values.size(0), batch_size)
    ]
    return torch.cat(logits).argmax(-1).numpy()  # (N,)


@torch.no_grad()
def pooled_series_features(
    model: RnnForTimeSeriesClassification, values: torch.Tensor, batch_size: int = 64
) -> np.ndarray:
    """What the classifier's head reads, one row per series of `(N, T, C)` `values`: the backbone's pooled states
    (`config.classifier_pooling`), in eval mode (no dropout). With a pretrained backbone (`classifier_from`) these
    are fixed features for a linear model fitted on few labels. Runs where the model is (`values` on the CPU).
    Returns `(N, pooled_size)`."""
    model.eval()
    captured: list[torch.Tensor] = []
    hook = model.classifier.register_forward_hook(
        lambda module, inputs, output: captured.append(inputs[0].cpu())
    )
    try:
        for start in range(0, values.size(0), batch_size):
            model(values[start : start + batch_size].to(model.device))
    finally:
        hook.remove()
    return torch.cat(captured).float().numpy()


@torch.no_grad()
def reconstruction_errors(
    model: RnnForSequenceReconstruction,
    values: torch.Tensor,
    batch_size: int = 64,
    teacher_forcing: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step absolute errors `(N, T, C)` and the anomaly scores `(N, T)` once the model's error distribution
    is fitted (else zeros). The decoder runs free (EncDec-AD's inference) or reads the true previous values
    (`teacher_forcing`: each error is then a one-step error, local to where the series departs)."""
    model.eval()
    errors, scores = [], []
    for start in range(0, values.size(0), batch_size):
        outputs = model(values[start : start + batch_size].to(model.device), teacher_forcing=teacher_forcing)
        errors.append(outputs.reconstruction_errors.cpu())
        scores.append(
            outputs.anomaly_scores.cpu()
            if outputs.anomaly_scores is not None
            else torch.zeros(outputs.reconstruction_errors.shape[:2])
        )
    return torch.cat(errors), torch.cat(scores)


def step_scores_to_points(
    step_scores: np.ndarray, series_length: int, window: int, stride: int
) -> np.ndarray:
    """One score per time step of a long series from the step scores `(num_windows, window)` of its windows
    (`rnn_hf.data.series.windows`): the largest score any window gives that step. Returns `(T,)`."""
    starts = window_starts(series_length, window, stride)
    if step_scores.shape != (len(starts), window):
        raise ValueError(f"step_scores has shape {step_scores.shape}, expected ({len(starts)}, {window}).")
    points = np.full(series_length, -np.inf)
    for start, scores in zip(starts, step_scores, strict=True):
        np.maximum(points[start : start + window], scores, out=points[start : start + window])
    return points


def steps_for(num_examples: int, batch_size: int, epochs: float) -> int:
    """Optimizer steps for `epochs` passes over `num_examples` at `batch_size`."""
    return max(1, math.ceil(epochs * num_examples / batch_size))


__all__ = [
    "SeriesModelArguments",
    "WithPretrainingObjective",
    "classifier_from",
    "finetune_classifier",
    "fit",
    "forecasting_split",
    "predict_classes",
    "pretrain_autoencoder",
    "pretrain_once",
    "pretrained_backbones",
    "pooled_series_features",
    "pretrain_forecaster",
    "reconstruction_errors",
    "series_tensor",
    "step_scores_to_points",
    "steps_for",
    "training_arguments",
]
