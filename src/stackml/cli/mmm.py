"""``stackml mmm fit`` and ``stackml mmm optimize``: the media-mix pipeline (MMMFlow) and budget planning.

Exit codes as everywhere: 2 for bad input, checked before the flow starts where possible, and also when the
fitted model fails a diagnostics gate (it is then not registered; the summary and the report say which gate
and what to try).
"""

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
from stackml.mmm.config import MMMConfig

mmm_app = typer.Typer(
    help="Media-mix modelling: fit a Bayesian MMM, gate, register, plan budgets and report.",
    no_args_is_help=True,
)


def _default(field: str) -> Any:
    return default(MMMConfig, field)


@mmm_app.command("fit")
def fit(
    channels: Annotated[
        str,
        typer.Option(
            "--channels",
            help="Comma-separated channels: spend columns, or the channel values of a touchpoint table.",
        ),
    ],
    target: Annotated[
        str, typer.Option("--target", help="The target column (revenue, conversions, ...).")
    ] = _default("target"),
    data: DataOption = None,
    table: TableOption = None,
    date_column: Annotated[str, typer.Option("--date-column", help="The date column.")] = _default(
        "date_column"
    ),
    geo_column: Annotated[
        Optional[str],
        typer.Option(
            "--geo-column",
            help="Fit a geo panel (one row per period and geo) in one hierarchical model: ROAS per geo "
            "pooled toward the national one; the outputs are national sums plus 'geos'.",
        ),
    ] = None,
    controls: Annotated[
        Optional[str],
        typer.Option("--controls", help="Comma-separated control columns (promotions, price, ...)."),
    ] = None,
    controls_table: Annotated[
        Optional[str],
        typer.Option(
            "--controls-table",
            help="Table holding the controls of a touchpoint table (default: the touchpoint table).",
        ),
    ] = _default("controls_table"),
    freq: Annotated[
        str, typer.Option("--freq", help="Period to aggregate touchpoints to: W (weeks from Monday) or D.")
    ] = _default("freq"),
    lift_tests: Annotated[
        Optional[Path],
        typer.Option(
            "--lift-tests",
            help="Lift-test CSV: channel,start_date,end_date,spend_change,incremental_target,"
            "incremental_target_sd.",
        ),
    ] = None,
    adstock: Annotated[
        str, typer.Option("--adstock", help="geometric, delayed, weibull or weibull_pdf.")
    ] = _default("adstock"),
    saturation: Annotated[
        str,
        typer.Option(
            "--saturation",
            help="default (hill, concave or S-shaped; logistic with --lift-tests), hill, logistic, "
            "michaelis_menten, or auto (logistic and hill fitted, the data choose by PSIS-LOO).",
        ),
    ] = _default("saturation"),
    yearly_seasonality: Annotated[
        int,
        typer.Option(
            "--yearly-seasonality", help="Fourier order of the yearly cycle (0: none; 4 for sharper)."
        ),
    ] = _default("yearly_seasonality"),
    time_varying_intercept: Annotated[
        bool,
        typer.Option(
            "--time-varying-intercept",
            help="Let the baseline level drift (a random walk over quarterly knots) for demand the trend, "
            "seasonality and controls miss.",
        ),
    ] = _default("time_varying_intercept"),
    roas_prior: Annotated[
        Optional[str],
        typer.Option(
            "--roas-prior",
            help="Prior ROAS per channel as CHANNEL=MEAN:SD (target units per spend unit), e.g. "
            "search=2:1,tv=1.5:1; *=MEAN:SD for every channel not named. Default: a weak prior.",
        ),
    ] = None,
    draws: Annotated[int, typer.Option("--draws", help="Posterior draws per chain.")] = _default("draws"),
    tune: Annotated[int, typer.Option("--tune", help="Warm-up draws per chain.")] = _default("tune"),
    chains: Annotated[int, typer.Option("--chains", help="Chains.")] = _default("chains"),
    target_accept: Annotated[
        float,
        typer.Option("--target-accept", help="NUTS target acceptance; raise to 0.95 against divergences."),
    ] = _default("target_accept"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = _default("random_state"),
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout", help="Share of the last periods held out for the time-slice check (0: none)."
        ),
    ] = _default("holdout"),
    max_divergences: Annotated[
        int, typer.Option("--max-divergences", help="Gate: most divergent transitions.")
    ] = _default("max_divergences"),
    max_rhat: Annotated[float, typer.Option("--max-rhat", help="Gate: largest r_hat.")] = _default(
        "max_rhat"
    ),
    min_ess: Annotated[
        float, typer.Option("--min-ess", help="Gate: smallest bulk effective sample size.")
    ] = _default("min_ess"),
    min_r2: Annotated[float, typer.Option("--min-r2", help="Gate: smallest in-sample R².")] = _default(
        "min_r2"
    ),
    max_holdout_mape: Annotated[
        Optional[float],
        typer.Option(
            "--max-holdout-mape", help="Gate: largest held-out MAPE (default: reported, not gated)."
        ),
    ] = _default("max_holdout_mape"),
    horizon: Annotated[
        int, typer.Option("--horizon", help="Periods of the budget plan made after the fit (0: none).")
    ] = _default("horizon"),
    budget: Annotated[
        Optional[float],
        typer.Option("--budget", help="Budget of that plan (default: the historical spend rate)."),
    ] = _default("budget"),
    bounds: Annotated[
        Optional[str],
        typer.Option("--bounds", help="Per-period spend bounds of the plan: search=0:5000,tv=:20000."),
    ] = None,
    contributions_out: Annotated[
        Optional[Path],
        typer.Option(
            "--contributions-out",
            help="Also write each channel's weekly contribution (date, geo, channel, mean, hdi_low, "
            "hdi_high) to this .csv or .parquet file, to score the model against a known truth.",
        ),
    ] = None,
    warehouse: WarehouseOption = None,
    model_name: ModelNameOption = None,
    register: RegisterOption = True,
    as_json: JsonOption = False,
) -> None:
    """Fit a media-mix model, check it against the gates, plan a budget, register it and write a report."""
    from stackml.cli._pipeline import emit, open_source, run_command

    if contributions_out is not None:
        _check_table_path(contributions_out, "--contributions-out")

    # Everything checkable without fitting is checked here, so a typo never starts a flow (or a compile).
    config = MMMConfig(
        channels=channels,
        target=target,
        date_column=date_column,
        geo_column=geo_column,
        controls=controls,
        controls_table=controls_table,
        freq=freq,
        adstock=adstock,
        saturation=saturation,
        target_accept=target_accept,
        yearly_seasonality=yearly_seasonality,
        time_varying_intercept=time_varying_intercept,
        roas_prior=roas_prior,
        draws=draws,
        tune=tune,
        chains=chains,
        random_state=seed,
        lift_tests=str(lift_tests) if lift_tests else None,
        holdout=holdout,
        max_divergences=max_divergences,
        max_rhat=max_rhat,
        min_ess=min_ess,
        min_r2=min_r2,
        max_holdout_mape=max_holdout_mape,
        horizon=horizon,
        budget=budget,
        bounds=bounds,
    )
    # The model frame's problems (missing values, repeated dates, negative spend, too few rows) are reported
    # here, in one line, instead of failing the flow's first step; on the one connection open_source opens.
    source = open_source(data, table, warehouse, check=lambda src, wh: _check_model_frame(config, src, wh))
    name = model_name or source.default_model_name("mmm")
    if not as_json:
        from stackml.cli.output import console

        slice_check = ", and again for the time-slice check" if holdout else ""
        console(stderr=True).print(
            f"[dim]Step 'fit' compiles the model with numba first (20-70 s on a small machine), then samples "
            f"{chains} chains x {tune}+{draws} draws{slice_check}.[/dim]"
        )
    end, shared = run_command(
        "mmm", config, source, model_name=name, register=register, warehouse=warehouse, as_json=as_json
    )
    written = {}
    if contributions_out is not None:
        from stackml.mmm.geo import contributions_table

        # written whether or not the gates pass: scoring a failed fit against the truth is the point too
        _write_table(contributions_table(end.result.model, end.result.config.hdi_prob), contributions_out)
        written = {"contributions_out": str(contributions_out)}
    emit(end.result.summary() | shared | {"extract": end.extract_path} | written, as_json, _print_fit)
    if not end.result.passed:
        from stackml.mmm.diagnostics import GateFailedError

        failed = end.result.failed_gates()
        raise GateFailedError(
            f"The media-mix model failed {len(failed)} diagnostics gate(s) and was not registered: "
            + "; ".join(failed)
            + ".",
            hint=f"Refit with the suggested changes. Report: {end.report_path}",
        )


