"""Feature monitoring: is the online store fresh, and do the values it serves still look like the training
set? One pass, through the monitoring module's rules, alerts table and sinks (no second alerting system).

Per feature view (monitored subject ``features``):
    * freshness: the age of the newest event time stored online and of the last materialisation, against the
      view's ``freshness`` limit; a view past its limit (or never materialised) is stale;
    * the null rate of each feature among the stored entities.

Per feature service (subject ``features:<service>``), against its reference (the training set
``stackml features training-set`` recorded, or a Parquet file):
    * drift of each feature's stored values (:func:`stackml.monitoring.drift.dataset_drift`, per view: the
      views hold different entities), and of the service's features together;
    * data quality (:func:`stackml.monitoring.quality.quality_checks`): null rates rising, values outside the
      training range, new categories.

Metrics (flat, dotted, as :mod:`stackml.monitoring.rules` reads them)::

    features             freshness.<view>.stale   freshness.<view>.age_hours   freshness.<view>.materialized_age_hours
                         online.<view>.entities   null_rate.<view>__<feature>
    features:<service>   drift.column.<view>__<feature>.drifted | .score | .psi   drift.share   drift.dataset
                         quality.broken

So the monitoring module's default rules apply as they are: a stale view (critical, one alert per view,
subject ``features/<view>``), a drifted feature (warning), drift of the service's features (critical), a
quality break (critical). An alert resolves when its rule is judged again and no longer fires.
"""  # noqa: E501 - the metric table

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stackml.features.config import FeatureMonitorConfig
from stackml.features.definitions import Definitions, FeatureService, FeatureView
from stackml.monitoring.monitor import finite_or_none
from stackml.warehouse import quote_column

if TYPE_CHECKING:
    import pandas as pd

    from stackml.monitoring.drift import DatasetDrift
    from stackml.monitoring.quality import QualityReport
    from stackml.warehouse import Warehouse

__all__ = [
    "SUBJECT",
    "FeatureMonitorResult",
    "ServiceHealth",
    "ViewHealth",
    "check_services",
    "check_views",
    "metrics_of",
    "monitor_features",
    "raise_alerts",
    "service_subject",
]

#: the alert subject of the views' checks (freshness, null rates)
SUBJECT = "features"


def service_subject(service: str) -> str:
    """The alert subject of a service's checks (drift, quality): ``features:<service>``."""
    return f"{SUBJECT}:{service}"


@dataclass(frozen=True)
class ViewHealth:
    """One view in the online store.

    Attributes:
        view: its name.
        limit_hours: its freshness limit (None: no freshness check).
        entities: the entities stored.
        newest_event, event_age_hours: the newest event time stored (naive UTC) and its age at the check.
        materialized_at, materialized_age_hours: the last materialisation and its age.
        stale: past the limit (either age), or not materialised; None without a limit.
        null_rates: ``view__feature`` -> the share of stored entities without a value.
        reason: None, or why its values were not checked (not materialised, or changed since).
    """

    view: str
    limit_hours: float | None
    entities: int = 0
    newest_event: datetime | None = None
    event_age_hours: float | None = None
    materialized_at: datetime | None = None
    materialized_age_hours: float | None = None
    stale: bool | None = None
    null_rates: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "freshness_limit_hours": self.limit_hours,
            "entities": self.entities,
            "newest_event": _iso(self.newest_event),
            "event_age_hours": _rounded(self.event_age_hours),
            "materialized_at": _iso(self.materialized_at),
            "materialized_age_hours": _rounded(self.materialized_age_hours),
            "stale": self.stale,
            "null_rates": {k: _rounded(v) for k, v in self.null_rates.items()},
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ServiceHealth:
    """One service's stored feature values against its reference.

    Attributes:
        service: its name.
        reference: where the reference came from (a warehouse table or a file).
        reference_rows: its rows.
        drift: view -> the drift of that view's features (the views hold different entities).
        quality: view -> the quality checks of that view's features.
        drift_share: the rule's share: the service drifts when at least this share of its tested features do.
    """

    service: str
    reference: str
    reference_rows: int
    drift: dict[str, DatasetDrift]
    quality: dict[str, QualityReport]
    drift_share: float

    @property
    def share(self) -> float:
        """The share of the service's tested features that drifted."""
        tested = sum(d.n_tested for d in self.drift.values())
        return sum(d.n_drifted for d in self.drift.values()) / tested if tested else 0.0

    @property
    def drifted(self) -> bool:
        """At least ``drift_share`` of the tested features drifted."""
        return any(d.n_tested for d in self.drift.values()) and self.share >= self.drift_share

    def as_dict(self) -> dict[str, Any]:
        columns = {
            str(name): {
                "test": c.test,
                "score": finite_or_none(c.score),
                "threshold": finite_or_none(c.threshold),
                "drifted": bool(c.drifted),
                "psi": finite_or_none(c.psi),
                **({"reason": c.reason} if c.reason else {}),
            }
            for d in self.drift.values()
            for name, c in d.columns.items()
        }
        checks = [c for q in self.quality.values() for c in q.checks]
        return {
            "reference": self.reference,
            "reference_rows": self.reference_rows,
            "drift": columns,
            "dataset_drift": bool(self.drifted),
            "drift_share": finite_or_none(self.share),
            "quality": {
                "broken": sum(c.broken for c in checks),
                "checks": [
                    {
                        "check": c.check,
                        "column": None if c.column is None else str(c.column),
                        "value": finite_or_none(c.value),
                        "broken": bool(c.broken),
                        "message": c.message,
                    }
                    for c in checks
                ],
            },
        }


