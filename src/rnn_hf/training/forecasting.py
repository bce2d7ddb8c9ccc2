"""Training and backtesting the DeepAR-style forecaster on a forecasting set (`rnn_hf.data.forecasting`).

    data = load_forecasting_data("elecdemand")
    settings = ForecasterArguments()
    windows = training_windows(data, settings, end=first_origin(data, num_windows=8))  # before every test window
    model = RnnForTimeSeriesPrediction(forecaster_config(data, settings))
    Trainer(model=model, args=training_args, train_dataset=windows).train()
    scores = evaluate(rnn_forecast_fn(model, data, settings), data, num_windows=8, with_window=True)

One model per set, trained once on the values before the earliest held-out window (a global model for sets of
many series), then conditioned at each rolling origin on the history up to it: the backtest GluonTS runs.
Calendar features come from the timestamps; covariates (`feat_dynamic_real`) are known time features,
standardized with their training-part mean and deviation.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from pandas.tseries.frequencies import to_offset

from ..configuration_rnn_time_series import RnnTimeSeriesConfig
from ..data.forecasting import ForecastingData, time_features
from ..modeling_rnn_time_series import RnnForTimeSeriesPrediction
from .forecast_evaluation import ForecastWindow, rolling_origins


@dataclass
class ForecasterArguments:
    """The forecaster's settings (DeepAR's defaults where it has one)."""

    context_length: int | None = field(
        default=None, metadata={"help": "steps read before the forecast; default: 3 x prediction_length"}
    )
    lags_sequence: list[int] | None = field(
        default=None,
        metadata={"help": "lags read at each step; default: `default_lags(season_length, freq)`"},
    )
    hidden_size: int = field(default=40, metadata={"help": "width of each recurrent layer"})
    num_layers: int = field(default=2, metadata={"help": "number of recurrent layers"})
    cell_type: str = field(default="lstm", metadata={"help": "lstm or gru"})
    dropout: float = field(
        default=0.1, metadata={"help": "dropout between layers and before the output layer"}
    )
    distribution_output: str = field(
        default="student_t", metadata={"help": "student_t, normal or negative_binomial"}
    )
    scaling: str = field(default="mean", metadata={"help": "mean or std scaling of each window"})
    num_parallel_samples: int = field(default=200, metadata={"help": "sample paths per forecast"})
    window_stride: int = field(default=1, metadata={"help": "steps between the starts of training windows"})


def default_lags(season_length: int, freq: str | None = None) -> list[int]:
    """Lags 1-7, and around one and two seasons. For sub-daily series (`freq` such as `"30min"` or `"h"`) the lags
    of GluonTS's `get_lags_for_frequency` instead: around each of the last three hours when a step is shorter than
    an hour, and, when the season is a day, around the same time on each of the last seven days (which tells
    weekdays from weekends)."""
    lags = set(range(1, 8))
    step = _step(freq) if freq is not None else None
    hour, day = pd.Timedelta(hours=1), pd.Timedelta(days=1)
    if step is not None and step < hour and hour % step == pd.Timedelta(0):
        per_hour = hour // step
        lags |= {hours * per_hour + shift for hours in range(1, 4) for shift in range(-2, 3)} - {0}
    if season_length > 1:
        if step is not None and step * season_length == day:
            lags |= {days * season_length + shift for days in range(1, 8) for shift in (-1, 0, 1)}
        else:
            lags |= {season_length - 1, season_length, season_length + 1, 2 * season_length}
    return sorted(lags)


def _step(freq: str) -> pd.Timedelta | None:
    """The length of one step of a fixed frequency (`"30min"`, `"h"`), None for calendar ones (`"D"`, `"MS"`)."""
    try:
        return pd.Timedelta(to_offset(freq))
    except ValueError:
        return None


def forecaster_config(data: ForecastingData, settings: ForecasterArguments) -> RnnTimeSeriesConfig:
    horizon = data.prediction_length
    num_covariates = len(data.dataset[0].get("feat_dynamic_real") or [])
    return RnnTimeSeriesConfig(
        prediction_length=horizon,
        context_length=settings.context_length or 3 * horizon,
        lags_sequence=settings.lags_sequence or default_lags(data.season_length, data.freq),
        num_time_features=data.num_time_features + num_covariates,
        hidden_size=settings.hidden_size,
        num_layers=settings.num_layers,
        cell_type=settings.cell_type,
        dropout=settings.dropout,
        distribution_output=settings.distribution_output,
        scaling=settings.scaling,
        num_parallel_samples=settings.num_parallel_samples,
    )


def first_origin(data: ForecastingData, num_windows: int) -> list[int]:
    """Per series, where its earliest held-out window starts: training windows end before it."""
    return [
        rolling_origins(len(row["target"]), data.prediction_length, num_windows)[0] for row in data.dataset
    ]


def covariate_statistics(data: ForecastingData, ends: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and deviation `(num_covariates, 1)` of the covariates over the training parts (None without any)."""
    if "feat_dynamic_real" not in data.dataset.column_names:
        return None
    parts = [
        np.asarray(row["feat_dynamic_real"])[:, :end] for row, end in zip(data.dataset, ends, strict=True)
    ]
    values = np.concatenate(parts, axis=1)  # (num_covariates, steps)
    return np.nanmean(values, axis=1, keepdims=True), np.nanstd(values, axis=1, keepdims=True) + 1e-8


