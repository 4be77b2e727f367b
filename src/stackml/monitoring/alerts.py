"""Alerts: judge metrics by the rules, keep one open alert per rule and subject, tell the sinks once.

Three steps, each a plain function or object:

1. :func:`evaluate` turns the rules and this window's metrics into :class:`Firing` s (which rule fires for
   which metric, with the value, the limit and a message); :func:`evaluated_rules` says which rules could be
   judged at all (a rule whose metrics are missing, or a band rule without enough history, was not).
2. :class:`AlertState` keeps every alert in an ``alerts`` table of the warehouse (DuckDB or PostgreSQL),
   created when missing; at most one alert per rule and subject is open.
3. :func:`reconcile` opens an alert for a new firing and notifies the sinks; while it stays open, firing
   again only updates its value and time (no storm); when its rule is judged again and no longer fires,
   it resolves it and sends a resolved notice. Alerts of rules not judged this time are left alone.

The ``alerts`` table (times in UTC)::

    id           BIGINT PRIMARY KEY (from the sequence <table>_id_seq)
    rule         TEXT NOT NULL          the rule's name
    subject      TEXT NOT NULL          what the alert is about (the rule's subject template, rendered)
    metric       TEXT NOT NULL          the metric that fired (the furthest past its limit, for a glob)
    severity     TEXT NOT NULL          info | warning | critical
    status       TEXT NOT NULL          open | resolved
    value        DOUBLE PRECISION       the metric's last value while open
    limit_value  DOUBLE PRECISION       the limit it crossed
    message      TEXT                   what fired, by how much
    opened_at    TIMESTAMP WITH TIME ZONE
    updated_at   TIMESTAMP WITH TIME ZONE   the last time it fired (or resolved)
    resolved_at  TIMESTAMP WITH TIME ZONE
    notified     BOOLEAN NOT NULL       every sink took the last notice (opened, then resolved)

Two monitors cannot open the same alert twice: each change is one statement (``INSERT ... WHERE NOT
EXISTS``, ``UPDATE ... WHERE status = 'open'``), and on PostgreSQL a unique partial index on
``(rule, subject) WHERE status = 'open'`` settles a race (the loser's insert does nothing and it updates
instead); a DuckDB file has one writing process anyway. Only the monitor whose statement opened (or
resolved) an alert sends its notice.

Example:
    >>> from stackml.warehouse import connect
    >>> from stackml.monitoring.alerts import AlertState, evaluate, evaluated_rules, reconcile
    >>> from stackml.monitoring.rules import DEFAULT_RULES
    >>> metrics = {"drift.dataset": True, "drift.column.age.drifted": True, "quality.broken": 0}
    >>> firings = evaluate(DEFAULT_RULES, metrics, subject="churn")
    >>> [(f.rule.name, f.metric) for f in firings]
    [('column_drifted', 'drift.column.age.drifted'), ('dataset_drift', 'drift.dataset')]
    >>> with connect("duckdb:///:memory:") as wh:
    ...     judged = evaluated_rules(DEFAULT_RULES, metrics)
    ...     events = reconcile(firings, judged, "churn", AlertState(wh), sinks=[])
    ...     [(e.action, e.alert.rule) for e in events]
    [('opened', 'column_drifted'), ('opened', 'dataset_drift')]
"""

from __future__ import annotations

import logging
import math
import statistics
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from stackml.checks import is_number, missing_columns_problem
from stackml.errors import InputError
from stackml.monitoring.rules import MIN_HISTORY, Rule, format_window
from stackml.monitoring.sinks import Delivery, Notice, Sink
from stackml.warehouse.identifiers import fold_table_name, quote_table, split_table

if TYPE_CHECKING:
    import pandas as pd

    from stackml.warehouse import Warehouse

__all__ = ["Firing", "evaluate", "evaluated_rules", "Alert", "AlertState", "AlertEvent", "reconcile"]

log = logging.getLogger(__name__)

COLUMNS = (
    "id",
    "rule",
    "subject",
    "metric",
    "severity",
    "status",
    "value",
    "limit_value",
    "message",
    "opened_at",
    "updated_at",
    "resolved_at",
    "notified",
)
_MORE_SHOWN = 5  # other firing metrics named in a glob alert's message


# -- evaluation ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Firing:
    """A rule firing for one metric.

    Attributes:
        rule: the rule.
        subject: the alert's subject (the rule's template, rendered).
        metric: the metric name that fired.
        value: its value (a bool as 1 or 0).
        limit: the limit it crossed (for a band, the side it left).
        message: what fired, by how much, over which window.
        excess: how far past the limit: in the metric's units for a threshold, in sd for a band.
    """

    rule: Rule
    subject: str
    metric: str
    value: float
    limit: float
    message: str
    excess: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "subject": self.subject,
            "metric": self.metric,
            "severity": self.rule.severity,
            "value": self.value,
            "limit": self.limit,
            "message": self.message,
        }


