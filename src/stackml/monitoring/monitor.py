"""One monitoring pass over a served model: gather, check, turn the checks into metrics, raise and resolve
alerts. ``MonitorFlow`` and ``stackml monitor run`` call these in order; a notebook can too
(:func:`run_monitor`).

Every check runs on its own: no reference data, an empty window, a missing labels table or an unreachable
webhook each become a line in ``problems`` (and the checks that can run, run).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from stackml.errors import InputError, StackmlError
from stackml.monitoring.config import MonitorConfig
from stackml.monitoring.sources import Window

if TYPE_CHECKING:
    from stackml.config import Settings
    from stackml.monitoring.performance import Performance
    from stackml.tracking import ResolvedVersion
    from stackml.warehouse import Warehouse

__all__ = [
    "MonitorConfig",
    "MonitorResult",
    "Observed",
    "check",
    "finite_or_none",
    "gather",
    "raise_alerts",
    "run_monitor",
]

SAMPLE_ROWS = 5000  # rows of each side the report draws distributions from


@dataclass
class Observed:
    """What a pass reads: the reference data, this window's logged inputs and outputs, the previous
    window's outputs (the baseline of prediction drift)."""

    version: ResolvedVersion
    window: Window
    reference: pd.DataFrame | None
    current: pd.DataFrame
    outputs: pd.DataFrame
    previous_outputs: pd.DataFrame
    input_fields: list[str]
    output_fields: list[str]
    problems: list[str] = field(default_factory=list)


def gather(config: MonitorConfig, warehouse: Warehouse, *, settings: Settings | None = None) -> Observed:
    """Resolve the model, read its reference data and its logged rows in the window (and the window
    before, for the predictions)."""
    from stackml import tracking
    from stackml.monitoring.sources import (
        logged_fields,
        logged_rows,
        reference_data,
        typed_like,
        window_ending,
    )

    version = tracking.resolve_version(config.model, settings=settings)
    from datetime import datetime

    window = window_ending(config.since, datetime.fromisoformat(config.until) if config.until else None)
    problems: list[str] = []
    reference = None
    try:
        reference = reference_data(version, settings=settings)
    except InputError as exc:
        problems.append(exc.message)
    table = config.log_table
    inputs = logged_fields(warehouse, version.name, version=version.version, column="inputs", table=table)
    outputs = logged_fields(warehouse, version.name, version=version.version, column="outputs", table=table)
    numeric = set() if reference is None else _numeric_columns(reference)
    rows = logged_rows(
        warehouse,
        version.name,
        version=version.version,
        window=window,
        inputs=inputs,
        outputs=outputs,
        numeric=numeric,
        table=table,
    )
    previous = logged_rows(
        warehouse,
        version.name,
        version=version.version,
        window=window.previous(),
        outputs=outputs,
        table=table,
    )
    if rows.empty:
        problems.append(
            f"no predictions of '{version.name}' v{version.version} were logged from {window.describe()}"
        )
    current = rows[inputs]
    if reference is not None:
        current = typed_like(current, reference)
    output_names = [f"output.{k}" for k in outputs]
    return Observed(
        version=version,
        window=window,
        reference=reference,
        current=current,
        outputs=_numeric_where_possible(rows[output_names]),
        previous_outputs=_numeric_where_possible(previous[output_names]),
        input_fields=inputs,
        output_fields=outputs,
        problems=problems,
    )


def _numeric_columns(reference: pd.DataFrame) -> set[str]:
    return {
        str(c)
        for c in reference.columns
        if pd.api.types.is_numeric_dtype(reference[c]) and not pd.api.types.is_bool_dtype(reference[c])
    }


