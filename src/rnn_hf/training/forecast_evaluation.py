"""Judging probabilistic forecasts: rolling-origin windows, M4 / GluonTS metrics, and classical baselines.

Every forecaster, baseline or RNN, is a function with the signature of `ForecastFn`:
`forecast_fn(history, prediction_length, season_length, quantiles) -> {quantile: forecast}`, where `history`
has shape (length,) with NaN for missing values and each forecast has shape (prediction_length,); the 0.5
quantile is the point forecast. `evaluate` scores such a function on the last windows of every series of a
`ForecastingData` set.

The baselines are seasonal naive, ETS (statsmodels `ETSModel`, chosen by AICc as R's `forecast::ets`) and
ARIMA (statsmodels `SARIMAX`, chosen by AICc with Hyndman & Khandakar's stepwise search as R's
`forecast::auto.arima`). ETS and ARIMA fit at most the last `MAX_HISTORY` values of a series.
"""

import itertools
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.seasonal import STL
from statsmodels.tsa.statespace.sarimax import SARIMAX
from statsmodels.tsa.stattools import kpss
from threadpoolctl import threadpool_limits

from ..data import DataError
from ..data.forecasting import ForecastingData

ForecastFn = Callable[[np.ndarray, int, int, Sequence[float]], dict[float, np.ndarray]]

DEFAULT_QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

# ETS and ARIMA fit only the most recent values: the cost of a fit grows with the length, and a few hundred
# values already pin down a handful of parameters (it is 500 months of sunspots, 10 days of half-hours).
MAX_HISTORY = 500

# Seasons with more positions than this are not given one optimised state per position: ETS keeps heuristic
# initial seasonal states, and ARIMA forecasts the STL-deseasonalized series instead of adding seasonal terms
# (the seasonal ARIMA state grows with the season; fpp3 advises the same for long seasons).
MAX_SEASONAL_STATES = 12

# The statsmodels fits multiply matrices of a few dozen rows, where a multi-threaded BLAS only adds
# synchronisation: an order of magnitude slower when other processes hold the cores. ETS and ARIMA run with
# a single BLAS thread.
_single_threaded_blas = threadpool_limits.wrap(limits=1, user_api="blas")

# auto.arima's seasonal-strength test: seasonal differencing when STL's seasonal strength exceeds this.
SEASONAL_STRENGTH_THRESHOLD = 0.64


def rolling_origins(
    length: int, prediction_length: int, num_windows: int, stride: int | None = None
) -> list[int]:
    """The last `num_windows` forecast origins of a series of `length` values, earliest first.

    An origin is the index of the first held-out value: window `i` forecasts
    `series[origin : origin + prediction_length]` from `series[:origin]`. The last window ends at the end of
    the series; consecutive origins are `stride` apart (default `prediction_length`: windows that do not
    overlap).

    Raises:
        ValueError: if an argument is below 1, or the series is too short to leave history before the
            first window.
    """
    stride = prediction_length if stride is None else stride
    for name, value in (
        ("prediction_length", prediction_length),
        ("num_windows", num_windows),
        ("stride", stride),
    ):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    first = length - prediction_length - (num_windows - 1) * stride
    if first < 1:
        raise DataError(
            f"a series of length {length} is too short for {num_windows} windows of {prediction_length} steps "
            f"{stride} apart: no history would be left before the first window"
        )
    return [first + window * stride for window in range(num_windows)]


# Metrics. NaN in `actual` marks a missing value and is left out; a NaN forecast propagates.


def _as_float_arrays(*arrays) -> list[np.ndarray]:
    return [np.asarray(array, dtype=float) for array in arrays]