@dataclass(frozen=True)
class _Judgement:
    fires: bool
    limit: float
    excess: float
    text: str


def _judge(rule: Rule, value: float, past: Sequence[Any] | None) -> _Judgement | None:
    """The verdict of ``rule`` on ``value``; ``None`` when it cannot judge (a band without enough history)."""
    if rule.above is not None:
        return _Judgement(value > rule.above, rule.above, value - rule.above, f"is above {rule.above:.4g}")
    if rule.below is not None:
        return _Judgement(value < rule.below, rule.below, rule.below - value, f"is below {rule.below:.4g}")
    k = rule.outside_band
    assert k is not None
    known = [float(v) for v in past or () if _number(v) is not None]
    if len(known) < MIN_HISTORY:
        return None
    mean, sd = statistics.fmean(known), statistics.stdev(known)
    low, high = mean - k * sd, mean + k * sd
    past_band = abs(value - mean) - k * sd
    # Rounding (a mean of 0.1s is not exactly 0.1) must not fire a rule on a flat history, whose band is
    # a point: any other value is outside it.
    fires = past_band > 1e-9 * max(abs(mean), abs(value))
    excess = past_band / sd if sd > 0 else (math.inf if fires else 0.0)
    text = f"is outside mean +- {k:g} sd [{low:.4g}, {high:.4g}] of {len(known)} earlier windows"
    return _Judgement(fires, high if value >= mean else low, excess, text)


def _number(raw: Any) -> float | None:
    """A finite metric value as a float (bools as 1 and 0); ``None`` for anything else (not judged)."""
    if isinstance(raw, bool):
        return float(raw)
    if is_number(raw) and math.isfinite(float(raw)):
        return float(raw)
    return None


def _judgements(
    rules: Iterable[Rule], metrics: Mapping[str, Any], history: Mapping[str, Sequence[Any]] | None
) -> Iterator[tuple[Rule, str, str, float, _Judgement]]:
    """``(rule, metric, match, value, judgement)`` for every metric a rule could judge."""
    history = history or {}
    for rule in rules:
        if not isinstance(rule, Rule):
            raise InputError(
                f"Alert rules must be Rule objects, got {type(rule).__name__} {rule!r}.",
                hint="Build them with stackml.monitoring.rules.Rule(...) or load_rules(path).",
            )
        for key, raw in metrics.items():
            match = rule.match(key)
            value = _number(raw) if match is not None else None
            if value is None:
                continue
            judgement = _judge(rule, value, history.get(key))
            if judgement is not None:
                yield rule, key, match, value, judgement  # type: ignore[misc]  (match is a str here)


def evaluate(
    rules: Iterable[Rule],
    metrics: Mapping[str, float | bool],
    *,
    history: Mapping[str, Sequence[float]] | None = None,
    subject: str,
) -> list[Firing]:
    """Which rules fire for which metric.

    Args:
        rules: the rules (:func:`~stackml.monitoring.rules.load_rules`).
        metrics: this window's metrics by dotted name; bools count as 1 and 0. NaN, infinite and
            non-numeric values are not judged (the check could not compute them).
        history: each metric's values in the earlier windows, for ``outside_band`` rules (which need at
            least :data:`~stackml.monitoring.rules.MIN_HISTORY` finite values to judge).
        subject: what is monitored (e.g. the model's name); the rules' subject templates build on it.

    Returns:
        One :class:`Firing` per rule and metric that fires, in rule order, then metric order.
    """
    if not isinstance(subject, str) or not subject:
        raise InputError(
            f"'subject' must be a non-empty text naming what is monitored, got {subject!r}.",
            hint="Pass the model's or table's name, e.g. subject='churn'.",
        )
    firings = []
    for rule, key, match, value, judgement in _judgements(rules, metrics, history):
        if judgement.fires:
            rendered = rule.render_subject(subject, key, match)
            message = (
                f"{rule.name} on {rendered}: {key} = {value:.4g} {judgement.text} "
                f"(window {format_window(rule.window)})"
            )
            firings.append(Firing(rule, rendered, key, value, judgement.limit, message, judgement.excess))
    return firings


