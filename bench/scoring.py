"""Scoring at high frequency: `stackml score stream` at batch 1, 32 and 256 against `stackml serve`, and table
scoring at 1M and 10M rows.

Issue #15's targets: the stream workers at batch 256 score at least 10x the records/s of the HTTP service
(concurrency 8), with p99 end-to-end latency under 100 ms; table scoring memory flat in table size.

How each number is taken, all in one run on this machine:
  * the model is the serving bench's linear scorer (four numbers and a category in, one score out),
    registered in a temporary home; the prediction log of both paths goes to one PostgreSQL database (the
    warehouse several processes share), so both write every prediction;
  * HTTP: `stackml serve --workers 2`, loaded by wrk with 8 connections, one record per request, for
    `--duration` seconds after a warm-up; requests/s, p50 and p99 are wrk's;
  * stream, throughput: `stackml score stream --workers 2 --batch B` runs idle (model loaded), then
    `--records` entries are written to the input stream as fast as one pipelined client can; records/s is
    the entries over the time from the first entry's enqueue to the last output's (both Redis entry ids,
    the server's clock);
  * stream, latency: a fresh stream fed at a steady rate for `--duration` seconds by a separate process: the
    target's load, 10x the HTTP service's records/s, or `--rate-share` of that batch size's own throughput
    where that is lower (a load it cannot sustain would only measure a growing queue); the latency of each
    record is its output entry's time less its input entry's (Redis's clock, millisecond resolution); p50
    and p99 over every record;
  * table: `bench/scoring_table.py`'s runs (each size in a fresh process, peak RSS from the kernel).

Run from the repository root (needs wrk, Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432):
    .venv/bin/python bench/scoring.py
    .venv/bin/python bench/scoring.py --duration 5 --records 20000 --table-sizes 100000 --no-write  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, markdown_table, write_results  # noqa: E402
from serving import (  # noqa: E402
    MODEL,
    RECORD,
    free_port,
    register_models,
    run_wrk,
    server_env,
    start_stackml,
    stop,
)

RESULTS = REPO / "bench" / "results" / "scoring.md"
TARGET_RATIO = 10.0
TARGET_P99_MS = 100.0
REDIS = "redis://127.0.0.1:6379/0"
ADMIN_PG = "postgresql://postgres@127.0.0.1:5432/test"
BIN = Path(sys.executable).parent


def fresh_database() -> tuple[str, str]:
    import psycopg

    name = f"stackml_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_PG, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return f"{ADMIN_PG.rsplit('/', 1)[0]}/{name}", name


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_PG, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def env_for(home: Path, warehouse: str) -> dict[str, str]:
    return {**server_env(home), "STACKML_WAREHOUSE_URL": warehouse}


# -- HTTP ----------------------------------------------------------------------------------------------------
def http(home: Path, work: Path, warehouse: str, args: argparse.Namespace) -> dict[str, float]:
    os.environ["STACKML_WAREHOUSE_URL"] = warehouse  # start_stackml passes os.environ on
    port = free_port()
    server = start_stackml(home, port, 0, work / "serve.log", workers=2)
    try:
        url = f"http://127.0.0.1:{port}/v1/models/{MODEL}/predict"
        body = json.dumps({"records": [RECORD]})
        run_wrk(url, body, 3, 8, work, False, server.pid)  # warm-up
        load = run_wrk(url, body, args.duration, 8, work, False, server.pid)
    finally:
        stop(server)
    return {"rps": load.rps, "p50": load.p50_ms, "p99": load.p99_ms, "errors": load.errors}


# -- stream --------------------------------------------------------------------------------------------------
def start_workers(
    home: Path, warehouse: str, source: str, out: str, batch: int, work: Path
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    while not free_port_at(port + 1):  # worker i serves /metrics on port + i
        port = free_port()
    cmd = [
        str(BIN / "python"),
        "-m",
        "stackml",
        "score",
        "stream",
        "--model",
        f"{MODEL}@champion",
        "--broker",
        REDIS,
        "--in",
        source,
        "--out",
        out,
        "--batch",
        str(batch),
        "--workers",
        "2",
        "--log-level",
        "warning",
        "--metrics-port",
        str(port),
        "--json",
    ]
    log = (work / f"stream-{batch}.log").open("a")
    return subprocess.Popen(cmd, env=env_for(home, warehouse), stdout=log, stderr=subprocess.STDOUT), port


def free_port_at(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_ready(proc: subprocess.Popen, port: int, workers: int = 2, timeout: float = 180) -> None:
    """Until every worker serves its /metrics (it has loaded the model and joined the group by then)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    waiting = list(range(port, port + workers))
    while waiting and time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the stream workers exited with code {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{waiting[0]}/metrics", timeout=2).read()
            waiting.pop(0)
        except OSError:
            time.sleep(0.2)
    if waiting:
        sys.exit("the stream workers did not start in time")


def wait_outputs(client, out: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while client.xlen(out) < n:
        if time.monotonic() > deadline:
            sys.exit(f"only {client.xlen(out)} of {n} outputs within {timeout:.0f} s")
        time.sleep(0.05)


def entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def enqueue_times(client, source: str) -> dict[str, int]:
    times = {}
    last = "-"
    while True:
        chunk = client.xrange(source, min=last, count=50_000)
        if last != "-":
            chunk = chunk[1:]
        if not chunk:
            return times
        for eid, fields in chunk:
            times[fields["id"]] = entry_ms(eid)
        last = chunk[-1][0]


def latencies(client, source: str, out: str) -> list[int]:
    sent = enqueue_times(client, source)
    result, last = [], "-"
    while True:
        chunk = client.xrange(out, min=last, count=50_000)
        if last != "-":
            chunk = chunk[1:]
        if not chunk:
            return result
        result += [entry_ms(eid) - sent[fields["id"]] for eid, fields in chunk]
        last = chunk[-1][0]


def produce(source: str, n: int, rate: float | None) -> None:
    """Write n entries to ``source``: as fast as possible (rate None) or ``rate`` per second."""
    import redis

    client = redis.Redis.from_url(REDIS)
    record = json.dumps(RECORD)
    chunk = 500 if rate is None else max(1, int(rate / 200))  # a steady rate: a small chunk every 5 ms
    started = time.perf_counter()
    for first in range(0, n, chunk):
        pipe = client.pipeline(transaction=False)
        for i in range(first, min(first + chunk, n)):
            pipe.xadd(source, {"id": f"r{i}", "record": record})
        pipe.execute()
        if rate is not None:
            pause = started + (first + chunk) / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)


def stream(
    home: Path, work: Path, warehouse: str, batch: int, http_rps: float, args: argparse.Namespace
) -> dict[str, float]:
    import numpy as np
    import redis

    client = redis.Redis.from_url(REDIS, decode_responses=True)
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    source, out = f"{tag}:in", f"{tag}:out"
    workers, port = start_workers(home, warehouse, source, out, batch, work)
    try:
        wait_ready(workers, port)
        n = args.records if batch > 1 else max(args.records // 10, 2_000)
        produce(source, n, None)
        wait_outputs(client, out, n, timeout=900)
        first_in = entry_ms(client.xrange(source, count=1)[0][0])
        last_out = entry_ms(client.xrevrange(out, count=1)[0][0])
        rps = n / max((last_out - first_in) / 1000, 1e-3)
        # Latency at a steady offered load (the target's, or below this batch size's capacity), fresh streams.
        rate = min(TARGET_RATIO * http_rps, rps * args.rate_share)
        source2, out2 = f"{tag}:in2", f"{tag}:out2"
    finally:
        stop_workers(workers)
    workers, port = start_workers(home, warehouse, source2, out2, batch, work)
    try:
        wait_ready(workers, port)
        m = int(rate * args.duration)
        producer = subprocess.Popen(
            [sys.executable, __file__, "--produce", source2, str(m), str(rate)], env=os.environ.copy()
        )
        producer.wait()
        wait_outputs(client, out2, m, timeout=300)
        lat = np.array(latencies(client, source2, out2))
    finally:
        stop_workers(workers)
        client.delete(source, out, source2, out2, f"{source}:dead", f"{source2}:dead")
    return {
        "records": n,
        "rps": rps,
        "rate": rate,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
    }


def stop_workers(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- table ---------------------------------------------------------------------------------------------------
def table(sizes: str) -> str:
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "scoring_table.py"), "--sizes", sizes, "--no-write"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    text = out[out.index("`score_table`") :].strip()
    return text.split("\nLoad average")[0].strip()  # the page ends with one load line of its own


# -- the page ------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds of each HTTP run and latency run")
    parser.add_argument("--records", type=int, default=200_000, help="entries per stream throughput run")
    parser.add_argument("--batches", default="1,32,256")
    parser.add_argument(
        "--rate-share", type=float, default=0.7, help="most offered load of a latency run, of its throughput"
    )
    parser.add_argument("--table-sizes", default="1000000,10000000")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--produce", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if args.produce:
        source, n, rate = args.produce
        produce(source, int(n), float(rate))
        return
    work = Path(tempfile.mkdtemp(prefix="stackml-bench-stream-"))
    home = work / "home"
    register_models(home)
    warehouse, database = fresh_database()
    try:
        served = http(home, work, warehouse, args)
        print("http", served, flush=True)
        streamed = {}
        for batch in [int(b) for b in args.batches.split(",")]:
            streamed[batch] = stream(home, work, warehouse, batch, served["rps"], args)
            print("stream", batch, streamed[batch], flush=True)
    finally:
        drop_database(database)
    tables = table(args.table_sizes) if args.table_sizes else ""
    rows = [
        [
            "stackml serve, 2 workers, concurrency 8, 1 record/request",
            round(served["rps"]),
            "1.00x",
            "saturated",
            round(served["p50"], 1),
            round(served["p99"], 1),
        ]
    ]
    for batch, s in streamed.items():
        rows.append(
            [
                f"stackml score stream, 2 workers, batch {batch}",
                round(s["rps"]),
                f"{s['rps'] / served['rps']:.1f}x",
                f"{s['rate']:,.0f}/s",
                round(s["p50"], 1),
                round(s["p99"], 1),
            ]
        )
    best = streamed.get(256)
    checks = []
    if best is not None:
        ratio = best["rps"] / served["rps"]
        checks = [
            [
                "stream at batch 256 >= 10x the HTTP service's records/s",
                ratio >= TARGET_RATIO,
                f"{ratio:.1f}x",
            ],
            [
                f"its p99 end-to-end latency < 100 ms at {best['rate']:,.0f} records/s",
                "yes" if best["p99"] < TARGET_P99_MS else "NO",
                f"{best['p99']:.0f} ms",
            ],
        ]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    body = "\n".join(
        [
            "Every prediction of both paths is written to the prediction log in one PostgreSQL database. "
            "Stream latency is enqueue to output on Redis's clock (ms), at a steady offered load: the "
            f"target's, {TARGET_RATIO:g}x the HTTP service's records/s, or {args.rate_share:.0%} of that "
            "batch size's own throughput where that is lower. HTTP latency is wrk's, per request, at "
            "concurrency 8 (its throughput is measured at that latency).\n",
            "## Records per second and latency\n",
            markdown_table(
                ["path", "records/s", "vs HTTP", "latency at offered load", "p50 ms", "p99 ms"], rows
            ),
            "\n## Targets\n",
            markdown_table(["target", "met", "value"], checks),
            "\n## Table scoring\n",
            tables,
            f"\nLoad average at the end: {load} (2 shared cores; Redis, PostgreSQL, the producer and the "
            "workers share them).",
        ]
    )
    print(body)
    if not args.no_write:
        info = machine_info(["redis", "psycopg", "mlflow", "duckdb", "pandas"])
        write_results(
            RESULTS,
            "Scoring: event streams against the HTTP service, and tables",
            [".venv/bin/python", *sys.argv],
            info,
            body,
        )
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
