"""Backtest evaluation in the warehouse: forecasts stored long, accuracy computed in SQL.

Each stored run has its own three tables, named from the prefix and the run id (see :func:`backtest_tables`),
so runs on different data never share a column type (one run's ``ds`` may be a timestamp, another's an
integer):

- ``<prefix>backtest__<run>``: ``unique_id, cutoff, ds, h, model, y, yhat`` (``h`` = 1..H, the step after the
  cutoff);
- ``<prefix>intervals__<run>``: ``unique_id, cutoff, ds, model, level, lo, hi`` (absent without intervals);
- ``<prefix>train__<run>``: ``unique_id, ds, y``, the history the MASE scale is computed from.

``<run>`` is the run id when it is already a lower-case identifier (``r1``, ``1764412345678901``), else a
readable form of it plus a short hash (``flow-17644`` -> ``flow_17644_889ed2d1``). One index table,
``<prefix>runs`` (``run_id, backtest_table, intervals_table, train_table, created_at``), lists the stored
runs; :func:`stored_runs` reads it.

The metrics follow the M4 competition (``Benchmarks and Evaluation.R``): per forecast point
``sMAPE = 200 |y - yhat| / (|y| + |yhat|)`` (0 when both are 0: the forecast is exact) and
``|y - yhat| / scale`` for MASE, where ``scale`` is the mean of ``|y_t - y_{t-m}|`` over the training data of
that series up to that cutoff only. Each is averaged over the horizon of a (series, cutoff) window, then over
windows. ``OWA = 0.5 (sMAPE / sMAPE_base + MASE / MASE_base)`` over the whole set, against Naive2 by default;
it is left undefined (NaN) when the baseline's sMAPE or MASE is 0 (a baseline that forecast every point
exactly). ``rmse`` is the mean over windows of each window's RMSE; coverage is the share of points inside the
interval.

The MASE scale falls back like :func:`stackml.forecasting.conformal.insample_scale`, so it is always positive
and finite: lag ``m``; lag 1 when the history has no more than ``m`` values; the mean absolute level when that
difference is 0 or undefined (a constant or one-value history); 1 when the level is 0 too.

Example:
    >>> from stackml.warehouse import connect
    >>> wh = connect("duckdb:///:memory:")
    >>> run_id = store_backtest(wh, cv, train, run_id="r1")  # doctest: +SKIP
    >>> evaluate(wh, "r1", season_length=24)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.checks import is_int
from stackml.errors import InputError, TableNotFoundError
from stackml.warehouse.identifiers import quote_table, validate_table_name

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = [
    "backtest_tables",
    "evaluate",
    "evaluate_by_series",
    "evaluate_by_step",
    "store_backtest",
    "stored_runs",
    "to_long",
]

KEY_COLUMNS = ("unique_id", "ds", "cutoff", "y")
_KINDS = ("backtest", "intervals", "train")
_INDEX_COLUMNS = ("run_id", "backtest_table", "intervals_table", "train_table", "created_at")
_MAX_NAME = 63  # PostgreSQL's identifier limit, which validate_table_name enforces
_INTERVAL_COLUMN = re.compile(r"^(?P<alias>.+)-(?P<side>lo|hi)-(?P<level>\d+(?:\.\d+)?)$")


def backtest_tables(table_prefix: str, run_id: str) -> dict[str, str]:
    """The validated table names of one run: keys ``backtest``, ``intervals`` and ``train``.

    Example:
        >>> backtest_tables("forecast_", "r1")["backtest"]
        'forecast_backtest__r1'
        >>> backtest_tables("forecast_", "flow-17644")["train"]
        'forecast_train__flow_17644_889ed2d1'
    """
    # Every kind shares one run part, sized so that the longest name still fits the identifier limit.
    room = _MAX_NAME - len(str(table_prefix).rpartition(".")[2]) - len(f"{max(_KINDS, key=len)}__")
    run = _run_part(str(run_id), room)
    return {kind: validate_table_name(f"{table_prefix}{kind}__{run}") for kind in _KINDS}


def _run_part(run_id: str, room: int) -> str:
    """``run_id`` when it is a plain lower-case identifier that fits, else a readable slug plus a short hash,
    so that two different run ids never share tables (``a-b`` and ``a_b`` differ in their hash)."""
    slug = re.sub(r"[^a-z0-9]+", "_", run_id.lower()).strip("_")
    if slug == run_id and len(slug) <= room:
        return slug
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    keep = slug[: max(room - len(digest) - 1, 0)].rstrip("_")
    return f"{keep}_{digest}" if keep else digest


def _index_table(table_prefix: str) -> str:
    return validate_table_name(f"{table_prefix}runs")


def stored_runs(warehouse: Warehouse, table_prefix: str = "forecast_") -> pd.DataFrame:
    """The runs stored under a prefix, oldest first: ``run_id, backtest_table, intervals_table, train_table,
    created_at`` (``intervals_table`` is missing for a run without intervals); empty when there are none."""
    index = _index_table(table_prefix)
    if not warehouse.has_table(index):
        return pd.DataFrame(columns=list(_INDEX_COLUMNS))
    return warehouse.query(
        f"SELECT {', '.join(_INDEX_COLUMNS)} FROM {quote_table(index)} ORDER BY created_at, run_id"
    )


# -- wide -> long --------------------------------------------------------------------------------------------
def to_long(cv: pd.DataFrame, models: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn the front door's wide backtest frame into long point and interval frames.

    Args:
        cv: ``unique_id, ds, cutoff, y`` and one column per model alias, plus optional interval columns
            ``<alias>-lo-<level>`` / ``<alias>-hi-<level>``.
        models: the aliases to keep; default every column that is neither a key nor an interval column.

    Returns:
        ``(points, intervals)``: ``unique_id, cutoff, ds, h, model, y, yhat`` and
        ``unique_id, cutoff, ds, model, level, lo, hi`` (empty when there are no intervals). ``unique_id`` is
        converted to string so that it joins with the training data whatever its original type.

    Raises:
        InputError: key columns are missing, a model has no column or a non-finite forecast, or an interval
            column has no partner. (A missing actual ``y`` is allowed: that point is simply not scored.)
    """
    missing = [c for c in KEY_COLUMNS if c not in cv.columns]
    if missing:
        raise InputError(
            f"The backtest frame lacks the columns {missing} (got {list(cv.columns)}).",
            hint="Pass the output of Forecaster.cross_validation(...).",
        )
    intervals_by_model: dict[str, dict[float, dict[str, str]]] = {}
    candidates = []
    for column in cv.columns:
        if column in KEY_COLUMNS:
            continue
        match = _INTERVAL_COLUMN.match(str(column))
        if match:
            level = float(match["level"])
            intervals_by_model.setdefault(match["alias"], {}).setdefault(level, {})[match["side"]] = column
        else:
            candidates.append(str(column))
    models = list(candidates if models is None else models)
    unknown = [m for m in models if m not in cv.columns]
    if unknown or not models:
        raise InputError(
            f"The backtest frame has no column for the models {unknown or '(none given)'} "
            f"(model columns: {candidates}).",
            hint="Pass models= with aliases that are columns of the backtest frame.",
        )
    bad = {m: int((~np.isfinite(cv[m].to_numpy(dtype=np.float64))).sum()) for m in models}
    bad = {m: n for m, n in bad.items() if n}
    if bad:
        # A warehouse stores NaN as NULL, which SQL averages would silently skip: refuse instead.
        raise InputError(
            f"Forecasts must be finite; missing or infinite values per model: {bad}.",
            hint="Check the models that produced them; every point must have a forecast.",
        )
    base = cv[list(KEY_COLUMNS)].copy()
    base["unique_id"] = base["unique_id"].astype(str)
    # The step after the cutoff: rank of ds inside each (series, cutoff) window.
    base["h"] = base.groupby(["unique_id", "cutoff"])["ds"].rank(method="dense").astype(np.int64)
    points = pd.concat(
        [base.assign(model=m, yhat=cv[m].to_numpy(dtype=np.float64)) for m in models], ignore_index=True
    )[["unique_id", "cutoff", "ds", "h", "model", "y", "yhat"]]
    pieces = []
    for alias in models:
        for level, sides in sorted(intervals_by_model.get(alias, {}).items()):
            if set(sides) != {"lo", "hi"}:
                have = next(iter(sides.values()))
                raise InputError(
                    f"The interval column {have!r} has no matching {'hi' if 'lo' in sides else 'lo'} column.",
                    hint="Intervals come in pairs <alias>-lo-<level> and <alias>-hi-<level>.",
                )
            pieces.append(
                base[["unique_id", "cutoff", "ds"]].assign(
                    model=alias,
                    level=level,
                    lo=cv[sides["lo"]].to_numpy(dtype=np.float64),
                    hi=cv[sides["hi"]].to_numpy(dtype=np.float64),
                )
            )
    interval_columns = ["unique_id", "cutoff", "ds", "model", "level", "lo", "hi"]
    intervals = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=interval_columns)
    return points, intervals[interval_columns]


