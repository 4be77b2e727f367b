"""``stackml features``: apply, list and training-set through a real subprocess on a DuckDB warehouse, and the
bad inputs that must exit 2 with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from stackml.warehouse import connect

REPO = """\
entities: [{name: customer, join_keys: [customer_id]}]
sources:
  - {name: orders, table: orders, timestamp_field: event_timestamp,
     created_timestamp_field: created_timestamp}
feature_views:
  - name: customer_orders
    entities: [customer]
    source: orders
    ttl: 30d            # 0 = unbounded
    features: [{name: amount, expr: amount}, {name: big, expr: "amount > 100"}]
services: [{name: churn, features: ["customer_orders:amount", "customer_orders:big"]}]
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit code 2, one line on stderr, no traceback, and the fragments in that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def setup(tmp_path: Path) -> dict:
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    times = pd.to_datetime(["2024-01-01", "2024-01-10", "2024-01-05"])
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "event_timestamp": times,
            "created_timestamp": times,
            "amount": [50.0, 150.0, 20.0],
        }
    )
    with connect(url) as wh:
        wh.ingest(orders, "orders")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "features.yaml").write_text(REPO)
    entities = tmp_path / "entities.csv"
    entities.write_text(
        "customer_id,event_timestamp,label\n1,2024-01-05T00:00:00,0\n1,2024-01-11T00:00:00,1\n"
        "2,2024-03-01T00:00:00,0\n3,2024-01-01T00:00:00,1\n"
    )
    return {"url": url, "repo": repo, "entities": entities, "tmp": tmp_path}


def _apply(setup: dict) -> dict:
    proc = run_cli("features", "apply", "--repo", str(setup["repo"]), "-w", setup["url"], "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_apply_list_and_training_set(setup: dict) -> None:
    first = _apply(setup)
    assert (first["version"], first["changed"], first["feature_views"]) == (1, True, 1)
    again = _apply(setup)
    assert (again["version"], again["changed"]) == (1, False)  # the same repo keeps its version

    (setup["repo"] / "features.yaml").write_text(REPO.replace('expr: "amount > 100"', 'expr: "amount > 120"'))
    changed = _apply(setup)
    assert (changed["version"], changed["changed"]) == (2, True)

    listed = run_cli("features", "list", "-w", setup["url"], "--json")
    assert listed.returncode == 0, listed.stderr
    listing = json.loads(listed.stdout)
    assert listing["version"] == 2
    assert {(o["kind"], o["name"]) for o in listing["objects"]} == {
        ("entity", "customer"),
        ("source", "orders"),
        ("feature view", "customer_orders"),
        ("service", "churn"),
    }
    views = [o["details"] for o in listing["objects"] if o["kind"] == "feature view"]
    assert views == ["amount, big from orders by customer, ttl 30d"]
    table = run_cli("features", "list", "--repo", str(setup["repo"]), "-w", setup["url"])
    assert table.returncode == 0 and "the registered version 2" in table.stdout

    out = setup["tmp"] / "out" / "training.parquet"
    proc = run_cli(
        "features", "training-set", "--entities", str(setup["entities"]), "--service", "churn",
        "--out", str(out), "-w", setup["url"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(out)
    assert list(frame.columns) == [
        "customer_id",
        "event_timestamp",
        "label",
        "customer_orders__amount",
        "customer_orders__big",
    ]
    assert frame["customer_orders__amount"].tolist()[:2] == [50.0, 150.0]
    assert frame["customer_orders__big"].tolist()[:2] == [False, True]
    # customer 2's only row is 56 days old (TTL 30d); customer 3 has none
    assert frame["customer_orders__amount"].iloc[2:].isna().all()


def test_bad_input_exits_2_with_one_line(setup: dict) -> None:
    repo, url = setup["repo"], setup["url"]
    _apply(setup)
    out = str(setup["tmp"] / "t.parquet")
    unknown = run_cli(
        "features", "training-set", "--entities", str(setup["entities"]),
        "--features", "customer_orders:nope", "--out", out, "-w", url,
    )  # fmt: skip
    assert_clean_error(unknown, "unknown feature 'customer_orders:nope'", "['amount', 'big']")

    no_time = setup["tmp"] / "no_time.csv"
    no_time.write_text("customer_id,ts\n1,2024-01-05\n")
    proc = run_cli(
        "features", "training-set", "--entities", str(no_time), "--service", "churn", "--out", out, "-w", url
    )
    assert_clean_error(proc, "no 'event_timestamp' column", "['customer_id', 'ts']")

    (repo / "features.yaml").write_text(
        REPO.replace("expr: amount}", "expr: amount_usd}").replace(
            '"customer_orders:big"', '"customer_orders:huge"'
        )
    )
    proc = run_cli("features", "apply", "--repo", str(repo), "-w", url)
    assert_clean_error(proc, "service 'churn'", "unknown feature 'customer_orders:huge'")

    (repo / "features.yaml").write_text(REPO.replace("expr: amount}", "expr: amount_usd}"))
    proc = run_cli("features", "apply", "--repo", str(repo), "-w", url)
    assert_clean_error(
        proc, "feature view 'customer_orders'", "feature 'amount' (amount_usd) fails", "amount_usd"
    )
