"""Forecasting study: the DeepAR-style RNN against seasonal naive, ETS and ARIMA on rolling-origin held-out windows.

For each set: train one forecaster on the values before the earliest held-out window (Trainer, checkpoints,
resumable), then score every method on the same windows (MASE, sMAPE, mean weighted quantile loss, 80% interval
coverage) and draw the RNN's fan chart on the last window. Writes forecasting.md and forecasting.png.

    python scripts/forecasting_study.py --datasets elecdemand co2 sunspots --output_dir docs/results
"""

import argparse
import datetime
import json
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import matplotlib
import torch
from transformers import Trainer
from transformers.utils import logging as hf_logging

from rnn_hf import RnnForTimeSeriesPrediction
from rnn_hf.data.forecasting import (
    FORECASTING_DATASETS,
    load_forecasting_data,
    load_forecasting_file,
    validation_split,
)
from rnn_hf.hub import hardware
from rnn_hf.training.cli import exit_on_user_error
from rnn_hf.training.forecast_evaluation import arima, ets, evaluate, forecast_windows, seasonal_naive
from rnn_hf.training.forecasting import (
    ForecasterArguments,
    fan_chart,
    first_origin,
    forecaster_config,
    results_table,
    rnn_forecast_fn,
    training_windows,
)
from rnn_hf.training.series import training_arguments

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--datasets", nargs="+", default=["elecdemand", "co2", "sunspots"],
                    choices=sorted(FORECASTING_DATASETS))  # fmt: skip
parser.add_argument(
    "--file",
    help="a local .csv/.parquet series instead (with --target, --timestamp_column, "
    "--prediction_length [--season_length --freq --covariates])",
)
parser.add_argument("--target")
parser.add_argument("--timestamp_column")
parser.add_argument("--prediction_length", type=int)
parser.add_argument("--season_length", type=int, default=1)
parser.add_argument("--freq")
parser.add_argument("--covariates", nargs="*", default=[])
parser.add_argument("--num_windows", type=int, default=8, help="held-out windows per series")
parser.add_argument(
    "--validation",
    action="store_true",
    help="score the --num_windows windows before the held-out ones, which are cut off: choose settings here",
)
parser.add_argument("--max_steps", type=int, default=3000, help="optimizer steps per forecaster")
parser.add_argument("--learning_rate", type=float, default=1e-3)
parser.add_argument("--batch_size", type=int, default=32)
parser.add_argument("--context_length", type=int, help="steps read before a forecast (default: 3 x horizon)")
parser.add_argument(
    "--lags_sequence",
    type=int,
    nargs="+",
    help="default: 1-7 and around one and two seasons; for sub-daily data GluonTS's lags (default_lags)",
)
parser.add_argument("--hidden_size", type=int, default=40)
parser.add_argument("--num_layers", type=int, default=2)
parser.add_argument(
    "--scaling", default="mean", choices=["mean", "std"], help="the forecaster's window scaling"
)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument(
    "--work_dir", default="runs/forecasting", help="models, checkpoints and scores (resumable)"
)
parser.add_argument(
    "--output_dir", default="runs/forecasting", help="where the report goes (docs/results for make)"
)
parser.add_argument("--no_baselines", action="store_true", help="score the RNN alone")
args = parser.parse_args()
if args.file and None in (args.target, args.timestamp_column, args.prediction_length):
    parser.error("--file needs --target, --timestamp_column and --prediction_length")
hf_logging.set_verbosity_error()
warnings.filterwarnings("ignore", module="statsmodels")
work_dir, output_dir = Path(args.work_dir), Path(args.output_dir)
started = time.time()
settings = ForecasterArguments(context_length=args.context_length, lags_sequence=args.lags_sequence,
                               hidden_size=args.hidden_size, num_layers=args.num_layers, scaling=args.scaling)  # fmt: skip
run_settings = {"forecaster": asdict(settings), "num_windows": args.num_windows, "max_steps": args.max_steps,
                "learning_rate": args.learning_rate, "batch_size": args.batch_size, "seed": args.seed,
                **({"validation": True} if args.validation else {})}  # fmt: skip
scores_path = work_dir / "scores.json"
scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
sections, charts, reused = [], [], []


@exit_on_user_error  # a bad file or a series too short: one line, status 2
def load(name: str):
    data = (load_forecasting_file(args.file, args.target, args.timestamp_column, args.prediction_length,
                                  args.season_length, args.freq, args.covariates) if args.file
            else load_forecasting_data(name))  # fmt: skip
    data = validation_split(data, args.num_windows) if args.validation else data
    return data, first_origin(data, args.num_windows), forecaster_config(data, settings)