# -- storing -------------------------------------------------------------------------------------------------
def store_backtest(
    warehouse: Warehouse,
    cv: pd.DataFrame,
    train: pd.DataFrame,
    run_id: str | None = None,
    *,
    models: Sequence[str] | None = None,
    table_prefix: str = "forecast_",
    if_exists: str = "append",
) -> str:
    """Store a backtest (forecasts, intervals and the training history) in the run's own tables.

    Args:
        warehouse: from :func:`stackml.warehouse.connect`.
        cv: the wide backtest frame (see :func:`to_long`).
        train: the long training frame ``unique_id, ds, y`` the backtest was made from (all of it: each
            cutoff's MASE scale uses only the rows up to that cutoff). Only the series in ``cv`` are stored.
        run_id: a name for this run; default a new random id.
        models: the aliases to store (default all model columns of ``cv``).
        table_prefix: prefix of the table names (see :func:`backtest_tables`).
        if_exists: ``"append"`` keeps other runs (an earlier copy of the same ``run_id`` is replaced);
            ``"replace"`` first drops every run stored under ``table_prefix``.

    Returns:
        The run id.
    """
    if if_exists not in ("append", "replace"):
        raise InputError(
            f"if_exists must be 'append' or 'replace', got {if_exists!r}.",
            hint="'append' keeps earlier runs, 'replace' removes them.",
        )
    missing = [c for c in ("unique_id", "ds", "y") if c not in train.columns]
    if missing:
        raise InputError(
            f"The training frame lacks the columns {missing} (got {list(train.columns)}).",
            hint="Pass the long frame unique_id, ds, y the backtest was made from.",
        )
    run_id = run_id or uuid.uuid4().hex[:12]
    tables = backtest_tables(table_prefix, run_id)
    index = _index_table(table_prefix)
    points, intervals = to_long(cv, models)
    history = train[["unique_id", "ds", "y"]].copy()
    history["unique_id"] = history["unique_id"].astype(str)
    history = history[history["unique_id"].isin(points["unique_id"].unique())]
    absent = sorted(set(points["unique_id"]) - set(history["unique_id"]))
    if absent:
        raise InputError(
            f"The training frame has no rows for {len(absent)} series of the backtest, e.g. {absent[:5]}.",
            hint="Pass the same long frame that was given to cross_validation.",
        )
    if if_exists == "replace":
        _drop_runs(warehouse, table_prefix)
    # Each table is swapped in whole (ingest's replace loads beside the old one, then renames), the
    # backtest last: evaluate reads a run only once its backtest table exists.
    for kind, frame in (("train", history), ("intervals", intervals), ("backtest", points)):
        if len(frame):
            warehouse.ingest(frame, tables[kind], if_exists="replace")
        elif warehouse.has_table(tables[kind]):
            warehouse.execute(f"DROP TABLE {quote_table(tables[kind])}")  # an earlier copy's intervals
    entry = pd.DataFrame(
        {
            "run_id": pd.Series([run_id], dtype="string"),
            "backtest_table": pd.Series([tables["backtest"]], dtype="string"),
            "intervals_table": pd.Series([tables["intervals"] if len(intervals) else None], dtype="string"),
            "train_table": pd.Series([tables["train"]], dtype="string"),
            "created_at": [pd.Timestamp.now(tz="UTC").tz_localize(None)],
        }
    )
    if warehouse.has_table(index):
        warehouse.execute(f"DELETE FROM {quote_table(index)} WHERE run_id = ?", [run_id])
    warehouse.ingest(entry, index, if_exists="append")
    return run_id


