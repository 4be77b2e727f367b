"""The forecasting pipeline as plain functions: load, backtest, choose, fit, score, explain.

``ForecastFlow`` (Metaflow) and ``stackml forecast run`` call these in order; a notebook can too. Nothing here knows
about Metaflow, MLflow or the CLI.

The backtest is the single source of truth for choosing: every candidate model is backtested on the same windows,
the backtests are stored in the warehouse and scored there in SQL (sMAPE, MASE, OWA against Naive2), mean ensembles
of the best few models are scored on the same windows, and the best by OWA is chosen. Prediction intervals of the
final forecasts are conformal, from the same backtest residuals, so nothing is refitted just for intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.errors import InputError

if TYPE_CHECKING:
    from stackml.forecasting.forecaster import Forecaster
    from stackml.warehouse import Warehouse

__all__ = [
    "DEFAULT_MODELS",
    "REFERENCE_MODEL",
    "ForecastConfig",
    "Choice",
    "load_data",
    "check_data",
    "backtest_model",
    "merge_backtests",
    "add_ensembles",
    "score_backtest",
    "choose",
    "fit_final",
    "interval_widths",
    "with_intervals",
    "add_ensemble_forecasts",
    "score_holdout",
]

#: the default candidates: strong global learners next to robust statistical and seasonal baselines
DEFAULT_MODELS: tuple[str, ...] = ("snaive", "theta", "lgbm", "nhits")
#: always backtested: the M4 reference that OWA is measured against
REFERENCE_MODEL = "naive2"
REFERENCE_ALIAS = "Naive2"
ENSEMBLE_PREFIX = "Ensemble"
FORMATS = ("long", "m4-wide")


@dataclass(frozen=True)
class ForecastConfig:
    """What to forecast and how to choose.

    Attributes:
        horizon: steps to forecast (``h``).
        season_length: main seasonal period (``m``; 1 for none).
        freq: pandas frequency of timestamp ``ds`` (inferred when ``None``); ``None`` for integer steps.
        models: candidate model names (see :func:`stackml.forecasting.available_models`).
        n_windows: backtest windows of ``horizon`` values at the end of each series; ``None`` (the default) picks
            them from the data with :func:`auto_windows`.
        level: prediction interval coverages in percent.
        ensemble_sizes: mean ensembles of the best ``k`` single models (by backtest OWA) to score as candidates.
        n_jobs: processes for per-series models.
    """

    horizon: int
    season_length: int = 1
    freq: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    n_windows: int | None = None
    level: tuple[float, ...] = (80.0, 95.0)
    ensemble_sizes: tuple[int, ...] = (2, 3)
    n_jobs: int = 1

    def __post_init__(self) -> None:
        from stackml.forecasting.models import model_class

        problems = []
        if not isinstance(self.horizon, (int, np.integer)) or self.horizon < 1:
            problems.append(f"horizon must be a positive integer, got {self.horizon!r}")
        if not isinstance(self.season_length, (int, np.integer)) or self.season_length < 1:
            problems.append(f"season must be a positive integer, got {self.season_length!r}")
        if self.n_windows is not None and (not isinstance(self.n_windows, (int, np.integer)) or self.n_windows < 1):
            problems.append(f"n_windows must be a positive integer, got {self.n_windows!r}")
        if not self.models:
            problems.append("models is empty")
        for name in self.models:
            try:
                model_class(name)
            except InputError as exc:
                problems.append(exc.message.rstrip("."))
        if problems:
            raise InputError(
                "Invalid forecast configuration: " + "; ".join(problems) + ".",
                hint="See `stackml forecast run --help` for the options and the model names.",
            )

    @property
    def candidates(self) -> tuple[str, ...]:
        """The models to backtest: the requested ones plus the Naive2 reference, without repeats."""
        from stackml.forecasting.models import model_class

        seen, out = set(), []
        for name in (*self.models, REFERENCE_MODEL):
            cls = model_class(name)
            if cls not in seen:
                seen.add(cls)
                out.append(name)
        return tuple(out)


@dataclass(frozen=True)
class Choice:
    """The chosen configuration: one model, or the mean of several."""

    alias: str
    members: tuple[str, ...] = field(default=())  # model names when the choice is an ensemble

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)


# -- loading ---------------------------------------------------------------------------------------------------
def load_data(
    data: str | Path | None = None,
    *,
    fmt: str = "long",
    test: str | Path | None = None,
    table: str | None = None,
    warehouse: Warehouse | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read the training frame (and an optional holdout) as long frames ``unique_id, ds, y`` (+ exogenous).

    Args:
        data: a CSV or Parquet file, long (``unique_id, ds, y``) or M4 wide (``fmt="m4-wide"``).
        fmt: ``"long"`` or ``"m4-wide"``.
        test: the holdout in the same format (for M4, the matching ``*-test.csv``).
        table: read the training frame from this warehouse table instead of a file.
        warehouse: the warehouse holding ``table``.
    """
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}.", hint="Use long or m4-wide.")
    if (data is None) == (table is None):
        raise InputError(
            "Give exactly one of a data file or a warehouse table.", hint="Use --data PATH or --table NAME."
        )
    if table is not None:
        from stackml.warehouse import quote_table

        if warehouse is None:
            raise InputError("Reading a table needs a warehouse.", hint="Pass warehouse=connect(url).")
        train = _typed(warehouse.query(f"SELECT * FROM {quote_table(table)}"), f"table '{table}'")
        test_frame = _read_long(Path(test)) if test is not None else None
        return train, test_frame
    path = Path(data)  # type: ignore[arg-type]
    if fmt == "m4-wide":
        from stackml.forecasting.m4 import load_m4_wide

        return load_m4_wide(path, test)
    return _read_long(path), (_read_long(Path(test)) if test is not None else None)


