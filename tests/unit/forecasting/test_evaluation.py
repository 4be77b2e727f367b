"""Backtest evaluation in SQL, checked against a plain pandas oracle on random backtests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError, TableNotFoundError
from stackml.forecasting.evaluation import (
    backtest_tables,
    evaluate,
    evaluate_by_series,
    evaluate_by_step,
    store_backtest,
    stored_runs,
    to_long,
)
from stackml.warehouse import connect

MODELS = ["A", "B", "Naive2"]


@pytest.fixture
def wh():
    warehouse = connect("duckdb:///:memory:")
    yield warehouse
    warehouse.close()


def make_backtest(
    seed: int, *, n_series=5, n_windows=3, h=4, step=2, levels=(80, 95), timestamps=False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random wide backtest (``cv``) and the full long history it came from (``train``).

    Series have different lengths and start points; windows overlap (``step < h``), so the history after one
    cutoff holds the actuals of the next: only an evaluation that cuts the MASE scale at the cutoff gets it
    right.
    """
    rng = np.random.default_rng(seed)
    train_parts, cv_parts = [], []
    for i in range(n_series):
        n = int(rng.integers(25, 45))
        start = int(rng.integers(0, 6))
        ds = np.arange(start, start + n)
        if timestamps:
            ds = pd.Timestamp("2021-03-01") + pd.to_timedelta(ds, unit="h")
        y = rng.uniform(1, 20, n) * (1 + 0.5 * np.sin(np.arange(n)))
        uid = f"s{i}"
        train_parts.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
        for w in range(n_windows):
            end = n - h - (n_windows - 1 - w) * step  # index of the first forecast step
            window = pd.DataFrame(
                {"unique_id": uid, "ds": ds[end : end + h], "cutoff": ds[end - 1], "y": y[end : end + h]}
            )
            for model in MODELS:
                yhat = window["y"].to_numpy() * rng.uniform(0.6, 1.4, h)
                window[model] = yhat
                for level in levels:
                    width = rng.uniform(0, 6, h) * level / 80
                    window[f"{model}-lo-{level}"] = yhat - width
                    window[f"{model}-hi-{level}"] = yhat + width
            cv_parts.append(window)
    return pd.concat(cv_parts, ignore_index=True), pd.concat(train_parts, ignore_index=True)


# -- the oracle: the M4 definitions written out with loops over windows --------------------------------------
def _windows(cv: pd.DataFrame, train: pd.DataFrame, m: int):
    for (uid, cutoff), g in cv.groupby(["unique_id", "cutoff"]):
        hist = train[(train.unique_id == uid) & (train.ds <= cutoff)].sort_values("ds")["y"].to_numpy()
        scale = np.mean(np.abs(hist[m:] - hist[:-m]))
        yield g.sort_values("ds"), scale


def oracle_evaluate(cv, train, m, models, baseline="Naive2", levels=(80, 95)) -> pd.DataFrame:
    rows = []
    for model in models:
        smape, mase, rmse = [], [], []
        for g, scale in _windows(cv, train, m):
            err = g["y"] - g[model]
            smape.append(np.mean(200 * err.abs() / (g["y"].abs() + g[model].abs())))
            mase.append(np.mean(err.abs()) / scale)
            rmse.append(math.sqrt(np.mean(err**2)))
        row = {"model": model, "smape": np.mean(smape), "mase": np.mean(mase), "rmse": np.mean(rmse)}
        for level in levels:
            inside = (cv["y"] >= cv[f"{model}-lo-{level}"]) & (cv["y"] <= cv[f"{model}-hi-{level}"])
            row[f"coverage_{level}"] = inside.mean()
        rows.append(row)
    out = pd.DataFrame(rows).set_index("model")
    if baseline:
        base = out.loc[baseline]
        out["owa"] = 0.5 * (out["smape"] / base["smape"] + out["mase"] / base["mase"])
    return out


