"""One small calibrated model, fitted once for the module (nutpie's compile dominates: 20-70 s on 2 cores)."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pandas as pd
import pytest

from stackml.errors import NotFittedError
from stackml.mmm import MediaMixModel, diagnose, outputs, simulate
from stackml.mmm.calibration import counterfactual_spend, load_lift_tests
from stackml.mmm.diagnostics import GateFailedError, time_slice_error

pytest.importorskip("pymc")
pytest.importorskip("nutpie")

DRAWS, CHAINS = 150, 2


@pytest.fixture(scope="module")
def sim():
    return simulate("2y_3ch", seed=3, n_periods=60)


@pytest.fixture(scope="module")
def model(sim) -> MediaMixModel:
    # The simulator's family: one saturation, one compile (saturation="auto" is tested on its own below).
    mmm = MediaMixModel(
        "date", list(sim.channels), "revenue", control_columns=list(sim.controls), saturation="logistic"
    )
    return mmm.fit(sim.frame, draws=DRAWS, tune=200, chains=CHAINS, random_state=7, lift_tests=sim.lift_tests)


def future_plan(sim, weeks: int, scale: float = 1.0) -> pd.DataFrame:
    last = sim.frame["date"].iloc[-1]
    plan = pd.DataFrame({"date": pd.date_range(last + pd.Timedelta(days=7), periods=weeks, freq="7D")})
    for c in sim.channels:
        plan[c] = sim.frame[c].mean() * scale
    plan["promo"], plan["price_index"] = 0.0, 1.0
    return plan


def test_fit_keeps_the_posterior_and_how_it_was_sampled(model, sim) -> None:
    assert model.fit_stats_["sampler"] == "nutpie" and model.fit_stats_["fallback_reason"] is None
    assert model.fit_stats_["compile_seconds"] > 0 and model.fit_stats_["sampling_seconds"] > 0
    posterior = model.idata_.posterior
    assert list(posterior["beta"].coords["channel"].values) == list(sim.channels)
    assert posterior["beta"].shape == (CHAINS, DRAWS, 3)
    assert {
        "adstock_alpha",
        "saturation_lam",
        "intercept",
        "trend_slope",
        "gamma_fourier",
        "gamma_control",
        "sigma",
        "lift_predicted",
    } <= set(posterior.data_vars)
    assert not [name for name in posterior.data_vars if name.endswith("__")]  # natural scale only
    assert model.posterior_.n_draws == CHAINS * DRAWS
    assert model.channels_ == sim.channels


def test_lift_counterfactual_in_the_graph_equals_numpy(model, sim) -> None:
    """The PyMC graph's lift prediction is the NumPy counterfactual on the same draws, carryover included."""
    d = model.design_
    in_graph = model.posterior_.design.target_scale * np.asarray(
        model.idata_.posterior["lift_predicted"]
    ).reshape(CHAINS * DRAWS, -1)
    tests = load_lift_tests(sim.lift_tests)
    actual = model.posterior_.contributions(d.spend)
    for r, test in enumerate(tests.itertuples()):
        k = d.channels.index(test.channel)
        window = np.asarray((d.dates >= test.start_date) & (d.dates <= test.end_date))
        spend = d.spend.copy()
        spend[:, k] = counterfactual_spend(d.spend[:, k], window, test.spend_change)
        assert spend[window, k].sum() == pytest.approx(0.0, abs=1e-6)  # go-dark
        changed = model.posterior_.contributions(spend)
        first = np.flatnonzero(window)[0]
        expected = (changed - actual)[:, first:, k].sum(axis=1)  # the window and everything after it
        np.testing.assert_allclose(in_graph[:, r], expected, rtol=1e-6)


def test_fit_is_good_on_data_from_the_model_family(model, sim) -> None:
    report = diagnose(model, min_ess=50)
    assert report.divergences == 0
    assert report.r2 > 0.85 and report.mape < 0.05
    assert 0.7 <= report.coverage <= 1.0
    roas = outputs.roas(model)
    truth = sim.truth["roas"]
    assert ((roas["mean"] - truth).abs() / truth).max() < 0.35  # few draws, 60 weeks, calibrated with 3 tests


def test_predict_on_the_training_frame_matches_the_components(model, sim) -> None:
    predicted = model.predict(sim.frame)
    assert list(predicted.columns) == ["date", "prediction", "hdi_low", "hdi_high"]
    assert len(predicted) == len(sim.frame)
    assert (predicted["hdi_low"] <= predicted["prediction"]).all()
    assert (predicted["prediction"] <= predicted["hdi_high"]).all()
    parts = outputs.contributions(model).groupby("date")["mean"].sum()
    np.testing.assert_allclose(parts.to_numpy(), predicted["prediction"].to_numpy(), rtol=1e-9)