def evaluated_rules(
    rules: Iterable[Rule],
    metrics: Mapping[str, float | bool],
    *,
    history: Mapping[str, Sequence[float]] | None = None,
) -> list[Rule]:
    """The rules that could judge at least one metric: those :func:`reconcile` may resolve."""
    judged: dict[str, Rule] = {}
    for rule, *_ in _judgements(rules, metrics, history):
        judged.setdefault(rule.name, rule)
    return list(judged.values())


# -- state --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    """One row of the alerts table (see the module docstring for the columns)."""

    id: int
    rule: str
    subject: str
    metric: str
    severity: str
    status: Literal["open", "resolved"]
    value: float | None
    limit_value: float | None
    message: str
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    notified: bool

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (times in ISO 8601)."""
        out = asdict(self)
        for key in ("opened_at", "updated_at", "resolved_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


class AlertState:
    """The alerts table in a warehouse: created when missing, one open alert per rule and subject.

    Args:
        warehouse: an open warehouse (:func:`stackml.warehouse.connect`), DuckDB or PostgreSQL.
        table: the table's name (``alerts`` or ``schema.alerts``).

    Raises:
        InputError: the table exists but lacks the alerts columns (another table of that name).
    """

    def __init__(self, warehouse: Warehouse, table: str = "alerts") -> None:
        self.warehouse = warehouse
        self.table = fold_table_name(table)
        self._quoted = quote_table(self.table)
        self._postgres = warehouse.dialect == "postgres"
        self._create()

    def __repr__(self) -> str:
        return f"AlertState({self.warehouse!r}, table={self.table!r})"

    def _create(self) -> None:
        """Create the table, its sequence and (PostgreSQL) its index when missing; check its columns."""
        exists = self.warehouse.has_table(self.table)
        if exists:
            self._check_columns()
        if self.warehouse.read_only:
            self.warehouse.require_table(self.table)  # nothing to create with; say the table is missing
            return
        if exists and not self._postgres:
            return
        schema, name = split_table(self.table)
        sequence = quote_table(f"{schema + '.' if schema else ''}{name[:56]}_id_seq")
        statements = [f'CREATE SCHEMA IF NOT EXISTS "{schema}"'] if schema else []
        statements += [
            f"CREATE SEQUENCE IF NOT EXISTS {sequence}",
            f"CREATE TABLE IF NOT EXISTS {self._quoted} ("
            f"id BIGINT PRIMARY KEY DEFAULT nextval('{sequence}'), rule TEXT NOT NULL, "
            "subject TEXT NOT NULL, metric TEXT NOT NULL, severity TEXT NOT NULL, "
            "status TEXT NOT NULL CHECK (status IN ('open', 'resolved')), value DOUBLE PRECISION, "
            "limit_value DOUBLE PRECISION, message TEXT, opened_at TIMESTAMP WITH TIME ZONE NOT NULL, "
            "updated_at TIMESTAMP WITH TIME ZONE NOT NULL, resolved_at TIMESTAMP WITH TIME ZONE, "
            "notified BOOLEAN NOT NULL DEFAULT false)",
        ]
        if self._postgres:
            # DuckDB has no partial indexes; a DuckDB file has one writing process, so it needs none.
            # CREATE ... IF NOT EXISTS fails when another monitor creates the same object at that moment:
            # one transaction under an advisory lock (named by the table) makes the monitors take turns.
            statements.append(
                f'CREATE UNIQUE INDEX IF NOT EXISTS "{name[:54]}_one_open" ON {self._quoted} (rule, subject) '
                "WHERE status = 'open'"
            )
            lock = f"SELECT pg_advisory_xact_lock({zlib.crc32(self.table.encode())})"
            self.warehouse.execute(";\n".join([lock, *statements]))
        else:
            for statement in statements:
                self.warehouse.execute(statement)
        if not exists:
            self._check_columns()

    def _check_columns(self) -> None:
        problem = missing_columns_problem(self.warehouse.schema(self.table), COLUMNS)
        if problem:
            raise InputError(
                f"The table '{self.table}' in {self.warehouse.redacted_url()} is not an alerts table: "
                f"{problem}.",
                hint="Pass another table name for the alerts (e.g. table='monitoring_alerts').",
            )

    # -- reads ----------------------------------------------------------------------------------------
    def alerts(
        self,
        *,
        status: Literal["open", "resolved"] | None = None,
        subject: str | None = None,
        rules: Sequence[str] | None = None,
    ) -> list[Alert]:
        """The alerts, oldest first, optionally only those with ``status``, ``subject`` or a rule in
        ``rules``."""
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if subject is not None:
            where.append("subject = ?")
            params.append(subject)
        if rules is not None:
            if not rules:
                return []
            where.append(f"rule IN ({', '.join('?' * len(rules))})")
            params += list(rules)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return _rows(self.warehouse.query(f"SELECT * FROM {self._quoted}{clause} ORDER BY id", params))

    def open_alerts(self, subject: str | None = None) -> list[Alert]:
        """The open alerts (of ``subject``), oldest first: what ``stackml monitor alerts`` lists."""
        return self.alerts(status="open", subject=subject)

    # -- changes: each one statement, so it is atomic on every engine ---------------------------------
    def open(self, firing: Firing, message: str, now: datetime) -> Alert | None:
        """Open an alert for ``firing``; ``None`` when one is open already for its rule and subject."""
        on_conflict = " ON CONFLICT DO NOTHING" if self._postgres else ""
        rows = self.warehouse.query(
            f"INSERT INTO {self._quoted} (rule, subject, metric, severity, status, value, limit_value, "
            "message, opened_at, updated_at, notified) "
            "SELECT :rule, :subject, :metric, :severity, 'open', :value, :limit_value, :message, :now, :now, "
            f"false WHERE NOT EXISTS (SELECT 1 FROM {self._quoted} "
            f"WHERE rule = :rule AND subject = :subject AND status = 'open'){on_conflict} RETURNING *",
            _values(firing, message, now),
        )
        return next(iter(_rows(rows)), None)

    def refresh(self, firing: Firing, message: str, now: datetime) -> Alert | None:
        """Update the open alert of ``firing``'s rule and subject; ``None`` when none is open."""
        rows = self.warehouse.query(
            f"UPDATE {self._quoted} SET metric = :metric, severity = :severity, value = :value, "
            "limit_value = :limit_value, message = :message, updated_at = :now "
            "WHERE rule = :rule AND subject = :subject AND status = 'open' RETURNING *",
            _values(firing, message, now),
        )
        return next(iter(_rows(rows)), None)

    def resolve(self, rule: str, subject: str, now: datetime | None = None) -> Alert | None:
        """Resolve the open alert of ``rule`` and ``subject``; ``None`` when none is open."""
        now = now or datetime.now(UTC)
        rows = self.warehouse.query(
            f"UPDATE {self._quoted} SET status = 'resolved', resolved_at = ?, updated_at = ? "
            "WHERE rule = ? AND subject = ? AND status = 'open' RETURNING *",
            [now, now, rule, subject],
        )
        return next(iter(_rows(rows)), None)

    def mark_notified(self, alert_id: int, notified: bool) -> Alert:
        """Record whether every sink took the last notice of alert ``alert_id``."""
        rows = self.warehouse.query(
            f"UPDATE {self._quoted} SET notified = ? WHERE id = ? RETURNING *", [notified, alert_id]
        )
        return _rows(rows)[0]


