"""Each stored backtest has its own tables, and every window's score is defined (issue 16).

Runs on dated and on integer data share one warehouse without clashing on column types, and the MASE scale
falls back like ``conformal.insample_scale`` on short or constant histories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackml.errors import IdentifierError, TableNotFoundError
from stackml.forecasting.conformal import insample_scale
from stackml.forecasting.evaluation import (
    backtest_tables,
    evaluate,
    evaluate_by_series,
    evaluate_by_step,
    store_backtest,
    stored_runs,
)
from stackml.warehouse import connect
from stackml.warehouse.identifiers import validate_table_name


def backtest(
    seed: int, *, timestamps: bool, n_series: int = 3, h: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A one-window backtest of Naive2 and A with 80% intervals, on integer or hourly timestamps."""
    rng = np.random.default_rng(seed)
    cv_parts, train_parts = [], []
    for i in range(n_series):
        n = int(rng.integers(12, 20))
        ds = np.arange(n)
        if timestamps:
            ds = pd.Timestamp("2024-01-01") + pd.to_timedelta(ds, unit="h")
        y = rng.uniform(5, 15, n)
        train_parts.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
        window = pd.DataFrame(
            {"unique_id": f"s{i}", "ds": ds[n - h :], "cutoff": ds[n - h - 1], "y": y[n - h :]}
        )
        for model in ("A", "Naive2"):
            window[model] = window["y"] * rng.uniform(0.7, 1.3, h)
            window[f"{model}-lo-80"] = window[model] - 2
            window[f"{model}-hi-80"] = window[model] + 2
        cv_parts.append(window)
    return pd.concat(cv_parts, ignore_index=True), pd.concat(train_parts, ignore_index=True)


def alone(cv: pd.DataFrame, train: pd.DataFrame, m: int) -> list[pd.DataFrame]:
    """The three evaluations of a backtest stored by itself in a fresh warehouse: the reference."""
    with connect("duckdb:///:memory:") as wh:
        run = store_backtest(wh, cv, train)
        return [f(wh, run, season_length=m) for f in (evaluate, evaluate_by_step, evaluate_by_series)]


@pytest.mark.parametrize("dated_first", [True, False])
def test_runs_on_dated_and_integer_data_share_a_warehouse(warehouse_url, dated_first):
    dated, integer = backtest(0, timestamps=True), backtest(1, timestamps=False)
    runs = [("flow-1764412345678901", dated), ("M4 example", integer)]
    if not dated_first:
        runs.reverse()
    with connect(warehouse_url) as wh:
        for run_id, (cv, train) in runs:
            assert store_backtest(wh, cv, train, run_id=run_id) == run_id
        for run_id, (cv, train) in runs:
            got = [f(wh, run_id, season_length=2) for f in (evaluate, evaluate_by_step, evaluate_by_series)]
            for have, want in zip(got, alone(cv, train, 2), strict=True):
                pd.testing.assert_frame_equal(have, want, check_dtype=False, rtol=1e-12)
            assert {"owa", "coverage_80"} <= set(got[0].columns)
        index = stored_runs(wh)
        # other tests may store runs in the same server database: ours must be there, each once
        ours = index[index["run_id"].isin([r for r, _ in runs])]
        assert sorted(ours["run_id"]) == sorted(r for r, _ in runs)
        for row in ours.itertuples():
            assert (row.backtest_table, row.intervals_table, row.train_table) == tuple(
                backtest_tables("forecast_", row.run_id).values()
            )
            assert wh.has_table(row.backtest_table) and wh.has_table(row.train_table)


def test_storing_a_run_again_replaces_it_even_on_other_data():
    (cv, train), (dated_cv, dated_train) = backtest(2, timestamps=False), backtest(3, timestamps=True)
    with connect("duckdb:///:memory:") as wh:
        store_backtest(wh, cv, train, run_id="r")
        store_backtest(wh, cv, train, run_id="r")
        tables = backtest_tables("forecast_", "r")
        assert wh.row_count(tables["backtest"]) == len(cv) * 2 and len(stored_runs(wh)) == 1
        # the same id on dated data and without intervals: replaced, with the new column types
        bare = dated_cv[["unique_id", "ds", "cutoff", "y", "A", "Naive2"]]
        store_backtest(wh, bare, dated_train, run_id="r")
        assert wh.row_count(tables["backtest"]) == len(bare) * 2 and len(stored_runs(wh)) == 1
        assert "TIMESTAMP" in wh.schema(tables["backtest"])["ds"]
        assert not wh.has_table(tables["intervals"])  # the earlier copy's intervals went with it
        assert stored_runs(wh)["intervals_table"].isna().all()
        pd.testing.assert_frame_equal(evaluate(wh, season_length=1), alone(bare, dated_train, 1)[0])


