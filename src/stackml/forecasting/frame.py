"""The long frame and the packed :class:`Panel`: the one place that turns DataFrames into arrays and back.

Conventions shared with the models:

- ``Panel.extra["ds"]`` holds the time values aligned with ``Panel.y`` and ``Panel.extra["freq"]`` the step (a
  pandas ``DateOffset`` for timestamps, a positive ``int`` for integer steps), so a model can ask for future
  dates.
- Exogenous values for the future (``X_future`` in ``ForecastModel.predict``) are a 2-D array of shape
  ``(n_series * h, n_exog)``, series after series in panel order, columns in ``Panel.exog_names`` order: the
  same layout as ``Panel.X``.
- Calendar features (``Panel.time_features``) are derived from timestamp ``ds`` only;
  ``Panel.extra["future_time_features"]`` (a :class:`FutureCalendar`, also :func:`future_time_features`) gives
  the matching block ``(n_series * h, k)`` for the ``h`` steps after each series' end.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from stackml.checks import is_int
from stackml.errors import InputError
from stackml.forecasting.panel import Panel

__all__ = [
    "FrameSpec",
    "FutureCalendar",
    "build_panel",
    "calendar_features",
    "fill_gaps",
    "future_ds",
    "future_time_features",
    "parse_freq",
    "resolve_freq",
    "series_rows",
    "split_panel",
    "take_panel",
]


@dataclass(frozen=True)
class FrameSpec:
    """What the front door learned about a validated long frame.

    Attributes:
        id_col: series id column.
        time_col: time column.
        target_col: target column.
        exog_cols: exogenous columns (every other numeric column), in frame order.
        freq: a pandas ``DateOffset`` when ``is_timestamp`` else a positive ``int`` step.
        is_timestamp: whether ``time_col`` holds timestamps (else integers).
    """

    id_col: str
    time_col: str
    target_col: str
    exog_cols: tuple[str, ...]
    freq: Any
    is_timestamp: bool


def parse_freq(freq: Any, is_timestamp: bool) -> Any:
    """Turn a user ``freq`` into a ``DateOffset`` (timestamps) or an ``int`` step (integers).

    Raises:
        InputError: if the frequency does not fit the kind of time column or pandas does not know it.
    """
    if is_timestamp:
        if isinstance(freq, (bool, int, np.integer)):
            raise InputError(
                f"freq={freq!r} is an integer step, but the time column holds timestamps.",
                hint="Pass a pandas frequency such as freq='h' or 'D', or freq=None to infer it.",
            )
        try:
            return pd.tseries.frequencies.to_offset(freq)
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"freq={freq!r} is not a pandas frequency.", hint="Use e.g. 'h', 'D', 'W', 'MS', '15min'."
            ) from exc
    if not is_int(freq) or freq < 1:
        raise InputError(
            f"freq={freq!r} does not fit an integer time column: it needs a positive integer step.",
            hint="Pass freq=None (step inferred, usually 1) or an integer such as freq=1.",
        )
    return int(freq)


def resolve_freq(df: pd.DataFrame, id_col: str, time_col: str, freq: Any, is_timestamp: bool) -> Any:
    """The frequency to use: ``freq`` parsed, or inferred from the data when ``None``.

    Timestamps: pandas infers it from the longest series (the most common answer among up to ten). Integers:
    the most common step between consecutive values, 1 when no series has two values.

    Raises:
        InputError: if ``freq`` is invalid or cannot be inferred.
    """
    if freq is not None:
        return parse_freq(freq, is_timestamp)
    if not is_timestamp:
        diffs = df[time_col].diff()[df[id_col].eq(df[id_col].shift())]
        diffs = diffs[diffs > 0]
        return int(diffs.mode().iloc[0]) if len(diffs) else 1
    sizes = df.groupby(id_col, sort=False).size().sort_values(ascending=False)
    found = []
    for uid in sizes.index[:10]:
        times = pd.DatetimeIndex(df.loc[df[id_col] == uid, time_col])
        if len(times) >= 3:
            inferred = pd.infer_freq(times)
            if inferred:
                found.append(inferred)
    if not found:
        raise InputError(
            f"Could not infer the frequency of '{time_col}': no series has three or more regularly spaced "
            "timestamps.",
            hint="Pass the frequency explicitly, e.g. Forecaster(freq='h'), "
            "or fill gaps with fill_gaps(df, freq=...).",
        )
    return parse_freq(max(set(found), key=found.count), True)


def step_timedelta(offset: pd.DateOffset) -> pd.Timedelta:
    """About how long one step of ``offset`` lasts (exact for fixed frequencies such as hours)."""
    if isinstance(offset, pd.offsets.Tick):
        return pd.Timedelta(offset)
    stamps = pd.date_range("2001-01-01", periods=13, freq=offset)
    return (stamps[-1] - stamps[0]) / 12


def calendar_features(
    ds: pd.DatetimeIndex | np.ndarray, offset: pd.DateOffset
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Calendar features that vary at the resolution of ``offset`` (e.g. hour and weekday for hourly data).

    Returns:
        A float array ``(len(ds), k)`` and the ``k`` feature names (``k`` may be 0 for yearly data).
    """
    ds = pd.DatetimeIndex(ds)
    step = step_timedelta(offset)
    if step < pd.Timedelta(hours=1):
        names = ("minute", "hour", "dayofweek")
    elif step < pd.Timedelta(days=1):
        names = ("hour", "dayofweek")
    elif step < pd.Timedelta(days=7):
        names = ("dayofweek", "day", "month")
    elif step < pd.Timedelta(days=28):
        names = ("weekofyear", "month")
    elif step < pd.Timedelta(days=89):
        names = ("month",)
    elif step < pd.Timedelta(days=365):
        names = ("quarter",)
    else:
        names = ()
    cols = []
    for name in names:
        values = ds.isocalendar().week.to_numpy() if name == "weekofyear" else getattr(ds, name)
        cols.append(np.asarray(values, dtype=np.float64))
    out = np.column_stack(cols) if cols else np.empty((len(ds), 0))
    return out, names


