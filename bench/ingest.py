"""Benchmark: ``stackml ingest`` against ``pandas.read_csv`` + ``DataFrame.to_sql``, on DuckDB and PostgreSQL.

Issue #2's target: at least 10x the rows/s of the pandas baseline on both engines, and peak memory flat in the
file size. One run measures both engines side by side on the same seeded synthetic CSV and writes
``bench/results/ingest.md``.

How each number is taken:
  * every case runs in its own subprocess; wall time and peak RSS (``ru_maxrss`` from ``os.wait4``) are that
    process's alone;
  * ``stackml`` is the real CLI (``stackml ingest FILE --table ... --if-exists replace --json``) and its
    rows/s is rows over the *whole process* wall time, interpreter start-up, imports and connecting included;
  * the baseline is ``pd.read_csv(path, parse_dates=[...])`` then ``df.to_sql(table, engine, index=False)``
    with pandas' defaults otherwise (``method=None``, ``chunksize=None``) through SQLAlchemy
    (``duckdb_engine`` and ``psycopg``); its rows/s is rows over read_csv + to_sql time measured inside the
    worker, start-up and imports excluded, which favours the baseline;
  * the PostgreSQL baseline loads the whole file; the DuckDB one loads the first ``--baseline-rows-duckdb``
    rows (500k), because pandas' default path into DuckDB inserts a few thousand rows/s (5M rows:
    over ten minutes).

Run from the repository root:
    .venv/bin/python bench/ingest.py                      # 5M rows, writes bench/results/ingest.md
    .venv/bin/python bench/ingest.py --rows 200000 --memory-rows 50000,400000 --baseline-rows-duckdb 20000 \
        --baseline-rows-postgres 20000 --multi-rows 2000 --repeat 1 --no-write   # a one-minute smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, Measured, machine_info, markdown_table, run_measured, write_results

# A database of its own: the integration tests drop every table in `test` between tests and assert exact table
# lists there, so a benchmark table in `test` and a concurrent test run would break each other.
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/stackml_bench"
RESULTS = REPO / "bench" / "results" / "ingest.md"
TABLE = "bench_ingest"
BASELINE_TABLE = "bench_ingest_baseline"
TARGET_RATIO = 10.0
# "Flat": past the warm-up, a file twice as large may raise peak RSS by at most this fraction.
FLAT_TOLERANCE = 0.20
GENERATOR_CHUNK = 500_000
CATEGORIES = [
    "books",
    "electronics",
    "garden",
    "grocery",
    "toys",
    "sports",
    "beauty",
    "home",
    "auto",
    "music",
]
# Includes values that need CSV quoting (a comma, embedded quotes) and non-ASCII text.
CITIES = ["London", "Paris", "Washington, D.C.", "São Paulo", "Tokyo", "Berlin", "Lagos", 'The "Quoted" Town']


# -- data ----------------------------------------------------------------------------------------------------
def make_csv(path: Path, rows: int, seed: int) -> None:
    """Write a seeded synthetic sales CSV of ``rows`` rows: ints, a timestamp, strings, floats,
    a nullable column, bools.

    Generated in chunks so the generator's own memory stays small; the same (rows, seed) gives the same bytes.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    start_ts = np.datetime64("2024-01-01T00:00:00", "s")
    categories, cities = np.array(CATEGORIES), np.array(CITIES)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("event_time", pa.timestamp("s")),
            ("customer_id", pa.int64()),
            ("category", pa.string()),
            ("city", pa.string()),
            ("price", pa.float64()),
            ("quantity", pa.int64()),
            ("discount", pa.float64()),
            ("is_member", pa.bool_()),
        ]
    )
    partial = path.with_suffix(".partial")
    with pacsv.CSVWriter(partial, schema, write_options=pacsv.WriteOptions(quoting_style="needed")) as writer:
        for first in range(0, rows, GENERATOR_CHUNK):
            n = min(GENERATOR_CHUNK, rows - first)
            discount = pa.array(np.round(rng.uniform(0, 0.5, n), 3), mask=rng.random(n) < 0.1)
            chunk = {
                "id": np.arange(first + 1, first + n + 1),
                "event_time": start_ts + rng.integers(0, 365 * 86_400, n).astype("timedelta64[s]"),
                "customer_id": rng.integers(1, 200_000, n),
                "category": categories[rng.integers(0, len(categories), n)],
                "city": cities[rng.integers(0, len(cities), n)],
                "price": np.round(rng.lognormal(3, 1, n), 2),
                "quantity": rng.integers(1, 21, n),
                "discount": discount,
                "is_member": rng.random(n) < 0.3,
            }
            writer.write_table(pa.table(chunk, schema=schema))
    partial.rename(path)  # only a complete file is ever reused from the cache


