"""The forecasting pipeline as plain functions: load, backtest, choose, fit, score, explain.

``ForecastFlow`` (Metaflow) and ``stackml forecast run`` call these in order; a notebook can too. Nothing here
knows about Metaflow, MLflow or the CLI.

The backtest is the single source of truth for choosing: every candidate model is backtested on the same
windows, the backtests are stored in the warehouse and scored there in SQL (sMAPE, MASE, OWA against Naive2),
mean ensembles of the best few models are scored on the same windows, and the best by OWA is chosen.
Prediction intervals of the final forecasts are conformal, from the same backtest residuals, so nothing is
refitted just for intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.errors import InputError
from stackml.forecasting.config import DEFAULT_MODELS, REFERENCE_MODEL, ForecastConfig
from stackml.forecasting.result import CandidateResult, PipelineResult
from stackml.pipelines import Source

if TYPE_CHECKING:
    from stackml.forecasting.budget import Plan
    from stackml.forecasting.forecaster import Forecaster
    from stackml.warehouse import Warehouse

__all__ = [
    "DEFAULT_MODELS",
    "REFERENCE_MODEL",
    "ForecastConfig",
    "load_data",
    "check_data",
    "backtest_model",
    "merge_backtests",
    "add_ensembles",
    "score_backtest",
    "fit_final",
    "add_ensemble_forecasts",
    "score_holdout",
    "CandidateResult",
    "PipelineResult",
    "plan_candidates",
    "run_candidate",
    "summarise",
    "run_pipeline",
]

REFERENCE_ALIAS = "Naive2"
ENSEMBLE_PREFIX = "Ensemble"


# -- loading -------------------------------------------------------------------------------------------------
def load_data(
    config: ForecastConfig, source: Source, warehouse: Warehouse | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read the training frame (and the holdout ``config.test``) as long frames
    ``unique_id, ds, y`` (+ exogenous).

    Args:
        config: says the format (``long`` or ``m4-wide``) and the optional holdout file.
        source: a CSV or Parquet file, or a warehouse table (long format only).
        warehouse: the warehouse holding the table.
    """
    if config.data_format == "m4-wide":
        if source.table is not None:
            raise InputError(
                f"The m4-wide format is read from the competition's CSV files, not from {source.describe()}.",
                hint="Pass --data Hourly-train.csv (and --test Hourly-test.csv), "
                "or a long table with --format long.",
            )
        from stackml.forecasting.m4 import load_m4_wide

        return load_m4_wide(source.path, config.test)
    train = _typed(source.read(warehouse), source.describe())
    test = None
    if config.test is not None:
        from stackml.warehouse import read_file

        test = _typed(read_file(config.test), f"the holdout '{config.test}'")
    return train, test


