"""``stackml forecast run``: the forecasting pipeline (ForecastFlow) from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from stackml.cli._pipeline import (
    DataOption,
    JsonOption,
    ModelNameOption,
    RegisterOption,
    TableOption,
    WarehouseOption,
    default,
)
from stackml.forecasting.config import ForecastConfig

forecast_app = typer.Typer(help="Forecasting: backtest, choose, register and report.", no_args_is_help=True)


def _default(field: str) -> Any:
    return default(ForecastConfig, field)


@forecast_app.command("run")
def run(
    horizon: Annotated[int, typer.Option("--horizon", help="Steps to forecast.")],
    data: DataOption = None,
    table: TableOption = None,
    fmt: Annotated[
        str, typer.Option("--format", help="long (unique_id, ds, y) or m4-wide (the M4 competition's CSV).")
    ] = _default("data_format"),
    test: Annotated[
        Optional[Path], typer.Option("--test", help="Holdout in the same format, scored with the M4 metrics.")
    ] = None,
    season: Annotated[
        Optional[int],
        typer.Option(
            "--season",
            help="Season length for scoring and the models' main cycle (24 hourly, 12 monthly, 1 for none); "
            "default: from the frequency, or found in the data.",
        ),
    ] = _default("season_length"),
    freq: Annotated[
        Optional[str], typer.Option("--freq", help="Pandas frequency of timestamp ds (inferred by default).")
    ] = _default("freq"),
    models: Annotated[str, typer.Option("--models", help="Comma-separated candidate models.")] = ",".join(
        _default("models")
    ),
    n_windows: Annotated[
        Optional[int],
        typer.Option(
            "--n-windows", help="Backtest windows of --horizon values (default: 1-4, from the data)."
        ),
    ] = _default("n_windows"),
    time_budget: Annotated[
        Optional[float],
        typer.Option(
            "--time-budget",
            help="Seconds of model fitting the candidates may take together; slow models that would not "
            "fit are skipped (default for the default models: 15 plus 0.2 ms per training value, at most 90; "
            "no limit for --models).",
        ),
    ] = _default("time_budget"),
    warehouse: WarehouseOption = None,
    model_name: ModelNameOption = None,
    register: RegisterOption = True,
    as_json: JsonOption = False,
) -> None:
    """Backtest every model, choose the best (or an ensemble), register it and write a report."""
    from stackml.cli._pipeline import emit, open_source, run_command

    # Everything checkable without data is checked here, so a typo never starts a flow.
    config = ForecastConfig(
        horizon=horizon,
        season_length=season,
        freq=freq,
        models=models,
        n_windows=n_windows,
        time_budget=time_budget,
        data_format=fmt,
        test=str(test) if test else None,
    )
    # The data's problems (missing values, duplicates, gaps, the frequency, short series) are reported here,
    # in one line, instead of failing the flow's first step.
    source = open_source(data, table, warehouse, check=lambda src, wh: _check_data(config, src, wh))
    name = model_name or source.default_model_name("forecast")
    end, shared = run_command(
        "forecast", config, source, model_name=name, register=register, warehouse=warehouse, as_json=as_json
    )
    # the end step's plain summary, not the whole result: unpickling the fitted models costs seconds
    emit(end.summary | shared, as_json, _print_summary)


def _check_data(config: ForecastConfig, source: Any, warehouse: Any) -> None:
    from stackml.forecasting.pipeline import check_data, load_data

    train, test = load_data(config, source, warehouse)
    check_data(train, config, test)


def _print_summary(summary: dict[str, Any]) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame

    rows = [{"model": m, **v} for m, v in summary["models"].items()]
    print_frame(
        pd.DataFrame(rows), title=f"Accuracy on the {summary['scored_on']} (best first by backtest OWA)"
    )
    out = console()
    out.print(
        f"Chosen: [bold]{summary['best']}[/bold]"
        + (f" (mean of {', '.join(summary['members'])})" if len(summary["members"]) > 1 else "")
    )
    if summary["why"]:
        out.print(f"Why: {summary['why']}")
    cover = summary["coverage"].get("holdout") or summary["coverage"]["backtest"]
    if cover:
        shown = ", ".join(f"{level}%: {share:.0%}" for level, share in cover.items() if share is not None)
        where = "holdout" if "holdout" in summary["coverage"] else "backtest"
        out.print(f"Interval coverage on the {where}: {shown}")
    for name, why in summary["skipped"].items():
        out.print(f"Skipped {name}: {why}")
    out.print(summary["registry_note"])
    out.print(f"Report: {summary['report']}")