def _read_long(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"File not found: '{path}'.", hint="Check the path; it is resolved from the current folder.")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        frame = pd.read_parquet(path) if ".parquet" in suffixes else pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputError(
            f"Could not read '{path}': {' '.join(str(exc).split())[:300]}",
            hint="Pass a CSV or Parquet file with columns unique_id, ds, y (or --format m4-wide).",
        ) from exc
    return _typed(frame, f"'{path}'")


def _typed(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Ids as strings; ``ds`` kept as integers when they are, else parsed as timestamps."""
    frame = frame.copy()
    if "unique_id" in frame:
        frame["unique_id"] = frame["unique_id"].astype(str)
    if "ds" in frame and not pd.api.types.is_numeric_dtype(frame["ds"]) and not pd.api.types.is_datetime64_any_dtype(
        frame["ds"]
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
    """Backtest windows for a panel: enough that about 200 series-windows are scored, 1 to 3, and never more than
    the shortest series can hold.

    Many series need one window (each already gives a forecast to score, and more windows only cost refits); a
    handful of series needs more windows for a stable choice and for per-step interval quantiles.
    """
    lengths = train.groupby("unique_id", sort=False).size()
    wanted = int(np.clip(np.ceil(TARGET_BACKTEST_FORECASTS / max(len(lengths), 1)), 1, MAX_AUTO_WINDOWS))
    fits = int((lengths.min() - 1) // horizon) if len(lengths) else 1
    return max(1, min(wanted, fits))


def resolve_windows(config: ForecastConfig, train: pd.DataFrame) -> ForecastConfig:
    """``config`` with ``n_windows`` fixed (chosen by :func:`auto_windows` when it was ``None``)."""
    from dataclasses import replace

    if config.n_windows is not None:
        return config
    return replace(config, n_windows=auto_windows(train, config.horizon))


def check_data(train: pd.DataFrame, config: ForecastConfig, test: pd.DataFrame | None = None) -> None:
    """Fail early, naming every problem: the frame itself, series too short for the backtest, a bad holdout."""
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
            raise InputError(f"The holdout: The following columns are missing: {missing}", hint="Use unique_id, ds, y.")
        unknown = sorted(set(test["unique_id"].astype(str)) - set(clean["unique_id"].astype(str)))
        if unknown:
            raise InputError(
                f"The holdout has {len(unknown)} series that are not in the training data, e.g. {unknown[:5]}.",
                hint="Use a holdout with the same series ids as the training data.",
            )


# -- backtesting and choosing ----------------------------------------------------------------------------------
def _forecaster(models: Sequence[Any], config: ForecastConfig) -> Forecaster:
    from stackml.forecasting.forecaster import Forecaster

    return Forecaster(
        models=[_instance(m, config) for m in models],
        freq=config.freq,
        season_length=config.season_length,
        n_jobs=config.n_jobs,
    )


def _instance(model: Any, config: ForecastConfig) -> Any:
    """A model by name, told the horizon when it trains for one (the neural model fits a fixed output length)."""
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
    return [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y") and "-lo-" not in c and "-hi-" not in c]


def score_backtest(
    warehouse: Warehouse, cv: pd.DataFrame, train: pd.DataFrame, config: ForecastConfig, run_id: str
) -> pd.DataFrame:
    """Store the backtest in the warehouse and score every model there in SQL, best first."""
    from stackml.forecasting.evaluation import evaluate, store_backtest

    store_backtest(warehouse, cv, train, run_id=run_id)
    return evaluate(warehouse, run_id, season_length=config.season_length, baseline=REFERENCE_ALIAS)


def add_ensembles(cv: pd.DataFrame, scores: pd.DataFrame, config: ForecastConfig) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]]]:
    """Add mean ensembles of the best ``k`` single models (by backtest OWA) as extra backtest columns.

    Returns the widened frame and ``{ensemble alias: member aliases}``.
    """
    ranked = [m for m in scores.sort_values("owa")["model"] if m in cv.columns and m != REFERENCE_ALIAS]
    ensembles: dict[str, tuple[str, ...]] = {}
    out = cv.copy()
    for k in config.ensemble_sizes:
        if 2 <= k <= len(ranked):
            members = tuple(ranked[:k])
            alias = f"{ENSEMBLE_PREFIX}{k}"
            out[alias] = cv[list(members)].mean(axis=1)
            ensembles[alias] = members
    return out, ensembles


def choose(scores: pd.DataFrame, ensembles: dict[str, tuple[str, ...]], alias_to_name: dict[str, str]) -> Choice:
    """The candidate with the lowest backtest OWA (MASE when OWA is missing); ties go to the simpler model."""
    ranked = scores.assign(
        _key=scores["owa"].fillna(np.inf) if "owa" in scores else scores["mase"],
        _size=scores["model"].map(lambda a: len(ensembles.get(a, (a,)))),
    ).sort_values(["_key", "_size", "model"])
    best = str(ranked["model"].iloc[0])
    if best in ensembles:
        return Choice(alias=best, members=tuple(alias_to_name[a] for a in ensembles[best]))
    return Choice(alias=best)


def fit_final(train: pd.DataFrame, names: Sequence[str], config: ForecastConfig) -> Forecaster:
    """Fit the given models on all of ``train``."""
    return _forecaster(list(names), config).fit(train)


def interval_widths(
    cv: pd.DataFrame, train: pd.DataFrame, ids: Sequence[Any], config: ForecastConfig, aliases: Sequence[str]
) -> dict[str, dict[float, np.ndarray]]:
    """Conformal half-widths ``alias -> level -> (n_series, h)`` from the backtest residuals of each alias.

    Series are in the order of ``ids``. With fewer windows than a level needs per series, scaled residuals are
    pooled across series (see :mod:`stackml.forecasting.conformal`).
    """
    from stackml.forecasting.conformal import conformal_half_widths, insample_scale

    h = config.horizon
    ids = [str(i) for i in ids]
    history = train.assign(unique_id=train["unique_id"].astype(str)).groupby("unique_id", sort=False)["y"]
    scales = np.array([insample_scale(history.get_group(i).to_numpy(), config.season_length) for i in ids])
    cv = cv.assign(unique_id=cv["unique_id"].astype(str))
    cv = cv[cv["unique_id"].isin(ids)].sort_values(["cutoff", "unique_id", "ds"])
    position = {i: k for k, i in enumerate(ids)}
    windows = [w for _, w in cv.groupby("cutoff", sort=True)] if len(cv) else []
    widths: dict[str, dict[float, np.ndarray]] = {}
    for alias in aliases:
        residuals = np.zeros((max(len(windows), 1), len(ids), h))
        for w, window in enumerate(windows):
            err = (window["y"] - window[alias]).to_numpy().reshape(-1, h)
            residuals[w, window["unique_id"].iloc[::h].map(position).to_numpy()] = err
        widths[alias] = {level: conformal_half_widths(residuals, scales, level) for level in config.level}
    return widths


def with_intervals(forecasts: pd.DataFrame, widths: dict[str, dict[float, np.ndarray]]) -> pd.DataFrame:
    """Add ``<alias>-lo-<level>`` / ``<alias>-hi-<level>`` columns (rows: ``h`` per series, in widths' order)."""
    out = forecasts.copy()
    for alias, by_level in widths.items():
        for level, width in by_level.items():
            out[f"{alias}-lo-{level:g}"] = out[alias] - width.ravel()
            out[f"{alias}-hi-{level:g}"] = out[alias] + width.ravel()
    return out


def add_ensemble_forecasts(forecasts: pd.DataFrame, ensembles: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """Mean-ensemble columns on a point forecast frame, as scored on the backtest."""
    out = forecasts.copy()
    for alias, members in ensembles.items():
        out[alias] = out[list(members)].mean(axis=1)
    return out


def score_holdout(
    warehouse: Warehouse, forecasts: pd.DataFrame, test: pd.DataFrame, train: pd.DataFrame, config: ForecastConfig, run_id: str
) -> pd.DataFrame:
    """Score forecasts against the holdout with the official metrics, in SQL (the holdout is one window)."""
    from stackml.forecasting.evaluation import evaluate, store_backtest

    test = test.assign(unique_id=test["unique_id"].astype(str))
    forecasts = forecasts.assign(unique_id=forecasts["unique_id"].astype(str))
    joined = forecasts.merge(test[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="inner")
    if len(joined) != len(forecasts):
        raise InputError(
            f"The holdout covers {len(joined)} of the {len(forecasts)} forecast points.",
            hint=f"Give the next {config.horizon} values of every series in the test file (same ids, next ds).",
        )
    last = train.assign(unique_id=train["unique_id"].astype(str)).groupby("unique_id")["ds"].max()
    joined["cutoff"] = joined["unique_id"].map(last)
    store_backtest(warehouse, joined, train, run_id=run_id, table_prefix="forecast_holdout_")
    return evaluate(
        warehouse, run_id, season_length=config.season_length, baseline=REFERENCE_ALIAS, table_prefix="forecast_holdout_"
    )


# -- the whole pipeline ----------------------------------------------------------------------------------------
@dataclass
class CandidateResult:
    """One candidate model: its backtest, its forecaster fitted on all the data, and its point forecasts."""

    name: str
    alias: str
    backtest: pd.DataFrame
    forecaster: Forecaster
    forecast: pd.DataFrame
    seconds: float


@dataclass
class PipelineResult:
    """Everything a report, the registry and the CLI need from one run."""

    config: ForecastConfig
    run_id: str
    scores: pd.DataFrame  # backtest accuracy per candidate (ensembles included), best first
    choice: Choice
    ensembles: dict[str, tuple[str, ...]]
    backtest: pd.DataFrame  # wide, every candidate and ensemble
    forecasts: pd.DataFrame  # wide, every candidate and ensemble, with intervals
    widths: dict[str, dict[float, np.ndarray]]
    forecasters: dict[str, Forecaster]  # alias -> fitted on all the data
    holdout: pd.DataFrame | None
    by_step: pd.DataFrame  # backtest error by horizon step and model
    by_series: pd.DataFrame  # backtest error by series and model
    seconds: dict[str, float]

    @property
    def members(self) -> list[str]:
        """Aliases whose mean is the chosen forecast."""
        alias_of = {name: alias for alias, name in self.alias_names.items()}
        return [alias_of[m] for m in self.choice.members] if self.choice.is_ensemble else [self.choice.alias]

    @property
    def alias_names(self) -> dict[str, str]:
        return {alias: getattr(fc, "_stackml_name", alias) for alias, fc in self.forecasters.items()}


def run_candidate(train: pd.DataFrame, name: str, config: ForecastConfig) -> CandidateResult:
    """Backtest one model, then fit it on all of ``train`` and forecast ``config.horizon`` steps."""
    import time

    started = time.perf_counter()
    cv = backtest_model(train, name, config)
    alias = model_columns(cv)[0]
    forecaster = fit_final(train, [name], config)
    forecaster._stackml_name = name  # type: ignore[attr-defined]  # remembered for ensembles' members
    return CandidateResult(name, alias, cv, forecaster, forecaster.predict(config.horizon), time.perf_counter() - started)


def summarise(
    candidates: Sequence[CandidateResult],
    train: pd.DataFrame,
    config: ForecastConfig,
    warehouse: Warehouse,
    run_id: str,
    test: pd.DataFrame | None = None,
) -> PipelineResult:
    """Score the candidates' backtests in the warehouse, add ensembles, choose, attach intervals, score the holdout."""
    import time

    started = time.perf_counter()
    alias_to_name = {c.alias: c.name for c in candidates}
    cv = merge_backtests([c.backtest for c in candidates])
    singles = score_backtest(warehouse, cv, train, config, run_id)
    cv, ensembles = add_ensembles(cv, singles, config)
    scores = score_backtest(warehouse, cv, train, config, run_id) if ensembles else singles
    choice = choose(scores, ensembles, alias_to_name)
    points = merge_backtests([c.forecast.assign(cutoff=0, y=0.0) for c in candidates]).drop(columns=["cutoff", "y"])
    points = add_ensemble_forecasts(points, ensembles)
    ids = points["unique_id"].drop_duplicates().to_numpy()
    widths = interval_widths(cv, train, ids, config, model_columns(points))
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
    """The pipeline in one process (the flow runs the candidates in parallel instead).

    Args:
        on_model: optional callback ``on_model(name, result)`` after each candidate, e.g. to advance a progress bar.
    """
    config = resolve_windows(config, train)
    results = []
    for name in config.candidates:
        result = run_candidate(train, name, config)
        results.append(result)
        if on_model is not None:
            on_model(name, result)
    return summarise(results, train, config, warehouse, run_id, test)
