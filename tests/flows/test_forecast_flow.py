"""ForecastFlow end to end through the CLI: backtest, choose, register, promote, report; and the pyfunc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from stackml.forecasting import generate_series

H = 7


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKML_HOME", "METAFLOW_"))}
    env["STACKML_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args], capture_output=True, text=True, env=env, timeout=900
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("forecast_data")
    df = generate_series(
        n_series=3, freq="D", min_length=80, max_length=90, season_length=7, with_trend=True, random_state=5
    )
    paths = {"train": root / "shop.csv", "test": root / "shop_test.csv"}
    df.groupby("unique_id").head(-H).to_csv(paths["train"], index=False)
    df.groupby("unique_id").tail(H).to_csv(paths["test"], index=False)
    return paths


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("forecast_home")


@pytest.fixture(scope="module")
def first_run(home: Path, files: dict[str, Path]) -> dict:
    proc = cli(
        home,
        "forecast",
        "run",
        "--data",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--horizon",
        str(H),
        "--season",
        "7",
        "--models",
        "snaive,theta",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_json_scores_every_model_on_the_holdout(first_run: dict) -> None:
    assert set(first_run["models"]) >= {"SeasonalNaive", "Theta", "Naive2", "Ensemble2"}
    assert first_run["models"]["Naive2"]["owa"] == pytest.approx(1.0)
    assert first_run["best"] in first_run["models"] and first_run["scored_on"] == "holdout"
    for scores in first_run["models"].values():
        assert {"smape", "mase", "owa", "coverage_80", "coverage_95"} <= set(scores)


def test_json_says_why_the_choice_and_how_the_intervals_held(first_run: dict) -> None:
    assert first_run["why"] and first_run["season_length"] == 7 and first_run["seasonal_periods"] == [7]
    assert set(first_run["coverage"]) == {"backtest", "holdout"}
    assert set(first_run["coverage"]["holdout"]) == {"80", "95"}
    assert 0 <= first_run["coverage"]["backtest"]["80"] <= 1
    assert isinstance(first_run["holdout_gap_owa"], float) and first_run["skipped"] == {}


def test_runs_on_integer_and_dated_data_share_one_home(first_run: dict, home: Path, tmp_path: Path) -> None:
    # the first run stored dated backtests in this home; integer steps (the M4 files' kind) must not collide
    df = generate_series(n_series=3, freq=None, min_length=60, max_length=60, season_length=4, random_state=6)
    df.to_csv(tmp_path / "steps.csv", index=False)
    proc = cli(
        home, "forecast", "run", "--data", str(tmp_path / "steps.csv"), "--horizon", "4",
        "--models", "snaive,theta", "--no-register", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["scored_on"] == "backtest" and out["coverage"]["backtest"]


def test_registered_promoted_and_reported(first_run: dict, home: Path) -> None:
    assert first_run["model_version"] == 1 and first_run["promoted"] is True
    report = Path(first_run["report"])
    assert report.is_file() and report.parent == home / "reports"
    html = report.read_text()
    assert "Backtest accuracy per model" in html and "the best of" in html and "the worst of" in html
    assert (home / "reports" / "index.html").is_file()
    models = json.loads(cli(home, "models", "--json").stdout)
    assert models[0]["name"] == "forecast-shop" and "champion" in str(models[0]["aliases"])


def test_registered_pyfunc_forecasts_requested_series(
    first_run: dict, home: Path, files: dict[str, Path]
) -> None:
    from stackml import tracking
    from stackml.config import get_settings
    from stackml.errors import InputError

    tracking.configure(get_settings(home=home))
    model = tracking.load_model("forecast-shop")
    out = model.predict(pd.DataFrame({"unique_id": ["s1", "s0"], "h": [3, 3]}))
    assert sorted(out["unique_id"].unique()) == ["s0", "s1"] and len(out) == 6
    assert {"ds", "yhat", "yhat-lo-80", "yhat-hi-95"} <= set(out.columns)
    assert (out["yhat-lo-95"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat-hi-95"]).all()
    full = model.predict(pd.DataFrame({"unique_id": ["s2"]}))
    assert len(full) == H
    with pytest.raises(InputError, match=r"Unknown series \['nope'\]"):
        model.predict(pd.DataFrame({"unique_id": ["nope"]}))
    with pytest.raises(InputError, match="h must be between 1 and the trained horizon 7"):
        model.predict(pd.DataFrame({"unique_id": ["s0"], "h": [50]}))


def test_a_worse_candidate_on_the_same_backtest_is_not_promoted(
    first_run: dict, home: Path, files: dict[str, Path]
) -> None:
    proc = cli(
        home,
        "forecast",
        "run",
        "--data",
        str(files["train"]),
        "--horizon",
        str(H),
        "--season",
        "7",
        "--models",
        "naive",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    second = json.loads(proc.stdout)
    assert second["model_version"] == 2 and second["scored_on"] == "backtest"
    if second["promoted"] is False:  # Naive loses to the first run's choice on this seasonal panel
        models = json.loads(cli(home, "models", "--json").stdout)
        champion = [m for m in models if "champion" in str(m["aliases"])]
        assert [str(m["version"]) for m in champion] == ["1"]
    else:
        pytest.fail(f"a naive model should not beat {first_run['best']} on a seasonal panel: {second}")


def test_bad_input_fails_before_or_in_the_first_step(
    home: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    proc = cli(home, "forecast", "run", "--data", str(tmp_path / "missing.csv"), "--horizon", "7")
    assert proc.returncode == 2 and "file not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli(
        home, "forecast", "run", "--data", str(files["train"]), "--horizon", "7", "--models", "prophet"
    )
    assert proc.returncode == 2 and "Unknown model name 'prophet'" in proc.stderr
    proc = cli(home, "forecast", "run", "--data", str(files["train"]), "--horizon", "100", "--no-register")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # checked before the flow starts (issue 18, item 13): one line, no resume command to a run that never was
    assert "too short for a backtest with horizon 100" in proc.stderr and "resume" not in proc.stderr


@pytest.mark.postgres
def test_a_table_in_postgresql_runs_with_the_warehouse_option(
    home: Path, files: dict[str, Path], postgres_url: str
) -> None:
    """``--warehouse`` reaches the flow's steps: the table is read, and the backtest scored, in PostgreSQL."""
    from stackml.warehouse import connect

    with connect(postgres_url) as wh:
        wh.ingest(files["train"], "shop_sales", if_exists="replace")
    proc = cli(
        home,
        "forecast",
        "run",
        "--table",
        "shop_sales",
        "--warehouse",
        postgres_url,
        "--horizon",
        str(H),
        "--season",
        "7",
        "--models",
        "snaive",
        "--no-register",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (
        out["registered"] is False
        and out["registry_note"] == "Not registered (registration was switched off)."
    )
    assert out["models"]["Naive2"]["owa"] == pytest.approx(1.0)
    with connect(postgres_url) as wh:
        assert any(t.startswith("forecast_") for t in wh.tables())  # the backtest was stored and scored there
    missing = cli(home, "forecast", "run", "--table", "nope", "--warehouse", postgres_url, "--horizon", "7")
    assert missing.returncode == 2 and "Table 'nope' does not exist" in missing.stderr
