"""``stackml features apply | list | training-set | materialize | get | monitor | run``: the feature store
from the command line.

Exit codes as everywhere: 2 with one line for bad input (a problem in the repo, an unknown feature, an entity
file without ``event_timestamp``, a feature expression the warehouse refuses: named with its view). As for
``stackml monitor run``, ``monitor`` exits 0 when the pass ran, alerts or not: they are in its output, the
alerts table and the webhook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from stackml.cli._pipeline import JsonOption, WarehouseOption

features_app = typer.Typer(
    help="Feature store: register feature definitions and build point-in-time correct training sets.",
    no_args_is_help=True,
)

RepoOption = Annotated[
    Optional[Path],
    typer.Option("--repo", help="The feature repo: a folder of *.yaml (or *.py) definitions."),
]


FeaturesOption = Annotated[
    Optional[str],
    typer.Option("--features", help="Or: feature references, comma-separated ('view:feature' or 'view')."),
]


def _wanted(service: str | None, features: str | None) -> str | list[str]:
    """The service, or the feature references of --features: exactly one of them."""
    from stackml.errors import InputError

    if (service is None) == (features is None):
        raise InputError(
            "Pass exactly one of --service or --features.",
            hint="e.g. --service churn, or --features customer_orders:amount,customer_orders:big",
        )
    return service if service is not None else [f.strip() for f in features.split(",")]  # type: ignore[union-attr]


@features_app.command("apply")
def apply(
    repo: Annotated[
        Path, typer.Option("--repo", help="The feature repo: a folder of *.yaml (or *.py) definitions.")
    ],
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the repo's definitions against the warehouse (every problem at once) and register them; the
    version moves only when they changed."""
    from stackml.features import FeatureStore

    registered = FeatureStore(repo, warehouse=warehouse).apply()
    summary = {
        "version": registered.version,
        "changed": registered.changed,
        "applied_at": registered.applied_at,
        **_counts(registered.definitions),
    }
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
        return
    what = "Registered" if registered.changed else "Unchanged:"
    typer.echo(
        f"{what} version {registered.version} ({summary['entities']} entities, {summary['sources']} sources, "
        f"{summary['feature_views']} feature views, {summary['services']} services)"
    )