def future_ds(last: Any, h: int, freq: Any) -> Any:
    """The ``h`` time values after each value of ``last``, series after series (length ``len(last) * h``).

    Returns an ``int64`` array for integer steps and a ``DatetimeIndex`` (time zone kept) for timestamps.
    """
    if isinstance(freq, (int, np.integer)):
        return (np.asarray(last, dtype=np.int64)[:, None] + freq * np.arange(1, h + 1)[None, :]).ravel()
    last = pd.DatetimeIndex(last).as_unit("ns")
    if isinstance(freq, pd.offsets.Tick):
        steps = np.tile(np.arange(1, h + 1), len(last))
        return last.repeat(h) + pd.to_timedelta(steps * pd.Timedelta(freq).value, unit="ns")
    # calendar offsets (months, weeks, business days) are not fixed lengths: one vectorised shift per step
    shifted = np.column_stack([(last + k * freq).as_unit("ns").asi8 for k in range(1, h + 1)]).ravel()
    out = pd.DatetimeIndex(shifted.view("M8[ns]"))
    return out if last.tz is None else out.tz_localize("UTC").tz_convert(last.tz)


class FutureCalendar:
    """Callable ``h -> (n_series * h, k)`` calendar features after each series' last time.

    Stored as ``Panel.extra["future_time_features"]`` (a plain object, so fitted models that keep it pickle).
    """

    def __init__(self, last: Any, freq: pd.DateOffset) -> None:
        self.last = pd.DatetimeIndex(last)
        self.freq = freq

    def __call__(self, h: int) -> np.ndarray:
        return calendar_features(future_ds(self.last, h, self.freq), self.freq)[0]


