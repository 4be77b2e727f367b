"""The monitoring report: what was checked, the drift of every column with the distributions of the drifted
ones (reference against the window), data quality, prediction drift, performance and metric timelines with
their rule thresholds, and the alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from stackml.reports import Report

# The result type is spelled Any here: monitor.py would import this module back for the flow's end step.
MonitorResult = Any

__all__ = ["monitor_report"]

DISTRIBUTIONS_SHOWN = 8  # drifted columns drawn
SAMPLE_ROWS = 20_000  # rows of each side a histogram is drawn from
TIMELINE_METRICS = ("drift.share", "prediction_drift.share", "quality.broken")


def monitor_report(result: MonitorResult, *, title: str | None = None) -> Report:
    """Build the report of one monitoring pass (nothing is written; call ``.write()``)."""
    from stackml.reports import Report

    observed, checks = result.observed, result.checks
    version = observed.version
    report = Report(
        title=title or f"Monitoring: {version.name} v{version.version}",
        narrative=_narrative(result),
        pipeline="monitor",
    )
    drift = checks.drift
    cards: dict[str, Any] = {
        "model": f"{version.name} v{version.version}",
        "rows in the window": len(observed.current),
        "reference rows": "none" if observed.reference is None else len(observed.reference),
        "columns drifted": "-" if drift is None else f"{drift.n_drifted} of {drift.n_tested}",
        "dataset drift": "-" if drift is None else ("yes" if drift.drifted else "no"),
        "quality breaks": "-" if checks.quality is None else sum(c.broken for c in checks.quality.checks),
        "alerts open": sum(1 for e in result.events if e.action in ("opened", "still_open")),
    }
    report.add_metrics(cards)

    if result.problems:
        report.add_heading("Not checked")
        report.add_table(
            pd.DataFrame({"problem": result.problems}), caption="Checks that could not run, and why"
        )

    if drift is not None:
        report.add_heading("Drift")
        report.add_table(_drift_table(drift), caption=_drift_caption(drift))
        drifted = [c for c, d in drift.columns.items() if d.drifted][:DISTRIBUTIONS_SHOWN]
        for column in drifted:
            report.add_figure(
                _distribution_figure(observed.reference[column], observed.current[column], str(column)),
                caption=f"{column}: the reference (training data) against the window, as shares of rows",
            )
    if checks.quality is not None:
        report.add_heading("Data quality")
        rows = [
            {
                "check": c.check,
                "column": c.column,
                "value": c.value,
                "limit": c.limit,
                "broken": "yes" if c.broken else "",
                "message": c.message,
            }
            for c in checks.quality.checks
        ]
        if rows:
            report.add_table(pd.DataFrame(rows), caption="Every quality check of the window")
        else:
            report.add_paragraph("Every quality check passed.")
    if checks.prediction_drift is not None:
        report.add_heading("Prediction drift")
        report.add_table(
            _drift_table(checks.prediction_drift),
            caption="The model's outputs in the window against the window before (same version)",
        )
    if checks.performance is not None and checks.performance.kind is not None:
        report.add_heading("Performance")
        performance = checks.performance
        report.add_metrics(
            {k: v for k, v in performance.overall.items()} | {"labelled rows": performance.n_labelled}
        )
        if len(performance.by_bucket) > 1:
            report.add_figure(
                _timeline_figure(performance.by_bucket, "bucket", list(performance.overall)),
                caption="Scores per time bucket of the window",
            )
    if checks.freshness:
        report.add_heading("Freshness")
        report.add_table(
            pd.DataFrame([f.as_dict() for f in checks.freshness]), caption="Age of each table's newest row"
        )

    history = getattr(result, "history", None)
    if history is not None and len(history):
        shown = history[
            history["metric"].isin(TIMELINE_METRICS) | history["metric"].str.startswith("performance.")
        ]
        if shown["recorded_at"].nunique() > 1:
            report.add_heading("Timelines")
            report.add_figure(
                _history_figure(shown, _thresholds(result)),
                caption="Each metric over the monitoring passes, with the rules' thresholds dashed",
            )
    report.add_heading("Alerts")
    if result.events:
        report.add_table(
            pd.DataFrame(
                [
                    {
                        "action": e.action,
                        "severity": e.alert.severity,
                        "rule": e.alert.rule,
                        "subject": e.alert.subject,
                        "message": e.alert.message,
                        "delivered": e.delivered,
                        "error": e.error,
                    }
                    for e in result.events
                ]
            ),
            caption="Alerts opened, still open or resolved by this pass",
        )
    else:
        report.add_paragraph("No rule fired and no alert was open.")
    return report


def _narrative(result: MonitorResult) -> str:
    observed, checks = result.observed, result.checks
    version = observed.version
    parts = [
        f"{len(observed.current):,} predictions of {version.name} v{version.version} logged from "
        f"{observed.window.describe()}, checked against the data it was trained on "
        f"({'none found' if observed.reference is None else f'{len(observed.reference):,} rows'})."
    ]
    drift = checks.drift
    if drift is not None:
        names = ", ".join(map(str, drift.drifted_columns)) or "none"
        parts.append(
            f"{drift.n_drifted} of {drift.n_tested} columns drifted ({names}); the dataset "
            f"{'drifted' if drift.drifted else 'did not drift'} (drift when at least half the columns do)."
        )
    if checks.reference_only:
        parts.append(
            f"Columns of the training data the requests do not carry (targets, unused columns) were not "
            f"compared: {', '.join(map(str, checks.reference_only))}."
        )
    opened = [e for e in result.events if e.action == "opened"]
    resolved = [e for e in result.events if e.action == "resolved"]
    if opened or resolved:
        parts.append(f"{len(opened)} alert(s) opened and {len(resolved)} resolved by this pass.")
    return " ".join(parts)


def _drift_table(drift: Any) -> pd.DataFrame:
    rows = []
    for name, d in drift.columns.items():
        rows.append(
            {
                "column": name,
                "kind": d.kind,
                "test": d.test,
                "score": d.score,
                "threshold": d.threshold,
                "drifted": "yes" if d.drifted else "",
                "psi": d.psi,
                "reference rows": d.n_reference,
                "window rows": d.n_current,
                "note": d.reason or "",
            }
        )
    return pd.DataFrame(rows)


def _drift_caption(drift: Any) -> str:
    return (
        "Each column's test (Evidently's default choice: KS, chi-squared or a Z-test on up to 1,000 "
        "reference rows; Wasserstein distance normed by the reference's sd, or Jensen-Shannon distance, "
        "above), its score and threshold (a p-value drifts below it, a distance at or above it), and the PSI"
    )


def _distribution_figure(reference: pd.Series, current: pd.Series, column: str):
    import plotly.graph_objects as go

    ref, cur = reference.dropna(), current.dropna()
    ref = ref.sample(min(len(ref), SAMPLE_ROWS), random_state=0) if len(ref) else ref
    cur = cur.sample(min(len(cur), SAMPLE_ROWS), random_state=0) if len(cur) else cur
    figure = go.Figure()
    if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref):
        both = np.concatenate([ref.to_numpy(float), cur.to_numpy(float)])
        edges = np.histogram_bin_edges(both[np.isfinite(both)], bins=30) if both.size else 10
        for values, name in ((ref, "reference"), (cur, "window")):
            counts, bins = np.histogram(values.to_numpy(float), bins=edges)
            share = counts / max(counts.sum(), 1)
            figure.add_trace(go.Bar(x=(bins[:-1] + bins[1:]) / 2, y=share, name=name, opacity=0.6))
        figure.update_layout(barmode="overlay")
    else:
        shares = pd.DataFrame(
            {
                "reference": ref.astype(str).value_counts(normalize=True),
                "window": cur.astype(str).value_counts(normalize=True),
            }
        ).fillna(0.0)
        shares = shares.sort_values("reference", ascending=False).head(30)
        for name in ("reference", "window"):
            figure.add_trace(go.Bar(x=shares.index.tolist(), y=shares[name].tolist(), name=name))
        figure.update_layout(barmode="group")
    figure.update_layout(height=320, xaxis_title=column, yaxis_title="share of rows")
    return figure


def _timeline_figure(frame: pd.DataFrame, x: str, metrics: list[str]):
    import plotly.graph_objects as go

    figure = go.Figure()
    for metric in metrics:
        figure.add_trace(go.Scatter(x=frame[x], y=frame[metric], mode="lines+markers", name=metric))
    figure.update_layout(height=320)
    return figure


def _thresholds(result: MonitorResult) -> dict[str, float]:
    from stackml.monitoring.rules import load_rules

    limits = {}
    for rule in load_rules(result.config.rules):
        limit = rule.above if rule.above is not None else rule.below
        if limit is not None and "*" not in rule.metric:
            limits[rule.metric] = float(limit)
    return limits


def _history_figure(history: pd.DataFrame, thresholds: dict[str, float]):
    import plotly.graph_objects as go

    figure = go.Figure()
    for metric, rows in history.groupby("metric", sort=True):
        line = figure.add_trace(
            go.Scatter(x=rows["recorded_at"], y=rows["value"], mode="lines+markers", name=str(metric))
        )
        if metric in thresholds:
            line.add_hline(y=thresholds[metric], line_dash="dash", annotation_text=f"{metric} limit")
    figure.update_layout(height=340, yaxis_title="value")
    return figure