def oracle_by_step(cv, train, m, models) -> pd.DataFrame:
    rows = []
    for model in models:
        per_step: dict[int, list[tuple[float, float, float]]] = {}
        for g, scale in _windows(cv, train, m):
            for step, (y, f) in enumerate(zip(g["y"], g[model], strict=True), start=1):
                per_step.setdefault(step, []).append(
                    (200 * abs(y - f) / (abs(y) + abs(f)), abs(y - f) / scale, (y - f) ** 2)
                )
        for step, values in per_step.items():
            s, a, e = np.array(values).T
            rows.append(
                {"model": model, "h": step, "smape": s.mean(), "mase": a.mean(), "rmse": math.sqrt(e.mean())}
            )
    return pd.DataFrame(rows).set_index(["model", "h"])


# -- SQL against the oracle ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seed", "m", "timestamps"), [(0, 1, False), (1, 3, False), (2, 7, True), (3, 2, True)]
)
def test_evaluate_matches_oracle(wh, seed, m, timestamps):
    cv, train = make_backtest(seed, timestamps=timestamps)
    run_id = store_backtest(wh, cv, train)
    got = evaluate(wh, run_id, season_length=m).set_index("model")
    want = oracle_evaluate(cv, train, m, MODELS)
    cols = ["smape", "mase", "owa", "rmse", "coverage_80", "coverage_95"]
    pd.testing.assert_frame_equal(got.loc[MODELS, cols], want[cols], rtol=1e-10, check_names=False)
    assert got.loc["Naive2", "owa"] == pytest.approx(1.0)
    assert (got["n_series"] == 5).all() and (got["n_windows"] == 15).all() and (got["n_points"] == 60).all()
    assert got["owa"].is_monotonic_increasing  # best first


@pytest.mark.parametrize(("seed", "m"), [(4, 1), (5, 4)])
def test_evaluate_by_step_matches_oracle(wh, seed, m):
    cv, train = make_backtest(seed, h=5)
    run_id = store_backtest(wh, cv, train)
    got = evaluate_by_step(wh, run_id, season_length=m).set_index(["model", "h"])
    want = oracle_by_step(cv, train, m, MODELS)
    pd.testing.assert_frame_equal(got.loc[want.index, want.columns], want, rtol=1e-10, check_names=False)
    assert set(got.columns) >= {"n_points", "coverage_80", "coverage_95"}
    assert (got["n_points"] == 5 * 3).all()


def test_evaluate_by_series(wh):
    cv, train = make_backtest(6)
    run_id = store_backtest(wh, cv, train)
    got = evaluate_by_series(wh, run_id, season_length=2)
    assert len(got) == 5 * len(MODELS) and (got["n_windows"] == 3).all()
    one = got[(got.model == "A") & (got.unique_id == "s1")].iloc[0]
    sub = cv[cv.unique_id == "s1"]
    want = oracle_evaluate(sub, train, 2, ["A"], baseline=None).loc["A"]
    assert (one.smape, one.mase, one.rmse) == pytest.approx((want.smape, want.mase, want.rmse), rel=1e-10)
    # averaging the per-series numbers over series gives the overall score (every series has the same windows)
    overall = evaluate(wh, run_id, season_length=2).set_index("model")
    assert got.groupby("model")["mase"].mean()["B"] == pytest.approx(overall.loc["B", "mase"], rel=1e-12)


def test_mase_scale_uses_history_up_to_the_cutoff_only(wh):
    cv, train = make_backtest(7)
    first = evaluate(wh, store_backtest(wh, cv, train, run_id="a"), season_length=3)
    # Wild values after every cutoff would change a scale computed on the whole history.
    late = train.copy()
    last_cutoff = cv.groupby("unique_id")["cutoff"].max()
    late.loc[late.ds.to_numpy() > late.unique_id.map(last_cutoff).to_numpy(), "y"] *= 1000
    second = evaluate(wh, store_backtest(wh, cv, late, run_id="b"), season_length=3)
    pd.testing.assert_frame_equal(first, second)


