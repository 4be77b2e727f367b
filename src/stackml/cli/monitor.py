"""``stackml monitor run`` and ``stackml monitor alerts``: one monitoring pass over a served model
(MonitorFlow), and the alerts it keeps.

Exit codes as everywhere: 2 for bad input (an unknown model or alias, a bad window, a rules file with
problems), checked before the flow starts. A check that cannot run (no reference data, an empty window, a
webhook that times out) is a line in ``problems``, not a failure: the other checks still run.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from stackml.cli._pipeline import JsonOption, WarehouseOption, default
from stackml.monitoring.config import MonitorConfig

monitor_app = typer.Typer(
    help="Monitoring: drift, data quality, prediction drift, performance and freshness, with alerts.",
    no_args_is_help=True,
)


def _default(field: str) -> Any:
    return default(MonitorConfig, field)


@monitor_app.command("run")
def run(
    model: Annotated[
        str, typer.Option("--model", help="Served model: NAME (its champion), NAME@ALIAS or NAME/VERSION.")
    ],
    since: Annotated[
        str, typer.Option("--since", help="The window checked, ending now: 30m, 24h, 7d, 2w.")
    ] = _default("since"),
    until: Annotated[
        Optional[str], typer.Option("--until", help="End the window here instead of now (ISO 8601).")
    ] = None,
    rules: Annotated[
        Optional[str],
        typer.Option(
            "--rules", help="Alert rules (YAML); default: drift, dataset drift, quality, staleness."
        ),
    ] = None,
    stattest: Annotated[
        Optional[str],
        typer.Option(
            "--stattest", help="One drift test for every column: ks, chisquare, z, wasserstein, ..."
        ),
    ] = None,
    threshold: Annotated[
        Optional[float], typer.Option("--threshold", help="The forced test's threshold.")
    ] = None,
    drift_share: Annotated[
        float, typer.Option("--drift-share", help="Dataset drift when at least this share of columns drift.")
    ] = _default("drift_share"),
    keys: Annotated[
        Optional[str], typer.Option("--keys", help="Columns that must be unique in the window: a,b.")
    ] = None,
    max_null_increase: Annotated[
        float, typer.Option("--max-null-increase", help="Null rate may rise this much over the reference's.")
    ] = _default("max_null_increase"),
    max_out_of_range: Annotated[
        float,
        typer.Option(
            "--max-out-of-range", help="Share of values that may fall outside the reference's range."
        ),
    ] = _default("max_out_of_range"),
    labels_table: Annotated[
        Optional[str],
        typer.Option("--labels-table", help="Ground truth: request_id, [row_index], the label column."),
    ] = None,
    label_column: Annotated[
        str, typer.Option("--label-column", help="The truth's column in the labels table.")
    ] = _default("label_column"),
    freshness: Annotated[
        Optional[list[str]],
        typer.Option("--freshness", help="TABLE.COLUMN=AGE, e.g. orders.created_at=6h (repeat for more)."),
    ] = None,
    webhook: Annotated[
        Optional[str], typer.Option("--webhook", help="POST each alert here (Slack-compatible JSON).")
    ] = None,
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a served model's inputs, predictions and performance over a window; raise and resolve alerts."""
    from stackml.config import get_settings
    from stackml.flows import flow_path, run_flow

    config = MonitorConfig(
        model=model,
        since=since,
        until=until,
        rules=rules,
        stattest=stattest,
        threshold=threshold,
        drift_share=drift_share,
        keys=keys or (),
        max_null_increase=max_null_increase,
        max_out_of_range=max_out_of_range,
        labels_table=labels_table,
        label_column=label_column,
        freshness=tuple(freshness or ()),
        webhook=webhook,
    )
    settings = get_settings(warehouse_url=warehouse)
    _check_before_the_flow(config, settings)
    result = run_flow(
        flow_path("monitor"), {"config": config.to_json()}, settings=settings, show_progress=not as_json
    )
    summary = result.run["end"].task.data.summary | {"run_id": result.run_id}
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
    else:
        _print_run(summary)


def _check_before_the_flow(config: MonitorConfig, settings: Any) -> None:
    """The model resolves and the rules file is valid: a user's mistake exits 2 before anything runs."""
    from stackml import tracking
    from stackml.monitoring.rules import load_rules

    tracking.ensure_store(settings)
    tracking.resolve_version(config.model, settings=settings)
    if config.rules:
        load_rules(config.rules)


def _print_run(summary: dict[str, Any]) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame

    out = console()
    out.print(
        f"{summary['model']} v{summary['version']}: {summary['rows']:,} logged rows from "
        f"{summary['window']['start'][:16]} to {summary['window']['end'][:16]} UTC"
    )
    if summary["drift"]:
        rows = [
            {"column": name, "test": d["test"], "score": d["score"], "drifted": "yes" if d["drifted"] else ""}
            for name, d in summary["drift"].items()
        ]
        share = summary["drift_share"] or 0.0
        title = f"Drift: {share:.0%} of columns" + (" (dataset drift)" if summary["dataset_drift"] else "")
        print_frame(pd.DataFrame(rows), title=title)
    quality = summary["quality"]
    if quality is not None:
        for check in quality["checks"]:
            if check["broken"]:
                out.print(f"[red]quality[/red] {check['message']}")
    for alert in summary["alerts"]:
        out.print(f"alert {alert.get('action', '')}: {alert.get('alert', {}).get('message', alert)}")
    for problem in summary["problems"]:
        out.print(f"[yellow]not checked:[/yellow] {problem}")
    out.print(f"Report: {summary['report']}")


@monitor_app.command("alerts")
def alerts(
    show_all: Annotated[bool, typer.Option("--all", help="Resolved alerts too, newest first.")] = False,
    model: Annotated[Optional[str], typer.Option("--model", help="Only this model's alerts.")] = None,
    table: Annotated[str, typer.Option("--table", help="The alerts table.")] = _default("alerts_table"),
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """List open alerts (or every alert with --all)."""
    import pandas as pd

    from stackml.monitoring.alerts import AlertState
    from stackml.warehouse import connect

    with connect(warehouse) as wh:
        store = AlertState(wh, table=table)
        found = store.alerts(subject=model, status=None if show_all else "open")
    rows = [a.as_dict() for a in found]
    if as_json:
        from stackml.cli.output import print_json

        print_json(rows)
        return
    from stackml.cli.output import print_frame

    columns = ["id", "status", "severity", "rule", "subject", "message", "opened_at", "resolved_at"]
    print_frame(pd.DataFrame(rows, columns=columns), title="Alerts" if show_all else "Open alerts")