def _drop_runs(warehouse: Warehouse, table_prefix: str) -> None:
    """Drop every run stored under ``table_prefix``, and its index."""
    for run_id in stored_runs(warehouse, table_prefix)["run_id"]:
        for table in backtest_tables(table_prefix, str(run_id)).values():
            warehouse.execute(f"DROP TABLE IF EXISTS {quote_table(table)}")
    warehouse.execute(f"DROP TABLE IF EXISTS {quote_table(_index_table(table_prefix))}")


# -- evaluation ----------------------------------------------------------------------------------------------
def evaluate(
    warehouse: Warehouse,
    run_id: str | None = None,
    *,
    season_length: int,
    baseline: str | None = "Naive2",
    models: Sequence[str] | None = None,
    table_prefix: str = "forecast_",
) -> pd.DataFrame:
    """Accuracy of every model of a stored run, computed in SQL.

    Args:
        warehouse: the warehouse the run was stored in.
        run_id: the run; may be omitted when exactly one run is stored under ``table_prefix``.
        season_length: ``m`` of the MASE scale (``1`` for a lag-1 scale).
        baseline: the model OWA is relative to (every other model must cover the same points); ``None``
            for no OWA.
        models: restrict to these aliases (the baseline is still used for OWA).
        table_prefix: as given to :func:`store_backtest`.

    Returns:
        One row per model sorted from best to worst (by OWA, else MASE): ``model, n_series, n_windows``
        (series-cutoff pairs), ``n_points`` (scored points), ``smape, mase, owa`` (when ``baseline`` is set),
        ``rmse`` and ``coverage_<level>`` per stored interval level (e.g. ``coverage_80``, ``coverage_97_5``).
        Every window has a MASE: its scale falls back (see the module docstring) when the history is
        constant or no longer than ``m``. ``owa`` is NaN when the baseline's sMAPE or MASE is 0.

    Raises:
        InputError: the baseline is not among the stored models or covers other points than a model.
    """
    ctx = _Context(warehouse, run_id, season_length, table_prefix, models, baseline)
    # nullif: a baseline that is exact everywhere (sMAPE or MASE 0) leaves OWA undefined, not infinite.
    owa = "0.5 * (p.smape / nullif(b.smape, 0) + p.mase / nullif(b.mase, 0))" if baseline else "NULL"
    sql = f"""{ctx.cte},
    windows AS (
        SELECT model, unique_id, cutoff, avg(sape) AS smape, avg(ase) AS mase, sqrt(avg(se)) AS rmse,
               count(sape) AS n_points
        FROM errors GROUP BY model, unique_id, cutoff
    ),
    per_model AS (
        SELECT model, count(DISTINCT unique_id) AS n_series, count(*) AS n_windows,
               sum(n_points) AS n_points, avg(smape) AS smape, avg(mase) AS mase, avg(rmse) AS rmse
        FROM windows GROUP BY model
    )
    SELECT p.model, p.n_series, p.n_windows, p.n_points, p.smape, p.mase,
           {owa} AS owa, p.rmse
    FROM per_model p
    {"CROSS JOIN (SELECT smape, mase FROM per_model WHERE model = :baseline) b" if baseline else ""}
    """
    result = warehouse.query(sql, ctx.params)
    if not baseline:
        result = result.drop(columns="owa")
    result = _with_coverage(ctx, result, ["model"])
    keep = result["model"].isin(ctx.models) if ctx.models is not None else slice(None)
    result = result[keep].sort_values(["owa" if baseline else "mase", "model"], na_position="last")
    return _tidy(result)


