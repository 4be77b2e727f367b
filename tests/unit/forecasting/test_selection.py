"""One place for interval columns, mean ensembles, conformal widths and the choice
(front door, pipeline, pyfunc)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackml.forecasting import Forecaster, generate_series
from stackml.forecasting.selection import (
    backtest_residuals,
    choose,
    conformal_widths,
    interval_column,
    join_forecasts,
    mean_ensemble,
    with_intervals,
)

H = 5


@pytest.fixture(scope="module")
def ragged() -> pd.DataFrame:
    """Series of different lengths, so their backtest windows end on different dates."""
    return generate_series(
        n_series=5, freq="D", min_length=40, max_length=60, season_length=7, random_state=2
    )


def test_interval_column_writes_the_level_with_g() -> None:
    assert [interval_column("Theta", "lo", v) for v in (80, 95.0, 97.5)] == [
        "Theta-lo-80",
        "Theta-lo-95",
        "Theta-lo-97.5",
    ]
    assert interval_column("yhat", "hi", 80.0) == "yhat-hi-80"
    with pytest.raises(ValueError, match="side must be 'lo' or 'hi'"):
        interval_column("yhat", "low", 80)


def test_mean_ensemble_of_arrays_and_columns() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 6.0], "c": [2.0, 1.0]})
    np.testing.assert_array_equal(mean_ensemble([frame["a"], frame["b"]]), [2.0, 4.0])
    np.testing.assert_allclose(mean_ensemble([frame[c] for c in "abc"]), frame.mean(axis=1))
    stacked = np.arange(12.0).reshape(3, 2, 2)  # (members, series, h)
    np.testing.assert_array_equal(mean_ensemble(stacked), stacked.mean(axis=0))
    np.testing.assert_array_equal(mean_ensemble([frame["a"]]), frame["a"])  # one member is itself


def test_join_forecasts_on_series_and_step() -> None:
    a = pd.DataFrame({"unique_id": ["x", "x", "y"], "ds": [1, 2, 1], "A": [1.0, 2.0, 3.0]})
    b = pd.DataFrame({"unique_id": ["y", "x", "x"], "ds": [1, 2, 1], "B": [30.0, 20.0, 10.0]})
    joined = join_forecasts([a, b])
    assert joined.columns.tolist() == ["unique_id", "ds", "A", "B"]
    assert joined["B"].tolist() == [10.0, 20.0, 30.0]
    assert join_forecasts([a]) is a


def test_with_intervals_puts_lo_widest_first_then_hi_outwards() -> None:
    points = pd.DataFrame(
        {"unique_id": ["x", "x", "y", "y"], "ds": [1, 2, 1, 2], "A": [10.0, 11.0, 20.0, 21.0], "B": 0.0}
    )
    widths = {"A": {95.0: np.array([[2.0, 3.0], [4.0, 5.0]]), 80.0: np.ones((2, 2))}}
    out = with_intervals(points, widths)
    assert out.columns.tolist() == ["unique_id", "ds", "A", "A-lo-95", "A-lo-80", "A-hi-80", "A-hi-95", "B"]
    np.testing.assert_array_equal(out["A-lo-95"], [8.0, 8.0, 16.0, 16.0])
    np.testing.assert_array_equal(out["A-hi-80"], [11.0, 12.0, 21.0, 22.0])
    assert with_intervals(points, {}).equals(points)


def test_backtest_frame_and_front_door_give_the_same_widths(ragged: pd.DataFrame) -> None:
    """The pipeline's path (a backtest frame) and the front door's (its own backtest arrays) agree, even when
    the series' windows end on different dates."""
    levels = [80.0, 95.0]
    fc = Forecaster(models=["snaive", "theta"], freq="D", season_length=7, conformal_windows=3)
    cv = fc.cross_validation(ragged, h=H, n_windows=3)
    assert cv.groupby("unique_id")["cutoff"].max().nunique() > 1  # ragged ends
    ids = ragged["unique_id"].drop_duplicates().to_numpy()
    residuals, scales = backtest_residuals(cv, ragged, ids, horizon=H, season_length=7, aliases=fc.aliases)
    widths = conformal_widths(residuals, scales, levels)
    out = fc.fit(ragged).predict(H, level=levels)
    for alias in fc.aliases:
        for level in levels:
            assert widths[alias][level].shape == (len(ids), H)
            np.testing.assert_allclose(
                out[alias] - out[interval_column(alias, "lo", level)], widths[alias][level].ravel()
            )
            np.testing.assert_allclose(
                out[interval_column(alias, "hi", level)] - out[alias], widths[alias][level].ravel()
            )