def _values(firing: Firing, message: str, now: datetime) -> dict[str, Any]:
    return {
        "rule": firing.rule.name,
        "subject": firing.subject,
        "metric": firing.metric,
        "severity": firing.rule.severity,
        "value": firing.value,
        "limit_value": firing.limit,
        "message": message,
        "now": now,
    }


def _rows(frame: pd.DataFrame) -> list[Alert]:
    import pandas as pd

    def when(value: Any) -> datetime | None:
        return None if pd.isna(value) else pd.Timestamp(value).tz_convert(UTC).to_pydatetime()

    def number(value: Any) -> float | None:
        return None if pd.isna(value) else float(value)

    return [
        Alert(
            id=int(row["id"]),
            rule=row["rule"],
            subject=row["subject"],
            metric=row["metric"],
            severity=row["severity"],
            status=row["status"],
            value=number(row["value"]),
            limit_value=number(row["limit_value"]),
            message=row["message"],
            opened_at=when(row["opened_at"]),  # type: ignore[arg-type]  (NOT NULL)
            updated_at=when(row["updated_at"]),  # type: ignore[arg-type]
            resolved_at=when(row["resolved_at"]),
            notified=bool(row["notified"]),
        )
        for row in frame.to_dict("records")
    ]


# -- reconciliation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertEvent:
    """What one reconciliation did to one alert, and what each sink made of the notice.

    Attributes:
        action: ``"opened"`` (notices sent), ``"still_open"`` (fired again; nothing sent) or
            ``"resolved"`` (notices sent).
        alert: the alert's row after the change.
        deliveries: one per sink, for ``opened`` and ``resolved``.
    """

    action: Literal["opened", "still_open", "resolved"]
    alert: Alert
    deliveries: tuple[Delivery, ...] = ()

    @property
    def delivered(self) -> bool | None:
        """Every sink took the notice; ``None`` when none was sent."""
        return all(d.delivered for d in self.deliveries) if self.deliveries else None

    @property
    def error(self) -> str | None:
        """Why sinks failed (``"webhook: no answer within 5 s"``), or ``None``."""
        failed = [f"{d.sink}: {d.error}" for d in self.deliveries if not d.delivered]
        return "; ".join(failed) or None

    def as_dict(self) -> dict[str, Any]:
        """For the CLI's JSON: ``{"action", "alert": {...}, "delivered", "error", "deliveries"}``."""
        return {
            "action": self.action,
            "alert": self.alert.as_dict(),
            "delivered": self.delivered,
            "error": self.error,
            "deliveries": [d.as_dict() for d in self.deliveries],
        }


