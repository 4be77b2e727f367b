"""The demo on embedded defaults: the sample lands in the warehouse, every pipeline runs,
the index is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from stackml.config import get_settings
from stackml.demo import DemoContext, sample_step
from stackml.demo.sample import sample_path, store_sales
from stackml.reports import list_reports
from stackml.warehouse import connect


def test_bundled_sample_is_the_seeded_generator_output() -> None:
    bundled = pd.read_csv(sample_path(), parse_dates=["ds"])
    pd.testing.assert_frame_equal(bundled, store_sales(), check_dtype=False)


def test_sample_step_can_run_again(tmp_path: Path) -> None:
    ctx = DemoContext(settings=get_settings(home=tmp_path / "home"))
    sample_step(ctx)
    sample_step(ctx)  # replaces the demo table instead of failing on it
    with ctx.warehouse() as wh:
        assert wh.row_count("demo_store_sales") == 3650
    assert len(ctx.reports) == 2 and all(p.is_file() for p in ctx.reports)


def test_cli_demo_runs_every_pipeline_and_prints_the_report_path(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKML_", "METAFLOW_"))}
    env["STACKML_POSTGRES_URL"] = fresh_postgres_url  # the feature store step's online store
    proc = subprocess.run(
        [sys.executable, "-m", "stackml", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    home = tmp_path / ".stackml"
    index = home / "reports" / "index.html"
    assert f"Report index: {index}" in proc.stdout and index.is_file()
    pipelines = {entry.pipeline for entry in list_reports(home / "reports")}
    assert {"demo", "forecasting", "mmm", "attribution", "nlp", "cluster", "monitor"} <= pipelines, pipelines
    with connect(settings=get_settings(home=home)) as wh:
        assert wh.row_count("demo_store_sales") == 3650
        assert "demo_touchpoints" in wh.tables()
        assert wh.row_count("attribution_demo_journeys_paths") > 1000  # the attribution step's journeys
        assert wh.row_count("demo_support_messages") == 400
        assert wh.row_count("cluster_demo_support_messages_assignments") == 400
        logged = wh.query(
            "SELECT request_id LIKE 'event-%' AS streamed, count(*) AS n FROM prediction_log "
            "WHERE model_name = 'cluster-demo-customers' GROUP BY 1"
        )
        counts = dict(zip(logged["streamed"], logged["n"]))
        churn = wh.query("SELECT * FROM prediction_log WHERE model_name = 'churn-demo'")
        assert len(churn) == 3  # the feature store step's predictions on customer ids alone
        assert counts[False] == 2000  # the monitoring step's served customers
        if "skipping the stream step" not in proc.stdout:  # it runs wherever Redis does (CI makes sure)
            assert (
                counts[True] == 2000
            )  # the stream step's events; its two broken ones went to the dead letters
        alerts = wh.query("SELECT rule, subject, status FROM alerts")
        served = alerts[alerts["subject"] == "cluster-demo-customers"]
        assert "column_drifted" in set(served["rule"]) and set(served["status"]) == {"open"}
        # the feature store step: a late feed opened a freshness alert per view, its arrival resolved them
        stale = alerts[alerts["rule"] == "table_stale"]
        assert set(stale["subject"]) == {"features/last_order", "features/history"}, alerts
        assert set(stale["status"]) == {"resolved"}
        assert wh.row_count("demo_orders") > 5000
    assert "churn model AUC" in proc.stdout and "(the service read the features by id)" in proc.stdout
    models = json.loads(
        subprocess.run(
            [sys.executable, "-m", "stackml", "models", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        ).stdout
    )
    names = {m["name"] for m in models}
    assert {
        "forecast-demo-store-sales",
        "mmm-demo-touchpoints",
        "nlp-demo-support-messages",
        "cluster-demo-support-messages",
        "churn-demo",
    } <= names


def test_the_feature_store_step_without_postgresql_runs_the_offline_half(tmp_path: Path) -> None:
    from rich.console import Console

    from stackml.demo.features_demo import MODEL_NAME, features_step

    console = Console(record=True, width=200)
    ctx = DemoContext(settings=get_settings(home=tmp_path / "home"), console=console)
    ctx.settings.ensure_home()
    features_step(ctx)
    said = console.export_text()
    assert "churn model AUC" in said and f"registered as {MODEL_NAME} v1" in said
    assert "Skipping the online store: it lives in PostgreSQL. Set STACKML_POSTGRES_URL" in said
