"""The time-series training library: forecasting windows and backtests, series pretraining and fine-tuning, anomaly
scores; the three study scripts at a tiny size (slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset

from rnn_hf import RnnForSequenceReconstruction, RnnForTimeSeriesPrediction
from rnn_hf.data.forecasting import load_forecasting_data
from rnn_hf.data.series import GENERAL_SERIES_SOURCES, load_ucr, windows
from rnn_hf.training.forecast_evaluation import evaluate, forecast_windows
from rnn_hf.training.forecasting import (
    ForecasterArguments,
    covariate_statistics,
    default_lags,
    first_origin,
    forecaster_config,
    rnn_forecast_fn,
    training_windows,
)
from rnn_hf.training.series import (
    SeriesModelArguments,
    WithPretrainingObjective,
    classifier_from,
    finetune_classifier,
    fit,
    pooled_series_features,
    predict_classes,
    pretrain_autoencoder,
    pretrain_forecaster,
    pretrain_once,
    pretrained_backbones,
    reconstruction_errors,
    series_tensor,
    step_scores_to_points,
    training_arguments,
)

REPO = Path(__file__).resolve().parents[1]


def test_training_windows_end_before_the_held_out_windows():
    data = load_forecasting_data("elecdemand")
    config = forecaster_config(data, ForecasterArguments(context_length=48, lags_sequence=[1, 48]))
    ends = first_origin(data, num_windows=2)
    rows = training_windows(data, config, ends, stride=500)
    target = np.asarray(data.dataset[0]["target"])
    assert ends == [len(target) - 2 * 48]
    assert np.allclose(
        rows[0]["future_values"], target[ends[0] - 48 : ends[0]]
    )  # the latest ends at the origin
    assert len(rows[0]["past_values"]) == config.past_length == 48 + 48
    assert np.asarray(rows[0]["past_time_features"]).shape == (96, config.num_time_features)
    # covariates (temperature, work day) are standardized with the training part only
    mean, deviation = covariate_statistics(data, ends)
    covariates = np.asarray(data.dataset[0]["feat_dynamic_real"])[:, : ends[0]]
    assert np.allclose(mean[:, 0], covariates.mean(1)) and np.allclose(
        deviation[:, 0], covariates.std(1), rtol=1e-6
    )


def test_default_lags_cover_a_week_for_a_daily_season_of_a_sub_daily_series():
    week = [day * 48 + shift for day in range(1, 8) for shift in (-1, 0, 1)]
    assert default_lags(48, "30min") == [*range(1, 9), *week]  # 1-8: around each of the last three hours
    assert default_lags(96, "15min")[:15] == [*range(1, 15), 95]
    assert default_lags(24, "h")[-3:] == [167, 168, 169]
    assert default_lags(52, "W-SAT") == [*range(1, 8), 51, 52, 53, 104]  # calendar frequencies: two seasons
    assert default_lags(12, "MS") == default_lags(12) == [*range(1, 8), 11, 12, 13, 24]
    assert default_lags(1, "MS") == list(range(1, 8))
    config = forecaster_config(load_forecasting_data("elecdemand"), ForecasterArguments())
    assert config.lags_sequence[-1] == 337 and config.past_length == 144 + 337


def test_backtest_of_a_forecaster_gives_ordered_quantiles_and_scores():
    data = load_forecasting_data("airline")
    settings = ForecasterArguments(context_length=24, lags_sequence=[1, 12], hidden_size=8, num_layers=1,
                                   num_parallel_samples=50)  # fmt: skip
    ends = first_origin(data, num_windows=2)
    torch.manual_seed(0)
    model = RnnForTimeSeriesPrediction(forecaster_config(data, settings))
    forecast = rnn_forecast_fn(model, data, ends)
    window = list(forecast_windows(data, num_windows=2))[0]
    levels = forecast(window.history, 12, 12, (0.1, 0.5, 0.9), window=window)
    assert all(levels[q].shape == (12,) for q in (0.1, 0.5, 0.9))
    assert (levels[0.1] <= levels[0.5]).all() and (levels[0.5] <= levels[0.9]).all()
    scores = evaluate(forecast, data, num_windows=2, with_window=True)
    assert scores["num_forecasts"] == 2 and np.isfinite(scores["mase"]) and 0 <= scores["coverage_80"] <= 1


def test_short_series_are_padded_with_missing_values():
    """M1's yearly series are shorter than some windows: the front is NaN, which the model treats as missing."""
    data = load_forecasting_data("m1_yearly")
    config = forecaster_config(data, ForecasterArguments(context_length=12, hidden_size=8))
    rows = training_windows(data, config, first_origin(data, num_windows=1), stride=6)
    past = np.asarray(rows["past_values"])
    assert np.isnan(past).any() and not np.isnan(past[:, -config.context_length :]).all(axis=1).any()
    assert "past_time_features" not in rows.column_names  # yearly data: no calendar feature