def cached_csv(data_dir: Path, rows: int, seed: int) -> Path:
    path = data_dir / f"ingest_{rows}_seed{seed}.csv"
    if not path.exists():
        print(f"generating {rows:,} rows -> {path}", flush=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        make_csv(path, rows, seed)
    return path


# -- cases ---------------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One measured load, already reduced over its repeats."""

    engine: str
    method: str
    rows: int
    wall_s: float  # the whole subprocess
    load_s: float  # the load alone, as the process timed it
    rows_per_s: float
    peak_rss_mb: float
    file_mb: float
    note: str = ""


def stackml_command() -> list[str]:
    script = Path(sys.executable).with_name("stackml")
    return (
        [str(script)] if script.exists() else [sys.executable, "-c", "from stackml.cli import main; main()"]
    )


def run_stackml(
    engine: str, url: str, csv: Path, rows: int, repeat: int, env: dict[str, str], pg_url: str
) -> Case:
    """Run the real CLI ``repeat`` times on a fresh target;
    keep the median wall time and the largest peak RSS."""
    runs: list[tuple[Measured, dict]] = []
    for _ in range(repeat):
        reset_target(engine, url, pg_url, TABLE)
        cmd = stackml_command() + [
            "ingest",
            str(csv),
            "--table",
            TABLE,
            "--if-exists",
            "replace",
            "--warehouse",
            url,
        ]
        measured = run_measured(cmd + ["--json"], env=env).check(f"stackml ingest into {engine}")
        report = json.loads(measured.stdout)
        loaded = count_rows(engine, url, pg_url, TABLE)
        if report["rows"] != rows or loaded != rows:
            sys.exit(
                f"stackml ingest into {engine} reported {report['rows']} rows and the table holds {loaded}; "
                f"expected {rows}"
            )
        runs.append((measured, report))
    reset_target(engine, url, pg_url, TABLE)
    wall = statistics.median(m.seconds for m, _ in runs)
    return Case(
        engine=engine,
        method="stackml ingest",
        rows=rows,
        wall_s=wall,
        load_s=statistics.median(r["seconds"] for _, r in runs),
        rows_per_s=rows / wall,
        peak_rss_mb=max(m.peak_rss_mb for m, _ in runs),
        file_mb=csv.stat().st_size / 2**20,
        note=f"median of {repeat}" if repeat > 1 else "",
    )


def run_baseline(
    engine: str, url: str, csv: Path, rows: int, env: dict[str, str], pg_url: str, method: str, chunksize: int
) -> Case:
    """Run pandas read_csv + to_sql in a worker subprocess; rows/s from the worker's own timing."""
    reset_target(engine, url, pg_url, BASELINE_TABLE)
    cmd = [
        sys.executable,
        __file__,
        "baseline-worker",
        "--url",
        sqlalchemy_url(url),
        "--csv",
        str(csv),
        "--rows",
        str(rows),
        "--method",
        method,
        "--chunksize",
        str(chunksize),
    ]
    measured = run_measured(cmd, env=env).check(f"the pandas baseline into {engine}")
    report = json.loads(measured.stdout.strip().splitlines()[-1])
    loaded = count_rows(engine, url, pg_url, BASELINE_TABLE)
    reset_target(engine, url, pg_url, BASELINE_TABLE)
    if loaded != rows:
        sys.exit(f"the pandas baseline into {engine} left {loaded} rows; expected {rows}")
    label = "read_csv + to_sql" + ("" if method == "default" else f" (method='multi', chunksize={chunksize})")
    return Case(
        engine=engine,
        method=label,
        rows=rows,
        wall_s=measured.seconds,
        load_s=report["seconds"],
        rows_per_s=rows / report["seconds"],
        peak_rss_mb=measured.peak_rss_mb,
        file_mb=csv.stat().st_size / 2**20,
    )


def baseline_worker(args: argparse.Namespace) -> None:
    """The pandas baseline, run inside its own process so its memory is measured alone."""
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(args.url)
    started = time.perf_counter()
    frame = pd.read_csv(args.csv, nrows=args.rows, parse_dates=["event_time"])
    read_s = time.perf_counter() - started
    if args.method == "default":
        frame.to_sql(BASELINE_TABLE, engine, index=False)
    else:
        frame.to_sql(BASELINE_TABLE, engine, index=False, method="multi", chunksize=args.chunksize)
    seconds = time.perf_counter() - started
    engine.dispose()
    print(
        json.dumps(
            {
                "rows": len(frame),
                "seconds": seconds,
                "read_seconds": read_s,
                "write_seconds": seconds - read_s,
            }
        )
    )


# -- targets -------------------------------------------------------------------------------------------------
def sqlalchemy_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url  # duckdb:////abs/path.duckdb is duckdb_engine's form too


def duckdb_path(url: str) -> Path:
    return Path(url.removeprefix("duckdb://")[1:])


def reset_target(engine: str, url: str, pg_url: str, table: str) -> None:
    """Give each run an empty target: a new DuckDB file, or no such table in PostgreSQL."""
    if engine == "duckdb":
        path = duckdb_path(url)
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)
    else:
        import psycopg

        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f'DROP TABLE IF EXISTS "{table}"')


