"""``stackml features materialize | get`` through a real subprocess: a DuckDB warehouse, the online store in
PostgreSQL, JSON for scripts, and the bad inputs that must exit 2 with one line."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from cli_checks import assert_clean_error, run_cli
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
    ttl: 30d
    features: [{name: amount, expr: amount}, {name: big, expr: "amount > 100"}]
services: [{name: churn, features: ["customer_orders:amount", "customer_orders:big"]}]
"""


@pytest.fixture
def setup(tmp_path: Path, fresh_postgres_url: str) -> list[str]:
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    times = pd.Series([now - timedelta(days=3), now - timedelta(days=1), now - timedelta(days=40)])
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
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "features.yaml").write_text(REPO)
    return ["--repo", str(tmp_path / "repo"), "--warehouse", url, "--online", fresh_postgres_url]


def test_materialize_then_get_by_key(setup: list[str]) -> None:
    proc = run_cli("features", "materialize", *setup, "--json")
    assert proc.returncode == 0, proc.stderr
    (view,) = json.loads(proc.stdout)["views"]
    assert view["view"] == "customer_orders" and view["rows"] == 2 and view["rebuilt"]
    proc = run_cli(
        "features",
        "get",
        "--service",
        "churn",
        "--key",
        "customer_id=1",
        "--key",
        "customer_id=2",
        *setup,
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    # customer 2's only order is older than the 30-day TTL: no value
    assert json.loads(proc.stdout)["entities"] == [
        {"customer_id": 1, "customer_orders__amount": 150.0, "customer_orders__big": True},
        {"customer_id": 2, "customer_orders__amount": None, "customer_orders__big": None},
    ]
    again = run_cli("features", "materialize", *setup)
    assert again.returncode == 0 and "customer_orders: updated, 0 entities" in again.stdout, again.stdout


def test_bad_input_exits_2_with_one_line(setup: list[str], tmp_path: Path) -> None:
    assert_clean_error(
        run_cli("features", "get", "--service", "churn", "--key", "customer_id=1", *setup),
        "view 'customer_orders' has not been materialised",
    )
    assert_clean_error(run_cli("features", "get", "--service", "churn", *setup), "Pass at least one --key")
    assert_clean_error(
        run_cli("features", "get", "--service", "churn", "--key", "customer_id", *setup), "join_key=value"
    )
    assert_clean_error(
        run_cli("features", "materialize", "--since", "yesterday-ish", *setup), "--since must be a date"
    )
    assert_clean_error(
        run_cli("features", "materialize", "--view", "nope", *setup), "Unknown feature view(s)"
    )
    duck = ["--repo", setup[1], "--warehouse", setup[3]]
    assert_clean_error(
        run_cli("features", "materialize", *duck, env={"STACKML_HOME": str(tmp_path / "home")}),
        "online feature store needs PostgreSQL",
    )