def test_pretraining_then_few_label_fine_tuning_on_a_ucr_set(tmp_path):
    ucr = load_ucr("ItalyPowerDemand")
    values = series_tensor(ucr["train"])
    assert values.shape == (67, 24, 1)
    settings = SeriesModelArguments(hidden_size=8)
    forecaster = pretrain_forecaster(values, settings, training_arguments(str(tmp_path), 5, 1e-2, 16, 0))
    autoencoder = pretrain_autoencoder(values, settings, training_arguments(str(tmp_path), 5, 1e-2, 16, 0))
    labels = np.asarray(ucr["train"]["label"])
    for init in (None, forecaster, autoencoder):
        classifier = finetune_classifier(init, settings, values[:4], labels[:4], 2,
                                         training_arguments(str(tmp_path), 3, 1e-2, 4, 0))  # fmt: skip
        assert set(predict_classes(classifier, values)) <= {0, 1}
    errors, scores = reconstruction_errors(autoencoder, values)
    assert errors.shape == (67, 24, 1) and not scores.any()  # no error model fitted yet: zero scores
    autoencoder.fit_error_distribution(errors)
    assert reconstruction_errors(autoencoder, values)[1].shape == (67, 24)


def test_fine_tuning_a_pretrained_backbone_fixed_or_at_a_lower_rate(tmp_path):
    values = series_tensor(load_ucr("ItalyPowerDemand")["train"])[:8]
    labels = np.array([0, 1] * 4)
    settings = SeriesModelArguments(hidden_size=8)
    autoencoder = pretrain_autoencoder(values, settings, training_arguments(str(tmp_path), 2, 1e-2, 4, 0))
    pretrained = {name: weight.clone() for name, weight in autoencoder.model.state_dict().items()}
    short = training_arguments(str(tmp_path), 3, 1e-2, 4, 0)
    for frozen in ({"freeze_backbone": True}, {"backbone_lr_ratio": 0}):
        fixed = finetune_classifier(autoencoder, settings, values, labels, 2, short, **frozen)
        assert all(torch.equal(weight, pretrained[name]) for name, weight in fixed.model.state_dict().items())
    with pytest.raises(ValueError, match="backbone_lr_ratio must lie in"):
        finetune_classifier(autoencoder, settings, values, labels, 2, short, backbone_lr_ratio=1.5)
    fixed.model.requires_grad_(True)  # then the backbone at 0.1x the head's rate
    trainer = fit(fixed, Dataset.from_dict({"past_values": values.numpy(), "labels": labels}),
                  training_arguments(str(tmp_path), 1, 1e-2, 4, 0), backbone_lr_ratio=0.1)  # fmt: skip
    backbone = {id(p) for p in fixed.model.parameters()}
    rates = {id(p): group["initial_lr"] for group in trainer.optimizer.param_groups for p in group["params"]}
    assert len(rates) == len(list(fixed.parameters()))
    assert all(rate == pytest.approx(1e-3 if key in backbone else 1e-2) for key, rate in rates.items())


