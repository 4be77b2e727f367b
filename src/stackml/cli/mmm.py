"""``stackml mmm fit`` and ``stackml mmm optimize``: the media-mix pipeline (MMMFlow) and budget planning.

Exit codes as everywhere: 2 for bad input, checked before the flow starts where possible, and also when the fitted
model fails a diagnostics gate (it is then not registered; the summary and the report say which gate and what to try).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

mmm_app = typer.Typer(
    help="Media-mix modelling: fit a Bayesian MMM, gate, register, plan budgets and report.",
    no_args_is_help=True,
)


def default_model_name(data: Path | None, table: str | None) -> str:
    """``mmm-<dataset>``: one registered model per dataset, so champions compare like with like."""
    stem = table or (data.name.split(".")[0] if data else "data")
    return "mmm-" + (re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "data")


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in (text or "").split(",") if c.strip())


@mmm_app.command("fit")
def fit(
    channels: Annotated[
        str,
        typer.Option(
            "--channels",
            help="Comma-separated channels: spend columns, or the channel values of a touchpoint table.",
        ),
    ],
    target: Annotated[str, typer.Option("--target", help="The target column (revenue, conversions, ...).")],
    data: Annotated[
        Path | None, typer.Option("--data", help="Model frame CSV/Parquet: one row per period.")
    ] = None,
    table: Annotated[
        str | None,
        typer.Option(
            "--table", help="Warehouse table: raw touchpoints (it has a 'channel' column) or a model frame."
        ),
    ] = None,
    date_column: Annotated[str, typer.Option("--date-column", help="The date column.")] = "date",
    controls: Annotated[
        str | None,
        typer.Option("--controls", help="Comma-separated control columns (promotions, price, ...)."),
    ] = None,
    controls_table: Annotated[
        str | None,
        typer.Option(
            "--controls-table",
            help="Table holding the controls of a touchpoint table (default: the touchpoint table).",
        ),
    ] = None,
    freq: Annotated[
        str, typer.Option("--freq", help="Period to aggregate touchpoints to: W (weeks from Monday) or D.")
    ] = "W",
    lift_tests: Annotated[
        Path | None,
        typer.Option(
            "--lift-tests",
            help="Lift-test CSV: channel,start_date,end_date,spend_change,incremental_target,incremental_target_sd.",
        ),
    ] = None,
    adstock: Annotated[
        str, typer.Option("--adstock", help="geometric, delayed, weibull or weibull_pdf.")
    ] = "geometric",
    saturation: Annotated[
        str, typer.Option("--saturation", help="logistic, hill or michaelis_menten.")
    ] = "logistic",
    draws: Annotated[int, typer.Option("--draws", help="Posterior draws per chain.")] = 2000,
    tune: Annotated[int, typer.Option("--tune", help="Warm-up draws per chain.")] = 1000,
    chains: Annotated[int, typer.Option("--chains", help="Chains.")] = 4,
    target_accept: Annotated[
        float,
        typer.Option("--target-accept", help="NUTS target acceptance; raise to 0.95 against divergences."),
    ] = 0.9,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout", help="Share of the last periods held out for the time-slice check (0: none)."
        ),
    ] = 0.15,
    max_divergences: Annotated[
        int, typer.Option("--max-divergences", help="Gate: most divergent transitions.")
    ] = 0,
    max_rhat: Annotated[float, typer.Option("--max-rhat", help="Gate: largest r_hat.")] = 1.01,
    min_ess: Annotated[
        float, typer.Option("--min-ess", help="Gate: smallest bulk effective sample size.")
    ] = 400.0,
    min_r2: Annotated[float, typer.Option("--min-r2", help="Gate: smallest in-sample R².")] = 0.5,
    max_holdout_mape: Annotated[
        float | None,
        typer.Option(
            "--max-holdout-mape", help="Gate: largest held-out MAPE (default: reported, not gated)."
        ),
    ] = None,
    horizon: Annotated[
        int, typer.Option("--horizon", help="Periods of the budget plan made after the fit (0: none).")
    ] = 12,
    budget: Annotated[
        float | None,
        typer.Option("--budget", help="Budget of that plan (default: the historical spend rate)."),
    ] = None,
    bounds: Annotated[
        str | None,
        typer.Option("--bounds", help="Per-period spend bounds of the plan: search=0:5000,tv=:20000."),
    ] = None,
    model_name: Annotated[
        str | None, typer.Option("--model-name", help="Registered model name (default mmm-<dataset>).")
    ] = None,
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register",
            help="Register the model (if it passes the gates) and promote it if it wins.",
        ),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print ROAS, contribution shares and diagnostics as JSON.")
    ] = False,
) -> None:
    """Fit a media-mix model, check it against the gates, register it, plan a budget and write a report."""
    from stackml.errors import InputError
    from stackml.flows import flow_path, run_flow
    from stackml.mmm.pipeline import MMMConfig, check_source, parse_bounds

    # Everything checkable without fitting is checked here, so a typo never starts a flow (or a compile).
    if (data is None) == (table is None):
        raise InputError("Give exactly one of --data PATH or --table NAME.", hint="e.g. --table touchpoints")
    for label, path in (("--data", data), ("--lift-tests", lift_tests)):
        if path is not None and not path.is_file():
            raise InputError(f"{label}: file not found: '{path}'.", hint="Check the path.")
    config = MMMConfig(
        channels=_names(channels), target=target, date_column=date_column, controls=_names(controls), freq=freq,
        adstock=adstock, saturation=saturation, target_accept=target_accept, draws=draws, tune=tune, chains=chains,
        random_state=seed, lift_tests=str(lift_tests.resolve()) if lift_tests else None, holdout=holdout,
        max_divergences=max_divergences, max_rhat=max_rhat, min_ess=min_ess, min_r2=min_r2,
        max_holdout_mape=max_holdout_mape, horizon=horizon, budget=budget, bounds=parse_bounds(bounds),
    )  # fmt: skip
    if table is not None:
        from stackml.warehouse import connect

        with connect() as wh:  # closed before the flow starts: DuckDB lets one process write at a time
            check_source(config, table=table, controls_table=controls_table, warehouse=wh)
    else:
        check_source(config, data=data)
    name = model_name or default_model_name(data, table)
    parameters = {
        "data": str(data.resolve()) if data else "", "table": table or "", "controls_table": controls_table or "",
        "freq": freq, "date_column": date_column, "channels": ",".join(config.channels), "target": target,
        "controls": ",".join(config.controls), "lift_tests": config.lift_tests or "", "adstock": adstock,
        "saturation": saturation, "draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept,
        "seed": seed, "holdout": holdout, "max_divergences": max_divergences, "max_rhat": max_rhat,
        "min_ess": min_ess, "min_r2": min_r2, "max_holdout_mape": max_holdout_mape or 0.0, "horizon": horizon,
        "budget": budget or 0.0, "bounds": bounds or "", "model_name": name, "register": register,
    }  # fmt: skip
    if not as_json:
        from stackml.cli.output import console

        console(stderr=True).print(
            f"[dim]Step 'fit' compiles the model with numba first (20-70 s on a small machine), then samples "
            f"{chains} chains x {tune}+{draws} draws{', and again for the time-slice check' if holdout else ''}.[/dim]"
        )
    result = run_flow(flow_path("mmm"), parameters, show_progress=not as_json)
    end = result.run["end"].task.data
    summary = summarise_run(end, name) | {"run_id": result.run_id}
    if as_json:
        from stackml.cli.output import print_json

        print_json(summary)
    else:
        _print_fit(summary, end)
    if not end.passed:
        from stackml.mmm.diagnostics import GateFailedError

        raise GateFailedError(
            f"The media-mix model failed {len(end.failed_gates)} diagnostics gate(s) and was not registered: "
            + "; ".join(end.failed_gates)
            + ".",
            hint=f"Refit with the suggested changes. Report: {end.report_path}",
        )


def summarise_run(end: Any, model_name: str) -> dict[str, Any]:
    """The JSON ``stackml mmm fit`` prints: ROAS, contribution shares, diagnostics, plan, registry, report."""
    promotion = end.promotion
    return end.summary | {
        "model_name": model_name,
        "registered": end.model_version is not None,
        "model_version": end.model_version,
        "promoted": None if promotion is None else promotion.promoted,
        "promotion": None if promotion is None else promotion.reason,
        "report": end.report_path,
    }


def _print_fit(summary: dict[str, Any], end: Any) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame

    rows = [
        {"channel": ch, "ROAS": f"{r['mean']:.3g}", "ROAS HDI": f"{r['hdi_low']:.3g} .. {r['hdi_high']:.3g}",
         "share": f"{summary['contribution_share'][ch]['mean']:.1%}",
         "share HDI": f"{summary['contribution_share'][ch]['hdi_low']:.1%} .. "
                      f"{summary['contribution_share'][ch]['hdi_high']:.1%}"}
        for ch, r in summary["roas"].items()
    ]  # fmt: skip
    print_frame(pd.DataFrame(rows), title="Return on ad spend and contribution share (94% HDI)")
    out = console()
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
    if end.promotion is not None:
        out.print(f"Registered {summary['model_name']} v{summary['model_version']}: {end.promotion.reason}")
    out.print(f"Report: {summary['report']}")


def _print_plan(plan: dict[str, Any]) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame

    rows = [
        {"channel": ch, "per period": f"{a['per_period']:,.0f}", "total": f"{a['total']:,.0f}",
         "share": f"{a['share']:.1%}", "historical mix per period": f"{a['baseline_per_period']:,.0f}",
         "bound": a["bound"]}
        for ch, a in plan["allocation"].items()
    ]  # fmt: skip
    print_frame(
        pd.DataFrame(rows),
        title=f"Budget plan: {plan['total_budget']:,.0f} over {plan['horizon_periods']} periods",
    )
    up = plan["uplift"]
    binding = ", ".join(f"{c} ({side})" for c, side in plan["binding"].items()) or "none"
    console().print(
        f"Expected uplift over the historical mix: {up['mean']:+,.0f} ({up['ratio']:+.1%}; "
        f"{plan['hdi_prob']:.0%} HDI {up['hdi_low']:+,.0f} .. {up['hdi_high']:+,.0f}; better in "
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Split a budget over channels with a registered media-mix model: allocation, expected uplift, binding bounds."""
    from stackml.errors import InputError
    from stackml.mmm.optimize import optimize_budget
    from stackml.mmm.pipeline import parse_bounds

    parsed = parse_bounds(bounds)
    if horizon < 1 or budget <= 0:
        raise InputError(
            f"--budget must be > 0 and --horizon >= 1; got budget {budget:g}, horizon {horizon}.",
            hint="e.g. --budget 500000 --horizon 12",
        )
    name, _, alias = model.partition("@")
    alias = alias or "champion"
    mmm, version = _load_mmm(name, alias)
    plan = optimize_budget(mmm, budget, horizon, bounds=parsed, start_date=start_date)
    payload = plan.as_dict() | {"model": f"{name}@{alias}", "model_version": version}
    if as_json:
        from stackml.cli.output import print_json

        print_json(payload)
    else:
        _print_plan(payload)


def _load_mmm(name: str, alias: str) -> tuple[Any, int]:
    """The fitted MediaMixModel inside a registered pyfunc, and the version the alias points to."""
    from stackml import tracking
    from stackml.errors import InputError, RegistryError
    from stackml.mmm.registry_model import MMMPyfunc

    client = tracking.configure()
    try:
        version = client.get_model_version_by_alias(name, alias)
    except Exception as exc:
        raise RegistryError(
            f"No registered model '{name}' with the alias '{alias}'.",
            hint="Run `stackml models` to list registered models and their aliases; fit one with `stackml mmm fit`.",
        ) from exc
    loaded = tracking.load_model(f"models:/{name}/{version.version}")
    python_model = loaded.unwrap_python_model()
    if not isinstance(python_model, MMMPyfunc):
        raise InputError(
            f"Model '{name}@{alias}' is not a media-mix model (it is a {type(python_model).__name__}).",
            hint="Pass a model registered by `stackml mmm fit`.",
        )
    return python_model.model, int(version.version)
