"""Input checks for the front door: every problem in a frame is collected and reported in one error.

The checks follow the order a user would fix things in: columns, types, missing values, duplicates, the
frequency, gaps in each series' time index. Series are named in the messages (the first few, then a count).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from stackml.checks import is_int, is_number
from stackml.errors import InputError, raise_if_problems
from stackml.forecasting.frame import FrameSpec, resolve_freq

__all__ = [
    "check_horizon",
    "check_lengths",
    "check_level",
    "check_windows",
    "level_suffix",
    "validate_frame",
    "windows_needed",
]

#: a backtest window needs at least this many training values per series
MIN_TRAIN_LENGTH = 1
_SHOW = 5  # how many series a message names before summarising the rest


def _names(values: Sequence[Any]) -> str:
    shown = ", ".join(repr(_plain(v)) for v in list(values)[:_SHOW])
    rest = len(values) - _SHOW
    return shown + (f" and {rest} more" if rest > 0 else "")


def _plain(value: Any) -> Any:
    """NumPy scalars print as ``np.int64(3)`` in reprs; show them as plain Python values."""
    return value.item() if isinstance(value, np.generic) else value


def _fmt_time(value: Any) -> str:
    return (
        str(pd.Timestamp(value)) if isinstance(value, (pd.Timestamp, np.datetime64)) else str(_plain(value))
    )


def check_horizon(h: Any) -> int:
    """Return ``h`` as an int or raise: the horizon must be a positive integer."""
    if not is_int(h) or h < 1:
        raise InputError(f"The horizon h must be a positive integer, got {h!r}.", hint="Pass e.g. h=24.")
    return int(h)


def check_level(level: Any) -> list[float]:
    """Return ``level`` as a sorted list or raise: it must be a list of numbers strictly between 0 and 100."""
    if level is None:
        return []
    bad = isinstance(level, (str, bytes)) or not isinstance(level, (list, tuple, np.ndarray))
    if not bad:
        items = list(level)
        bad = not items or any(not is_number(v) or not 0 < v < 100 for v in items)
    if bad:
        raise InputError(
            f"level must be a list of numbers strictly between 0 and 100, got {level!r}.",
            hint="Pass e.g. level=[80, 95] for 80% and 95% prediction intervals.",
        )
    return sorted({float(v) for v in items})


def level_suffix(level: float) -> str:
    """``80.0`` -> ``"80"``, ``97.5`` -> ``"97.5"``: the level as it appears in interval column names."""
    return str(int(level)) if float(level).is_integer() else str(level)


def check_windows(h: int, n_windows: Any, step_size: Any) -> tuple[int, int]:
    """Validate backtest windows; return ``(n_windows, step_size)`` with ``step_size`` defaulting to ``h``."""
    problems = []
    if not is_int(n_windows) or n_windows < 1:
        problems.append(f"n_windows must be a positive integer, got {n_windows!r}")
    if step_size is not None and (not is_int(step_size) or step_size < 1):
        problems.append(f"step_size must be a positive integer or None (= h), got {step_size!r}")
    if problems:
        raise InputError("; ".join(problems) + ".", hint="Pass e.g. n_windows=3, step_size=h.")
    return int(n_windows), int(h if step_size is None else step_size)


def windows_needed(h: int, n_windows: int, step_size: int) -> int:
    """Values a series needs for ``n_windows`` windows of ``h`` values ``step_size`` apart
    (plus training data)."""
    return h + (n_windows - 1) * step_size + MIN_TRAIN_LENGTH


def check_lengths(ids: np.ndarray, lengths: np.ndarray, needed: int, what: str, why: str, hint: str) -> None:
    """Raise naming every series shorter than ``needed``.

    Args:
        ids: series ids.
        lengths: their lengths.
        needed: the minimum length.
        what: what needs the length (e.g. "cross_validation with h=24, n_windows=3").
        why: how ``needed`` adds up, shown in the message.
        hint: how to fix it.
    """
    short = np.flatnonzero(np.asarray(lengths) < needed)
    if short.size:
        detail = ", ".join(f"{_plain(ids[i])!r} ({int(lengths[i])})" for i in short[:_SHOW])
        more = f" and {short.size - _SHOW} more" if short.size > _SHOW else ""
        raise InputError(
            f"{short.size} series are too short for {what}: {detail}{more} (length in brackets). "
            f"Each needs at least {needed} values = {why}.",
            hint=hint,
        )


def validate_frame(
    df: Any,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    freq: Any = None,
) -> tuple[pd.DataFrame, FrameSpec]:
    """Check a long frame and return it cleaned (sorted, typed) with what was learned about it.

    Every other numeric column is taken as exogenous.

    Raises:
        InputError: listing every problem found, naming the series involved.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"Expected a pandas DataFrame in long format, got {type(df).__name__}.",
            hint=f"Pass a frame with columns '{id_col}', '{time_col}', '{target_col}'.",
        )
    missing = [c for c in (id_col, time_col, target_col) if c not in df.columns]
    if missing:
        raise InputError(
            f"The following columns are missing: {missing}",
            hint=f"The data has {list(df.columns)}; rename its columns to '{id_col}', '{time_col}' and "
            f"'{target_col}' (in Python, or name yours with id_col=, time_col=, target_col=).",
        )
    if df.empty:
        raise InputError("The frame has no rows.", hint="Pass at least one series with at least one value.")
    problems: list[str] = []
    df = df.reset_index(drop=True)  # a fresh copy with unique row labels, whatever the caller's index
    ids = df[id_col]

    if ids.isna().any():
        problems.append(f"'{id_col}' has {int(ids.isna().sum())} missing values")

    time_ok = _coerce_time(df, time_col, problems)
    _coerce_target(df, id_col, time_col, target_col, problems, time_ok)
    exog = _check_exogenous(df, (id_col, time_col, target_col), id_col, problems)

    freq_value, is_ts = None, time_ok and pd.api.types.is_datetime64_any_dtype(df[time_col])
    if time_ok and not ids.isna().any():
        df = df.sort_values([id_col, time_col], kind="stable").reset_index(drop=True)
        dup = df.duplicated([id_col, time_col], keep=False)
        if dup.any():
            pairs = df.loc[dup, [id_col, time_col]].drop_duplicates()
            shown = ", ".join(
                f"({_plain(a)!r}, {_fmt_time(b)})" for a, b in pairs.head(_SHOW).itertuples(index=False)
            )
            problems.append(
                f"{int(dup.sum())} rows share a ({id_col}, {time_col}) pair with another row: {shown}"
                + (f" and {len(pairs) - _SHOW} more pairs" if len(pairs) > _SHOW else "")
                + "; aggregate or drop the duplicates"
            )
        try:
            freq_value = resolve_freq(df, id_col, time_col, freq, is_ts)
        except InputError as exc:
            problems.append(f"{exc.message.rstrip('.')}; {_freq_fix(df, id_col, time_col, is_ts)}")
        if freq_value is not None and not dup.any():
            problems.extend(_gap_problems(df, id_col, time_col, freq_value, is_ts, freq))
    raise_if_problems(problems, what="the input frame", hint="Fix them all in the data and run again.")
    return df, FrameSpec(id_col, time_col, target_col, exog, freq_value, bool(is_ts))