def test_fine_tuning_with_the_pretraining_objective_kept_on_the_unlabeled_series(tmp_path):
    values = series_tensor(load_ucr("ItalyPowerDemand")["train"])[:8]
    labels = torch.tensor([0, 1] * 4)
    settings = SeriesModelArguments(hidden_size=8, dropout=0.0)
    short = training_arguments(str(tmp_path), 2, 1e-2, 4, 0)
    forecaster = pretrain_forecaster(values, settings, short)
    autoencoder = pretrain_autoencoder(values, settings, short)
    for pretrained in (forecaster, autoencoder):
        before = {name: weight.clone() for name, weight in pretrained.state_dict().items()}
        classifier = classifier_from(pretrained, settings, 1, 2)
        both = WithPretrainingObjective(
            classifier, pretrained, values, 0.5, 4, torch.Generator().manual_seed(3)
        )
        assert both.objective.model is classifier.model and both.model is classifier.model
        assert both.objective.model is not pretrained.model  # the caller's model is left as it was
        # the training loss: classification + 0.5 x the objective's loss on 4 unlabeled series drawn by the generator
        rows = torch.randint(8, (4,), generator=torch.Generator().manual_seed(3))
        if pretrained is forecaster:
            expected = both.objective(past_values=values[rows, :-1], future_values=values[rows, -1:]).loss
        else:
            expected = both.objective(past_values=values[rows]).loss
        torch.manual_seed(0)  # the classifier's dropout: the same draw both times
        loss = both(past_values=values, labels=labels).loss
        torch.manual_seed(0)
        classification = classifier(values, labels=labels).loss
        assert loss.item() == pytest.approx(classification.item() + 0.5 * expected.item())
        both.eval()  # evaluation: the classification loss alone
        assert both(past_values=values, labels=labels).loss.item() == pytest.approx(
            classifier(values, labels=labels).loss.item()
        )
        kept = finetune_classifier(pretrained, settings, values, labels.numpy(), 2, short, unlabeled=values,
                                   objective_weight=1.0)  # fmt: skip
        plain = finetune_classifier(pretrained, settings, values, labels.numpy(), 2, short)
        plain_weights = plain.model.state_dict()  # the objective moved the shared backbone:
        assert any(
            not torch.equal(weight, plain_weights[name]) for name, weight in kept.model.state_dict().items()
        )
        assert all(torch.equal(weight, before[name]) for name, weight in pretrained.state_dict().items())
    for bad, message in (
        ({"objective_weight": -1.0, "unlabeled": values}, "objective_weight must be at least 0"),
        ({"objective_weight": 1.0}, "needs a pretrained model, unlabeled series"),
        ({"objective_weight": 1.0, "unlabeled": values, "freeze_backbone": True}, "a backbone that learns"),
    ):
        with pytest.raises(ValueError, match=message):
            finetune_classifier(autoencoder, settings, values, labels.numpy(), 2, short, **bad)
    with pytest.raises(ValueError, match=r"unlabeled must hold \(N, T, 1\) series, got \(8, 24\)"):
        WithPretrainingObjective(
            classifier_from(autoencoder, settings, 1, 2), autoencoder, values[..., 0], 1.0
        )
    with pytest.raises(TypeError, match="forecaster or an autoencoder"):
        WithPretrainingObjective(classifier_from(None, settings, 1, 2), classifier_from(None, settings, 1, 2),
                                 values, 1.0)  # fmt: skip


def test_a_later_pretraining_stage_starts_from_the_earlier_one(tmp_path):
    """`pretrain_once` continues `init` (windows of another length), saves, and reloads instead of retraining."""
    settings = SeriesModelArguments(hidden_size=8)
    values = series_tensor(load_ucr("ItalyPowerDemand")["train"])[:16]  # (16, 24, 1)
    longer = torch.from_numpy(windows(np.sin(np.arange(400.0) / 5), window=64, stride=32))[..., None].float()
    for kind in ("forecast", "reconstruct"):
        first = pretrain_once(kind, longer, settings, tmp_path / kind / "general", 3, 1e-2)
        unchanged = pretrain_once(
            kind, values, settings, tmp_path / kind / "domain", 2, 0.0, init=first
        )  # lr 0
        for name, weight in first.state_dict().items():
            torch.testing.assert_close(unchanged.state_dict()[name], weight)
        assert pretrain_once(kind, values, settings, tmp_path / kind / "again", 0, 1e-2, init=first) is first
        reloaded = pretrain_once(
            kind, values, settings, tmp_path / kind / "general", 3, 1e-2
        )  # saved: no training
        torch.testing.assert_close(reloaded.state_dict(), first.state_dict())
    wider = SeriesModelArguments(hidden_size=16)
    with pytest.raises(ValueError, match="does not fit these model arguments"):
        pretrain_once("reconstruct", values, wider, tmp_path / "wider", 2, 1e-2, init=first)
    with pytest.raises(
        ValueError, match="cannot continue a RnnForSequenceReconstruction as a RnnForTimeSeriesPre"
    ):
        pretrain_once("forecast", values, settings, tmp_path / "kind", 2, 1e-2, init=first)
    with pytest.raises(
        ValueError, match="general holds a model pretrained with .*'steps': 3.*not .*'steps': 4"
    ):
        pretrain_once("reconstruct", longer, settings, tmp_path / "reconstruct" / "general", 4, 1e-2)
    with pytest.raises(ValueError, match="general holds a model pretrained with .*'hidden_size': 8.*not"):
        pretrain_once("reconstruct", longer, wider, tmp_path / "reconstruct" / "general", 3, 1e-2)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        pretrain_once("forecast", values, settings, tmp_path / "none", 0, 1e-2)
    with pytest.raises(ValueError, match="kind must be 'forecast' or 'reconstruct'"):
        pretrain_once("classify", values, settings, tmp_path / "classify", 2, 1e-2)