def count_rows(engine: str, url: str, pg_url: str, table: str) -> int:
    if engine == "duckdb":
        import duckdb

        with duckdb.connect(str(duckdb_path(url)), read_only=True) as con:
            return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def prepare_postgres(pg_url: str) -> str:
    """Create the benchmark database when missing (through the server's `postgres` database);
    return the version."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(pg_url)
    try:
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=5) as con:
            return con.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            sys.exit(
                f"Cannot reach PostgreSQL at {pg_url}: {exc}\n"
                "Start it, pass --postgres-url, or --engines duckdb."
            )
    with psycopg.connect(make_conninfo(pg_url, dbname="postgres"), autocommit=True, connect_timeout=5) as con:
        con.execute(f'CREATE DATABASE "{params["dbname"]}"')
        return con.execute("SHOW server_version").fetchone()[0]


# -- report --------------------------------------------------------------------------------------------------
def ours(cases: list[Case], engine: str) -> list[Case]:
    return sorted(
        (c for c in cases if c.engine == engine and c.method == "stackml ingest"), key=lambda c: c.rows
    )


def verdicts(cases: list[Case], rows: int) -> list[tuple[str, str, bool]]:
    """(target, measured, passed) for each engine's speed-up and memory flatness."""
    out = []
    for engine in dict.fromkeys(c.engine for c in cases):
        main_case = next(c for c in ours(cases, engine) if c.rows == rows)
        base = next(c for c in cases if c.engine == engine and c.method == "read_csv + to_sql")
        ratio = main_case.rows_per_s / base.rows_per_s
        out.append(
            (
                f"{engine}: >= {TARGET_RATIO:.0f}x the baseline's rows/s",
                f"{ratio:.1f}x",
                ratio >= TARGET_RATIO,
            )
        )
        sizes = ours(cases, engine)
        if len(sizes) >= 2:
            below, top = sizes[-2], sizes[-1]
            growth = top.peak_rss_mb / below.peak_rss_mb - 1
            target = (
                f"{engine}: peak RSS flat in file size "
                f"(<= +{FLAT_TOLERANCE:.0%} from {below.rows:,} to {top.rows:,} rows)"
            )
            measured = (
                f"{below.peak_rss_mb:.0f} MB -> {top.peak_rss_mb:.0f} MB ({growth:+.0%}) "
                f"for a {top.file_mb / below.file_mb:.1f}x larger file"
            )
            out.append((target, measured, growth <= FLAT_TOLERANCE))
    return out


def results_table(cases: list[Case], rows: int) -> str:
    base_rate = {c.engine: c.rows_per_s for c in cases if c.method == "read_csv + to_sql"}
    body = []
    for c in cases:
        ratio = c.rows_per_s / base_rate[c.engine] if c.engine in base_rate else float("nan")
        label = c.method + (
            f" (first {c.rows:,} rows)" if c.method != "stackml ingest" and c.rows < rows else ""
        )
        body.append(
            [
                c.engine,
                label,
                c.rows,
                round(c.file_mb, 1),
                c.wall_s,
                c.load_s,
                round(c.rows_per_s),
                round(c.peak_rss_mb),
                f"{ratio:.1f}x",
                c.note,
            ]
        )
    headers = [
        "engine",
        "method",
        "rows",
        "file MB",
        "wall s",
        "load s",
        "rows/s",
        "peak RSS MB",
        "vs baseline",
        "note",
    ]
    return markdown_table(headers, body)


