"""The geo media-mix model: input checks, and one small hierarchical fit shared by the module (nutpie's
compile dominates it: 20-70 s on 2 cores)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.mmm import GeoMediaMixModel, MediaMixModel, optimize_budget, simulate_geo
from stackml.mmm.geo import contributions_table, geo_roas, geo_summary, national_roas

CHANNELS = ("search", "tv")


def geo_model(**kwargs) -> GeoMediaMixModel:
    return GeoMediaMixModel("date", "geo", CHANNELS, "revenue", ("promo",), **kwargs)


@pytest.fixture(scope="module")
def sim():
    sim = simulate_geo(n_geos=3, n_periods=60, channels=CHANNELS, seed=3, small_geos=1)
    # tv never airs in the small market: a channel dark in one geo must not break the others
    sim.frame.loc[sim.frame["geo"] == "geo_03", "tv"] = 0.0
    return sim


@pytest.fixture(scope="module")
def model(sim) -> GeoMediaMixModel:
    pytest.importorskip("pymc")
    pytest.importorskip("nutpie")
    return geo_model().fit(sim.frame, draws=150, tune=150, chains=2, random_state=5)


# -- input ------------------------------------------------------------------------------------------------
def test_bad_panels_get_every_problem_at_once_with_the_geo_named(sim) -> None:
    frame = sim.frame.copy()
    duplicated = pd.concat([frame, frame[frame["geo"] == "geo_01"].head(2)])
    gap = frame.drop(frame[frame["geo"] == "geo_02"].index[10:13])
    with pytest.raises(InputError) as duplicate_error:
        geo_model().fit(duplicated, draws=10, tune=10, chains=1)
    assert "geo 'geo_01'" in str(duplicate_error.value) and "repeated dates" in str(duplicate_error.value)
    with pytest.raises(InputError) as gap_error:
        geo_model().fit(gap, draws=10, tune=10, chains=1)
    assert "geo 'geo_02'" in str(gap_error.value) and "not evenly spaced" in str(gap_error.value)

    dark = frame.assign(tv=0.0)
    with pytest.raises(InputError) as dark_error:
        geo_model(saturation="auto", geo_roas_spread=0).fit(dark, draws=10, tune=10, chains=1)
    message = str(dark_error.value)
    assert "['tv'] have no positive spend in any geo" not in message  # settings problems come first ...
    assert "saturation 'auto'" in message and "geo_roas_spread" in message
    with pytest.raises(InputError, match=r"\['tv'\] have no positive spend in any geo"):
        geo_model().fit(dark, draws=10, tune=10, chains=1)  # ... and the data's when the settings are fine
    with pytest.raises(InputError, match="missing geo column 'geo'"):
        geo_model().fit(frame.drop(columns="geo"), draws=10, tune=10, chains=1)


def test_an_unfitted_model_says_so() -> None:
    with pytest.raises(NotFittedError):
        national_roas(geo_model())


# -- the fit ----------------------------------------------------------------------------------------------
def test_each_geo_gets_a_fitted_view_of_the_joint_posterior(model, sim) -> None:
    assert model.geos_ == ("geo_01", "geo_02", "geo_03")
    assert set(model.geo_models_) == set(model.geos_)
    small = model.geo_models_["geo_03"]
    assert isinstance(small, MediaMixModel)
    assert small.design_.n_periods == (sim.frame["geo"] == "geo_03").sum()
    n_draws = 150 * 2
    assert small.posterior_.beta.shape == (n_draws, len(CHANNELS))
    # one joint posterior: the views share the shape parameters draw by draw
    alphas = [v.posterior_.adstock_params["alpha"] for v in model.geo_models_.values()]
    assert all(np.array_equal(alphas[0], a) for a in alphas[1:])
    # each view predicts its own geo like the national model would
    rows = sim.frame[sim.frame["geo"] == "geo_01"]
    predicted = model.geo_models_["geo_01"].predict(rows)
    assert len(predicted) == len(rows) and np.isfinite(predicted["prediction"]).all()
    budget = float(rows[list(CHANNELS)].sum().sum()) / 15
    plan = optimize_budget(model.geo_models_["geo_01"], total_budget=budget, horizon_periods=4)
    assert plan.allocation["total"].sum() == pytest.approx(budget, rel=1e-6)
    assert model.roas_spread_.shape == (n_draws, len(CHANNELS))
    assert pickle.loads(pickle.dumps(model)).geos_ == model.geos_


def test_roas_per_geo_and_national_add_up(model) -> None:
    by_geo = geo_roas(model)
    assert len(by_geo) == 3 * len(CHANNELS)
    dark = by_geo[(by_geo["geo"] == "geo_03") & (by_geo["channel"] == "tv")].iloc[0]
    assert dark["spend"] == 0 and np.isnan(dark["mean"]) and dark["note"] == "no spend in this geo"
    lit = by_geo.dropna(subset=["mean"])
    assert (lit["hdi_low"] <= lit["mean"]).all() and (lit["mean"] <= lit["hdi_high"]).all()

    national = national_roas(model)
    totals = by_geo.groupby("channel")[["spend", "contribution"]].sum()
    np.testing.assert_allclose(national["spend"], totals.loc[list(CHANNELS), "spend"])
    np.testing.assert_allclose(
        national["contribution"], totals.loc[list(CHANNELS), "contribution"], rtol=1e-9
    )
    np.testing.assert_allclose(national["mean"], national["contribution"] / national["spend"], rtol=1e-9)


def test_weekly_contributions_table_matches_the_roas_totals(model, sim) -> None:
    table = contributions_table(model)
    assert list(table.columns) == ["date", "geo", "channel", "mean", "hdi_low", "hdi_high"]
    assert len(table) == len(sim.frame) * len(CHANNELS)
    sums = table.groupby(["geo", "channel"])["mean"].sum()
    by_geo = geo_roas(model).set_index(["geo", "channel"])
    np.testing.assert_allclose(sums.loc[by_geo.index], by_geo["contribution"], rtol=1e-9)
    assert (table.loc[(table["geo"] == "geo_03") & (table["channel"] == "tv"), "mean"] == 0).all()


def test_summary_is_json_with_national_and_per_geo_roas(model) -> None:
    summary = json.loads(json.dumps(geo_summary(model)))
    assert set(summary) == {"roas", "contribution_share", "geos", "geo_spread"}
    assert set(summary["geos"]) == {"geo_01", "geo_02", "geo_03"}
    assert summary["geos"]["geo_03"]["roas"]["tv"] == {"mean": None, "hdi_low": None, "hdi_high": None}
    assert set(summary["geos"]["geo_01"]["roas"]["search"]) == {"mean", "hdi_low", "hdi_high"}
    assert all(v["mean"] >= 0 for v in summary["geo_spread"].values())