def future_time_features(panel: Panel, h: int) -> np.ndarray | None:
    """Calendar features for the ``h`` steps after each series of ``panel``
    (``(n_series * h, k)``), or ``None``.

    ``None`` when the panel has no calendar features (integer time steps). Columns follow
    ``panel.time_feature_names``.
    """
    if panel.time_features is None or "ds" not in panel.extra:
        return None
    return FutureCalendar(panel.extra["ds"][panel.indptr[1:] - 1], panel.extra["freq"])(h)


def build_panel(
    df: pd.DataFrame, spec: FrameSpec, season_length: int, periods: tuple[int, ...] = ()
) -> Panel:
    """Pack a validated frame, sorted by id then time, into a :class:`Panel`."""
    ids, starts = np.unique(df[spec.id_col].to_numpy(), return_index=True)
    order = np.argsort(starts)
    ids, starts = ids[order], starts[order]
    indptr = np.append(starts, len(df)).astype(np.int64)
    ds = (
        pd.DatetimeIndex(df[spec.time_col])
        if spec.is_timestamp
        else df[spec.time_col].to_numpy(dtype=np.int64)
    )
    X = df[list(spec.exog_cols)].to_numpy(dtype=np.float64) if spec.exog_cols else None
    time_features, names = (None, ())
    if spec.is_timestamp:
        time_features, names = calendar_features(ds, spec.freq)
        if not names:
            time_features = None
    return Panel(
        ids=ids,
        y=df[spec.target_col].to_numpy(dtype=np.float64),
        indptr=indptr,
        season_length=int(season_length),
        periods=tuple(int(p) for p in periods),
        X=X,
        exog_names=tuple(spec.exog_cols),
        time_features=time_features,
        time_feature_names=names,
        extra=_extra(ds, spec.freq, indptr, time_features is not None),
    )


def _extra(ds: Any, freq: Any, indptr: np.ndarray, calendar: bool) -> dict[str, Any]:
    extra: dict[str, Any] = {"ds": ds, "freq": freq}
    if calendar:
        extra["future_time_features"] = FutureCalendar(ds[indptr[1:] - 1], freq)
    return extra


def take_panel(panel: Panel, series: np.ndarray | None = None, stops: np.ndarray | None = None) -> Panel:
    """A sub-panel: the chosen ``series`` (indices, default all), each cut to its first ``stops[i]`` values.

    Args:
        panel: the panel to cut.
        series: indices of the series to keep, in the order wanted.
        stops: per kept series, how many leading values to keep (default: all).
    """
    series = np.arange(panel.n_series) if series is None else np.asarray(series, dtype=np.int64)
    starts = panel.indptr[series]
    lengths = panel.indptr[series + 1] - starts if stops is None else np.asarray(stops, dtype=np.int64)
    rows = series_rows(starts, lengths)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    extra = dict(panel.extra)
    if "ds" in extra:
        extra.update(_extra(extra["ds"][rows], extra["freq"], indptr, panel.time_features is not None))
    return replace(
        panel,
        ids=panel.ids[series],
        y=panel.y[rows],
        indptr=indptr,
        X=None if panel.X is None else panel.X[rows],
        time_features=None if panel.time_features is None else panel.time_features[rows],
        extra=extra,
    )


def series_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Row indices ``starts[i] .. starts[i] + lengths[i] - 1`` for every ``i``, concatenated."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.sum() == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(
        np.asarray(starts, dtype=np.int64) - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths
    )
    return np.arange(lengths.sum(), dtype=np.int64) + offsets


