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


#: series x windows a backtest should score, so the choice between models rests on enough forecasts
TARGET_BACKTEST_FORECASTS = 200
MAX_AUTO_WINDOWS = 3


def auto_windows(train: pd.DataFrame, horizon: int) -> int:
    """Backtest windows for a panel: enough that about 200 series-windows are scored, 1 to 3, and never more
    than the shortest series can hold.

    Many series need one window (each already gives a forecast to score, and more windows only cost refits); a
    handful of series needs more windows for a stable choice and for per-step interval quantiles.
    """
    lengths = train.groupby("unique_id", sort=False).size()
    wanted = int(np.clip(np.ceil(TARGET_BACKTEST_FORECASTS / max(len(lengths), 1)), 1, MAX_AUTO_WINDOWS))
    fits = int((lengths.min() - 1) // horizon) if len(lengths) else 1
    return max(1, min(wanted, fits))


def resolve_windows(config: ForecastConfig, train: pd.DataFrame) -> ForecastConfig:
    """``config`` with ``n_windows`` fixed (chosen by :func:`auto_windows` when it was ``None``)."""
    if config.n_windows is not None:
        return config
    return config.replace(n_windows=auto_windows(train, config.horizon))


def check_data(
    train: pd.DataFrame, config: ForecastConfig, test: pd.DataFrame | None = None
) -> ForecastConfig:
    """Fail early, naming every problem: the frame itself, series too short for the backtest, a bad holdout.

    Returns:
        ``config`` with the number of backtest windows fixed (chosen from the data when it was ``None``).
    """
    from stackml.forecasting.validation import check_lengths, validate_frame, windows_needed

    clean, _ = validate_frame(train, freq=config.freq)
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
        season_length=config.season_length,
        n_jobs=config.n_jobs,
    )


def _instance(model: Any, config: ForecastConfig) -> Any:
    """A model by name, told the horizon when it trains for one
    (the neural model fits a fixed output length)."""
    import inspect

    from stackml.forecasting.models import make_model, model_class

    if not isinstance(model, str):
        return model
    takes_horizon = "horizon" in inspect.signature(model_class(model).__init__).parameters
    return make_model(model, horizon=config.horizon) if takes_horizon else make_model(model)


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
def run_candidate(train: pd.DataFrame, name: str, config: ForecastConfig) -> CandidateResult:
    """Backtest one model, then fit it on all of ``train`` and forecast ``config.horizon`` steps."""
    import time

    started = time.perf_counter()
    cv = backtest_model(train, name, config)
    alias = model_columns(cv)[0]
    forecaster = fit_final(train, [name], config)
    return CandidateResult(
        name, alias, cv, forecaster, forecaster.predict(config.horizon), time.perf_counter() - started
    )


def summarise(
    candidates: Sequence[CandidateResult],
    train: pd.DataFrame,
    config: ForecastConfig,
    warehouse: Warehouse,
    run_id: str,
    test: pd.DataFrame | None = None,
) -> PipelineResult:
    """Score the candidates' backtests in the warehouse, add ensembles, choose, attach intervals,
    score the holdout."""
    import time

    from stackml.forecasting.selection import choose, interval_widths, join_forecasts, with_intervals

    started = time.perf_counter()
    alias_to_name = {c.alias: c.name for c in candidates}
    cv = merge_backtests([c.backtest for c in candidates])
    singles = score_backtest(warehouse, cv, train, config, run_id)
    cv, ensembles = add_ensembles(cv, singles, config)
    scores = score_backtest(warehouse, cv, train, config, run_id) if ensembles else singles
    choice = choose(scores, ensembles, alias_to_name)
    points = add_ensemble_forecasts(join_forecasts([c.forecast for c in candidates]), ensembles)
    ids = points["unique_id"].drop_duplicates().to_numpy()
    widths = interval_widths(
        cv,
        train,
        ids,
        horizon=config.horizon,
        season_length=config.season_length,
        levels=config.level,
        aliases=model_columns(points),
    )
    forecasts = with_intervals(points, widths)
    holdout = None
    if test is not None:
        holdout = score_holdout(warehouse, forecasts, test, train, config, run_id)
    from stackml.forecasting.evaluation import evaluate_by_series, evaluate_by_step

    by_step = evaluate_by_step(warehouse, run_id, season_length=config.season_length)
    by_series = evaluate_by_series(warehouse, run_id, season_length=config.season_length)
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
    results = []
    for name in config.candidates:
        result = run_candidate(train, name, config)
        results.append(result)
        if on_model is not None:
            on_model(name, result)
    return summarise(results, train, config, warehouse, run_id, test)