def test_table_names_are_valid_distinct_and_readable():
    names = {
        run: backtest_tables("forecast_holdout_", run)
        for run in ("r1", "a-b", "a_b", "A_B", "Run 1", "3f2a0c1e-1234-4abc-9def-0123456789ab", "x" * 200, "")
    }
    assert names["r1"]["backtest"] == "forecast_holdout_backtest__r1"
    assert names["a-b"]["train"].startswith("forecast_holdout_train__a_b_")
    every = [table for tables in names.values() for table in tables.values()]
    assert len(set(every)) == len(every)  # different run ids never share a table
    assert all(validate_table_name(t) == t and len(t) <= 63 and t == t.lower() for t in every)
    assert backtest_tables("analytics.fc_", "r1")["intervals"] == "analytics.fc_intervals__r1"
    with pytest.raises(IdentifierError, match="not a valid identifier"):
        backtest_tables("bad prefix", "r1")


def test_a_missing_run_or_prefix_is_named():
    cv, train = backtest(4, timestamps=False)
    with connect("duckdb:///:memory:") as wh:
        with pytest.raises(TableNotFoundError, match=r"No backtest with run_id 'r'.*store_backtest"):
            evaluate(wh, "r", season_length=1)
        with pytest.raises(TableNotFoundError, match=r"No backtest is stored under the prefix 'forecast_'"):
            evaluate(wh, season_length=1)
        store_backtest(wh, cv, train, run_id="r", table_prefix="mine_")
        assert len(evaluate(wh, season_length=1, table_prefix="mine_")) == 2
        assert stored_runs(wh).empty and list(stored_runs(wh).columns)[0] == "run_id"


# -- every window has a finite MASE --------------------------------------------------------------------------
def oracle_mase(cv: pd.DataFrame, train: pd.DataFrame, m: int, model: str) -> float:
    """Mean over windows of the mean absolute error over insample_scale of the history up to the cutoff."""
    values = []
    for (uid, cutoff), g in cv.groupby(["unique_id", "cutoff"]):
        hist = train[(train.unique_id == uid) & (train.ds <= cutoff)].sort_values("ds")["y"].to_numpy()
        values.append(np.mean(np.abs(g["y"] - g[model])) / insample_scale(hist, m))
    return float(np.mean(values))


def test_the_mase_scale_falls_back_like_insample_scale(warehouse_url):
    # Each history is cut at its cutoff (one value before its end). short: 2 values, no more than the season
    # of 7 -> lag 1, |4 - 1| = 3; flat: the level 4; zero: 1; seasonal: lag 7; periodic: the lag-7 difference
    # is 0 on 13 values -> the mean level 49 / 13 (as insample_scale does, not lag 1).
    histories = {
        "short": [1.0, 4.0, 2.0],
        "flat": [4.0] * 10,
        "zero": [0.0] * 10,
        "seasonal": list(np.arange(10.0) ** 1.5),
        "periodic": [1.0, 2, 3, 4, 5, 6, 7] * 2,
    }
    train = pd.concat(
        [pd.DataFrame({"unique_id": k, "ds": range(len(v)), "y": v}) for k, v in histories.items()],
        ignore_index=True,
    )
    cv = pd.concat(
        [
            pd.DataFrame({"unique_id": k, "ds": [len(v) - 1], "cutoff": [len(v) - 2], "y": [v[-1]]})
            for k, v in histories.items()
        ],
        ignore_index=True,
    )
    cv["A"] = cv["y"] + 1.5
    cv["Naive2"] = cv["y"] - 0.5
    with connect(warehouse_url) as wh:
        run = store_backtest(wh, cv, train)
        got = evaluate(wh, run, season_length=7).set_index("model")
        by_series = evaluate_by_series(wh, run, season_length=7).set_index(["model", "unique_id"])
    assert np.isfinite(got[["smape", "mase", "owa"]].to_numpy()).all()
    for model in ("A", "Naive2"):
        assert got.loc[model, "mase"] == pytest.approx(oracle_mase(cv, train, 7, model), rel=1e-12)
    # the fallback scales one by one (A is 1.5 off everywhere)
    want = {"short": 1.5 / 3, "flat": 1.5 / 4, "zero": 1.5, "periodic": 1.5 / (49 / 13)}
    for uid, value in want.items():
        assert by_series.loc[("A", uid), "mase"] == pytest.approx(value), uid


def test_a_baseline_exact_everywhere_leaves_owa_undefined(warehouse_url):
    train = pd.DataFrame({"unique_id": "c", "ds": range(8), "y": 3.0})
    cv = pd.DataFrame({"unique_id": "c", "ds": [6, 7], "cutoff": 5, "y": 3.0, "Naive2": 3.0, "A": [3.5, 2.5]})
    with connect(warehouse_url) as wh:  # PostgreSQL would fail on a division by zero
        got = evaluate(wh, store_backtest(wh, cv, train), season_length=12).set_index("model")
    assert got.loc["Naive2", "smape"] == 0 and got.loc["Naive2", "mase"] == 0
    assert got.loc["A", "mase"] == pytest.approx(0.5 / 3)  # constant history: the scale is its level, 3
    assert got["owa"].dtype == np.float64 and got["owa"].isna().all()
