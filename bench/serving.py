"""Benchmark: ``stackml serve`` against ``mlflow models serve --env-manager local``, same registered model.

Targets (issues #5 and #18): at least 2x the throughput of MLflow's best worker count, p99 under 10 ms and
zero errors at concurrency 8 for 30 s; and a 60 s soak
with the ``champion`` alias moved mid-run: zero failed requests and every request logged.

How each number is taken:
  * the model is a small linear scorer (four numeric features and a categorical offset, a pandas DataFrame in
    and out), registered twice (v1, v2) with ``stackml.tracking.register_model`` in a temporary home;
  * each server runs as its own process on 127.0.0.1 and is loaded by Debian's ``wrk`` (a second process) with
    2 threads and 8 connections, one record per request, after a 3 s warm-up; requests/s, p50 and p99 are
    wrk's
    and errors are wrk's socket errors plus non-2xx answers;
  * stackml runs as ``stackml serve --workers N`` for each N of ``--stackml-workers`` (default 1 and the
    core count; uvloop and httptools when installed) with the prediction log on: every request is logged to
    the warehouse (DuckDB by default) while the load runs; the run with the most workers is "stackml";
  * MLflow runs with its defaults (one uvicorn worker) and again with ``--workers 2``;
  * the soak serves ``champion`` with one worker (``/metrics`` counts per process) and a 1 s
    re-resolution interval; the alias moves from v1 to v2 halfway; a
    wrk
    Lua script counts answers by model version; after a graceful stop (SIGTERM) the rows of ``prediction_log``
    are counted and compared with the 200s the server itself counted (``/metrics``, scraped just before the
    stop) — wrk cannot count requests it cut off at the deadline, the server can.

Run from the repository root (needs ``apt-get install wrk``):
    .venv/bin/python bench/serving.py                    # 30 s per server + 60 s soak, writes the page
    .venv/bin/python bench/serving.py --duration 5 --soak 10 --no-write   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, markdown_table, write_results  # noqa: E402

RESULTS = REPO / "bench" / "results" / "serving.md"
MODEL = "bench_scorer"
FEATURES = ["f1", "f2", "f3", "f4"]
RECORD = {"f1": 0.5, "f2": -1.25, "f3": 3.0, "f4": 0.0, "segment": "b"}
TARGET_RATIO = 2.0
TARGET_P99_MS = 10.0
WARMUP_S = 3
BIN = Path(sys.executable).parent


# -- the model -----------------------------------------------------------------------------------------------
def register_models(home: Path) -> None:
    """Register v1 and v2 of the scorer in ``home`` and point ``champion`` at v1."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import mlflow
    import numpy as np
    import pandas as pd

    from stackml.config import get_settings
    from stackml.tracking import configure, register_model

    class LinearScorer(mlflow.pyfunc.PythonModel):
        """score = features . weights + bias + a per-segment offset."""

        def __init__(self, weights: list[float], bias: float, offsets: dict[str, float]) -> None:
            self.weights, self.bias, self.offsets = np.asarray(weights), bias, offsets

        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - MLflow's signature
            x = model_input[FEATURES].to_numpy(dtype=float)
            offset = model_input["segment"].map(self.offsets).fillna(0.0).to_numpy()
            return pd.DataFrame({"score": x @ self.weights + self.bias + offset})

    settings = get_settings(home=home)
    example = pd.DataFrame([RECORD, {**RECORD, "f1": 2.0, "segment": "a"}])
    for k in (1.0, 2.0):
        register_model(
            LinearScorer([0.1 * k, 0.2, -0.3, 0.4], k, {"a": 1.0, "b": -1.0}),
            MODEL,
            input_example=example,
            settings=settings,
        )
    configure(settings).set_registered_model_alias(MODEL, "champion", "1")


def move_champion(home: Path, version: int) -> None:
    from stackml.config import get_settings
    from stackml.tracking import configure

    configure(get_settings(home=home)).set_registered_model_alias(MODEL, "champion", str(version))


# -- servers -------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"The server exited with code {proc.returncode} before it was ready ({url}).")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"The server at {url} was not ready within {timeout:.0f} s.")


