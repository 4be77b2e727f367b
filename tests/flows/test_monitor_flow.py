"""Monitoring end to end: a model served by the prediction service for a while, then fed shifted inputs,
raises one drift alert through a real webhook receiver and one row in the alerts table, and resolves when
the inputs return; each pass runs MonitorFlow through `stackml monitor run`, and `stackml monitor alerts`
lists what is open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

MODEL = "segments"
COLUMNS = ["spend", "visits", "tenure"]
RULES = """rules:
  - name: inputs_drifted
    metric: drift.dataset
    above: 0
    severity: critical
"""


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKML_HOME", "METAFLOW_"))}
    env |= {"STACKML_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def customers(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame(np.random.default_rng(seed).normal(0, 1, (n, 3)), columns=COLUMNS)
    return frame.assign(spend=frame["spend"] + shift, visits=frame["visits"] + shift)


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP receiver on 127.0.0.1: its URL and the JSON bodies it got."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registered numeric clustering of 2,000 customers (its training frame is the reference data)."""
    home = tmp_path_factory.mktemp("monitor_home")
    customers(2000, seed=0).to_csv(home / "customers.csv", index=False)
    proc = cli(
        home,
        "cluster",
        "run",
        "--data",
        str(home / "customers.csv"),
        "--algorithm",
        "kmeans",
        "--k",
        "3",
        "--bootstraps",
        "0",
        "--fast",
        "--model-name",
        MODEL,
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (home / "rules.yaml").write_text(RULES)
    return home


def serve(home: Path, frame: pd.DataFrame) -> float:
    """Send ``frame`` to the prediction service in requests of 100 records; returns when they started. The
    service drains its prediction log into the warehouse when it stops."""
    from fastapi.testclient import TestClient

    from stackml.config import get_settings
    from stackml.serving import create_app

    started = time.time()
    app = create_app(get_settings(home=home), models=[MODEL], reload_interval_s=0)
    with TestClient(app) as client:
        for start in range(0, len(frame), 100):
            records = frame.iloc[start : start + 100].to_dict("records")
            response = client.post(f"/v1/models/{MODEL}/predict", json={"records": records})
            assert response.status_code == 200, response.text
    return started


def monitor(home: Path, since_started: float, hook: str) -> dict:
    """One pass over the rows served since ``since_started`` (the window ends now, not when the flow's first
    step starts)."""
    from datetime import UTC, datetime

    now = time.time()
    proc = cli(
        home,
        "monitor",
        "run",
        "--model",
        MODEL,
        "--since",
        f"{now - since_started + 0.5:.1f}s",
        "--until",
        datetime.fromtimestamp(now, UTC).isoformat(),
        "--rules",
        str(home / "rules.yaml"),
        "--webhook",
        hook,
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_a_drifting_model_raises_one_alert_and_resolves_it(home: Path, webhook, monkeypatch) -> None:
    pytest.importorskip("fastapi")
    hook, bodies = webhook
    monkeypatch.setenv("STACKML_HOME", str(home))

    clean = monitor(home, serve(home, customers(1500, seed=1)), hook)
    assert clean["rows"] == 1500 and clean["dataset_drift"] is False and clean["alerts"] == []
    time.sleep(1.1)  # the next window starts after this one's last row

    shifted = monitor(home, serve(home, customers(1500, seed=2, shift=2.0)), hook)
    assert shifted["rows"] == 1500 and shifted["dataset_drift"] is True
    assert [(e["action"], e["alert"]["rule"]) for e in shifted["alerts"]] == [("opened", "inputs_drifted")]
    assert (
        len(bodies) == 1 and "inputs_drifted" in bodies[0]["text"] and bodies[0]["alert"]["kind"] == "opened"
    )
    listed = json.loads(cli(home, "monitor", "alerts", "--json").stdout)
    assert [(a["rule"], a["status"]) for a in listed] == [("inputs_drifted", "open")]
    assert Path(shifted["report"]).is_file() and "spend" in Path(shifted["report"]).read_text()
    time.sleep(1.1)

    back = monitor(home, serve(home, customers(1500, seed=3)), hook)
    assert back["dataset_drift"] is False
    assert [(e["action"], e["alert"]["rule"]) for e in back["alerts"]] == [("resolved", "inputs_drifted")]
    assert len(bodies) == 2 and bodies[1]["alert"]["kind"] == "resolved"
    assert json.loads(cli(home, "monitor", "alerts", "--json").stdout) == []
    everything = json.loads(cli(home, "monitor", "alerts", "--all", "--json").stdout)
    assert len(everything) == 1 and everything[0]["status"] == "resolved"


def test_bad_input_exits_2_before_the_flow_starts(home: Path) -> None:
    for args, fragment in [
        (["--model", "no_such_model"], "no_such_model"),
        (["--model", MODEL, "--since", "yesterday"], "'window' must be a duration"),
        (["--model", f"{MODEL}@staging"], "has no alias 'staging'"),
    ]:
        proc = cli(home, "monitor", "run", *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert fragment in proc.stderr
