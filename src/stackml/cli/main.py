"""Entry point: the Typer app, global options and the one place errors become exit codes.

Exit codes: 0 success; 2 bad input or an unreachable service (a StackmlError, or a usage error from Typer),
printed as one line without a traceback (a failed pipeline whose resume can help adds the resume command on a
second line); 1 an unexpected internal error; 130 interrupted (Ctrl-C), with one
line (for a pipeline, the command that resumes its flow). ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from stackml.cli._pipeline import JsonOption, WarehouseOption
from stackml.errors import FlowInterruptedError, StackmlError

app = typer.Typer(
    name="stackml",
    help="stackml: from a warehouse table to a tracked, registered, served and monitored model, "
    "with a report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _version(value: bool) -> None:
    if value:
        from stackml import __version__

        typer.echo(f"stackml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    if debug:
        os.environ["STACKML_DEBUG"] = "1"


# -- warehouse -----------------------------------------------------------------------------------------------
@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A .csv, .csv.gz or .parquet file.")],
    table: Annotated[str, typer.Option("--table", "-t", help="Target table (letters, digits, underscores).")],
    if_exists: Annotated[
        str, typer.Option("--if-exists", help="What to do when the table exists: fail, replace or append.")
    ] = "fail",
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load a CSV or Parquet file into a warehouse table through the engine's bulk path."""
    from stackml.warehouse import IF_EXISTS_CHOICES, connect, validate_table_name
    from stackml.warehouse.base import source_format

    # Check everything that needs no database first, so bad input never touches the warehouse.
    validate_table_name(table)
    if if_exists not in IF_EXISTS_CHOICES:
        from stackml.errors import InputError

        raise InputError(
            f"--if-exists must be one of {', '.join(IF_EXISTS_CHOICES)}; got {if_exists!r}.",
            hint="Use --if-exists replace to overwrite the table or --if-exists append to add rows.",
        )
    source_format(path)
    with connect(warehouse) as wh, _spinner(f"Loading {path} into {table}", quiet=as_json):
        result = wh.ingest(path, table, if_exists=if_exists)  # type: ignore[arg-type]
    if as_json:
        from stackml.cli.output import print_json

        print_json(
            {
                "table": result.table,
                "rows": result.rows,
                "seconds": round(result.seconds, 3),
                "mode": result.mode,
            }
        )
    else:
        typer.echo(
            f"{result.mode.capitalize()}d '{result.table}': {result.rows:,} rows in {result.seconds:.2f} s "
            f"({result.rows_per_second:,.0f} rows/s)"
            if result.mode != "append"
            else f"Appended {result.rows:,} rows to '{result.table}' in {result.seconds:.2f} s"
        )


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="The SQL to run, in the warehouse engine's dialect.")],
    warehouse: WarehouseOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print a JSON array of row objects, every value exact (streamed, flat memory)."
        ),
    ] = False,
    max_rows: Annotated[int, typer.Option("--max-rows", min=0, help="Rows to show in the table view.")] = 50,
    write: Annotated[
        bool,
        typer.Option(
            "--write", help="Allow statements that change the warehouse (CREATE, INSERT, DROP, ...)."
        ),
    ] = False,
) -> None:
    """Run a SQL query against the warehouse and print the result; read-only unless --write is given."""
    from stackml.cli.sql_output import print_rows, write_json
    from stackml.warehouse import connect
    from stackml.warehouse.base import require_sql

    require_sql(query)  # before the warehouse is opened
    with connect(warehouse, read_only=not write) as wh, wh.stream(query) as rows:
        if as_json:
            write_json(rows)
        else:
            print_rows(rows, max_rows=max_rows)


@app.command()
def tables(warehouse: WarehouseOption = None, as_json: JsonOption = False) -> None:
    """List the warehouse tables with their row and column counts."""
    import pandas as pd

    from stackml.cli.output import frame_to_records, print_frame, print_json
    from stackml.warehouse import connect

    with connect(warehouse, read_only=True) as wh:  # listing must not create an empty warehouse file
        rows = [{"table": t, "rows": wh.row_count(t), "columns": len(wh.schema(t))} for t in wh.tables()]
        url = wh.redacted_url()
    df = pd.DataFrame(rows, columns=["table", "rows", "columns"])
    if as_json:
        print_json(frame_to_records(df))
    else:
        print_frame(df, title=f"Tables in {url}")