def evaluate_by_step(
    warehouse: Warehouse,
    run_id: str | None = None,
    *,
    season_length: int,
    models: Sequence[str] | None = None,
    table_prefix: str = "forecast_",
) -> pd.DataFrame:
    """Error by horizon step: one row per ``(model, h)`` with ``smape, mase, rmse`` and ``coverage_<level>``.

    ``smape`` and ``mase`` average the points at that step; ``rmse`` is the root of their mean squared error.
    """
    ctx = _Context(warehouse, run_id, season_length, table_prefix, models, None)
    sql = f"""{ctx.cte}
    SELECT model, h, count(sape) AS n_points, avg(sape) AS smape, avg(ase) AS mase, sqrt(avg(se)) AS rmse
    FROM errors GROUP BY model, h
    """
    result = _with_coverage(ctx, warehouse.query(sql, ctx.params), ["model", "h"])
    return _tidy(result.sort_values(["model", "h"]))


def evaluate_by_series(
    warehouse: Warehouse,
    run_id: str | None = None,
    *,
    season_length: int,
    models: Sequence[str] | None = None,
    table_prefix: str = "forecast_",
) -> pd.DataFrame:
    """Error by series: one row per ``(model, unique_id)`` with ``smape, mase, rmse``, averaged over windows.

    Useful to pick the best and worst series of a model for a report.
    """
    ctx = _Context(warehouse, run_id, season_length, table_prefix, models, None)
    sql = f"""{ctx.cte},
    windows AS (
        SELECT model, unique_id, cutoff, avg(sape) AS smape, avg(ase) AS mase, sqrt(avg(se)) AS rmse
        FROM errors GROUP BY model, unique_id, cutoff
    )
    SELECT model, unique_id, count(*) AS n_windows, avg(smape) AS smape, avg(mase) AS mase, avg(rmse) AS rmse
    FROM windows GROUP BY model, unique_id
    """
    return _tidy(warehouse.query(sql, ctx.params).sort_values(["model", "unique_id"]))


