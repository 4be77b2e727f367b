"""``stackml export``: the result tables of any pipeline run as a Tableau extract, Parquet or CSV files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from stackml.cli._pipeline import JsonOption

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("hyper", "parquet", "csv")


def export(
    to: Annotated[str, typer.Option("--to", help="hyper (one Tableau extract), parquet or csv (a folder).")],
    run: Annotated[Optional[str], typer.Option("--run", help="The run whose tables to export.")] = None,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model", help="Or the run that trained a model: NAME (its champion), NAME@ALIAS or NAME/3."
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Where to write (default: <run id>.hyper, or <run id>/ for files)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace what --out names if it exists.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Export the tables a pipeline run logged: a Tableau extract (.hyper), or Parquet or CSV files."""
    from stackml.errors import InputError

    # Everything that needs no tracking store is checked first.
    if (run is None) == (model is None):
        raise InputError(
            "Name exactly one of --run and --model.",
            hint="Pass --run RUN_ID (see `stackml runs`) or --model NAME[@ALIAS|/VERSION] "
            "(see `stackml models`).",
        )
    if to not in FORMATS:
        raise InputError(
            f"--to must be one of {', '.join(FORMATS)}; got {to!r}.",
            hint="Use --to hyper for Tableau, or --to parquet / --to csv for one file per table.",
        )
    run_id = run if run is not None else _run_of(model)
    target = (out or Path(f"{run_id}.hyper" if to == "hyper" else run_id)).expanduser().absolute()
    if target.exists() and not force:
        raise InputError(f"'{target}' exists.", hint="Pass --force to replace it, or --out another path.")
    if to == "hyper" and target.is_dir():
        raise InputError(
            f"'{target}' is a folder; --to hyper writes one file.", hint="Pass --out FILE.hyper."
        )

    from stackml.reports import write_extract, write_table_files
    from stackml.tracking import load_tables

    tables = load_tables(run_id)
    written = (
        write_extract(tables, target) if to == "hyper" else write_table_files(tables, target, file_format=to)
    )
    summary = _summary(run_id, to, written, tables)
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
        return
    typer.echo(f"Wrote {len(tables)} table(s) of run {run_id} to {written}:")
    width = max(len(name) for name in tables)
    for table in summary["tables"]:
        typer.echo(f"  {table['name']:<{width}}  {table['rows']:>12,} rows")


def _run_of(model: Any) -> str:
    from stackml.errors import RegistryError
    from stackml.tracking import resolve_version

    version = resolve_version(model)
    if not version.run_id:
        raise RegistryError(
            f"Version {version.version} of model '{version.name}' names no run.",
            hint="Export by run with --run RUN_ID (see `stackml runs`).",
        )
    return version.run_id


def _summary(run_id: str, to: str, path: Path, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "format": to,
        "path": str(path),
        "tables": [
            {
                "name": name,
                "rows": len(df),
                "file": str(path if to == "hyper" else path / f"{name}.{to}"),
            }
            for name, df in tables.items()
        ],
    }