def test_predict_counts_carryover_from_the_training_spend(model, sim) -> None:
    plan = future_plan(sim, 10)
    with_history = model.predict(plan)["prediction"].to_numpy()
    without = model.predict(plan, history=False)["prediction"].to_numpy()
    assert with_history[0] > without[0]  # last weeks' spend still works in the first planned week
    np.testing.assert_allclose(with_history[8:], without[8:], rtol=1e-9)  # gone after l_max weeks


def test_expected_response_for_spend_plans(model, sim) -> None:
    plan = future_plan(sim, 6)
    response = model.expected_response(plan)
    assert response.shape == (CHAINS * DRAWS, 3)
    zero = model.expected_response(plan.assign(**{c: 0.0 for c in sim.channels}))
    assert (zero > 0).all()  # only the carryover of past spend
    assert np.allclose(
        model.expected_response(plan.assign(**{c: 0.0 for c in sim.channels}), history=False), 0
    )
    bigger = model.expected_response(future_plan(sim, 6, scale=2.0))
    assert (bigger.mean(axis=0) > response.mean(axis=0)).all()
    assert (model.expected_response(plan, include_tail=True) > response).all()
    as_array = model.expected_response(plan[list(sim.channels)].to_numpy())  # periods right after the data
    np.testing.assert_allclose(as_array, response)


def test_outputs_have_intervals_and_sensible_shapes(model, sim) -> None:
    roas = outputs.roas(model)
    assert list(roas.index) == list(sim.channels)
    assert (roas["hdi_low"] <= roas["mean"]).all() and (roas["mean"] <= roas["hdi_high"]).all()
    np.testing.assert_allclose(roas["spend"], sim.frame[list(sim.channels)].sum())
    share = outputs.contribution_share(model)
    np.testing.assert_allclose(share["mean"], roas["contribution"] / sim.frame["revenue"].sum())
    marginal = outputs.marginal_roas(model)
    assert (marginal["mean"] < roas["mean"]).all()  # diminishing returns
    curves = outputs.response_curves(model, n_points=11)
    assert len(curves) == 33
    for _, curve in curves.groupby("channel"):
        assert curve["mean"].iloc[0] == 0 and (np.diff(curve["mean"]) > 0).all()
        assert (np.diff(np.diff(curve["mean"])) < 1e-9).all()  # concave: logistic saturation
    summary = outputs.summary(model, diagnostics=diagnose(model, min_ess=50))
    assert set(summary) == {"roas", "contribution_share", "diagnostics"}
    assert set(summary["roas"]["tv"]) == {"mean", "hdi_low", "hdi_high"}
    assert {"divergences", "max_rhat", "min_ess"} <= set(summary["diagnostics"])


def test_weekly_contributions_table_of_a_national_model_has_an_empty_geo(model, sim) -> None:
    from stackml.mmm.geo import contributions_table

    table = contributions_table(model)
    assert list(table.columns) == ["date", "geo", "channel", "mean", "hdi_low", "hdi_high"]
    assert len(table) == len(sim.frame) * len(sim.channels) and (table["geo"] == "").all()
    totals = table.groupby("channel")["mean"].sum()
    np.testing.assert_allclose(totals.loc[list(sim.channels)], outputs.roas(model)["contribution"], rtol=1e-9)
    assert (table["hdi_low"] <= table["mean"]).all() and (table["mean"] <= table["hdi_high"]).all()


def test_gates_name_the_failure_and_what_to_try(model) -> None:
    report = diagnose(model, min_ess=1e9, min_r2=0.0, max_rhat=2.0)
    assert not report.passed and [g.name for g in report.failures] == ["min_ess"]
    with pytest.raises(
        GateFailedError, match=r"failed 1 diagnostics gate\(s\): min_ess = .* increase --draws"
    ):
        report.raise_if_failed()


def test_time_slice_error_reuses_the_compiled_model(model) -> None:
    before = np.asarray(model.idata_.posterior["beta"]).copy()
    oos = time_slice_error(model, holdout=8, draws=100, tune=150)
    assert oos["holdout_periods"] == 8
    assert 0 <= oos["oos_mape"] < 0.15
    np.testing.assert_array_equal(np.asarray(model.idata_.posterior["beta"]), before)  # the fit is untouched


@pytest.mark.slow
def test_pymc_is_the_fallback_when_nutpie_is_missing(sim, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "nutpie", None)  # as if nutpie were not installed
    small = MediaMixModel("date", ["search", "social"], "revenue", yearly_seasonality=0)
    with pytest.warns(UserWarning, match="nutpie could not sample this model .*using PyMC's NUTS"):
        small.fit(sim.frame, draws=50, tune=50, chains=1, random_state=1)
    assert small.fit_stats_["sampler"] == "pymc" and "nutpie" in small.fit_stats_["fallback_reason"]
    assert small.posterior_.n_draws == 50


