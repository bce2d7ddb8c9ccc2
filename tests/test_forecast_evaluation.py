"""Forecasting data (`rnn_hf.data.forecasting`) and its evaluation (`rnn_hf.training.forecast_evaluation`):
the loaders on the real data, calendar features, rolling origins, metrics against hand computations, and the
baselines on airline."""

import warnings

import numpy as np
import pandas as pd
import pytest

from rnn_hf.data.forecasting import (
    FORECASTING_DATASETS,
    ForecastingData,
    dataset_from_frame,
    load_forecasting_data,
    num_time_features,
    time_features,
    validation_split,
)
from rnn_hf.training.forecast_evaluation import (
    DEFAULT_QUANTILES,
    arima,
    ets,
    evaluate,
    forecast_windows,
    interval_coverage,
    mase,
    rolling_origins,
    seasonal_naive,
    smape,
    weighted_quantile_loss,
)

# name: (number of series, shortest, longest, freq, season_length, prediction_length, missing values)
EXPECTED = {
    "airline": (1, 144, 144, "MS", 12, 12, 0),
    "sunspots": (1, 3177, 3177, "MS", 1, 12, 0),
    "elecdemand": (1, 17520, 17520, "30min", 48, 48, 0),
    "m1_yearly": (181, 15, 58, "YS", 1, 6, 0),
    "co2": (1, 2284, 2284, "W-SAT", 52, 52, 59),
}


@pytest.fixture(scope="module")
def loaded():
    return {name: loader() for name, loader in FORECASTING_DATASETS.items()}