def _typed(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Ids as strings; ``ds`` kept as integers when they are, else parsed as timestamps."""
    frame = frame.copy()
    if "unique_id" in frame:
        frame["unique_id"] = frame["unique_id"].astype(str)
    if (
        "ds" in frame
        and not pd.api.types.is_numeric_dtype(frame["ds"])
        and not pd.api.types.is_datetime64_any_dtype(frame["ds"])
    ):
        try:
            frame["ds"] = pd.to_datetime(frame["ds"], format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"The 'ds' column of {label} is neither integer steps nor parseable timestamps: {exc}",
                hint="Write ds as ISO dates (2024-01-31 or 2024-01-31T13:00) or as integer steps.",
            ) from exc
    return frame


#: forecast points (series x horizon steps) one backtest window should give for a stable choice; fewer per
#: window (short horizons, few series) means more windows, as far as the shortest series allows
TARGET_BACKTEST_POINTS = 12_000
MAX_AUTO_WINDOWS = 4


#: the least history the earliest backtest window leaves a series (beyond two seasons) when windows are chosen
MIN_WINDOW_HISTORY = 8


def auto_windows(train: pd.DataFrame, horizon: int, season_length: int = 1) -> int:
    """Backtest windows for a panel: enough that about 12,000 forecast points are scored, 1 to 4, and never
    more than the shortest series can hold while keeping two seasons (at least 8 values) to fit on.

    A large panel needs one window (M4 Hourly's 414 series x 48 hours already give 19,872 points, and more
    windows only cost refits); short horizons on few series (M3 Yearly: 645 x 6) need several, both for a
    stable choice and for per-step interval quantiles.
    """
    lengths = train.groupby("unique_id", sort=False).size()
    points = max(len(lengths) * horizon, 1)
    wanted = int(np.clip(np.ceil(TARGET_BACKTEST_POINTS / points), 1, MAX_AUTO_WINDOWS))
    history = max(MIN_WINDOW_HISTORY, 2 * int(season_length))
    fits = int((lengths.min() - history) // horizon) if len(lengths) else 1
    return max(1, min(wanted, fits))


def resolve_windows(config: ForecastConfig, train: pd.DataFrame) -> ForecastConfig:
    """``config`` with ``n_windows`` fixed (chosen by :func:`auto_windows` when it was ``None``)."""
    if config.n_windows is not None:
        return config
    return config.replace(n_windows=auto_windows(train, config.horizon, config.main_period))


def resolve_seasonality(config: ForecastConfig, train: pd.DataFrame, freq: Any) -> ForecastConfig:
    """``config`` with ``season_length`` (scoring) and ``seasonal_periods`` (models) fixed: the user's season
    wins, else the frequency's periods, else those found in the data (see
    :mod:`stackml.forecasting.seasonality`)."""
    from stackml.forecasting.seasonality import resolve_seasonality as resolve

    if config.seasonal_periods is not None and config.season_length is not None:
        return config
    series = [g.to_numpy(dtype=np.float64) for _, g in train.groupby("unique_id", sort=False)["y"]]
    found = resolve(series, freq, config.season_length)
    return config.replace(
        season_length=found.scoring,
        seasonal_periods=config.seasonal_periods if config.seasonal_periods is not None else found.periods,
    )


def check_data(
    train: pd.DataFrame, config: ForecastConfig, test: pd.DataFrame | None = None
) -> ForecastConfig:
    """Fail early, naming every problem: the frame itself, series too short for the backtest, a bad holdout.

    Returns:
        ``config`` with the seasonal periods and the number of backtest windows fixed (chosen from the data
        when they were ``None``).
    """
    from stackml.forecasting.validation import check_lengths, validate_frame, windows_needed

    clean, spec = validate_frame(train, freq=config.freq)
    config = resolve_seasonality(config, clean, spec.freq if spec.is_timestamp else None)
    config = resolve_windows(config, clean)
    lengths = clean.groupby("unique_id", sort=True).size()
    needed = windows_needed(config.horizon, config.n_windows, config.horizon)
    check_lengths(
        lengths.index.to_numpy(),
        lengths.to_numpy(),
        needed,
        f"a backtest with horizon {config.horizon} and {config.n_windows} windows",
        f"horizon {config.horizon} x n_windows {config.n_windows} + 1 training value",
        "Use fewer windows (--n-windows), a smaller horizon, or drop these series.",
    )
    if test is not None:
        missing = [c for c in ("unique_id", "ds", "y") if c not in test.columns]
        if missing:
            raise InputError(
                f"The holdout: The following columns are missing: {missing}", hint="Use unique_id, ds, y."
            )
        unknown = sorted(set(test["unique_id"].astype(str)) - set(clean["unique_id"].astype(str)))
        if unknown:
            raise InputError(
                f"The holdout has {len(unknown)} series that are not in the training data, "
                f"e.g. {unknown[:5]}.",
                hint="Use a holdout with the same series ids as the training data.",
            )
    return config


# -- backtesting and choosing --------------------------------------------------------------------------------
def _forecaster(models: Sequence[Any], config: ForecastConfig) -> Forecaster:
    from stackml.forecasting.forecaster import Forecaster

    return Forecaster(
        models=[_instance(m, config) for m in models],
        freq=config.freq,
        season_length=config.main_period,
        seasonal_periods=config.seasonal_periods,
        n_jobs=config.n_jobs,
    )


def _instance(model: Any, config: ForecastConfig) -> Any:
    """A model by name, told the horizon when it trains for one
    (the neural model fits a fixed output length)."""
    from stackml.forecasting.models import make_model_for

    return make_model_for(model, config.horizon) if isinstance(model, str) else model


def backtest_model(train: pd.DataFrame, model: str, config: ForecastConfig) -> pd.DataFrame:
    """Backtest one model: ``unique_id, ds, cutoff, y, <alias>`` over ``config.n_windows`` windows."""
    return _forecaster([model], config).cross_validation(train, h=config.horizon, n_windows=config.n_windows)


def merge_backtests(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Join per-model backtests (same windows) into one wide frame."""
    keys = ["unique_id", "ds", "cutoff", "y"]
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame.drop(columns="y"), on=keys[:3], how="inner", validate="one_to_one")
    return merged


