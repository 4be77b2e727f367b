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


def test_cli_demo_runs_every_pipeline_and_prints_the_report_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKML_", "METAFLOW_"))}
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
            "SELECT request_id LIKE 'event-%' AS streamed, count(*) AS n FROM prediction_log GROUP BY 1"
        )
        counts = dict(zip(logged["streamed"], logged["n"]))
        assert counts[False] == 2000  # the monitoring step's served customers
        if "skipping the stream step" not in proc.stdout:  # it runs wherever Redis does (CI makes sure)
            assert (
                counts[True] == 2000
            )  # the stream step's events; its two broken ones went to the dead letters
        alerts = wh.query("SELECT rule, status FROM alerts")
        assert "column_drifted" in set(alerts["rule"]) and set(alerts["status"]) == {"open"}
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
    } <= names
