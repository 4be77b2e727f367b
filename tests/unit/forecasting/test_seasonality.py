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
    # the default models have a budget by default: 15 s plus 0.2 ms per value, at most 90 s
    assert config.effective_time_budget(len(train)) == pytest.approx(15.0 + 360 * 2e-4)
    assert config.effective_time_budget(200_000) == 55.0 and config.effective_time_budget(10**7) == 90.0
    tight = config.replace(models=("snaive", "theta", "nhits"), time_budget=0.001)
    plan = plan_candidates(train, tight)
    # the first real model listed always runs; the network does not fit a millisecond
    assert plan.models == ("snaive", "theta", "naive2")
    assert "time budget of 0 s" in plan.skipped["nhits"] and plan.estimates["theta"] > 0
    assert plan.estimates["snaive"] == 0.0
    # Theta on three short series costs far less than starting worker processes: it runs in one, as the
    # baselines always do
    assert plan.serial == ("snaive", "theta", "naive2") and plan.config_for("theta", tight).n_jobs == 1
    # models you list yourself run without a budget unless you give one
    mine = config.replace(models=("snaive", "theta", "nhits"))
    assert mine.effective_time_budget(len(train)) is None
    assert plan_candidates(train, mine).models == mine.candidates


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


def _admit(costs: dict[str, float], budget: float, cost_ordered: bool = True):
    from stackml.forecasting.budget import admit

    measured: list[str] = []

    def measure(name: str, enough: float) -> float:
        measured.append(name)
        return costs[name]

    out = admit(
        tuple(costs),
        measure,
        budget,
        is_free=lambda name: costs[name] == 0.0,
        cost_ordered=cost_ordered,
        fits=3,
        probe_limit=6.0,
    )
    return (*out, measured)


def test_in_the_default_cost_order_measuring_stops_at_the_first_model_that_does_not_fit() -> None:
    costs = {"snaive": 0.0, "lgbm": 8.0, "theta": 5.0, "ets": 20.0, "arima": 1.0, "naive2": 0.0}
    admitted, estimates, skipped, measured = _admit(costs, budget=15.0)
    assert admitted == ["snaive", "lgbm", "theta", "naive2"]
    assert "arima" not in measured and "not measured: ets" in skipped["arima"]
    assert "estimated 20 s for its 3 fits" in skipped["ets"]
    # a list of your own is not assumed to be in cost order: a cheap model after a dear one still joins
    admitted, _, skipped, measured = _admit(costs, budget=15.0, cost_ordered=False)
    assert admitted == ["snaive", "lgbm", "theta", "arima", "naive2"] and "arima" in measured
    # the first real model runs whatever it costs; a probe that ran out of time is said so
    admitted, _, skipped, _ = _admit({"lgbm": 100.0, "nhits": float("inf"), "snaive": 0.0}, 10.0, False)
    assert admitted == ["lgbm", "snaive"] and "not measured" in skipped["nhits"]
    admitted, _, skipped, _ = _admit({"lgbm": 1.0, "nhits": float("inf")}, 10.0)
    assert admitted == ["lgbm"] and "probe alone" in skipped["nhits"]
    # a probe stopped once it passed the time left knows its cost only from below, and says so
    from stackml.forecasting.budget import AtLeast

    _, _, skipped, _ = _admit({"lgbm": 8.0, "theta": AtLeast(2.01)}, 10.0)
    assert "estimated more than 2 s for its 3 fits" in skipped["theta"]


def test_candidate_groups_balance_the_estimated_cost_over_the_cores() -> None:
    from stackml.forecasting.budget import balanced_groups

    models = ("snaive", "lgbm", "theta", "ets", "naive2")
    costs = {"snaive": 0.0, "lgbm": 4.0, "theta": 5.0, "ets": 8.0, "naive2": 0.0}
    groups = balanced_groups(models, costs, n_groups=2)
    assert sorted(n for g in groups for n in g) == sorted(models)  # every model once
    loads = sorted(sum(costs[n] for n in g) for g in groups)
    assert loads == [8.0, 9.0]  # ets alone against lgbm + theta; the free baselines anywhere
    assert all(list(g) == sorted(g, key=models.index) for g in groups)  # listed order kept
    assert balanced_groups(models, costs, n_groups=1) == (models,)
    assert len(balanced_groups(("lgbm",), {}, n_groups=4)) == 1


def test_a_probe_past_the_cpu_time_left_is_stopped_and_no_model_fallback_can_swallow_it() -> None:
    import time

    from stackml.forecasting.budget import OverBudget, _cpu_deadline

    started = time.process_time()
    with pytest.raises(OverBudget), _cpu_deadline(0.05):
        try:
            while True:  # a busy fit
                sum(range(1000))
        except Exception:  # noqa: BLE001 - what the models' own fallbacks do
            pytest.fail("OverBudget must not be an Exception")
    assert time.process_time() - started < 1.0
    with _cpu_deadline(float("inf")):  # no deadline: nothing happens
        sum(range(1000))


def test_cheap_per_series_models_run_in_one_process() -> None:
    from stackml.forecasting.budget import Plan

    config = ForecastConfig(horizon=7, season_length=7, n_jobs=-1)
    plan = Plan(models=("theta", "lgbm"), serial=("theta",))
    assert plan.config_for("theta", config).n_jobs == 1
    assert plan.config_for("lgbm", config).n_jobs == -1
