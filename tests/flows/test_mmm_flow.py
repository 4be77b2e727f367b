"""MMMFlow end to end through the CLI: touchpoints in the warehouse -> SQL -> fit -> gates -> registry -> plan
-> report, then ``stackml mmm optimize`` on the registered model; bad input exits 2 before any flow starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from stackml.mmm import simulate

CHANNELS = ("search", "social", "tv")
MODEL = "mmm-touchpoints"
HORIZON = 6
# Tiny chains keep the test short; the sampler gates are relaxed to what such chains reach.
SHORT = [  # one saturation family, one compile: "auto" is tested in tests/unit/mmm
    "--saturation",
    "logistic",
    "--draws",
    "200",
    "--tune",
    "400",
    "--chains",
    "2",
    "--seed",
    "7",
    "--min-ess",
    "10",
    "--max-rhat",
    "1.2",
    "--max-divergences",
    "10",
]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKML_HOME", "METAFLOW_"))}
    env |= {"STACKML_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


@pytest.fixture(scope="module")
def sim():
    return simulate("2y_3ch", seed=3, n_periods=60)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, sim) -> Path:
    """A stackml home whose warehouse holds raw touchpoints and weekly controls, plus a lift-test file."""
    from stackml.config import get_settings
    from stackml.warehouse import connect

    home = tmp_path_factory.mktemp("mmm_home")
    with connect(settings=get_settings(home=home)) as wh:  # closed before the CLI opens the same DuckDB file
        wh.ingest(sim.touchpoints, "touchpoints")
        wh.ingest(sim.controls_frame, "controls")
    sim.lift_tests.to_csv(home / "lift_tests.csv", index=False)
    return home


def fit_touchpoints(home: Path) -> list[str]:
    """``stackml mmm fit`` on the home's touchpoints, controls and lift tests."""
    fixed = (
        "mmm fit --table touchpoints --controls-table controls --target revenue --controls promo,price_index"
    )
    return [*fixed.split(), "--channels", ",".join(CHANNELS), "--lift-tests", str(home / "lift_tests.csv")]