def test_pickled_model_predicts_the_same(model, sim) -> None:
    """What a registry stores: the posterior and the design, without the compiled sampler."""
    restored = pickle.loads(pickle.dumps(model))
    plan = future_plan(sim, 4)
    pd.testing.assert_frame_equal(restored.predict(plan), model.predict(plan))
    np.testing.assert_array_equal(restored.expected_response(plan), model.expected_response(plan))
    with pytest.raises(NotFittedError, match="loaded from a pickle"):
        time_slice_error(restored, holdout=8)


def test_divergences_make_the_fit_sample_once_more_at_a_higher_target_accept(sim) -> None:
    # A target acceptance this low takes steps too long for the posterior's curvature: it diverges.
    small = MediaMixModel("date", ["search", "social"], "revenue", yearly_seasonality=0, target_accept=0.1)
    small.fit(sim.frame, draws=60, tune=60, chains=1, random_state=2)
    retry = small.fit_stats_["divergence_retry"]
    assert retry is not None and retry["divergences"] > 0 and retry["target_accept"] == 0.1
    assert small.fit_stats_["target_accept"] == 0.7  # a third of the way left to 1
    assert retry["divergences_after"] == int(small.idata_.sample_stats["diverging"].values.sum())
    assert small.posterior_.n_draws == 60


def test_roas_says_which_channels_the_data_identify(model, sim) -> None:
    from stackml.mmm.identification import identification

    assert model.prior_roas_.shape == (2000, 3) and np.isfinite(model.prior_roas_).all()
    table = outputs.roas(model)
    # Calibrated with a go-dark test per channel, every ROAS is set by the data, far tighter than the prior.
    assert table["identified"].all() and (table["sd_ratio"] < 0.5).all() and (table["note"] == "").all()
    # A posterior no narrower than the prior has learnt nothing: flagged, with the reason and the cure.
    restated = identification(model, model.prior_roas_[::-1])
    assert not restated["identified"].any() and restated["sd_ratio"].between(0.9, 1.1).all()
    assert restated.loc["tv", "note"].startswith("not identified: the posterior keeps")
    assert "A lift test on tv" in restated.loc["tv", "note"]
    assert list(restated["most_correlated"]) != [] and restated["correlation"].abs().le(1).all()


def test_auto_saturation_fits_each_family_and_keeps_the_one_psis_loo_prefers(sim) -> None:
    auto = MediaMixModel(
        "date", ["search", "social", "tv"], "revenue", control_columns=list(sim.controls), saturation="auto"
    )
    auto.fit(sim.frame, draws=100, tune=150, chains=2, random_state=3)
    table = auto.saturation_comparison_
    assert list(table.index) == ["logistic", "hill"] and table["chosen"].sum() == 1
    assert table.loc["logistic", "elpd_diff"] == 0 and (table["se"] > 0).all()
    chosen = str(table.index[table["chosen"]][0])
    assert auto.saturation_.name == chosen == auto.fit_stats_["saturation"]
    if chosen == "hill":  # the simplest stands unless beaten by more than 2 standard errors
        assert table.loc["hill", "elpd_diff"] > 2 * table.loc["hill", "diff_se"]
    assert set(auto.idata_.posterior.data_vars) >= {f"saturation_{p}" for p in auto.saturation_.param_names}


def test_psis_loo_keeps_the_simplest_family_unless_another_is_clearly_better() -> None:
    from stackml.mmm.selection import compare

    rng = np.random.default_rng(0)
    base = rng.normal(-1.0, 0.3, (2, 200, 80))
    noisy = base + rng.normal(0.0, 0.3, (1, 1, 80))  # better in some periods, worse in others
    assert compare(["logistic", "hill"], [base, noisy])["chosen"].tolist() == [True, False]
    assert compare(["logistic", "hill"], [base, base + 0.2])["chosen"].tolist() == [False, True]


def test_auto_keeps_the_simplest_family_when_lift_tests_calibrate_the_fit() -> None:
    from stackml.mmm.selection import candidates

    assert candidates("auto", calibrated=True) == ("logistic",)
    assert candidates("auto", calibrated=False) == ("logistic", "hill")
    assert candidates("michaelis_menten", calibrated=False) == ("michaelis_menten",)


def test_the_default_saturation_is_hill_and_logistic_with_lift_tests() -> None:
    from stackml.mmm.config import config_default
    from stackml.mmm.selection import candidates

    assert MediaMixModel("d", ["a"], "y").saturation == config_default("saturation") == "default"
    assert candidates("default", calibrated=False) == ("hill",)
    assert candidates("default", calibrated=True) == ("logistic",)