def test_backbones_pretrained_in_two_stages_on_general_windows_then_the_set(tmp_path, monkeypatch):
    settings = SeriesModelArguments(hidden_size=8)
    values = series_tensor(load_ucr("GunPoint")["train"])[:8]
    exclude = set(GENERAL_SERIES_SOURCES) - {"ItalyPowerDemand"}  # the general stage reads one small source
    models = pretrained_backbones(values, settings, tmp_path, 2, 1e-2, general_steps=3, exclude=exclude)
    assert isinstance(models["forecast"], RnnForTimeSeriesPrediction)
    assert isinstance(models["reconstruct"], RnnForSequenceReconstruction)
    assert {path.name for path in tmp_path.iterdir()} == {
        "general_forecaster_3",
        "forecaster_2_after_general_3",
        "general_autoencoder_3",
        "autoencoder_2_after_general_3",
    }
    general = RnnForSequenceReconstruction.from_pretrained(tmp_path / "general_autoencoder_3")
    assert not torch.equal(general.model.recurrent.layers[0].weight_hh_l0,
                           models["reconstruct"].model.recurrent.layers[0].weight_hh_l0)  # fmt: skip

    def no_windows(**kwargs):
        raise AssertionError("the general models are saved: no windows needed")

    monkeypatch.setattr("rnn_hf.training.series.general_series_windows", no_windows)
    again = pretrained_backbones(values, settings, tmp_path, 2, 1e-2, general_steps=3, exclude=exclude)
    torch.testing.assert_close(again["forecast"].state_dict(), models["forecast"].state_dict())
    with pytest.raises(ValueError, match="univariate series; these have 3 channels"):
        pretrained_backbones(values.repeat(1, 1, 3), settings, tmp_path / "x", 2, 1e-2, general_steps=3)
    plain = pretrained_backbones(values, settings, tmp_path / "plain", 2, 1e-2)
    assert {path.name for path in (tmp_path / "plain").iterdir()} == {"forecaster_2", "autoencoder_2"}
    assert plain.keys() == models.keys()


def test_pooled_features_are_what_the_head_reads():
    values = series_tensor(load_ucr("ItalyPowerDemand")["train"])[:5]
    settings = SeriesModelArguments(hidden_size=8)
    torch.manual_seed(0)
    autoencoder = RnnForSequenceReconstruction(settings.config(1))
    classifier = classifier_from(autoencoder, settings, 1, 3)
    copied = autoencoder.model.state_dict()
    assert all(torch.equal(weight, copied[name]) for name, weight in classifier.model.state_dict().items())
    features = pooled_series_features(classifier, values, batch_size=2)
    assert features.shape == (5, 3 * 8)  # concat pooling: last, max, mean
    with torch.no_grad():
        logits = classifier(values).logits
        assert torch.allclose(classifier.classifier(torch.from_numpy(features)), logits, atol=1e-6)
    random = pooled_series_features(classifier_from(None, settings, 1, 3), values)
    assert random.shape == features.shape and not np.allclose(random, features)