class _Context:
    """Checks the arguments and the tables of one evaluation and builds the shared ``errors`` CTE."""

    def __init__(
        self,
        warehouse: Warehouse,
        run_id: str | None,
        season_length: int,
        table_prefix: str,
        models: Sequence[str] | None,
        baseline: str | None,
    ) -> None:
        if not is_int(season_length) or season_length < 1:
            raise InputError(
                f"season_length must be a positive integer, got {season_length!r}.",
                hint="Pass e.g. season_length=24 for hourly data, 1 for a lag-1 MASE scale.",
            )
        self.warehouse = warehouse
        self.run_id = str(run_id) if run_id is not None else self._only_run(table_prefix)
        self.tables = backtest_tables(table_prefix, self.run_id)
        if not (warehouse.has_table(self.tables["backtest"]) and warehouse.has_table(self.tables["train"])):
            self._no_such_run(table_prefix)
        bt = quote_table(self.tables["backtest"])
        stored = warehouse.query(f"SELECT DISTINCT model FROM {bt}")["model"].tolist()
        self.models = None if models is None else list(models)
        unknown = sorted(set(self.models or []) - set(stored))
        if unknown:
            raise InputError(
                f"The run {self.run_id!r} has no forecasts of the models {unknown} "
                f"(stored: {sorted(stored)}).",
                hint="Pass models= from the stored aliases.",
            )
        if baseline is not None and baseline not in stored:
            raise InputError(
                f"OWA needs the baseline model {baseline!r}, which run {self.run_id!r} does not have "
                f"(stored: {sorted(stored)}).",
                hint=f"Include {baseline} in the backtest, pass baseline= one of the stored models, "
                "or baseline=None to skip OWA.",
            )
        selected = (
            stored if self.models is None else sorted(set(self.models) | ({baseline} if baseline else set()))
        )
        self.params: dict[str, Any] = {f"m{i}": m for i, m in enumerate(selected)}
        if baseline is not None:
            self.params["baseline"] = baseline
        in_models = ", ".join(f":m{i}" for i in range(len(selected)))
        train = quote_table(self.tables["train"])
        # season_length is a checked integer, so it is safe to inline (LAG needs a constant offset).
        m = int(season_length)
        # The scale falls back like conformal.insample_scale: lag m; lag 1 when the history has no more than
        # m values; the mean absolute level when that is 0 or undefined; 1 when the level is 0 too.
        self.cte = f"""WITH points AS (
        SELECT unique_id, cutoff, ds, h, model, y, yhat FROM {bt}
        WHERE model IN ({in_models})
    ),
    diffs AS (
        SELECT unique_id, ds, y,
               abs(y - lag(y, {m}) OVER (PARTITION BY unique_id ORDER BY ds)) AS d_season,
               abs(y - lag(y, 1) OVER (PARTITION BY unique_id ORDER BY ds)) AS d_one
        FROM {train}
    ),
    scales AS (
        SELECT c.unique_id, c.cutoff,
               CASE WHEN avg(d.d_season) > 0 THEN avg(d.d_season)
                    WHEN count(*) <= {m} AND avg(d.d_one) > 0 THEN avg(d.d_one)
                    WHEN avg(abs(d.y)) > 0 THEN avg(abs(d.y))
                    ELSE 1.0 END AS scale
        FROM (SELECT DISTINCT unique_id, cutoff FROM points) c
        JOIN diffs d ON d.unique_id = c.unique_id AND d.ds <= c.cutoff
        GROUP BY c.unique_id, c.cutoff
    ),
    errors AS (
        SELECT p.model, p.unique_id, p.cutoff, p.ds, p.h,
               CASE WHEN abs(p.y) + abs(p.yhat) = 0 THEN 0.0
                    ELSE 200.0 * abs(p.y - p.yhat) / (abs(p.y) + abs(p.yhat)) END AS sape,
               abs(p.y - p.yhat) / coalesce(s.scale, 1.0) AS ase,
               (p.y - p.yhat) * (p.y - p.yhat) AS se
        FROM points p LEFT JOIN scales s ON s.unique_id = p.unique_id AND s.cutoff = p.cutoff
    )"""
        if baseline is not None:
            self._check_same_points(bt, baseline)

    def _only_run(self, table_prefix: str) -> str:
        if not self.warehouse.has_table(_index_table(table_prefix)):
            raise TableNotFoundError(
                f"No backtest is stored under the prefix {table_prefix!r}: table "
                f"'{_index_table(table_prefix)}' does not exist in {self.warehouse.redacted_url()}.",
                hint="Store a backtest first with store_backtest(...), or check table_prefix.",
            )
        runs = stored_runs(self.warehouse, table_prefix)["run_id"].tolist()
        if len(runs) != 1:
            raise InputError(
                f"Pass run_id: {len(runs)} runs are stored under {table_prefix!r}: {sorted(runs)[:10]}.",
                hint="Use the id store_backtest returned.",
            )
        return str(runs[0])

    def _no_such_run(self, table_prefix: str) -> None:
        index = _index_table(table_prefix)
        if not self.warehouse.has_table(index):
            raise TableNotFoundError(
                f"No backtest with run_id {self.run_id!r}: table '{self.tables['backtest']}' does not exist "
                f"in {self.warehouse.redacted_url()}.",
                hint="Store a backtest first with store_backtest(...), or check run_id and table_prefix.",
            )
        runs = sorted(stored_runs(self.warehouse, table_prefix)["run_id"].tolist())
        raise InputError(
            f"No backtest with run_id {self.run_id!r} (stored runs: {runs}).", hint="Check run_id."
        )

    def _check_same_points(self, bt: str, baseline: str) -> None:
        """OWA compares models on one set of forecasts, so each model must forecast the baseline's points."""
        sql = f"""{self.cte},
        base AS (SELECT unique_id, cutoff, ds FROM points WHERE model = :baseline)
        SELECT p.model, count(*) AS n_points, count(b.ds) AS n_matched,
               (SELECT count(*) FROM base) AS n_baseline
        FROM points p LEFT JOIN base b ON b.unique_id = p.unique_id AND b.cutoff = p.cutoff AND b.ds = p.ds
        GROUP BY p.model"""
        counts = self.warehouse.query(sql, self.params)
        bad = counts[(counts.n_points != counts.n_matched) | (counts.n_points != counts.n_baseline)]
        if len(bad):
            detail = ", ".join(f"{r.model} ({r.n_points} points)" for r in bad.itertuples())
            raise InputError(
                f"OWA against {baseline!r} ({int(counts.n_baseline.iloc[0])} points) needs every model "
                f"to forecast the same points; these differ: {detail}.",
                hint="Backtest all models on the same series and windows, or pass baseline=None.",
            )