@features_app.command("list")
def list_(
    repo: RepoOption = None,
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the registered definitions (with --repo: the repo's, and whether they are the registered
    version)."""
    from stackml.features import FeatureStore, load_repo

    registered = FeatureStore(warehouse=warehouse).list()
    if repo is None and registered is None:
        from stackml.errors import InputError

        raise InputError(
            "No feature definitions are registered in the warehouse.",
            hint="Register a repo with `stackml features apply --repo DIR`, or pass --repo to list one.",
        )
    defs = load_repo(repo) if repo is not None else registered.definitions  # type: ignore[union-attr]
    rows = _rows(defs)
    if repo is None:
        state = f"version {registered.version}, applied {registered.applied_at}"  # type: ignore[union-attr]
    elif registered is None:
        state = "not applied to this warehouse"
    elif registered.definitions.to_dict() == defs.to_dict():
        state = f"the registered version {registered.version}"
    else:
        state = f"differs from the registered version {registered.version}: run `stackml features apply`"
    if as_json:
        from stackml.cli.output import print_json

        print_json({"state": state, "version": registered and registered.version, "objects": rows})
        return
    import pandas as pd

    from stackml.cli.output import print_frame

    print_frame(
        pd.DataFrame(rows, columns=["kind", "name", "details"]), title=f"Feature definitions ({state})"
    )


def _counts(defs: Any) -> dict[str, int]:
    return {
        "entities": len(defs.entities),
        "sources": len(defs.sources),
        "feature_views": len(defs.views),
        "services": len(defs.services),
    }


def _rows(defs: Any) -> list[dict[str, str]]:
    from stackml.features.definitions import format_ttl

    rows = [
        {"kind": "entity", "name": e.name, "details": f"join keys {', '.join(e.join_keys)}"}
        for e in defs.entities
    ]
    rows += [
        {
            "kind": "source",
            "name": s.name,
            "details": f"{'table ' + s.table if s.table else 'query'}, time {s.timestamp_field}"
            + (f", created {s.created_timestamp_field}" if s.created_timestamp_field else ""),
        }
        for s in defs.sources
    ]
    rows += [
        {
            "kind": "feature view",
            "name": v.name,
            "details": f"{', '.join(f.name for f in v.features)} from {v.source} by {', '.join(v.entities)}, "
            f"ttl {format_ttl(v.ttl)}" + (f", fresh within {format_ttl(v.freshness)}" if v.freshness else ""),
        }
        for v in defs.views
    ]
    rows += [{"kind": "service", "name": s.name, "details": ", ".join(s.features)} for s in defs.services]
    return rows


@features_app.command("training-set")
def training_set(
    entities: Annotated[
        Path,
        typer.Option(
            "--entities", help="A .csv or .parquet file of join keys and event_timestamp, one row each."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="The Parquet file to write.")],
    service: Annotated[
        Optional[str], typer.Option("--service", help="The feature service to retrieve.")
    ] = None,
    features: FeaturesOption = None,
    created_before_entity: Annotated[
        bool,
        typer.Option(
            "--created-before-entity",
            help="Only rows written by each entity's time (created_timestamp <= event_timestamp): "
            "no backfills.",
        ),
    ] = False,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference/--no-reference",
            help="With --service: keep a seeded sample (50,000 rows at most) of the feature columns in the "
            "warehouse as the service's reference for `stackml features monitor`.",
        ),
    ] = True,
    repo: RepoOption = None,
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a point-in-time correct training set: the entity columns, then one column per feature
    (view__feature). With --service it also becomes the service's reference for drift monitoring."""
    from stackml.errors import InputError
    from stackml.features import FeatureStore

    wanted = _wanted(service, features)
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise InputError(f"--out must name a .parquet file, got '{out}'.", hint="e.g. --out training.parquet")
    store = FeatureStore(repo, warehouse=warehouse)
    frame = store.get_training_set(entities, wanted, created_before_entity=created_before_entity)
    _write_parquet(frame, out)
    recorded = None
    if reference and service is not None and len(frame):
        recorded = store.record_reference(service, frame)
    summary = {
        "out": str(out),
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "reference": None if recorded is None else recorded.as_dict(),
    }
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
    else:
        typer.echo(f"Wrote {len(frame):,} rows x {len(frame.columns)} columns to {out}")
        if recorded is not None:
            typer.echo(
                f"Recorded {recorded.rows:,} rows as the reference of service '{service}' "
                f"(table {recorded.table})"
            )


def _write_parquet(frame: Any, out: Path) -> None:
    """Write-then-rename: a failed or interrupted run leaves the old file, never half a new one."""
    import os
    import secrets

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


OnlineOption = Annotated[
    Optional[str],
    typer.Option(
        "--online",
        help="PostgreSQL URL of the online store (default: STACKML_POSTGRES_URL, else the warehouse when it "
        "is PostgreSQL).",
    ),
]


def _moment(text: str | None, option: str) -> Any:
    if text is None:
        return None
    import pandas as pd

    from stackml.errors import InputError

    try:
        moment = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{option} must be a date or time, got {text!r}.",
            hint=f"e.g. {option} 2024-03-01 or {option} 2024-03-01T12:00:00+01:00 (naive times are UTC).",
        ) from exc
    return moment.to_pydatetime()