def report_body(cases: list[Case], args: argparse.Namespace, pg_version: str, load: str) -> str:
    checks = verdicts(cases, args.rows)
    verdict_rows = [[target, got, "PASS" if ok else "FAIL"] for target, got, ok in checks]
    extent = {
        engine: f"the first {n:,} rows of the same file" if n < args.rows else "the whole file"
        for engine, n in baseline_sizes(args).items()
    }
    prefix = (
        f"{extent['postgres']} on PostgreSQL and {extent['duckdb']} on DuckDB"
        if len(extent) == 2
        else next(iter(extent.values()))
    )
    if any(n < args.rows for n in baseline_sizes(args).values()):
        prefix += (
            " (rows/s is per-row throughput, so a prefix keeps the ratio comparable; pandas' default path "
            "into DuckDB inserts a few thousand rows/s, so the whole file would take over ten minutes)"
        )
    repeat = f" Median of {args.repeat} runs; peak RSS is the largest of them." if args.repeat > 1 else ""
    base = {c.engine: c.rows_per_s for c in cases if c.method == "read_csv + to_sql"}
    multi = {c.engine: c.rows_per_s / base[c.engine] for c in cases if "multi" in c.method}
    multi_note = (
        "- `method='multi'` (one multi-row INSERT per chunk of 3,333 rows) is an extra reference only; its "
        "rows/s relative to pandas' default: " + ", ".join(f"{e} {r:.2f}x" for e, r in multi.items()) + "."
        if multi
        else ""
    )
    return f"""
## Targets

{markdown_table(["target", "measured", "verdict"], verdict_rows)}

## Results

{results_table(cases, args.rows)}

## How it was measured

- Data: a seeded synthetic sales CSV (seed {args.seed}): `id` and `customer_id` (int), \
`event_time` (timestamp),
  `category` and `city` (strings, some needing CSV quoting, some non-ASCII), `price` (float), \
`quantity` (int),
  `discount` (float, 10% empty), `is_member` (bool).
- `stackml ingest`: the real CLI, \
`stackml ingest FILE --table {TABLE} --if-exists replace --warehouse URL --json`,
  in its own process, into a new DuckDB file or a dropped-first PostgreSQL table; \
every run's row count is checked.
  **rows/s = rows / wall s of the whole process** (interpreter start-up, imports and connecting included); \
`load s`
  is the time the CLI itself reports for the load.{repeat}
- Baseline, the common reference on both engines: \
`pd.read_csv(path, nrows=N, parse_dates=["event_time"])` then
  `df.to_sql(table, sqlalchemy_engine, index=False)` with pandas' other defaults (`method=None`, \
`chunksize=None`),
  through SQLAlchemy with `duckdb_engine` (DuckDB) and `psycopg` 3 (PostgreSQL). \
**Its rows/s = rows / (read_csv +
  to_sql) timed inside the worker**, start-up and imports excluded, which favours the baseline. \
It ran on {prefix}.
  `parse_dates` is there so both paths create a real timestamp column.
- `vs baseline` is each row's rows/s over the default baseline's rows/s on the same engine.
- Memory: peak RSS is `ru_maxrss` of the measured process (from `os.wait4`), client side only (the PostgreSQL
  server's memory is not included). `stackml ingest` ran at {len(ours(cases, cases[0].engine))} file sizes. \
Peak RSS
  first rises while reader buffers and allocator caches warm up, \
so the flatness target compares the two largest
  files. DuckDB's buffer pool also keeps the blocks of the table it has just written (an evictable cache, \
bounded
  only by DuckDB's `memory_limit`, by default 80% of RAM), \
which adds RSS in proportion to the table's compressed
  size.
{multi_note}
- PostgreSQL {pg_version} ran on the same machine, \
so its COPY work competed with the client for the same cores.
  Load average (1 min) before and after the run: {load}; \
on a shared machine other work competes for the cores too.
"""


