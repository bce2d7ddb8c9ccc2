"""The time-series models: cached sampling, scaling, missing values, shapes, save/load, remote code, Trainer, bad
input."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from datasets import Dataset
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTimeSeriesPrediction,
    Trainer,
    TrainingArguments,
)

from rnn_hf import (
    RnnForSequenceReconstruction,
    RnnForTimeSeriesClassification,
    RnnForTimeSeriesPrediction,
    RnnTimeSeriesConfig,
    RnnTimeSeriesModel,
)

CONTEXT, HORIZON, LAGS = 10, 4, [1, 2, 5]
PAST = CONTEXT + max(LAGS)


def forecaster_config(**overrides) -> RnnTimeSeriesConfig:
    settings = dict(
        prediction_length=HORIZON,
        context_length=CONTEXT,
        lags_sequence=LAGS,
        hidden_size=8,
        num_layers=2,
        num_parallel_samples=6,
        dropout=0.0,
    )
    settings.update(overrides)
    return RnnTimeSeriesConfig(**settings)


def positive_series(batch: int, steps: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, steps) if channels == 1 else (batch, steps, channels)
    return 5.0 + torch.rand(shape, generator=generator) * 3.0


FORECASTERS = {  # name: (config overrides, values maker)
    "student_t": ({}, lambda b, t: positive_series(b, t)),
    "normal_std": ({"distribution_output": "normal", "scaling": "std", "cell_type": "gru"}, positive_series),
    "negative_binomial": (
        {"distribution_output": "negative_binomial"},
        lambda b, t: positive_series(b, t).round(),
    ),
    "mse": ({"loss": "mse", "scaling": None}, positive_series),
    "multivariate": (
        {"input_size": 3, "distribution_output": "normal"},
        lambda b, t: positive_series(b, t, 3),
    ),
    "features": (
        {
            "num_time_features": 2,
            "num_static_categorical_features": 1,
            "cardinality": [3],
            "num_static_real_features": 1,
        },
        positive_series,
    ),
}


def forecaster_inputs(name: str, batch: int = 3) -> tuple[RnnForTimeSeriesPrediction, dict]:
    overrides, make = FORECASTERS[name]
    torch.manual_seed(0)
    model = RnnForTimeSeriesPrediction(forecaster_config(**overrides))
    inputs = {"past_values": make(batch, PAST)}
    if model.config.num_time_features:
        inputs["past_time_features"] = torch.randn(batch, PAST, 2)
        inputs["future_time_features"] = torch.randn(batch, HORIZON, 2)
        inputs["static_categorical_features"] = torch.tensor([[0], [2], [1]])[:batch]
        inputs["static_real_features"] = torch.randn(batch, 1)
    return model, inputs


# ---------------------------------------------------------------- forecasting


@pytest.mark.parametrize("name", list(FORECASTERS))
def test_cached_sampling_equals_rereading_the_context_at_every_step(name):
    model, inputs = forecaster_inputs(name)
    model.eval()
    torch.manual_seed(7)
    cached = model.generate(**inputs).sequences
    torch.manual_seed(7)
    reread = model.generate(**inputs, use_cache=False).sequences
    samples = 1 if name == "mse" else 6
    expected = (3, samples, HORIZON) + ((3,) if name == "multivariate" else ())
    assert cached.shape == expected
    assert torch.allclose(cached, reread, atol=1e-4, rtol=1e-4)
    assert torch.isfinite(cached).all()
    assert not cached.requires_grad and not reread.requires_grad  # sampling builds no autograd graph
    if name == "negative_binomial":
        assert torch.equal(cached, cached.round()) and (cached >= 0).all()
    torch.manual_seed(8)
    assert model.generate(**inputs, num_parallel_samples=2).sequences.shape[1] == (1 if name == "mse" else 2)


def test_the_first_sample_comes_from_the_forward_pass_distribution():
    """`forward` without `future_values` ends with the step that forecasts the first future value."""
    model, inputs = forecaster_inputs("normal_std")
    model.eval()
    outputs = model(**{k: v for k, v in inputs.items() if "future" not in k})
    distribution = model.distribution(tuple(p[:, -1:] for p in outputs.params), outputs.loc, outputs.scale)
    torch.manual_seed(3)
    expected = distribution.sample()[:, 0]
    torch.manual_seed(3)
    sequences = model.generate(**inputs, num_parallel_samples=1).sequences
    assert torch.allclose(sequences[:, 0, 0], expected, atol=1e-5)


def test_summaries_of_the_samples():
    model, inputs = forecaster_inputs("student_t")
    model.eval()
    output = model.generate(**inputs, num_parallel_samples=50)
    quantiles = output.quantile([0.1, 0.5, 0.9])
    assert quantiles.shape == (3, 3, HORIZON)
    assert (quantiles[0] <= quantiles[1]).all() and (quantiles[1] <= quantiles[2]).all()
    assert torch.allclose(output.median(), output.sequences.median(dim=1).values)
    assert torch.allclose(output.mean(), output.sequences.mean(dim=1))


@pytest.mark.parametrize("scaling", ["mean", "std", None])
def test_scaling_round_trips(scaling):
    config = forecaster_config(scaling=scaling)
    backbone = RnnTimeSeriesModel(config)
    values = positive_series(4, PAST)[:, :, None] * torch.tensor([1.0, 10.0, 100.0, 1000.0])[:, None, None]
    outputs = backbone(values[:, :, 0], return_dict=True)
    assert torch.allclose(outputs.scaled_values * outputs.scale + outputs.loc, values, rtol=1e-5)
    context = values[:, -CONTEXT:]
    if scaling == "mean":
        assert torch.allclose(outputs.scale, context.abs().mean(1, keepdim=True))
    elif scaling == "std":
        assert torch.allclose(outputs.loc, context.mean(1, keepdim=True))
        scaled_context = outputs.scaled_values[:, -CONTEXT:]
        assert torch.allclose(scaled_context.std(1, unbiased=False), torch.ones(4, 1), atol=1e-3)
    else:
        assert torch.equal(outputs.scaled_values, values)


def test_missing_values_are_left_out_of_the_loss_and_the_scale():
    model, inputs = forecaster_inputs("student_t")
    model.eval()
    past, future = inputs["past_values"], positive_series(3, HORIZON, seed=1)
    with_nan, with_nonsense = past.clone(), past.clone()
    with_nan[0, 8], with_nan[1, 2], with_nan[2, -1] = float("nan"), float("nan"), float("nan")
    mask = (~torch.isnan(with_nan)).float()
    with_nonsense[~mask.bool()] = 1e6  # any value at a masked position
    future_nan = future.clone()
    future_nan[1, 2] = float("nan")
    loss_nan = model(past_values=with_nan, future_values=future_nan).loss
    loss_masked = model(
        past_values=with_nonsense,
        past_observed_mask=mask,
        future_values=future_nan.nan_to_num(123.0),
        future_observed_mask=(~torch.isnan(future_nan)).float(),
    ).loss
    assert torch.isfinite(loss_nan)
    assert torch.allclose(loss_nan, loss_masked)

    # the loss is the mean negative log-likelihood of the observed values alone
    outputs = model(past_values=with_nan, future_values=future_nan)
    distribution = model.distribution(outputs.params, outputs.loc, outputs.scale)
    target = torch.cat([with_nan, future_nan], dim=1)[:, max(LAGS) :]
    observed = ~torch.isnan(target)
    nll = -distribution.log_prob(target.nan_to_num(0.0))
    assert torch.allclose(loss_nan, nll[observed].mean())

    # the scale comes from the observed context values only
    context = with_nan[:, -CONTEXT:]
    expected_scale = torch.stack([row[~torch.isnan(row)].abs().mean() for row in context])
    assert torch.allclose(outputs.scale[:, 0, 0], expected_scale)


def test_training_lowers_the_loss_with_trainer(tmp_path):
    """Trainer trains each head a few steps from a `datasets.Dataset` of windows."""
    torch.manual_seed(0)
    steps = torch.arange(PAST + HORIZON, dtype=torch.float32)
    rows = []
    for phase in range(16):
        series = 10 + 3 * torch.sin(2 * torch.pi * (steps + phase) / 6)
        rows.append({"past_values": series[:PAST].tolist(), "future_values": series[PAST:].tolist()})
    train = Dataset.from_list(rows)
    model = RnnForTimeSeriesPrediction(forecaster_config(distribution_output="normal"))
    args = TrainingArguments(
        output_dir=str(tmp_path / "forecaster"),
        per_device_train_batch_size=8,
        num_train_epochs=30,
        learning_rate=1e-2,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < losses[0] - 0.5

    windows = Dataset.from_list([{"past_values": row["past_values"]} for row in rows])
    autoencoder = RnnForSequenceReconstruction(
        RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8, dropout=0.0)
    )
    trainer = Trainer(model=autoencoder, args=args, train_dataset=windows)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < losses[0]

    labelled = Dataset.from_list(
        [{"past_values": row["past_values"], "labels": i % 2} for i, row in enumerate(rows)]
    )
    classifier = RnnForTimeSeriesClassification(
        RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8, num_labels=2, dropout=0.0)
    )
    trainer = Trainer(model=classifier, args=args, train_dataset=labelled)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < losses[0]


# ---------------------------------------------------------------- reconstruction


def test_reconstruction_reverses_the_window_and_scores_anomalies():
    torch.manual_seed(0)
    config = RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8, dropout=0.0, scaling="std")
    model = RnnForSequenceReconstruction(config).eval()
    windows = torch.randn(5, 12)
    forced = model(windows, teacher_forcing=True)
    free = model(windows)
    assert forced.reconstruction.shape == windows.shape and forced.embedding.shape == (5, 8)
    assert not torch.allclose(forced.reconstruction, free.reconstruction)  # inference feeds its own outputs
    assert forced.anomaly_scores is None

    # teacher forcing, by hand: from the encoder's final state, the decoder reads 0, x[T-1], ..., x[1] and
    # writes x[T-1], ..., x[0]
    raw = RnnForSequenceReconstruction(
        RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8, dropout=0.0, scaling=None)
    ).eval()
    encoded = raw.model(windows, read_next=True, return_dict=True)
    reversed_windows = windows.flip(1)[:, :, None]  # (B, T, 1)
    decoder_inputs = torch.cat([torch.zeros(5, 1, 1), reversed_windows[:, :-1]], dim=1)
    hidden, _, _ = raw.decoder(decoder_inputs, cache=raw.copy_state(encoded.cache))
    by_hand = raw.projection(hidden)[:, :, 0].flip(1)
    assert torch.allclose(raw(windows, teacher_forcing=True).reconstruction, by_hand, atol=1e-6)

    model.fit_error_distribution(free.reconstruction_errors)
    scored = model(windows)
    assert scored.anomaly_scores.shape == (5, 12) and scored.window_scores.shape == (5,)
    spiked = windows.clone()
    spiked[:, 6] += 50.0
    assert (model(spiked).anomaly_scores[:, 6] > scored.anomaly_scores[:, 6]).all()
    errors = free.reconstruction_errors  # (5, 12, 1)
    with pytest.raises(ValueError, match=r"`errors` must have shape .* got \(5, 12, 2\)"):
        model.fit_error_distribution(errors.expand(5, 12, 2))  # two channels for a univariate model
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.fit_error_distribution(errors.masked_fill(torch.rand_like(errors) < 0.2, float("nan")))
    with pytest.raises(ValueError, match="`observed_mask` has shape"):
        model.fit_error_distribution(errors, observed_mask=torch.ones(5, 11))
    observed = torch.ones(5, 12)
    observed[:, 0] = 0  # a step left out of the fit, given without the channel axis
    model.fit_error_distribution(errors.clone().index_fill_(1, torch.tensor([0]), float("nan")), observed)
    torch.testing.assert_close(model.error_mean, errors[:, 1:].reshape(-1, 1).mean(0))
    model.fit_error_distribution(errors[:, :, 0], observed[:, :])  # univariate: (windows, steps) is enough
    torch.testing.assert_close(model.error_mean, errors[:, 1:].reshape(-1, 1).mean(0))


def test_reconstruction_missing_values_stay_out_of_the_loss():
    torch.manual_seed(0)
    model = RnnForSequenceReconstruction(
        RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8, dropout=0.0, reconstruction_loss="normal")
    ).eval()
    windows = torch.randn(3, 10)
    with_nan = windows.clone()
    with_nan[0, 4] = float("nan")
    mask = (~torch.isnan(with_nan)).float()
    a = model(with_nan, teacher_forcing=True)
    b = model(windows.masked_fill(mask == 0, -999.0), past_observed_mask=mask, teacher_forcing=True)
    assert torch.isfinite(a.loss) and torch.allclose(a.loss, b.loss)
    assert a.reconstruction_errors[0, 4, 0] == 0


# ---------------------------------------------------------------- classification


def test_classifier_starts_from_a_forecasters_backbone(tmp_path):
    torch.manual_seed(0)
    forecaster = RnnForTimeSeriesPrediction(forecaster_config(lags_sequence=[1, 2], num_layers=1))
    forecaster.save_pretrained(tmp_path / "forecaster")
    classifier = RnnForTimeSeriesClassification.from_pretrained(tmp_path / "forecaster", num_labels=3)
    for name, param in forecaster.model.state_dict().items():
        assert torch.equal(param, classifier.model.state_dict()[name]), name
    series = positive_series(4, 30, channels=1)
    outputs = classifier(series, labels=torch.tensor([0, 1, 2, 0]))
    assert outputs.logits.shape == (4, 3) and torch.isfinite(outputs.loss)

    regression = RnnForTimeSeriesClassification(
        RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8, num_labels=1, input_size=2)
    )
    out = regression(positive_series(4, 20, channels=2), labels=torch.randn(4))
    assert regression.config.problem_type == "regression" and out.logits.shape == (4, 1)


# ---------------------------------------------------------------- saving, loading, remote code


def test_save_and_load_through_auto_classes(tmp_path):
    model, inputs = forecaster_inputs("features")
    model.save_pretrained(tmp_path / "forecaster")
    assert AutoConfig.from_pretrained(tmp_path / "forecaster").model_type == "rnn_time_series"
    loaded = AutoModelForTimeSeriesPrediction.from_pretrained(tmp_path / "forecaster").eval()
    assert type(loaded) is RnnForTimeSeriesPrediction
    model.eval()
    torch.manual_seed(1)
    expected = model.generate(**inputs).sequences
    torch.manual_seed(1)
    assert torch.equal(loaded.generate(**inputs).sequences, expected)

    classifier = RnnForTimeSeriesClassification(RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8))
    classifier.save_pretrained(tmp_path / "classifier")
    assert type(AutoModelForSequenceClassification.from_pretrained(tmp_path / "classifier")) is type(
        classifier
    )

    autoencoder = RnnForSequenceReconstruction(RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8)).eval()
    windows = torch.randn(4, 9)
    autoencoder.fit_error_distribution(autoencoder(windows).reconstruction_errors)
    autoencoder.save_pretrained(tmp_path / "autoencoder")
    reloaded = RnnForSequenceReconstruction.from_pretrained(tmp_path / "autoencoder").eval()
    assert torch.equal(reloaded(windows).anomaly_scores, autoencoder(windows).anomaly_scores)
    assert type(AutoModel.from_pretrained(tmp_path / "forecaster")) is RnnTimeSeriesModel


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["rnn_hf"] = None  # any `import rnn_hf` now fails
    import torch
    from transformers import AutoModel, AutoModelForTimeSeriesPrediction
    model = AutoModelForTimeSeriesPrediction.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    assert "rnn_hf" not in type(model).__module__, type(model).__module__
    past = 5.0 + torch.arange(2 * 15, dtype=torch.float32).reshape(2, 15) % 4
    torch.manual_seed(0)
    print("FORECAST", model.generate(past).sequences.tolist())
    autoencoder = AutoModel.from_pretrained(sys.argv[2], trust_remote_code=True).eval()
    print("ERRORS", type(autoencoder).__name__, autoencoder(past).loss.item())
    """
)