def test_owa_needs_the_baseline(wh):
    cv, train = make_backtest(8)
    run_id = store_backtest(wh, cv, train, models=["A", "B"])
    with pytest.raises(InputError, match=r"OWA needs the baseline model 'Naive2'.*stored: \['A', 'B'\]"):
        evaluate(wh, run_id, season_length=1)
    with pytest.raises(InputError, match="OWA needs the baseline model 'C'"):
        evaluate(wh, run_id, season_length=1, baseline="C")
    no_owa = evaluate(wh, run_id, season_length=1, baseline=None)
    assert "owa" not in no_owa and no_owa["mase"].is_monotonic_increasing
    relative_to_a = evaluate(wh, run_id, season_length=1, baseline="A").set_index("model")
    assert relative_to_a.loc["A", "owa"] == pytest.approx(1.0)


def test_owa_needs_the_same_points(wh):
    cv, train = make_backtest(9)
    store_backtest(wh, cv, train, run_id="r", models=["Naive2"])
    # A model that skipped a series: its long points go straight into the same run.
    partial, _ = to_long(cv[cv.unique_id != "s0"], ["A"])
    wh.ingest(partial, backtest_tables("forecast_", "r")["backtest"], if_exists="append")
    n_a = len(partial)
    with pytest.raises(
        InputError, match=rf"needs every model to forecast the same points; these differ: A \({n_a} points\)"
    ):
        evaluate(wh, "r", season_length=1)
    assert len(evaluate(wh, "r", season_length=1, baseline=None)) == 2


def test_models_filter(wh):
    cv, train = make_backtest(10)
    run_id = store_backtest(wh, cv, train)
    got = evaluate(wh, run_id, season_length=1, models=["B"])
    assert got["model"].tolist() == ["B"]
    full = evaluate(wh, run_id, season_length=1).set_index("model")
    assert got.iloc[0]["owa"] == pytest.approx(full.loc["B", "owa"])
    with pytest.raises(InputError, match=r"has no forecasts of the models \['Z'\]"):
        evaluate(wh, run_id, season_length=1, models=["Z"])


def test_runs_append_replace_and_selection(wh):
    cv, train = make_backtest(11)
    with pytest.raises(TableNotFoundError, match="store_backtest"):
        evaluate(wh, season_length=1)
    store_backtest(wh, cv, train, run_id="one")
    only = evaluate(wh, season_length=1)  # one run: no need to name it
    store_backtest(wh, cv, train, run_id="one")  # same id again: replaced, not doubled
    assert wh.query("SELECT count(*) AS n FROM forecast_backtest__one").n[0] == len(cv) * len(MODELS)
    assert stored_runs(wh)["run_id"].tolist() == ["one"]
    pd.testing.assert_frame_equal(evaluate(wh, season_length=1), only)
    store_backtest(wh, cv, train, run_id="two")
    with pytest.raises(InputError, match=r"Pass run_id: 2 runs are stored under 'forecast_': \['one', 'two'"):
        evaluate(wh, season_length=1)
    with pytest.raises(InputError, match="No backtest with run_id 'three'"):
        evaluate(wh, "three", season_length=1)
    store_backtest(wh, cv, train, run_id="three", if_exists="replace")
    assert stored_runs(wh)["run_id"].tolist() == ["three"] and not wh.has_table("forecast_train__one")
    assert len(store_backtest(wh, cv, train, table_prefix="other_")) == 12  # generated id
    assert wh.has_table(stored_runs(wh, "other_")["intervals_table"][0])
    with pytest.raises(InputError, match="if_exists must be 'append' or 'replace'"):
        store_backtest(wh, cv, train, if_exists="fail")


def test_points_without_intervals_and_odd_levels(wh):
    cv, train = make_backtest(12, levels=(97.5,))
    cv = cv.drop(columns=[c for c in cv.columns if c.startswith("B-")])
    run_id = store_backtest(wh, cv, train, run_id="x")
    got = evaluate(wh, run_id, season_length=1).set_index("model")
    want = oracle_evaluate(cv, train, 1, ["A", "Naive2"], levels=())
    lo, hi = cv["A-lo-97.5"], cv["A-hi-97.5"]
    assert got.loc["A", "coverage_97_5"] == pytest.approx(((cv.y >= lo) & (cv.y <= hi)).mean())
    assert np.isnan(got.loc["B", "coverage_97_5"])
    assert got.loc["A", "smape"] == pytest.approx(want.loc["A", "smape"], rel=1e-12)
    # and with no intervals at all there are no coverage columns
    bare = cv[["unique_id", "ds", "cutoff", "y", "A", "Naive2"]]
    got = evaluate(
        wh, store_backtest(wh, bare, train, table_prefix="bare_"), season_length=1, table_prefix="bare_"
    )
    assert not [c for c in got.columns if c.startswith("coverage")]