def mase(actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, season_length: int) -> float:
    """Mean absolute scaled error (M4): the mean absolute error of `forecast`, divided by the mean absolute
    seasonal difference of the history `insample` (lag `season_length`, or 1 when the history has no more
    values than a season).

    NaN where it is undefined: no observed actual value, or a scale of 0 or NaN (a constant history).
    """
    actual, forecast, insample = _as_float_arrays(actual, forecast, insample)
    lag = season_length if len(insample) > season_length else 1
    seasonal_differences = np.abs(insample[lag:] - insample[:-lag])  # (len(insample) - lag,)
    observed = ~np.isnan(actual)
    if not observed.any() or np.isnan(seasonal_differences).all():
        return float("nan")
    scale = np.nanmean(seasonal_differences)
    if scale == 0:
        return float("nan")
    return float(np.mean(np.abs(actual[observed] - forecast[observed])) / scale)


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric mean absolute percentage error (M4), in percent, from 0 to 200; a step where actual and
    forecast are both 0 counts as 0. NaN if no actual value is observed."""
    actual, forecast = _as_float_arrays(actual, forecast)
    observed = ~np.isnan(actual)
    if not observed.any():
        return float("nan")
    actual, forecast = actual[observed], forecast[observed]
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(
        np.abs(actual - forecast), denominator, out=np.zeros_like(actual), where=denominator > 0
    )
    return float(200 * np.mean(ratio))


def weighted_quantile_loss(
    actual: np.ndarray, quantile_forecasts: dict[float, np.ndarray], quantiles: Sequence[float]
) -> float:
    """Mean weighted quantile loss, GluonTS's `mean_wQuantileLoss` (a CRPS approximation).

    For each quantile q, `2 * sum(pinball_q(actual, forecast_q)) / sum(|actual|)`, then the mean over
    `quantiles`. Sums run over every element, so stacked windows of shape (num_windows, prediction_length)
    are weighted as GluonTS weights series: by their total absolute value. NaN if no actual is observed or
    all observed actuals are 0.
    """
    (actual,) = _as_float_arrays(actual)
    observed = ~np.isnan(actual)
    scale = np.abs(actual[observed]).sum()
    if scale == 0:
        return float("nan")
    losses = []
    for quantile in quantiles:
        forecast = np.asarray(quantile_forecasts[quantile], dtype=float)[observed]
        indicator = (actual[observed] <= forecast).astype(float)
        losses.append(2 * np.sum(np.abs((forecast - actual[observed]) * (indicator - quantile))) / scale)
    return float(np.mean(losses))


def interval_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """The fraction of observed actual values inside [lower, upper]; NaN if none is observed."""
    actual, lower, upper = _as_float_arrays(actual, lower, upper)
    observed = ~np.isnan(actual)
    if not observed.any():
        return float("nan")
    inside = (lower[observed] <= actual[observed]) & (actual[observed] <= upper[observed])
    return float(np.mean(inside))


# Baselines.


def _check_forecast_arguments(
    history: np.ndarray, prediction_length: int, season_length: int, quantiles: Sequence[float]
) -> np.ndarray:
    """`history` as a 1-D float array, after checking every argument of a forecast function."""
    history = np.asarray(history, dtype=float)
    if history.ndim != 1 or np.isnan(history).all():
        raise ValueError(f"history must be a 1-D array with an observed value, got shape {history.shape}")
    if prediction_length < 1:
        raise ValueError(f"prediction_length must be at least 1, got {prediction_length}")
    if season_length < 1:
        raise ValueError(f"season_length must be at least 1, got {season_length}")
    if not all(0 < quantile < 1 for quantile in quantiles):
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {list(quantiles)}")
    return history


def _fill_missing(history: np.ndarray) -> np.ndarray:
    """`history` with NaN interpolated linearly between observed values, and the nearest one at the ends."""
    if not np.isnan(history).any():
        return history
    return pd.Series(history).interpolate(limit_direction="both").to_numpy()


def _seasonal_repeat(last_season: np.ndarray, prediction_length: int) -> np.ndarray:
    """`last_season` repeated to `prediction_length` steps."""
    return last_season[np.arange(prediction_length) % len(last_season)]  # (prediction_length,)


def seasonal_naive(
    history: np.ndarray, prediction_length: int, season_length: int, quantiles: Sequence[float]
) -> dict[float, np.ndarray]:
    """Repeat the last season (the last value when the history is shorter than a season).

    Quantiles come from a normal fit of the in-sample seasonal-naive residuals `y[t] - y[t - season]`
    (root mean square, missing values left out), widened by the square root of the number of seasons ahead:
    the seasonal random walk's predictive distribution.
    """
    history = _check_forecast_arguments(history, prediction_length, season_length, quantiles)
    lag = season_length if len(history) >= season_length else 1
    point = _seasonal_repeat(_fill_missing(history)[-lag:], prediction_length)  # (prediction_length,)
    residuals = history[lag:] - history[:-lag]
    residuals = residuals[~np.isnan(residuals)]
    sigma = np.sqrt(np.mean(residuals**2)) if residuals.size else 0.0
    seasons_ahead = np.arange(prediction_length) // lag + 1  # (prediction_length,)
    scale = sigma * np.sqrt(seasons_ahead)  # (prediction_length,)
    return {quantile: point + scale * norm.ppf(quantile) for quantile in quantiles}


def _fallback(
    name: str,
    err: Exception,
    history: np.ndarray,
    prediction_length: int,
    season_length: int,
    quantiles: Sequence[float],
) -> dict[float, np.ndarray]:
    """Warn that baseline `name` failed with `err`, and forecast with `seasonal_naive` instead."""
    warnings.warn(
        f"{name} failed ({type(err).__name__}: {err}); falling back to seasonal_naive",
        RuntimeWarning,
        stacklevel=3,
    )
    return seasonal_naive(history, prediction_length, season_length, quantiles)


def _fit_ets_form(
    y: np.ndarray,
    error: str,
    trend: str | None,
    damped: bool,
    seasonal: str | None,
    season_length: int,
    init: str,
):
    """`ETSModel` of the given form fitted to `y` with `initialization_method=init`; None if statsmodels
    cannot fit it (R's `ets` skips such forms too)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and overflow warnings of poor candidate forms
            return ETSModel(
                pd.Series(y),  # get_prediction needs an index: it fails on a bare array
                error=error,
                trend=trend,
                damped_trend=damped,
                seasonal=seasonal,
                seasonal_periods=season_length if seasonal else None,
                initialization_method=init,
            ).fit(disp=False)
    except (ValueError, ArithmeticError):
        return None


def _fit_best_ets(y: np.ndarray, season_length: int):
    """The ETS model with the smallest AICc among the forms valid for `y`, fitted to `y`.

    The candidates are R's `ets` defaults: additive or multiplicative error, no / additive / damped additive
    trend, no / additive / multiplicative season; multiplicative parts only for positive data, no additive
    error with a multiplicative season (numerically unstable), and no form with `n <= parameters + 4` (R's
    rule). Seasonal forms are compared with heuristic initial states (Hyndman et al.'s, statsmodels
    `initialization_method="heuristic"`), an order of magnitude faster than optimising one state per
    position of the season; AICc counts those states as parameters all the same, as R counts its estimated
    ones, so the forms stay comparable. The chosen seasonal form is then refitted with estimated initial
    states when the season has at most `MAX_SEASONAL_STATES` positions.
    """
    positive = bool(np.all(y > 0))
    seasonal_forms = (None,)
    if season_length > 1 and len(y) >= 2 * season_length:
        seasonal_forms = (None, "add", "mul") if positive else (None, "add")
    best, best_form, best_aicc = None, None, np.inf
    for error, (trend, damped), seasonal in itertools.product(
        ("add", "mul") if positive else ("add",),
        ((None, False), ("add", False), ("add", True)),
        seasonal_forms,
    ):
        if error == "add" and seasonal == "mul":
            continue
        num_initial_states = 1 + (trend is not None) + (season_length if seasonal else 0)
        num_smoothing = 1 + (trend is not None) + (seasonal is not None) + damped
        num_parameters = num_initial_states + num_smoothing + 1  # + the error variance, as R counts
        if len(y) <= num_parameters + 4:
            continue
        form = (error, trend, damped, seasonal)
        result = _fit_ets_form(y, *form, season_length, "heuristic" if seasonal else "estimated")
        if result is None:
            continue
        aicc = -2 * result.llf + 2 * num_parameters * len(y) / (len(y) - num_parameters - 1)
        if np.isfinite(aicc) and aicc < best_aicc:
            best, best_form, best_aicc = result, form, aicc
    if best is None:
        raise ValueError(f"no ETS form could be fitted to {len(y)} values")
    if best_form[3] is not None and season_length <= MAX_SEASONAL_STATES:
        refitted = _fit_ets_form(y, *best_form, season_length, "estimated")
        if refitted is not None and np.isfinite(refitted.llf) and refitted.llf >= best.llf:
            best = refitted
    return best


@_single_threaded_blas
def ets(
    history: np.ndarray,
    prediction_length: int,
    season_length: int,
    quantiles: Sequence[float],
    *,
    max_history: int = MAX_HISTORY,
) -> dict[float, np.ndarray]:
    """Exponential smoothing (statsmodels `ETSModel`), the form chosen by AICc as R's `forecast::ets`.

    Missing values are interpolated first (`ETSModel` takes none) and only the last `max_history` values are
    fitted; the form is chosen as `_fit_best_ets` describes. Quantiles are those of the prediction intervals of `get_prediction(...).summary_frame(alpha)`:
    analytic for additive forms, from 1,000 seeded simulated paths for multiplicative ones. Falls back to
    `seasonal_naive`, with a `RuntimeWarning`, when no form can be fitted or the forecast is not finite.
    """
    history = _check_forecast_arguments(history, prediction_length, season_length, quantiles)
    y = _fill_missing(history)[-max_history:]
    try:
        result = _fit_best_ets(y, season_length)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prediction = result.get_prediction(
                start=len(y), end=len(y) + prediction_length - 1, rng=np.random.default_rng(0)
            )
            forecasts = {}
            for quantile in quantiles:
                frame = prediction.summary_frame(alpha=2 * min(quantile, 1 - quantile))
                column = "pi_lower" if quantile <= 0.5 else "pi_upper"
                forecasts[quantile] = np.asarray(frame[column], dtype=float)  # (prediction_length,)
        if not all(np.isfinite(forecast).all() for forecast in forecasts.values()):
            raise ValueError(f"the ETS form {result.model.short_name} forecasts non-finite values")
    except (ValueError, ArithmeticError) as err:
        return _fallback("ets", err, history, prediction_length, season_length, quantiles)
    return forecasts


def _seasonal_strength(decomposition) -> float:
    """Seasonal strength of an STL decomposition, `max(0, 1 - var(remainder) / var(season + remainder))`."""
    remainder = np.asarray(decomposition.resid)
    return max(0.0, 1 - np.var(remainder) / np.var(np.asarray(decomposition.seasonal) + remainder))


def _num_differences(y: np.ndarray, max_differences: int) -> int:
    """How many first differences make `y` level-stationary by KPSS tests at the 5% level (auto.arima's d)."""
    differences = 0
    while differences < max_differences and len(y) > 3:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # KPSS warns when its p-value is outside its table (0.01-0.1)
                p_value = kpss(y, regression="c", nlags="auto")[1]
        except (ValueError, ZeroDivisionError):  # a constant series: nothing left to difference
            break
        if p_value >= 0.05:
            break
        y = np.diff(y)
        differences += 1
    return differences


# Hyndman & Khandakar's neighbours of (p, q, P, Q): one of p, q changed by 1 or both by the same 1, and the same
# for P, Q.
_PAIR_MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1))
_STEPWISE_MOVES = tuple((dp, dq, 0, 0) for dp, dq in _PAIR_MOVES) + tuple(
    (0, 0, dP, dQ) for dP, dQ in _PAIR_MOVES
)


