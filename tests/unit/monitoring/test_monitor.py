"""One monitoring pass end to end in one process, on DuckDB and on PostgreSQL: a registered model with its
reference data, prediction-log rows in three windows (clean, shifted, clean again), and the alerts opened,
kept and resolved; ground truth joined by request id; freshness; the problems that do not stop a pass."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.monitoring.monitor import MonitorConfig, run_monitor

MODEL = "segments"
COLUMNS = ["spend", "visits", "tenure"]
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # the end of the first window; each window is one hour


def customers(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(0, 1, (n, 3)), columns=COLUMNS)
    frame["spend"] += shift
    frame["visits"] += shift
    return frame


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory):
    """A numeric clustering of 2,000 customers, registered with its training frame as reference data (above
    1,000 reference rows the drift tests are distances, which stay quiet on clean windows of 1,500 rows)."""
    from stackml.clustering.pipeline import ClusterConfig, run_pipeline
    from stackml.config import get_settings
    from stackml.pipelines import publish

    settings = get_settings(home=tmp_path_factory.mktemp("monitor_home"))
    frame = customers(2000, seed=0).assign(id=range(2000))[["id", *COLUMNS]]
    result = run_pipeline(frame, ClusterConfig(algorithm="kmeans", k=3, n_boot=0, fast=True))
    published = publish(result, frame, model_name=MODEL, settings=settings)
    assert published.model_version == 1
    return settings


def log(wh, rows: pd.DataFrame, end: datetime, version: int = 1, outputs: list | None = None) -> list[str]:
    """Prediction-log rows as `stackml serve` writes them, spread over the hour before ``end``."""
    if outputs is None:
        outputs = [{"cluster": int(c), "probability": 1.0} for c in rows["spend"] > 0]
    stamps = [end - timedelta(minutes=59) + timedelta(seconds=2 * i) for i in range(len(rows))]
    ids = [uuid.uuid4().hex for _ in range(len(rows))]
    entries = pd.DataFrame(
        {
            "request_id": ids,
            "row_index": np.zeros(len(rows), dtype="int32"),
            "model_name": MODEL,
            "model_version": np.full(len(rows), version, dtype="int32"),
            "model_alias": "champion",
            "logged_at": pd.to_datetime(stamps, utc=True),
            "inputs": [json.dumps(r) for r in rows[COLUMNS].to_dict("records")],
            "outputs": [json.dumps(o) for o in outputs],
        }
    )
    wh.ingest(entries, "prediction_log", if_exists="append")
    return ids


def config(tmp_path: Path | None = None, **changes) -> MonitorConfig:
    return MonitorConfig(model=MODEL, since="1h", **changes)


@pytest.mark.postgres
def test_drift_opens_one_alert_per_rule_keeps_it_and_resolves_it(
    registered, warehouse_url: str, tmp_path: Path
) -> None:
    from stackml.warehouse import connect

    with connect(warehouse_url) as wh:
        log(wh, customers(1500, seed=1), T0)
        log(wh, customers(1500, seed=2, shift=2.0), T0 + timedelta(hours=1))
        log(wh, customers(1500, seed=3, shift=2.0), T0 + timedelta(hours=2))
        log(wh, customers(1500, seed=4), T0 + timedelta(hours=3))

        def run(hours: int):
            return run_monitor(
                config(until=(T0 + timedelta(hours=hours)).isoformat()), settings=registered, warehouse=wh
            )

        clean = run(0).summary()
        assert clean["rows"] == 1500 and clean["reference_rows"] == 2000 and clean["version"] == 1
        assert set(clean["drift"]) == set(COLUMNS) and clean["dataset_drift"] is False
        assert all(d["test"] == "wasserstein" for d in clean["drift"].values())
        assert clean["alerts"] == [] and clean["quality"]["broken"] == 0

        shifted = run(1)
        summary = shifted.summary()
        assert summary["drift"]["spend"]["drifted"] and summary["drift"]["visits"]["drifted"]
        assert not summary["drift"]["tenure"]["drifted"] and summary["dataset_drift"] is True
        opened = {e["alert"]["rule"] for e in summary["alerts"] if e["action"] == "opened"}
        assert {"column_drifted", "dataset_drift"} <= opened
        assert summary["prediction_drift"]["drifted"] is True  # the shift moved the outputs too

        again = run(2).summary()
        assert {e["action"] for e in again["alerts"]} == {"still_open"}  # no second notification

        back = run(3).summary()
        resolved = {e["alert"]["rule"] for e in back["alerts"] if e["action"] == "resolved"}
        assert {"column_drifted", "dataset_drift"} <= resolved
        table = wh.query("SELECT rule, status FROM alerts ORDER BY id")
        assert set(table["status"]) == {"resolved"} and table["rule"].is_unique
        history = wh.query("SELECT DISTINCT window_end FROM monitor_metrics")
        assert len(history) == 4


@pytest.mark.postgres
def test_performance_joins_ground_truth_by_request_id(registered, warehouse_url: str) -> None:
    from stackml.warehouse import connect

    with connect(warehouse_url) as wh:
        rows = customers(120, seed=5)
        predicted = np.where(rows["spend"] > 0, "high", "low")
        ids = log(wh, rows, T0, outputs=[{"label": p, "probability": 0.9} for p in predicted])
        truth = predicted.copy()
        truth[:12] = np.where(truth[:12] == "high", "low", "high")  # ten percent wrong
        wh.ingest(pd.DataFrame({"request_id": ids, "label": truth}), "truth")
        result = run_monitor(
            config(until=T0.isoformat(), labels_table="truth"), settings=registered, warehouse=wh
        )
    performance = result.summary()["performance"]
    assert performance["n_labelled"] == 120 and performance["field"] == "label"
    assert performance["kind"] == "classification" and performance["accuracy"] == pytest.approx(0.9)
    assert result.checks.performance.by_bucket["n"].sum() == 120  # hourly buckets of a one-hour window


def test_a_pass_without_rows_or_tables_says_why_and_still_runs_what_it_can(
    registered, tmp_path: Path
) -> None:
    from stackml.warehouse import connect

    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        log(wh, customers(50, seed=6), T0)
        result = run_monitor(
            config(
                until=(T0 + timedelta(days=3)).isoformat(),
                labels_table="no_such_table",
                freshness=("prediction_log.logged_at=1h", "orders.created_at=6h"),
            ),
            settings=registered,
            warehouse=wh,
        )
    summary = result.summary()
    problems = " | ".join(summary["problems"])
    assert "no predictions of 'segments' v1 were logged" in problems
    assert "the labels table 'no_such_table' does not exist" in problems
    stale = {f["table"]: f for f in summary["freshness"]}
    assert stale["prediction_log"]["stale"] and stale["prediction_log"]["age_hours"] > 24
    assert stale["orders"]["stale"] and "does not exist" in stale["orders"]["reason"]
    opened = {e["alert"]["subject"] for e in summary["alerts"] if e["action"] == "opened"}
    assert opened == {"segments/prediction_log", "segments/orders"}  # the default stale-table rule


def test_an_unknown_model_is_named() -> None:
    from stackml.errors import StackmlError

    with pytest.raises(StackmlError, match="no_such_model"):
        run_monitor(MonitorConfig(model="no_such_model"))


def test_a_version_is_named_as_name_slash_version_or_name_at_alias(registered) -> None:
    from stackml import tracking
    from stackml.errors import RegistryError

    assert tracking.resolve_version(f"{MODEL}/1", settings=registered).version == 1
    assert tracking.resolve_version(f"{MODEL}@champion", settings=registered).run_id
    with pytest.raises(RegistryError, match=r"has no version '7'; its versions are \[1\]"):
        tracking.resolve_version(f"{MODEL}/7", settings=registered)


def test_the_quality_limits_are_settable(registered, tmp_path: Path) -> None:
    from stackml.warehouse import connect

    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        log(wh, customers(300, seed=7, shift=4.0), T0)  # far outside the training range

        def broken(**limits) -> set[str]:
            result = run_monitor(config(until=T0.isoformat(), **limits), settings=registered, warehouse=wh)
            return {c.check for c in result.checks.quality.checks if c.broken}

        assert "range" in broken()
        assert "range" not in broken(max_out_of_range=1.0)


def test_a_forced_test_and_key_columns_reach_the_checks(registered, tmp_path: Path) -> None:
    from stackml.warehouse import connect

    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        rows = customers(200, seed=8)
        log(wh, pd.concat([rows, rows.head(5)], ignore_index=True), T0)  # five rows logged twice
        result = run_monitor(
            config(until=T0.isoformat(), stattest="psi", threshold=0.3, keys=("spend",)),
            settings=registered,
            warehouse=wh,
        )
    summary = result.summary()
    assert {d["test"] for d in summary["drift"].values()} == {"psi"}
    assert {d["threshold"] for d in summary["drift"].values()} == {0.3}
    broken = {c["check"] for c in summary["quality"]["checks"] if c["broken"]}
    assert "duplicate_keys" in broken
