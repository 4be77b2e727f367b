"""The media-mix pipeline functions on one small fitted model (nutpie's compile dominates:
fit once per module).

Oracles: the simulator's own weekly frame for the SQL aggregation, and identities between the outputs
(ROAS x spend is the contribution, which is the share x the total target) for the summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError, TableNotFoundError
from stackml.mmm import simulate
from stackml.mmm.config import MMMConfig, parse_bounds
from stackml.mmm.diagnostics import GateFailedError
from stackml.mmm.pipeline import (
    build_model,
    check_frame,
    check_model,
    check_source,
    default_budget,
    load_frame,
    run_pipeline,
    summarise,
)
from stackml.pipelines import Source

CHANNELS, CONTROLS = ("search", "social", "tv"), ("promo", "price_index")
# Few draws keep the module fast; the sampler gates are relaxed to what such short chains reach.
SHORT = {
    "draws": 200,
    "tune": 200,
    "chains": 2,
    "random_state": 7,
    "min_ess": 10.0,
    "max_rhat": 1.2,
    "max_divergences": 10,
    "horizon": 6,
}


@pytest.fixture(scope="module")
def sim():
    return simulate("2y_3ch", seed=3, n_periods=60)


@pytest.fixture(scope="module")
def warehouse(sim):
    from stackml.warehouse import connect

    with connect("duckdb:///:memory:") as wh:
        wh.ingest(sim.touchpoints, "touchpoints")
        wh.ingest(sim.controls_frame, "controls")
        wh.ingest(sim.frame, "model_frame")
        yield wh


@pytest.fixture(scope="module")
def config() -> MMMConfig:
    return MMMConfig(channels=CHANNELS, controls=CONTROLS, **SHORT)


@pytest.fixture(scope="module")
def frame(config, warehouse) -> pd.DataFrame:
    return load_frame(config.replace(controls_table="controls"), Source.of(table="touchpoints"), warehouse)


@pytest.fixture(scope="module")
def result(frame, config):
    pytest.importorskip("pymc")
    pytest.importorskip("nutpie")
    return run_pipeline(frame, config)


# -- configuration and data ----------------------------------------------------------------------------------
def test_config_reports_every_problem_at_once() -> None:
    with pytest.raises(InputError) as caught:
        MMMConfig(channels=(), draws=0, freq="M", holdout=0.9, horizon=-1, budget=-5.0, adstock="nope")
    message = str(caught.value)
    for part in (
        "7 problem(s) with the media-mix configuration",
        "'channels': Value should have at least 1 item",
        "'draws': Input should be greater than or equal to 1, got 0",
        "'freq': must be one of ['D', 'W']",
        "'holdout': Input should be less than or equal to 0.5",
        "'horizon': Input should be greater than or equal to 0",
        "'budget': Input should be greater than 0",
        "'adstock': must be one of ['delayed', 'geometric'",
    ):
        assert part in message
    with pytest.raises(InputError, match=r"'draws': must be a number, not a bool, got True"):
        MMMConfig(channels=CHANNELS, draws=True)
    with pytest.raises(InputError, match=r"bounds name channels \['radio'\]"):
        MMMConfig(channels=CHANNELS, bounds={"radio": (0.0, 1.0)})
    with pytest.raises(InputError, match=r"columns named in more than one role: \['search'\]"):
        MMMConfig(channels=CHANNELS, controls=("search",))


def test_config_round_trips_through_json_and_reads_command_line_text() -> None:
    config = MMMConfig(channels="search, tv", controls="promo", bounds="search=0:5000,tv=:20000", budget=1e5)
    assert config.channels == ("search", "tv") and config.controls == ("promo",)
    assert config.bounds == {"search": (0.0, 5000.0), "tv": (None, 20000.0)}
    assert MMMConfig.from_json(config.to_json()) == config
    with pytest.raises(InputError, match=r"'tv=a:b' is not CHANNEL=MIN:MAX"):
        MMMConfig(channels="search, tv", bounds="tv=a:b")
    with pytest.raises(InputError, match=r"'lift_tests': the lift-test file was not found"):
        MMMConfig(channels="search", lift_tests="/no/such/lift.csv")
    with pytest.raises(InputError, match=r"'colour': Extra inputs are not permitted"):
        MMMConfig.from_json('{"channels": ["tv"], "colour": "red"}')


def test_parse_bounds() -> None:
    assert parse_bounds("search=0:5000, tv=:20000") == {"search": (0.0, 5000.0), "tv": (None, 20000.0)}
    assert parse_bounds(None) is None and parse_bounds(" ") is None
    with pytest.raises(InputError, match=r"'search=5' is not CHANNEL=MIN:MAX[\s\S]*'tv=a:b' is not"):
        parse_bounds("search=5,tv=a:b")


def test_touchpoints_aggregate_in_sql_to_the_simulated_weekly_frame(frame, sim) -> None:
    assert list(frame.columns) == ["date", *CHANNELS, *CONTROLS, "revenue"]
    expected = sim.frame[["date", *CHANNELS, *CONTROLS, "revenue"]]
    pd.testing.assert_frame_equal(
        frame.reset_index(drop=True), expected, check_dtype=False, check_exact=False, rtol=1e-9
    )


def test_a_model_frame_loads_from_a_table_a_csv_and_a_parquet_file(
    config, warehouse, sim, tmp_path: Path
) -> None:
    from_table = load_frame(config, Source.of(table="model_frame"), warehouse)
    csv, parquet = tmp_path / "mmm.csv", tmp_path / "mmm.parquet"
    sim.frame.to_csv(csv, index=False)
    sim.frame.to_parquet(parquet)
    for loaded in (from_table, load_frame(config, Source.of(csv)), load_frame(config, Source.of(parquet))):
        assert list(loaded.columns) == ["date", *CHANNELS, *CONTROLS, "revenue"]
        np.testing.assert_allclose(loaded[list(CHANNELS)].to_numpy(), sim.frame[list(CHANNELS)].to_numpy())
        check_frame(loaded, config)


def test_check_source_names_every_problem(config, warehouse, sim, tmp_path: Path) -> None:
    wrong = MMMConfig(channels=("search", "radio"), target="sales", controls=("promo",))
    touchpoints, model_frame = Source.of(table="touchpoints"), Source.of(table="model_frame")
    with pytest.raises(InputError, match=r"missing columns \['sales'\]"):
        check_source(wrong, touchpoints, warehouse)
    unknown = MMMConfig(channels=("search", "radio"), controls=("promo",))
    with pytest.raises(InputError) as caught:
        check_source(unknown, touchpoints, warehouse)
    assert "unknown channels ['radio']" in str(caught.value) and "controls ['promo'] are not in" in str(
        caught.value
    )
    with pytest.raises(InputError, match=r"missing columns \['radio'\]"):
        check_source(unknown, model_frame, warehouse)
    with pytest.raises(TableNotFoundError, match="Table 'nope' does not exist"):
        check_source(config, Source.of(table="nope"), warehouse)
    with pytest.raises(InputError, match="Data file not found: .*missing.csv'"):
        check_source(config, Source.of(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="exactly one of a data file or a warehouse table; got both"):
        Source.of(tmp_path / "x.csv", "touchpoints")
    lift = tmp_path / "lift.csv"
    sim.lift_tests.to_csv(lift, index=False)
    only_search = MMMConfig(channels=("search",), lift_tests=str(lift))
    with pytest.raises(InputError, match=r"channels \['social', 'tv'\] that are not among"):
        check_source(only_search, touchpoints, warehouse)
    lift.write_text("channel,start_date\nsearch,2022-01-03\n")
    with pytest.raises(InputError, match=r"missing columns \['end_date'"):
        check_source(MMMConfig(channels=CHANNELS, lift_tests=str(lift)), touchpoints, warehouse)
    assert check_source(config.replace(controls_table="controls"), touchpoints, warehouse) == "touchpoints"
    assert check_source(config, model_frame, warehouse) == "frame"


def test_check_frame_lists_bad_values(config, frame) -> None:
    bad = frame.copy()
    bad.loc[3, "search"] = -1.0
    bad.loc[5, "revenue"] = np.nan
    with pytest.raises(InputError) as caught:
        check_frame(bad, config)
    assert "channel 'search' has 1 negative spend values" in str(caught.value)
    assert "column 'revenue' has 1 missing or infinite values" in str(caught.value)
    with pytest.raises(InputError, match="too few rows: 10"):
        check_frame(frame.head(10), config)


# -- fitted: gates, outputs, plan, report, registry ----------------------------------------------------------
def test_the_model_passes_the_configured_gates_and_fails_strict_ones(result, config) -> None:
    d = result.diagnostics
    assert result.passed and d.r2 > 0.85 and d.holdout_periods == 9 and 0 < d.oos_mape < 0.1
    strict = MMMConfig(
        channels=CHANNELS, controls=CONTROLS, **{**SHORT, "min_r2": 0.99999, "max_holdout_mape": 1e-6}
    )
    failed = check_model(result.model, strict, result.holdout)
    assert [g.name for g in failed.failures] == ["r2", "oos_mape"]
    assert "raise --yearly-seasonality to 4 (in Python: MediaMixModel(yearly_seasonality=4))" in (
        failed.failures[0].message()
    )


def test_summary_is_json_with_consistent_intervals(result, frame) -> None:
    summary = json.loads(json.dumps(result.summary(), allow_nan=False))
    assert set(summary["roas"]) == set(CHANNELS) == set(summary["contribution_share"])
    assert {"divergences", "max_rhat", "min_ess"} <= set(summary["diagnostics"])
    for ch in CHANNELS:
        roas, share = summary["roas"][ch], summary["contribution_share"][ch]
        assert roas["hdi_low"] <= roas["mean"] <= roas["hdi_high"]
        assert share["hdi_low"] <= share["mean"] <= share["hdi_high"]
        assert isinstance(roas["identified"], bool) and (roas["note"] == "") == roas["identified"]
        spend = frame[ch].sum()
        # ROAS x spend and share x total target are both the channel's mean contribution.
        assert roas["mean"] * spend == pytest.approx(share["mean"] * frame["revenue"].sum(), rel=1e-9)
    assert 0 < sum(s["mean"] for s in summary["contribution_share"].values()) < 1
    # the family fitted (the default, hill), and the sampler settings the kept draws came from
    assert summary["diagnostics"]["saturation"] == "hill"
    assert summary["diagnostics"]["target_accept"] >= 0.9


def test_the_plan_spends_the_historical_rate_by_default(result, config) -> None:
    plan = result.plan
    assert plan is not None and plan.horizon_periods == config.horizon
    assert plan.total_budget == pytest.approx(default_budget(result.model, config.horizon))
    assert plan.allocation["total"].sum() == pytest.approx(plan.total_budget, rel=1e-6)
    assert plan.uplift_hdi[0] <= plan.uplift <= plan.uplift_hdi[1]


def test_the_report_shows_every_section_and_says_when_gates_failed(result, config) -> None:
    from stackml.mmm.report import mmm_report

    html = mmm_report(result, title="MMM test", registry_note="Registered as x v1.").to_html()
    for text in (
        "Contributions",
        "Return on ad spend",
        "Response curves",
        "Budget plan",
        "Posterior predictive check",
        f"50% predictive interval and {result.diagnostics.coverage:.0%} inside its 94% one",
        "residual lag-1 autocorrelation",
        "Diagnostics",
        "It passed every diagnostics gate",
        "Registered as x v1.",
        "gates were relaxed from the defaults (max_divergences ≤ 10 (default 0)",
    ):
        assert text in html
    strict = MMMConfig(channels=CHANNELS, controls=CONTROLS, **{**SHORT, "min_r2": 0.99999})
    failed = summarise(
        result.model, check_model(result.model, strict, result.holdout), strict, holdout=result.holdout
    )
    html = mmm_report(failed).to_html()
    assert "FAILED 1 diagnostics gate(s)" in html and "r2 = " in html and "No budget plan" in html


def test_the_predictive_check_says_when_errors_run_in_streaks(result) -> None:
    import dataclasses

    from stackml.mmm.report import mmm_report

    streaky = dataclasses.replace(
        result, diagnostics=dataclasses.replace(result.diagnostics, residual_acf1=0.6, coverage=0.7)
    )
    html = mmm_report(streaky).to_html()
    assert "The residuals are autocorrelated (lag-1 correlation 0.60)" in html
    assert "about 2.0x too narrow" in html and "Fewer than nominal" in html
    calm = dataclasses.replace(result.diagnostics, residual_acf1=0.0, coverage=0.95, coverage50=0.5)
    html = mmm_report(dataclasses.replace(result, diagnostics=calm)).to_html()
    assert "no marked autocorrelation" in html and "Fewer than nominal" not in html


def test_register_promote_and_serve_a_spend_plan(result, frame, sim, tmp_path_factory) -> None:
    from stackml import tracking
    from stackml.config import get_settings
    from stackml.pipelines import publish

    settings = get_settings(home=tmp_path_factory.mktemp("mmm_registry"))
    first = publish(result, frame, model_name="mmm-unit", settings=settings)
    assert first.model_version == 1 and first.promotion.promoted and first.promotion.metric == "holdout_mape"
    assert first.note.startswith("Registered as mmm-unit v1: ")
    second = publish(
        result, frame.iloc[1:], model_name="mmm-unit", settings=settings
    )  # other data: not compared
    assert second.model_version == 2 and not second.promotion.promoted and "was not compared" in second.note

    model = tracking.load_model("mmm-unit", settings=settings)
    last = sim.frame["date"].iloc[-1]
    plan = pd.DataFrame({"date": pd.date_range(last + pd.Timedelta(days=7), periods=3, freq="7D")})
    plan[list(CHANNELS)] = sim.frame[list(CHANNELS)].mean().to_numpy()
    out = model.predict(plan)  # controls left out: held at their training averages
    assert list(out.columns) == ["date", "prediction", "hdi_low", "hdi_high"] and len(out) == 3
    assert (out["hdi_low"] <= out["prediction"]).all() and (out["prediction"] <= out["hdi_high"]).all()
    dark = model.predict(plan.assign(**{c: 0.0 for c in CHANNELS}))
    assert (dark["prediction"] < out["prediction"]).all()  # spend adds to the expected target
    with pytest.raises(InputError, match=r"misses columns \['tv'\]"):
        model.unwrap_python_model().predict(None, plan.drop(columns="tv"))


def test_a_failed_model_is_not_registered(result, frame, tmp_path_factory) -> None:
    from stackml import tracking
    from stackml.config import get_settings
    from stackml.pipelines import publish

    strict = MMMConfig(channels=CHANNELS, controls=CONTROLS, **{**SHORT, "min_r2": 0.99999})
    failed = summarise(
        result.model, check_model(result.model, strict, result.holdout), strict, holdout=result.holdout
    )
    with pytest.raises(GateFailedError, match=r"failed 1 diagnostics gate\(s\): r2"):
        failed.models(frame)
    settings = get_settings(home=tmp_path_factory.mktemp("mmm_never"))
    published = publish(failed, frame, model_name="mmm-never", settings=settings)
    assert published.model_version is None and published.run_id is not None
    assert published.note.startswith("Not registered: the model failed its diagnostics gates (r2")
    assert tracking.list_models(settings=settings).empty


def test_roas_priors_from_the_command_line_reach_the_model_and_survive_json() -> None:
    config = MMMConfig(channels=CHANNELS, roas_prior=f"{CHANNELS[0]}=2:1, *=1:0.5")
    again = MMMConfig.model_validate_json(config.model_dump_json())
    assert again == config and again.roas_prior == {CHANNELS[0]: (2.0, 1.0), "*": (1.0, 0.5)}
    model = build_model(again)
    assert model.roas_prior == {CHANNELS[0]: (2.0, 1.0), **{c: (1.0, 0.5) for c in CHANNELS[1:]}}
    assert MMMConfig(channels=CHANNELS, yearly_seasonality=4).yearly_seasonality == 4
    varying = MMMConfig(channels=CHANNELS, time_varying_intercept=True)
    assert build_model(varying).time_varying_intercept is True
    assert build_model(MMMConfig(channels=CHANNELS)).time_varying_intercept is False
    with pytest.raises(InputError, match=r"roas_prior gives no prior for the channels \['social', 'tv'\]"):
        MMMConfig(channels=CHANNELS, roas_prior="search=2:1")


def test_draws_too_few_for_the_ess_gate_are_refused_before_sampling() -> None:
    with pytest.raises(InputError, match=r"200 x 2 = 400 draws in all cannot give .* \(400\)"):
        MMMConfig(channels=CHANNELS, draws=200, chains=2)
    assert MMMConfig(channels=CHANNELS, draws=200, chains=2, min_ess=100).min_ess == 100


def test_the_report_says_which_channels_the_data_do_not_identify(result) -> None:
    import dataclasses

    from stackml.mmm.report import mmm_report

    roas = result.roas.copy()
    roas.loc["tv", ["identified", "note"]] = [False, "not identified: the posterior keeps 80% of the prior"]
    html = mmm_report(dataclasses.replace(result, roas=roas)).to_html()
    assert "The data do not identify the return of " in html  # the fixture may flag other channels too
    assert "tv is not identified: the posterior keeps 80% of the prior" in html
    assert "Their intervals are wide on purpose" in html and "does not count the risk" in html