def model_columns(cv: pd.DataFrame) -> list[str]:
    """The point-forecast columns of a wide backtest or forecast frame."""
    return [
        c
        for c in cv.columns
        if c not in ("unique_id", "ds", "cutoff", "y") and "-lo-" not in c and "-hi-" not in c
    ]


def score_backtest(
    warehouse: Warehouse, cv: pd.DataFrame, train: pd.DataFrame, config: ForecastConfig, run_id: str
) -> pd.DataFrame:
    """Store the backtest in the warehouse and score every model there in SQL, best first."""
    from stackml.forecasting.evaluation import evaluate, store_backtest

    store_backtest(warehouse, cv, train, run_id=run_id)
    return evaluate(warehouse, run_id, season_length=config.season_length, baseline=REFERENCE_ALIAS)


def add_ensembles(
    cv: pd.DataFrame, scores: pd.DataFrame, config: ForecastConfig
) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]]]:
    """Add mean ensembles of the best ``k`` single models (by backtest OWA) as extra backtest columns.

    Returns the widened frame and ``{ensemble alias: member aliases}``.
    """
    from stackml.forecasting.selection import mean_ensemble

    ranked = [m for m in scores.sort_values("owa")["model"] if m in cv.columns and m != REFERENCE_ALIAS]
    ensembles: dict[str, tuple[str, ...]] = {}
    out = cv.copy()
    for k in config.ensemble_sizes:
        if 2 <= k <= len(ranked):
            members = tuple(ranked[:k])
            alias = f"{ENSEMBLE_PREFIX}{k}"
            out[alias] = mean_ensemble([cv[m] for m in members])
            ensembles[alias] = members
    return out, ensembles


def fit_final(train: pd.DataFrame, names: Sequence[str], config: ForecastConfig) -> Forecaster:
    """Fit the given models on all of ``train``."""
    return _forecaster(list(names), config).fit(train)


