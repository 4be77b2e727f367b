"""The pure parts of feature monitoring and the checked pipeline, without services: freshness limits in a
repo, the online digest that ignores them, the checks of a batch before it is written, the metrics a pass
hands to the alert rules, the reference's table and sample, and the monitoring configuration."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.features import FeatureView, load_repo
from stackml.features.config import FeatureMonitorConfig, FeaturesRunConfig
from stackml.features.monitor import SUBJECT, ServiceHealth, ViewHealth, metrics_of, service_subject
from stackml.features.online import Batch, view_digest
from stackml.features.reference import read_reference, record_reference, reference_table
from stackml.features.registry import _parse, digest
from stackml.features.validation import ALL_NULL_MIN_ROWS, batch_problems
from stackml.monitoring.alerts import evaluate
from stackml.monitoring.drift import dataset_drift
from stackml.monitoring.quality import quality_checks
from stackml.monitoring.rules import DEFAULT_RULES
from stackml.warehouse import connect

REPO = """\
entities: [{name: customer, join_keys: [customer_id]}]
sources: [{name: orders, table: orders}]
feature_views:
  - name: customer_orders
    entities: [customer]
    source: orders
    ttl: 30d
    freshness: 2h
    features: [{name: amount, expr: amount}, {name: big, expr: "amount > 100"}]
