"""The journey simulator: reproducible touchpoints that paths_from_touchpoints accepts, an exact truth
(checked against brute-force enumeration), a retargeting channel that fools last touch, a weekly table that
adds up to the journeys, and bad input named."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from stackml.attribution import Attribution
from stackml.attribution.simulation import CAP, DIRECT, SimulatedJourneys, _expected, simulate_journeys
from stackml.errors import InputError


@pytest.fixture(scope="module")
def sim() -> SimulatedJourneys:
    return simulate_journeys(20_000, seed=0)


def test_the_same_seed_gives_the_same_journeys() -> None:
    first, again = simulate_journeys(2_000, seed=5), simulate_journeys(2_000, seed=5)
    pd.testing.assert_frame_equal(first.touchpoints, again.touchpoints)
    pd.testing.assert_frame_equal(first.truth, again.truth)
    pd.testing.assert_frame_equal(first.weekly, again.weekly)
    other = simulate_journeys(2_000, seed=6)
    assert not first.touchpoints.equals(other.touchpoints.iloc[: len(first.touchpoints)])


def test_touchpoints_are_sorted_distinct_and_shaped_like_a_warehouse_table(sim: SimulatedJourneys) -> None:
    tp = sim.touchpoints
    assert list(tp.columns) == ["user_id", "ts", "channel", "conversion", "value"]
    assert set(tp["channel"]) == {*sim.channels, DIRECT}
    assert tp["user_id"].between(0, 19_999).all()
    # sorted, and no user ever has two rows at one time (paths_from_touchpoints refuses duplicates)
    assert (tp.sort_values(["user_id", "ts"], kind="stable").index == tp.index).all()
    assert not tp.duplicated(["user_id", "ts"]).any()
    converted = tp["conversion"] == 1
    assert (tp.loc[converted, "value"] > 0).all() and (tp.loc[~converted, "value"] == 0).all()
    assert (tp.loc[tp["channel"] == DIRECT, "conversion"] == 1).all()  # direct rows only carry conversions
    # some users see nothing; those who do see a few touches
    paid = tp[tp["channel"] != DIRECT]
    assert paid["user_id"].nunique() < 0.9 * 20_000
    assert 2.0 <= paid.groupby("user_id").size().mean() <= 6.0
    assert sim.weekly.shape == (104, 1 + len(sim.channels) + 2)
    assert list(sim.truth.columns) == [
        "channel",
        "effect",
        "touches",
        "incremental_conversions",
        "share",
        "spend",
        "roas",
    ]
    spend = sim.weekly[list(sim.channels)].sum()
    assert sim.truth.set_index("channel")["spend"][list(sim.channels)].to_dict() == pytest.approx(
        spend.to_dict()
    )


def test_paths_cut_in_sql_keep_every_conversion(sim: SimulatedJourneys) -> None:
    paths = sim.paths()
    assert paths.conversions == sim.touchpoints["conversion"].sum()
    assert paths.value == pytest.approx(sim.touchpoints["value"].sum())
    assert set(paths.channels) == {*sim.channels, DIRECT}


def test_the_truth_sums_to_one_and_gives_the_retargeting_channel_nothing(sim: SimulatedJourneys) -> None:
    truth = sim.truth.set_index("channel")
    assert truth["share"].sum() == pytest.approx(1.0)
    assert truth.loc[DIRECT, "share"] == 0.0
    noise = sim.retargeting
    assert noise == "social" and truth.loc[noise, "effect"] == 0.0
    assert truth.loc[noise, "share"] == 0.0 and truth.loc[noise, "incremental_conversions"] == 0.0
    assert truth.loc[noise, "touches"] > 0.3 * truth.loc[list(sim.channels), "touches"].max()  # many touches
    paid = truth.loc[list(sim.channels)]
    assert paid["share"].idxmax() == paid["effect"].idxmax()
    assert (paid["incremental_conversions"] >= 0).all()
    # the realised conversions scatter around the exact expectation; media add to the baseline
    realised = sim.touchpoints["conversion"].sum()
    assert abs(realised - sim.expected_conversions) < 4 * np.sqrt(sim.expected_conversions)
    assert sim.baseline_conversions < sim.expected_conversions


def test_given_effects_replace_the_defaults() -> None:
    sim = simulate_journeys(3_000, seed=2, effects={"tv": 0.0, "social": 0.01})
    truth = sim.truth.set_index("channel")
    assert truth.loc["tv", "share"] == 0.0 and truth.loc["social", "share"] > 0.0
    assert truth.loc["search", "effect"] == sim.settings["effects"]["search"] > 0


def _enumerated(
    base: np.ndarray, exposed: np.ndarray, active: np.ndarray, effect: np.ndarray, decay: float
) -> float:
    """Expected conversions of one user by summing over every conversion pattern (2^days of them)."""
    days = len(base)
    total = 0.0
    for pattern in itertools.product([0, 1], repeat=days):
        chance, stock = 1.0, np.zeros(len(effect))
        for t, converts in enumerate(pattern):
            stock = stock * decay + exposed[t]
            p = min(base[t] + stock @ effect, CAP) if active[t] else 0.0
            chance *= p if converts else 1.0 - p
            if converts:
                stock = np.zeros(len(effect))
        total += chance * sum(pattern)
    return total


def test_the_expectation_is_exact() -> None:
    rng = np.random.default_rng(3)
    days, channels, decay = 6, 3, 0.7
    base = rng.uniform(0.0, 0.2, (5, days))
    exposed = rng.random((5, days, channels)) < 0.4
    effect = np.array([0.5, 0.0, 0.15])  # large enough that resets and the cap both matter
    active = np.ones((5, days), dtype=bool)
    active[0, :2] = False  # a user whose window starts before the world: nothing happens there
    active[1, -2:] = False  # one whose window outlasts it: the adstock is still there, conversions are not
    base *= active
    exposed &= active[:, :, None]
    stock = np.zeros((5, days, channels))
    for t in range(days):
        stock[:, t] = exposed[:, t] + (decay * stock[:, t - 1] if t else 0.0)
    got = _expected(base, stock @ effect, active, decay)
    want = [_enumerated(base[u], exposed[u], active[u], effect, decay) for u in range(5)]
    assert got == pytest.approx(want, rel=1e-12)


def test_last_touch_credits_the_retargeting_channel_and_markov_errs_less(sim: SimulatedJourneys) -> None:
    shares = Attribution(["last_touch", "markov", "linear"]).fit(sim.paths()).shares()
    errors = sim.credit_error(shares)
    noise = sim.retargeting
    last_touch = shares["last_touch"]
    paid_total = sum(last_touch.get(c, 0.0) for c in sim.channels)
    assert last_touch[noise] / paid_total > 0.4  # its truth is 0: retargeting comes last on conversion days
    assert errors.loc["markov", noise] > 0  # every observational method credits it somewhat
    # measured at seed 0, 20k users: last touch ~1.19, markov ~0.83, linear ~0.77
    assert errors.loc["markov", "total_abs_error"] < errors.loc["last_touch", "total_abs_error"] - 0.15
    assert errors.loc["last_touch", noise] > errors.loc["markov", noise]


def test_the_weekly_table_adds_up_to_the_journeys(sim: SimulatedJourneys) -> None:
    tp, weekly = sim.touchpoints, sim.weekly
    start = weekly["date"].iloc[0]
    converted = tp[tp["conversion"] == 1]
    week = (converted["ts"] - start) // pd.Timedelta(days=7)
    per_week = converted.groupby(week).agg(conversions=("value", "size"), revenue=("value", "sum"))
    per_week = per_week.reindex(range(len(weekly)), fill_value=0)
    assert (weekly["conversions"].to_numpy() == per_week["conversions"].to_numpy()).all()
    assert np.allclose(weekly["revenue"], per_week["revenue"])
    assert weekly["conversions"].sum() == len(converted)
    # the spend is the media-mix world's
    frame = sim.mmm.frame
    assert (weekly["date"].to_numpy() == frame["date"].to_numpy()).all()
    for channel in sim.channels:
        assert np.allclose(weekly[channel], frame[channel], atol=0.05)


def test_days_shortens_the_world() -> None:
    sim = simulate_journeys(2_000, seed=1, days=30)
    assert len(sim.weekly) == 5
    assert sim.touchpoints["ts"].max() < sim.weekly["date"].iloc[0] + pd.Timedelta(days=30)
    assert sim.weekly["conversions"].sum() == sim.touchpoints["conversion"].sum()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_users": 0}, "n_users must be an int >= 1"),
        ({"n_users": 2.5}, "n_users must be an int >= 1"),
        ({"preset": "5y_99ch"}, "Unknown simulator preset '5y_99ch'"),
        ({"effects": {"radio": 0.01}}, "'radio' is not a channel of the world"),
        ({"effects": {"search": -0.01}}, "the effect of 'search' must be a finite number >= 0"),
        ({"effects": {"search": float("nan")}}, "the effect of 'search' must be a finite number >= 0"),
        ({"baseline": 1.5}, "baseline must be a daily probability"),
        ({"days": 10_000}, "days=10000 is longer than the simulated world"),
        ({"retargeting": "radio"}, "The retargeting channel 'radio' is not a channel"),
        ({"n_periods_": 20}, "Unknown simulator option"),
    ],
)
def test_bad_input_is_named(kwargs: dict, message: str) -> None:
    kwargs = {"n_users": 100, **kwargs}
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        simulate_journeys(**kwargs)