def _print_fit(summary: dict[str, Any]) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame
    from stackml.mmm.amounts import format_amount

    rows = [
        {
            "channel": ch,
            "ROAS": format_amount(r["mean"]),
            "ROAS HDI": f"{format_amount(r['hdi_low'])} .. {format_amount(r['hdi_high'])}",
            "share": f"{summary['contribution_share'][ch]['mean']:.1%}",
            "share HDI": f"{summary['contribution_share'][ch]['hdi_low']:.1%} .. "
            f"{summary['contribution_share'][ch]['hdi_high']:.1%}",
            "identified": {True: "yes", False: "NO: prior"}.get(r.get("identified"), "n/a"),
        }
        for ch, r in summary["roas"].items()
    ]
    print_frame(pd.DataFrame(rows), title="Return on ad spend and contribution share (94% HDI)")
    out = console()
    vague = [ch for ch, r in summary["roas"].items() if r.get("identified") is False]
    if vague:
        out.print(
            f"[yellow]The data do not identify the ROAS of {', '.join(vague)}[/yellow]: their intervals "
            "mostly restate the prior. Add a lift test (--lift-tests) or a --roas-prior for them."
        )
    d = summary["diagnostics"]
    holdout = f", holdout MAPE {d['holdout_mape']:.1%}" if d["holdout_mape"] is not None else ""
    rhat = "n/a (one chain)" if d["max_rhat"] is None else f"{d['max_rhat']:.3f}"
    out.print(
        f"Diagnostics: {d['divergences']} divergences, max r_hat {rhat}, min ESS {d['min_ess'] or 0:.0f}, "
        f"R² {d['r2']:.3f}{holdout}: "
        + ("[green]all gates passed[/green]" if d["passed"] else "[red]FAILED[/red]")
    )
    for gate in d["failed_gates"]:
        out.print(f"  [red]-[/red] {gate}")
    if summary["budget_plan"] is not None:
        _print_plan(summary["budget_plan"])
    out.print(summary["registry_note"])
    out.print(f"Report: {summary['report']}")
    if summary.get("extract"):
        out.print(f"Tableau extract: {summary['extract']}")