services: [{name: churn, features: [customer_orders]}]
"""
NOW = datetime(2026, 3, 1, 12, 0)


@pytest.fixture
def defs(tmp_path: Path):
    (tmp_path / "features.yaml").write_text(REPO)
    return load_repo(tmp_path)


def test_freshness_is_read_like_a_ttl_and_kept_in_the_registry_json(defs, tmp_path: Path) -> None:
    view = defs.view("customer_orders")
    assert (view.ttl, view.freshness) == (30 * 86400, 7200)
    assert defs.to_dict()["feature_views"][0]["freshness"] == 7200
    import json

    assert _parse(json.dumps(defs.to_dict())) == defs  # the registry reads it back
    (tmp_path / "features.yaml").write_text(REPO.replace("    freshness: 2h\n", ""))
    assert load_repo(tmp_path).view("customer_orders").freshness is None  # no limit, no check
    assert "freshness" not in load_repo(tmp_path).to_dict()["feature_views"][0]


@pytest.mark.parametrize("bad", ["0", 0, "2x", -1, True])
def test_a_bad_freshness_limit_is_a_problem_named_with_its_view(tmp_path: Path, bad: object) -> None:
    (tmp_path / "features.yaml").write_text(REPO.replace("freshness: 2h", f"freshness: {bad}"))
    with pytest.raises(InputError, match="feature view 'customer_orders': the freshness limit must be"):
        load_repo(tmp_path)


def test_changing_the_freshness_limit_keeps_the_online_digest(defs) -> None:
    view = defs.view("customer_orders")
    looser = replace(view, freshness=86400)
    others = replace(defs, views=(looser,))
    assert view_digest(others, looser) == view_digest(defs, view)
    assert digest(others) != digest(defs)  # the registry still records the change
    longer = replace(view, ttl=86400)
    assert view_digest(replace(defs, views=(longer,)), longer) != view_digest(defs, view)


def _batch(frame: pd.DataFrame, **changes: object) -> Batch:
    values: dict = {
        "view": "customer_orders",
        "since": None,
        "until": NOW,
        "rebuild": False,
        "digest": "d",
        "frame": frame,
        "types": {"customer_id": "BIGINT", "amount": "DOUBLE", "big": "BOOLEAN"},
        "computed_at": NOW,
        "ahead_rows": 0,
    }
    return Batch(**(values | changes))  # type: ignore[arg-type]


def _rows(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": range(n),
            "amount": np.linspace(1, 200, n),
            "big": np.linspace(1, 200, n) > 100,
            "event_timestamp": pd.Timestamp(NOW),
            "created_timestamp": pd.NaT,
        }
    )


STORED = {"customer_id": "bigint", "amount": "double precision", "big": "boolean"}


def test_a_clean_batch_has_no_problems(defs) -> None:
    assert batch_problems(defs, _batch(_rows(20)), STORED) == []
    assert batch_problems(defs, _batch(_rows(0)), None) == []


def test_every_problem_of_a_batch_is_found_at_once(defs) -> None:
    frame = _rows(20).astype({"customer_id": "float"})
    frame.loc[[3, 7], "customer_id"] = None
    frame["big"] = None
    batch = _batch(
        frame,
        types={"customer_id": "BIGINT", "amount": "VARCHAR", "big": "BOOLEAN"},
        ahead_rows=4,
        ahead_newest=NOW + timedelta(hours=3),
    )
    problems = batch_problems(defs, batch, STORED)
    assert len(problems) == 4, problems
    keys, future, clash, empty = problems
    assert "2 of 20 row(s) have no value for join key(s) ['customer_id']" in keys
    assert "4 source row(s) have event times after now (2026-03-01 12:00 UTC)" in future
    assert "newest at 2026-03-01 15:00" in future
    assert "column 'amount' is VARCHAR in the warehouse but double precision in the online table" in clash
    assert "feature(s) ['big'] are missing in all 20 rows" in empty
    assert all(p.startswith("feature view 'customer_orders': ") for p in problems)


def test_what_a_batch_may_hold(defs) -> None:
    few = _rows(ALL_NULL_MIN_ROWS - 1).assign(big=None)
    assert batch_problems(defs, _batch(few), STORED) == []  # too few rows to call a feature broken
    skew = _batch(_rows(20), ahead_rows=2, ahead_newest=NOW + timedelta(minutes=2))
    assert batch_problems(defs, skew, STORED) == []  # within the clock skew allowed
    rebuilt = _batch(_rows(20), rebuild=True, types={**_batch(_rows(1)).types, "amount": "VARCHAR"})
    assert batch_problems(defs, rebuilt, STORED) == []  # a rebuilt table takes the new types
    dated = _batch(_rows(20), types={"customer_id": "INTEGER", "amount": "DECIMAL(10,2)", "big": "BOOLEAN"})
    assert batch_problems(defs, dated, STORED) == []  # numbers of another width fit


def test_the_metrics_feed_the_monitoring_default_rules() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"v__x": rng.normal(0, 1, 400), "v__c": rng.choice(["a", "b"], 400)})
    current = pd.DataFrame({"v__x": rng.normal(3, 1, 400), "v__c": rng.choice(["a", "b"], 400)})
    drift = dataset_drift(reference, current)
    quality = quality_checks(reference, current)
    service = ServiceHealth("churn", "table t", 400, {"v": drift}, {"v": quality}, drift_share=0.5)
    stale = ViewHealth("v", 2.0, entities=400, event_age_hours=5.0, materialized_age_hours=0.1, stale=True)
    stale = replace(stale, materialized_at=NOW, null_rates={"v__x": 0.25})
    unlimited = ViewHealth("w", None, reason="view 'w' has not been materialised")
    metrics = metrics_of([stale, unlimited], [service])
    assert set(metrics) == {SUBJECT, service_subject("churn")} == {"features", "features:churn"}
    assert metrics["features"] == {
        "freshness.v.stale": 1.0,
        "freshness.v.age_hours": 5.0,
        "freshness.v.materialized_age_hours": 0.1,
        "online.v.entities": 400.0,
        "null_rate.v__x": 0.25,
    }
    assert metrics["features:churn"]["drift.column.v__x.drifted"] == 1.0
    assert metrics["features:churn"]["drift.share"] == 0.5 and metrics["features:churn"]["drift.dataset"] == 1
    assert metrics["features:churn"]["quality.broken"] == len(quality.broken) > 0
    fired = {
        (f.rule.name, f.subject)
        for subject, values in metrics.items()
        for f in evaluate(DEFAULT_RULES, values, subject=subject)
    }
    assert fired == {
        ("table_stale", "features/v"),
        ("column_drifted", "features:churn"),
        ("dataset_drift", "features:churn"),
        ("quality_broken", "features:churn"),
    }


def test_the_reference_is_a_seeded_sample_in_its_own_table() -> None:
    assert reference_table("churn") == "stackml_feature_ref_churn"
    assert reference_table("Churn") != reference_table("churn")  # tables fold case: a digest keeps them apart
    assert len(reference_table("x" * 63)) == 63
    frame = pd.DataFrame({"id": range(1000), "v__a": np.arange(1000.0), "v__b": np.arange(1000) % 3})
    with connect("duckdb:///:memory:") as wh:
        assert read_reference(wh, "churn") is None
        recorded = record_reference(wh, "churn", frame, ["v__a", "v__b"], n_rows=100, random_state=1)
        assert (recorded.rows, recorded.of_rows, recorded.table) == (100, 1000, "stackml_feature_ref_churn")
        kept = read_reference(wh, "churn")
        assert list(kept.columns) == ["v__a", "v__b"] and len(kept) == 100
        again = record_reference(wh, "churn", frame, ["v__a", "v__b"], n_rows=100, random_state=1)
        assert again == recorded and read_reference(wh, "churn").equals(kept)  # seeded; replaced
        record_reference(wh, "churn", frame.head(10), ["v__a"])
        assert read_reference(wh, "churn").shape == (10, 1)
        with pytest.raises(InputError, match=r"lacks \['v__z'\]"):
            record_reference(wh, "churn", frame, ["v__a", "v__z"])
        with pytest.raises(InputError, match="has no rows"):
            record_reference(wh, "churn", frame.head(0), ["v__a"])


def test_the_monitoring_configuration_reports_every_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        FeatureMonitorConfig(
            stattest="t-test", drift_share=0, webhook="ftp://x", rules=str(tmp_path / "r.yaml")
        )
    message = str(caught.value)
    assert "4 problem(s) with the feature monitoring configuration" in message
    for fragment in ("'stattest': must be one of", "'drift_share'", "http:// or https://", "was not found"):
        assert fragment in message
    reference = tmp_path / "ref.parquet"
    reference.write_bytes(b"")
    with pytest.raises(InputError, match="'reference' replaces one service's reference: name the service"):
        FeatureMonitorConfig(reference=str(reference))
    assert FeatureMonitorConfig(service="churn", reference=str(reference)).reference == str(reference)
    assert FeatureMonitorConfig().drift_share == 0.5  # the model monitor's default
    run = FeaturesRunConfig(repo=str(tmp_path), views="a, b")
    assert FeaturesRunConfig.from_json(run.to_json()) == run and run.views == ("a", "b")
    with pytest.raises(InputError, match="is not a folder"):
        FeaturesRunConfig(repo=str(tmp_path / "nowhere"))


def test_a_python_view_may_give_its_freshness_as_text(tmp_path: Path) -> None:
    (tmp_path / "features.yaml").write_text(REPO)
    (tmp_path / "more.py").write_text(
        "from datetime import timedelta\nfrom stackml.features import Feature, FeatureView\n"
        "fast = FeatureView('fast', entities=('customer',), source='orders', features=(Feature('n', '1'),), "
        "freshness=timedelta(minutes=30))\n"
    )
    assert load_repo(tmp_path).view("fast").freshness == 1800
    assert FeatureView("v", ("e",), "s", ()).freshness is None