def server_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "STACKML_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            # mlflow models serve runs `uvicorn` from PATH.
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def start_stackml(
    home: Path, port: int, reload_interval: float, log: Path, workers: int = 1
) -> subprocess.Popen:
    cmd = [
        str(BIN / "python"),
        "-m",
        "stackml",
        "serve",
        "--port",
        str(port),
        "--models",
        f"{MODEL}@champion",
        "--reload-interval",
        str(reload_interval),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(
        cmd, env=server_env(home), stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_ready(f"http://127.0.0.1:{port}/health", proc)
    return proc


def start_mlflow(home: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    cmd = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{MODEL}@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(
        cmd, env=server_env(home), stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_ready(f"http://127.0.0.1:{port}/ping", proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM the server's process group (MLflow forks uvicorn) and wait: a graceful stop flushes the log."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- load ----------------------------------------------------------------------------------------------------
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) by_version = {{}} end
function response(status, headers, body)
  local v = string.match(body, '"version": *(%d+)') or "none"
  by_version[v] = (by_version[v] or 0) + 1
end
function done(summary, latency, requests)
  local total = {{}}
  for _, t in ipairs(threads) do
    for v, n in pairs(t:get("by_version")) do total[v] = (total[v] or 0) + n end
  end
  for v, n in pairs(total) do io.write(string.format("VERSION %s %d\\n", v, n)) end
end
"""


@dataclass
class Load:
    """wrk's summary of one run."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    by_version: dict[str, int]
    load_before: str
    load_after: str
    cpu_ms_per_request: float = float("nan")  # the server's CPU time (all its processes) per answered request


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def session_cpu_seconds(sid: int) -> float:
    """User + system CPU seconds of every live process in session ``sid`` (a server and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the command: state, ppid, pgrp, session, ...
            total += int(fields[11]) + int(fields[12])
    return total / tick


def run_wrk(
    url: str, body: str, seconds: int, concurrency: int, script_dir: Path, count_versions: bool, server: int
) -> Load:
    script = script_dir / "post.lua"
    lua = LUA.format(body=body)
    if not count_versions:
        # The response callback costs wrk time; only the soak needs the per-version counts.
        lua = lua.split("local threads")[0]
    script.write_text(lua)
    before = loadavg()
    cpu_before = session_cpu_seconds(server)
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(concurrency),
            "-d",
            f"{seconds}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = session_cpu_seconds(server) - cpu_before
    load = parse_wrk(out, before, loadavg())
    load.cpu_ms_per_request = 1000 * cpu / max(load.requests, 1)
    return load


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str, before: str, after: str) -> Load:
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m|h)\b", out)
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[total.group(3)]
    requests, seconds = int(total.group(1)), float(total.group(2)) * scale
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return Load(
        requests=requests,
        seconds=seconds,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1)),
        p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1)),
        errors=errors,
        by_version={v: int(n) for v, n in re.findall(r"VERSION (\S+) (\d+)", out)},
        load_before=before,
        load_after=after,
    )


def metric(url: str, name: str, labels: dict[str, str]) -> float:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def count_log_rows(home: Path) -> dict[int, int]:
    from stackml.warehouse import connect

    with connect(f"duckdb:///{home / 'warehouse.duckdb'}") as wh:
        frame = wh.query("SELECT model_version, count(*) AS n FROM prediction_log GROUP BY 1 ORDER BY 1")
    return {int(v): int(n) for v, n in zip(frame.model_version, frame.n)}


# -- the cases -----------------------------------------------------------------------------------------------
def throughput(home: Path, work: Path, args: argparse.Namespace) -> list[tuple[str, Load]]:
    ours = json.dumps({"records": [RECORD]})
    theirs = json.dumps({"dataframe_records": [RECORD]})
    results = []
    # The most workers first: it is the run the targets are checked on.
    for workers in sorted(args.stackml_workers, reverse=True):
        port = free_port()
        proc = start_stackml(home, port, 30, work / f"stackml-{workers}.log", workers)
        try:
            url = f"http://127.0.0.1:{port}/v1/models/{MODEL}/predict"
            run_wrk(url, ours, WARMUP_S, args.concurrency, work, False, proc.pid)
            measured = run_wrk(url, ours, args.duration, args.concurrency, work, False, proc.pid)
            results.append((f"stackml serve ({workers} worker{'s' if workers > 1 else ''})", measured))
        finally:
            stop(proc)
    for workers in args.mlflow_workers:
        port = free_port()
        proc = start_mlflow(home, port, workers, work / f"mlflow-{workers}.log")
        try:
            url = f"http://127.0.0.1:{port}/invocations"
            run_wrk(url, theirs, WARMUP_S, args.concurrency, work, False, proc.pid)
            label = f"mlflow models serve ({workers} worker{'s' if workers > 1 else ''})"
            results.append(
                (label, run_wrk(url, theirs, args.duration, args.concurrency, work, False, proc.pid))
            )
        finally:
            stop(proc)
    return results


@dataclass
class Soak:
    load: Load
    served_200: int
    logged: dict[int, int]
    moved_at_s: float


def soak(home: Path, work: Path, args: argparse.Namespace) -> Soak:
    # A fresh warehouse: the throughput run logged its requests to the same home.
    (home / "warehouse.duckdb").unlink(missing_ok=True)
    (home / "warehouse.duckdb.wal").unlink(missing_ok=True)
    move_champion(home, 1)
    port = free_port()
    proc = start_stackml(home, port, 1, work / "stackml-soak.log", workers=1)
    moved_at = args.soak / 2

    def move() -> None:
        time.sleep(moved_at)
        move_champion(home, 2)

    mover = threading.Thread(target=move)
    try:
        mover.start()
        url = f"http://127.0.0.1:{port}/v1/models/{MODEL}/predict"
        load = run_wrk(
            url, json.dumps({"records": [RECORD]}), args.soak, args.concurrency, work, True, proc.pid
        )
        mover.join()
        served = int(
            metric(
                f"http://127.0.0.1:{port}/metrics",
                "stackml_requests_total",
                {"endpoint": "predict", "status": "200"},
            )
        )
    finally:
        stop(proc)
    return Soak(load, served, count_log_rows(home), moved_at)


# -- report --------------------------------------------------------------------------------------------------
def report(results: list[tuple[str, Load]], soaked: Soak, args: argparse.Namespace) -> tuple[str, bool]:
    ours = results[0][1]
    rows = []
    for label, r in results:
        ratio = ours.rps / r.rps if r is not ours else 1.0
        rows.append(
            [
                label,
                round(r.rps),
                r.p50_ms,
                r.p99_ms,
                r.errors,
                f"{ratio:.2f}x",
                r.cpu_ms_per_request,
                f"{ours.cpu_ms_per_request and r.cpu_ms_per_request / ours.cpu_ms_per_request:.2f}x",
                f"{r.load_before} / {r.load_after}",
            ]
        )
    table = markdown_table(
        [
            "server",
            "requests/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "stackml throughput vs this",
            "server CPU ms / request",
            "its CPU vs stackml's",
            "load avg before / after",
        ],
        rows,
    )
    mlflow_runs = [r for label, r in results if label.startswith("mlflow")]
    default_mlflow = mlflow_runs[0] if mlflow_runs else None
    ratio = ours.rps / default_mlflow.rps if default_mlflow else float("nan")
    best_mlflow = max((r.rps for r in mlflow_runs), default=float("nan"))
    efficiency = (
        default_mlflow.cpu_ms_per_request / ours.cpu_ms_per_request if default_mlflow else float("nan")
    )
    checks = [
        (
            f">= {TARGET_RATIO:g}x MLflow's best run (any worker count)",
            ours.rps / best_mlflow >= TARGET_RATIO,
            f"{ours.rps / best_mlflow:.2f}x",
        ),
        (
            f"(not in the issue) >= {TARGET_RATIO:g}x MLflow's default (1 worker)",
            ratio >= TARGET_RATIO,
            f"{ratio:.2f}x",
        ),
        (
            f"(not in the issue) >= {TARGET_RATIO:g}x less CPU per request than MLflow (default)",
            efficiency >= TARGET_RATIO,
            f"{efficiency:.2f}x",
        ),
        (f"p99 < {TARGET_P99_MS:g} ms", ours.p99_ms < TARGET_P99_MS, f"{ours.p99_ms:.2f} ms"),
        ("zero errors (stackml)", ours.errors == 0, str(ours.errors)),
    ]
    s = soaked
    logged = sum(s.logged.values())
    answered = sum(s.load.by_version.get(v, 0) for v in ("1", "2"))
    soak_checks = [
        (
            "zero failed requests during the soak",
            s.load.errors == 0,
            f"{s.load.errors} errors of {s.load.requests}",
        ),
        (
            "both versions served (the alias move was picked up)",
            s.load.by_version.get("1", 0) > 0 and s.load.by_version.get("2", 0) > 0,
            ", ".join(f"v{v}: {n}" for v, n in sorted(s.load.by_version.items())),
        ),
        (
            "every request logged (rows = 200s the server answered)",
            logged == s.served_200,
            f"{logged} rows, {s.served_200} answered, {answered} counted by wrk",
        ),
    ]
    verdict = markdown_table(
        ["target", "met", "value"], [[n, "yes" if ok else "NO", v] for n, ok, v in checks + soak_checks]
    )
    soak_table = markdown_table(
        [
            "soak",
            "requests/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "rows logged by version",
            "load avg before / after",
        ],
        [
            [
                f"{args.soak} s, champion v1 -> v2 at {s.moved_at_s:.0f} s",
                round(s.load.rps),
                s.load.p50_ms,
                s.load.p99_ms,
                s.load.errors,
                ", ".join(f"v{v}: {n}" for v, n in sorted(s.logged.items())),
                f"{s.load.load_before} / {s.load.load_after}",
            ]
        ],
    )
    body = (
        f"Concurrency {args.concurrency} (wrk, 2 threads) for {args.duration} s per server after a "
        f"{WARMUP_S} s warm-up, one record per request, loopback. The machine's other work shares its "
        "cores: the load average before and after each run is in the tables.\n\n"
        "Reading the numbers: requests/s and latency depend on how much CPU the server gets while other "
        "processes compete for the two cores (a server with more processes gets a larger share). The "
        "server's CPU time per answered request (all its processes, from /proc) does not: "
        "1000 / (CPU ms per request) is what one "
        "fully available core would serve, and the ratio of two servers' CPU per request is their efficiency "
        "ratio. Each stackml worker is a process; stackml logs every prediction to the warehouse during the "
        "run, MLflow logs nothing. The targets are checked on the stackml run with the most workers.\n\n"
        f"## Throughput and latency\n\n{table}\n\n"
        f"## Soak with the alias moved mid-run\n\n{soak_table}\n\n## Targets\n\n{verdict}\n"
    )
    issue_checks = [c for c in checks + soak_checks if not c[0].startswith("(not in the issue)")]
    return body, all(ok for _, ok, _ in issue_checks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per server")
    parser.add_argument("--soak", type=int, default=60, help="seconds of the soak run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--mlflow-workers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2],
        help="MLflow worker counts to run, comma-separated (first is the baseline)",
    )
    parser.add_argument(
        "--stackml-workers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=sorted({1, os.cpu_count() or 1}),
        help="stackml serve worker counts to run, comma-separated (default 1 and the core count)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--no-write", action="store_true", help="print the results instead of writing the page"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="stackml-bench-serving-") as tmp:
        home, work = Path(tmp) / "home", Path(tmp)
        print("registering the model ...", flush=True)
        register_models(home)
        print("throughput runs ...", flush=True)
        results = throughput(home, work, args)
        for label, r in results:
            print(
                f"  {label}: {r.rps:.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
                f"{r.errors} errors, "
                f"{r.cpu_ms_per_request:.2f} CPU ms/request (load {r.load_before} -> {r.load_after})",
                flush=True,
            )
        print("soak ...", flush=True)
        soaked = soak(home, work, args)
    body, ok = report(results, soaked, args)
    info = machine_info(
        ["stackml", "fastapi", "uvicorn", "uvloop", "httptools", "mlflow", "pandas", "duckdb"],
        {
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split(
                "\n"
            )[0]
        },
    )
    command = ["python", "bench/serving.py", *sys.argv[1:]]
    if args.no_write:
        print(body)
    else:
        write_results(args.out, "Serving: stackml serve vs mlflow models serve", command, info, body)
        print(f"wrote {args.out}")
    print("all targets met" if ok else "SOME TARGETS MISSED")


if __name__ == "__main__":
    main()