# ------------------------------------------------------------------------------------------ the views


def check_views(defs: Definitions, online: Warehouse, *, now: datetime) -> list[ViewHealth]:
    """Freshness and null rates of every view of ``defs`` in the online store, at ``now`` (aware)."""
    from stackml.features.online import table_name, view_digest, view_states

    states = view_states(online)
    found = []
    for view in defs.views:
        limit = None if view.freshness is None else view.freshness / 3600
        state = states.get(view.name)
        if state is None:
            reason = f"view '{view.name}' has not been materialised"
            found.append(ViewHealth(view.name, limit, stale=None if limit is None else True, reason=reason))
            continue
        newest = None if state.newest_event is None else state.newest_event.replace(tzinfo=UTC)
        event_age = None if newest is None else _hours(now - newest)
        materialized_age = _hours(now - state.materialized_at.astimezone(UTC))
        stale = None
        if limit is not None:
            stale = event_age is None or event_age > limit or materialized_age > limit
        if state.digest != view_digest(defs, view):  # the table holds the old columns: only ages are read
            reason = (
                f"view '{view.name}' changed since it was last materialised, so its values were not checked "
                "(`stackml features materialize` rebuilds it)"
            )
            found.append(
                ViewHealth(
                    view.name,
                    limit,
                    entities=state.entities,
                    newest_event=state.newest_event,
                    event_age_hours=event_age,
                    materialized_at=state.materialized_at,
                    materialized_age_hours=materialized_age,
                    stale=stale,
                    reason=reason,
                )
            )
            continue
        counts = ", ".join(f"count({quote_column(f.name)}) AS {quote_column(f.name)}" for f in view.features)
        stored = online.query(f"SELECT count(*) AS stackml_n, {counts} FROM {table_name(view.name)}")
        rows = int(stored["stackml_n"].iloc[0])
        nulls = {
            view.column(f.name): (1 - int(stored[f.name].iloc[0]) / rows) if rows else 0.0
            for f in view.features
        }
        found.append(
            ViewHealth(
                view.name,
                limit,
                entities=rows,
                newest_event=state.newest_event,
                event_age_hours=event_age,
                materialized_at=state.materialized_at,
                materialized_age_hours=materialized_age,
                stale=stale,
                null_rates=nulls,
            )
        )
    return found


def online_values(
    online: Warehouse, view: FeatureView, features: list[str], sample_rows: int
) -> pd.DataFrame:
    """The stored values of ``features`` of ``view`` as ``view__feature`` columns: every entity, or a seeded
    sample of about ``sample_rows`` of them."""
    from stackml.features.online import table_name

    entities = int(online.query(f"SELECT count(*) AS n FROM {table_name(view.name)}")["n"].iloc[0])
    sample = ""
    if entities > sample_rows:
        sample = f" TABLESAMPLE BERNOULLI ({100 * sample_rows / entities:.6f}) REPEATABLE (0)"
    columns = ", ".join(f"{quote_column(f)} AS {quote_column(view.column(f))}" for f in features)
    return online.query(f"SELECT {columns} FROM {table_name(view.name)}{sample}")


# ------------------------------------------------------------------------------------------ the services


