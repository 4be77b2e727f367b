"""Frame checks, gap filling, frequencies, and packing frames into panels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.forecasting import fill_gaps, generate_series
from stackml.forecasting.frame import (
    build_panel,
    calendar_features,
    future_ds,
    future_time_features,
    resolve_freq,
    series_rows,
    split_panel,
    take_panel,
)
from stackml.forecasting.validation import check_level, level_suffix, validate_frame


def _frame(ids: list[str], times: list, values: list[float] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": ids, "ds": times, "y": values if values is not None else 1.0})


# -- validate_frame ------------------------------------------------------------------------------------------
def test_validate_sorts_types_and_finds_exogenous() -> None:
    df = pd.DataFrame(
        {
            "unique_id": ["b", "a", "b", "a"],
            "ds": [1, 0, 0, 1],
            "y": [4, 1, 3, 2],
            "promo": [True, False, True, True],
        }
    )
    clean, spec = validate_frame(df)
    assert clean["unique_id"].tolist() == ["a", "a", "b", "b"] and clean["y"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert spec.exog_cols == ("promo",) and clean["promo"].dtype == np.float64
    assert spec.freq == 1 and not spec.is_timestamp


def test_validate_parses_string_dates_and_integral_floats() -> None:
    _, spec = validate_frame(_frame(["a"] * 3, ["2024-01-01", "2024-01-02", "2024-01-03"]))
    assert spec.is_timestamp and spec.freq == pd.offsets.Day()
    clean, spec = validate_frame(_frame(["a"] * 3, [0.0, 1.0, 2.0]))
    assert clean["ds"].dtype == np.int64 and not spec.is_timestamp


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ([0.5, 1.5, 2.5], r"'ds' holds non-integer numbers"),
        (
            ["monday", "tuesday", "wednesday"],
            r"'ds' must hold timestamps or integer steps; values such as 'monday'",
        ),
        ([0, None, 2], r"'ds' has 1 missing values"),
        ([True, False, True], r"'ds' must hold timestamps or integers, got booleans"),
    ],
)
def test_validate_rejects_bad_time_columns(times: list, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_frame(_frame(["a"] * 3, times))


def test_validate_rejects_missing_ids_and_empty_frames() -> None:
    with pytest.raises(InputError, match=r"'unique_id' has 1 missing values"):
        validate_frame(_frame(["a", None, "a"], [0, 1, 2]))
    with pytest.raises(InputError, match=r"The frame has no rows"):
        validate_frame(_frame([], []))


def test_messages_name_a_few_series_then_count_the_rest() -> None:
    df = generate_series(n_series=8, freq=None, min_length=5, max_length=5)
    df["y"] = np.nan
    with pytest.raises(
        InputError, match=r"entirely missing in series 's0', 's1', 's2', 's3', 's4' and 3 more"
    ):
        validate_frame(df)


def test_gaps_in_monthly_and_off_grid_dates() -> None:
    months = list(pd.to_datetime(["2020-01-01", "2020-02-01", "2020-04-01", "2020-05-01"]))
    with pytest.raises(InputError, match=r"gaps in the time index of 1 series .*'a' at 2020-03-01 00:00:00"):
        validate_frame(_frame(["a"] * 4, months), freq="MS")
    off = list(pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-15"]))
    with pytest.raises(
        InputError, match=r"do not fall on the given frequency 'MS' in 1 series: 'a' at 2020-03-15"
    ):
        validate_frame(_frame(["a"] * 3, off), freq="MS")


def test_gaps_with_timezone_aware_hours() -> None:
    times = list(pd.date_range("2024-03-30", periods=6, freq="h", tz="Europe/Berlin").delete(2))
    with pytest.raises(InputError, match=r"'a' at 2024-03-30 02:00:00\+01:00"):
        validate_frame(_frame(["a"] * 5, times), freq="h")


def test_resolve_freq_uses_the_most_common_answer() -> None:
    df = pd.concat(
        [
            _frame(["a"] * 4, list(pd.date_range("2024-01-01", periods=4, freq="W-MON"))),
            _frame(["b"] * 5, list(pd.date_range("2024-01-01", periods=5, freq="W-MON"))),
            _frame(["c"] * 2, list(pd.date_range("2024-01-01", periods=2, freq="D"))),
        ]
    )
    assert resolve_freq(df, "unique_id", "ds", None, True) == pd.offsets.Week(weekday=0)


def test_check_level_and_suffix() -> None:
    assert check_level([95, 80, 80]) == [80.0, 95.0]
    assert check_level(None) == []
    assert [level_suffix(v) for v in (80.0, 97.5)] == ["80", "97.5"]


# -- fill_gaps -----------------------------------------------------------------------------------------------
def test_fill_gaps_inserts_rows_and_then_validates() -> None:
    df = generate_series(n_series=2, freq="D", min_length=20, max_length=20, n_exog=1)
    holes = df.drop(index=[3, 4, 25])
    filled = fill_gaps(holes, freq="D")
    assert len(filled) == len(df) and filled["y"].isna().sum() == 3
    assert filled[["unique_id", "ds"]].equals(df[["unique_id", "ds"]])
    interpolated = fill_gaps(holes, freq="D", fill="interpolate")
    validate_frame(interpolated)  # no gaps, no missing values any more
    expected = np.interp([3, 4], [2, 5], df["y"].iloc[[2, 5]])
    assert np.allclose(interpolated["y"].iloc[[3, 4]], expected)
    assert np.isclose(fill_gaps(holes, freq="D", fill=0)["y"].iloc[3], 0.0)
    assert np.isclose(fill_gaps(holes, freq="D", fill="ffill")["x0"].iloc[4], df["x0"].iloc[2])


def test_fill_gaps_integers_inferred_step_and_global_end() -> None:
    df = _frame(["a", "a", "a", "b", "b"], [0, 2, 6, 0, 2], [1.0, 2.0, 4.0, 5.0, 6.0])
    out = fill_gaps(df, end="global")
    assert out.groupby("unique_id")["ds"].apply(list).to_dict() == {"a": [0, 2, 4, 6], "b": [0, 2, 4, 6]}


def test_fill_gaps_rejects_bad_arguments() -> None:
    with pytest.raises(InputError, match=r"The following columns are missing: \['ds'\]"):
        fill_gaps(pd.DataFrame({"unique_id": ["a"]}), freq="D")
    with pytest.raises(
        InputError, match=r"fill must be None, 'ffill', 'interpolate' or a number, got 'mean'"
    ):
        fill_gaps(_frame(["a"], [0]), fill="mean")
    with pytest.raises(InputError, match=r"end must be 'per_series' or 'global', got 'max'"):
        fill_gaps(_frame(["a"], [0]), end="max")


# -- dates, calendar features and panels ---------------------------------------------------------------------
def test_future_ds_for_steps_ticks_and_calendar_offsets() -> None:
    assert future_ds(np.array([5, 9]), 2, 3).tolist() == [8, 11, 12, 15]
    last = pd.DatetimeIndex(["2024-01-31", "2024-02-29"])
    assert list(future_ds(last, 2, pd.offsets.MonthEnd())) == list(
        pd.to_datetime(["2024-02-29", "2024-03-31", "2024-03-31", "2024-04-30"])
    )
    hours = future_ds(pd.DatetimeIndex(["2024-01-01 23:00"], tz="UTC"), 2, pd.offsets.Hour())
    assert list(hours) == list(pd.to_datetime(["2024-01-02 00:00", "2024-01-02 01:00"]).tz_localize("UTC"))


def test_calendar_features_follow_the_resolution() -> None:
    ds = pd.date_range("2024-01-01", periods=3, freq="h")
    values, names = calendar_features(ds, pd.offsets.Hour())
    assert names == ("hour", "dayofweek") and values[:, 0].tolist() == [0, 1, 2] and values[0, 1] == 0
    assert calendar_features(ds, pd.offsets.MonthBegin())[1] == ("month",)
    assert calendar_features(ds, pd.offsets.YearBegin())[0].shape == (3, 0)


def test_panel_packs_series_and_future_calendar_matches() -> None:
    df = generate_series(n_series=2, freq="h", min_length=30, max_length=40, n_exog=1)
    clean, spec = validate_frame(df)
    panel = build_panel(clean, spec, season_length=24)
    assert (
        panel.ids.tolist() == ["s0", "s1"]
        and panel.lengths.tolist() == df.groupby("unique_id").size().tolist()
    )
    assert np.allclose(panel.series(1), df.loc[df["unique_id"] == "s1", "y"])
    assert panel.exog_names == ("x0",) and panel.time_feature_names == ("hour", "dayofweek")
    future = panel.extra["future_time_features"](3)
    last = df.groupby("unique_id")["ds"].max()
    expected_hours = [(t + pd.Timedelta(hours=k)).hour for t in last for k in (1, 2, 3)]
    assert future.shape == (6, 2) and future[:, 0].tolist() == expected_hours
    assert np.array_equal(future, future_time_features(panel, 3))


def test_take_and_split_panel_keep_everything_aligned() -> None:
    df = generate_series(n_series=3, freq="D", min_length=10, max_length=12, n_exog=1)
    clean, spec = validate_frame(df)
    panel = build_panel(clean, spec, season_length=1)
    sub = take_panel(panel, np.array([2, 0]), np.array([4, 5]))
    assert sub.ids.tolist() == ["s2", "s0"] and sub.lengths.tolist() == [4, 5]
    assert np.allclose(sub.series(0), panel.series(2)[:4]) and np.allclose(sub.exog(1), panel.exog(0)[:5])
    assert sub.extra["ds"][3] == panel.extra["ds"][panel.indptr[2] + 3]
    train, actual, X_future = split_panel(panel, 3)
    assert np.allclose(actual[1], panel.series(1)[-3:]) and np.allclose(
        X_future[3:6, 0], panel.exog(1)[-3:, 0]
    )
    assert train.lengths.tolist() == (panel.lengths - 3).tolist()
    # the calendar of the training panel continues right after its own end
    assert np.array_equal(
        train.extra["future_time_features"](3),
        panel.time_features[series_rows(panel.indptr[:-1] + panel.lengths - 3, [3, 3, 3])],
    )


def test_series_rows() -> None:
    assert series_rows(np.array([10, 0]), np.array([2, 3])).tolist() == [10, 11, 0, 1, 2]
    assert series_rows(np.array([0]), np.array([0])).tolist() == []
