"""Feature monitoring on a DuckDB warehouse and the PostgreSQL online store, through the CLI as a user runs
it: a late feed raises a freshness alert (on the webhook too), fresh rows resolve it, shifted values raise
drift against the training set `features training-set` recorded, and a reference file overrides it. Batches
that must not reach the online store are refused before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.features import FeatureStore
from stackml.warehouse import connect

REPO = """\
entities: [{name: shopper, join_keys: [shopper_id]}]
sources: [{name: fm_orders, table: fm_orders}]
feature_views:
  - name: fm_spend
    entities: [shopper]
    source: fm_orders
    ttl: 30d
    freshness: 2h
    features: [{name: amount, expr: amount}, {name: big, expr: "amount > 120"}]
services: [{name: fm_churn, features: [fm_spend]}]
"""
SHOPPERS = 300


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def orders(at: datetime, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "shopper_id": np.arange(SHOPPERS),
            "event_timestamp": pd.Timestamp(at),
            "amount": rng.normal(100, 20, SHOPPERS) + shift,
        }
    )


@pytest.fixture
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
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(tmp_path: Path, fresh_postgres_url: str) -> dict:
    """A repo, a DuckDB warehouse whose feed is 5 hours late, and an empty online store of the test's own."""
    postgres_url = fresh_postgres_url
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "features.yaml").write_text(REPO)
    with connect(url) as wh:
        wh.ingest(orders(now() - timedelta(hours=5), seed=0), "fm_orders")  # the feed is 5 hours late
    entities = tmp_path / "entities.csv"
    pd.DataFrame({"shopper_id": range(SHOPPERS), "event_timestamp": pd.Timestamp(now())}).to_csv(
        entities, index=False
    )
    store = FeatureStore(repo, warehouse=url, online=postgres_url)
    return {"url": url, "repo": repo, "online": postgres_url, "entities": entities, "store": store}


