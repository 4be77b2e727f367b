"""FeaturesFlow end to end through `stackml features run`, as cron runs it: a late feed's rows are computed in
the DuckDB warehouse, checked, written to the PostgreSQL online store and monitored, which opens a freshness
alert; a second run whose new rows lack their join key fails in `validate`, names the problem and writes
nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from stackml.features import FeatureStore
from stackml.warehouse import connect

# A view name of its own: the session's PostgreSQL database is shared with the other online-store tests.
REPO = """\
entities: [{name: shopper, join_keys: [shopper_id]}]
sources: [{name: ff_orders, table: ff_orders}]
feature_views:
  - {name: ff_spend, entities: [shopper], source: ff_orders, freshness: 1h,
     features: [{name: amount, expr: amount}]}
services: [{name: ff_model, features: [ff_spend]}]
"""


def rows(at: datetime, ids: list[float | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {"shopper_id": ids, "event_timestamp": pd.Timestamp(at), "amount": [10.0 * (i or 0) for i in ids]}
    )


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    stackml_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> dict:
    """Two runs of the flow: a late feed, then rows without a key."""
    pytest.importorskip("metaflow")
    root = tmp_path_factory.mktemp("features_flow")
    url = f"duckdb:///{root / 'wh.duckdb'}"
    (root / "repo").mkdir()
    (root / "repo" / "features.yaml").write_text(REPO)
    now = datetime.now(UTC).replace(tzinfo=None)
    with connect(url) as wh:
        wh.ingest(rows(now - timedelta(hours=3), [1, 2, 3]), "ff_orders")  # three hours late
    with connect(postgres_url) as online:
        online.execute('DROP TABLE IF EXISTS stackml_online."ff_spend"')
    args = ["features", "run", "--repo", str(root / "repo"), "-w", url, "--online", postgres_url]
    first = stackml_cli(root / "home", *args, "--json")
    store = FeatureStore(root / "repo", warehouse=url, online=postgres_url)
    state = store.online_states().get("ff_spend") if first.returncode == 0 else None
    with connect(url) as wh:
        wh.ingest(rows(datetime.now(UTC).replace(tzinfo=None), [None, 4]), "ff_orders", if_exists="append")
    second = stackml_cli(root / "home", *args)
    return {"first": first, "second": second, "store": store, "state": state}


def test_a_run_materialises_checks_and_monitors(runs: dict) -> None:
    first = runs["first"]
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout)
    assert summary["run_id"]
    [written] = summary["materialized"]
    assert (written["view"], written["rows"], written["rebuilt"]) == ("ff_spend", 3, True)
    view = summary["monitor"]["views"]["ff_spend"]
    assert view["stale"] is True and 2.9 < view["event_age_hours"] < 3.5
    [alert] = summary["monitor"]["alerts"]
    assert (alert["action"], alert["alert"]["rule"], alert["alert"]["subject"]) == (
        "opened",
        "table_stale",
        "features/ff_spend",
    )
    online = runs["store"].get_online_features("ff_model", [{"shopper_id": 2}, {"shopper_id": 9}])
    assert online["ff_spend__amount"] == [20.0, None]


def test_a_batch_without_join_keys_fails_the_run_in_validate_and_writes_nothing(runs: dict) -> None:
    second = runs["second"]
    assert second.returncode == 2, (second.stdout, second.stderr[-3000:])
    assert "1 problem(s) with the feature batches (nothing was written to the online store)" in second.stderr
    assert "feature view 'ff_spend': 1 of 2 row(s) have no value for join key(s) ['shopper_id']" in (
        second.stderr
    )
    assert "Traceback" not in second.stderr
    assert runs["store"].online_states()["ff_spend"] == runs["state"]  # the watermark did not move