def _stepwise_orders(
    fit: Callable[[tuple[int, int, int, int]], float], seasonal: bool
) -> tuple[int, int, int, int]:
    """The (p, q, P, Q) with the smallest `fit(order)` found by Hyndman & Khandakar's stepwise search.

    Starts from (2, 2, 1, 1), (0, 0, 0, 0), (1, 0, 1, 0) and (0, 1, 0, 1), then moves to the best neighbour
    (one or both of p, q and one or both of P, Q changed by 1) while it improves; p, q <= 2 and
    P, Q <= 1 (0 when not `seasonal`).
    """
    upper = (2, 2, 1, 1) if seasonal else (2, 2, 0, 0)
    scores: dict[tuple[int, int, int, int], float] = {}

    def score(order):
        if order not in scores and all(
            0 <= value <= bound for value, bound in zip(order, upper, strict=True)
        ):
            scores[order] = fit(order)

    for start in ((2, 2, 1, 1), (0, 0, 0, 0), (1, 0, 1, 0), (0, 1, 0, 1)):
        score(tuple(min(value, bound) for value, bound in zip(start, upper, strict=True)))
    best = min(scores, key=scores.get)
    while True:
        for move in _STEPWISE_MOVES:
            score(tuple(value + delta for value, delta in zip(best, move, strict=True)))
        candidate = min(scores, key=scores.get)
        if candidate == best:
            return best
        best = candidate


