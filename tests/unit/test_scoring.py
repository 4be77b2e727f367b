"""Table scoring on DuckDB and PostgreSQL: every row scored in chunks, the output replaced at once, a failure
leaving the old output alone; bad input named; the CLI command through a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError, StackmlError
from stackml.scoring import score_table

MODEL = "segments"
COLUMNS = ["spend", "visits", "tenure"]


def customers(n: int, seed: int) -> pd.DataFrame:
    frame = pd.DataFrame(np.random.default_rng(seed).normal(0, 1, (n, 3)), columns=COLUMNS)
    return frame.assign(customer=[f"c{i}" for i in range(n)])


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory):
    """A numeric K-means segmentation registered in a home of its own; returns its settings and the fit."""
    from stackml.clustering.pipeline import ClusterConfig, run_pipeline
    from stackml.config import get_settings
    from stackml.pipelines import publish

    settings = get_settings(home=tmp_path_factory.mktemp("score_home"))
    frame = customers(500, seed=0).drop(columns=["customer"]).assign(id=range(500))
    result = run_pipeline(frame, ClusterConfig(columns=COLUMNS, algorithm="kmeans", k=3, n_boot=0, fast=True))
    assert publish(result, frame, model_name=MODEL, settings=settings).model_version == 1
    return settings, result


@pytest.mark.postgres
def test_every_row_is_scored_in_chunks_into_one_new_table(registered, warehouse_url: str) -> None:
    from stackml.warehouse import connect

    settings, result = registered
    rows = customers(2_345, seed=1)
    seen: list[tuple[int, int]] = []
    with connect(warehouse_url) as wh:
        wh.ingest(rows, "customers")
        scored = score_table(
            wh, "customers", MODEL, chunk=1_000, settings=settings, progress=lambda d, t: seen.append((d, t))
        )
        out = wh.query("SELECT * FROM customers_scored ORDER BY customer")
    assert scored.out == "customers_scored" and scored.rows == 2_345 and scored.chunks == 3
    assert seen == [(1_000, 2_345), (2_000, 2_345), (2_345, 2_345)] and scored.version == 1
    assert list(out.columns) == [*COLUMNS, "customer", "cluster", "probability", "name", "keywords"]
    expected = result.model.predict(rows.sort_values("customer")[COLUMNS])
    assert out["cluster"].tolist() == expected.tolist()


@pytest.mark.postgres
def test_a_failed_run_leaves_the_old_output_as_it_was(registered, warehouse_url: str) -> None:
    from stackml.warehouse import connect

    settings, _ = registered
    with connect(warehouse_url) as wh:
        wh.ingest(customers(50, seed=2), "customers")
        score_table(wh, "customers", MODEL, out="scores", settings=settings)
        bad = customers(50, seed=3).astype({"spend": object})
        bad.loc[30, "spend"] = "not a number"  # the model's signature refuses it in the first chunk
        wh.ingest(bad, "customers", if_exists="replace")
        with pytest.raises(InputError, match=r"refused rows 20-39 of the table"):
            score_table(wh, "customers", MODEL, out="scores", chunk=20, settings=settings)
        assert wh.row_count("scores") == 50  # the first run's output, whole


def test_bad_input_is_named(registered, tmp_path: Path) -> None:
    from stackml.warehouse import connect

    settings, _ = registered
    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        wh.ingest(customers(10, seed=4).drop(columns=["tenure"]), "customers")
        with pytest.raises(InputError, match=r"lacks the column\(s\) \['tenure'\]"):
            score_table(wh, "customers", MODEL, settings=settings)
        with pytest.raises(InputError, match="the output table is the input table"):
            score_table(wh, "customers", MODEL, out="customers", settings=settings)
        with pytest.raises(InputError, match="'chunk' must be a positive number of rows, got 0"):
            score_table(wh, "customers", MODEL, chunk=0, settings=settings)
        with pytest.raises(StackmlError, match="no_such_table"):
            score_table(wh, "no_such_table", MODEL, settings=settings)
        with pytest.raises(StackmlError, match="no_such_model"):
            score_table(wh, "customers", "no_such_model", settings=settings)


def test_the_cli_scores_a_table_and_prints_json(registered, tmp_path: Path) -> None:
    settings, _ = registered
    warehouse = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    from stackml.warehouse import connect

    with connect(warehouse) as wh:
        wh.ingest(customers(300, seed=5), "customers")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKML_HOME", "METAFLOW_"))}
    env |= {"STACKML_HOME": str(settings.home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    args = ["score", "table", "--table", "customers", "--model", f"{MODEL}@champion", "-w", warehouse]
    proc = subprocess.run(
        [sys.executable, "-m", "stackml", *args, "--chunk", "128", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["rows"] == 300 and summary["chunks"] == 3 and summary["out"] == "customers_scored"
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackml",
            "score",
            "table",
            "--table",
            "nope",
            "--model",
            MODEL,
            "-w",
            warehouse,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "nope" in bad.stderr
