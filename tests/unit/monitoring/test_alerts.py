"""Alerts end to end: evaluation, the alerts table on DuckDB and PostgreSQL, and real webhook deliveries."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stackml.errors import InputError
from stackml.monitoring.alerts import AlertState, evaluate, evaluated_rules, reconcile
from stackml.monitoring.rules import DEFAULT_RULES, Rule
from stackml.monitoring.sinks import Delivery, LogSink, Notice, WebhookSink
from stackml.warehouse import connect

Receiver = Any  # the conftest's receiver state (conftest modules are not importable here)
HANG = "hang"  # the receiver never answers

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SHARE = Rule("share_high", "drift.share", above=0.3, severity="critical")
ACCURACY = Rule("accuracy_low", "performance.accuracy", below=0.8)
BAND = Rule("share_band", "drift.share", outside_band=3, window="7d")
COLUMNS = Rule("column_drifted", "drift.column.*.drifted", above=0)
PER_COLUMN = Rule("column_each", "drift.column.*.drifted", above=0, subject="{subject}/{match}")


class Recorder:
    """A sink that keeps what it is sent."""

    name = "recorder"

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def send(self, notice: Notice) -> Delivery:
        self.notices.append(notice)
        return Delivery(self.name, True)


def run(store: AlertState, rules: list[Rule], metrics: dict, sinks: list, *, subject: str = "churn", at=T0):
    """One monitoring pass: evaluate, then reconcile."""
    firings = evaluate(rules, metrics, subject=subject)
    return reconcile(firings, evaluated_rules(rules, metrics), subject, store, sinks, now=at)


# -- evaluation -----------------------------------------------------------------------------------------
def test_thresholds_above_and_below() -> None:
    metrics = {"drift.share": 0.5, "performance.accuracy": 0.7, "other": 9.0}
    firings = evaluate([SHARE, ACCURACY], metrics, subject="churn")
    assert [(f.rule.name, f.metric, f.value, f.limit, f.subject) for f in firings] == [
        ("share_high", "drift.share", 0.5, 0.3, "churn"),
        ("accuracy_low", "performance.accuracy", 0.7, 0.8, "churn"),
    ]
    assert firings[0].message == "share_high on churn: drift.share = 0.5 is above 0.3 (window 24h)"
    assert firings[1].message == "accuracy_low on churn: performance.accuracy = 0.7 is below 0.8 (window 24h)"
    assert evaluate([SHARE, ACCURACY], {"drift.share": 0.3, "performance.accuracy": 0.8}, subject="c") == []


def test_bools_count_as_one_and_zero() -> None:
    rule = Rule("dataset_drift", "drift.dataset", above=0)
    assert [f.value for f in evaluate([rule], {"drift.dataset": True}, subject="c")] == [1.0]
    assert evaluate([rule], {"drift.dataset": False}, subject="c") == []


def test_band_from_history() -> None:
    history = {"drift.share": [0.10, 0.12, 0.08, 0.11, 0.09]}  # mean 0.1, sd 0.0158
    (firing,) = evaluate([BAND], {"drift.share": 0.2}, history=history, subject="churn")
    assert firing.limit == pytest.approx(0.1 + 3 * 0.015811, abs=1e-5)
    assert "is outside mean +- 3 sd [0.05257, 0.1474] of 5 earlier windows (window 7d)" in firing.message
    (low,) = evaluate([BAND], {"drift.share": 0.0}, history=history, subject="churn")
    assert low.limit == pytest.approx(0.1 - 3 * 0.015811, abs=1e-5)
    assert evaluate([BAND], {"drift.share": 0.13}, history=history, subject="churn") == []


def test_band_needs_enough_history() -> None:
    metrics = {"drift.share": 5.0}
    for history in (None, {}, {"drift.share": [0.1, 0.1]}, {"drift.share": [0.1, math.nan, 0.2]}):
        assert evaluate([BAND], metrics, history=history, subject="c") == []
        assert evaluated_rules([BAND], metrics, history=history) == []  # not judged: its alert stays as is
    flat = {"drift.share": [0.1, 0.1, 0.1]}
    assert evaluate([BAND], {"drift.share": 0.1}, history=flat, subject="c") == []
    assert len(evaluate([BAND], {"drift.share": 0.11}, history=flat, subject="c")) == 1


def test_glob_metrics() -> None:
    metrics = {
        "drift.column.age.drifted": True,
        "drift.column.geo.lat.drifted": True,
        "drift.column.income.drifted": False,
        "drift.column.empty.drifted": math.nan,  # not computed: not judged
        "drift.column.age.score": 0.9,
    }
    firings = evaluate([COLUMNS, PER_COLUMN], metrics, subject="churn")
    assert [(f.rule.name, f.metric, f.subject) for f in firings] == [
        ("column_drifted", "drift.column.age.drifted", "churn"),
        ("column_drifted", "drift.column.geo.lat.drifted", "churn"),
        ("column_each", "drift.column.age.drifted", "churn/age"),
        ("column_each", "drift.column.geo.lat.drifted", "churn/geo.lat"),
    ]
    assert evaluated_rules([COLUMNS, SHARE, ACCURACY], metrics) == [COLUMNS]


def test_bad_evaluate_input() -> None:
    with pytest.raises(InputError, match="'subject' must be a non-empty text"):
        evaluate([SHARE], {"drift.share": 1}, subject="")
    with pytest.raises(InputError, match="Alert rules must be Rule objects, got dict"):
        evaluate([{"name": "x"}], {"drift.share": 1}, subject="c")  # type: ignore[list-item]
    with pytest.raises(InputError, match="Alert rules must be Rule objects"):
        evaluated_rules(["x"], {"drift.share": 1})  # type: ignore[list-item]


# -- the alerts table, on DuckDB and PostgreSQL ---------------------------------------------------------
def test_open_once_stay_quiet_resolve_and_open_again(warehouse_url: str) -> None:
    sink = Recorder()
    with connect(warehouse_url) as wh:
        store = AlertState(wh)
        assert wh.has_table("alerts")
        (opened,) = run(store, [SHARE], {"drift.share": 0.5}, [sink])
        assert opened.action == "opened" and opened.delivered is True
        first = opened.alert
        shown = (first.rule, first.subject, first.status, first.value, first.limit_value)
        assert shown == ("share_high", "churn", "open", 0.5, 0.3)
        assert first.opened_at == first.updated_at == T0 and first.notified
        assert [(n.kind, n.alert_id) for n in sink.notices] == [("opened", first.id)]

        # Fires again, twice: the value follows, nothing is sent.
        for step, value in ((1, 0.6), (2, 0.7)):
            (again,) = run(store, [SHARE], {"drift.share": value}, [sink], at=T0 + timedelta(hours=step))
            shown = (again.action, again.alert.id, again.alert.value, again.deliveries)
            assert shown == ("still_open", first.id, value, ())
            assert again.alert.updated_at == T0 + timedelta(hours=step) and again.delivered is None
        assert len(sink.notices) == 1
        assert len(store.open_alerts()) == 1

        # Not judged (no metric): left alone.
        assert run(store, [SHARE], {"performance.accuracy": 0.9}, [sink]) == []
        assert store.open_alerts()[0].id == first.id

        # Recovered: resolved, with a resolved notice.
        (resolved,) = run(store, [SHARE], {"drift.share": 0.1}, [sink], at=T0 + timedelta(hours=3))
        assert (resolved.action, resolved.alert.id, resolved.alert.status) == (
            "resolved",
            first.id,
            "resolved",
        )
        assert resolved.alert.resolved_at == T0 + timedelta(hours=3)
        assert [n.kind for n in sink.notices] == ["opened", "resolved"]
        assert sink.notices[1].text.startswith("[RESOLVED] share_high on churn no longer fires")
        assert store.open_alerts() == []
        assert run(store, [SHARE], {"drift.share": 0.1}, [sink]) == []  # nothing left to resolve

        # Fires again: a new alert.
        (reopened,) = run(store, [SHARE], {"drift.share": 0.9}, [sink], at=T0 + timedelta(hours=4))
        assert reopened.action == "opened" and reopened.alert.id != first.id
        assert [n.kind for n in sink.notices] == ["opened", "resolved", "opened"]
        assert [(a.id, a.status) for a in store.alerts()] == [
            (first.id, "resolved"),
            (reopened.alert.id, "open"),
        ]
        shown = json.loads(json.dumps([e.as_dict() for e in (opened, again, resolved)]))  # the CLI's --json
        assert [(e["action"], e["alert"]["status"], e["delivered"]) for e in shown] == [
            ("opened", "open", True),
            ("still_open", "open", None),
            ("resolved", "resolved", True),
        ]
        assert shown[0]["deliveries"] == [
            {"sink": "recorder", "delivered": True, "attempts": 1, "error": None}
        ]
        assert shown[2]["alert"]["resolved_at"] == (T0 + timedelta(hours=3)).isoformat()


def test_a_glob_rule_gathers_its_metrics_into_one_alert(warehouse_url: str) -> None:
    sink = Recorder()
    columns = {f"drift.column.c{i}.drifted": True for i in range(8)}
    with connect(warehouse_url) as wh:
        store = AlertState(wh)
        (event,) = run(store, [COLUMNS], columns, [sink])
        assert event.action == "opened" and len(sink.notices) == 1
        assert event.alert.message == (
            "column_drifted on churn: drift.column.c0.drifted = 1 is above 0 (window 24h); also "
            "drift.column.c1.drifted = 1, drift.column.c2.drifted = 1, drift.column.c3.drifted = 1, "
            "drift.column.c4.drifted = 1, drift.column.c5.drifted = 1 and 2 more"
        )
        # One column recovers, the others still drift: the alert stays open, quietly.
        (event,) = run(store, [COLUMNS], columns | {"drift.column.c0.drifted": False}, [sink])
        assert event.action == "still_open" and len(sink.notices) == 1


def test_one_alert_per_match_with_a_subject_template(warehouse_url: str) -> None:
    sink = Recorder()
    with connect(warehouse_url) as wh:
        store = AlertState(wh)
        metrics = {"drift.column.age.drifted": True, "drift.column.income.drifted": True}
        assert [e.alert.subject for e in run(store, [PER_COLUMN], metrics, [sink])] == [
            "churn/age",
            "churn/income",
        ]
        events = run(store, [PER_COLUMN], metrics | {"drift.column.age.drifted": False}, [sink])
        assert [(e.action, e.alert.subject) for e in events] == [
            ("still_open", "churn/income"),
            ("resolved", "churn/age"),
        ]
        assert [n.kind for n in sink.notices] == ["opened", "opened", "resolved"]


def test_other_subjects_and_unjudged_rules_are_left_alone(warehouse_url: str) -> None:
    with connect(warehouse_url) as wh:
        store = AlertState(wh)
        run(store, [SHARE, ACCURACY], {"drift.share": 0.5, "performance.accuracy": 0.5}, [], subject="churn")
        run(store, [SHARE], {"drift.share": 0.5}, [], subject="churn-v2")
        # churn recovers on drift; accuracy has no labels this time (not judged).
        events = run(store, [SHARE, ACCURACY], {"drift.share": 0.1}, [], subject="churn")
        assert [(e.action, e.alert.rule, e.alert.subject) for e in events] == [
            ("resolved", "share_high", "churn")
        ]
        assert {(a.rule, a.subject) for a in store.open_alerts()} == {
            ("accuracy_low", "churn"),
            ("share_high", "churn-v2"),
        }
        assert [a.subject for a in store.open_alerts("churn-v2")] == ["churn-v2"]
        assert not events[0].alert.notified  # no sinks: nobody was told


def test_default_rules_raise_alerts_at_once(warehouse_url: str) -> None:
    metrics = {
        "drift.dataset": True,
        "drift.column.age.drifted": True,
        "quality.broken": 2.0,
        "freshness.orders.stale": True,
        "freshness.users.stale": False,
    }
    with connect(warehouse_url) as wh:
        events = run(AlertState(wh), list(DEFAULT_RULES), metrics, [])
        assert [(e.alert.rule, e.alert.subject, e.alert.severity) for e in events] == [
            ("column_drifted", "churn", "warning"),
            ("dataset_drift", "churn", "critical"),
            ("quality_broken", "churn", "critical"),
            ("table_stale", "churn/orders", "critical"),
        ]


def test_schema_qualified_table_and_a_foreign_table_of_that_name(warehouse_url: str) -> None:
    with connect(warehouse_url) as wh:
        store = AlertState(wh, table="monitoring.alerts")
        run(store, [SHARE], {"drift.share": 0.5}, [])
        assert (
            wh.has_table("monitoring.alerts") and len(AlertState(wh, "monitoring.alerts").open_alerts()) == 1
        )
        wh.execute("CREATE TABLE alerts (id INTEGER, note TEXT)")
        with pytest.raises(
            InputError, match="The table 'alerts' .* is not an alerts table: missing columns"
        ) as err:
            AlertState(wh)
        assert "table='monitoring_alerts'" in (err.value.hint or "")


@pytest.mark.postgres
def test_postgres_never_holds_two_open_alerts_of_one_rule_and_subject(postgres_url: str) -> None:
    with connect(postgres_url) as wh:
        store = AlertState(wh, table="race_alerts")
        run(store, [SHARE], {"drift.share": 0.5}, [])
        with pytest.raises(InputError, match="duplicate key value violates unique constraint"):
            wh.execute(
                "INSERT INTO race_alerts (rule, subject, metric, severity, status, opened_at, updated_at) "
                "VALUES ('share_high', 'churn', 'drift.share', 'critical', 'open', now(), now())"
            )
        wh.execute("DROP TABLE race_alerts")
        wh.execute("DROP SEQUENCE race_alerts_id_seq")

    # Eight monitors at once on a fresh database, each on its own connection: all create the table
    # without tripping over each other, and exactly one opens the alert and notifies.
    barrier, sinks, results, errors = threading.Barrier(8, timeout=20), [Recorder() for _ in range(8)], [], []

    def monitor(sink: Recorder) -> None:
        try:
            with connect(postgres_url) as own:
                barrier.wait()
                results.extend(
                    run(AlertState(own, table="race_alerts"), [SHARE], {"drift.share": 0.7}, [sink])
                )
        except Exception as exc:  # noqa: BLE001 - collected, so the test fails with it
            errors.append(exc)

    threads = [threading.Thread(target=monitor, args=(s,)) for s in sinks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(e.action for e in results) == ["opened"] + ["still_open"] * 7
    assert sum(len(s.notices) for s in sinks) == 1
    with connect(postgres_url) as wh:
        assert len(AlertState(wh, table="race_alerts").open_alerts()) == 1
        wh.execute("DROP TABLE race_alerts")


# -- sinks ------------------------------------------------------------------------------------------------
def test_a_real_webhook_hears_one_open_and_one_resolve(
    warehouse_url: str, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    sink = WebhookSink(hook.url, timeout_s=2, retries=1, backoff_s=0.01)
    with connect(warehouse_url) as wh:
        store = AlertState(wh)
        for value in (0.5, 0.6, 0.7):
            run(store, [SHARE], {"drift.share": value}, [sink])
        (resolved,) = run(store, [SHARE], {"drift.share": 0.1}, [sink])
        assert resolved.delivered and resolved.alert.notified
    assert [b["alert"]["kind"] for b in hook.bodies] == ["opened", "resolved"]
    opened = hook.bodies[0]
    assert opened["text"] == "[CRITICAL] share_high on churn: drift.share = 0.5 is above 0.3 (window 24h)"
    assert opened["alert"] | {"opened_at": None} == {
        "kind": "opened",
        "alert_id": resolved.alert.id,
        "rule": "share_high",
        "subject": "churn",
        "metric": "drift.share",
        "severity": "critical",
        "value": 0.5,
        "limit": 0.3,
        "message": "share_high on churn: drift.share = 0.5 is above 0.3 (window 24h)",
        "opened_at": None,
        "resolved_at": None,
    }
    assert datetime.fromisoformat(opened["alert"]["opened_at"]) == T0
    assert hook.bodies[1]["text"].startswith("[RESOLVED] share_high on churn no longer fires (last: ")
    assert hook.bodies[1]["alert"]["value"] == 0.7
    assert hook.headers[0]["Content-Type"] == "application/json"


def test_webhook_retries_5xx_then_delivers(receiver: Callable[..., Receiver]) -> None:
    hook = receiver(500, 503, default=200)
    with connect("duckdb:///:memory:") as wh:
        (event,) = run(AlertState(wh), [SHARE], {"drift.share": 0.5}, [WebhookSink(hook.url, backoff_s=0.01)])
    assert event.delivered and event.deliveries == (Delivery("webhook", True, attempts=3),)
    assert len(hook.bodies) == 3 and event.alert.notified


def test_a_webhook_known_down_gets_one_attempt_until_it_answers(receiver: Callable[..., Receiver]) -> None:
    hook = receiver(503, 503, 503, 200, 503, 200)
    sink = WebhookSink(hook.url, retries=2, backoff_s=0.01)
    notice = Notice("opened", 1, "r", "s", "m", "warning", 1.0, 0.0, "msg")
    attempts = [(d.delivered, d.attempts) for d in (sink.send(notice) for _ in range(3))]
    assert attempts == [(False, 3), (True, 1), (True, 2)]  # after a success, the whole ladder again
    assert sink.send(notice).error is None and len(hook.bodies) == 7


def test_a_webhook_that_never_answers_times_out_and_the_monitor_goes_on(
    receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    hook = receiver(default=HANG)  # type: ignore[arg-type]
    sinks = [WebhookSink(hook.url, timeout_s=0.2, retries=2, backoff_s=0.01), LogSink()]
    started = time.perf_counter()
    with connect("duckdb:///:memory:") as wh:
        store = AlertState(wh)
        (event,) = run(store, [SHARE], {"drift.share": 0.5}, sinks)
        assert time.perf_counter() - started < 3
        webhook, log = event.deliveries
        assert (webhook.delivered, webhook.attempts, webhook.error) == (False, 3, "no answer within 0.2 s")
        assert log.delivered and event.delivered is False
        assert event.error == "webhook: no answer within 0.2 s"
        (row,) = store.open_alerts()
        assert row.id == event.alert.id and not row.notified
        assert len(hook.bodies) == 3
        # Two more alerts open: the receiver is known to be down, so each gets one attempt, not three.
        events = run(store, [ACCURACY], {"performance.accuracy": 0.1}, sinks, subject="a")
        events += run(store, [ACCURACY], {"performance.accuracy": 0.1}, sinks, subject="b")
        assert [e.deliveries[0].attempts for e in events] == [1, 1] and len(hook.bodies) == 5
        assert time.perf_counter() - started < 4
    assert "Webhook 127.0.0.1:" in caplog.text and "did not take alert" in caplog.text
    assert "/hook" not in caplog.text  # the URL's path (a Slack secret) is never logged


def test_webhook_failures_that_are_final_or_unreachable(receiver: Callable[..., Receiver]) -> None:
    hook = receiver(404)
    notice = Notice("opened", 1, "r", "s", "m", "warning", 1.0, 0.0, "msg")
    refused = WebhookSink(hook.url, retries=3, backoff_s=0.01).send(notice)
    assert (refused.delivered, refused.attempts) == (False, 1)  # a 4xx is not retried
    assert refused.error == "HTTP 404 Not Found: receiver says no"
    # A port nobody listens on (just freed): connection refused, retried.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = WebhookSink(f"http://127.0.0.1:{port}/hook", retries=1, backoff_s=0.01).send(notice)
    assert (closed.delivered, closed.attempts) == (False, 2)
    assert closed.error is not None and closed.error.startswith(f"cannot connect to 127.0.0.1:{port}: ")


def test_webhook_sink_arguments_are_all_checked() -> None:
    with pytest.raises(InputError) as caught:
        WebhookSink("ftp://x", timeout_s=0, retries=-1, backoff_s=-1)
    message = caught.value.message
    assert message.startswith("4 problem(s) with the webhook sink")
    for part in (
        "'url' must be an http:// or https:// URL",
        "'timeout_s' must be a number > 0",
        "'retries' must be an int >= 0",
        "'backoff_s' must be a number >= 0",
    ):
        assert part in message


def test_log_sink_levels_and_a_sink_that_raises(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        name = "broken"

        def send(self, notice: Notice) -> Delivery:
            raise RuntimeError("boom")

    caplog.set_level(logging.INFO)
    with connect("duckdb:///:memory:") as wh:
        store = AlertState(wh)
        (opened,) = run(store, [SHARE, ACCURACY], {"drift.share": 0.5}, [Broken(), LogSink()])
        (resolved,) = run(store, [SHARE], {"drift.share": 0.1}, [LogSink()])
    assert opened.error == "broken: RuntimeError: boom" and not opened.alert.notified
    assert resolved.delivered and resolved.alert.notified
    assert "Alert sink broken failed on alert" in caplog.text
    notices = [(r.levelname, r.getMessage()[:12]) for r in caplog.records if r.getMessage().startswith("[")]
    assert notices == [("CRITICAL", "[CRITICAL] s"), ("INFO", "[RESOLVED] s")]
    assert all(r.name == "stackml.monitoring.alerts" for r in caplog.records)
