"""``stackml features apply | list | training-set``: the feature store from the command line.

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
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    summary = {"out": str(out), "rows": len(frame), "columns": [str(c) for c in frame.columns]}
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
    else:
        typer.echo(f"Wrote {len(frame):,} rows x {len(frame.columns)} columns to {out}")