def step_features(
    data: ForecastingData, start: str, length: int, covariates: np.ndarray | None, statistics
) -> np.ndarray:
    """Known features of the first `length` steps of a series: calendar features, then standardized covariates
    (NaN covariates as their mean, 0). Returns `(length, num_time_features)` float32."""
    features = [time_features(start, length, data.freq)]  # (length, k)
    if covariates is not None:
        mean, deviation = statistics
        standardized = (np.asarray(covariates, dtype=float)[:, :length] - mean) / deviation
        features.append(np.nan_to_num(standardized).T)  # (length, num_covariates)
    return np.concatenate(features, axis=1).astype(np.float32)


def training_windows(
    data: ForecastingData, config: RnnTimeSeriesConfig, ends: list[int], stride: int = 1
) -> Dataset:
    """Every window of `past_length + prediction_length` steps that ends before each series' `ends` (its first
    held-out step), `stride` steps apart, as rows for `Trainer`. A series shorter than a window is padded in front
    with NaN (missing); windows whose context holds no observed value are left out."""
    past, horizon = config.past_length, config.prediction_length
    statistics = covariate_statistics(data, ends)
    rows = {
        name: [] for name in ("past_values", "future_values", "past_time_features", "future_time_features")
    }
    for row, end in zip(data.dataset, ends, strict=True):
        target = np.asarray(row["target"], dtype=np.float32)[:end]
        features = step_features(data, row["start"], end, row.get("feat_dynamic_real"), statistics)
        pad = max(0, past + horizon - end)
        target = np.concatenate([np.full(pad, np.nan, dtype=np.float32), target])
        features = np.concatenate([np.repeat(features[:1], pad, axis=0), features])
        for window_end in range(len(target), past + horizon - 1, -stride):
            start = window_end - past - horizon
            context = target[start + past - config.context_length : start + past]
            if np.isnan(context).all():
                continue
            rows["past_values"].append(target[start : start + past])
            rows["future_values"].append(target[start + past : window_end])
            rows["past_time_features"].append(features[start : start + past])
            rows["future_time_features"].append(features[start + past : window_end])
    if config.num_time_features == 0:
        del rows["past_time_features"], rows["future_time_features"]
    if not rows["past_values"]:
        raise ValueError(
            f"{data.name}: no training window with an observed context before the held-out windows."
        )
    return Dataset.from_dict({name: np.stack(values) for name, values in rows.items()})


