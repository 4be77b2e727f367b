"""``stackml attribution run``: path attribution (AttributionFlow) from raw touchpoints or aggregated paths.

Exit codes as everywhere: 2 for bad input (missing columns, duplicate touchpoints, empty paths, negative
values, no conversions, unknown methods), checked before the flow starts.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stackml.attribution.config import AttributionConfig
from stackml.cli._pipeline import (
    DataOption,
    JsonOption,
    ModelNameOption,
    RegisterOption,
    TableOption,
    WarehouseOption,
    default,
)

attribution_app = typer.Typer(
    help="Multi-touch attribution over user paths: rules, an exact Markov chain and Shapley values.",
    no_args_is_help=True,
)


def _default(field: str) -> Any:
    value = default(AttributionConfig, field)
    return ",".join(value) if isinstance(value, tuple) else value


@attribution_app.command("run")
def run(
    data: DataOption = None,
    table: TableOption = None,
    input_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="touchpoints (user, time, channel, conversion, value rows) or paths "
            "(path;total_conversions;total_conversion_value;total_null).",
        ),
    ] = _default("format"),
    methods: Annotated[
        str, typer.Option("--methods", help="Methods to compare, comma-separated.")
    ] = _default("methods"),
    lookback_days: Annotated[
        float,
        typer.Option("--lookback-days", help="Touchpoints: a touch counts this many days before the end."),
    ] = _default("lookback_days"),
    markov_order: Annotated[
        int, typer.Option("--markov-order", help="The Markov chain remembers this many channels (1-3).")
    ] = _default("markov_order"),
    half_life_days: Annotated[
        float, typer.Option("--half-life-days", help="Time decay's half-life (in touches for paths).")
    ] = _default("half_life_days"),
    user_column: Annotated[str, typer.Option("--user-column", help="Touchpoints: the user.")] = _default(
        "user_column"
    ),
    time_column: Annotated[str, typer.Option("--time-column", help="Touchpoints: the time.")] = _default(
        "time_column"
    ),
    channel_column: Annotated[
        str, typer.Option("--channel-column", help="Touchpoints: the channel.")
    ] = _default("channel_column"),
    conversion_column: Annotated[
        str, typer.Option("--conversion-column", help="Touchpoints: 1 on the touch that converted.")
    ] = _default("conversion_column"),
    value_column: Annotated[
        str, typer.Option("--value-column", help="Touchpoints: the conversion's value (0 when absent).")
    ] = _default("value_column"),
    seed: Annotated[int, typer.Option("--seed", help="Seeds anything sampled.")] = _default("random_state"),
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth",
            help="Simulated data: a file of the true incremental shares (channel, share[, roas]); the run "
            "says how far each method is from them.",
        ),
    ] = _default("truth_file"),
    mmm: Annotated[
        str | None,
        typer.Option(
            "--mmm",
            help="A media-mix model to show beside the path credit (its contribution shares and ROAS): "
            "NAME, NAME@ALIAS, NAME/VERSION or the id of the `mmm fit` run.",
        ),
    ] = _default("mmm_model"),
    warehouse: WarehouseOption = None,
    model_name: ModelNameOption = None,
    register: RegisterOption = True,
    as_json: JsonOption = False,
) -> None:
    """Credit channels for conversions by several methods side by side; write the paths table and a report."""
    from stackml.cli._pipeline import emit, open_source, run_command

    config = AttributionConfig(
        format=input_format,
        methods=methods,
        lookback_days=lookback_days,
        markov_order=markov_order,
        half_life_days=half_life_days,
        user_column=user_column,
        time_column=time_column,
        channel_column=channel_column,
        conversion_column=conversion_column,
        value_column=value_column,
        random_state=seed,
        truth_file=truth,
        mmm_model=mmm,
    )
    source = open_source(data, table, warehouse, check=lambda src, wh: _check_data(config, src, wh))
    name = model_name or source.default_model_name("attribution")
    end, shared = run_command(
        "attribution",
        config,
        source,
        model_name=name,
        register=register,
        warehouse=warehouse,
        as_json=as_json,
    )
    emit(end.summary | shared, as_json, _print_run)


def _check_data(config: AttributionConfig, source: Any, warehouse: Any) -> None:
    from stackml.attribution.pipeline import check_source

    check_source(config, source, warehouse)  # a file is read without the warehouse


def _print_run(summary: dict[str, Any]) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame

    shares = pd.DataFrame(summary["credit"]).fillna(0.0)
    paths = summary["paths"]
    print_frame(
        shares.map(lambda v: f"{v:.1%}").reset_index(names="channel"),
        title=f"Share of {paths['conversions']:,.0f} conversions over {paths['journeys']:,.0f} journeys",
    )
    out = console()
    if "credit_error" in summary:
        errors = ", ".join(f"{m} {e:.2f}" for m, e in summary["credit_error"].items())
        out.print(f"Distance from the true incremental shares (0 best, 2 worst): {errors}")
    if "mmm" in summary:
        mmm = summary["mmm"]
        roas = ", ".join(
            f"{c} {r['mean']:.3g} [{r['hdi_low']:.3g}, {r['hdi_high']:.3g}]" for c, r in mmm["roas"].items()
        )
        shares = ", ".join(f"{c} {s:.1%}" for c, s in mmm["share"].items())
        named = f"{mmm['model']} v{mmm['version']}" if mmm["model"] else f"run {mmm['run_id']}"
        out.print(f"MMM {named}: contribution shares {shares}; ROAS (94%) {roas}")
    out.print(f"Paths: table {summary['paths_table']}")
    out.print(summary["registry_note"])
    out.print(f"Report: {summary['report']}")
    if summary.get("extract"):
        out.print(f"Tableau extract: {summary['extract']}")


@attribution_app.command("simulate")
def simulate(
    out: Annotated[str, typer.Option("--out", help="Folder to write the three files into (created).")],
    users: Annotated[int, typer.Option("--users", min=1, help="Users to simulate.")] = 10_000,
    preset: Annotated[
        str, typer.Option("--preset", help="The MMM simulator's world: its channels and their daily spend.")
    ] = "2y_3ch",
    seed: Annotated[int, typer.Option("--seed", help="Seeds the world and the users.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace the files in an existing folder.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Simulate users' journeys with known incremental channel effects: touchpoints.parquet (for `attribution
    run`), weekly.csv (the same world's weekly spend and conversions, for `mmm fit`) and truth.csv (for
    `attribution run --truth`)."""
    from stackml.attribution.simulation import simulate_journeys
    from stackml.cli._pipeline import emit

    world = simulate_journeys(users, preset=preset, seed=seed)
    files = world.write(out, force=force)
    summary = {
        "files": {name: str(path) for name, path in files.items()},
        "users": users,
        "touchpoints": len(world.touchpoints),
        "conversions": int(world.touchpoints["conversion"].sum()),
        "weeks": len(world.weekly),
        "channels": list(world.channels),
        "retargeting": world.retargeting,
        "truth": {row.channel: round(float(row.share), 6) for row in world.paid_truth.itertuples()},
    }
    emit(summary, as_json, _print_simulation)


def _print_simulation(summary: dict[str, Any]) -> None:
    from stackml.cli.output import console

    out = console()
    truth = ", ".join(f"{c} {s:.1%}" for c, s in summary["truth"].items())
    out.print(
        f"Simulated {summary['users']:,} users: {summary['touchpoints']:,} touchpoints, "
        f"{summary['conversions']:,} conversions over {summary['weeks']} weeks. True incremental shares: "
        f"{truth} ({summary['retargeting']} is shown to users about to convert anyway)."
    )
    for name, path in summary["files"].items():
        out.print(f"{name}: {path}")
