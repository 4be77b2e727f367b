"""The geo simulator: seeded, markets of different sizes, and its stated truth is what generated each geo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.mmm import SimulatedGeoMMM, simulate_geo
from stackml.mmm.calibration import LIFT_TEST_COLUMNS, load_lift_tests
from stackml.mmm.transforms import get_adstock, get_saturation


@pytest.fixture(scope="module")
def sim() -> SimulatedGeoMMM:
    return simulate_geo(seed=3)


def geo_rows(sim: SimulatedGeoMMM, geo: str) -> pd.DataFrame:
    return sim.frame[sim.frame["geo"] == geo].reset_index(drop=True)


def true_contributions(sim: SimulatedGeoMMM, geo: str, spend: np.ndarray | None = None) -> np.ndarray:
    """Recompute a geo's weekly media effects from the published truth alone (scale: the geo's own maxima)."""
    observed = geo_rows(sim, geo)[list(sim.channels)].to_numpy()
    truth = sim.truth[sim.truth["geo"] == geo]
    alpha, lam = truth["adstock_alpha"].to_numpy(), truth["saturation_lam"].to_numpy()

    def media(x: np.ndarray) -> np.ndarray:
        adstocked = get_adstock("geometric", l_max=8).apply_np(x / observed.max(axis=0), alpha=alpha)
        return get_saturation("logistic").apply_np(adstocked, lam=lam)

    coef = truth["contribution"].to_numpy() / media(observed).sum(axis=0)
    return media(observed if spend is None else spend) * coef


def test_frame_is_long_sorted_by_geo_then_date(sim) -> None:
    assert sim.geos == tuple(f"geo_0{g}" for g in range(1, 9))
    assert sim.channels == ("search", "social", "display", "tv")
    assert list(sim.frame.columns) == [
        "date",
        "geo",
        "search",
        "social",
        "display",
        "tv",
        "promo",
        "price_index",
        "revenue",
    ]
    assert len(sim.frame) == 8 * 156
    pd.testing.assert_frame_equal(sim.frame, sim.frame.sort_values(["geo", "date"], ignore_index=True))
    dates = pd.date_range("2022-01-03", periods=156, freq="7D")
    for geo in sim.geos:
        assert (geo_rows(sim, geo)["date"] == dates).all()
    assert len(sim.truth) == 8 * 4 and list(sim.truth.columns) == [
        "geo",
        "channel",
        "adstock_alpha",
        "saturation_lam",
        "roas",
        "contribution",
        "spend",
    ]
    assert list(sim.national_truth.index) == list(sim.channels) and sim.national_truth.index.name == "channel"
    assert list(sim.national_truth.columns) == ["roas", "contribution", "spend", "share"]
    assert list(sim.contributions.columns) == ["date", "geo", "channel", "contribution"]
    assert len(sim.contributions) == 8 * 156 * 4
    assert sim.settings["n_geos"] == 8 and sim.settings["seed"] == 3


def test_same_seed_same_panel_other_seed_other_panel(sim) -> None:
    again = simulate_geo(seed=3)
    pd.testing.assert_frame_equal(sim.frame, again.frame)
    pd.testing.assert_frame_equal(sim.truth, again.truth)
    pd.testing.assert_frame_equal(sim.contributions, again.contributions)
    pd.testing.assert_frame_equal(sim.lift_tests, again.lift_tests)
    other = simulate_geo(seed=4)
    assert not np.allclose(other.frame["revenue"], sim.frame["revenue"])
    assert not np.allclose(other.truth["roas"], sim.truth["roas"])


def test_truth_is_exact_per_geo_and_nationally(sim) -> None:
    sums = sim.contributions.groupby(["geo", "channel"], sort=False)["contribution"].sum()
    truth = sim.truth.set_index(["geo", "channel"])
    np.testing.assert_allclose(sums.loc[truth.index], truth["contribution"], rtol=1e-12)
    spend = sim.frame.groupby("geo")[list(sim.channels)].sum().stack()
    np.testing.assert_allclose(spend.loc[truth.index], truth["spend"], rtol=1e-12)
    np.testing.assert_allclose(truth["roas"], truth["contribution"] / truth["spend"], rtol=1e-12)
    national = sim.national_truth
    by_channel = sim.truth.groupby("channel")[["contribution", "spend"]].sum().loc[national.index]
    np.testing.assert_allclose(national["roas"], by_channel["contribution"] / by_channel["spend"], rtol=1e-12)
    np.testing.assert_allclose(national["share"], national["contribution"] / sim.frame["revenue"].sum())
    # The published per-geo shapes generate the weekly contributions.
    for geo in sim.geos:
        weekly = sim.contributions[sim.contributions["geo"] == geo]
        wide = weekly.pivot(index="date", columns="channel", values="contribution")[list(sim.channels)]
        np.testing.assert_allclose(true_contributions(sim, geo), wide.to_numpy(), rtol=1e-9)


def test_markets_differ_in_size(sim) -> None:
    total = sim.frame.groupby("geo")[list(sim.channels)].sum().sum(axis=1)
    assert total.is_monotonic_decreasing  # geo_01 is the biggest market
    assert total.iloc[0] > 3 * total.iloc[-1]
    revenue = sim.frame.groupby("geo")["revenue"].mean()
    assert revenue.iloc[0] > 3 * revenue.iloc[-1]  # baseline revenue scales with the market too
    same = simulate_geo(seed=3, market_size_spread=0.0)
    total = same.frame.groupby("geo")[list(same.channels)].sum().sum(axis=1)
    np.testing.assert_allclose(total, total.iloc[0], rtol=1e-6)


def test_roas_spread_sets_how_far_geos_are_from_the_national_roas(sim) -> None:
    assert sim.truth.groupby("channel")["roas"].std().min() > 0.05
    equal = simulate_geo(seed=3, roas_spread=0.0)
    by_channel = equal.truth.pivot(index="geo", columns="channel", values="roas")[list(equal.channels)]
    np.testing.assert_allclose(by_channel, np.broadcast_to(by_channel.iloc[0], by_channel.shape), rtol=1e-9)
    np.testing.assert_allclose(by_channel.iloc[0], equal.national_truth["roas"], rtol=1e-9)


def test_shape_spread_sets_how_far_geo_shapes_are_from_the_national_ones(sim) -> None:
    for column in ("adstock_alpha", "saturation_lam"):
        assert (sim.truth.groupby("channel")[column].nunique() == 1).all()
    varied = simulate_geo(seed=3, shape_spread=0.3)
    for column in ("adstock_alpha", "saturation_lam"):
        assert (varied.truth.groupby("channel")[column].nunique() == 8).all()
    assert varied.truth["adstock_alpha"].between(0.02, 0.9).all()
    # the shapes do not change the spend the geos get
    pd.testing.assert_frame_equal(varied.frame[list(sim.channels)], sim.frame[list(sim.channels)])


def test_small_geos_only_have_the_last_third() -> None:
    sim = simulate_geo(n_geos=4, n_periods=60, small_geos=2, seed=5)
    dates = pd.date_range("2022-01-03", periods=60, freq="7D")
    assert sim.frame.groupby("geo").size().to_dict() == {
        "geo_01": 60,
        "geo_02": 60,
        "geo_03": 20,
        "geo_04": 20,
    }
    for geo in ("geo_03", "geo_04"):
        assert (geo_rows(sim, geo)["date"] == dates[40:]).all()
        assert (sim.contributions.loc[sim.contributions["geo"] == geo, "date"] >= dates[40]).all()
        truth = sim.truth[sim.truth["geo"] == geo]
        np.testing.assert_allclose(truth["spend"], geo_rows(sim, geo)[list(sim.channels)].sum())
        np.testing.assert_allclose(true_contributions(sim, geo).sum(axis=0), truth["contribution"], rtol=1e-9)


def test_lift_tests_are_go_dark_windows_in_the_first_two_geos(sim) -> None:
    tests = sim.lift_tests
    assert list(tests.columns) == ["geo", *LIFT_TEST_COLUMNS]
    assert list(tests["geo"]) == ["geo_01"] * 4 + ["geo_02"] * 4
    assert list(tests["channel"]) == list(sim.channels) * 2
    load_lift_tests(tests)  # the layout the model reads
    for test in tests.itertuples():
        rows = geo_rows(sim, test.geo)
        spend = rows[list(sim.channels)].to_numpy()
        k = sim.channels.index(test.channel)
        window = ((rows["date"] >= test.start_date) & (rows["date"] <= test.end_date)).to_numpy()
        assert window.sum() == 6
        assert test.spend_change == pytest.approx(-spend[window, k].sum()) and test.spend_change < 0
        dark = spend.copy()
        dark[window, k] = 0.0
        true_lift = (true_contributions(sim, test.geo, dark) - true_contributions(sim, test.geo))[:, k].sum()
        assert true_lift < 0
        assert abs(test.incremental_target - true_lift) < 4 * test.incremental_target_sd
        assert test.incremental_target_sd == pytest.approx(0.1 * abs(true_lift))
    assert set(simulate_geo(n_geos=1, n_periods=52).lift_tests["geo"]) == {"geo_01"}


def test_bad_arguments_are_reported_together() -> None:
    with pytest.raises(InputError) as info:
        simulate_geo(
            n_geos=0,
            n_periods=10,
            channels=("tv", "organic"),
            roas_spread=-0.1,
            market_size_spread=float("nan"),
            correlation=1.0,
            small_geos=-1,
            start="not a date",
        )
    message = str(info.value)
    assert message.startswith("8 problem(s) with the geo simulator arguments")
    for expected in (
        "'n_geos' must be an int >= 1, got 0",
        "'n_periods' must be an int >= 16, got 10",
        "'small_geos' must be an int >= 0, got -1",
        "'market_size_spread' must be a number >= 0, got nan",
        "'roas_spread' must be a number >= 0, got -0.1",
        "'correlation' must be a number in [0, 1), got 1.0",
        "'channels' must be a tuple of distinct names other than 'organic'",
        "'start' must be a date",
        "help(stackml.mmm.simulate_geo)",
    ):
        assert expected in message
    with pytest.raises(InputError, match=r"'small_geos' must be < n_geos \(3\).*got 3"):
        simulate_geo(n_geos=3, small_geos=3)
    with pytest.raises(InputError, match="'n_periods' must be >= 46 when small_geos > 0"):
        simulate_geo(n_periods=45, small_geos=1)
    simulate_geo(n_geos=2, n_periods=46, small_geos=1)  # the shortest panel with a small geo
    for channels in (("tv", "tv"), ("tv", "revenue"), "tv", ()):
        with pytest.raises(InputError, match="'channels' must be a tuple of distinct names"):
            simulate_geo(channels=channels)
    with pytest.raises(InputError, match="'n_geos' must be an int >= 1, got True"):
        simulate_geo(n_geos=True)