def rnn_forecast_fn(model: RnnForTimeSeriesPrediction, data: ForecastingData, ends: list[int]):
    """A `forecast_fn` for `forecast_evaluation.evaluate(..., with_window=True)`: quantiles of the model's sample
    paths conditioned on the window's history (its last `past_length` steps, NaN-padded in front if shorter)."""
    config = model.config
    statistics = covariate_statistics(data, ends)
    model.eval()

    def forecast(history, prediction_length, season_length, quantiles, window: ForecastWindow):
        origin = window.origin
        features = step_features(data, window.start, origin + prediction_length, window.feat_dynamic_real,
                                 statistics)  # fmt: skip
        past = config.past_length
        pad = max(0, past - origin)
        values = np.concatenate([np.full(pad, np.nan), history])[-past:]
        past_features = np.concatenate([np.repeat(features[:1], pad, axis=0), features[:origin]])[-past:]
        known = config.num_time_features > 0

        def tensor(array):  # one series, on the model's device
            return torch.tensor(array, dtype=torch.float32, device=model.device)[None]

        with torch.no_grad():
            sequences = model.generate(
                past_values=tensor(values),
                past_time_features=tensor(past_features) if known else None,
                future_time_features=tensor(features[origin:]) if known else None,
            ).sequences[0]  # (num_samples, prediction_length)
        levels = np.quantile(sequences.cpu().numpy(), list(quantiles), axis=0)  # (Q, prediction_length)
        return dict(zip(quantiles, levels, strict=True))

    return forecast


# ---- the study's report: one table per set, fan charts


METRIC_COLUMNS = (
    ("mase", "MASE"),
    ("smape", "sMAPE (%)"),
    ("mean_wql", "mean wQL"),
    ("coverage_80", "80% coverage"),
)


def results_table(results: dict[str, dict]) -> list[str]:
    """Markdown rows: one per method of one set, best MASE / sMAPE / wQL in bold."""
    lines = ["| method | " + " | ".join(title for _, title in METRIC_COLUMNS) + " |",
             "|---|" + "---|" * len(METRIC_COLUMNS)]  # fmt: skip
    best = {key: min(r[key] for r in results.values()) for key, _ in METRIC_COLUMNS if key != "coverage_80"}
    for method, scores in results.items():
        cells = []
        for key, _ in METRIC_COLUMNS:
            text = f"{scores[key]:.3f}" if key != "smape" else f"{scores[key]:.2f}"
            cells.append(f"**{text}**" if key in best and scores[key] == best[key] else text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def fan_chart(axes, data: ForecastingData, forecast_fn, window: ForecastWindow, history_steps: int) -> None:
    """The actuals of `window` and the last `history_steps` before it, under the forecast's median and its 50%
    and 90% intervals."""
    quantiles = (0.05, 0.25, 0.5, 0.75, 0.95)
    levels = forecast_fn(window.history, data.prediction_length, data.season_length, quantiles, window=window)
    steps = np.arange(window.origin - history_steps, window.origin + data.prediction_length)
    axes.plot(
        steps[:history_steps], window.history[-history_steps:], color="black", linewidth=1, label="history"
    )
    future = steps[history_steps:]
    axes.plot(future, window.actual, color="black", linestyle="--", linewidth=1, label="actual")
    axes.fill_between(future, levels[0.05], levels[0.95], alpha=0.2, color="tab:blue", label="90% interval")
    axes.fill_between(future, levels[0.25], levels[0.75], alpha=0.4, color="tab:blue", label="50% interval")
    axes.plot(future, levels[0.5], color="tab:blue", linewidth=1.5, label="median")
    axes.set_title(f"{data.name} ({window.item_id}), last held-out window")
    axes.set_xlabel(f"step ({data.freq})")


__all__ = [
    "ForecasterArguments",
    "covariate_statistics",
    "default_lags",
    "fan_chart",
    "first_origin",
    "forecaster_config",
    "results_table",
    "rnn_forecast_fn",
    "step_features",
    "training_windows",
]