def _with_coverage(ctx: _Context, result: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Add ``coverage_<level>`` columns (share of ``lo <= y <= hi``), computed in SQL, grouped by ``keys``."""
    if not ctx.warehouse.has_table(ctx.tables["intervals"]):
        return result
    iv = quote_table(ctx.tables["intervals"])
    group = ", ".join(f"p.{k}" for k in keys)
    inside = "CASE WHEN p.y >= i.lo AND p.y <= i.hi THEN CAST(1 AS DOUBLE PRECISION) ELSE 0 END"
    sql = f"""{ctx.cte}
    SELECT {group}, i.level, avg({inside}) AS coverage
    FROM {iv} i JOIN points p
      ON i.unique_id = p.unique_id AND i.cutoff = p.cutoff AND i.ds = p.ds AND i.model = p.model
    GROUP BY {group}, i.level
    """
    coverage = ctx.warehouse.query(sql, ctx.params)
    if coverage.empty:
        return result
    coverage["column"] = coverage["level"].map(_coverage_name)
    wide = coverage.pivot_table(index=keys, columns="column", values="coverage", aggfunc="first")
    order = sorted(wide.columns, key=lambda c: float(c.removeprefix("coverage_").replace("_", ".")))
    return result.merge(wide[order].reset_index(), on=keys, how="left")


def _coverage_name(level: float) -> str:
    return f"coverage_{int(level)}" if float(level).is_integer() else f"coverage_{level:g}".replace(".", "_")


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame.columns.name = None
    for column in ("n_series", "n_windows", "n_points", "h"):
        if column in frame:
            frame[column] = frame[column].astype(np.int64)
    for column in frame.columns:
        # An all-NULL score (e.g. an undefined OWA) arrives from some engines as None: NaN, like the others.
        if column in ("smape", "mase", "owa", "rmse") or str(column).startswith("coverage_"):
            frame[column] = frame[column].astype(np.float64)
    return frame
