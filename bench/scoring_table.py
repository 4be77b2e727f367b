"""Table scoring: rows per second and peak memory of `stackml score table` as the table grows.

Issue #15's table target: memory flat in table size (score_table bounds DuckDB's block cache to 64 MB while
it scans; without that bound DuckDB keeps the blocks it read, up to 80% of the machine's memory). A numeric
K-means segmentation (3 columns) is registered in a temporary home; tables of 100k, 1M and (by default) 3M
rows are loaded into DuckDB; each size is scored in its own process (`stackml.scoring.score_table`, default
chunk of 100,000 rows), whose peak resident memory is read from the kernel after it ends. The issue's 10M
rows: `--sizes 100000,1000000,10000000`.

    .venv/bin/python bench/scoring_table.py
    .venv/bin/python bench/scoring_table.py --sizes 100000,1000000 --chunk 50000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine_info, markdown_table, write_results

RESULTS = Path(__file__).parent / "results" / "scoring_table.md"
COLUMNS = ["spend", "visits", "tenure"]
MODEL = "bench-segments"


def customers(n: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).normal(0, 1, (n, 3)), columns=COLUMNS)


def prepare(home: Path, sizes: list[int]) -> str:
    from stackml.clustering.pipeline import ClusterConfig, run_pipeline
    from stackml.config import get_settings
    from stackml.pipelines import publish
    from stackml.warehouse import connect

    settings = get_settings(home=home)
    frame = customers(2000, 0).assign(id=range(2000))
    result = run_pipeline(frame, ClusterConfig(columns=COLUMNS, algorithm="kmeans", k=4, n_boot=0, fast=True))
    publish(result, frame, model_name=MODEL, settings=settings)
    url = f"duckdb:///{home / 'wh.duckdb'}"
    with connect(url) as wh:
        for n in sizes:
            wh.execute(
                f"CREATE OR REPLACE TABLE rows_{n} AS SELECT random() * 4 - 2 AS spend, "
                f"random() * 4 - 2 AS visits, random() * 4 - 2 AS tenure, i AS row_id FROM range({n}) t(i)"
            )
    return url


def worker(home: str, url: str, n: int, chunk: int) -> None:
    """Score one table in this process and print the result as JSON."""
    from stackml.config import get_settings
    from stackml.scoring import score_table
    from stackml.warehouse import connect

    settings = get_settings(home=Path(home))
    with connect(url) as wh:
        scored = score_table(wh, f"rows_{n}", MODEL, chunk=chunk, settings=settings)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(scored.as_dict() | {"peak_mib": peak_mib}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000,3000000")
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if args.worker:
        home, url, n = args.worker
        worker(home, url, int(n), args.chunk)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    home = Path(tempfile.mkdtemp(prefix="stackml-bench-score-"))
    url = prepare(home, sizes)
    rows = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--chunk", str(args.chunk), "--worker", str(home), url, str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        measured = json.loads(proc.stdout.strip().splitlines()[-1])
        print(measured, flush=True)
        rows.append(
            [n, measured["chunks"], measured["seconds"], measured["rows_per_second"], measured["peak_mib"]]
        )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    body = "\n".join(
        [
            f"`score_table` on DuckDB, a 4-cluster K-means on 3 columns, chunks of {args.chunk:,} rows; each "
            "size in a fresh process (peak RSS includes Python, pandas, MLflow and the model).\n",
            markdown_table(["rows", "chunks", "seconds", "rows/s", "peak RSS MiB"], rows),
            f"\nLoad average at the end: {load} (2 shared cores).",
        ]
    )
    print(body)
    if not args.no_write:
        info = machine_info(["duckdb", "pandas", "pyarrow", "mlflow"])
        write_results(
            RESULTS, "Scoring: a warehouse table in chunks", [".venv/bin/python", *sys.argv], info, body
        )
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
