"""One monitoring pass over a million logged predictions: how long each phase of `run_monitor` takes when the
rows come from the prediction log (JSON text taken apart by the warehouse) rather than from a frame.

A numeric model (K-means on 20 columns, 5,000 reference rows) is registered in a temporary home; 1,000,000
prediction-log rows, as `stackml serve` writes them, are loaded into DuckDB (and, with --postgres-url, into
PostgreSQL); then one pass with the default rules: gather (resolve the version, read the reference, extract
the 20 input fields and the output fields of every row in SQL), check (drift, quality, prediction drift
against the hour before), alerts. The issue's target: a million logged predictions checked in seconds.

    .venv/bin/python bench/monitoring_log.py                 # 1,000,000 rows, DuckDB
    .venv/bin/python bench/monitoring_log.py --rows 100000 --postgres-url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine_info, markdown_table, write_results

RESULTS = Path(__file__).parent / "results" / "monitoring_log.md"
COLUMNS = [f"x{i}" for i in range(20)]
MODEL = "bench-monitor"
END = datetime(2026, 12, 1, 12, tzinfo=UTC)


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    values = np.random.default_rng(seed).normal(0, 1, (n, len(COLUMNS)))
    values[:, :5] += shift  # a quarter of the columns move
    return pd.DataFrame(values.round(4), columns=COLUMNS)


def log_rows(rows: pd.DataFrame, end: datetime) -> pd.DataFrame:
    n = len(rows)
    seconds = np.linspace(3599, 1, n)
    stamps = pd.to_datetime(
        [end - timedelta(seconds=float(s)) for s in seconds[:: max(1, n // 1000)]], utc=True
    )
    logged_at = np.repeat(stamps.to_numpy(), int(np.ceil(n / len(stamps))))[:n]
    inputs = rows.to_json(orient="records", lines=True).splitlines()
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "row_index": np.zeros(n, dtype="int32"),
            "model_name": MODEL,
            "model_version": np.ones(n, dtype="int32"),
            "model_alias": "champion",
            "logged_at": pd.to_datetime(logged_at, utc=True),
            "inputs": inputs,
            "outputs": [json.dumps({"cluster": int(c), "probability": 1.0}) for c in (rows["x0"] > 0)],
        }
    )


def register(settings) -> None:  # noqa: ANN001
    from stackml.clustering.pipeline import ClusterConfig, run_pipeline
    from stackml.pipelines import publish

    reference = frame(5000, seed=0).assign(id=range(5000))[["id", *COLUMNS]]
    result = run_pipeline(reference, ClusterConfig(algorithm="kmeans", k=4, n_boot=0, fast=True))
    publish(result, reference, model_name=MODEL, settings=settings)


def one_pass(url: str, settings, n: int) -> dict[str, float]:  # noqa: ANN001
    from stackml.monitoring.monitor import MonitorConfig, run_monitor
    from stackml.warehouse import connect

    with connect(url) as wh:
        started = time.perf_counter()
        wh.ingest(log_rows(frame(n, seed=1, shift=0.5), END), "prediction_log", if_exists="replace")
        wh.ingest(
            log_rows(frame(n // 10, seed=2), END - timedelta(hours=1)), "prediction_log", if_exists="append"
        )
        load = time.perf_counter() - started
        started = time.perf_counter()
        result = run_monitor(
            MonitorConfig(model=MODEL, since="1h", until=END.isoformat()), settings=settings, warehouse=wh
        )
        total = time.perf_counter() - started
    summary = result.summary()
    drifted = [c for c, d in summary["drift"].items() if d["drifted"]]
    return {
        "rows": summary["rows"],
        "load s": load,
        "gather s": result.seconds["gather"],
        "check s": result.seconds["check"],
        "alerts s": result.seconds["alerts"],
        "pass s": total,
        "drifted": len(drifted),
        "alerts": len(summary["alerts"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres-url", default=None, help="also run on this PostgreSQL database")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from stackml.config import get_settings

    home = Path(tempfile.mkdtemp(prefix="stackml-bench-monitor-"))
    settings = get_settings(home=home)
    register(settings)
    engines = {"duckdb": f"duckdb:///{home / 'wh.duckdb'}"}
    if args.postgres_url:
        engines["postgres"] = args.postgres_url
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = []
    for engine, url in engines.items():
        measured = one_pass(url, settings, args.rows)
        rows.append([engine, *measured.values()])
        print(engine, measured, flush=True)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    headers = ["warehouse", "rows in window", "load s", "gather s", "check s", "alerts s", "pass s"]
    headers += ["columns drifted", "alert events"]
    body = "\n".join(
        [
            f"One `run_monitor` pass over {args.rows:,} logged predictions of a 20-column numeric model "
            f"(and {args.rows // 10:,} in the hour before, the baseline of prediction drift); 5 of the 20 "
            "columns shifted by half a standard deviation. `load` (writing the log, not part of a pass) is "
            "shown apart.\n",
            markdown_table(headers, rows),
            "\n`gather` resolves the version, reads the reference data from the tracking store and extracts "
            "the 20 input fields and 2 output fields of every row with the warehouse's JSON functions; "
            "`check` is drift (Wasserstein / Jensen-Shannon above 1,000 reference rows), quality and "
            "prediction drift; "
            "`alerts` evaluates the default rules and writes the alerts and the metric history.",
            f"\nLoad average before / after: {load_before} / {load_after} (2 shared cores).",
        ]
    )
    print(body)
    if not args.no_write:
        info = machine_info(["duckdb", "pandas", "numpy", "psycopg"])
        write_results(
            RESULTS,
            "Monitoring: one pass over the prediction log",
            [".venv/bin/python", *sys.argv],
            info,
            body,
        )
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