def _print_plan(plan: dict[str, Any]) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame
    from stackml.mmm.amounts import format_amount

    rows = [
        {
            "channel": ch,
            "per period": format_amount(a["per_period"]),
            "total": format_amount(a["total"]),
            "share": f"{a['share']:.1%}",
            "historical mix per period": format_amount(a["baseline_per_period"]),
            "bound": a["bound"],
        }
        for ch, a in plan["allocation"].items()
    ]
    print_frame(
        pd.DataFrame(rows),
        title=f"Budget plan: {format_amount(plan['total_budget'])} over {plan['horizon_periods']} periods",
    )
    up = plan["uplift"]
    binding = ", ".join(f"{c} ({side})" for c, side in plan["binding"].items()) or "none"
    low, high = (format_amount(up[side], sign=True) for side in ("hdi_low", "hdi_high"))
    console().print(
        f"Expected uplift over the historical mix: {format_amount(up['mean'], sign=True)} "
        f"({up['ratio']:+.1%}; {plan['hdi_prob']:.0%} HDI {low} .. {high}; better in "
        f"{up['probability_positive']:.0%} of draws). Binding bounds: {binding}."
    )


@mmm_app.command("optimize")
def optimize(
    model: Annotated[
        str, typer.Option("--model", help="Registered model: NAME (its champion) or NAME@ALIAS.")
    ],
    budget: Annotated[float, typer.Option("--budget", help="Total budget over the horizon, all channels.")],
    horizon: Annotated[int, typer.Option("--horizon", help="Periods in the plan.")],
    bounds: Annotated[
        str | None, typer.Option("--bounds", help="Per-period spend bounds: search=0:5000,tv=:20000.")
    ] = None,
    start_date: Annotated[
        str | None,
        typer.Option(
            "--start-date", help="First period of the plan (default: right after the training data)."
        ),
    ] = None,
    geo: Annotated[
        Optional[str],
        typer.Option("--geo", help="For a model fitted with --geo-column: the geo whose budget to plan."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Split a budget over channels with a registered media-mix model: allocation, expected uplift, binding
    bounds (for a geo model, one geo's budget)."""
    from stackml.errors import InputError
    from stackml.mmm.config import parse_bounds
    from stackml.mmm.optimize import optimize_budget

    parsed = parse_bounds(bounds)
    if horizon < 1 or budget <= 0:
        raise InputError(
            f"--budget must be > 0 and --horizon >= 1; got budget {budget:g}, horizon {horizon}.",
            hint="e.g. --budget 500000 --horizon 12",
        )
    name, _, alias = model.partition("@")
    alias = alias or "champion"
    mmm, version = _load_mmm(name, alias)
    mmm = _one_geo(mmm, geo, f"{name}@{alias}")
    plan = optimize_budget(mmm, budget, horizon, bounds=parsed, start_date=start_date)
    payload = plan.as_dict() | {"model": f"{name}@{alias}", "model_version": version}
    payload |= {"geo": geo} if geo is not None else {}
    if as_json:
        from stackml.cli.output import print_json

        print_json(payload)
    else:
        _print_plan(payload)


def _load_mmm(name: str, alias: str) -> tuple[Any, int]:
    """The fitted MediaMixModel inside a registered pyfunc, and the version the alias points to."""
    from stackml import tracking
    from stackml.errors import InputError, RegistryError
    from stackml.mmm.registry_model import GeoMMMPyfunc, MMMPyfunc

    client = tracking.configure()
    try:
        version = client.get_model_version_by_alias(name, alias)
    except Exception as exc:
        raise RegistryError(
            f"No registered model '{name}' with the alias '{alias}'.",
            hint="Run `stackml models` to list registered models and their aliases; "
            "fit one with `stackml mmm fit`.",
        ) from exc
    loaded = tracking.load_model(f"models:/{name}/{version.version}")
    python_model = loaded.unwrap_python_model()
    if not isinstance(python_model, (MMMPyfunc, GeoMMMPyfunc)):
        raise InputError(
            f"Model '{name}@{alias}' is not a media-mix model (it is a {type(python_model).__name__}).",
            hint="Pass a model registered by `stackml mmm fit`.",
        )
    return python_model.model, int(version.version)


def _one_geo(model: Any, geo: str | None, label: str) -> Any:
    """The geo's own model of a geo model; the model itself for a national one (which takes no --geo)."""
    from stackml.errors import InputError

    geos = getattr(model, "geo_models_", None)
    if geos is None:
        if geo is not None:
            raise InputError(
                f"--geo {geo}: model '{label}' was fitted on one national series, not per geo.",
                hint="Drop --geo, or plan with a model fitted with --geo-column.",
            )
        return model
    if geo is None or geo not in geos:
        given = "no --geo" if geo is None else f"--geo {geo}, which it does not know"
        raise InputError(
            f"Model '{label}' is fitted per geo; got {given}.",
            hint=f"Plan one geo at a time with --geo, one of {list(geos)[:10]}.",
        )
    return geos[geo]


def _check_model_frame(config: Any, source: Any, warehouse: Any) -> None:
    from stackml.mmm.pipeline import load

    load(config, source, warehouse)  # checks the source first (check_source), then reads and checks the frame


TABLE_SUFFIXES = (".csv", ".parquet")


def _check_table_path(path: Path, option: str) -> None:
    """Refuse an output path that cannot be written before anything is fitted."""
    from stackml.errors import InputError

    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(
            f"{option} must name a .csv or .parquet file, got '{path}'.",
            hint=f"For example {option} contributions.csv.",
        )
    if not path.parent.is_dir():
        raise InputError(
            f"{option}: the folder '{path.parent}' does not exist.", hint="Create it, or name another file."
        )


def _write_table(frame: Any, path: Path) -> None:
    """Write-then-rename: an interrupted run leaves the old file, never half a new one."""
    import os
    import secrets

    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        if path.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
