"""User paths: the input of every path-based attribution model.

A :class:`Paths` holds one row per path (a sequence of channels) with the conversions, conversion value and
non-converting journeys ("nulls") that followed it; rows built from raw touchpoints also carry, per touch,
the days from it to the journey's end (for time decay). Two ways in:

* :func:`read_paths` reads the aggregated format ``path;total_conversions;total_conversion_value;total_null``
  (channels joined by ``" > "``), as ChannelAttribution and many exports write it;
* :func:`paths_from_touchpoints` cuts raw touchpoints (``user_id, ts, channel`` and a conversion flag) in a
  warehouse into journeys with SQL: a journey ends at each conversion, and a touch counts only if it came
  within the lookback window before the journey's end.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.errors import InputError

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = ["Paths", "read_paths", "paths_from_touchpoints", "SEPARATOR"]

log = logging.getLogger(__name__)

SEPARATOR = " > "
HEAVY_USER_TOUCHES = 10_000  # more touchpoints than this for one user earns a warning
AGGREGATED_COLUMNS = ("path", "total_conversions", "total_conversion_value", "total_null")
_SHOWN = 5  # problems named in an error, per kind


@dataclass(frozen=True)
class Touches:
    """Flat per-touch arrays: the path it belongs to, its position, its path's length, its channel's code."""

    owner: np.ndarray
    position: np.ndarray
    length: np.ndarray
    channel: np.ndarray


@dataclass(frozen=True)
class Paths:
    """Paths and what followed them.

    Attributes:
        frame: one row per path: ``path`` (a tuple of channel names), ``conversions``, ``value`` and
            ``nulls`` (journeys that did not convert), and optionally ``gaps``: a tuple of days from each
            touch to the journey's end.
    """

    frame: pd.DataFrame

    @cached_property
    def channels(self) -> list[str]:
        return sorted(set(chain.from_iterable(self.frame["path"])))

    @cached_property
    def touches(self) -> Touches:
        """Every touch of every path as flat arrays (the rules weigh them all at once)."""
        lengths = self.frame["path"].map(len).to_numpy()
        total = int(lengths.sum())
        owner = np.repeat(np.arange(len(self.frame)), lengths)
        position = np.arange(total) - (np.cumsum(lengths) - lengths)[owner]
        code = {c: i for i, c in enumerate(self.channels)}
        codes = np.fromiter((code[c] for c in chain.from_iterable(self.frame["path"])), np.int64, total)
        return Touches(owner, position, lengths[owner], codes)

    @property
    def conversions(self) -> float:
        return float(self.frame["conversions"].sum())

    @property
    def value(self) -> float:
        return float(self.frame["value"].sum())

    @property
    def has_gaps(self) -> bool:
        return "gaps" in self.frame.columns

    def __len__(self) -> int:
        return len(self.frame)

    def aggregated(self) -> Paths:
        """One row per distinct path (the time gaps dropped)."""
        grouped = (
            self.frame.groupby("path", sort=False)[["conversions", "value", "nulls"]].sum().reset_index()
        )
        return Paths(grouped)

    @classmethod
    def from_records(
        cls,
        paths: Sequence[Sequence[str] | str],
        conversions: Sequence[float],
        value: Sequence[float] | None = None,
        nulls: Sequence[float] | None = None,
        gaps: Sequence[Sequence[float]] | None = None,
    ) -> Paths:
        """Paths from Python lists (a path may be a list of channels or text joined by ``" > "``)."""
        parsed = [tuple(_split(p)) if isinstance(p, str) else tuple(p) for p in paths]
        frame = pd.DataFrame(
            {
                "path": parsed,
                "conversions": np.asarray(conversions, dtype=float),
                "value": np.zeros(len(parsed)) if value is None else np.asarray(value, dtype=float),
                "nulls": np.zeros(len(parsed)) if nulls is None else np.asarray(nulls, dtype=float),
            }
        )
        if gaps is not None:
            frame["gaps"] = [tuple(float(g) for g in row) for row in gaps]
        return cls(_checked(frame, "the paths"))


def _split(text: str) -> list[str]:
    return [part.strip() for part in str(text).split(">") if part.strip()]


def _checked(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """Every problem in the rows at once: empty paths, negative or missing counts, gaps that do not match."""
    problems = []
    empty = [i for i, p in enumerate(frame["path"]) if len(p) == 0]
    if empty:
        problems.append(f"{len(empty)} path(s) with no channel (rows {empty[:_SHOWN]})")
    for column in ("conversions", "value", "nulls"):
        values = frame[column].to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if bad.size:
            shown = [f"row {i}: {values[i]!r}" for i in bad[:_SHOWN]]
            problems.append(f"'{column}' must be a finite number >= 0 ({bad.size} rows: {', '.join(shown)})")
    if "gaps" in frame.columns:
        mismatched = [i for i, (p, g) in enumerate(zip(frame["path"], frame["gaps"])) if len(p) != len(g)]
        if mismatched:
            problems.append(
                f"{len(mismatched)} row(s) whose gaps do not match their touches {mismatched[:_SHOWN]}"
            )
    if not len(frame):
        problems.append("no paths at all")
    elif not (frame["conversions"].sum() > 0):
        problems.append("no conversions: there is nothing to attribute")
    if problems:
        raise InputError(
            f"Cannot attribute {what}: " + "; ".join(problems) + ".",
            hint="Fix those rows: every path names at least one channel, counts are >= 0.",
        )
    return frame.reset_index(drop=True)


def read_paths(source: str | Path | pd.DataFrame) -> Paths:
    """Read the aggregated path format: ``path;total_conversions;total_conversion_value;total_null``.

    ``total_conversion_value`` and ``total_null`` may be missing (zero). A CSV separated by ``;`` or ``,``.

    Raises:
        InputError: a missing column, an empty path, negative or non-numeric counts (every problem at once).
    """
    if isinstance(source, pd.DataFrame):
        frame, where = source.copy(), "the frame"
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(
                f"No such path file: '{source}'.", hint="Pass a file in the aggregated path format."
            )
        with path.open(encoding="utf-8") as fh:
            header = fh.readline()
        frame = pd.read_csv(path, sep=";" if header.count(";") >= header.count(",") else ",")
        where = f"'{source}'"
    missing = [c for c in AGGREGATED_COLUMNS[:2] if c not in frame.columns]
    if missing:
        raise InputError(
            f"{where} lacks the column(s) {missing} of the aggregated path format "
            f"(it has {list(frame.columns)}).",
            hint="Columns: path;total_conversions;total_conversion_value;total_null (channels joined by "
            "' > ').",
        )
    counts = {}
    for column in AGGREGATED_COLUMNS[1:]:
        raw = frame[column] if column in frame.columns else pd.Series(0.0, index=frame.index)
        numbers = pd.to_numeric(raw, errors="coerce")
        bad = numbers.isna() & raw.notna()
        if bad.any():
            rows = list(np.flatnonzero(bad.to_numpy())[:_SHOWN])
            raise InputError(
                f"{where}: '{column}' holds values that are not numbers in rows {rows} "
                f"(e.g. {raw[bad].iloc[0]!r}).",
                hint="Counts and values must be plain numbers.",
            )
        counts[column] = numbers.fillna(0.0).to_numpy(dtype=float)
    out = pd.DataFrame(
        {
            "path": [tuple(_split(p)) if isinstance(p, str) else () for p in frame["path"]],
            "conversions": counts["total_conversions"],
            "value": counts["total_conversion_value"],
            "nulls": counts["total_null"],
        }
    )
    return Paths(_checked(out, where))


def paths_from_touchpoints(
    warehouse: Warehouse,
    table: str,
    *,
    user_column: str = "user_id",
    time_column: str = "ts",
    channel_column: str = "channel",
    conversion_column: str = "conversion",
    value_column: str | None = "value",
    lookback_days: float = 30.0,
    out: str | None = None,
) -> Paths:
    """Journeys from raw touchpoints, cut in SQL (DuckDB, PostgreSQL or Spark).

    A touchpoint row is ``user, time, channel`` with a conversion flag: 1 on the touch that converted (it
    counts as the journey's last touch and may carry the conversion's value). A user's journey ends at each
    conversion; its touches are those after the user's previous conversion and within ``lookback_days``
    before the conversion (or before the user's last touch, for a journey that did not convert). Each journey
    keeps the days from every touch to its end, for time decay.

    Args:
        out: also write the journeys to this table (``path`` text joined by ``" > "``, ``conversions``,
            ``value``, ``nulls``, ``gaps``), replaced in one transaction.

    Raises:
        InputError: a missing column, duplicate touchpoints (same user, time and channel), negative values.
    """
    from stackml.warehouse.identifiers import quote_column, quote_table

    warehouse.require_table(table)
    columns = warehouse.schema(table)
    wanted = [user_column, time_column, channel_column, conversion_column] + (
        [value_column] if value_column else []
    )
    missing = [c for c in wanted if c not in columns]
    if value_column and value_column in missing:
        missing.remove(value_column)
        value_column = None  # no value column: values are 0
    if missing:
        raise InputError(
            f"The touchpoints table '{table}' lacks the column(s) {missing} (it has {list(columns)}).",
            hint="Name them with --user-column, --time-column, --channel-column, --conversion-column.",
        )
    if lookback_days <= 0:
        raise InputError(f"The lookback must be a positive number of days, got {lookback_days!r}.")
    u, t, c, v = (
        quote_column(x) for x in (user_column, time_column, channel_column, value_column or "value")
    )
    conv = quote_column(conversion_column)
    value_expr = f"coalesce({v}, 0)" if value_column else "0"
    source = quote_table(table)
    checks = warehouse.query(
        f"SELECT (SELECT count(*) FROM (SELECT {u}, {t}, {c} FROM {source} GROUP BY 1, 2, 3 "
        f"HAVING count(*) > 1) d) AS duplicates, "
        f"(SELECT count(*) FROM {source} WHERE {value_expr} < 0) AS negative, "
        f"(SELECT count(*) FROM {source} WHERE {u} IS NULL OR {t} IS NULL OR {c} IS NULL) AS nulls, "
        f"(SELECT count(*) FROM (SELECT {u} FROM {source} GROUP BY 1 "
        f"HAVING count(*) > {HEAVY_USER_TOUCHES}) h) AS heavy_users"
    ).iloc[0]
    if checks["heavy_users"]:
        # A bot, a shared device or a broken user id: its journeys are real input, but they distort the paths.
        log.warning(
            "%d user(s) in '%s' have more than %s touchpoints each (bots, shared devices or a broken user "
            "id?); their journeys are kept, cut at each conversion and by the %g-day lookback.",
            int(checks["heavy_users"]),
            table,
            f"{HEAVY_USER_TOUCHES:,}",
            lookback_days,
        )
    problems = []
    if checks["duplicates"]:
        problems.append(f"{int(checks['duplicates'])} touchpoint(s) repeated (same user, time and channel)")
    if checks["negative"]:
        problems.append(f"{int(checks['negative'])} row(s) with a negative value")
    if checks["nulls"]:
        problems.append(f"{int(checks['nulls'])} row(s) with no user, time or channel")
    if problems:
        raise InputError(
            f"Cannot cut journeys from '{table}': " + "; ".join(problems) + ".",
            hint="De-duplicate the touchpoints and fill or drop the incomplete rows first.",
        )
    # The query is written for DuckDB and PostgreSQL. Spark reads it through sqlglot from DuckDB's dialect (so
    # NUMERIC keeps DuckDB's DECIMAL(18,3) and the gaps match DuckDB's to the digit), except the one thing
    # sqlglot leaves as it is and Spark cannot run: extract(epoch ...), for which Spark counts microseconds.
    spark = warehouse.dialect == "spark"
    seconds = (
        "(unix_micros({a}) - unix_micros({b})) / 1e6"
        if spark
        else "extract(epoch from {a}) - extract(epoch from {b})"
    )
    sql = f"""
WITH ordered AS (
  SELECT {u} AS u, {t} AS t, CAST({c} AS VARCHAR) AS ch, CAST({conv} AS INTEGER) AS converted,
         CAST({value_expr} AS DOUBLE PRECISION) AS val,
         -- touches after the user's n-th conversion belong to journey n (a conversion row closes its own)
         coalesce(sum(CAST({conv} AS INTEGER)) OVER (PARTITION BY {u} ORDER BY {t}, CAST({conv} AS INTEGER)
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS journey
  FROM {source}
), ends AS (
  SELECT u, journey, max(t) AS ended, max(converted) AS converted, sum(val) AS val
  FROM ordered GROUP BY u, journey
), touches AS (
  SELECT o.u, o.journey, o.t, o.ch, e.converted, e.val,
         ({seconds.format(a="e.ended", b="o.t")}) / 86400.0 AS gap
  FROM ordered o JOIN ends e ON o.u = e.u AND o.journey = e.journey
  WHERE ({seconds.format(a="e.ended", b="o.t")}) <= {float(lookback_days) * 86400.0}
)
SELECT u, journey, string_agg(ch, ' > ' ORDER BY t) AS path,
       string_agg(CAST(round(CAST(gap AS NUMERIC), 6) AS VARCHAR), ',' ORDER BY t) AS gaps,
       max(converted) AS conversions, max(val) AS value
FROM touches GROUP BY u, journey
"""
    journeys = warehouse.query(sql, dialect="duckdb" if spark else None)
    frame = pd.DataFrame(
        {
            "path": [tuple(p.split(SEPARATOR)) for p in journeys["path"]],
            "conversions": journeys["conversions"].astype(float).to_numpy(),
            "value": journeys["value"].astype(float).to_numpy()
            * journeys["conversions"].astype(float).to_numpy(),
            "nulls": 1.0 - journeys["conversions"].astype(float).to_numpy(),
            "gaps": [tuple(float(g) for g in str(text).split(",")) for text in journeys["gaps"]],
        }
    )
    paths = Paths(_checked(frame, f"the journeys of '{table}'"))
    if out is not None:
        written = frame.assign(
            path=[SEPARATOR.join(p) for p in frame["path"]],
            gaps=[",".join(f"{g:g}" for g in gaps) for gaps in frame["gaps"]],
        )
        warehouse.ingest(written, out, if_exists="replace")
    return paths


def journeys_summary(paths: Paths) -> dict[str, Any]:
    """Counts a report or a CLI prints about the input."""
    lengths = paths.frame["path"].map(len)
    weights = paths.frame["conversions"] + paths.frame["nulls"]
    return {
        "paths": len(paths),
        "journeys": float(weights.sum()),
        "conversions": paths.conversions,
        "value": paths.value,
        "channels": paths.channels,
        "mean_length": float((lengths * weights).sum() / max(weights.sum(), 1e-12)),
        "longest": int(lengths.max()),
    }
