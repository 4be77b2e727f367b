"""The simulator: seeded, and its stated truth is what actually generated the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.mmm import simulate
from stackml.mmm.calibration import LIFT_TEST_COLUMNS, load_lift_tests
from stackml.mmm.transforms import get_adstock, get_saturation


@pytest.fixture(scope="module")
def sim():
    return simulate("2y_3ch", seed=11)


def true_contributions(sim, spend: np.ndarray) -> np.ndarray:
    """Recompute media effects from the published truth alone (scale: the observed maxima)."""
    truth = sim.truth
    observed = sim.frame[list(sim.channels)].to_numpy()
    adstocked = get_adstock("geometric", l_max=8).apply_np(
        spend / observed.max(axis=0), alpha=truth["adstock_alpha"].to_numpy()
    )
    media = get_saturation("logistic").apply_np(adstocked, lam=truth["saturation_lam"].to_numpy())
    coef = truth["contribution"].to_numpy() / get_saturation("logistic").apply_np(
        get_adstock("geometric", l_max=8).apply_np(
            observed / observed.max(axis=0), alpha=truth["adstock_alpha"].to_numpy()
        ),
        lam=truth["saturation_lam"].to_numpy(),
    ).sum(axis=0)
    return media * coef


def test_same_seed_same_data_other_seed_other_data(sim) -> None:
    again = simulate("2y_3ch", seed=11)
    pd.testing.assert_frame_equal(sim.frame, again.frame)
    pd.testing.assert_frame_equal(sim.touchpoints, again.touchpoints)
    pd.testing.assert_frame_equal(sim.lift_tests, again.lift_tests)
    assert not np.allclose(simulate("2y_3ch", seed=12).frame["revenue"], sim.frame["revenue"])


def test_shapes_and_columns(sim) -> None:
    assert sim.channels == ("search", "social", "tv")
    assert list(sim.frame.columns) == [
        "date",
        "search",
        "social",
        "tv",
        "promo",
        "price_index",
        "revenue",
        "conversions",
    ]
    assert len(sim.frame) == 104 and (sim.frame["date"].diff().dropna() == pd.Timedelta(days=7)).all()
    assert sim.frame["date"].iloc[0].dayofweek == 0  # weeks start on Monday, like date_trunc('week')
    assert list(sim.touchpoints.columns) == [
        "date",
        "channel",
        "spend",
        "impressions",
        "clicks",
        "conversions",
        "revenue",
    ]
    assert set(sim.touchpoints["channel"]) == {"search", "social", "tv", "organic"}
    assert len(sim.touchpoints) == 104 * 7 * 4


def test_truth_round_trip(sim) -> None:
    """Contributions recomputed from the truth table equal the simulated ones, and ROAS/shares follow."""
    spend = sim.frame[list(sim.channels)].to_numpy()
    recomputed = true_contributions(sim, spend)
    np.testing.assert_allclose(recomputed, sim.contributions[list(sim.channels)].to_numpy(), rtol=1e-9)
    truth = sim.truth
    np.testing.assert_allclose(truth["roas"], recomputed.sum(axis=0) / spend.sum(axis=0))
    np.testing.assert_allclose(truth["share"], recomputed.sum(axis=0) / sim.frame["revenue"].sum())
    assert truth["adstock_alpha"].between(0.1, 0.7).all() and truth["saturation_lam"].between(1, 4).all()


def test_touchpoints_add_up_to_the_frame(sim) -> None:
    tp = sim.touchpoints.assign(
        week=sim.touchpoints["date"] - pd.to_timedelta(sim.touchpoints["date"].dt.dayofweek, unit="D")
    )
    spend = tp.pivot_table(index="week", columns="channel", values="spend", aggfunc="sum")
    np.testing.assert_allclose(spend[list(sim.channels)].to_numpy(), sim.frame[list(sim.channels)].to_numpy())
    np.testing.assert_allclose(
        tp.groupby("week")["revenue"].sum().to_numpy(), sim.frame["revenue"].to_numpy()
    )
    assert (tp.loc[tp["channel"] == "organic", "spend"] == 0).all()
    assert (tp["revenue"] >= 0).all() and (tp["impressions"] >= 0).all()


def test_lift_tests_are_go_dark_windows_with_true_effects(sim) -> None:
    tests = load_lift_tests(sim.lift_tests)  # the simulator writes the CSV layout the model reads
    assert list(tests.columns) == list(LIFT_TEST_COLUMNS) and list(tests["channel"]) == list(sim.channels)
    spend = sim.frame[list(sim.channels)].to_numpy()
    for k, test in enumerate(tests.itertuples()):
        window = ((sim.frame["date"] >= test.start_date) & (sim.frame["date"] <= test.end_date)).to_numpy()
        assert window.sum() == 6
        assert test.spend_change == pytest.approx(-spend[window, k].sum())
        dark = spend.copy()
        dark[window, k] = 0.0
        true_lift = (true_contributions(sim, dark) - true_contributions(sim, spend))[:, k].sum()
        assert true_lift < 0
        # the reported result is the truth measured with the stated error
        assert abs(test.incremental_target - true_lift) < 4 * test.incremental_target_sd
        assert test.incremental_target_sd == pytest.approx(0.1 * abs(true_lift))


def test_confounder_drives_the_first_channel_and_revenue() -> None:
    plain = simulate("2y_3ch", seed=3)
    confounded = simulate("2y_3ch", seed=3, confounder=True)
    assert not plain.confounder.any()
    z = confounded.confounder
    assert np.corrcoef(z, confounded.frame["search"])[0, 1] > 0.5
    assert np.corrcoef(z, confounded.frame["social"])[0, 1] < 0.5


def test_correlated_preset_has_correlated_spend() -> None:
    sim = simulate("3y_8ch_correlated", seed=2)
    assert len(sim.channels) == 8 and len(sim.frame) == 156
    corr = sim.frame[[c for c in sim.channels if (sim.frame[c] > 0).all()]].corr().to_numpy()
    assert corr[np.triu_indices_from(corr, 1)].mean() > 0.4
    independent = simulate("2y_3ch", seed=2, n_periods=156, channels=sim.channels, correlation=0.0)
    corr0 = independent.frame[[c for c in sim.channels if (independent.frame[c] > 0).all()]].corr().to_numpy()
    assert abs(corr0[np.triu_indices_from(corr0, 1)].mean()) < 0.25


def test_bad_arguments_are_reported_together() -> None:
    with pytest.raises(InputError, match="Unknown simulator preset 'huge'"):
        simulate("huge")
    with pytest.raises(InputError, match=r"n_periods must be an int >= 16.*correlation must be in \[0, 1\)"):
        simulate(None, n_periods=5, correlation=1.5)
    with pytest.raises(InputError, match="channels must be distinct names other than 'organic'"):
        simulate(None, channels=("tv", "organic"))