def add_ensemble_forecasts(forecasts: pd.DataFrame, ensembles: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """Mean-ensemble columns on a point forecast frame, as scored on the backtest."""
    from stackml.forecasting.selection import mean_ensemble

    out = forecasts.copy()
    for alias, members in ensembles.items():
        out[alias] = mean_ensemble([out[m] for m in members])
    return out


def score_holdout(
    warehouse: Warehouse,
    forecasts: pd.DataFrame,
    test: pd.DataFrame,
    train: pd.DataFrame,
    config: ForecastConfig,
    run_id: str,
) -> pd.DataFrame:
    """Score forecasts against the holdout with the official metrics, in SQL (the holdout is one window)."""
    from stackml.forecasting.evaluation import evaluate, store_backtest

    test = test.assign(unique_id=test["unique_id"].astype(str))
    forecasts = forecasts.assign(unique_id=forecasts["unique_id"].astype(str))
    joined = forecasts.merge(test[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="inner")
    if len(joined) != len(forecasts):
        raise InputError(
            f"The holdout covers {len(joined)} of the {len(forecasts)} forecast points.",
            hint=f"Give the next {config.horizon} values of every series in the test file "
            "(same ids, next ds).",
        )
    last = train.assign(unique_id=train["unique_id"].astype(str)).groupby("unique_id")["ds"].max()
    joined["cutoff"] = joined["unique_id"].map(last)
    store_backtest(warehouse, joined, train, run_id=run_id, table_prefix="forecast_holdout_")
    return evaluate(
        warehouse,
        run_id,
        season_length=config.season_length,
        baseline=REFERENCE_ALIAS,
        table_prefix="forecast_holdout_",
    )


# -- the whole pipeline --------------------------------------------------------------------------------------
#: a candidate whose scaled error on its most recent backtest window exceeds this many times seasonal
#: naive's stops there: it cannot be chosen, so its other windows and its final fit are not worth their time
EARLY_EXIT_RATIO = 2.0


def plan_candidates(train: pd.DataFrame, config: ForecastConfig) -> Plan:
    """Which candidates fit the time budget (see :mod:`stackml.forecasting.budget`)."""
    from stackml.forecasting.budget import plan_candidates as plan

    return plan(train, config)


def _drop_last(train: pd.DataFrame, n: int) -> pd.DataFrame:
    return train if n == 0 else train.groupby("unique_id", sort=False, group_keys=False).head(-n)


def _scaled_error(cv: pd.DataFrame, alias: str, history: pd.DataFrame, season_length: int) -> float:
    """Mean over series of the window's mean absolute error divided by the series' in-sample scale."""
    from stackml.forecasting.conformal import insample_scale

    scales = history.groupby("unique_id", sort=False)["y"].apply(
        lambda y: insample_scale(y.to_numpy(), season_length)
    )
    errors = (cv[alias] - cv["y"]).abs().groupby(cv["unique_id"]).mean()
    return float((errors / scales.reindex(errors.index)).mean())


def run_candidate(train: pd.DataFrame, name: str, config: ForecastConfig) -> CandidateResult:
    """Backtest one model window by window (the most recent first), then fit it on all of ``train`` and
    forecast ``config.horizon`` steps.

    After the first window the candidate is compared with seasonal naive on the same window; one more than
    :data:`EARLY_EXIT_RATIO` times worse stops there, with ``stopped`` saying why.
    """
    import time

    started = time.perf_counter()
    h, one_window = config.horizon, config.replace(n_windows=1)
    windows = []
    alias = ""
    for w in range(config.n_windows or 1):
        history = _drop_last(train, w * h)
        try:
            cv = backtest_model(history, name, one_window)
        except InputError as exc:  # e.g. too little history for the model's features: the others go on
            why = f"could not be backtested: {exc.message}"
            return CandidateResult(
                name, name, train.iloc[:0], None, None, time.perf_counter() - started, stopped=why
            )
        alias = model_columns(cv)[0]
        windows.append(cv)
        if w == 0 and name not in ("snaive", REFERENCE_MODEL):
            reference = backtest_model(history, "snaive", one_window)
            fit_part = _drop_last(history, h)
            ours = _scaled_error(cv, alias, fit_part, config.season_length or 1)
            naive = _scaled_error(reference, "SeasonalNaive", fit_part, config.season_length or 1)
            if ours > EARLY_EXIT_RATIO * naive:
                why = (
                    f"stopped after its first backtest window: scaled error {ours:.2f}, more than "
                    f"{EARLY_EXIT_RATIO:g} times seasonal naive's {naive:.2f}"
                )
                return CandidateResult(
                    name, alias, cv, None, None, time.perf_counter() - started, stopped=why
                )
    backtest = pd.concat(windows[::-1], ignore_index=True).sort_values(
        ["unique_id", "cutoff", "ds"], kind="stable", ignore_index=True
    )
    forecaster = fit_final(train, [name], config)
    return CandidateResult(
        name, alias, backtest, forecaster, forecaster.predict(h), time.perf_counter() - started
    )


def summarise(
    candidates: Sequence[CandidateResult],
    train: pd.DataFrame,
    config: ForecastConfig,
    warehouse: Warehouse,
    run_id: str,
    test: pd.DataFrame | None = None,
    skipped: dict[str, str] | None = None,
) -> PipelineResult:
    """Score the candidates' backtests in the warehouse, add ensembles, choose, attach intervals,
    score the holdout.

    Args:
        skipped: candidates left out before the run (by the time budget), name -> why.
    """
    import time

    from stackml.forecasting.evaluation import evaluate_by_series, evaluate_by_step
    from stackml.forecasting.selection import (
        backtest_coverage,
        backtest_residuals,
        choose,
        conformal_widths,
        join_forecasts,
        with_intervals,
    )

    started = time.perf_counter()
    skipped = dict(skipped or {})
    skipped.update({c.name: c.stopped for c in candidates if c.stopped})
    candidates = [c for c in candidates if not c.stopped]
    alias_to_name = {c.alias: c.name for c in candidates}
    season = config.season_length or 1
    cv = merge_backtests([c.backtest for c in candidates])
    singles = score_backtest(warehouse, cv, train, config, run_id)
    cv, ensembles = add_ensembles(cv, singles, config)
    scores = score_backtest(warehouse, cv, train, config, run_id) if ensembles else singles
    by_step = evaluate_by_step(warehouse, run_id, season_length=season)
    by_series = evaluate_by_series(warehouse, run_id, season_length=season)
    choice = choose(scores, ensembles, alias_to_name, by_series)
    points = add_ensemble_forecasts(join_forecasts([c.forecast for c in candidates]), ensembles)
    ids = points["unique_id"].drop_duplicates().to_numpy()
    residuals, scales = backtest_residuals(
        cv, train, ids, horizon=config.horizon, season_length=season, aliases=model_columns(points)
    )
    widths = conformal_widths(residuals, scales, config.level)
    coverage = backtest_coverage(residuals, scales, config.level)
    forecasts = with_intervals(points, widths)
    holdout = None
    if test is not None:
        holdout = score_holdout(warehouse, forecasts, test, train, config, run_id)
    seconds = {f"model_{c.alias}": c.seconds for c in candidates}
    seconds["evaluation"] = time.perf_counter() - started
    return PipelineResult(
        config=config,
        run_id=run_id,
        scores=scores,
        choice=choice,
        ensembles=ensembles,
        backtest=cv,
        forecasts=forecasts,
        widths=widths,
        forecasters={c.alias: c.forecaster for c in candidates},
        alias_names=alias_to_name,
        holdout=holdout,
        by_step=by_step,
        by_series=by_series,
        seconds=seconds,
        skipped=skipped,
        backtest_coverage=coverage,
    )


def run_pipeline(
    train: pd.DataFrame,
    config: ForecastConfig,
    *,
    warehouse: Warehouse,
    run_id: str,
    test: pd.DataFrame | None = None,
    on_model: Any = None,
) -> PipelineResult:
    """The pipeline in one process: the steps ``ForecastFlow`` runs, in the same order (the flow runs the
    candidates in parallel instead). Publishing and the report attach from outside, as in the flow.

    Args:
        on_model: optional callback ``on_model(name, result)`` after each candidate, e.g. to advance a
            progress bar.
    """
    config = check_data(train, config, test)
    plan = plan_candidates(train, config)
    results = []
    for name in plan.models:
        result = run_candidate(train, name, plan.config_for(name, config))
        results.append(result)
        if on_model is not None:
            on_model(name, result)
    return summarise(results, train, config, warehouse, run_id, test, skipped=plan.skipped)
