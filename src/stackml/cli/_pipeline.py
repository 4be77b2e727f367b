"""What every pipeline command shares: the source, warehouse, registry and output options, and running its
flow.

A pipeline command declares its own options with defaults read from its configuration class (:func:`default`),
builds the configuration (which checks every value at once), checks the source, and hands all of it to
:func:`run_pipeline_flow`, which passes the configuration to the flow as one JSON value and the warehouse URL
as settings, so the flow's steps read and write the warehouse the user named.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from stackml.pipelines import PipelineConfig, Published, Source
    from stackml.warehouse import Warehouse

__all__ = [
    "DataOption",
    "TableOption",
    "WarehouseOption",
    "ModelNameOption",
    "RegisterOption",
    "JsonOption",
    "default",
    "open_source",
    "run_command",
    "emit",
    "registry_summary",
]

DataOption = Annotated[
    Optional[Path],
    typer.Option("--data", help="Read the data from this CSV or Parquet file (or use --table)."),
]
TableOption = Annotated[
    Optional[str], typer.Option("--table", help="Read the data from this warehouse table.")
]
WarehouseOption = Annotated[
    Optional[str],
    typer.Option(
        "--warehouse",
        "-w",
        help="Warehouse URL (default: STACKML_WAREHOUSE_URL or the DuckDB file in the home).",
    ),
]
ModelNameOption = Annotated[
    Optional[str], typer.Option("--model-name", help="Registered model name (default: <pipeline>-<dataset>).")
]
RegisterOption = Annotated[
    bool,
    typer.Option(
        "--register/--no-register",
        help="Register the model (when it passes its gates) and promote it when it beats the champion.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
#: the log format of the long-running commands (the service, the stream workers)
LogFormatOption = Annotated[
    str, typer.Option("--log-format", help="'text' (one line per event) or 'json' (one object per line).")
]


def default(config_class: type[PipelineConfig], field: str) -> Any:
    """A CLI option's default: the configuration class's declared default, written nowhere else."""
    from stackml.pipelines import default_of

    return default_of(config_class, field)


def open_source(
    data: Path | None,
    table: str | None,
    warehouse: str | None,
    check: Callable[[Source, Warehouse | None], None] | None = None,
) -> Source:
    """The checked source: exactly one of the two, an existing file, or a table that exists in the warehouse.

    ``check(source, warehouse)`` adds the pipeline's own checks (columns, channels, ...) on the same
    connection; the warehouse is opened only for a table, and closed before the flow starts (DuckDB lets one
    process write).
    """
    from stackml.pipelines import Source
    from stackml.warehouse import connect

    source = Source.of(data, table)
    if source.table is None:
        if check is not None:
            check(source, None)
        return source
    with connect(warehouse, read_only=True) as wh:  # only reads; and creates no warehouse that is not there
        source.check(wh)
        if check is not None:
            check(source, wh)
    return source


def run_command(
    pipeline: str,
    config: PipelineConfig,
    source: Source,
    *,
    model_name: str,
    register: bool,
    warehouse: str | None,
    as_json: bool,
) -> tuple[Any, dict[str, Any]]:
    """Run the pipeline's flow, with the warehouse URL in the settings its steps see and a progress display
    unless ``as_json``; return the data of its ``end`` step and the part of the command's summary every
    pipeline shares: the registry, the report, the run id."""
    from stackml.config import get_settings
    from stackml.flows import run_pipeline_flow

    result = run_pipeline_flow(
        pipeline,
        config,
        source,
        model_name=model_name,
        register=register,
        settings=get_settings(warehouse_url=warehouse),
        show_progress=not as_json,
    )
    end = result.run["end"].task.data
    return end, registry_summary(end.published, end.report_path) | {"run_id": result.run_id}


def emit(summary: dict[str, Any], as_json: bool, print_text: Callable[[dict[str, Any]], None]) -> None:
    """Print a command's summary: JSON for scripts, else the command's own tables and lines."""
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
    else:
        print_text(summary)


def registry_summary(published: Published, report_path: str) -> dict[str, Any]:
    """The registry and report part of every pipeline command's JSON."""
    promotion = published.promotion
    return {
        "model_name": published.model_name,
        "registered": published.model_version is not None,
        "model_version": published.model_version,
        "promoted": None if promotion is None else promotion.promoted,
        "promotion": None if promotion is None else promotion.reason,
        "registry_note": published.note,
        "report": report_path,
        # the MLflow run holding the logged tables: what `stackml export --run` takes (run_id is the flow's)
        "tracking_run_id": published.run_id,
    }