def test_zero_actuals_missing_actuals_and_flat_histories(wh):
    train = pd.DataFrame(
        {"unique_id": ["a"] * 6 + ["b"] * 6, "ds": list(range(6)) * 2, "y": [1, 3, 2, 4, 0, 0] + [5.0] * 6}
    )
    cv = pd.DataFrame(
        {
            "unique_id": ["a", "a", "b", "b"],
            "ds": [4, 5, 4, 5],
            "cutoff": [3, 3, 3, 3],
            "y": [0.0, np.nan, 5.0, 5.0],
            "Naive2": [0.0, 1.0, 4.0, 6.0],
        }
    )
    got = evaluate(wh, store_backtest(wh, cv, train), season_length=1).iloc[0]
    # a: one scored point, y = yhat = 0 counts as a perfect sMAPE of 0; scale mean(|3-1|,|2-3|,|4-2|) = 5/3
    # b: a flat history falls back to its mean absolute level, 5, as scale: errors 1 and 1 give MASE 0.2
    assert got.n_points == 3 and got.n_windows == 2
    assert got.smape == pytest.approx((0 + (200 / 9 + 200 / 11) / 2) / 2)
    assert got.mase == pytest.approx((0 + 0.2) / 2)
    assert got.rmse == pytest.approx((0 + 1) / 2)


def test_to_long_shapes_and_errors():
    cv, _ = make_backtest(13, n_series=2, n_windows=2, h=3)
    points, intervals = to_long(cv)
    assert list(points.columns) == ["unique_id", "cutoff", "ds", "h", "model", "y", "yhat"]
    assert sorted(points["model"].unique()) == sorted(MODELS) and len(points) == 12 * 3
    assert all(hs == [1, 2, 3] for hs in points.groupby(["unique_id", "cutoff", "model"])["h"].apply(list))
    assert list(intervals.columns) == ["unique_id", "cutoff", "ds", "model", "level", "lo", "hi"]
    assert sorted(intervals["level"].unique()) == [80.0, 95.0] and len(intervals) == 12 * 3 * 2
    only_a, only_a_iv = to_long(cv, ["A"])
    assert set(only_a.model) == {"A"} and set(only_a_iv.model) == {"A"}
    with pytest.raises(InputError, match=r"lacks the columns \['cutoff'\]"):
        to_long(cv.drop(columns="cutoff"))
    with pytest.raises(InputError, match=r"no column for the models \['Q'\]"):
        to_long(cv, ["Q"])
    with pytest.raises(InputError, match="'A-lo-80' has no matching hi column"):
        to_long(cv.drop(columns="A-hi-80"))
    broken = cv.assign(B=np.where(cv.index == 0, np.inf, cv.B))
    with pytest.raises(InputError, match=r"must be finite.*\{'B': 1\}"):
        to_long(broken)


def test_bad_arguments(wh):
    cv, train = make_backtest(14)
    store_backtest(wh, cv, train, run_id="r")
    for bad in (0, 1.5, True, "24"):
        with pytest.raises(InputError, match="season_length must be a positive integer"):
            evaluate(wh, "r", season_length=bad)
    with pytest.raises(InputError, match=r"training frame lacks the columns \['y'\]"):
        store_backtest(wh, cv, train.drop(columns="y"))
    with pytest.raises(InputError, match="no rows for 1 series"):
        store_backtest(wh, cv, train[train.unique_id != "s2"])
    with pytest.raises(InputError, match="not a valid identifier"):
        store_backtest(wh, cv, train, table_prefix="bad prefix")