def reconcile(
    firings: Sequence[Firing],
    evaluated_rules: Iterable[Rule],
    subject: str,
    store: AlertState,
    sinks: Sequence[Sink] = (),
    *,
    now: datetime | None = None,
) -> list[AlertEvent]:
    """Bring the alerts of ``subject`` in line with this evaluation, and notify ``sinks`` of each change.

    Firings of one rule with one alert subject (a glob rule gathering several columns) make one alert,
    holding the metric furthest past its limit, with the others named in the message.

    Args:
        firings: from :func:`evaluate`.
        evaluated_rules: the rules judged this time (:func:`evaluated_rules`): only their open alerts of
            ``subject`` that did not fire are resolved.
        subject: the monitored subject given to :func:`evaluate`.
        store: the alerts table.
        sinks: where notices go (:class:`~stackml.monitoring.sinks.LogSink`,
            :class:`~stackml.monitoring.sinks.WebhookSink`); a failing sink never raises.
        now: the time recorded (default: now, UTC).

    Returns:
        One :class:`AlertEvent` per alert opened, still open or resolved: firings first, then resolutions.
    """
    now = now or datetime.now(UTC)
    groups: dict[tuple[str, str], list[Firing]] = {}
    for firing in firings:
        groups.setdefault((firing.rule.name, firing.subject), []).append(firing)
    events = []
    for group in groups.values():
        worst = max(group, key=lambda f: f.excess)
        message = _group_message(worst, group)
        alert = store.refresh(worst, message, now)
        if alert is None:
            alert = store.open(worst, message, now)
            if alert is not None:
                events.append(_notify("opened", alert, store, sinks))
                continue
            # Another monitor opened it between our two statements: it sent the notice.
            alert = store.refresh(worst, message, now)
        if alert is not None:
            events.append(AlertEvent("still_open", alert))
    judged = {r.name: r for r in evaluated_rules} | {f.rule.name: f.rule for f in firings}
    for alert in store.alerts(status="open", rules=sorted(judged)):
        if (alert.rule, alert.subject) in groups:
            continue
        if not judged[alert.rule].subject_pattern(subject).match(alert.subject):
            continue  # another monitored subject's alert
        resolved = store.resolve(alert.rule, alert.subject, now)
        if resolved is not None:  # else another monitor resolved it meanwhile, and told the sinks
            events.append(_notify("resolved", resolved, store, sinks))
    return events


def _group_message(worst: Firing, group: list[Firing]) -> str:
    others = [f"{f.metric} = {f.value:.4g}" for f in group if f is not worst]
    if not others:
        return worst.message
    more = f" and {len(others) - _MORE_SHOWN} more" if len(others) > _MORE_SHOWN else ""
    return f"{worst.message}; also {', '.join(others[:_MORE_SHOWN])}{more}"


def _notify(
    action: Literal["opened", "resolved"], alert: Alert, store: AlertState, sinks: Sequence[Sink]
) -> AlertEvent:
    notice = Notice(
        kind=action,
        alert_id=alert.id,
        rule=alert.rule,
        subject=alert.subject,
        metric=alert.metric,
        severity=alert.severity,
        value=alert.value,
        limit=alert.limit_value,
        message=alert.message,
        opened_at=alert.opened_at,
        resolved_at=alert.resolved_at,
    )
    deliveries = []
    for sink in sinks:
        name = getattr(sink, "name", type(sink).__name__)
        try:
            deliveries.append(sink.send(notice))
        except Exception as exc:  # noqa: BLE001 - a sink of the user's own that raises must not stop the monitor
            log.warning("Alert sink %s failed on alert %s: %r", name, alert.id, exc)
            deliveries.append(Delivery(name, False, error=f"{type(exc).__name__}: {exc}"))
    notified = bool(deliveries) and all(d.delivered for d in deliveries)
    return AlertEvent(action, store.mark_notified(alert.id, notified), tuple(deliveries))
