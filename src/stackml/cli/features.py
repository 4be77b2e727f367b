"""``stackml features apply | list | training-set | materialize | get``: the feature store from the command
line.

Exit codes as everywhere: 2 with one line for bad input (a problem in the repo, an unknown feature, an entity
file without ``event_timestamp``, a feature expression the warehouse refuses: named with its view).
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
            f"ttl {format_ttl(v.ttl)}",
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
    features: Annotated[
        Optional[str],
        typer.Option(
            "--features", help="Or: feature references, comma-separated ('view:feature' or 'view')."
        ),
    ] = None,
    created_before_entity: Annotated[
        bool,
        typer.Option(
            "--created-before-entity",
            help="Only rows written by each entity's time (created_timestamp <= event_timestamp): "
            "no backfills.",
        ),
    ] = False,
    repo: RepoOption = None,
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a point-in-time correct training set: the entity columns, then one column per feature
    (view__feature)."""
    from stackml.errors import InputError
    from stackml.features import FeatureStore

    if (service is None) == (features is None):
        raise InputError(
            "Pass exactly one of --service or --features.",
            hint="e.g. --service churn, or --features customer_orders:amount,customer_orders:big",
        )
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise InputError(f"--out must name a .parquet file, got '{out}'.", hint="e.g. --out training.parquet")
    wanted: str | list[str] = service if service is not None else [f.strip() for f in features.split(",")]  # type: ignore[union-attr]
    frame = FeatureStore(repo, warehouse=warehouse).get_training_set(
        entities, wanted, created_before_entity=created_before_entity
    )
    _write_parquet(frame, out)
    summary = {"out": str(out), "rows": len(frame), "columns": [str(c) for c in frame.columns]}
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
    else:
        typer.echo(f"Wrote {len(frame):,} rows x {len(frame.columns)} columns to {out}")


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
    features: Annotated[
        Optional[str],
        typer.Option(
            "--features", help="Or: feature references, comma-separated ('view:feature' or 'view')."
        ),
    ] = None,
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

    if (service is None) == (features is None):
        raise InputError(
            "Pass exactly one of --service or --features.",
            hint="e.g. --service churn, or --features customer_orders:amount",
        )
    if not key:
        raise InputError("Pass at least one --key.", hint="e.g. --key customer_id=1")
    rows = [_entity(text) for text in key]
    wanted: str | list[str] = service if service is not None else [f.strip() for f in features.split(",")]  # type: ignore[union-attr]
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