def check_services(
    defs: Definitions,
    wh: Warehouse,
    online: Warehouse,
    config: FeatureMonitorConfig,
    materialized: set[str],
) -> tuple[list[ServiceHealth], list[str]]:
    """Drift and quality of the services to check (``config.service``, else every service with a recorded
    reference) against their references; and the problems that kept a check from running."""
    from stackml.features.reference import reference_table

    problems: list[str] = []
    services = [defs.service(config.service)] if config.service else list(defs.services)
    unrecorded = []
    found = []
    for service in services:
        reference, where = _reference(wh, service, config)
        if reference is None:
            unrecorded.append(service.name)
            continue
        health, notes = _check_service(defs, service, reference, where, online, config, materialized)
        problems += notes
        if health is not None:
            found.append(health)
    if unrecorded:
        tables = ", ".join(reference_table(s) for s in unrecorded)
        problems.append(
            f"no reference for service(s) {unrecorded} (tables {tables}), so their drift and quality were "
            "not checked: `stackml features training-set --service S` records one, or pass --reference "
            "FILE.parquet"
        )
    return found, problems


def _reference(
    wh: Warehouse, service: FeatureService, config: FeatureMonitorConfig
) -> tuple[pd.DataFrame | None, str]:
    from stackml.features.reference import read_reference, reference_table

    if config.reference and config.service == service.name:
        from stackml.warehouse import read_file

        return read_file(config.reference), config.reference
    return read_reference(wh, service.name), f"table {reference_table(service.name)}"


def _check_service(
    defs: Definitions,
    service: FeatureService,
    reference: pd.DataFrame,
    where: str,
    online: Warehouse,
    config: FeatureMonitorConfig,
    materialized: set[str],
) -> tuple[ServiceHealth | None, list[str]]:
    from stackml.features.validation import resolve_features
    from stackml.monitoring.drift import DriftOptions, dataset_drift
    from stackml.monitoring.quality import quality_checks
    from stackml.monitoring.sources import typed_like

    resolved, _ = resolve_features(defs, service.features)
    problems = []
    absent = [view.column(f) for view, f in resolved if view.column(f) not in reference.columns]
    if absent:
        problems.append(
            f"service '{service.name}': the reference ({where}) lacks {absent} (recorded before the service "
            "changed?): record it again with `stackml features training-set --service "
            f"{service.name}`"
        )
    options = DriftOptions(
        stattest=config.stattest, threshold=config.threshold, dataset_share=config.drift_share
    )
    drift, quality = {}, {}
    for view in dict.fromkeys(v for v, _ in resolved):
        features = [f for v, f in resolved if v is view and view.column(f) in reference.columns]
        if not features:
            continue
        if view.name not in materialized:
            problems.append(
                f"service '{service.name}': the values of view '{view.name}' were not checked (not "
                "materialised, or changed since)"
            )
            continue
        columns = [view.column(f) for f in features]
        current = typed_like(online_values(online, view, features, config.sample_rows), reference[columns])
        drift[view.name] = dataset_drift(reference[columns], current, options=options)
        quality[view.name] = quality_checks(
            reference[columns],
            current,
            max_null_increase=config.max_null_increase,
            max_out_of_range=config.max_out_of_range,
        )
    if not drift:
        return None, problems
    health = ServiceHealth(service.name, where, len(reference), drift, quality, config.drift_share)
    return health, problems


# ------------------------------------------------------------------------------------------ alerts


def metrics_of(views: list[ViewHealth], services: list[ServiceHealth]) -> dict[str, dict[str, float]]:
    """The numbers alert rules read, per monitored subject (see the module docstring)."""
    store: dict[str, float] = {}
    for health in views:
        if health.stale is not None:
            store[f"freshness.{health.view}.stale"] = float(health.stale)
        if health.event_age_hours is not None:
            store[f"freshness.{health.view}.age_hours"] = health.event_age_hours
        if health.materialized_age_hours is not None:
            store[f"freshness.{health.view}.materialized_age_hours"] = health.materialized_age_hours
        if health.materialized_at is not None:
            store[f"online.{health.view}.entities"] = float(health.entities)
        store |= {f"null_rate.{column}": rate for column, rate in health.null_rates.items()}
    out = {SUBJECT: store}
    for service in services:
        metrics: dict[str, float] = {"drift.share": service.share, "drift.dataset": float(service.drifted)}
        for drift in service.drift.values():
            for name, column in drift.columns.items():
                if column.reason is None:
                    metrics[f"drift.column.{name}.drifted"] = float(bool(column.drifted))
                    metrics[f"drift.column.{name}.score"] = float(column.score)
                    if column.psi is not None and math.isfinite(column.psi):
                        metrics[f"drift.column.{name}.psi"] = float(column.psi)
        metrics["quality.broken"] = float(sum(len(q.broken) for q in service.quality.values()))
        out[service_subject(service.service)] = metrics
    return out


