"""``stackml forecast run``: the forecasting pipeline (ForecastFlow) from the command line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

forecast_app = typer.Typer(help="Forecasting: backtest, choose, register and report.", no_args_is_help=True)


def default_model_name(data: Optional[Path], table: Optional[str]) -> str:
    """``forecast-<dataset>``: one registered model per dataset, so champions compare like with like."""
    stem = table or (data.name.split(".")[0] if data else "data")
    return "forecast-" + (re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "data")


@forecast_app.command("run")
def run(
    horizon: Annotated[int, typer.Option("--horizon", "-h", help="Steps to forecast.")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Long CSV/Parquet (unique_id, ds, y) or M4 wide CSV.")] = None,
    table: Annotated[Optional[str], typer.Option("--table", help="Read the training data from a warehouse table.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="long or m4-wide.")] = "long",
    test: Annotated[Optional[Path], typer.Option("--test", help="Holdout in the same format, scored with the M4 metrics.")] = None,
    season: Annotated[int, typer.Option("--season", help="Season length (24 for hourly with a daily cycle, 7 for daily, 12 for monthly).")] = 1,
    freq: Annotated[Optional[str], typer.Option("--freq", help="Pandas frequency of timestamp ds (inferred by default).")] = None,
    models: Annotated[Optional[str], typer.Option("--models", help="Comma-separated model names (default: the default set).")] = None,
    n_windows: Annotated[
        Optional[int], typer.Option("--n-windows", help="Backtest windows of --horizon values (default: 1-3, from the data).")
    ] = None,
    model_name: Annotated[Optional[str], typer.Option("--model-name", help="Registered model name (default forecast-<dataset>).")] = None,
    register: Annotated[bool, typer.Option("--register/--no-register", help="Register the chosen model and promote it if it wins.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Backtest every model, choose the best (or an ensemble), register it and write a report."""
    from stackml.errors import InputError
    from stackml.flows import flow_path, run_flow
    from stackml.forecasting.pipeline import DEFAULT_MODELS, FORMATS, ForecastConfig

    # Everything checkable without data is checked here, so a typo never starts a flow.
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}.", hint="Use long or m4-wide.")
    if (data is None) == (table is None):
        raise InputError("Give exactly one of --data PATH or --table NAME.", hint="e.g. --data sales.csv")
    for label, path in (("--data", data), ("--test", test)):
        if path is not None and not path.is_file():
            raise InputError(f"{label}: file not found: '{path}'.", hint="Check the path.")
    names = tuple(m.strip() for m in (models or "").split(",") if m.strip()) or DEFAULT_MODELS
    ForecastConfig(horizon=horizon, season_length=season, freq=freq, models=names, n_windows=n_windows)
    if table is not None:
        from stackml.warehouse import connect

        with connect() as wh:
            wh._require_table(table)
    parameters = {
        "data": str(data.resolve()) if data else "",
        "table": table or "",
        "format": fmt,
        "test": str(test.resolve()) if test else "",
        "horizon": horizon,
        "season": season,
        "freq": freq or "",
        "models": ",".join(names),
        "n_windows": n_windows or 0,
        "model_name": model_name or default_model_name(data, table),
        "register": register,
    }
    result = run_flow(flow_path("forecast"), parameters, show_progress=not as_json)
    end = result.run["end"].task.data
    summary = summarise_run(end)
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary | {"run_id": result.run_id})
        return
    _print_summary(summary, end)


def summarise_run(end: Any) -> dict[str, Any]:
    """The JSON the CLI prints: scores per model (holdout when given, else backtest) and the chosen alias."""
    pipeline = end.pipeline
    scores = pipeline.holdout if pipeline.holdout is not None else pipeline.scores
    metrics = {
        str(row["model"]): {k: _num(row[k]) for k in ("smape", "mase", "owa") if k in row}
        | {k: _num(row[k]) for k in row.index if k.startswith("coverage_")}
        for _, row in scores.iterrows()
    }
    promotion = end.promotion
    return {
        "models": metrics,
        "best": pipeline.choice.alias,
        "scored_on": "holdout" if pipeline.holdout is not None else "backtest",
        "members": pipeline.members,
        "report": end.report_path,
        "model_version": end.model_version,
        "promoted": None if promotion is None else promotion.promoted,
    }


def _num(value: Any) -> float | None:
    value = float(value)
    return None if value != value else round(value, 6)


def _print_summary(summary: dict[str, Any], end: Any) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame

    rows = [{"model": m, **v} for m, v in summary["models"].items()]
    print_frame(pd.DataFrame(rows), title=f"Accuracy on the {summary['scored_on']} (best first by backtest OWA)")
    out = console()
    out.print(f"Chosen: [bold]{summary['best']}[/bold]" + (f" (mean of {', '.join(summary['members'])})" if len(summary["members"]) > 1 else ""))
    if end.promotion is not None:
        out.print(f"Registered version {summary['model_version']}: {end.promotion.reason}")
    out.print(f"Report: {summary['report']}")