for name in [args.file] if args.file else args.datasets:
    data, ends, config = load(name)
    name = data.name if args.file else name
    model_dir = work_dir / name
    settings_file = model_dir / "settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != run_settings:
        sys.exit(f"{model_dir} was trained under other settings ({settings_file}): pass another --work_dir.")
    if (model_dir / "model.safetensors").is_file():
        model = RnnForTimeSeriesPrediction.from_pretrained(model_dir)
        saved = (model.config.lags_sequence, model.config.context_length)
        if saved != (config.lags_sequence, config.context_length):
            sys.exit(f"{model_dir} holds a forecaster with lags {saved[0]} and context {saved[1]}, not this run's "
                     f"{config.lags_sequence} and {config.context_length}: pass another --work_dir.")  # fmt: skip
        print(f"{name}: reusing the forecaster in {model_dir}")
        reused.append(name)
    else:
        model_dir.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(run_settings, indent=2))
        torch.manual_seed(args.seed)
        windows = training_windows(data, config, ends, settings.window_stride).with_format("torch")
        print(
            f"{name}: {len(windows)} training windows of {config.past_length}+{config.prediction_length} steps"
        )
        model = RnnForTimeSeriesPrediction(config)
        training = training_arguments(
            str(model_dir / "trainer"), args.max_steps, args.learning_rate, args.batch_size, args.seed,
            disable_tqdm=False, save_strategy="steps", save_steps=500, save_total_limit=1,
        )  # fmt: skip
        resume = any((model_dir / "trainer").glob("checkpoint-*"))
        Trainer(model=model, args=training, train_dataset=windows).train(
            resume_from_checkpoint=resume or None
        )
        model.save_pretrained(model_dir)
    key = f"{name} {json.dumps(run_settings, sort_keys=True)}"
    results = scores.get(key, {})
    torch.manual_seed(args.seed)
    rnn_forecast = rnn_forecast_fn(model, data, ends)
    results["RNN (DeepAR-style, ours)"] = evaluate(rnn_forecast, data, args.num_windows, with_window=True)
    methods = [] if args.no_baselines else [("seasonal naive", seasonal_naive), ("ETS (auto)", ets),
                                             ("ARIMA (auto)", arima)]  # fmt: skip
    for method, forecast_fn in methods:
        if method not in results:
            print(f"{name}: {method}")
            results[method] = evaluate(forecast_fn, data, args.num_windows)
    scores[key] = results
    work_dir.mkdir(parents=True, exist_ok=True)
    scores_path.write_text(json.dumps(scores, indent=2))
    rnn = results["RNN (DeepAR-style, ours)"]
    print(f"{name}: RNN MASE {rnn['mase']:.3f}, " + ", ".join(f"{m} {r['mase']:.3f}" for m, r in results.items()
                                                          if m != "RNN (DeepAR-style, ours)"))  # fmt: skip
    sections += [f"## {name}", "", data.description, "",
                 f"{rnn['num_series']} series x {args.num_windows} windows of {data.prediction_length} steps "
                 f"(season {data.season_length}, frequency `{data.freq}`); the RNN: context {config.context_length}, "
                 f"lags {config.lags_sequence}, {config.num_time_features} time features, "
                 f"{model.num_parameters():,} parameters.", "", *results_table(results), ""]  # fmt: skip
    last = list(forecast_windows(data, args.num_windows))[-1]
    charts.append((data, rnn_forecast, last))

output_dir.mkdir(parents=True, exist_ok=True)
figure, axes = plt.subplots(len(charts), 1, figsize=(10, 3.2 * len(charts)), squeeze=False)
for axis, (data, forecast_fn, window) in zip(axes[:, 0], charts, strict=True):
    torch.manual_seed(args.seed)
    fan_chart(axis, data, forecast_fn, window, history_steps=min(len(window.history), 4 * data.prediction_length))  # fmt: skip
axes[0, 0].legend(loc="upper left", fontsize=8)
figure.tight_layout()
figure.savefig(output_dir / "forecasting.png", dpi=110)
lines = [
    "# Forecasting: the RNN against what users pick instead", "",
    "Rolling-origin backtest: each set's last windows are held out; the RNN (`RnnForTimeSeriesPrediction`, "
    f"student-t likelihood, {args.scaling} scaling, 200 sample paths) trains once on the values before the earliest window and "
    "reads the history up to each window's start; the baselines refit at every window (statsmodels; ETS and ARIMA "
    "orders chosen automatically by AICc). MASE scales by the in-sample seasonal naive error (lower is better); "
    "mean wQL averages the weighted quantile loss over the 0.1..0.9 quantiles (a CRPS approximation); "
    "80% coverage is the share of actual values inside the 0.1-0.9 interval (nominal: 0.80).", "",
    *sections, "![fan charts](forecasting.png)", "", "## How this was measured", "",
    f"- Command: `python scripts/forecasting_study.py {' '.join(sys.argv[1:])}`",
    f"- Date: {datetime.date.today().isoformat()}; hardware: {hardware()}",
    f"- Settings: {json.dumps(run_settings)}",
    f"- Wall time of this invocation: {(time.time() - started) / 60:.1f} min (models and scores in `{work_dir}`"
    + (f"; the forecasters of {', '.join(reused)} trained by an earlier invocation, reused)." if reused else ")."), "",
]  # fmt: skip
(output_dir / "forecasting.md").write_text("\n".join(lines))
print(f"wrote {output_dir / 'forecasting.md'} and {output_dir / 'forecasting.png'}")
