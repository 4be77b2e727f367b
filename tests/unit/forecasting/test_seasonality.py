"""Seasonal periods from the frequency or the data, the time budget, and the pipeline on every frequency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackml.forecasting.config import ForecastConfig
from stackml.forecasting.seasonality import Seasonality, detect_periods, for_frequency, resolve_seasonality


def offset(freq: str) -> pd.DateOffset:
    return pd.tseries.frequencies.to_offset(freq)


@pytest.mark.parametrize(
    ("freq", "scoring", "periods"),
    [
        ("h", 24, (24, 168)),
        ("30min", 48, (48, 336)),
        ("D", 1, (7, 365)),
        ("B", 1, (5, 261)),
        ("W", 1, (52,)),
        ("MS", 12, (12,)),
        ("QS", 4, (4,)),
        ("YS", 1, ()),
    ],
)
def test_each_frequency_has_its_scoring_season_and_model_periods(
    freq: str, scoring: int, periods: tuple
) -> None:
    assert for_frequency(offset(freq)) == Seasonality(scoring, periods)


def _cycles(n_series: int, length: int, periods: dict[int, float], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    out = []
    for _ in range(n_series):
        y = 50 + 0.02 * t + rng.normal(0, 0.3, length)
        for period, amplitude in periods.items():
            y = y + amplitude * np.sin(2 * np.pi * (t + rng.integers(period)) / period)
        out.append(y)
    return out


def test_periods_are_found_in_integer_data_when_there_is_no_calendar() -> None:
    assert detect_periods(_cycles(20, 120, {12: 2.0})) == (12,)
    # a weekly cycle on top of a daily one shows as a peak among the multiples of 24
    assert detect_periods(_cycles(10, 24 * 30, {24: 2.0, 168: 1.0})) == (24, 168)
    # smooth trending noise has no cycle, although every short lag correlates
    rng = np.random.default_rng(1)
    assert detect_periods([np.cumsum(rng.normal(0, 1, 200)) for _ in range(20)]) == ()


def test_only_periods_the_series_hold_twice_are_kept_and_a_users_season_wins() -> None:
    short_daily = _cycles(5, 400, {7: 1.0})
    assert resolve_seasonality(short_daily, offset("D")) == Seasonality(1, (7,))  # 400 days: no yearly cycle
    long_daily = _cycles(5, 800, {7: 1.0})
    assert resolve_seasonality(long_daily, offset("D")) == Seasonality(1, (7, 365))
    assert resolve_seasonality(long_daily, offset("D"), season_length=7) == Seasonality(7, (7, 365))
    assert resolve_seasonality(long_daily, offset("D"), season_length=1) == Seasonality(1, ())
    assert resolve_seasonality(_cycles(5, 120, {12: 2.0}), None) == Seasonality(12, (12,))


def test_the_time_budget_admits_the_cheap_models_and_says_why_the_others_were_left_out() -> None:
    from stackml.forecasting import generate_series
    from stackml.forecasting.budget import plan_candidates

    train = generate_series(
        n_series=3, freq="D", min_length=120, max_length=120, season_length=7, random_state=0
    )
    config = ForecastConfig(horizon=7, season_length=7, seasonal_periods=(7,), n_windows=1)
    assert config.effective_time_budget == 90.0  # the default models have a budget by default
    tight = config.replace(models=("snaive", "theta", "nhits"), time_budget=0.001)
    plan = plan_candidates(train, tight)
    # the first real model listed always runs; the network does not fit a millisecond
    assert plan.models == ("snaive", "theta", "naive2")
    assert "time budget of 0 s" in plan.skipped["nhits"] and plan.estimates["theta"] > 0
    assert plan.estimates["snaive"] == 0.0
    # models you list yourself run without a budget unless you give one
    mine = config.replace(models=("snaive", "theta", "nhits"))
    assert mine.effective_time_budget is None and plan_candidates(train, mine).models == mine.candidates


FREQUENCIES = {
    "h": (48, 24 * 20),
    "D": (14, 400),
    "W-SUN": (8, 160),
    "MS": (12, 96),
    "QS": (8, 48),
    "YS": (4, 30),
}


@pytest.mark.parametrize("freq", list(FREQUENCIES))
def test_the_default_pipeline_runs_on_every_frequency_with_finite_scores_and_coverage(freq: str) -> None:
    from stackml.forecasting import generate_series
    from stackml.forecasting.pipeline import run_pipeline
    from stackml.warehouse import connect

    h, length = FREQUENCIES[freq]
    season = {"h": 24, "D": 7, "W-SUN": 52, "MS": 12, "QS": 4, "YS": 1}[freq]
    df = generate_series(
        n_series=4, freq=freq, min_length=length, max_length=length, season_length=season, random_state=2
    )
    train = df.groupby("unique_id").head(-h).reset_index(drop=True)
    test = df.groupby("unique_id").tail(h).reset_index(drop=True)
    config = ForecastConfig(horizon=h, models=("snaive", "theta", "lgbm"))
    with connect("duckdb:///:memory:") as wh:
        result = run_pipeline(train, config, warehouse=wh, run_id=f"freq-{freq}", test=test)
    expected = for_frequency(offset(freq))
    assert result.config.season_length == expected.scoring
    assert set(result.config.seasonal_periods) <= set(expected.periods)
    chosen = result.holdout.set_index("model").loc[result.choice.alias]
    assert np.isfinite(chosen[["smape", "mase", "owa"]].astype(float)).all()
    assert 0.0 <= chosen["coverage_80"] <= 1.0
    assert set(result.backtest_coverage[result.choice.alias]) == {80.0, 95.0}
    assert result.holdout_gap is not None and np.isfinite(result.holdout_gap)


def test_once_the_budget_is_spent_later_models_are_not_even_probed() -> None:
    from stackml.forecasting import generate_series
    from stackml.forecasting.budget import plan_candidates

    train = generate_series(
        n_series=3, freq="D", min_length=120, max_length=120, season_length=7, random_state=0
    )
    config = ForecastConfig(
        horizon=7, season_length=7, seasonal_periods=(7,), n_windows=1, time_budget=0.001
    ).replace(models=("theta", "ets", "snaive"))
    plan = plan_candidates(train, config)
    assert plan.models == ("theta", "snaive", "naive2")  # the first real model, and the free baselines
    assert "ets" not in plan.estimates and "not measured" in plan.skipped["ets"]


def test_bad_budget_season_and_jobs_are_named_together() -> None:
    from stackml.errors import InputError

    with pytest.raises(InputError) as caught:
        ForecastConfig(horizon=7, season_length=0, time_budget=0, n_jobs=0, seasonal_periods=(1,))
    message = str(caught.value)
    for field in ("season_length", "time_budget", "n_jobs", "seasonal_periods"):
        assert field in message
    assert message.startswith("4 problem(s)")
