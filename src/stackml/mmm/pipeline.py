"""The media-mix pipeline as plain functions: check, load, fit, hold out, diagnose, plan, summarise.

``MMMFlow`` (Metaflow) and ``stackml mmm fit`` call these in order; a notebook can too. Nothing here knows
about Metaflow, MLflow or the CLI.

The data come from a CSV or Parquet model frame (one row per period) or a warehouse table. A table with a
``channel`` column holds raw touchpoints and is aggregated to the model frame in SQL
(:func:`stackml.mmm.aggregate_touchpoints`); any other table is read as the model frame itself. A fitted model
must pass the diagnostics gates before anything downstream (registry, budget plan) may use it.

Example:
    >>> from stackml.mmm import simulate
    >>> from stackml.mmm.pipeline import MMMConfig, run_pipeline
    >>> sim = simulate("2y_3ch", seed=0)
    >>> config = MMMConfig(channels=sim.channels, controls=sim.controls, draws=500, tune=500, chains=2)
    >>> result = run_pipeline(sim.frame, config)  # doctest: +SKIP
    >>> result.passed, result.summary()["roas"]["tv"]["mean"]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from stackml.checks import missing_columns, missing_columns_problem
from stackml.errors import raise_if_problems
from stackml.mmm import validation as checks
from stackml.mmm.config import MMMConfig
from stackml.mmm.result import MMMResult
from stackml.mmm.transforms import DEFAULT_L_MAX
from stackml.pipelines import Source

if TYPE_CHECKING:
    from stackml.mmm.diagnostics import Diagnostics
    from stackml.mmm.model import MediaMixModel
    from stackml.mmm.optimize import BudgetPlan
    from stackml.warehouse import Warehouse

__all__ = [
    "SOURCE_FRAME",
    "SOURCE_TOUCHPOINTS",
    "MMMConfig",
    "MMMResult",
    "add_plan",
    "build_model",
    "diagnose_and_summarise",
    "fit",
    "load",
    "check_frame",
    "check_model",
    "check_source",
    "fit_model",
    "holdout_error",
    "load_frame",
    "plan_budget",
    "run_pipeline",
    "summarise",
]

SOURCE_TOUCHPOINTS = "touchpoints"  # a table with a channel column: one row per date and channel
SOURCE_FRAME = "frame"  # one row per period, one spend column per channel
TOUCHPOINT_CHANNEL_COLUMN = "channel"
TOUCHPOINT_SPEND_COLUMN = "spend"


# -- the source ----------------------------------------------------------------------------------------------
def check_source(config: MMMConfig, source: Source, warehouse: Warehouse | None = None) -> str:
    """Everything that can be checked without reading the data: columns, tables, channels, lift tests.

    Returns:
        :data:`SOURCE_TOUCHPOINTS` or :data:`SOURCE_FRAME`.

    Raises:
        InputError: listing every problem found (missing columns, unknown channels, a bad lift-test file,
            ...).
    """
    columns = source.columns(warehouse)  # a missing table raises TableNotFoundError naming the known tables
    roles = [config.date_column, *config.channels, *config.controls, config.target]
    roles += [config.geo_column] if config.geo_column else []
    kind = SOURCE_TOUCHPOINTS if source.table and TOUCHPOINT_CHANNEL_COLUMN in columns else SOURCE_FRAME
    problems: list[str] = []
    if config.geo_column:
        from stackml.mmm.geo_pipeline import check_geo_config

        check_geo_config(config)
        if kind == SOURCE_TOUCHPOINTS:
            problems.append(
                "--geo-column needs a geo panel (one row per period and geo, one spend column per "
                f"channel), not a touchpoint table with a '{TOUCHPOINT_CHANNEL_COLUMN}' column; aggregate it "
                "per geo first"
            )
    if kind == SOURCE_FRAME:
        problems += _listed(missing_columns_problem(columns, roles))
    else:
        problems += _listed(
            missing_columns_problem(columns, [config.date_column, TOUCHPOINT_SPEND_COLUMN, config.target])
        )
        if not problems:
            problems += _unknown_channels(warehouse, source.table, config.channels)
        if config.controls:
            table = config.controls_table or source.table
            ctl_columns = columns if table == source.table else list(warehouse.schema(table))
            missing = missing_columns(ctl_columns, [config.date_column, *config.controls])
            if missing:
                where = f"the controls table '{table}'" if config.controls_table else "the touchpoint table"
                problems.append(
                    f"controls {missing} are not in {where} (it has {ctl_columns}); "
                    "give a table holding them with --controls-table"
                )
    raise_if_problems(
        problems,
        what=source.describe(),
        hint="Name the columns with --date-column, --channels, --target and --controls; "
        f"a touchpoint table needs '{TOUCHPOINT_CHANNEL_COLUMN}' and '{TOUCHPOINT_SPEND_COLUMN}' columns.",
    )
    if config.lift_tests:
        _check_lift_tests(config)
    return kind


def _listed(problem: str | None) -> list[str]:
    return [problem] if problem else []


def _unknown_channels(warehouse: Warehouse, table: str, channels: tuple[str, ...]) -> list[str]:
    from stackml.warehouse import quote_column, quote_table

    chan = quote_column(TOUCHPOINT_CHANNEL_COLUMN)
    rows = warehouse.query(f"SELECT DISTINCT {chan} AS channel FROM {quote_table(table)}", dialect="duckdb")
    known = sorted(str(c) for c in rows["channel"])
    unknown = [c for c in channels if c not in known]
    return [f"unknown channels {unknown}; the table's channels are {known}"] if unknown else []


def _check_lift_tests(config: MMMConfig) -> None:
    from stackml.mmm.calibration import load_lift_tests

    tests = load_lift_tests(config.lift_tests)
    unknown = sorted(set(tests["channel"]) - set(config.channels))
    raise_if_problems(
        [f"they name channels {unknown} that are not among the model's channels {list(config.channels)}"]
        if unknown
        else [],
        what=f"the lift tests '{config.lift_tests}'",
        hint="Drop those rows or add the channels with --channels.",
    )


def load_frame(config: MMMConfig, source: Source, warehouse: Warehouse | None = None) -> pd.DataFrame:
    """The model frame ``date, <channels>, <controls>, <target>``, one row per period, sorted by date.

    Raw touchpoints are aggregated in the warehouse at ``config.freq``; controls are averaged per period from
    ``config.controls_table`` (default: the touchpoint table itself, when it holds them).
    """
    kind = check_source(config, source, warehouse)
    if kind == SOURCE_TOUCHPOINTS:
        from stackml.mmm.data import aggregate_touchpoints

        frame = aggregate_touchpoints(
            warehouse,
            source.table,
            freq=config.freq,
            target=config.target,
            channels=list(config.channels),
            controls_table=(config.controls_table or source.table) if config.controls else None,
            controls=config.controls,
            date_column=config.date_column,
        )
        return frame.rename(columns={"date": config.date_column})
    frame = source.read(warehouse)
    columns = [config.date_column, *([config.geo_column] if config.geo_column else [])]
    columns += [*config.channels, *config.controls, config.target]
    # Dates stay as read: check_frame reports unparseable ones by value, and the model parses and sorts them.
    return frame[columns].copy()


def check_frame(frame: pd.DataFrame, config: MMMConfig) -> None:
    """Fail early, naming every problem of the model frame (the model would find the same ones at fit
    time)."""
    if config.geo_column:
        from stackml.mmm.geo_pipeline import check_geo_frame

        return check_geo_frame(frame, config)
    model = build_model(config)
    min_rows = checks.min_rows_for(
        len(config.channels), len(config.controls), model.yearly_seasonality, model.l_max or DEFAULT_L_MAX
    )
    problems = checks.check_frame(
        frame,
        date_column=config.date_column,
        channels=config.channels,
        controls=config.controls,
        target_column=config.target,
        min_rows=min_rows,
    )
    raise_if_problems(
        problems,
        what="the model frame",
        hint="The model frame needs one row per period with numeric, non-negative spend columns.",
    )


def build_model(config: MMMConfig) -> MediaMixModel:
    """The unfitted :class:`~stackml.mmm.MediaMixModel` the configuration describes."""
    from stackml.mmm.model import MediaMixModel

    return MediaMixModel(
        config.date_column,
        list(config.channels),
        config.target,
        list(config.controls),
        adstock=config.adstock,
        saturation=config.saturation,
        yearly_seasonality=config.yearly_seasonality,
        time_varying_intercept=config.time_varying_intercept,
        roas_prior=config.channel_roas_prior(),
        target_accept=config.target_accept,
    )


# -- fitting and checking ------------------------------------------------------------------------------------
def fit_model(frame: pd.DataFrame, config: MMMConfig, *, progressbar: bool = False) -> MediaMixModel:
    """Fit the configured model (calibrated with ``config.lift_tests`` when given); a
    :class:`~stackml.mmm.GeoMediaMixModel` when ``config.geo_column`` is set."""
    if config.geo_column:
        from stackml.mmm.geo_pipeline import fit_geo_model

        return fit_geo_model(frame, config, progressbar=progressbar)
    return build_model(config).fit(
        frame,
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
        random_state=config.random_state,
        lift_tests=config.lift_tests or None,
        progressbar=progressbar,
    )


def holdout_error(model: MediaMixModel, config: MMMConfig) -> dict[str, Any] | None:
    """The time-slice check: refit without the last ``config.holdout`` periods and score their forecast.

    It re-samples the compiled model, so it must run in the process that fitted it (before pickling). Not
    run for a geo model yet.
    """
    if config.holdout <= 0 or config.geo_column:
        return None
    from stackml.mmm.diagnostics import time_slice_error

    return time_slice_error(model, float(config.holdout))


def check_model(
    model: MediaMixModel, config: MMMConfig, holdout: dict[str, Any] | None = None
) -> Diagnostics:
    """Measure the model and apply the configured gates; the held-out error (if measured) joins them."""
    from stackml.mmm.diagnostics import ADVICE, Gate, diagnose

    report = diagnose(
        model,
        max_divergences=config.max_divergences,
        max_rhat=config.max_rhat,
        min_ess=config.min_ess,
        min_r2=config.min_r2,
        max_mape=config.max_mape,
    )
    if holdout is not None:
        report.oos_mape, report.oos_r2 = holdout["oos_mape"], holdout["oos_r2"]
        report.holdout_periods = holdout["holdout_periods"]
        if config.max_holdout_mape is not None:
            limit = config.max_holdout_mape
            report.gates.append(
                Gate("oos_mape", report.oos_mape, limit, bool(report.oos_mape <= limit), ADVICE["oos_mape"])
            )
    return report


def default_budget(model: MediaMixModel, horizon: int) -> float:
    """The historical spend rate over ``horizon`` periods: the budget a planner starts from."""
    return float(model.design_.spend.mean(axis=0).sum() * horizon)


def plan_budget(model: MediaMixModel, config: MMMConfig) -> BudgetPlan | None:
    """The optimised budget plan for ``config.horizon`` periods (None when the horizon is 0)."""
    if not config.horizon:
        return None
    from stackml.mmm.optimize import optimize_budget

    budget = config.budget if config.budget is not None else default_budget(model, config.horizon)
    return optimize_budget(
        model,
        budget,
        int(config.horizon),
        bounds=config.bounds,
        hdi_prob=config.hdi_prob,
        random_state=config.random_state or 0,
    )


# -- the result ----------------------------------------------------------------------------------------------
def summarise(
    model: MediaMixModel,
    diagnostics: Diagnostics,
    config: MMMConfig,
    *,
    holdout: dict[str, Any] | None = None,
    plan: BudgetPlan | None = None,
    seconds: dict[str, float] | None = None,
) -> MMMResult:
    """Compute the outputs of a fitted model (contributions, ROAS, marginal ROAS, response curves) into a
    result."""
    from stackml.mmm import outputs

    prob = config.hdi_prob
    stats = model.fit_stats_
    timing = {"compile": stats["compile_seconds"], "sampling": stats["sampling_seconds"], **(seconds or {})}
    return MMMResult(
        config=config,
        model=model,
        diagnostics=diagnostics,
        holdout=holdout,
        roas=outputs.roas(model, prob),
        contribution_share=outputs.contribution_share(model, prob),
        marginal_roas=outputs.marginal_roas(model, prob),
        contributions=outputs.contributions(model, prob),
        response_curves=outputs.response_curves(model, hdi_prob=prob),
        plan=plan,
        seconds=timing,
    )


# -- the steps: MMMFlow runs one per Metaflow step, run_pipeline runs them in one process, in the same order
def load(config: MMMConfig, source: Source, warehouse: Warehouse | None = None) -> pd.DataFrame:
    """Step 1: read the model frame (aggregating touchpoints in SQL) and check it."""
    frame = load_frame(config, source, warehouse)
    check_frame(frame, config)
    return frame


def fit(
    frame: pd.DataFrame, config: MMMConfig, *, progressbar: bool = False
) -> tuple[Any, Any, dict[str, float]]:
    """Step 2: sample the posterior, then the time-slice check; returns ``(model, holdout, seconds)``."""
    started = time.perf_counter()
    model = fit_model(frame, config, progressbar=progressbar)
    fitted = time.perf_counter()
    held = holdout_error(model, config)
    return model, held, {"fit": fitted - started, "holdout": time.perf_counter() - fitted}


def diagnose_and_summarise(
    model: MediaMixModel, config: MMMConfig, holdout: dict[str, Any] | None, seconds: dict[str, float]
) -> MMMResult:
    """Step 3: apply the gates and compute contributions, ROAS, marginal ROAS and response curves."""
    if config.geo_column:
        from stackml.mmm.geo_pipeline import diagnose_geo, summarise_geo

        return summarise_geo(model, diagnose_geo(model, config), config, seconds=seconds)
    return summarise(model, check_model(model, config, holdout), config, holdout=holdout, seconds=seconds)


def add_plan(result: MMMResult) -> MMMResult:
    """Step 4: plan the budget over the horizon, only for a model that passed its gates (before publishing, so
    the plan's metrics reach the registered run). Not made for a geo model yet."""
    if result.passed and not result.config.geo_column:
        started = time.perf_counter()
        result.plan = plan_budget(result.model, result.config)
        result.seconds["plan"] = time.perf_counter() - started
    return result


def run_pipeline(frame: pd.DataFrame, config: MMMConfig, *, progressbar: bool = False) -> MMMResult:
    """Steps 2-4 in one process on a model frame: fit, hold out, diagnose, summarise and (if it passed) plan.

    Publishing (:func:`stackml.pipelines.publish`) and the report attach from outside, as in ``MMMFlow``.
    """
    check_frame(frame, config)
    model, held, seconds = fit(frame, config, progressbar=progressbar)
    return add_plan(diagnose_and_summarise(model, config, held, seconds))