@pytest.fixture(scope="module")
def fitted(home: Path) -> dict:
    pytest.importorskip("pymc")
    pytest.importorskip("nutpie")
    proc = cli(
        home,
        *fit_touchpoints(home),
        "--horizon",
        str(HORIZON),
        *SHORT,
        "--contributions-out",
        str(home / "contributions.csv"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_fit_prints_roas_shares_and_diagnostics(fitted: dict) -> None:
    assert set(fitted["roas"]) == set(CHANNELS) == set(fitted["contribution_share"])
    for channel in CHANNELS:
        for block in (fitted["roas"][channel], fitted["contribution_share"][channel]):
            assert block["hdi_low"] <= block["mean"] <= block["hdi_high"]
    diagnostics = fitted["diagnostics"]
    assert {"divergences", "max_rhat", "min_ess"} <= set(diagnostics) and diagnostics["passed"] is True
    assert diagnostics["failed_gates"] == [] and diagnostics["holdout_periods"] == 9


def test_fit_writes_the_weekly_contributions_table(fitted: dict, home: Path) -> None:
    assert fitted["contributions_out"] == str(home / "contributions.csv")
    table = pd.read_csv(fitted["contributions_out"], keep_default_na=False)
    assert list(table.columns) == ["date", "geo", "channel", "mean", "hdi_low", "hdi_high"]
    assert set(table["channel"]) == set(CHANNELS) and (table["geo"] == "").all()
    weeks = table["date"].nunique()
    assert len(table) == weeks * len(CHANNELS) and weeks >= 50
    assert (table["hdi_low"] <= table["mean"]).all() and (table["mean"] <= table["hdi_high"]).all()


def test_fit_registers_promotes_plans_and_reports(fitted: dict, home: Path) -> None:
    assert fitted["model_name"] == MODEL and fitted["model_version"] == 1 and fitted["promoted"] is True
    plan = fitted["budget_plan"]
    assert plan["horizon_periods"] == HORIZON
    assert sum(a["total"] for a in plan["allocation"].values()) == pytest.approx(
        plan["total_budget"], rel=1e-6
    )
    report = Path(fitted["report"])
    assert report.is_file() and report.parent == home / "reports"
    html = report.read_text()
    for text in (
        "Contributions",
        "Return on ad spend",
        "Budget plan",
        "Diagnostics",
        "calibrated with 3 lift test",
        f"Registered as {MODEL} v1",
    ):
        assert text in html
    # the ROAS and contribution tables as a Tableau extract next to the report, readable with the Hyper API
    from stackml.reports import read_extract

    assert fitted["extract"] == str(report.with_suffix(".hyper"))
    extract = read_extract(fitted["extract"])
    assert set(extract) == {"roas", "contributions"}
    assert sorted(extract["roas"]["channel"]) == sorted(fitted["roas"])
    assert extract["roas"].set_index("channel")["mean"].to_dict() == pytest.approx(
        {c: r["mean"] for c, r in fitted["roas"].items()}
    )
    assert len(extract["contributions"]) > 0
    models = json.loads(cli(home, "models", "--json").stdout)
    assert [(m["name"], m["aliases"]) for m in models] == [(MODEL, ["champion"])]


def test_the_budget_plan_reaches_the_registered_run(fitted: dict, home: Path) -> None:
    """The flow plans before it publishes, so the plan's metrics are on the run behind the registered
    version."""
    from stackml import tracking
    from stackml.config import get_settings

    client = tracking.configure(get_settings(home=home))
    version = client.get_model_version_by_alias(MODEL, "champion")
    metrics = client.get_run(version.run_id).data.metrics
    assert metrics["plan_uplift"] == pytest.approx(fitted["budget_plan"]["uplift"]["mean"], rel=1e-9)
    assert "plan_uplift_ratio" in metrics and "seconds_plan" in metrics and "holdout_mape" in metrics


def test_optimize_plans_with_the_registered_model(fitted: dict, home: Path) -> None:
    proc = cli(
        home,
        "mmm",
        "optimize",
        "--model",
        f"{MODEL}@champion",
        "--budget",
        "150000",
        "--horizon",
        str(HORIZON),
        "--bounds",
        "search=500:500",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["model"] == f"{MODEL}@champion" and plan["model_version"] == 1
    assert sum(a["total"] for a in plan["allocation"].values()) == pytest.approx(150000, rel=1e-6)
    assert plan["allocation"]["search"]["per_period"] == pytest.approx(500, rel=1e-6)
    assert plan["binding"]["search"] == "fixed"  # min == max: the bound binds whatever the fit says
    assert set(plan["binding"].values()) <= {"fixed", "lower", "upper"}
    uplift = plan["uplift"]
    assert uplift["hdi_low"] <= uplift["mean"] <= uplift["hdi_high"]
    text = cli(home, "mmm", "optimize", "--model", MODEL, "--budget", "150000", "--horizon", str(HORIZON))
    assert text.returncode == 0 and "Budget plan: 150,000 over 6 periods" in text.stdout
    assert "Expected uplift over the historical mix" in text.stdout


def test_the_registered_pyfunc_predicts_a_spend_plan(fitted: dict, home: Path, sim) -> None:
    from stackml import tracking
    from stackml.config import get_settings

    model = tracking.load_model(MODEL, settings=get_settings(home=home))
    last = sim.frame["date"].iloc[-1]
    plan = pd.DataFrame({"date": pd.date_range(last + pd.Timedelta(days=7), periods=4, freq="7D")})
    for channel in CHANNELS:
        plan[channel] = sim.frame[channel].mean()
    out = model.predict(plan.assign(promo=0.0, price_index=1.0))
    assert (
        len(out) == 4
        and (out["hdi_low"] <= out["prediction"]).all()
        and (out["prediction"] <= out["hdi_high"]).all()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--table", "touchpoints", "--channels", "search,radio"], "unknown channels ['radio']"),
        (
            ["--table", "touchpoints", "--channels", "search", "--controls", "promo"],
            "controls ['promo'] are not in",
        ),
        (["--table", "nope", "--channels", "search"], "Table 'nope' does not exist"),
        (
            ["--table", "touchpoints", "--channels", "search", "--data", "x.csv"],
            "Give exactly one of a data file or a warehouse table",
        ),
        (
            ["--table", "touchpoints", "--channels", "search", "--lift-tests", "BAD"],
            "missing columns ['end_date'",
        ),
        (
            ["--table", "touchpoints", "--channels", "search", "--draws", "0", "--freq", "M"],
            "'draws': Input should be greater than or equal to 1, got 0",
        ),
        (["--table", "touchpoints", "--channels", "search", "--bounds", "search=5"], "'search=5' is not"),
        (  # the ESS gate could only fail, after the compile and the sampling
            ["--table", "touchpoints", "--channels", "search", *"--draws 200 --tune 200 --chains 2".split()],
            "draws x chains = 200 x 2 = 400 draws in all cannot give the bulk effective sample size the "
            "min_ess gate asks for (400); raise --draws or --chains (e.g. --draws 400) or lower --min-ess",
        ),
        (
            ["--table", "touchpoints", "--channels", "search", "--roas-prior", "tv=2:1"],
            "roas_prior names channels ['tv'] that are not among the channels ['search']",
        ),
        (
            ["--table", "touchpoints", "--channels", "search", "--roas-prior", "search=2"],
            "'search=2' is not CHANNEL=MEAN:SD",
        ),
        (
            ["--table", "touchpoints", "--channels", "search", "--geo-column", "geo"],
            "--geo-column needs a geo panel (one row per period and geo, one spend column per channel), "
            "not a touchpoint table",
        ),
        (
            ["--table", "touchpoints", "--channels", "search", "--contributions-out", "out.txt"],
            "--contributions-out must name a .csv or .parquet file, got 'out.txt'",
        ),
    ],
)
def test_bad_input_exits_2_before_the_flow_starts(
    home: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    bad_lift = tmp_path / "bad_lift.csv"
    bad_lift.write_text("channel,start_date\nsearch,2022-01-03\n")
    args = [str(bad_lift) if a == "BAD" else a for a in args]
    proc = cli(home, "mmm", "fit", "--target", "revenue", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert "MMMFlow" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_optimize_bad_input_exits_2(fitted: dict, home: Path) -> None:
    proc = cli(home, "mmm", "optimize", "--model", "nope", "--budget", "10", "--horizon", "2")
    assert proc.returncode == 2 and "No registered model 'nope' with the alias 'champion'" in proc.stderr
    proc = cli(
        home, "mmm", "optimize", *f"--model {MODEL} --budget 100 --horizon 2 --bounds radio=0:1".split()
    )
    assert proc.returncode == 2 and "bounds name unknown channel 'radio'" in proc.stderr


@pytest.mark.slow
def test_a_model_failing_a_gate_is_reported_not_registered(fitted: dict, home: Path) -> None:
    """The run still ends with a report; the CLI says which gate failed and what to try, and exits 2."""
    proc = cli(
        home,
        *fit_touchpoints(home),
        "--model-name",
        "mmm-strict",
        "--holdout",
        "0",
        "--horizon",
        "0",
        *SHORT,
        "--min-r2",
        "0.99999",
        "--time-varying-intercept",  # the option reaches the model (the report names the drifting level)
        "--json",
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "failed 1 diagnostics gate(s) and was not registered: r2" in proc.stderr
    assert "raise --yearly-seasonality to 4" in proc.stderr  # the CLI options, not Python calls
    summary = json.loads(proc.stdout)
    assert summary["registered"] is False and summary["budget_plan"] is None
    assert summary["diagnostics"]["failed_gates"][0].startswith("r2")
    html = Path(summary["report"]).read_text()
    assert "FAILED 1 diagnostics gate(s)" in html and "Not registered" in html and "No budget plan" in html
    assert "a level that drifts over quarterly knots" in html
    models = json.loads(cli(home, "models", "--json").stdout)
    assert "mmm-strict" not in {m["name"] for m in models}