def test_choice_is_the_lowest_owa_and_ties_go_to_the_simpler_model() -> None:
    scores = pd.DataFrame({"model": ["Theta", "Ensemble2", "SeasonalNaive"], "owa": [0.9, 0.8, 1.1]})
    ensembles = {"Ensemble2": ("Theta", "SeasonalNaive")}
    names = {"Theta": "theta", "SeasonalNaive": "snaive"}
    choice = choose(scores, ensembles, names)
    assert (choice.alias, choice.members) == ("Ensemble2", ("theta", "snaive")) and choice.is_ensemble
    tied = scores.assign(owa=[0.8, 0.8, 1.1])
    assert (choose(tied, ensembles, names).alias, choose(tied, ensembles, names).members) == ("Theta", ())
    no_owa = pd.DataFrame({"model": ["Theta", "SeasonalNaive"], "mase": [2.0, 1.0]})
    assert choose(no_owa, {}, names).alias == "SeasonalNaive"


def test_an_ensemble_whose_members_disagree_is_set_aside() -> None:
    scores = pd.DataFrame({"model": ["Theta", "Ensemble2", "RWD"], "owa": [0.9, 0.85, 1.5]})
    choice = choose(scores, {"Ensemble2": ("Theta", "RWD")}, {"Theta": "theta", "RWD": "rwd"})
    assert choice.alias == "Theta"
    assert "members that disagree: Ensemble2" in choice.why


def _by_series(rng: np.random.Generator, errors: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.concat(
        pd.DataFrame({"model": m, "unique_id": np.arange(len(e)), "smape": 10 * e, "mase": e})
        for m, e in errors.items()
    )


def test_an_ensemble_that_wins_by_less_than_noise_gives_way_to_a_single_model() -> None:
    rng = np.random.default_rng(0)
    naive = rng.uniform(1, 3, 200)
    theta = naive * 0.8 + rng.normal(0, 0.3, 200)
    lgbm = naive * 0.85
    names = {"Theta": "theta", "LightGBM": "lgbm", "Naive2": "naive2"}

    def scores_of(errors: dict[str, np.ndarray]) -> pd.DataFrame:
        ref = errors["Naive2"].mean()
        return pd.DataFrame(
            {
                "model": list(errors),
                "smape": [10 * e.mean() for e in errors.values()],
                "mase": [e.mean() for e in errors.values()],
                "owa": [e.mean() / ref for e in errors.values()],
            }
        )

    shuffle = rng.normal(0, 0.3, 200)
    shuffle -= shuffle.mean()  # the ensemble differs from Theta by noise, and is better on average
    close = {"Naive2": naive, "Theta": theta, "LightGBM": lgbm, "Ensemble2": theta + shuffle - 0.005}
    choice = choose(scores_of(close), {"Ensemble2": ("Theta", "LightGBM")}, names, _by_series(rng, close))
    assert not choice.is_ensemble and "within one standard error" in choice.why
    # the same ensemble, better by far more than the noise, is chosen
    clear = close | {"Ensemble2": theta + shuffle - 0.3}
    choice = choose(scores_of(clear), {"Ensemble2": ("Theta", "LightGBM")}, names, _by_series(rng, clear))
    assert choice.alias == "Ensemble2"


def test_backtest_coverage_scores_intervals_on_errors_they_were_not_calibrated_on() -> None:
    from stackml.forecasting.selection import backtest_coverage

    rng = np.random.default_rng(1)
    scales = rng.uniform(0.5, 5, 300)
    for n_windows in (1, 4):
        residuals = {"m": rng.normal(0, 1, (n_windows, 300, 6)) * scales[None, :, None]}
        coverage = backtest_coverage(residuals, scales, [80.0, 95.0])["m"]
        assert 0.75 <= coverage[80.0] <= 0.86 and 0.92 <= coverage[95.0] <= 0.985


def test_pyfunc_serves_the_mean_of_its_members_with_yhat_interval_columns(ragged: pd.DataFrame) -> None:
    pytest.importorskip("mlflow")
    from stackml.forecasting.registry_model import ForecastPyfunc

    forecasters = {
        a: Forecaster(models=[m], freq="D", season_length=7).fit(ragged)
        for a, m in (("SeasonalNaive", "snaive"), ("Theta", "theta"))
    }
    n = ragged["unique_id"].nunique()
    widths = {80.0: np.full((n, H), 1.0), 97.5: np.full((n, H), 3.0)}
    model = ForecastPyfunc(forecasters, ["SeasonalNaive", "Theta"], widths, horizon=H)
    out = model.predict(None, pd.DataFrame({"unique_id": ["s1"], "h": [2]}))
    assert out.columns.tolist() == [
        "unique_id",
        "ds",
        "yhat",
        "yhat-lo-97.5",
        "yhat-lo-80",
        "yhat-hi-80",
        "yhat-hi-97.5",
    ]
    both = [f.predict(2).query("unique_id == 's1'")[a].to_numpy() for a, f in forecasters.items()]
    np.testing.assert_allclose(out["yhat"], np.mean(both, axis=0))
    np.testing.assert_allclose(out["yhat-hi-97.5"] - out["yhat"], 3.0)
    np.testing.assert_allclose(out["yhat"] - out["yhat-lo-80"], 1.0)