@pytest.fixture(scope="module")
def airline(loaded):
    return np.asarray(loaded["airline"].dataset[0]["target"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_returns_documented_format(loaded, name):
    num_series, shortest, longest, freq, season_length, prediction_length, num_missing = EXPECTED[name]
    data = loaded[name]
    assert isinstance(data, ForecastingData) and data.name == name and data.description
    assert (data.freq, data.season_length, data.prediction_length) == (freq, season_length, prediction_length)
    assert data.num_time_features == num_time_features(freq)
    assert len(data.dataset) == num_series
    lengths = [len(target) for target in data.dataset["target"]]
    assert (min(lengths), max(lengths)) == (shortest, longest)
    assert sum(int(np.isnan(np.asarray(target)).sum()) for target in data.dataset["target"]) == num_missing
    row = data.dataset[0]
    assert isinstance(row["item_id"], str)
    assert pd.Timestamp(row["start"]).isoformat() == row["start"]
    # the start lies on the frequency's grid, so time_features dates the values right
    assert pd.date_range(row["start"], periods=2, freq=freq)[0] == pd.Timestamp(row["start"])
    assert len(set(data.dataset["item_id"])) == num_series


def test_loaders_know_their_calendar(loaded):
    assert loaded["airline"].dataset[0]["start"] == "1949-01-01T00:00:00"
    assert loaded["sunspots"].dataset[0]["start"] == "1749-01-01T00:00:00"  # to September 2013
    assert loaded["co2"].dataset[0]["start"] == "1958-03-29T00:00:00"
    assert loaded["airline"].dataset[0]["target"][:3] == [112.0, 118.0, 132.0]


def test_elecdemand_covariates_line_up_with_the_calendar(loaded):
    row = loaded["elecdemand"].dataset[0]
    temperature, work_day = np.asarray(row["feat_dynamic_real"])  # (2, 17520)
    assert temperature.shape == work_day.shape == (17520,)
    assert 0 < np.nanmin(temperature) and np.nanmax(temperature) < 50
    dates = pd.date_range(row["start"], periods=17520, freq="30min")
    assert set(np.unique(work_day)) == {0.0, 1.0}
    assert not work_day[dates.dayofweek >= 5].any()  # weekends are never work days
    assert work_day[dates.normalize() == "2014-01-01"].sum() == 0  # New Year's Day, a Wednesday
    assert work_day[dates.normalize() == "2014-01-02"].all()


def test_m1_yearly_series_differ():
    data = load_forecasting_data("m1_yearly")
    targets = {row["item_id"]: tuple(row["target"]) for row in data.dataset}
    assert targets["T43"] == targets["T78"]  # the one pair of identical series in M1, a year apart
    assert len(set(targets.values())) == 180
    assert "feat_dynamic_real" not in data.dataset.column_names


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown forecasting dataset 'm4'.*airline"):
        load_forecasting_data("m4")


def test_non_numeric_target_is_rejected():
    frame = pd.DataFrame({"value": ["1.0", "2.0", "n/a"], "temperature": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="column 'value' of series 'x'.*not numbers"):
        dataset_from_frame(frame, "value", "2020-01-01", item_id="x")
    frame = pd.DataFrame({"value": [1.0, 2.0, 3.0], "label": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="column 'label'"):
        dataset_from_frame(frame, "value", "2020-01-01", item_id="x", covariates=["label"])
    with pytest.raises(ValueError, match="column 'missing' is not in the frame"):
        dataset_from_frame(frame, "missing", "2020-01-01", item_id="x")


def test_dataset_from_frame_keeps_nan_and_covariates():
    frame = pd.DataFrame({"y": [1.0, np.nan, 3.0], "flag": [True, False, True], "t": [0.5, 1.5, 2.5]})
    dataset = dataset_from_frame(frame, "y", "2020-01-01", item_id="a", covariates=["flag", "t"])
    row = dataset[0]
    assert row["start"] == "2020-01-01T00:00:00"
    np.testing.assert_array_equal(row["target"], [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(row["feat_dynamic_real"], [[1.0, 0.0, 1.0], [0.5, 1.5, 2.5]])


@pytest.mark.parametrize(
    "freq, k", [("MS", 1), ("ME", 1), ("QS", 1), ("YS", 0), ("W-SAT", 2), ("D", 3), ("h", 4), ("30min", 5)]
)
def test_time_features_shape_and_range(freq, k):
    features = time_features("2014-01-01", 1000, freq)
    assert features.shape == (1000, k) == (1000, num_time_features(freq))
    assert np.all((features >= -0.5) & (features <= 0.5))


def test_time_features_values():
    months = time_features("1949-01-01", 24, "MS")[:, 0]  # month of year
    np.testing.assert_allclose(months[:12], np.arange(12) / 11 - 0.5)
    np.testing.assert_allclose(months[12:], months[:12])
    half_hours = time_features("2014-01-01", 48 * 7, "30min")  # minute, hour, weekday, day of month, of year
    assert half_hours[0, 0] == -0.5 and half_hours[1, 0] == pytest.approx(30 / 59 - 0.5)
    assert half_hours[2, 1] == pytest.approx(1 / 23 - 0.5)
    assert half_hours[0, 2] == pytest.approx(2 / 6 - 0.5)  # 2014-01-01 was a Wednesday
    assert len(np.unique(half_hours[:48, :2], axis=0)) == 48  # minute and hour tell every half hour apart


def test_time_features_bad_freq():
    with pytest.raises(ValueError, match="not a pandas frequency"):
        time_features("2020-01-01", 3, "fortnightly")


def test_rolling_origins():
    assert rolling_origins(144, 12, 3) == [108, 120, 132]
    assert rolling_origins(144, 12, 3, stride=1) == [130, 131, 132]
    assert rolling_origins(13, 12, 1) == [1]
    with pytest.raises(ValueError, match="too short"):
        rolling_origins(12, 12, 1)
    with pytest.raises(ValueError, match="too short"):
        rolling_origins(30, 12, 3)
    with pytest.raises(ValueError, match="num_windows must be at least 1"):
        rolling_origins(144, 12, 0)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        rolling_origins(144, 12, 2, stride=0)


def test_mase():
    insample = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 6.0])  # lag-2 differences 3, 1, 1, 3: scale 2
    actual = np.array([7.0, 4.0])
    assert mase(actual, actual, insample, 2) == 0
    naive = insample[-2:]  # seasonal naive: 5, 6; errors 2, 2
    assert mase(actual, naive, insample, 2) == pytest.approx(2 / 2)
    # a season longer than the history: lag 1, differences 1, 2, 1, 2, 1: scale 7 / 5
    assert mase(actual, naive, insample, 12) == pytest.approx(2 / (7 / 5))
    # a missing actual is left out; a missing history value drops its differences
    assert mase(np.array([7.0, np.nan]), np.array([5.0, 0.0]), insample, 2) == pytest.approx(1.0)
    insample_with_gap = np.array([1.0, 0.0, np.nan, 6.0, 5.0, 8.0])  # defined differences 6, 2: scale 4
    assert mase(actual, np.array([5.0, 8.0]), insample_with_gap, 2) == pytest.approx(3 / 4)
    assert np.isnan(mase(actual, naive, np.ones(6), 2))  # constant history: no scale


def test_smape():
    assert smape([1.0, 2.0], [1.0, 2.0]) == 0
    assert smape([100.0], [50.0]) == pytest.approx(200 * 50 / 150)
    assert smape([100.0], [50.0]) == smape([50.0], [100.0])  # symmetric
    assert smape([1.0], [-1.0]) == 200
    assert smape([0.0, 4.0], [0.0, 2.0]) == pytest.approx(100 * 2 / 6)  # 0 / 0 counts as 0
    assert smape([np.nan, 4.0], [9.0, 2.0]) == pytest.approx(200 * 2 / 6)


def test_weighted_quantile_loss():
    actual = np.array([10.0, 20.0, np.nan])
    perfect = {0.5: np.array([10.0, 20.0, 0.0])}
    assert weighted_quantile_loss(actual, perfect, [0.5]) == 0
    forecasts = {0.1: np.array([8.0, 25.0, 0.0]), 0.9: np.array([12.0, 18.0, 0.0])}
    # q=0.1: under-forecast 10 by 2 costs 0.1*2, over-forecast 20 by 5 costs 0.9*5; weighted 2*4.7/30
    # q=0.9: over-forecast 10 by 2 costs 0.1*2, under-forecast 20 by 2 costs 0.9*2; weighted 2*2.0/30
    expected = np.mean([2 * (0.2 + 4.5) / 30, 2 * (0.2 + 1.8) / 30])
    assert weighted_quantile_loss(actual, forecasts, [0.1, 0.9]) == pytest.approx(expected)
    # a median forecast's wQL is sum |error| / sum |actual|
    assert weighted_quantile_loss(actual, {0.5: np.array([13.0, 16.0, 0.0])}, [0.5]) == pytest.approx(7 / 30)


def test_interval_coverage():
    actual = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    assert interval_coverage(actual, actual - 1, actual + 1) == 1
    assert interval_coverage(actual, np.full(5, 1.5), np.full(5, 3.0)) == pytest.approx(2 / 4)
    assert interval_coverage(actual, actual, actual) == 1  # the bounds are inside


def test_seasonal_naive_exact_values():
    history = np.array([1.0, 2.0, 3.0, 2.0, 4.0, 5.0])  # residuals y[t] - y[t-3]: 1, 2, 2; rms sqrt(3)
    forecasts = seasonal_naive(history, 5, 3, [0.1, 0.5, 0.9])
    np.testing.assert_array_equal(forecasts[0.5], [2.0, 4.0, 5.0, 2.0, 4.0])
    widths = np.sqrt(3) * np.sqrt([1, 1, 1, 2, 2]) * 1.2815515655446004
    np.testing.assert_allclose(forecasts[0.9] - forecasts[0.5], widths)
    np.testing.assert_allclose(forecasts[0.5] - forecasts[0.1], widths)
    # a history shorter than the season: the naive forecast (last value)
    np.testing.assert_array_equal(seasonal_naive(np.array([3.0, 7.0]), 3, 12, [0.5])[0.5], [7.0, 7.0, 7.0])
    # a missing value in the last season is interpolated
    gap = seasonal_naive(np.array([1.0, 2.0, 3.0, 2.0, np.nan, 6.0]), 3, 3, [0.5])[0.5]
    np.testing.assert_array_equal(gap, [2.0, 4.0, 6.0])


@pytest.mark.parametrize("baseline", [seasonal_naive, ets, arima])
def test_baseline_on_airline(airline, baseline):
    history = airline[:-12]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback on airline
        forecasts = baseline(history, 12, 12, DEFAULT_QUANTILES)
    assert sorted(forecasts) == list(DEFAULT_QUANTILES)
    stacked = np.stack([forecasts[quantile] for quantile in DEFAULT_QUANTILES])  # (9, 12)
    assert stacked.shape == (9, 12) and np.isfinite(stacked).all()
    assert np.all(np.diff(stacked, axis=0) >= 0)  # quantiles do not cross
    assert np.all(stacked[-1] > stacked[0])
    # a seasonal model tracks 1960: better than the seasonal naive MASE of 1.57 for ETS and ARIMA
    assert mase(airline[-12:], forecasts[0.5], history, 12) < (1.6 if baseline is seasonal_naive else 1.0)


def test_baselines_handle_missing_values(airline):
    history = airline[:-12].copy()
    history[[30, 100, 125]] = np.nan
    for baseline in (ets, arima):
        forecasts = baseline(history, 12, 12, (0.1, 0.5, 0.9))
        assert np.isfinite(forecasts[0.5]).all()


def test_baselines_fall_back_with_a_warning():
    history = np.array([5.0, 6.0, 5.5])  # too short for any ETS form
    with pytest.warns(RuntimeWarning, match="ets failed.*falling back to seasonal_naive"):
        forecasts = ets(history, 2, 1, (0.5,))
    np.testing.assert_array_equal(forecasts[0.5], [5.5, 5.5])


def test_baselines_reject_bad_input():
    with pytest.raises(ValueError, match="quantiles must lie strictly between 0 and 1"):
        seasonal_naive(np.arange(10.0), 3, 1, [0.0, 0.5])
    with pytest.raises(ValueError, match="1-D array with an observed value"):
        arima(np.full(10, np.nan), 3, 1, [0.5])
    with pytest.raises(ValueError, match="prediction_length must be at least 1"):
        ets(np.arange(10.0), 0, 1, [0.5])


def test_evaluate_seasonal_naive(loaded, airline):
    data = loaded["airline"]
    result = evaluate(seasonal_naive, data, num_windows=2)
    assert (result["num_series"], result["num_windows"], result["num_forecasts"]) == (1, 2, 2)
    expected_mase = np.mean(
        [mase(airline[o : o + 12], airline[o - 12 : o], airline[:o], 12) for o in rolling_origins(144, 12, 2)]
    )
    assert result["mase"] == pytest.approx(expected_mase)
    assert 0 < result["smape"] < 200 and 0 < result["mean_wql"] < 1 and 0 <= result["coverage_80"] <= 1


def test_evaluate_many_series_and_missing_actuals(loaded):
    m1 = evaluate(seasonal_naive, loaded["m1_yearly"], num_windows=1)
    assert m1["num_forecasts"] == 181 and np.isfinite(m1["mase"])
    co2 = evaluate(seasonal_naive, loaded["co2"], num_windows=2)
    assert co2["num_forecasts"] == 2 and np.isfinite(co2["mean_wql"])


def test_evaluate_passes_the_window(loaded):
    seen = []

    def forecast_with_covariates(history, prediction_length, season_length, quantiles, window):
        seen.append(window)
        assert window.feat_dynamic_real.shape == (2, window.origin + prediction_length)
        np.testing.assert_array_equal(window.history, history)
        return seasonal_naive(history, prediction_length, season_length, quantiles)

    evaluate(forecast_with_covariates, loaded["elecdemand"], num_windows=2, with_window=True)
    assert [window.origin for window in seen] == [17520 - 96, 17520 - 48]
    assert seen[0].freq == "30min" and seen[0].start == "2014-01-01T00:00:00"


def test_validation_split_scores_the_windows_before_the_test_windows(loaded):
    data = loaded["elecdemand"]
    validation = validation_split(data, num_windows=2)
    row, full = validation.dataset[0], data.dataset[0]
    assert len(row["target"]) == 17520 - 96 and row["target"] == full["target"][:-96]
    assert np.asarray(row["feat_dynamic_real"]).shape == (2, 17520 - 96)
    assert row["feat_dynamic_real"][0] == full["feat_dynamic_real"][0][:-96]
    assert (validation.freq, validation.season_length, validation.prediction_length) == (data.freq, 48, 48)
    assert "Validation split" in validation.description
    validation_origins = [window.origin for window in forecast_windows(validation, 2)]
    test_origins = [window.origin for window in forecast_windows(data, 2)]
    assert validation_origins == [17520 - 192, 17520 - 144] and test_origins == [17520 - 96, 17520 - 48]
    co2 = validation_split(loaded["co2"], 1)  # no covariates; missing values kept
    assert len(co2.dataset[0]["target"]) == 2284 - 52 and "feat_dynamic_real" not in co2.dataset.column_names
    with pytest.raises(ValueError, match="num_windows must be at least 1"):
        validation_split(data, 0)
    with pytest.raises(
        ValueError, match="series 'T7' has 16 values, too few to set aside 2 validation windows"
    ):
        validation_split(loaded["m1_yearly"], 2)


def test_evaluate_rejects_bad_forecasts(loaded):
    data = loaded["airline"]
    with pytest.raises(ValueError, match="expected 12 finite values"):
        evaluate(lambda history, h, m, quantiles: {q: np.zeros(h - 1) for q in quantiles}, data, 1)
    with pytest.raises(ValueError, match="must include 0.1, 0.5 and 0.9"):
        evaluate(seasonal_naive, data, 1, quantiles=(0.25, 0.5, 0.75))
    windows = list(forecast_windows(data, 2, stride=3))
    assert [window.origin for window in windows] == [129, 132] and windows[0].feat_dynamic_real is None


def test_a_local_csv_or_parquet_series_loads_with_its_frequency(tmp_path):
    from rnn_hf.data.forecasting import load_forecasting_file

    frame = pd.DataFrame(
        {"when": pd.date_range("2024-03-01", periods=30, freq="D").astype(str), "sales": np.arange(30.0),
         "price": np.linspace(1, 2, 30), "shop": ["a"] * 30}
    )  # fmt: skip
    frame.loc[4, "sales"] = np.nan
    frame.to_csv(tmp_path / "sales.csv", index=False)
    frame.to_parquet(tmp_path / "sales.parquet")
    for path in (tmp_path / "sales.csv", tmp_path / "sales.parquet"):
        data = load_forecasting_file(str(path), "sales", "when", prediction_length=7, season_length=7,
                                     covariates=["price"])  # fmt: skip
        assert data.freq == "D" and data.num_time_features == num_time_features("D")
        target = np.asarray(data.dataset[0]["target"])
        assert (
            len(target) == 30
            and np.isnan(target[4])
            and np.asarray(data.dataset[0]["feat_dynamic_real"]).shape == (1, 30)
        )
    with pytest.raises(ValueError, match="'shop'"):
        load_forecasting_file(str(tmp_path / "sales.csv"), "shop", "when", prediction_length=7)
    frame.drop(index=10).to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(ValueError, match="skip steps|cannot infer"):
        load_forecasting_file(str(tmp_path / "gap.csv"), "sales", "when", prediction_length=7, freq="D")
    with pytest.raises(ValueError, match="'time'"):
        load_forecasting_file(str(tmp_path / "sales.csv"), "sales", "time", prediction_length=7)