def test_step_scores_become_point_scores():
    series = np.arange(10.0)
    step_scores = windows(series, 4, 3) / 10  # (3, 4): windows at 0, 3, 6
    points = step_scores_to_points(step_scores, 10, 4, 3)
    assert np.allclose(points, series / 10)  # each step's own score, the same in every window covering it
    with pytest.raises(ValueError, match="expected"):
        step_scores_to_points(step_scores[:2], 10, 4, 3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_series_helpers_run_where_the_model_is(tmp_path):
    """After `Trainer` the model sits on the GPU while the studies keep their series on the CPU: the helpers move
    each batch to the model and the results back, and give what the same model gives on the CPU."""
    values = series_tensor(load_ucr("ItalyPowerDemand")["train"])[:16]
    labels = np.array([0, 1] * 8)
    settings = SeriesModelArguments(hidden_size=8)
    autoencoder = pretrain_autoencoder(values, settings, training_arguments(str(tmp_path), 2, 1e-2, 8, 0))
    classifier = finetune_classifier(autoencoder, settings, values, labels, 2,  # its loss kept: series moved too
                                     training_arguments(str(tmp_path), 2, 1e-2, 8, 0), unlabeled=values,
                                     objective_weight=1.0)  # fmt: skip
    assert autoencoder.device.type == classifier.device.type == "cuda"
    errors, _ = reconstruction_errors(autoencoder, values)
    autoencoder.fit_error_distribution(errors)
    gpu = (predict_classes(classifier, values), pooled_series_features(classifier, values),
           reconstruction_errors(autoencoder, values)[1])  # fmt: skip
    cpu = (predict_classes(classifier.cpu(), values), pooled_series_features(classifier, values),
           reconstruction_errors(autoencoder.cpu(), values)[1])  # fmt: skip
    assert gpu[2].device.type == "cpu" and np.array_equal(gpu[0], cpu[0])
    assert np.allclose(gpu[1], cpu[1], atol=1e-4) and torch.allclose(gpu[2], cpu[2], rtol=1e-3, atol=1e-4)
    data = load_forecasting_data("airline")
    config = forecaster_config(
        data, ForecasterArguments(context_length=24, lags_sequence=[1, 12], hidden_size=8)
    )
    ends = first_origin(data, num_windows=1)
    forecast = rnn_forecast_fn(RnnForTimeSeriesPrediction(config).cuda(), data, ends)
    window = list(forecast_windows(data, num_windows=1))[0]
    assert forecast(window.history, 12, 12, (0.1, 0.9), window=window)[0.9].shape == (12,)


def run_script(*arguments: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *arguments], capture_output=True, text=True, cwd=REPO, timeout=900,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_classification_study_refuses_unequal_lengths_before_training(tmp_path):
    """ROCKET, one of the study's methods, needs series of one length: a set whose series differ stops the study
    at once with one line that names the flag, before any network trains."""
    result = subprocess.run([sys.executable, "scripts/series_classification_study.py", "--datasets",
                             "JapaneseVowels", "--work_dir", str(tmp_path), "--output_dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the series of JapaneseVowels differ in length, and ROCKET needs one: pass --equal_length"
    )
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())  # nothing trained or written


def test_classification_study_refuses_an_objective_weight_it_cannot_use(tmp_path):
    for flags, message in (
        (["--objective_weight", "-1"], "--objective_weight must be at least 0"),
        (
            ["--objective_weight", "1", "--backbone_lr_ratio", "0"],
            "--objective_weight needs backbones that fine-tune",
        ),
    ):
        result = subprocess.run([sys.executable, "scripts/series_classification_study.py", *flags, "--work_dir",
                                 str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr.splitlines()[-1]
        assert not list(tmp_path.iterdir())


def test_classification_study_refuses_a_general_stage_for_a_multivariate_set(tmp_path):
    result = subprocess.run([sys.executable, "scripts/series_classification_study.py", "--datasets", "BasicMotions",
                             "--general_pretraining_steps", "5", "--work_dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the general stage pretrains on univariate series; these have 6 channels"
    )
    assert not list(tmp_path.rglob("*.safetensors"))  # nothing trained


def test_forecasting_and_anomaly_studies_stop_on_bad_input_with_one_line(tmp_path):
    """A series file whose timestamps repeat, and a normal class the UCR set lacks: one `error:` line, status 2,
    before anything trains."""
    series_file = tmp_path / "series.csv"
    series_file.write_text("timestamp,value\n" + "".join(f"2020-01-01,{i}\n" for i in range(40)))
    commands = {
        "must increase strictly": ["scripts/forecasting_study.py", "--file", str(series_file), "--target", "value",
                                   "--timestamp_column", "timestamp", "--prediction_length", "4"],
        "normal_class '7' is not a class of 'GunPoint'": ["scripts/anomaly_study.py", "--normal_class", "7"],
    }  # fmt: skip
    processes = {
        message: subprocess.Popen([sys.executable, *argv, "--output_dir", str(tmp_path / "out")], cwd=REPO,
                                  stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        for message, argv in commands.items()
    }  # fmt: skip
    for message, process in processes.items():
        stderr = process.communicate(timeout=300)[1]
        assert process.returncode == 2 and "Traceback" not in stderr, stderr[-3000:]
        assert stderr.strip().splitlines()[-1].startswith("error: ") and message in stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.safetensors"))


@pytest.mark.slow
def test_the_three_study_scripts_run_and_resume(tmp_path):
    out = tmp_path / "forecasting"
    run_script("scripts/forecasting_study.py", "--datasets", "airline", "--max_steps", "10", "--num_windows", "2",
               "--work_dir", str(out), "--output_dir", str(out))  # fmt: skip
    report = (out / "forecasting.md").read_text()
    assert (
        "| seasonal naive |" in report
        and "| ARIMA (auto) |" in report
        and (out / "forecasting.png").is_file()
    )
    again = run_script("scripts/forecasting_study.py", "--datasets", "airline", "--max_steps", "10",
                       "--num_windows", "2", "--work_dir", str(out), "--output_dir", str(out))  # fmt: skip
    assert "reusing the forecaster" in again.stdout
    assert len(json.loads((out / "scores.json").read_text())) == 1
    stale = RnnForTimeSeriesPrediction.from_pretrained(out / "airline")  # as if the default lags had changed
    stale.config.lags_sequence = [1, 2]
    RnnForTimeSeriesPrediction(stale.config).save_pretrained(out / "airline")
    refused = subprocess.run([sys.executable, "scripts/forecasting_study.py", "--datasets", "airline", "--max_steps",
                              "10", "--num_windows", "2", "--work_dir", str(out)],
                             capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    assert refused.returncode != 0 and "holds a forecaster with lags [1, 2] and context" in refused.stderr
    mixed = subprocess.run([sys.executable, "scripts/forecasting_study.py", "--datasets", "airline", "--max_steps",
                            "10", "--num_windows", "2", "--validation", "--work_dir", str(out)],
                           capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    assert mixed.returncode != 0 and "trained under other settings" in mixed.stderr
    out = tmp_path / "validation"
    run_script("scripts/forecasting_study.py", "--datasets", "airline", "--max_steps", "10", "--num_windows", "2",
               "--validation", "--no_baselines", "--work_dir", str(out), "--output_dir", str(out))  # fmt: skip
    assert "Validation split: the 2 windows before the test windows." in (out / "forecasting.md").read_text()

    out = tmp_path / "classification"
    run_script("scripts/series_classification_study.py", "--datasets", "JapaneseVowels", "--equal_length", "--seeds",
               "0", "--num_labels_list", "1", "--pretraining_steps", "5", "--finetuning_steps", "3",
               "--backbone_lr_ratio", "0.5", "--features", "--work_dir", str(out), "--output_dir", str(out))  # fmt: skip
    report = (out / "series_classification_JapaneseVowels.md").read_text()
    assert "equal-length version of the set" in report
    assert "RNN pretrained by forecasting" in report and "ROCKET" in report
    assert "RNN pretrained by reconstruction, fixed features + logistic regression" in report
    assert "the pretrained backbones at 0.5 x that rate" in report
    out = tmp_path / "general"
    run_script("scripts/series_classification_study.py", "--datasets", "ItalyPowerDemand", "--seeds", "0",
               "--num_labels_list", "1", "--general_pretraining_steps", "3", "--pretraining_steps", "2",
               "--finetuning_steps", "2", "--no_baselines", "--objective_weight", "0.5", "--work_dir", str(out),
               "--output_dir", str(out))  # fmt: skip
    report = (out / "series_classification_ItalyPowerDemand.md").read_text()
    assert "for 3 steps on 128-step windows of every other series" in report and "ROCKET" not in report
    assert "RNN from scratch, reconstruction loss kept" in report and "at weight 0.5 beside" in report
    assert (
        "| RNN pretrained by forecasting, loss kept | RNN pretrained by reconstruction, loss kept |" in report
    )
    assert (out / "ItalyPowerDemand" / "general_autoencoder_3" / "model.safetensors").is_file()

    out = tmp_path / "anomaly"
    run_script("scripts/anomaly_study.py", "--max_steps", "3", "--window", "32", "--output_dir", str(out))
    rows = json.loads((out / "anomaly_detection.json").read_text())
    assert {row["method"] for row in rows} == {
        "EncDec-AD autoencoder, free-running decoder (ours)",
        "EncDec-AD autoencoder, teacher-forced decoder (ours)",
        "IsolationForest on windows",
        "IsolationForest on series",
    }
    assert all(0 <= row["auroc"] <= 1 for row in rows)
    # every row has a threshold set without test labels: KDD-TSAD's on held-out normal steps, the UCR set's on
    # its labelled validation split
    assert all(0 <= row["f1_at_validation_threshold"] <= 1 for row in rows)
