"""Golden test: the official M4 Hourly benchmark scores, reproduced end to end.

Loads the full M4 Hourly train/test files (414 series, h = 48, m = 24), forecasts with our Naive,
SeasonalNaive and Naive2, stores the forecasts in a warehouse and scores them in SQL. The numbers must equal
the official table (``M4-Evaluation-and-Ranks.xlsx``) to three decimals.

The data live outside the repository: ``$STACKML_M4_DIR`` or ``<repo>/../shared/data/m4`` (see SOURCE.md
there). Without them the test is skipped, except on CI (``CI`` set), where missing data is a failure.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.errors import ConnectionFailedError
from stackml.forecasting.evaluation import backtest_tables, evaluate, store_backtest, stored_runs
from stackml.forecasting.m4 import M4_SPECS, load_m4_wide
from stackml.forecasting.models.baselines import Naive, Naive2, SeasonalNaive
from stackml.forecasting.panel import Panel
from stackml.warehouse import connect

REPO = Path(__file__).resolve().parents[2]
M4_DIR = Path(os.environ.get("STACKML_M4_DIR", REPO.parent / "shared" / "data" / "m4"))
HOURLY = M4_SPECS["Hourly"]

# Official M4 Hourly rows (sMAPE, MASE, OWA), keyed by the benchmark's id in the official table.
OFFICIAL = {
    "Naive": (43.003, 11.608, 3.593),
    "sNaive": (13.912, 1.193, 0.627),
    "Naive2": (18.383, 2.395, 1.000),
}
# Our alias -> the official id.
ALIASES = {"Naive": "Naive", "SeasonalNaive": "sNaive", "Naive2": "Naive2"}


def _require_data(*files: str) -> None:
    missing = [f for f in files if not (M4_DIR / f).is_file()]
    if missing:
        reason = f"M4 Hourly data not found in {M4_DIR} (missing {missing}); set STACKML_M4_DIR"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def hourly_backtest() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The test period as a one-window backtest frame with the three benchmarks' forecasts,
    and the train frame."""
    _require_data("Hourly-train.csv", "Hourly-test.csv")
    train, test = load_m4_wide(M4_DIR / "Hourly-train.csv", M4_DIR / "Hourly-test.csv", frequency="Hourly")
    lengths = train.groupby("unique_id", sort=False).size()
    panel = Panel(
        ids=lengths.index.to_numpy(),
        y=train["y"].to_numpy(),
        indptr=np.concatenate([[0], np.cumsum(lengths.to_numpy())]),
        season_length=HOURLY.season_length,
    )
    cv = test.copy()
    cv["cutoff"] = cv["unique_id"].map(lengths)  # the last training step of each series
    for model in (Naive(), SeasonalNaive(), Naive2()):
        cv[model.name] = model.fit(panel).predict(HOURLY.horizon).ravel()  # test rows follow panel order
    return cv, train


def _postgres_url() -> str:
    url = os.environ.get("STACKML_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        connect(url).close()
    except (ConnectionFailedError, ImportError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {url}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {url}")
    return url


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_and_prefix(request, tmp_path):
    if request.param == "duckdb":
        wh, prefix = connect(f"duckdb:///{tmp_path / 'wh.duckdb'}"), "forecast_"
    else:
        # A shared database: unique table names, dropped afterwards.
        wh, prefix = connect(_postgres_url()), f"test_m4_{uuid.uuid4().hex[:8]}_"
    yield wh, prefix
    if request.param == "postgres":
        for run_id in stored_runs(wh, prefix)["run_id"]:
            for table in backtest_tables(prefix, run_id).values():
                wh.execute(f'DROP TABLE IF EXISTS "{table}"')
        wh.execute(f'DROP TABLE IF EXISTS "{prefix}runs"')
    wh.close()


def test_m4_hourly_benchmarks_reproduce_the_official_scores(hourly_backtest, warehouse_and_prefix):
    cv, train = hourly_backtest
    wh, prefix = warehouse_and_prefix
    run_id = store_backtest(wh, cv, train, table_prefix=prefix)
    scores = evaluate(wh, run_id, season_length=HOURLY.season_length, table_prefix=prefix).set_index("model")

    assert (scores["n_series"] == HOURLY.n_series).all()
    assert (scores["n_points"] == HOURLY.n_series * HOURLY.horizon).all()
    for alias, official_id in ALIASES.items():
        smape, mase, owa = OFFICIAL[official_id]
        assert round(scores.loc[alias, "smape"], 3) == smape, alias
        assert round(scores.loc[alias, "mase"], 3) == mase, alias
        # The official OWA was computed from unrounded per-frequency numbers; it agrees within 0.001.
        assert scores.loc[alias, "owa"] == pytest.approx(owa, abs=1e-3), alias


def test_golden_numbers_are_the_official_table():
    """The constants above are the official table's Hourly rows, not numbers we produced."""
    _require_data("m4_official_point_results.csv")
    table = pd.read_csv(M4_DIR / "m4_official_point_results.csv").set_index("method_id")
    for official_id, (smape, mase, owa) in OFFICIAL.items():
        row = table.loc[official_id]
        assert (row["sMAPE_Hourly"], row["MASE_Hourly"]) == (smape, mase), official_id
        assert row["OWA_Hourly"] == pytest.approx(owa, abs=1e-3), official_id