def _auto_arima(
    y: np.ndarray, prediction_length: int, season_length: int, seasonal: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation, each of shape (prediction_length,), of the auto-selected ARIMA for `y`.

    The orders of differencing come from tests (D = 1 when `seasonal`; d by KPSS on the seasonally
    differenced series, d + D <= 2); a constant (drift when differenced once) is included when d + D <= 1;
    (p, q, P, Q) minimise AICc in a stepwise search, among fits whose AR and MA roots lie outside 1.01
    (auto.arima's guard against degenerate fits at the unit circle, common on short series). Candidates
    are fitted on the differenced series (fast), and the chosen parameters are then run through the
    undifferenced model to forecast levels.
    """
    filled = _fill_missing(y)
    seasonal_differences = 1 if seasonal else 0
    differenced = filled[season_length:] - filled[:-season_length] if seasonal else filled
    differences = _num_differences(differenced, 2 - seasonal_differences)
    trend = "c" if differences + seasonal_differences <= 1 else "n"
    num_effective = len(y) - differences - seasonal_differences * season_length
    fits = {}

    def model(order, simple_differencing):
        p, q, seasonal_p, seasonal_q = order
        seasonal_order = (
            (seasonal_p, seasonal_differences, seasonal_q, season_length) if seasonal else (0, 0, 0, 0)
        )
        return SARIMAX(
            y,
            order=(p, differences, q),
            seasonal_order=seasonal_order,
            trend=trend,
            simple_differencing=simple_differencing,
        )

    def fit(order) -> float:
        num_parameters = sum(order) + (trend == "c") + 1
        if num_effective - num_parameters - 1 <= 0:
            return np.inf
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence warnings of poor candidate orders
                result = model(order, simple_differencing=True).fit(
                    disp=False, cov_type="none", low_memory=True
                )
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            return np.inf
        roots = np.concatenate([np.atleast_1d(result.arroots), np.atleast_1d(result.maroots)])
        if not np.isfinite(result.aicc) or np.any(np.abs(roots) < 1.01):
            return np.inf
        fits[order] = result
        return result.aicc

    order = _stepwise_orders(fit, seasonal)
    if order not in fits:
        raise ValueError(f"no ARIMA order could be fitted to {len(y)} values")
    p, q, seasonal_p, seasonal_q = order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecast = (
            model(order, simple_differencing=False).filter(fits[order].params).get_forecast(prediction_length)
        )
    mean, std = np.asarray(forecast.predicted_mean), np.asarray(forecast.se_mean)  # (prediction_length,) each
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError(
            f"ARIMA({p},{differences},{q})({seasonal_p},{seasonal_differences},{seasonal_q}) forecasts non-finite values"
        )
    return mean, std


@_single_threaded_blas
def arima(
    history: np.ndarray,
    prediction_length: int,
    season_length: int,
    quantiles: Sequence[float],
    *,
    max_history: int = MAX_HISTORY,
) -> dict[float, np.ndarray]:
    """ARIMA (statsmodels `SARIMAX`) with orders chosen as R's `forecast::auto.arima` chooses them.

    Fits the last `max_history` values. The series is treated as seasonal when it holds two seasons and
    STL's seasonal strength exceeds `SEASONAL_STRENGTH_THRESHOLD`; then, up to `MAX_SEASONAL_STATES`, a
    seasonal ARIMA (D = 1, P, Q <= 1) is fitted, and beyond, a non-seasonal ARIMA forecasts the
    STL-deseasonalized series and the last season of STL's seasonal component is added back (statsmodels'
    `STLForecast` scheme). Missing values stay missing for the Kalman filter (they are interpolated only for
    the differencing tests and STL). Quantiles are those of the forecast's normal distribution. Falls back to
    `seasonal_naive`, with a `RuntimeWarning`, when no order can be fitted.
    """
    history = _check_forecast_arguments(history, prediction_length, season_length, quantiles)
    y = history[-max_history:]
    try:
        seasonal = False
        if season_length > 1 and len(y) >= 2 * season_length:
            decomposition = STL(_fill_missing(y), period=season_length).fit()
            seasonal = _seasonal_strength(decomposition) > SEASONAL_STRENGTH_THRESHOLD
        if seasonal and season_length > MAX_SEASONAL_STATES:
            season = np.asarray(decomposition.seasonal)  # (len(y),)
            mean, std = _auto_arima(_fill_missing(y) - season, prediction_length, 1, seasonal=False)
            mean = mean + _seasonal_repeat(season[-season_length:], prediction_length)
        else:
            mean, std = _auto_arima(y, prediction_length, season_length, seasonal)
    except (ValueError, ArithmeticError) as err:
        return _fallback("arima", err, history, prediction_length, season_length, quantiles)
    return {quantile: mean + std * norm.ppf(quantile) for quantile in quantiles}


# Evaluation.


@dataclass
class ForecastWindow:
    """One held-out window of one series.

    Args:
        item_id: the series.
        start: ISO timestamp of the series' first value (and of `history[0]`).
        freq: pandas frequency of the series.
        origin: index in the series of the first held-out value.
        history: the values before the window, shape (origin,); NaN where missing.
        actual: the held-out values, shape (prediction_length,); NaN where missing.
        feat_dynamic_real: the covariates over history and window, shape (num_features, origin +
            prediction_length), or None when the set has none.
    """

    item_id: str
    start: str
    freq: str
    origin: int
    history: np.ndarray
    actual: np.ndarray
    feat_dynamic_real: np.ndarray | None


def forecast_windows(
    data: ForecastingData, num_windows: int, stride: int | None = None
) -> Iterator[ForecastWindow]:
    """The last `num_windows` windows of every series of `data` (see `rolling_origins`), series by series."""
    for row in data.dataset:
        target = np.asarray(row["target"], dtype=float)  # (length,)
        covariates = row.get("feat_dynamic_real")
        if covariates is not None:
            covariates = np.asarray(covariates, dtype=float)  # (num_features, length)
        for origin in rolling_origins(len(target), data.prediction_length, num_windows, stride):
            end = origin + data.prediction_length
            yield ForecastWindow(
                item_id=row["item_id"],
                start=row["start"],
                freq=data.freq,
                origin=origin,
                history=target[:origin],
                actual=target[origin:end],
                feat_dynamic_real=None if covariates is None else covariates[:, :end],
            )


def evaluate(
    forecast_fn: ForecastFn,
    data: ForecastingData,
    num_windows: int,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    *,
    stride: int | None = None,
    with_window: bool = False,
) -> dict[str, str | int | float]:
    """Score `forecast_fn` on the last `num_windows` windows of every series of `data`.

    `forecast_fn(history, prediction_length, season_length, quantiles)` must return a forecast of shape
    (prediction_length,) for each of `quantiles`, which must include 0.1, 0.5 and 0.9. With `with_window`,
    it is also passed `window=` the `ForecastWindow` (dates and covariates, for forecasters that use them).
    Windows whose actual values are all missing are skipped.

    Returns a dict with `dataset`, `num_series`, `num_windows` (per series), `num_forecasts` (windows
    scored), `mase` and `smape` (means over windows of all series; MASE leaves out windows where it is
    undefined), `mean_wql` (over all windows at once, as GluonTS aggregates it), `coverage_80` (the share of
    actual values inside the 0.1-0.9 quantile interval) and `seconds` (wall time of the forecasts).
    """
    missing = [quantile for quantile in (0.1, 0.5, 0.9) if quantile not in quantiles]
    if missing:
        raise ValueError(
            f"quantiles must include 0.1, 0.5 and 0.9 (point forecast and 80% interval); missing {missing}"
        )
    horizon = data.prediction_length
    mase_values, smape_values, actuals = [], [], []
    forecasts: dict[float, list[np.ndarray]] = {quantile: [] for quantile in quantiles}
    seconds = 0.0
    for window in forecast_windows(data, num_windows, stride):
        if np.isnan(window.actual).all():
            continue
        started = time.perf_counter()
        extra = {"window": window} if with_window else {}
        quantile_forecasts = forecast_fn(window.history, horizon, data.season_length, quantiles, **extra)
        seconds += time.perf_counter() - started
        for quantile in quantiles:
            forecast = np.asarray(quantile_forecasts.get(quantile), dtype=float)
            if forecast.shape != (horizon,) or not np.isfinite(forecast).all():
                raise ValueError(
                    f"forecast_fn returned {forecast.shape} for quantile {quantile} of {window.item_id} at "
                    f"{window.origin}; expected {horizon} finite values"
                )
            forecasts[quantile].append(forecast)
        point = forecasts[0.5][-1]
        mase_values.append(mase(window.actual, point, window.history, data.season_length))
        smape_values.append(smape(window.actual, point))
        actuals.append(window.actual)
    if not actuals:
        raise ValueError(f"{data.name}: every window's actual values are missing")
    actual = np.stack(actuals)  # (num_forecasts, prediction_length)
    stacked = {
        quantile: np.stack(values) for quantile, values in forecasts.items()
    }  # (num_forecasts, horizon)
    defined_mase = [value for value in mase_values if not np.isnan(value)]
    return {
        "dataset": data.name,
        "num_series": len(data.dataset),
        "num_windows": num_windows,
        "num_forecasts": len(actuals),
        "mase": float(np.mean(defined_mase)) if defined_mase else float("nan"),
        "smape": float(np.nanmean(smape_values)),
        "mean_wql": weighted_quantile_loss(actual, stacked, quantiles),
        "coverage_80": interval_coverage(actual, stacked[0.1], stacked[0.9]),
        "seconds": seconds,
    }


__all__ = [
    "DEFAULT_QUANTILES",
    "MAX_HISTORY",
    "ForecastFn",
    "ForecastWindow",
    "arima",
    "ets",
    "evaluate",
    "forecast_windows",
    "interval_coverage",
    "mase",
    "rolling_origins",
    "seasonal_naive",
    "smape",
    "weighted_quantile_loss",
]
