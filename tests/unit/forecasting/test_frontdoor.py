"""The Forecaster front door on tiny synthetic panels: dates, output columns, backtests, exogenous columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from stackml.forecasting import Forecaster, generate_series
from stackml.forecasting.models.base import LocalModel
from stackml.forecasting.models.ensemble import BestOnBacktest, MeanEnsemble
from stackml.forecasting.models.statistical import ARIMA, Theta


class LastValue(LocalModel):
    """Naive forecast, written here so these tests do not depend on other model modules."""

    default_alias = "Last"

    def fit_one(self, y: np.ndarray, season_length: int) -> Any:
        return float(y[-1])

    def predict_one(self, state: Any, h: int) -> np.ndarray:
        return np.full(h, state)


class Mean(LocalModel):
    default_alias = "Mean"

    def fit_one(self, y: np.ndarray, season_length: int) -> Any:
        return float(np.mean(y))

    def predict_one(self, state: Any, h: int) -> np.ndarray:
        return np.full(h, state)


# -- the synthetic generator ---------------------------------------------------------------------------------
def test_generate_series_is_seeded_and_shaped() -> None:
    a = generate_series(n_series=4, freq="h", min_length=30, max_length=40, season_length=24, random_state=3)
    b = generate_series(n_series=4, freq="h", min_length=30, max_length=40, season_length=24, random_state=3)
    c = generate_series(n_series=4, freq="h", min_length=30, max_length=40, season_length=24, random_state=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["y"].equals(c["y"])
    sizes = a.groupby("unique_id").size()
    assert list(sizes.index) == ["s0", "s1", "s2", "s3"] and sizes.between(30, 40).all()
    assert (a["y"] > 0).all()
    assert (a.groupby("unique_id")["ds"].diff().dropna() == pd.Timedelta(hours=1)).all()


def test_generate_series_integer_ds_trend_and_exogenous() -> None:
    df = generate_series(n_series=2, freq=None, min_length=50, max_length=50, with_trend=True, n_exog=2)
    assert list(df.columns) == ["unique_id", "ds", "y", "x0", "x1"]
    assert df["ds"].dtype == np.int64 and df.groupby("unique_id")["ds"].first().eq(0).all()
    first, last = (
        df.groupby("unique_id")["y"].apply(lambda s: s.iloc[:10].mean()),
        df.groupby("unique_id")["y"].apply(lambda s: s.iloc[-10:].mean()),
    )
    assert (last > first).all()  # the trend lifts every series


def test_generate_series_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"n_series must be a positive integer, got 0.*max_length must be"):
        generate_series(n_series=0, min_length=10, max_length=5)


# -- forecasts: integer and timestamp time columns -----------------------------------------------------------
@pytest.fixture(scope="module")
def int_panel() -> pd.DataFrame:
    return generate_series(
        n_series=3, freq=None, min_length=40, max_length=60, season_length=7, random_state=1
    )


def test_integer_ds_future_is_last_plus_k(int_panel: pd.DataFrame) -> None:
    fc = Forecaster(models=[LastValue(), Mean()]).fit(int_panel)
    out = fc.predict(h=5)
    assert list(out.columns) == ["unique_id", "ds", "Last", "Mean"]
    for uid, g in int_panel.groupby("unique_id"):
        rows = out[out["unique_id"] == uid]
        assert rows["ds"].tolist() == list(range(g["ds"].max() + 1, g["ds"].max() + 6))
        assert np.allclose(rows["Last"], g["y"].iloc[-1])
        assert np.allclose(rows["Mean"], g["y"].mean())


def test_integer_step_is_inferred() -> None:
    df = pd.DataFrame({"unique_id": "a", "ds": [10, 20, 30, 40], "y": [1.0, 2.0, 3.0, 4.0]})
    out = Forecaster(models=[LastValue()]).fit(df).predict(2)
    assert out["ds"].tolist() == [50, 60]


def test_timestamps_with_inferred_and_calendar_frequencies() -> None:
    df = generate_series(n_series=2, freq="h", min_length=30, max_length=30, random_state=0)
    fc = Forecaster(models=[LastValue()]).fit(df)
    assert fc.spec_.freq == pd.offsets.Hour()
    out = fc.predict(3)
    assert out["ds"].iloc[:3].tolist() == list(pd.date_range(df["ds"].max(), periods=4, freq="h")[1:])
    monthly = generate_series(n_series=1, freq="MS", min_length=24, max_length=24)
    out = Forecaster(models=[LastValue()], freq="MS").fit(monthly).predict(2)
    assert out["ds"].tolist() == [pd.Timestamp("2002-01-01"), pd.Timestamp("2002-02-01")]


def test_string_dates_and_custom_column_names() -> None:
    df = pd.DataFrame(
        {
            "store": ["a"] * 4,
            "day": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
            "sales": [1.0, 2, 3, 4],
        }
    )
    out = Forecaster(models=[LastValue()], freq="D").fit(
        df, id_col="store", time_col="day", target_col="sales"
    )
    pred = out.predict(2)
    assert list(pred.columns) == ["store", "day", "Last"]
    assert pred["day"].tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-06")]


def test_predict_does_not_depend_on_row_order(int_panel: pd.DataFrame) -> None:
    shuffled = int_panel.sample(frac=1.0, random_state=0)
    a = Forecaster(models=[LastValue()]).fit(int_panel).predict(3)
    b = Forecaster(models=[LastValue()]).fit(shuffled).predict(3)
    pd.testing.assert_frame_equal(a, b)


# -- statistical models through the front door, shared across tests ------------------------------------------
@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return generate_series(
        n_series=3, freq="h", min_length=96, max_length=120, season_length=24, random_state=7
    )


@pytest.fixture(scope="module")
def fitted(hourly: pd.DataFrame) -> Forecaster:
    return Forecaster(models=["ets", "theta", LastValue(), "mean_ensemble"], season_length=24).fit(hourly)


def test_intervals_are_ordered_and_named(fitted: Forecaster) -> None:
    out = fitted.predict(h=12, level=[95, 80])
    assert list(out.columns[:7]) == [
        "unique_id",
        "ds",
        "ETS",
        "ETS-lo-95",
        "ETS-lo-80",
        "ETS-hi-80",
        "ETS-hi-95",
    ]
    for alias in fitted.aliases:
        lo95, lo80, mid, hi80, hi95 = (
            out[f"{alias}{s}"] for s in ("-lo-95", "-lo-80", "", "-hi-80", "-hi-95")
        )
        assert (lo95 <= lo80).all() and (lo80 <= mid).all() and (mid <= hi80).all() and (hi80 <= hi95).all()
    assert np.isfinite(out.drop(columns=["unique_id", "ds"]).to_numpy()).all()


def test_point_forecasts_do_not_change_with_level(fitted: Forecaster) -> None:
    plain = fitted.predict(h=6)
    with_level = fitted.predict(h=6, level=[90])
    pd.testing.assert_frame_equal(plain, with_level[plain.columns])


def test_memberless_ensemble_combines_the_other_models_and_reuses_their_fits(fitted: Forecaster) -> None:
    ens = fitted.models_["MeanEnsemble"]
    assert [m.name for m in ens.members_] == ["ETS", "Theta", "Last"]
    assert ens.members_[0] is fitted.models_["ETS"]  # fitted once, shared
    out = fitted.predict(4)
    assert np.allclose(out["MeanEnsemble"], out[["ETS", "Theta", "Last"]].mean(axis=1))


def test_cross_validation_windows_cutoffs_and_actuals(hourly: pd.DataFrame) -> None:
    fc = Forecaster(models=[LastValue(), Mean()], season_length=24)
    cv = fc.cross_validation(hourly, h=6, n_windows=3, step_size=4)
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "Last", "Mean"]
    assert len(cv) == 3 * 3 * 6
    for uid, g in hourly.groupby("unique_id"):
        rows = cv[cv["unique_id"] == uid]
        cutoffs = sorted(rows["cutoff"].unique())
        end = g["ds"].max()
        assert cutoffs == [end - pd.Timedelta(hours=k) for k in (14, 10, 6)]
        merged = rows.merge(g, on=["unique_id", "ds"], suffixes=("", "_true"))
        assert np.allclose(merged["y"], merged["y_true"])
        for cutoff, w in rows.groupby("cutoff"):
            history = g[g["ds"] <= cutoff]["y"]
            assert np.allclose(w["Last"], history.iloc[-1]) and np.allclose(w["Mean"], history.mean())
            assert (w["ds"] > cutoff).all()


def test_cross_validation_matches_fitting_on_the_truncated_frame(hourly: pd.DataFrame) -> None:
    """Oracle: the last window equals a plain fit on the data before the cutoff."""
    fc = Forecaster(models=["theta"], season_length=24)
    cv = fc.cross_validation(hourly, h=8)
    truncated = hourly[hourly.groupby("unique_id").cumcount(ascending=False) >= 8]
    direct = Forecaster(models=["theta"], season_length=24).fit(truncated).predict(8)
    assert np.allclose(cv["Theta"].to_numpy(), direct["Theta"].to_numpy())
    assert not hasattr(fc, "models_")  # cross_validation does not fit the forecaster


def test_cross_validation_with_levels_calibrates_inside_each_window(hourly: pd.DataFrame) -> None:
    cv = Forecaster(models=[Mean()], conformal_windows=2).cross_validation(
        hourly, h=6, n_windows=2, level=[80]
    )
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "Mean", "Mean-lo-80", "Mean-hi-80"]
    assert (cv["Mean-lo-80"] < cv["Mean"]).all() and (cv["Mean-hi-80"] > cv["Mean"]).all()


def test_parallel_fit_gives_the_same_forecasts(hourly: pd.DataFrame) -> None:
    # cheap models from the package: worker processes can import them
    # (not so classes defined in a test module)
    from stackml.forecasting.models.baselines import Naive, SeasonalNaive

    models = [Naive(), SeasonalNaive(), MeanEnsemble(models=[Naive(), SeasonalNaive()])]
    one = Forecaster(models=models, season_length=24).fit(hourly)
    two = Forecaster(models=models, season_length=24, n_jobs=2).fit(hourly)
    assert isinstance(two.models_["Naive"], list) and len(two.models_["Naive"]) == 3  # one copy per chunk
    pd.testing.assert_frame_equal(one.predict(5, level=[80]), two.predict(5, level=[80]))


def test_best_on_backtest_gets_the_front_door_backtest_errors(hourly: pd.DataFrame) -> None:
    fc = Forecaster(
        models=[
            Theta(),
            LastValue(),
            BestOnBacktest(models=[Theta(), LastValue()], combination="inverse_error"),
        ],
        season_length=24,
    ).fit(hourly)
    out = fc.predict(6, level=[80])
    best = fc.models_["BestOnBacktest"]
    weights = best.weights_[:, 0]
    assert np.isclose(weights.sum(), 1.0) and (weights > 0).all()
    # the errors come from the forecaster's 2-window backtest, not the model's own 1-window one
    own = BestOnBacktest(models=[Theta(), LastValue()]).fit(fc._panel)._backtest(6)
    assert not np.allclose(best.backtest_errors_[6], own)
    assert np.allclose(out["BestOnBacktest"], weights[0] * out["Theta"] + weights[1] * out["Last"])


# -- exogenous columns ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exog_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    full = generate_series(
        n_series=2, freq="D", min_length=80, max_length=80, n_exog=1, noise=0.02, random_state=2
    )
    last = full.groupby("unique_id")["ds"].transform("max")
    train = full[full["ds"] <= last - pd.Timedelta(days=5)].reset_index(drop=True)
    future = full[full["ds"] > last - pd.Timedelta(days=5)].reset_index(drop=True)
    return train, future.drop(columns="y"), future


def test_exogenous_columns_are_used_with_future_values(exog_frames: tuple) -> None:
    train, X_df, future = exog_frames
    fc = Forecaster(models=[ARIMA(), LastValue()], freq="D").fit(train)
    assert fc.spec_.exog_cols == ("x0",)
    out = fc.predict(5, X_df=X_df.sample(frac=1.0, random_state=0))  # row order of X_df does not matter
    err_arima = np.mean(np.abs(out["ARIMA"].to_numpy() - future["y"].to_numpy()))
    err_naive = np.mean(np.abs(out["Last"].to_numpy() - future["y"].to_numpy()))
    assert err_arima < 0.5 * err_naive  # y moves with x0, which only ARIMA sees


def test_exogenous_in_cross_validation_comes_from_the_frame(exog_frames: tuple) -> None:
    train, _, _ = exog_frames
    cv = Forecaster(models=[ARIMA()], freq="D").cross_validation(train, h=4, n_windows=2)
    assert len(cv) == 2 * 2 * 4 and np.isfinite(cv["ARIMA"]).all()


def test_models_without_exogenous_support_need_no_future_values(exog_frames: tuple) -> None:
    train, _, _ = exog_frames
    out = Forecaster(models=[LastValue()], freq="D").fit(train).predict(3)
    assert len(out) == 6


def test_best_on_backtest_forecasts_do_not_depend_on_level(hourly: pd.DataFrame) -> None:
    models = [Mean(), LastValue(), BestOnBacktest(models=[Mean(), LastValue()])]
    first = Forecaster(models=models, season_length=24).fit(hourly)
    plain = first.predict(6)
    second = Forecaster(models=models, season_length=24).fit(hourly)
    with_level = second.predict(6, level=[80])
    pd.testing.assert_frame_equal(plain, with_level[plain.columns])
    assert np.array_equal(
        first.models_["BestOnBacktest"].backtest_errors_[6],
        second.models_["BestOnBacktest"].backtest_errors_[6],
    )
