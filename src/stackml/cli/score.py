"""``stackml score table`` scores a whole warehouse table with a registered model, in chunks, written
atomically; ``stackml score stream`` runs stateless workers that score an event stream (Redis Streams or
Kafka) until stopped.

Exit codes as everywhere: 2 for bad input or an unusable setting (no such table or model, missing columns,
the output named as the input, bad stream options, a broker that cannot be reached).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from stackml.cli._pipeline import JsonOption, LogFormatOption, WarehouseOption

score_app = typer.Typer(
    help="Scoring beyond one request: a warehouse table in bulk, or an event stream with workers.",
    no_args_is_help=True,
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


@score_app.command("stream")
def stream(
    model: Annotated[
        str, typer.Option("--model", help="Registered model: NAME (its champion) or NAME@ALIAS.")
    ],
    broker: Annotated[
        str, typer.Option("--broker", help="redis://host:port/db (Redis Streams) or kafka://host:port.")
    ] = "redis://127.0.0.1:6379/0",
    source: Annotated[
        str, typer.Option("--in", help="Input stream: entries with 'id' and 'record'.")
    ] = "events",
    out: Annotated[
        str, typer.Option("--out", help="Output stream: 'id', 'prediction', 'model', 'version'.")
    ] = "predictions",
    dead_letter: Annotated[
        Optional[str],
        typer.Option("--dead-letter", help="Stream for records that cannot be scored (default <in>:dead)."),
    ] = None,
    group: Annotated[str, typer.Option("--group", help="Consumer group the workers share.")] = "stackml",
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.", min=1)] = 1,
    batch: Annotated[int, typer.Option("--batch", help="Most records per model call.", min=1)] = 256,
    max_wait_ms: Annotated[
        int, typer.Option("--max-wait-ms", help="Longest a record waits for a batch to fill.", min=0)
    ] = 20,
    claim_after_ms: Annotated[
        int,
        typer.Option(
            "--claim-after-ms",
            help="Take over entries another worker left unacknowledged this long (it died).",
            min=100,
        ),
    ] = 30_000,
    max_deliveries: Annotated[
        int,
        typer.Option(
            "--max-deliveries", help="Deliveries after which an unfinished entry is dead-lettered.", min=1
        ),
    ] = 5,
    log_table: Annotated[
        str, typer.Option("--log-table", help="Prediction log table in the warehouse.")
    ] = "prediction_log",
    reload_interval: Annotated[
        float,
        typer.Option(
            "--reload-interval", help="Seconds between re-resolutions of the alias (0: off).", min=0
        ),
    ] = 10.0,
    metrics_port: Annotated[
        Optional[int],
        typer.Option(
            "--metrics-port", help="Serve Prometheus /metrics here (worker i on port + i).", min=1, max=65535
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address /metrics listens on.")
    ] = "127.0.0.1",
    until_idle: Annotated[
        Optional[float],
        typer.Option(
            "--until-idle", help="Stop after this many seconds with nothing to score (default: run on)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Level of stackml's logs.")] = "info",
    log_format: LogFormatOption = "text",
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score an event stream until SIGTERM or Ctrl-C: micro-batches, one model call each, every prediction
    logged, outputs written once per entry, bad records to the dead letters."""
    import logging.config

    from stackml.config import get_settings
    from stackml.scoring.stream import StreamOptions, score_stream
    from stackml.serving.logs import log_config

    options = StreamOptions(
        model=model,
        broker=broker,
        source=source,
        out=out,
        dead_letter=dead_letter,
        group=group,
        workers=workers,
        batch=batch,
        max_wait_ms=max_wait_ms,
        claim_after_ms=claim_after_ms,
        max_deliveries=max_deliveries,
        warehouse=warehouse,
        log_table=log_table,
        reload_interval_s=reload_interval,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        until_idle_s=until_idle,
    )
    logging_config = log_config(log_format, log_level)
    logging.config.dictConfig(logging_config)
    settings = get_settings(warehouse_url=warehouse)
    settings.ensure_home()

    def started(names: list[str]) -> None:
        source, out, dead = options.source, options.out, options.dead_stream
        if options.broker.lower().startswith("kafka://"):  # the topics' names, as Kafka spells them
            from stackml.scoring.brokers.kafka import topic_name

            source, out, dead = topic_name(source), topic_name(out), topic_name(dead)
        typer.echo(
            f"Scoring {source} -> {out} with {options.model} "
            f"({len(names)} worker(s); dead letters: {dead}). Stop with Ctrl-C or SIGTERM.",
            err=True,
        )

    stats = score_stream(options, settings, on_start=started, logging_config=logging_config)
    if as_json:
        from stackml.cli.output import print_json

        print_json(stats.as_dict())
        return
    typer.echo(
        f"Scored {stats.scored:,} records in {stats.batches:,} batches "
        f"({stats.records_per_second:,.0f} records/s); "
        f"{stats.dead_letters:,} dead letters; {stats.claimed:,} entries claimed from other workers.",
        err=True,
    )