# -- main ----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    worker = sub.add_parser("baseline-worker", help=argparse.SUPPRESS)
    worker.add_argument("--url", required=True)
    worker.add_argument("--csv", required=True)
    worker.add_argument("--rows", type=int, required=True)
    worker.add_argument("--method", choices=["default", "multi"], default="default")
    worker.add_argument("--chunksize", type=int, default=0)

    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the benchmark file (default 5M)")
    parser.add_argument(
        "--memory-rows",
        default="1000000,10000000",
        help="more file sizes for stackml ingest, for the memory check (comma-separated; '' for none)",
    )
    parser.add_argument(
        "--baseline-rows-duckdb",
        type=int,
        default=500_000,
        help="rows of the file the pandas baseline loads into DuckDB (0 = the whole file; default 500k)",
    )
    parser.add_argument(
        "--baseline-rows-postgres",
        type=int,
        default=0,
        help="rows of the file the pandas baseline loads into PostgreSQL (0 = the whole file, the default)",
    )
    parser.add_argument(
        "--multi-rows",
        type=int,
        default=50_000,
        help=(
            "also run to_sql(method='multi') on this many rows, "
            "an extra reference beside the default (0: skip)"
        ),
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each stackml case; the median is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", default="duckdb,postgres", help="comma-separated: duckdb, postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("STACKML_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="created when missing; a table bench_ingest is made and dropped there",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "stackml-bench",
        help="where generated CSVs are cached (keyed by rows and seed)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    return parser.parse_args(argv)


def baseline_sizes(args: argparse.Namespace) -> dict[str, int]:
    """Rows the pandas baseline loads on each engine run (0 or more than the file means the whole file)."""
    asked = {"duckdb": args.baseline_rows_duckdb, "postgres": args.baseline_rows_postgres}
    return {e: n if 0 < n < args.rows else args.rows for e, n in asked.items() if e in engine_list(args)}


def engine_list(args: argparse.Namespace) -> list[str]:
    return [e.strip() for e in args.engines.split(",") if e.strip()]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "baseline-worker":
        baseline_worker(args)
        return
    engines = engine_list(args)
    unknown = sorted(set(engines) - {"duckdb", "postgres"})
    if unknown or not engines:
        sys.exit(f"--engines takes duckdb and/or postgres; got {args.engines!r}")
    sizes = sorted({args.rows} | {int(n) for n in args.memory_rows.split(",") if n.strip() and int(n) > 0})
    load_before = os.getloadavg()[0]
    pg_version = prepare_postgres(args.postgres_url) if "postgres" in engines else "not run"
    files = {n: cached_csv(args.data_dir, n, args.seed) for n in sizes}
    baseline_rows = baseline_sizes(args)
    multi_rows = min(args.multi_rows, args.rows)

    work = Path(tempfile.mkdtemp(prefix="stackml-bench-"))
    env = {**os.environ, "STACKML_HOME": str(work / "home"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    cases: list[Case] = []
    try:
        for engine in engines:
            url = f"duckdb:///{work / 'bench.duckdb'}" if engine == "duckdb" else args.postgres_url
            for n in sizes:
                print(f"[{engine}] stackml ingest, {n:,} rows x{args.repeat}", flush=True)
                cases.append(run_stackml(engine, url, files[n], n, args.repeat, env, args.postgres_url))
            print(f"[{engine}] pandas read_csv + to_sql, {baseline_rows[engine]:,} rows", flush=True)
            cases.append(
                run_baseline(
                    engine, url, files[args.rows], baseline_rows[engine], env, args.postgres_url, "default", 0
                )
            )
            if multi_rows > 0:
                # PostgreSQL caps a statement at 65,535 bound parameters;
                # 3,333 rows x 9 columns stays well under.
                print(f"[{engine}] pandas to_sql(method='multi'), {multi_rows:,} rows", flush=True)
                cases.append(
                    run_baseline(
                        engine, url, files[args.rows], multi_rows, env, args.postgres_url, "multi", 3_333
                    )
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"

    print()
    print(results_table(cases, args.rows))
    print()
    for target, got, ok in verdicts(cases, args.rows):
        print(f"{'PASS' if ok else 'FAIL'}  {target}: {got}")
    print(f"load average before / after: {load}")
    if not args.no_write:
        info = machine_info(
            ["stackml", "duckdb", "psycopg", "pandas", "pyarrow", "sqlalchemy", "duckdb_engine", "numpy"],
            {"postgresql server": pg_version},
        )
        command = [".venv/bin/python", "bench/ingest.py"] + (sys.argv[1:] if argv is None else argv)
        write_results(
            args.out,
            "Ingest benchmark: `stackml ingest` vs pandas `read_csv` + `to_sql`",
            command,
            info,
            report_body(cases, args, pg_version, load),
        )
        print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