def _coerce_time(df: pd.DataFrame, time_col: str, problems: list[str]) -> bool:
    col = df[time_col]
    if col.isna().any():
        problems.append(f"'{time_col}' has {int(col.isna().sum())} missing values")
        return False
    if pd.api.types.is_datetime64_any_dtype(col):
        return True
    if pd.api.types.is_bool_dtype(col):
        problems.append(f"'{time_col}' must hold timestamps or integers, got booleans")
        return False
    if pd.api.types.is_integer_dtype(col):
        df[time_col] = col.astype(np.int64)
        return True
    if pd.api.types.is_float_dtype(col):
        if np.all(np.isfinite(col)) and np.all(col == np.round(col)):
            df[time_col] = col.astype(np.int64)
            return True
        problems.append(f"'{time_col}' holds non-integer numbers; it must hold timestamps or integer steps")
        return False
    try:
        with warnings.catch_warnings():
            # pandas warns when it parses element by element; a failure is reported below instead
            warnings.simplefilter("ignore", UserWarning)
            df[time_col] = pd.to_datetime(col)
        return True
    except (ValueError, TypeError):
        problems.append(
            f"'{time_col}' must hold timestamps or integer steps; values such as {col.iloc[0]!r} "
            "could not be parsed as dates"
        )
        return False


def _coerce_target(
    df: pd.DataFrame, id_col: str, time_col: str, target_col: str, problems: list[str], time_ok: bool
) -> None:
    raw = df[target_col]
    if pd.api.types.is_bool_dtype(raw):
        problems.append(f"'{target_col}' must be numeric, got booleans")
        return
    values = (
        pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw) else raw.astype(float)
    )
    bad_text = values.isna() & raw.notna()
    if bad_text.any():
        series = df.loc[bad_text, id_col].unique()
        example = raw[bad_text].iloc[0]
        problems.append(
            f"'{target_col}' must be numeric; {int(bad_text.sum())} values are not numbers "
            f"(e.g. {example!r}) in series {_names(series)}"
        )
    df[target_col] = values
    finite = np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    bad = ~finite & ~bad_text.to_numpy()
    if bad.any():
        per_series = pd.Series(bad).groupby(df[id_col].to_numpy()).agg(["sum", "size"])
        all_missing = per_series.index[per_series["sum"] == per_series["size"]]
        partly = per_series.index[(per_series["sum"] > 0) & (per_series["sum"] < per_series["size"])]
        if len(all_missing):
            problems.append(f"'{target_col}' is entirely missing in series {_names(all_missing)}; drop them")
        if len(partly):
            first = (
                df.loc[bad & df[id_col].isin(partly).to_numpy()].groupby(id_col, sort=True)[time_col].first()
            )
            where = ", ".join(f"{_plain(k)!r} at {_fmt_time(v)}" for k, v in first.head(_SHOW).items())
            more = f" and {len(first) - _SHOW} more" if len(first) > _SHOW else ""
            problems.append(
                f"'{target_col}' has missing or infinite values in {len(partly)} series (first at): "
                f"{where}{more}; fill or drop them in the data (in Python: fill_gaps(df, fill='interpolate'))"
                if time_ok
                else f"'{target_col}' has missing or infinite values in series {_names(partly)}"
            )