def test_trust_remote_code_loads_where_rnn_hf_is_not_importable(tmp_path):
    torch.manual_seed(0)
    model = RnnForTimeSeriesPrediction(forecaster_config()).eval()
    model.save_pretrained(tmp_path / "forecaster")
    auto_map = json.loads((tmp_path / "forecaster" / "config.json").read_text())["auto_map"]
    assert (
        auto_map["AutoModelForTimeSeriesPrediction"] == "modeling_rnn_time_series.RnnForTimeSeriesPrediction"
    )
    assert all(path.split(".")[0].endswith("time_series") for path in auto_map.values()), auto_map
    autoencoder = RnnForSequenceReconstruction(RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8)).eval()
    autoencoder.save_pretrained(tmp_path / "autoencoder")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT, str(tmp_path / "forecaster"), str(tmp_path / "autoencoder")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    past = 5.0 + torch.arange(2 * 15, dtype=torch.float32).reshape(2, 15) % 4
    torch.manual_seed(0)
    expected = model.generate(past).sequences
    forecast = torch.tensor(json.loads(result.stdout.split("FORECAST ", 1)[1].splitlines()[0]))
    assert torch.allclose(forecast, expected, atol=1e-5)
    name, loss = result.stdout.split("ERRORS ", 1)[1].split()
    assert name == "RnnForSequenceReconstruction"
    assert abs(float(loss) - autoencoder(past).loss.item()) < 1e-5


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors():
    model, inputs = forecaster_inputs("features")
    past = inputs["past_values"]
    with pytest.raises(ValueError, match="no observed value in its window"):
        bad = past.clone()
        bad[1, -CONTEXT:] = float("nan")
        model(**{**inputs, "past_values": bad})
    with pytest.raises(ValueError, match="context_length \\+ max\\(lags_sequence\\)"):
        model(
            **{
                **inputs,
                "past_values": past[:, 3:],
                "past_time_features": inputs["past_time_features"][:, 3:],
            }
        )
    with pytest.raises(ValueError, match="must be a float tensor"):
        model(**{**inputs, "past_values": past.long()})
    with pytest.raises(ValueError, match=f"`future_values` has {HORIZON + 1} steps but prediction_length"):
        model(**{**inputs, "future_values": torch.randn(3, HORIZON + 1)})
    with pytest.raises(ValueError, match="`past_values` has .* steps; this forecaster takes"):
        model.generate(**{k: v[:, 3:] if k.startswith("past_") else v for k, v in inputs.items()})
    with pytest.raises(ValueError, match="past_time_features"):
        model(**{**inputs, "past_time_features": inputs["past_time_features"][:, :, :1]})
    with pytest.raises(ValueError, match="future_time_features"):
        model.generate(**{**inputs, "future_time_features": inputs["future_time_features"][:, :2]})
    with pytest.raises(ValueError, match="static_categorical_features"):
        model(**{**inputs, "static_categorical_features": torch.tensor([[0], [5], [1]])})
    with pytest.raises(ValueError, match="infinite"):
        bad = past.clone()
        bad[0, 3] = float("inf")
        model(**{**inputs, "past_values": bad})
    with pytest.raises(TypeError, match="unexpected keyword argument 'attention_mask'"):
        model(**inputs, attention_mask=torch.ones(3, PAST))
    counts, _ = forecaster_inputs("negative_binomial")
    with pytest.raises(ValueError, match="non-negative integers"):
        counts(past_values=positive_series(3, PAST), future_values=positive_series(3, HORIZON))
    with pytest.raises(ValueError, match="longest lag"):
        RnnForTimeSeriesClassification(RnnTimeSeriesConfig(lags_sequence=[12], hidden_size=8))(
            torch.randn(2, 12)
        )
    with pytest.raises(ValueError, match="labels"):
        RnnForTimeSeriesClassification(RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8))(
            torch.randn(2, 12), labels=torch.tensor([0, 4])
        )
    with pytest.raises(ValueError, match="integer class ids"):
        RnnForTimeSeriesClassification(
            RnnTimeSeriesConfig(lags_sequence=[1], hidden_size=8, problem_type="single_label_classification")
        )(torch.randn(2, 12), labels=torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"lags_sequence": [0, 1]}, "lags_sequence"),
        ({"lags_sequence": []}, "lags_sequence"),
        ({"scaling": "max"}, "scaling"),
        ({"distribution_output": "poisson"}, "distribution_output"),
        ({"loss": "mae"}, "loss"),
        ({"prediction_length": 0}, "prediction_length"),
        ({"num_static_categorical_features": 2, "cardinality": [3]}, "cardinality"),
        ({"distribution_output": "negative_binomial", "scaling": "std"}, "negative_binomial"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_config_rejects_invalid_arguments(settings, message):
    with pytest.raises(ValueError, match=message):
        RnnTimeSeriesConfig(**settings)
    with pytest.raises(ValueError, match="prediction_length"):
        RnnForTimeSeriesPrediction(RnnTimeSeriesConfig())
