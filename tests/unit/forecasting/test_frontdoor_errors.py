"""Bad inputs through every entry point of the Forecaster: each message is pinned."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.forecasting import Forecaster, generate_series
from stackml.forecasting.models.base import LocalModel


class LastValue(LocalModel):
    default_alias = "Last"

    def fit_one(self, y: np.ndarray, season_length: int) -> Any:
        return float(y[-1])

    def predict_one(self, state: Any, h: int) -> np.ndarray:
        return np.full(h, state)


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return generate_series(n_series=3, freq="D", min_length=30, max_length=30, random_state=0)


@pytest.fixture(scope="module")
def fitted(df: pd.DataFrame) -> Forecaster:
    return Forecaster(models=[LastValue()]).fit(df)


def _fit(frame: pd.DataFrame, **kw: Any) -> Any:
    return Forecaster(models=[LastValue()], **kw).fit(frame)


def _cv(frame: pd.DataFrame, **kw: Any) -> Any:
    return Forecaster(models=[LastValue()], **kw).cross_validation(frame, h=2)


ENTRY_POINTS = [pytest.param(_fit, id="fit"), pytest.param(_cv, id="cross_validation")]


# -- the frame -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_missing_columns(call: Any, df: pd.DataFrame) -> None:
    with pytest.raises(InputError, match=r"The following columns are missing: \['y'\]"):
        call(df.drop(columns="y"))


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_not_a_frame(call: Any) -> None:
    with pytest.raises(InputError, match="Expected a pandas DataFrame in long format, got dict"):
        call({"unique_id": [1], "ds": [1], "y": [1.0]})


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_duplicate_rows_are_named(call: Any, df: pd.DataFrame) -> None:
    bad = pd.concat([df, df.iloc[[4]]])
    with pytest.raises(
        InputError, match=r"2 rows share a \(unique_id, ds\) pair.*\('s0', 2000-01-05 00:00:00\)"
    ):
        call(bad)


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_non_numeric_target_names_series(call: Any, df: pd.DataFrame) -> None:
    bad = df.astype({"y": object})
    bad.loc[bad.index[35], "y"] = "n/a"
    with pytest.raises(
        InputError, match=r"'y' must be numeric; 1 values are not numbers \(e.g. 'n/a'\) in series 's1'"
    ):
        call(bad)


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_all_missing_and_partly_missing_target(call: Any, df: pd.DataFrame) -> None:
    bad = df.copy()
    bad.loc[bad["unique_id"] == "s2", "y"] = np.nan
    bad.loc[3, "y"] = np.inf
    with pytest.raises(InputError) as info:
        call(bad)
    message = str(info.value)
    assert "'y' is entirely missing in series 's2'" in message
    assert "'y' has missing or infinite values in 1 series (first at): 's0' at 2000-01-04 00:00:00" in message


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_gaps_name_series_and_first_missing_time(call: Any, df: pd.DataFrame) -> None:
    bad = df.drop(index=[5, 6, 40])
    with pytest.raises(
        InputError,
        match=r"gaps in the time index of 2 series \(first missing 'ds'\): "
        r"'s0' at 2000-01-06 00:00:00, 's1' at 2000-01-11 00:00:00; .*fill_gaps\(df, freq='D'",
    ):
        call(bad, freq="D")


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_all_problems_are_reported_together(call: Any, df: pd.DataFrame) -> None:
    bad = pd.concat([df, df.iloc[[0]]]).assign(note="x")
    bad.loc[bad["unique_id"] == "s1", "y"] = np.nan
    with pytest.raises(InputError, match=r"3 problem\(s\) with the input frame") as info:
        call(bad)
    message = str(info.value)
    assert "non-numeric ['note']" in message and "entirely missing in series 's1'" in message
    assert "share a (unique_id, ds) pair" in message


def test_time_values_off_the_given_frequency(df: pd.DataFrame) -> None:
    with pytest.raises(InputError, match=r"'ds' values do not fall on the given frequency '2D' in 3 series"):
        _fit(df, freq="2D")


def test_frequency_that_cannot_be_inferred() -> None:
    irregular = pd.DataFrame(
        {
            "unique_id": "a",
            "ds": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-11"]),
            "y": 1.0,
        }
    )
    with pytest.raises(InputError, match=r"infer the frequency of 'ds'.*--freq D .*Forecaster\(freq='D'\)"):
        _fit(irregular)


@pytest.mark.parametrize(
    ("freq", "frame", "message"),
    [
        ("h", "int", r"freq='h' does not fit an integer time column"),
        (1, "ts", r"freq=1 is an integer step, but the time column holds timestamps"),
        ("fortnightly", "ts", r"freq='fortnightly' is not a pandas frequency"),
    ],
)
def test_frequency_that_does_not_fit_the_time_column(
    freq: Any, frame: str, message: str, df: pd.DataFrame
) -> None:
    data = df if frame == "ts" else df.assign(ds=df.groupby("unique_id").cumcount())
    with pytest.raises(InputError, match=message):
        _fit(data, freq=freq)


def test_non_numeric_extra_columns_and_missing_exogenous(df: pd.DataFrame) -> None:
    bad = df.assign(region="north", promo=1.0)
    bad.loc[bad.index[-1], "promo"] = np.nan
    with pytest.raises(InputError) as info:
        _fit(bad)
    assert "got non-numeric ['region']" in str(info.value)
    assert "exogenous column 'promo' has missing or infinite values in series 's2'" in str(info.value)


# -- models and arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_unknown_model_names_are_listed(call: Any, df: pd.DataFrame) -> None:
    with pytest.raises(
        InputError, match=r"unknown model names \['prophet', 'foo'\]; known names: naive, snaive"
    ):
        Forecaster(models=["prophet", "ets", "foo"]).fit(df) if call is _fit else Forecaster(
            models=["prophet", "ets", "foo"]
        ).cross_validation(df, h=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": []}, r"models must be a non-empty list"),
        ({"models": "ets"}, r"models must be a non-empty list"),
        ({"models": [LastValue(), LastValue()]}, r"several models share the aliases \['Last'\]"),
        ({"models": [LastValue(), 3]}, r"3 in models is neither a ForecastModel nor a model name"),
        ({"models": [LastValue()], "season_length": 0}, r"season_length must be a positive integer, got 0"),
        ({"models": [LastValue()], "n_jobs": 0}, r"n_jobs must be a non-zero integer"),
        ({"models": [LastValue()], "conformal_windows": 0}, r"conformal_windows must be a positive integer"),
        ({"models": ["mean_ensemble"]}, r"MeanEnsemble has no members and there are no other models"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, message: str, df: pd.DataFrame) -> None:
    for call in (lambda f: f.fit(df), lambda f: f.cross_validation(df, h=2)):
        with pytest.raises(InputError, match=message):
            call(Forecaster(**kwargs))


def test_predict_before_fit() -> None:
    with pytest.raises(NotFittedError, match=r"This Forecaster is not fitted yet"):
        Forecaster(models=[LastValue()]).predict(3)


BAD_H = [0, -1, 1.5, True, "3", None]


@pytest.mark.parametrize("h", BAD_H)
def test_bad_horizon_in_predict_and_cross_validation(h: Any, df: pd.DataFrame, fitted: Forecaster) -> None:
    message = re.escape(f"The horizon h must be a positive integer, got {h!r}.")
    with pytest.raises(InputError, match=message):
        fitted.predict(h)
    with pytest.raises(InputError, match=message):
        Forecaster(models=[LastValue()]).cross_validation(df, h=h)


BAD_LEVELS = [[0], [100], [120], [-5], "95", 95, [], [80, "x"], [True]]


@pytest.mark.parametrize("level", BAD_LEVELS)
def test_bad_level_in_predict_and_cross_validation(level: Any, df: pd.DataFrame, fitted: Forecaster) -> None:
    message = r"level must be a list of numbers strictly between 0 and 100"
    with pytest.raises(InputError, match=message):
        fitted.predict(2, level=level)
    with pytest.raises(InputError, match=message):
        Forecaster(models=[LastValue()]).cross_validation(df, h=2, level=level)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_windows": 0}, r"n_windows must be a positive integer, got 0"),
        ({"n_windows": 1.0}, r"n_windows must be a positive integer, got 1.0"),
        ({"step_size": 0}, r"step_size must be a positive integer or None \(= h\), got 0"),
        ({"refit": False}, r"refit=False is not supported"),
    ],
)
def test_bad_window_arguments(kwargs: dict, message: str, df: pd.DataFrame) -> None:
    with pytest.raises(InputError, match=message):
        Forecaster(models=[LastValue()]).cross_validation(df, h=2, **kwargs)


def test_series_too_short_for_cross_validation_are_named() -> None:
    lengths = pd.Series({"a": 30, "b": 10, "c": 11, "d": 5})
    data = pd.DataFrame(
        {
            "unique_id": np.repeat(lengths.index, lengths),
            "ds": np.concatenate([np.arange(n) for n in lengths]),
        }
    ).assign(y=1.0)
    with pytest.raises(InputError) as info:
        Forecaster(models=[LastValue()]).cross_validation(data, h=4, n_windows=3, step_size=3)
    message = str(info.value)
    assert "2 series are too short for cross_validation with h=4, n_windows=3: 'b' (10), 'd' (5)" in message
    assert "at least 11 values = h 4 + (n_windows 3 - 1) x step_size 3 + 1 training value" in message


def test_series_too_short_for_conformal_intervals(df: pd.DataFrame) -> None:
    short = pd.concat([df, pd.DataFrame({"unique_id": "tiny", "ds": df["ds"].iloc[:5], "y": 1.0})])
    fc = Forecaster(models=[LastValue()], conformal_windows=2).fit(short)
    fc.predict(2, level=[80])  # 2 windows of 2 leave 1 training value out of 5
    with pytest.raises(
        InputError,
        match=r"1 series are too short for conformal intervals with h=3: 'tiny' \(5\)"
        r".*at least 7 values = conformal_windows 2 x h 3 \+ 1 training value",
    ):
        fc.predict(3, level=[80])
    with pytest.raises(
        InputError, match=r"'tiny' \(5\).*at least 7 values.*conformal_windows 2 x h 2 for the"
    ):
        Forecaster(models=[LastValue()], conformal_windows=2).cross_validation(short, h=2, level=[80])


def test_exogenous_future_values_are_checked(df: pd.DataFrame) -> None:
    from stackml.forecasting.models.statistical import ARIMA

    data = df.assign(promo=np.arange(len(df), dtype=float) % 3)
    fc = Forecaster(models=[ARIMA(), LastValue()]).fit(data)
    with pytest.raises(
        InputError, match=r"fitted with exogenous columns \['promo'\]; predict needs their future"
    ):
        fc.predict(2)
    future = pd.DataFrame(
        {
            "unique_id": np.repeat(["s0", "s1", "s2"], 2),
            "ds": list(pd.date_range("2000-01-31", periods=2)) * 3,
        }
    )
    with pytest.raises(InputError, match=r"X_df: The following columns are missing: \['promo'\]"):
        fc.predict(2, X_df=future)
    with pytest.raises(InputError, match=r"X_df lacks future values .* for 1 series .*'s2' at 2000-02-01"):
        fc.predict(2, X_df=future.assign(promo=1.0).iloc[:-1])
    assert len(fc.predict(2, X_df=future.assign(promo=1.0))) == 6