def _numeric_where_possible(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in frame.columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if len(frame) and numbers.notna().sum() == frame[column].notna().sum():
            out[column] = numbers
    return out


@dataclass
class Checks:
    """The outcome of every check of one pass."""

    drift: Any = None  # stackml.monitoring.drift.DatasetDrift
    quality: Any = None  # stackml.monitoring.quality.QualityReport
    prediction_drift: Any = None
    performance: Performance | None = None
    freshness: list[Any] = field(default_factory=list)
    compared_columns: list[str] = field(default_factory=list)
    reference_only: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check(config: MonitorConfig, observed: Observed, warehouse: Warehouse) -> Checks:
    """Drift, quality, prediction drift, performance and freshness; each skipped with its reason when it
    cannot run."""
    from stackml.monitoring.drift import DriftOptions, dataset_drift
    from stackml.monitoring.freshness import check_freshness, parse_freshness_spec
    from stackml.monitoring.performance import measure_performance
    from stackml.monitoring.quality import quality_checks

    checks = Checks(problems=list(observed.problems))
    options = DriftOptions(
        stattest=config.stattest, threshold=config.threshold, dataset_share=config.drift_share
    )
    reference, current = observed.reference, observed.current
    if reference is not None and len(current):
        # The reference is the training frame: its target and any column the model does not take are not
        # in the requests. Compare what the requests carry; a request field the training data lacks is a
        # schema change the quality check reports.
        checks.compared_columns = [c for c in observed.input_fields if c in reference.columns]
        checks.reference_only = [c for c in reference.columns if c not in observed.input_fields]
        if checks.compared_columns:
            checks.drift = dataset_drift(
                reference[checks.compared_columns], current[checks.compared_columns], options=options
            )
        else:
            checks.problems.append(
                f"the logged inputs ({observed.input_fields}) share no column with the reference data "
                f"({list(reference.columns)})"
            )
        keys = [k for k in config.keys if k in current.columns]
        missing_keys = [k for k in config.keys if k not in current.columns]
        if missing_keys:
            checks.problems.append(f"the key column(s) {missing_keys} are not in the logged inputs")
        checks.quality = quality_checks(
            reference[[c for c in reference.columns if c in observed.input_fields]],
            current,
            keys=keys or None,
            max_null_increase=config.max_null_increase,
            max_out_of_range=config.max_out_of_range,
        )
    if len(observed.outputs) and len(observed.previous_outputs):
        checks.prediction_drift = dataset_drift(observed.previous_outputs, observed.outputs, options=options)
    elif len(observed.outputs):
        checks.problems.append(
            "prediction drift needs predictions of the same version in the window before "
            f"({observed.window.previous().describe()}); there are none yet"
        )
    if config.labels_table:
        checks.performance = measure_performance(
            warehouse,
            observed.version.name,
            labels_table=config.labels_table,
            window=observed.window,
            label_column=config.label_column,
            prediction_field=config.prediction_field,
            output_fields=observed.output_fields,
            version=observed.version.version,
            table=config.log_table,
        )
        if checks.performance.reason:
            checks.problems.append(f"performance: {checks.performance.reason}")
    for spec in config.freshness:
        table, column, limit = parse_freshness_spec(spec)
        checks.freshness.append(check_freshness(warehouse, table, column, limit))
    return checks


def metrics_of(checks: Checks) -> dict[str, float]:
    """The numbers alert rules read, by dotted name (see :mod:`stackml.monitoring.rules`)."""
    metrics: dict[str, float] = {}
    if checks.drift is not None:
        metrics["drift.share"] = float(checks.drift.share)
        metrics["drift.dataset"] = float(bool(checks.drift.drifted))
        for name, column in checks.drift.columns.items():
            if column.reason is None:
                metrics[f"drift.column.{name}.drifted"] = float(bool(column.drifted))
                metrics[f"drift.column.{name}.score"] = float(column.score)
                if column.psi is not None and math.isfinite(column.psi):
                    metrics[f"drift.column.{name}.psi"] = float(column.psi)
    if checks.quality is not None:
        broken = [c for c in checks.quality.checks if c.broken]
        metrics["quality.broken"] = float(len(broken))
    if checks.prediction_drift is not None:
        metrics["prediction_drift.share"] = float(checks.prediction_drift.share)
        metrics["prediction_drift.drifted"] = float(bool(checks.prediction_drift.drifted))
    if checks.performance is not None and checks.performance.kind is not None:
        metrics |= {f"performance.{k}": float(v) for k, v in checks.performance.overall.items()}
    for fresh in checks.freshness:
        metrics[f"freshness.{fresh.table}.stale"] = float(fresh.stale)
        if fresh.age_hours is not None:
            metrics[f"freshness.{fresh.table}.age_hours"] = float(fresh.age_hours)
    return metrics


def raise_alerts(
    config: MonitorConfig,
    metrics: dict[str, float],
    subject: str,
    warehouse: Warehouse,
    *,
    window: Window | None = None,
) -> tuple[list[Any], list[str]]:
    """Evaluate the rules on the metrics (``outside_band`` rules against the same metrics of earlier
    passes), open and resolve alerts in the alerts table, notify the sinks, and record the metrics for the
    passes to come.

    Returns:
        ``(events, problems)``: what happened to each alert, and any sink that failed (never raised).
    """
    from stackml.monitoring.alerts import AlertState, evaluate, evaluated_rules, reconcile
    from stackml.monitoring.history import MetricHistory
    from stackml.monitoring.rules import load_rules
    from stackml.monitoring.sinks import LogSink, WebhookSink

    rules = load_rules(config.rules)  # the default rules without a file
    history_store = MetricHistory(warehouse)
    history = history_store.recent(subject)
    store = AlertState(warehouse, table=config.alerts_table)
    firings = evaluate(rules, metrics, history=history, subject=subject)
    judged = evaluated_rules(rules, metrics, history=history)
    sinks: list[Any] = [LogSink()]
    if config.webhook:
        sinks.append(WebhookSink(config.webhook))
    events = reconcile(firings, judged, subject, store, sinks)
    history_store.record(subject, metrics, window)
    problems = [f"alert {e.alert.rule}: {e.error}" for e in events if e.error]
    return events, problems


@dataclass
class MonitorResult:
    """One pass: what was read, what every check found, and what happened to the alerts."""

    config: MonitorConfig
    observed: Observed
    checks: Checks
    metrics: dict[str, float]
    events: list[Any]
    seconds: dict[str, float] = field(default_factory=dict)
    history: pd.DataFrame | None = None  # every pass's metrics of this model, for the report's timelines

    @property
    def subject(self) -> str:
        return self.observed.version.name

    @property
    def problems(self) -> list[str]:
        return self.checks.problems

    def summary(self) -> dict[str, Any]:
        """``{"drift": {column: {"test", "score", "drifted"}}, "dataset_drift", "quality", "performance",
        "alerts", ...}`` for the CLI's ``--json``."""
        checks, observed = self.checks, self.observed
        drift = {}
        if checks.drift is not None:
            drift = {
                name: {
                    "test": c.test,
                    "score": finite_or_none(c.score),
                    "threshold": finite_or_none(c.threshold),
                    "drifted": bool(c.drifted),
                    "psi": finite_or_none(c.psi),
                    **({"reason": c.reason} if c.reason else {}),
                }
                for name, c in checks.drift.columns.items()
            }
        return {
            "model": observed.version.name,
            "version": observed.version.version,
            "window": {"start": observed.window.start.isoformat(), "end": observed.window.end.isoformat()},
            "rows": len(observed.current),
            "reference_rows": None if observed.reference is None else len(observed.reference),
            "drift": drift,
            "dataset_drift": None if checks.drift is None else bool(checks.drift.drifted),
            "drift_share": None if checks.drift is None else finite_or_none(checks.drift.share),
            "quality": _quality_summary(checks.quality),
            "prediction_drift": None
            if checks.prediction_drift is None
            else {
                "drifted": bool(checks.prediction_drift.drifted),
                "columns": {
                    n: {"test": c.test, "score": finite_or_none(c.score), "drifted": bool(c.drifted)}
                    for n, c in checks.prediction_drift.columns.items()
                },
            },
            "performance": None if checks.performance is None else checks.performance.as_dict(),
            "freshness": [f.as_dict() for f in checks.freshness],
            "alerts": [_event_dict(e) for e in self.events],
            "problems": self.problems,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def _quality_summary(quality: Any) -> dict[str, Any] | None:
    if quality is None:
        return None
    broken = [c for c in quality.checks if c.broken]
    return {
        "broken": len(broken),
        "checks": [
            {
                "check": c.check,
                "column": c.column,
                "value": finite_or_none(c.value),
                "broken": bool(c.broken),
                "message": c.message,
            }
            for c in quality.checks
        ],
    }


def _event_dict(event: Any) -> dict[str, Any]:
    if hasattr(event, "as_dict"):
        return event.as_dict()
    return dict(vars(event))


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float for JSON, None when it is missing, not a number or infinite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def run_monitor(
    config: MonitorConfig, *, settings: Settings | None = None, warehouse: Warehouse | None = None
) -> MonitorResult:
    """One pass in one process: gather, check, metrics, alerts."""
    from stackml.monitoring.history import MetricHistory
    from stackml.warehouse import connect

    seconds: dict[str, float] = {}
    owned = warehouse is None
    warehouse = warehouse or connect(settings=settings)
    try:
        started = time.perf_counter()
        observed = gather(config, warehouse, settings=settings)
        seconds["gather"] = time.perf_counter() - started
        started = time.perf_counter()
        checks = check(config, observed, warehouse)
        seconds["check"] = time.perf_counter() - started
        metrics = metrics_of(checks)
        started = time.perf_counter()
        try:
            events, problems = raise_alerts(
                config, metrics, observed.version.name, warehouse, window=observed.window
            )
        except StackmlError as exc:
            if isinstance(exc, InputError) and config.rules:
                raise  # a bad rules file is the user's to fix before anything is claimed
            events, problems = [], [f"alerts: {exc.message}"]
        checks.problems += problems
        seconds["alerts"] = time.perf_counter() - started
        history = MetricHistory(warehouse).frame(observed.version.name)
    finally:
        if owned:
            warehouse.close()
    return MonitorResult(config, observed, checks, metrics, events, seconds, history)
