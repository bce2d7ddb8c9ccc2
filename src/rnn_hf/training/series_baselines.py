"""Classical baselines and metrics for series classification and anomaly detection, to set RNNs against.

Classification: ROCKET (random convolutional kernels and a ridge classifier) and 1-nearest-neighbour under
dynamic time warping, both from aeon, on the datasets of `rnn_hf.data.series.load_ucr` / `draw_labeled`:

    ucr = load_ucr("GunPoint")
    rocket_classifier_accuracy(ucr["train"], ucr["test"], seed=0)
    knn_dtw_accuracy(ucr["train"], ucr["test"])

Anomaly detection: an isolation forest over windows, and the two usual judges of any anomaly score, AUROC and
the best F1 over thresholds (higher score = more anomalous, label 1 = anomaly):

    scores = isolation_forest_scores(windows(series.train, 64, 1), windows(series.test, 64, 1), seed=0)
    auroc(window_scores_to_points(scores, len(series.test), 64, 1), series.test_labels)
"""

import numpy as np
import torch
from aeon.classification.convolution_based import RocketClassifier
from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from datasets import Dataset
from sklearn.ensemble import IsolationForest
from sklearn.metrics import precision_recall_curve, roc_auc_score

from ..data.series import series_arrays
from ..data.text import DataError


def _one_shape(arrays: list[np.ndarray | list[np.ndarray]]) -> bool:
    """Whether `series_arrays` of several splits are 3-D arrays of one (channels, length)."""
    return all(isinstance(a, np.ndarray) for a in arrays) and len({a.shape[1:] for a in arrays}) == 1


def one_length(*splits: Dataset) -> bool:
    """Whether every series of every split has one length (channels x length), as ROCKET needs."""
    return _one_shape([series_arrays(split) for split in splits])


def _aeon_inputs(
    train: Dataset, test: Dataset
) -> tuple[np.ndarray | list[np.ndarray], np.ndarray | list[np.ndarray]]:
    """Both splits' series as aeon takes them: 3-D arrays when every series of both has one length, else lists
    of (channels, length_i) arrays."""
    train_series, test_series = series_arrays(train), series_arrays(test)
    if _one_shape([train_series, test_series]):
        return train_series, test_series  # (num_train, channels, length), (num_test, channels, length)
    return list(train_series), list(test_series)


def _accuracy(estimator, train: Dataset, test: Dataset) -> float:
    train_series, test_series = _aeon_inputs(train, test)
    if isinstance(train_series, list) and not estimator.get_tag(
        "capability:unequal_length", raise_error=False, tag_value_default=False
    ):
        raise DataError(
            f"{type(estimator).__name__} needs series of one length, and these differ; load the archive's "
            "equal-length version (load_ucr(name, equal_length=True)) or use knn_dtw_accuracy"
        )
    # aeon's ROCKET restores numba's thread count, numba's default (every core), through the OpenMP runtime torch
    # shares: torch would then leave the study's OMP_NUM_THREADS for good. Keep torch's own count.
    threads = torch.get_num_threads()
    try:
        estimator.fit(train_series, np.asarray(train["label"]))
        predictions = estimator.predict(test_series)  # (num_test,)
    finally:
        torch.set_num_threads(threads)
    return float(np.mean(predictions == np.asarray(test["label"])))


def rocket_classifier_accuracy(train: Dataset, test: Dataset, seed: int, num_kernels: int = 10000) -> float:
    """Test accuracy of aeon's `RocketClassifier` (`num_kernels` random kernels, a ridge classifier) fitted on
    `train`. ROCKET needs series of one length."""
    return _accuracy(RocketClassifier(n_kernels=num_kernels, random_state=seed), train, test)


def knn_dtw_accuracy(train: Dataset, test: Dataset) -> float:
    """Test accuracy of the 1-nearest-neighbour classifier under unconstrained dynamic time warping (aeon's
    `KNeighborsTimeSeriesClassifier`) with `train` as the reference set; series may differ in length."""
    return _accuracy(KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1), train, test)


def isolation_forest_scores(
    train_windows: np.ndarray, test_windows: np.ndarray | list[np.ndarray], seed: int
) -> np.ndarray | list[np.ndarray]:
    """Anomaly scores of `test_windows` from an sklearn `IsolationForest` fitted on `train_windows` (normal data
    only): the negated `score_samples`, so higher is more anomalous.

    Args:
        train_windows: (num_train_windows, window, ...), flattened after the first axis.
        test_windows: (num_test_windows, window, ...), of the same shape after the first axis; or a list of such
            arrays (e.g. a validation and a test split), which the one forest scores each.

    Returns (num_test_windows,), or a list of them for a list.
    """
    train_windows = np.asarray(train_windows).reshape(len(train_windows), -1)  # (num_train_windows, features)
    forest = IsolationForest(random_state=seed).fit(train_windows)
    parts = test_windows if isinstance(test_windows, list) else [test_windows]
    scores = [-forest.score_samples(np.asarray(part).reshape(len(part), -1)) for part in parts]
    return scores if isinstance(test_windows, list) else scores[0]


def _check_scores_and_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise DataError(
            f"scores {scores.shape} and labels {labels.shape} must be two 1-D arrays of one length"
        )
    if not np.isin(labels, (0, 1)).all():
        raise DataError(f"labels must be 0 (normal) or 1 (anomaly), got values {np.unique(labels).tolist()}")
    if len(np.unique(labels)) < 2:
        raise DataError(
            f"labels hold one class only ({int(labels[0])}): the metric needs normal and anomalous"
        )
    return scores, labels.astype(np.int64)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of `scores` (higher = more anomalous) against 0/1 `labels` (1 = anomaly)."""
    scores, labels = _check_scores_and_labels(scores, labels)
    return float(roc_auc_score(labels, scores))


def best_f1(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The best F1 of the rule "anomaly when score >= threshold" over every threshold on the precision-recall
    curve of `scores` against 0/1 `labels` (1 = anomaly), and that threshold."""
    scores, labels = _check_scores_and_labels(scores, labels)
    precision, recall, thresholds = precision_recall_curve(labels, scores)  # last point has no threshold
    precision, recall = precision[:-1], recall[:-1]  # (num_thresholds,)
    denominator = np.where(precision + recall > 0, precision + recall, 1.0)
    f1 = 2 * precision * recall / denominator  # (num_thresholds,)
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])