def _check_exogenous(
    df: pd.DataFrame, reserved: tuple[str, ...], id_col: str, problems: list[str]
) -> tuple[str, ...]:
    others = [c for c in df.columns if c not in reserved]
    text = [c for c in others if not pd.api.types.is_numeric_dtype(df[c])]
    if text:
        problems.append(
            f"extra columns must be numeric (they are used as exogenous regressors), got non-numeric {text}; "
            "drop them or encode them as numbers"
        )
    exog = tuple(c for c in others if c not in text)
    for col in exog:
        df[col] = df[col].astype(np.float64)
        missing = ~np.isfinite(df[col].to_numpy())
        if missing.any():
            series = df.loc[missing, id_col].unique()
            problems.append(
                f"exogenous column '{col}' has missing or infinite values in series {_names(series)}"
            )
    return exog


def _freq_fix(df: pd.DataFrame, id_col: str, time_col: str, is_ts: bool) -> str:
    """How to give the frequency, on the command line and in Python (the same errors reach both), with the
    smallest step in the data as the example."""
    example: Any = "D"
    if not is_ts:
        example = 1
    else:
        steps = df.groupby(id_col, sort=False)[time_col].diff()
        steps = steps[steps > pd.Timedelta(0)]
        if len(steps):
            try:
                example = pd.tseries.frequencies.to_offset(steps.min()).freqstr
            except ValueError:  # a step pandas has no name for keeps the plain example
                pass
    return (
        f"pass the frequency, e.g. --freq {example} on the command line "
        f"(in Python: Forecaster(freq={example!r}))"
    )


def _gap_problems(
    df: pd.DataFrame, id_col: str, time_col: str, freq: Any, is_ts: bool, user_freq: Any
) -> list[str]:
    """Gaps (missing steps) and off-grid times per series, in a sorted frame without duplicates."""
    same = df[id_col].eq(df[id_col].shift()).to_numpy()
    ds = df[time_col].reset_index(drop=True)
    freq_name = freq if isinstance(freq, int) else freq.freqstr
    with warnings.catch_warnings():
        # calendar offsets on whole arrays are applied element-wise; pandas only warns about speed
        warnings.simplefilter("ignore")
        if not is_ts:
            expected = ds.shift() + freq
            off_grid = same & (ds.diff() % freq != 0).to_numpy()
        else:
            index = pd.DatetimeIndex(ds)
            expected = pd.Series(index + freq).shift()
            if isinstance(freq, pd.offsets.Tick):
                step = pd.Timedelta(freq)
                off_grid = same & ((ds.diff() % step) != pd.Timedelta(0)).to_numpy()
            else:
                # a time is on an anchored calendar grid (month starts, Sundays...) when a step back and forth
                # returns it unchanged
                off_grid = np.asarray((index - freq) + freq != index)
    gap = same & ds.ne(expected).to_numpy()
    problems = []
    if off_grid.any():
        rows = df.loc[off_grid].groupby(id_col, sort=True)[time_col].first()
        where = ", ".join(f"{_plain(k)!r} at {_fmt_time(v)}" for k, v in rows.head(_SHOW).items())
        more = f" and {len(rows) - _SHOW} more" if len(rows) > _SHOW else ""
        source = "the given" if user_freq is not None else "the inferred"
        problems.append(
            f"'{time_col}' values do not fall on {source} frequency {freq_name!r} in {len(rows)} series: "
            f"{where}{more}; {_freq_fix(df, id_col, time_col, is_ts)}"
        )
    gap = gap & ~off_grid
    if gap.any():
        positions = np.flatnonzero(gap)
        first_missing = pd.Series(np.asarray(expected)[positions], index=df[id_col].to_numpy()[positions])
        first_missing = first_missing[~first_missing.index.duplicated()]
        where = ", ".join(f"{_plain(k)!r} at {_fmt_time(v)}" for k, v in first_missing.head(_SHOW).items())
        more = f" and {len(first_missing) - _SHOW} more" if len(first_missing) > _SHOW else ""
        problems.append(
            f"gaps in the time index of {len(first_missing)} series (first missing '{time_col}'): "
            f"{where}{more}; add the missing rows to the data (in Python: "
            f"fill_gaps(df, freq={freq_name!r}, fill='interpolate'))"
        )
    return problems