def raise_alerts(
    config: FeatureMonitorConfig, metrics: dict[str, dict[str, float]], wh: Warehouse
) -> tuple[list[Any], list[str]]:
    """Judge each subject's metrics by the rules (``outside_band`` against its earlier passes), open and
    resolve alerts in the alerts table, notify the log and the webhook, and record the metrics.

    Returns:
        ``(events, problems)``: what happened to each alert, and any sink that failed (never raised).
    """
    from stackml.monitoring.alerts import AlertState, evaluate, evaluated_rules, reconcile
    from stackml.monitoring.history import MetricHistory
    from stackml.monitoring.rules import load_rules
    from stackml.monitoring.sinks import LogSink, WebhookSink

    rules = load_rules(config.rules)
    history_store = MetricHistory(wh)
    store = AlertState(wh, table=config.alerts_table)
    sinks: list[Any] = [LogSink()]
    if config.webhook:
        sinks.append(WebhookSink(config.webhook))
    events = []
    for subject, values in metrics.items():
        history = history_store.recent(subject)
        firings = evaluate(rules, values, history=history, subject=subject)
        judged = evaluated_rules(rules, values, history=history)
        events += reconcile(firings, judged, subject, store, sinks)
        history_store.record(subject, values)
    return events, [f"alert {e.alert.rule}: {e.error}" for e in events if e.error]


# ------------------------------------------------------------------------------------------ one pass


@dataclass
class FeatureMonitorResult:
    """One pass: every view's freshness and null rates, every checked service's drift and quality, the
    metrics per subject and what happened to the alerts."""

    config: FeatureMonitorConfig
    checked_at: datetime
    views: list[ViewHealth]
    services: list[ServiceHealth]
    metrics: dict[str, dict[str, float]]
    events: list[Any]
    problems: list[str]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def stale_views(self) -> list[str]:
        return [v.view for v in self.views if v.stale]

    def summary(self) -> dict[str, Any]:
        """``{"views": {view: {...}}, "services": {service: {"drift", "dataset_drift", "quality", ...}},
        "alerts": [{"action", "alert", "delivered", "error"}], "problems", ...}`` for the CLI's ``--json``."""
        return {
            "checked_at": self.checked_at.isoformat(),
            "views": {v.view: v.as_dict() for v in self.views},
            "stale_views": self.stale_views,
            "services": {s.service: s.as_dict() for s in self.services},
            "alerts": [e.as_dict() for e in self.events],
            "problems": self.problems,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def monitor_features(
    defs: Definitions,
    wh: Warehouse,
    online: Warehouse,
    config: FeatureMonitorConfig,
    *,
    now: datetime | None = None,
) -> FeatureMonitorResult:
    """One pass: check the views and the services, turn them into metrics, raise and resolve alerts.

    A check that cannot run (a view never materialised, a service without a reference, a webhook that
    times out) is a line in ``problems``; the other checks still run. A bad rules file raises.
    """
    from stackml.monitoring.rules import load_rules

    load_rules(config.rules)  # a bad rules file is the user's to fix before anything is judged
    now = (now or datetime.now(UTC)).astimezone(UTC)
    seconds = {}
    started = time.perf_counter()
    views = check_views(defs, online, now=now)
    seconds["views"] = time.perf_counter() - started
    problems = [v.reason for v in views if v.reason]
    started = time.perf_counter()
    materialized = {v.view for v in views if v.reason is None}
    services, notes = check_services(defs, wh, online, config, materialized)
    seconds["services"] = time.perf_counter() - started
    metrics = metrics_of(views, services)
    started = time.perf_counter()
    events, failed = raise_alerts(config, metrics, wh)
    seconds["alerts"] = time.perf_counter() - started
    return FeatureMonitorResult(
        config, now, views, services, metrics, events, [*problems, *notes, *failed], seconds
    )


def _hours(delta: Any) -> float:
    return delta.total_seconds() / 3600


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