def split_panel(
    panel: Panel, h: int, end: np.ndarray | None = None
) -> tuple[Panel, np.ndarray, np.ndarray | None]:
    """Hold out ``h`` values per series: the training panel, the actuals ``(n_series, h)`` and ``X_future``.

    Args:
        panel: the full panel.
        h: how many values to hold out per series.
        end: per series, how many values of it the window uses (default: all); the last ``h`` of those are
            held out. Every entry must exceed ``h``.
    """
    lengths = panel.lengths if end is None else np.asarray(end, dtype=np.int64)
    train = take_panel(panel, stops=lengths - h)
    test_rows = series_rows(panel.indptr[:-1] + lengths - h, np.full(panel.n_series, h))
    actual = panel.y[test_rows].reshape(panel.n_series, h)
    X_future = None if panel.X is None else panel.X[test_rows]
    return train, actual, X_future


def fill_gaps(
    df: pd.DataFrame,
    freq: Any = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    fill: str | float | None = None,
    end: str = "per_series",
) -> pd.DataFrame:
    """Insert the rows missing from each series' regular time index.

    Args:
        df: long frame with ``id_col`` and ``time_col``.
        freq: pandas frequency for timestamps (inferred when ``None``), or an integer step for integer times.
        id_col: series id column.
        time_col: time column.
        fill: how to fill the other columns of the new rows (target and exogenous): ``None`` leaves them
            missing, ``"ffill"`` repeats the last value, ``"interpolate"`` interpolates linearly within each
            series, a number fills that constant. The filling also covers values that were already missing.
        end: ``"per_series"`` stops each series at its own last time; ``"global"`` extends every series to the
            latest time in the frame.

    Returns:
        A new frame sorted by ``id_col`` then ``time_col``.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"unique_id": ["a"] * 3, "ds": [0, 1, 3], "y": [1.0, 2.0, 4.0]})
        >>> fill_gaps(df, fill="interpolate")["y"].tolist()
        [1.0, 2.0, 3.0, 4.0]
    """
    missing = [c for c in (id_col, time_col) if c not in df.columns]
    if missing:
        raise InputError(
            f"The following columns are missing: {missing}", hint="Name them with id_col=/time_col=."
        )
    if end not in ("per_series", "global"):
        raise InputError(f"end must be 'per_series' or 'global', got {end!r}.")
    if isinstance(fill, str) and fill not in ("ffill", "interpolate"):
        raise InputError(f"fill must be None, 'ffill', 'interpolate' or a number, got {fill!r}.")
    df = df.copy()
    if not pd.api.types.is_numeric_dtype(df[time_col]) or pd.api.types.is_bool_dtype(df[time_col]):
        df[time_col] = pd.to_datetime(df[time_col])
    is_ts = pd.api.types.is_datetime64_any_dtype(df[time_col])
    step = resolve_freq(df, id_col, time_col, freq, is_ts)
    bounds = df.groupby(id_col, sort=True)[time_col].agg(["min", "max"])
    last_global = df[time_col].max()
    pieces = []
    for uid, (first, last) in bounds.iterrows():
        last = last_global if end == "global" else last
        if is_ts:
            times = pd.date_range(first, last, freq=step)
        else:
            times = np.arange(first, last + 1, step)
        pieces.append(pd.DataFrame({id_col: uid, time_col: times}))
    grid = pd.concat(pieces, ignore_index=True) if pieces else df[[id_col, time_col]].iloc[:0]
    grid[id_col] = grid[id_col].astype(df[id_col].dtype)
    out = grid.merge(df, on=[id_col, time_col], how="outer", sort=False)
    out = out.sort_values([id_col, time_col], kind="stable").reset_index(drop=True)
    value_cols = [c for c in out.columns if c not in (id_col, time_col)]
    if fill is not None and value_cols:
        numeric = [c for c in value_cols if pd.api.types.is_numeric_dtype(out[c])]
        grouped = out.groupby(id_col, sort=False)[numeric]
        if fill == "ffill":
            out[numeric] = grouped.ffill()
        elif fill == "interpolate":
            out[numeric] = grouped.transform(lambda s: s.interpolate(limit_direction="both"))
        else:
            out[numeric] = out[numeric].fillna(float(fill))
    return out
