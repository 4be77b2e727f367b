"""The media-mix pipeline as plain functions: check, load, fit, hold out, diagnose, plan, summarise.

``MMMFlow`` (Metaflow) and ``stackml mmm fit`` call these in order; a notebook can too. Nothing here knows about
Metaflow, MLflow or the CLI.

The data come from a CSV or Parquet model frame (one row per period) or a warehouse table. A table with a
``channel`` column holds raw touchpoints and is aggregated to the model frame in SQL
(:func:`stackml.mmm.aggregate_touchpoints`); any other table is read as the model frame itself. A fitted model must
pass the diagnostics gates before anything downstream (registry, budget plan) may use it.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.errors import InputError
from stackml.mmm import validation as checks

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
    "check_frame",
    "check_model",
    "check_source",
    "fit_model",
    "holdout_error",
    "load_frame",
    "parse_bounds",
    "plan_budget",
    "run_pipeline",
    "summarise",
]

SOURCE_TOUCHPOINTS = "touchpoints"  # a table with a channel column: one row per date and channel
SOURCE_FRAME = "frame"  # one row per period, one spend column per channel
TOUCHPOINT_CHANNEL_COLUMN = "channel"
TOUCHPOINT_SPEND_COLUMN = "spend"


@dataclass(frozen=True)
class MMMConfig:
    """What to model, how long to sample, the gates a model must pass and the plan to make.

    Attributes:
        date_column, channels, target, controls: the roles of the model frame's columns.
        freq: ``"W"`` or ``"D"``, the period raw touchpoints are aggregated to.
        adstock, saturation, target_accept: passed to :class:`~stackml.mmm.MediaMixModel`.
        draws, tune, chains, random_state: NUTS settings.
        lift_tests: path of a lift-test CSV to calibrate with (see :mod:`stackml.mmm.calibration`).
        holdout: share of the last periods held out for the time-slice check (0 skips it).
        max_divergences, max_rhat, min_ess, min_r2, max_mape, max_holdout_mape: the gates (None: not gated).
        horizon: periods of the budget plan (0: no plan).
        budget: total budget of the plan; default the historical spend rate times ``horizon``.
        bounds: per-period spend bounds of the plan, ``{channel: (min, max)}``.
        hdi_prob: mass of every reported interval.
    """

    channels: tuple[str, ...]
    target: str = "revenue"
    date_column: str = "date"
    controls: tuple[str, ...] = ()
    freq: str = "W"
    adstock: str = "geometric"
    saturation: str = "logistic"
    target_accept: float = 0.9
    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    random_state: int | None = 0
    lift_tests: str | None = None
    holdout: float = 0.15
    max_divergences: int = 0
    max_rhat: float = 1.01
    min_ess: float = 400.0
    min_r2: float = 0.5
    max_mape: float | None = None
    max_holdout_mape: float | None = None
    horizon: int = 12
    budget: float | None = None
    bounds: dict[str, tuple[float | None, float | None]] | None = field(default=None, hash=False)
    hdi_prob: float = 0.94

    def __post_init__(self) -> None:
        from stackml.mmm.data import FREQUENCIES

        for name in ("channels", "controls"):  # a bare string would otherwise become a tuple of letters
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        problems = checks.check_settings(self.build_model())
        problems += checks.check_fit_args(self.draws, self.tune, self.chains, "nutpie")
        if self.freq not in FREQUENCIES:
            problems.append(f"'freq' must be one of {list(FREQUENCIES)}, got {self.freq!r}")
        if not _number(self.holdout) or not 0 <= self.holdout <= 0.5:
            problems.append(f"'holdout' must be a share of the periods in [0, 0.5], got {self.holdout!r}")
        if not _number(self.target_accept) or not 0 < self.target_accept < 1:
            problems.append(f"'target_accept' must be in (0, 1), got {self.target_accept!r}")
        if not _number(self.hdi_prob) or not 0 < self.hdi_prob < 1:
            problems.append(f"'hdi_prob' must be in (0, 1), got {self.hdi_prob!r}")
        for name in ("max_divergences", "max_rhat", "min_ess", "min_r2", "max_mape", "max_holdout_mape"):
            value = getattr(self, name)
            if value is not None and not _number(value):
                problems.append(f"'{name}' must be a number, got {value!r}")
        if (
            not isinstance(self.horizon, (int, np.integer))
            or isinstance(self.horizon, bool)
            or self.horizon < 0
        ):
            problems.append(f"'horizon' must be an int >= 0 (0: no budget plan), got {self.horizon!r}")
        if self.budget is not None and (not _number(self.budget) or not self.budget > 0):
            problems.append(f"'budget' must be a number > 0, got {self.budget!r}")
        unknown = sorted(set(self.bounds or {}) - set(self.channels))
        if unknown:
            problems.append(
                f"bounds name channels {unknown} that are not among the channels {list(self.channels)}"
            )
        checks.raise_if_problems(
            problems, what="the media-mix configuration", hint="See `stackml mmm fit --help` for the options."
        )

    def build_model(self) -> MediaMixModel:
        """The unfitted :class:`~stackml.mmm.MediaMixModel` this configuration describes."""
        from stackml.mmm.model import MediaMixModel

        return MediaMixModel(
            self.date_column, list(self.channels), self.target, list(self.controls),
            adstock=self.adstock, saturation=self.saturation, target_accept=self.target_accept,
        )  # fmt: skip

    @property
    def primary_metric(self) -> str:
        """The registry compares models on held-out MAPE when there is a holdout, else on in-sample MAPE."""
        return "holdout_mape" if self.holdout > 0 else "insample_mape"


def parse_bounds(text: str | None) -> dict[str, tuple[float | None, float | None]] | None:
    """``"search=0:5000,tv=:20000"`` -> ``{"search": (0.0, 5000.0), "tv": (None, 20000.0)}`` (per-period spend).

    Example:
        >>> parse_bounds("search=0:5000,tv=:20000")
        {'search': (0.0, 5000.0), 'tv': (None, 20000.0)}
    """
    if not text or not text.strip():
        return None
    bounds: dict[str, tuple[float | None, float | None]] = {}
    problems = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        channel, sep, span = item.partition("=")
        low, colon, high = span.partition(":")
        try:
            if not (sep and colon and channel.strip()):
                raise ValueError
            pair = tuple(float(v) if v.strip() else None for v in (low, high))
        except ValueError:
            problems.append(f"{item!r} is not CHANNEL=MIN:MAX")
            continue
        bounds[channel.strip()] = pair  # type: ignore[assignment]
    checks.raise_if_problems(
        problems,
        what="the bounds",
        hint="Write them as search=0:5000,tv=:20000 (per-period spend; a side may be empty).",
    )
    return bounds


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


# -- the source --------------------------------------------------------------------------------------------------
def check_source(
    config: MMMConfig,
    *,
    data: str | Path | None = None,
    table: str | None = None,
    controls_table: str | None = None,
    warehouse: Warehouse | None = None,
) -> str:
    """Everything that can be checked without reading the data: files, tables, columns, channels, lift tests.

    Returns:
        :data:`SOURCE_TOUCHPOINTS` or :data:`SOURCE_FRAME`.

    Raises:
        InputError: listing every problem found (missing columns, unknown channels, a bad lift-test file, ...).
    """
    if (data is None) == (table is None):
        raise InputError(
            "Give exactly one of a data file or a warehouse table.", hint="Use --data PATH or --table NAME."
        )
    problems: list[str] = []
    if data is not None:
        kind, what = SOURCE_FRAME, f"the data file '{data}'"
        columns = _file_columns(Path(data))
        problems += _missing(columns, [config.date_column, *config.channels, *config.controls, config.target])
    else:
        if warehouse is None:
            raise InputError("Reading a table needs a warehouse.", hint="Pass warehouse=connect(url).")
        what = f"the table '{table}'"
        columns = list(warehouse.schema(table))  # raises TableNotFoundError naming the known tables
        kind = SOURCE_TOUCHPOINTS if TOUCHPOINT_CHANNEL_COLUMN in columns else SOURCE_FRAME
        if kind == SOURCE_FRAME:
            problems += _missing(
                columns, [config.date_column, *config.channels, *config.controls, config.target]
            )
        else:
            wanted = [config.date_column, TOUCHPOINT_SPEND_COLUMN, config.target]
            problems += _missing(columns, wanted)
            if not problems:
                problems += _unknown_channels(warehouse, table, config.channels)
            if config.controls:
                source = controls_table or table
                ctl_columns = columns if source == table else list(warehouse.schema(source))
                missing = [c for c in [config.date_column, *config.controls] if c not in ctl_columns]
                if missing:
                    where = f"the controls table '{source}'" if controls_table else "the touchpoint table"
                    problems.append(
                        f"controls {missing} are not in {where} (it has {ctl_columns}); give a table holding them "
                        "with --controls-table"
                    )
    checks.raise_if_problems(
        problems,
        what=what,
        hint="Name the columns with --date-column, --channels, --target and --controls; a touchpoint table needs "
        f"'{TOUCHPOINT_CHANNEL_COLUMN}' and '{TOUCHPOINT_SPEND_COLUMN}' columns.",
    )
    if config.lift_tests:
        _check_lift_tests(config)
    return kind


def _file_columns(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(
            f"File not found: '{path}'.", hint="Check the path; it is resolved from the current folder."
        )
    try:
        if ".parquet" in [s.lower() for s in path.suffixes]:
            import pyarrow.parquet as pq  # a core dependency

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0).columns)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(
            f"Could not read '{path}': {' '.join(str(exc).split())[:300]}",
            hint="Pass a CSV or Parquet file with one row per period.",
        ) from exc


def _missing(columns: list[str], wanted: list[str]) -> list[str]:
    missing = [c for c in dict.fromkeys(wanted) if c not in columns]
    return [f"missing columns {missing} (it has {columns})"] if missing else []


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
    checks.raise_if_problems(
        [f"they name channels {unknown} that are not among the model's channels {list(config.channels)}"]
        if unknown
        else [],
        what=f"the lift tests '{config.lift_tests}'",
        hint="Drop those rows or add the channels with --channels.",
    )


def load_frame(
    config: MMMConfig,
    *,
    data: str | Path | None = None,
    table: str | None = None,
    controls_table: str | None = None,
    warehouse: Warehouse | None = None,
) -> pd.DataFrame:
    """The model frame ``date, <channels>, <controls>, <target>``, one row per period, sorted by date.

    Raw touchpoints are aggregated in the warehouse at ``config.freq``; controls are averaged per period from
    ``controls_table`` (default: the touchpoint table itself, when it holds them).
    """
    kind = check_source(config, data=data, table=table, controls_table=controls_table, warehouse=warehouse)
    if kind == SOURCE_TOUCHPOINTS:
        from stackml.mmm.data import aggregate_touchpoints

        frame = aggregate_touchpoints(
            warehouse, table, freq=config.freq, target=config.target, channels=list(config.channels),
            controls_table=(controls_table or table) if config.controls else None, controls=config.controls,
            date_column=config.date_column,
        )  # fmt: skip
        return frame.rename(columns={"date": config.date_column})
    if table is not None:
        from stackml.warehouse import quote_table

        frame = warehouse.query(f"SELECT * FROM {quote_table(table)}")  # type: ignore[union-attr]
    else:
        path = Path(data)  # type: ignore[arg-type]
        frame = (
            pd.read_parquet(path) if ".parquet" in [s.lower() for s in path.suffixes] else pd.read_csv(path)
        )
    columns = [config.date_column, *config.channels, *config.controls, config.target]
    # Dates stay as read: check_frame reports unparseable ones by value, and the model parses and sorts them.
    return frame[columns].copy()


def check_frame(frame: pd.DataFrame, config: MMMConfig) -> None:
    """Fail early, naming every problem of the model frame (the model would find the same ones at fit time)."""
    model = config.build_model()
    min_rows = checks.min_rows_for(
        len(config.channels), len(config.controls), model.yearly_seasonality, model.l_max
    )
    problems = checks.check_frame(
        frame, date_column=config.date_column, channels=config.channels, controls=config.controls,
        target_column=config.target, min_rows=min_rows,
    )  # fmt: skip
    checks.raise_if_problems(
        problems,
        what="the model frame",
        hint="The model frame needs one row per period with numeric, non-negative spend columns.",
    )


# -- fitting and checking ------------------------------------------------------------------------------------------
def fit_model(frame: pd.DataFrame, config: MMMConfig, *, progressbar: bool = False) -> MediaMixModel:
    """Fit the configured model (calibrated with ``config.lift_tests`` when given)."""
    return config.build_model().fit(
        frame, draws=config.draws, tune=config.tune, chains=config.chains, random_state=config.random_state,
        lift_tests=config.lift_tests or None, progressbar=progressbar,
    )  # fmt: skip


def holdout_error(model: MediaMixModel, config: MMMConfig) -> dict[str, Any] | None:
    """The time-slice check: refit without the last ``config.holdout`` periods and score their forecast.

    It re-samples the compiled model, so it must run in the process that fitted it (before pickling).
    """
    if config.holdout <= 0:
        return None
    from stackml.mmm.diagnostics import time_slice_error

    return time_slice_error(model, float(config.holdout))


def check_model(
    model: MediaMixModel, config: MMMConfig, holdout: dict[str, Any] | None = None
) -> Diagnostics:
    """Measure the model and apply the configured gates; the held-out error (if measured) joins them."""
    from stackml.mmm.diagnostics import ADVICE, Gate, diagnose

    report = diagnose(
        model, max_divergences=config.max_divergences, max_rhat=config.max_rhat, min_ess=config.min_ess,
        min_r2=config.min_r2, max_mape=config.max_mape,
    )  # fmt: skip
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
        model, budget, int(config.horizon), bounds=config.bounds, hdi_prob=config.hdi_prob,
        random_state=config.random_state or 0,
    )  # fmt: skip


# -- the result ----------------------------------------------------------------------------------------------------
@dataclass
class MMMResult:
    """Everything a report, the registry and the CLI need from one run."""

    config: MMMConfig
    model: MediaMixModel
    diagnostics: Diagnostics
    holdout: dict[str, Any] | None
    roas: pd.DataFrame  # index channel; spend, contribution, mean, median, sd, hdi_low, hdi_high
    contribution_share: pd.DataFrame
    marginal_roas: pd.DataFrame
    contributions: pd.DataFrame  # long: date, component, kind, mean, hdi_low, hdi_high
    response_curves: pd.DataFrame
    plan: BudgetPlan | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every diagnostics gate passed, i.e. the model may be registered and planned with."""
        return self.diagnostics.passed

    def failed_gates(self) -> list[str]:
        """One line per failed gate: what was measured, the limit and what to try."""
        return [g.message() for g in self.diagnostics.failures]

    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary: ROAS and contribution shares with HDIs, diagnostics, the plan."""

        def by_channel(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
            return {
                str(c): {k: _json_number(frame.loc[c, k]) for k in ("mean", "hdi_low", "hdi_high")}
                for c in frame.index
            }

        d = self.diagnostics
        diagnostics = {
            "divergences": int(d.divergences),
            "max_rhat": _json_number(d.max_rhat),
            "min_ess": _json_number(d.min_ess),
            "r2": _json_number(d.r2),
            "mape": _json_number(d.mape),
            "holdout_mape": _json_number(d.oos_mape),
            "holdout_periods": d.holdout_periods,
            "passed": d.passed,
            "failed_gates": self.failed_gates(),
        }
        return {
            "roas": by_channel(self.roas),
            "contribution_share": by_channel(self.contribution_share),
            "marginal_roas": by_channel(self.marginal_roas),
            "diagnostics": diagnostics,
            "budget_plan": None if self.plan is None else self.plan.as_dict(),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def _json_number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if not np.isfinite(value) else value


def summarise(
    model: MediaMixModel,
    diagnostics: Diagnostics,
    config: MMMConfig,
    *,
    holdout: dict[str, Any] | None = None,
    plan: BudgetPlan | None = None,
    seconds: dict[str, float] | None = None,
) -> MMMResult:
    """Compute the outputs of a fitted model (contributions, ROAS, marginal ROAS, response curves) into a result."""
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


def run_pipeline(frame: pd.DataFrame, config: MMMConfig, *, progressbar: bool = False) -> MMMResult:
    """The whole pipeline in one process: fit, hold out, diagnose, summarise and (if the gates pass) plan."""
    check_frame(frame, config)
    started = time.perf_counter()
    model = fit_model(frame, config, progressbar=progressbar)
    fitted = time.perf_counter()
    held = holdout_error(model, config)
    checked = time.perf_counter()
    diagnostics = check_model(model, config, held)
    plan = plan_budget(model, config) if diagnostics.passed else None
    seconds = {"fit": fitted - started, "holdout": checked - fitted, "plan": time.perf_counter() - checked}
    return summarise(model, diagnostics, config, holdout=held, plan=plan, seconds=seconds)