@features_app.command("materialize")
def materialize(
    view: Annotated[
        Optional[list[str]],
        typer.Option("--view", help="A view to materialise (repeatable; default all)."),
    ] = None,
    since: Annotated[
        Optional[str],
        typer.Option(
            "--since",
            help="Reach back to this event time (default: where each view's last run stopped). Late rows "
            "need it.",
        ),
    ] = None,
    until: Annotated[
        Optional[str], typer.Option("--until", help="The newest event time to take (default now, UTC).")
    ] = None,
    repo: RepoOption = None,
    warehouse: WarehouseOption = None,
    online: OnlineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write each view's newest row per entity into the PostgreSQL online store, incrementally since the
    last run; each view's batch lands in one transaction."""
    from stackml.features import FeatureStore

    done = FeatureStore(repo, warehouse=warehouse, online=online).materialize(
        view, since=_moment(since, "--since"), until=_moment(until, "--until")
    )
    if as_json:
        from stackml.cli.output import print_json

        print_json({"views": [m.as_dict() for m in done]})
        return
    for m in done:
        window = f"{m.since or 'the beginning'} .. {m.until}"
        what = "rebuilt" if m.rebuilt else "updated"
        typer.echo(f"{m.view}: {what}, {m.rows:,} entities from events in ({window}] in {m.seconds:.2f} s")


@features_app.command("get")
def get(
    service: Annotated[Optional[str], typer.Option("--service", help="The feature service to read.")] = None,
    features: FeaturesOption = None,
    key: Annotated[
        Optional[list[str]],
        typer.Option(
            "--key",
            help="One entity: its join keys as k=v, comma-separated for several (customer_id=1,store_id=a). "
            "Repeat for more entities.",
        ),
    ] = None,
    repo: RepoOption = None,
    warehouse: WarehouseOption = None,
    online: OnlineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read the online store's newest feature values for some entities (None: no value, or older than
    the view's TTL)."""
    from stackml.errors import InputError
    from stackml.features import FeatureStore

    wanted = _wanted(service, features)
    if not key:
        raise InputError("Pass at least one --key.", hint="e.g. --key customer_id=1")
    rows = [_entity(text) for text in key]
    values = FeatureStore(repo, warehouse=warehouse, online=online).get_online_features(wanted, rows)
    records = [dict(zip(values, row)) for row in zip(*values.values())]
    if as_json:
        from stackml.cli.output import print_json

        print_json({"entities": records})
        return
    import pandas as pd

    from stackml.cli.output import print_frame

    print_frame(pd.DataFrame(records), title="Online features")


def _entity(text: str) -> dict[str, str]:
    from stackml.errors import InputError

    row = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise InputError(
                f"--key must be join_key=value pairs separated by commas, got {text!r}.",
                hint="e.g. --key customer_id=1 or --key customer_id=1,store_id=a",
            )
        row[name.strip()] = value.strip()
    return row


# --------------------------------------------------------------------------------------------- monitoring


def _monitor_default(field: str) -> Any:
    from stackml.cli._pipeline import default
    from stackml.features.config import FeatureMonitorConfig

    return default(FeatureMonitorConfig, field)


ServiceOption = Annotated[
    Optional[str],
    typer.Option(
        "--service",
        help="Check this service's drift and quality against its reference (default: every service with "
        "one). Freshness and null rates are checked for every view.",
    ),
]
ReferenceOption = Annotated[
    Optional[Path],
    typer.Option(
        "--reference",
        help="A Parquet file of view__feature columns to use as the service's reference instead of the "
        "training set recorded by `training-set`.",
    ),
]
RulesOption = Annotated[
    Optional[str],
    typer.Option("--rules", help="Alert rules (YAML); default: stale view, drift, dataset drift, quality."),
]
StattestOption = Annotated[
    Optional[str],
    typer.Option("--stattest", help="One drift test for every feature: ks, chisquare, z, wasserstein, ..."),
]
ThresholdOption = Annotated[Optional[float], typer.Option("--threshold", help="The forced test's threshold.")]
DriftShareOption = Annotated[
    float,
    typer.Option("--drift-share", help="A service drifts when at least this share of its features drift."),
]
NullIncreaseOption = Annotated[
    float,
    typer.Option(
        "--max-null-increase", help="A feature's null rate may rise this much over the reference's."
    ),
]
OutOfRangeOption = Annotated[
    float,
    typer.Option(
        "--max-out-of-range", help="Share of a feature's values that may fall outside the reference's range."
    ),
]
WebhookOption = Annotated[
    Optional[str], typer.Option("--webhook", help="POST each alert here (Slack-compatible JSON).")
]


@features_app.command("monitor")
def monitor(
    service: ServiceOption = None,
    reference: ReferenceOption = None,
    rules: RulesOption = None,
    stattest: StattestOption = None,
    threshold: ThresholdOption = None,
    drift_share: DriftShareOption = _monitor_default("drift_share"),
    max_null_increase: NullIncreaseOption = _monitor_default("max_null_increase"),
    max_out_of_range: OutOfRangeOption = _monitor_default("max_out_of_range"),
    webhook: WebhookOption = None,
    repo: RepoOption = None,
    warehouse: WarehouseOption = None,
    online: OnlineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the online store: each view's freshness against its limit and its null rates, each service's
    drift and quality against its training set; raise and resolve alerts."""
    from stackml.features import FeatureStore
    from stackml.features.config import FeatureMonitorConfig

    config = FeatureMonitorConfig(
        service=service,
        reference=None if reference is None else str(reference),
        rules=rules,
        stattest=stattest,
        threshold=threshold,
        drift_share=drift_share,
        max_null_increase=max_null_increase,
        max_out_of_range=max_out_of_range,
        webhook=webhook,
    )
    summary = FeatureStore(repo, warehouse=warehouse, online=online).monitor(config).summary()
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
    else:
        _print_monitoring(summary)


def _print_monitoring(summary: dict[str, Any]) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame

    out = console()
    rows = [
        {
            "view": name,
            "entities": v["entities"],
            "newest event": _age(v["event_age_hours"], " ago"),
            "last run": _age(v["materialized_age_hours"], " ago"),
            "freshness limit": _age(v["freshness_limit_hours"]),
            "stale": {True: "STALE", False: "", None: "-"}[v["stale"]],
        }
        for name, v in summary["views"].items()
    ]
    print_frame(pd.DataFrame(rows), title=f"Feature views at {summary['checked_at'][:16]} UTC")
    for name, s in summary["services"].items():
        drifted = [c for c, d in s["drift"].items() if d["drifted"]]
        out.print(
            f"service {name}: {len(drifted)} of {len(s['drift'])} features drifted"
            + (f" ({', '.join(drifted)})" if drifted else "")
            + f", {s['quality']['broken']} quality check(s) broken; reference {s['reference']} "
            f"({s['reference_rows']:,} rows)"
        )
    for alert in summary["alerts"]:
        out.print(f"alert {alert['action']}: {alert['alert']['message']}")
    for problem in summary["problems"]:
        out.print(f"[yellow]not checked:[/yellow] {problem}")


def _age(hours: float | None, suffix: str = "") -> str:
    if hours is None:
        return "-"
    if hours < 1:
        return f"{hours * 60:.0f} min{suffix}"
    return f"{hours:.1f} h{suffix}" if hours < 48 else f"{hours / 24:.1f} d{suffix}"


@features_app.command("run")
def run(
    view: Annotated[
        Optional[list[str]],
        typer.Option("--view", help="A view to materialise (repeatable; default all)."),
    ] = None,
    service: ServiceOption = None,
    reference: ReferenceOption = None,
    rules: RulesOption = None,
    webhook: WebhookOption = None,
    repo: RepoOption = None,
    warehouse: WarehouseOption = None,
    online: OnlineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run FeaturesFlow once: compute each view's new rows in the warehouse, check them, write them to the
    online store, then monitor it (what `stackml features monitor` checks). Schedule it with cron."""
    from stackml.config import get_settings
    from stackml.features.config import FeaturesRunConfig
    from stackml.flows import flow_path, run_flow

    config = FeaturesRunConfig(
        repo=None if repo is None else str(repo),
        views=tuple(view or ()),
        service=service,
        reference=None if reference is None else str(reference),
        rules=rules,
        webhook=webhook,
    )
    settings = get_settings(warehouse_url=warehouse, postgres_url=online)
    _check_before_the_flow(config, settings)
    result = run_flow(
        flow_path("features"), {"config": config.to_json()}, settings=settings, show_progress=not as_json
    )
    summary = result.run["end"].task.data.summary | {"run_id": result.run_id}
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
        return
    for m in summary["materialized"]:
        what = "rebuilt" if m["rebuilt"] else "updated"
        typer.echo(f"{m['view']}: {what}, {m['rows']:,} entities from events up to {m['until']}")
    _print_monitoring(summary["monitor"])


def _check_before_the_flow(config: Any, settings: Any) -> None:
    """The definitions load, the views and service exist, the online store is PostgreSQL and the rules file
    is valid: a user's mistake exits 2 before the flow starts."""
    from stackml.features import FeatureStore
    from stackml.features.online import online_url
    from stackml.monitoring.rules import load_rules

    online_url(settings.postgres_url or str(settings.warehouse_url))
    defs = FeatureStore(config.repo, warehouse=str(settings.warehouse_url)).definitions()
    known = {v.name for v in defs.views}
    unknown = [v for v in config.views if v not in known]
    services = {s.name for s in defs.services}
    problems = [f"unknown feature view(s) {unknown} (views: {sorted(known)})"] if unknown else []
    if config.service and config.service not in services:
        problems.append(f"unknown feature service {config.service!r} (services: {sorted(services)})")
    if problems:
        from stackml.errors import raise_if_problems

        raise_if_problems(problems, what="the features run", hint="Name views and services of the repo.")
    load_rules(config.rules)