def monitor(world: dict, *extra: str) -> dict:
    proc = cli(
        "features", "monitor", "--repo", str(world["repo"]), "-w", world["url"], "--online", world["online"],
        "--json", *extra,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr  # as `stackml monitor run`: alerts are output, not a failure
    return json.loads(proc.stdout)


def actions(summary: dict) -> set[tuple[str, str, str]]:
    return {(a["action"], a["alert"]["rule"], a["alert"]["subject"]) for a in summary["alerts"]}


def test_a_late_feed_alerts_until_fresh_rows_land_and_drift_alerts_on_shifted_values(
    world: dict, webhook: tuple[str, list[dict]], tmp_path: Path
) -> None:
    url, bodies = webhook
    store = world["store"]
    trained = cli(
        "features", "training-set", "--repo", str(world["repo"]), "-w", world["url"],
        "--entities", str(world["entities"]), "--service", "fm_churn", "--out", str(tmp_path / "t.parquet"),
        "--json",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    reference = json.loads(trained.stdout)["reference"]
    assert reference == {
        "service": "fm_churn",
        "table": "stackml_feature_ref_fm_churn",
        "rows": SHOPPERS,
        "of_rows": SHOPPERS,
    }
    store.materialize()

    late = monitor(world, "--webhook", url)
    view = late["views"]["fm_spend"]
    assert view["stale"] is True and view["freshness_limit_hours"] == 2.0
    assert 4.9 < view["event_age_hours"] < 5.5 and view["materialized_age_hours"] < 0.1
    assert view["entities"] == SHOPPERS
    assert view["null_rates"] == {"fm_spend__amount": 0.0, "fm_spend__big": 0.0}
    assert late["stale_views"] == ["fm_spend"]
    assert actions(late) == {("opened", "table_stale", "features/fm_spend")}
    assert late["services"]["fm_churn"]["dataset_drift"] is False  # the same values the model trained on
    assert [b["alert"]["rule"] for b in bodies] == ["table_stale"] and bodies[0]["alert"]["kind"] == "opened"

    still = monitor(world)
    assert actions(still) == {("still_open", "table_stale", "features/fm_spend")}  # no alert storm

    with connect(world["url"]) as wh:
        wh.ingest(orders(now(), seed=0), "fm_orders", if_exists="append")  # after the watermark
    store.materialize()
    fresh = monitor(world, "--webhook", url)
    assert fresh["views"]["fm_spend"]["stale"] is False
    assert fresh["views"]["fm_spend"]["event_age_hours"] < 0.1
    assert actions(fresh) == {("resolved", "table_stale", "features/fm_spend")}
    assert bodies[-1]["alert"]["kind"] == "resolved" and bodies[-1]["text"].startswith("[RESOLVED]")

    with connect(world["url"]) as wh:
        wh.ingest(orders(now(), seed=2, shift=60.0), "fm_orders", if_exists="append")
    store.materialize()
    shifted = monitor(world)
    service = shifted["services"]["fm_churn"]
    assert service["drift"]["fm_spend__amount"]["drifted"] is True and service["dataset_drift"] is True
    opened = {
        ("opened", "column_drifted", "features:fm_churn"),
        ("opened", "dataset_drift", "features:fm_churn"),
    }
    assert opened <= actions(shifted)
    # the monitoring module's one alerts table lists them
    listed = cli("monitor", "alerts", "-w", world["url"], "--json")
    assert listed.returncode == 0, listed.stderr
    assert {(a["rule"], a["subject"]) for a in json.loads(listed.stdout)} >= {
        ("column_drifted", "features:fm_churn"),
        ("dataset_drift", "features:fm_churn"),
    }

    # a reference file of today's values replaces the recorded training set: no drift, the alerts resolve
    current = store.get_online_features("fm_churn", [{"shopper_id": i} for i in range(SHOPPERS)])
    own = tmp_path / "today.parquet"
    pd.DataFrame({k: current[k] for k in ("fm_spend__amount", "fm_spend__big")}).to_parquet(own)
    overridden = monitor(world, "--service", "fm_churn", "--reference", str(own))
    assert overridden["services"]["fm_churn"]["reference"] == str(own)
    assert overridden["services"]["fm_churn"]["dataset_drift"] is False
    assert ("resolved", "dataset_drift", "features:fm_churn") in actions(overridden)


def test_bad_monitoring_input_exits_2_before_anything_runs(world: dict, tmp_path: Path) -> None:
    base = ["features", "monitor", "--repo", str(world["repo"]), "-w", world["url"]]
    base += ["--online", world["online"]]
    reference = tmp_path / "reference.parquet"
    pd.DataFrame({"fm_spend__amount": [1.0]}).to_parquet(reference)
    for args, fragment in (
        (["--service", "nope"], "Unknown feature service 'nope'"),
        (["--reference", str(reference)], "name the service too"),
        (["--service", "fm_churn", "--reference", "missing.parquet"], "'missing.parquet' was not found"),
        (["--stattest", "t"], "'stattest': must be one of"),
    ):
        proc = cli(*base, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert fragment in proc.stderr, (fragment, proc.stderr)


def test_a_training_set_without_reference_and_a_service_without_one(world: dict, tmp_path: Path) -> None:
    proc = cli(
        "features", "training-set", "--repo", str(world["repo"]), "-w", world["url"],
        "--entities", str(world["entities"]), "--service", "fm_churn", "--out", str(tmp_path / "t.parquet"),
        "--no-reference", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reference"] is None
    world["store"].materialize()
    result = world["store"].monitor(service="fm_churn")
    assert result.services == [] and "no reference for service(s) ['fm_churn']" in result.problems[0]


def test_a_sample_of_a_large_online_table_is_read(world: dict) -> None:
    store = world["store"]
    store.materialize()
    frame = store.get_training_set(str(world["entities"]), "fm_churn")
    store.record_reference("fm_churn", frame, n_rows=100)
    result = store.monitor(service="fm_churn", sample_rows=120)
    drift = result.services[0].drift["fm_spend"].columns["fm_spend__amount"]
    assert drift.n_reference == 100 and 60 < drift.n_current < 200  # a Bernoulli sample of about 120 of 300


def test_a_view_changed_since_its_materialisation_is_aged_but_not_read(world: dict) -> None:
    store = world["store"]
    store.materialize()
    frame = store.get_training_set(str(world["entities"]), "fm_churn")
    store.record_reference("fm_churn", frame)
    yaml = world["repo"] / "features.yaml"
    yaml.write_text(REPO.replace("{name: amount, expr: amount}", "{name: spent, expr: amount}"))
    result = store.monitor()
    [view] = result.views
    assert view.stale is True and 4.9 < view.event_age_hours < 5.5 and view.null_rates == {}
    assert "view 'fm_spend' changed since it was last materialised" in result.problems[0]
    assert result.services == []
    assert any("the values of view 'fm_spend' were not checked" in p for p in result.problems)
    assert result.metrics["features"]["freshness.fm_spend.stale"] == 1.0


def test_batches_that_must_not_reach_the_online_store_are_refused_and_nothing_is_written(world: dict) -> None:
    store = world["store"]
    store.materialize()
    before = store.online_states()["fm_spend"]
    bad = orders(now(), seed=3).astype({"shopper_id": "float"})  # after the watermark
    bad.loc[:9, "shopper_id"] = None
    bad["amount"] = None
    future = orders(now() + timedelta(hours=3), seed=4).head(2)  # local times stored as UTC
    with connect(world["url"]) as wh:
        wh.ingest(bad, "fm_orders", if_exists="append")
        wh.ingest(future, "fm_orders", if_exists="append")
    batches = store.compute_batches()
    with pytest.raises(InputError) as caught:
        store.check_batches(batches)
    message = str(caught.value)
    assert "3 problem(s) with the feature batches (nothing was written to the online store)" in message
    # the newest row per entity: the ten rows without a key make one entity
    assert "1 of 291 row(s) have no value for join key(s) ['shopper_id']" in message
    assert "2 source row(s) have event times after now" in message
    assert "feature(s) ['amount', 'big'] are missing in all 291 rows" in message
    assert store.online_states()["fm_spend"] == before