@app.command()
def schema(
    table: Annotated[str, typer.Argument(help="The table to describe.")],
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the columns and types of a table."""
    import pandas as pd

    from stackml.cli.output import print_frame, print_json
    from stackml.warehouse import connect

    with connect(warehouse, read_only=True) as wh:
        columns = wh.schema(table)
    if as_json:
        print_json(columns)
    else:
        print_frame(pd.DataFrame(list(columns.items()), columns=["column", "type"]), title=table)


# -- tracking ------------------------------------------------------------------------------------------------
@app.command()
def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many recent runs to show.")] = 20,
    pipeline: Annotated[Optional[str], typer.Option("--pipeline", help="Only runs of this pipeline.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List recent tracked runs (MLflow), newest first."""
    from stackml.cli.output import frame_to_records, print_frame, print_json
    from stackml.tracking import list_runs

    df = list_runs(limit=limit, pipeline=pipeline)
    print_json(frame_to_records(df)) if as_json else print_frame(df, title="Runs")


from stackml.cli.models import models_app  # noqa: E402  (imports only typer)

app.add_typer(models_app, name="models")

from stackml.cli.export import export  # noqa: E402  (imports only typer; MLflow, pandas and Hyper load inside)

app.command()(export)


# -- serving -------------------------------------------------------------------------------------------------
from stackml.cli.serve import serve  # noqa: E402  (imports only typer; FastAPI, uvicorn and MLflow load inside)

app.command()(serve)


# -- pipelines -----------------------------------------------------------------------------------------------
from stackml.cli.attribution import attribution_app  # noqa: E402  (imports only typer and pydantic)
from stackml.cli.cluster import cluster_app  # noqa: E402  (imports only typer)
from stackml.cli.features import features_app  # noqa: E402  (imports only typer)
from stackml.cli.forecast import forecast_app  # noqa: E402  (imports only typer)
from stackml.cli.mmm import mmm_app  # noqa: E402  (imports only typer)
from stackml.cli.monitor import monitor_app  # noqa: E402  (imports only typer)
from stackml.cli.nlp import nlp_app  # noqa: E402  (imports only typer)
from stackml.cli.score import score_app  # noqa: E402  (imports only typer)

app.add_typer(forecast_app, name="forecast")
app.add_typer(mmm_app, name="mmm")
app.add_typer(attribution_app, name="attribution")
app.add_typer(nlp_app, name="nlp")
app.add_typer(cluster_app, name="cluster")
app.add_typer(features_app, name="features")
app.add_typer(monitor_app, name="monitor")
app.add_typer(score_app, name="score")


# -- demo ----------------------------------------------------------------------------------------------------
@app.command()
def demo(
    home: Annotated[
        Optional[Path],
        typer.Option("--home", help="Where the demo writes (default: STACKML_HOME or ./.stackml)."),
    ] = None,
) -> None:
    """Run every pipeline on bundled sample data with embedded defaults, then print where the report is."""
    from stackml.config import get_settings
    from stackml.demo import run_demo

    settings = get_settings(home=home)
    result = run_demo(settings, console=_console())
    typer.echo(f"Report index: {result.index_path}")


# -- plumbing ------------------------------------------------------------------------------------------------
def _console():  # noqa: ANN202 - a rich Console, imported lazily
    from stackml.cli.output import console

    return console()


class _spinner:
    """A Rich status spinner for work whose length we cannot measure (a bulk load); silent with --json."""

    def __init__(self, message: str, *, quiet: bool = False) -> None:
        self.message, self.quiet, self._status = message, quiet, None

    def __enter__(self) -> _spinner:
        if not self.quiet:
            self._status = _console().status(self.message)
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _hint_lines(hint: str, resume_command: str | None) -> str:
    """The hint after the message on the same line; a failed flow's resume command on a line of its own, to
    copy, and what follows it (a variable left out of it) on the next."""
    if not resume_command or resume_command not in hint:
        return f" {_one_line(hint)}"
    before, after = hint.split(resume_command, 1)
    rest = f"\n{_one_line(after)}" if after.strip() else ""
    return f" {_one_line(before)}\n    {resume_command}{rest}"


def _command() -> Any:
    """The app's click command, with nothing shown after a flag in the help (Typer writes ``--json <bool>``,
    as if a flag took a value)."""
    command = typer.main.get_command(app)
    _hide_flag_types(command, None)
    return command


def _hide_flag_types(command: Any, parent: Any) -> None:
    ctx = command.context_class(command, parent=parent, info_name=command.name, **command.context_settings)
    for param in [*command.params, command.get_help_option(ctx)]:
        if param is not None and getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_types(sub, ctx)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; StackmlError becomes one line on stderr and exit code 2, Ctrl-C one line and 130."""
    debug = (
        "--debug" in (argv if argv is not None else sys.argv[1:]) or os.environ.get("STACKML_DEBUG") == "1"
    )
    try:
        _command().main(args=argv, standalone_mode=True)
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:  # Typer turns KeyboardInterrupt into a silent exit 130
            sys.stderr.write("Interrupted.\n")
        raise
    except StackmlError as exc:
        if debug:
            raise
        message = _one_line(exc.message)
        interrupted = isinstance(exc, FlowInterruptedError)
        # a failed run's resume command goes on a second line, to copy; an interrupted run keeps one line
        command = None if interrupted else getattr(exc, "resume_command", None)
        hint = _hint_lines(exc.hint, command) if exc.hint else ""
        sys.stderr.write(f"{'Interrupted' if interrupted else 'Error'}: {message}{hint}\n")
        sys.exit(EXIT_INTERRUPTED if interrupted else EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # an internal error: say so briefly, point at --debug
        if debug:
            raise
        sys.stderr.write(
            f"Internal error: {type(exc).__name__}: {_one_line(str(exc))[:500]} "
            "(rerun with --debug for the traceback and please report it)\n"
        )
        sys.exit(EXIT_INTERNAL)
