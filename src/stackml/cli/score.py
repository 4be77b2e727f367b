"""``stackml score table``: score a whole warehouse table with a registered model, in chunks, written
atomically.

Exit codes as everywhere: 2 for bad input (no such table or model, missing columns, the output named as the
input).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from stackml.cli._pipeline import JsonOption, WarehouseOption

score_app = typer.Typer(
    help="Scoring in bulk: a warehouse table through a registered model.", no_args_is_help=True
)


@score_app.command("table")
def table(
    table_name: Annotated[str, typer.Option("--table", help="The warehouse table to score.")],
    model: Annotated[
        str,
        typer.Option("--model", help="Registered model: NAME (its champion), NAME@ALIAS or NAME/VERSION."),
    ],
    out: Annotated[
        Optional[str],
        typer.Option("--out", help="The output table (default <table>_scored), replaced at once."),
    ] = None,
    chunk: Annotated[
        int, typer.Option("--chunk", help="The most rows per model call and in memory.")
    ] = 100_000,
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score every row of a table; the output holds the table's columns and the model's outputs."""
    from stackml.config import get_settings
    from stackml.scoring import score_table
    from stackml.warehouse import connect

    settings = get_settings(warehouse_url=warehouse)
    with connect(warehouse, settings=settings) as wh:
        if as_json:
            scored = score_table(wh, table_name, model, out=out, chunk=chunk, settings=settings)
        else:
            scored = _with_bar(wh, table_name, model, out, chunk, settings)
    if as_json:
        from stackml.cli.output import print_json

        print_json(scored.as_dict())
        return
    from stackml.cli.output import console

    console().print(
        f"Scored {scored.rows:,} rows of {scored.table} with {scored.model} v{scored.version} into "
        f"[bold]{scored.out}[/bold] ({scored.rows_per_second:,.0f} rows/s; added {scored.prediction_columns})"
    )


def _with_bar(wh, table_name, model, out, chunk, settings):  # noqa: ANN001, ANN202 - the command's arguments
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from stackml.cli.output import console
    from stackml.scoring import score_table

    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("rows", total=None)
        return score_table(
            wh,
            table_name,
            model,
            out=out,
            chunk=chunk,
            settings=settings,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
