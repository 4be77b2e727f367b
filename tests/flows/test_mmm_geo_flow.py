"""``stackml mmm fit --geo-column`` end to end on a simulated geo panel: fit, gates, the JSON with national
and per-geo ROAS, the weekly contributions file, the registry, the registered pyfunc per geo, ``stackml mmm
optimize --geo``, the report; and the options a geo model refuses, before any flow starts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.mmm import simulate_geo

CHANNELS = ("search", "tv")
MODEL = "mmm-panel"
# Tiny chains keep the test short; the sampler gates are relaxed to what such chains reach.
SHORT = "--draws 150 --tune 200 --chains 2 --seed 3 --min-ess 10 --max-rhat 1.3 --max-divergences 20".split()


@pytest.fixture(scope="module")
def sim():
    return simulate_geo(n_geos=3, n_periods=60, channels=CHANNELS, seed=4, small_geos=1)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, sim) -> Path:
    home = tmp_path_factory.mktemp("mmm_geo_home")
    sim.frame.to_csv(home / "panel.csv", index=False)
    return home


def fit_args(home: Path) -> list[str]:
    return [
        *f"mmm fit --data {home / 'panel.csv'} --geo-column geo --target revenue".split(),
        *["--channels", ",".join(CHANNELS), "--controls", "promo,price_index"],
    ]


@pytest.fixture(scope="module")
def fitted(home: Path, stackml_cli) -> dict:
    pytest.importorskip("pymc")
    pytest.importorskip("nutpie")
    proc = stackml_cli(
        home, *fit_args(home), *SHORT, "--contributions-out", str(home / "contributions.csv"), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_fit_prints_national_and_per_geo_roas(fitted: dict, sim) -> None:
    assert set(fitted["roas"]) == set(CHANNELS) == set(fitted["contribution_share"])
    for block in fitted["roas"].values():
        assert block["hdi_low"] <= block["mean"] <= block["hdi_high"]
    assert set(fitted["geos"]) == set(sim.geos)
    for geo in sim.geos:
        for channel in CHANNELS:
            roas = fitted["geos"][geo]["roas"][channel]
            assert roas["hdi_low"] <= roas["mean"] <= roas["hdi_high"]
    assert set(fitted["geo_spread"]) == set(CHANNELS)
    assert set(fitted["not_run"]) == {"time_slice_check", "budget_plan"} and fitted["budget_plan"] is None
    diagnostics = fitted["diagnostics"]
    assert diagnostics["passed"] is True and diagnostics["holdout_mape"] is None and diagnostics["r2"] > 0.5


def test_fit_writes_weekly_contributions_per_geo(fitted: dict, sim) -> None:
    table = pd.read_csv(fitted["contributions_out"], keep_default_na=False)
    assert list(table.columns) == ["date", "geo", "channel", "mean", "hdi_low", "hdi_high"]
    assert set(table["geo"]) == set(sim.geos) and len(table) == len(sim.frame) * len(CHANNELS)
    # national ROAS is every geo's contributions over every geo's spend
    spend = sim.frame[list(CHANNELS)].sum()
    for channel in CHANNELS:
        total = table.loc[table["channel"] == channel, "mean"].sum()
        assert total / spend[channel] == pytest.approx(fitted["roas"][channel]["mean"], rel=1e-6)


def test_fit_registers_and_reports_the_geos(fitted: dict, home: Path) -> None:
    assert fitted["model_name"] == MODEL and fitted["model_version"] == 1 and fitted["promoted"] is True
    html = Path(fitted["report"]).read_text()
    for text in (
        "Geos",
        "3 geos fitted in one hierarchical model",
        "ROAS per geo and channel",
        "Return on ad",
    ):
        assert text in html


def test_the_registered_pyfunc_predicts_each_geo(fitted: dict, home: Path, sim) -> None:
    from stackml import tracking
    from stackml.config import get_settings

    model = tracking.load_model(MODEL, settings=get_settings(home=home))
    rows = []
    for geo in ("geo_01", "geo_03"):
        last = sim.frame.loc[sim.frame["geo"] == geo, "date"].max()
        dates = pd.date_range(pd.Timestamp(last) + pd.Timedelta(days=7), periods=3, freq="7D")
        rows.append(pd.DataFrame({"date": dates, "geo": geo, "search": 1000.0, "tv": 2000.0}))
    out = model.predict(pd.concat(rows, ignore_index=True))
    assert list(out.columns) == ["date", "geo", "prediction", "hdi_low", "hdi_high"]
    assert list(out["geo"]) == ["geo_01"] * 3 + ["geo_03"] * 3
    assert (out["hdi_low"] <= out["prediction"]).all() and (out["prediction"] <= out["hdi_high"]).all()
    with pytest.raises(Exception, match="geos the model was not fitted on"):
        model.predict(rows[0].assign(geo="atlantis"))


def test_optimize_plans_one_geo_and_asks_which(fitted: dict, home: Path, stackml_cli) -> None:
    proc = stackml_cli(
        home, "mmm", "optimize", *f"--model {MODEL} --geo geo_02 --budget 20000 --horizon 4 --json".split()
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["geo"] == "geo_02"
    assert sum(a["total"] for a in plan["allocation"].values()) == pytest.approx(20000, rel=1e-6)
    asked = stackml_cli(home, "mmm", "optimize", *f"--model {MODEL} --budget 20000 --horizon 4".split())
    assert asked.returncode == 2 and "is fitted per geo; got no --geo" in asked.stderr
    assert "Traceback" not in asked.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lift-tests", "LIFT"], "lift tests cannot calibrate a geo model yet"),
        (["--time-varying-intercept"], "--time-varying-intercept is not offered for a geo model"),
        (["--geo-column", "market"], "missing columns ['market']"),
    ],
)
def test_what_a_geo_fit_refuses_exits_2_before_the_flow(
    home: Path, sim, stackml_cli, extra: list[str], message: str
) -> None:
    lift = home / "lift.csv"
    sim.lift_tests.drop(columns="geo").to_csv(lift, index=False)
    extra = [str(lift) if a == "LIFT" else a for a in extra]
    proc = stackml_cli(home, *fit_args(home), *extra)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr and "MMMFlow" not in proc.stderr


def test_a_panel_with_a_gap_names_the_geo(home: Path, sim, tmp_path: Path, stackml_cli) -> None:
    frame = sim.frame.drop(sim.frame[sim.frame["geo"] == "geo_02"].index[5:7])
    frame.to_csv(tmp_path / "gap.csv", index=False)
    args = [a if not a.endswith("panel.csv") else str(tmp_path / "gap.csv") for a in fit_args(home)]
    proc = stackml_cli(home, *args)
    assert proc.returncode == 2 and "geo 'geo_02'" in proc.stderr and "not evenly spaced" in proc.stderr
    assert isinstance(InputError("x"), ValueError)  # the CLI maps InputError (a ValueError) to exit 2
