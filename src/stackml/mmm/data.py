"""From raw touchpoints in the warehouse to the model frame, in SQL.

The touchpoint table has one row per date and channel (``date, channel, spend, impressions, clicks,
conversions, revenue``; extra columns are ignored). One query pivots it into one row per week (or day) with
one spend column per channel and the target summed over all rows, so revenue not attributed to any paid
channel (an ``organic`` row) still counts. It runs in the warehouse, so it scales with the engine, and is
written once in DuckDB's dialect and translated for the others.

Example:
    >>> from stackml.mmm import simulate
    >>> from stackml.warehouse import connect
    >>> sim = simulate("2y_3ch", seed=0)
    >>> with connect("duckdb:///:memory:") as wh:
    ...     _ = wh.ingest(sim.touchpoints, "touchpoints")
    ...     frame = aggregate_touchpoints(wh, "touchpoints")
    >>> list(frame.columns)
    ['date', 'search', 'social', 'tv', 'revenue']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stackml.checks import missing_columns_problem
from stackml.errors import InputError, raise_if_problems
from stackml.warehouse.identifiers import quote_column, quote_table

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = ["FREQUENCIES", "aggregate_touchpoints"]

# period start in DuckDB SQL; weeks start on Monday (ISO), as in PostgreSQL and Spark. The outer cast keeps a
# DATE: PostgreSQL's date_trunc would return a time-zone-aware timestamp.
FREQUENCIES = {"W": "CAST(date_trunc('week', CAST({col} AS DATE)) AS DATE)", "D": "CAST({col} AS DATE)"}
_PERIOD_DAYS = {"W": 7, "D": 1}


def aggregate_touchpoints(
    warehouse: Warehouse | str,
    table: str = "touchpoints",
    *,
    freq: str = "W",
    target: str = "revenue",
    channels: Sequence[str] | None = None,
    controls_table: str | None = None,
    controls: Sequence[str] = (),
    start: str | None = None,
    end: str | None = None,
    date_column: str = "date",
    channel_column: str = "channel",
    spend_column: str = "spend",
) -> pd.DataFrame:
    """Aggregate a raw touchpoint table to the model frame
    ``date, <channel spend...>, <controls...>, <target>``.

    Args:
        warehouse: a connected warehouse, or its URL.
        table: the touchpoint table.
        freq: ``"W"`` (weeks starting Monday) or ``"D"``.
        target: the column summed into the target (``revenue`` or ``conversions``).
        channels: channels to keep, in this order; default every channel with positive total spend, sorted.
        controls_table: optional table with ``date_column`` and the ``controls`` columns, averaged per period
            and joined on the period (give it at the model's grain or finer).
        controls: control columns to take from ``controls_table``.
        start, end: optional inclusive date bounds on the touchpoints.
        date_column, channel_column, spend_column: column names in the touchpoint table.

    Returns:
        One row per period, sorted by date, periods evenly spaced.
    """
    from stackml.warehouse import connect

    if isinstance(warehouse, str):
        with connect(warehouse) as wh:
            return aggregate_touchpoints(
                wh,
                table,
                freq=freq,
                target=target,
                channels=channels,
                controls_table=controls_table,
                controls=controls,
                start=start,
                end=end,
                date_column=date_column,
                channel_column=channel_column,
                spend_column=spend_column,
            )
    _check_columns(warehouse, table, [date_column, channel_column, spend_column, target], "touchpoint table")
    if freq not in FREQUENCIES:
        raise InputError(
            f"The 'freq' parameter must be one of {list(FREQUENCIES)}. Got {freq!r} instead.",
            hint="Use 'W' for weekly or 'D' for daily periods.",
        )
    if controls and controls_table is None:
        raise InputError(
            "Controls were named but no controls_table was given.", hint="Pass controls_table=NAME."
        )
    if controls_table is not None:
        _check_columns(warehouse, controls_table, [date_column, *controls], "controls table")

    date, chan, spend = quote_column(date_column), quote_column(channel_column), quote_column(spend_column)
    where, params = _date_filter(date, start, end)
    if channels is None:
        channels = _spending_channels(warehouse, table, chan, spend, where, params)
    elif not channels:
        raise InputError(
            "The 'channels' parameter is empty.", hint="Name at least one channel, or pass None."
        )
    period = FREQUENCIES[freq].format(col=date)
    pivots = ",\n  ".join(
        f"SUM(CASE WHEN {chan} = ? THEN {spend} ELSE 0 END) AS {quote_column(c)}" for c in channels
    )
    sql = (
        "WITH touch AS (\n"
        f"  SELECT {period} AS period, {chan}, {spend}, {quote_column(target)} AS target_value\n"
        f"  FROM {quote_table(table)}{where}\n),\n"
        f"media AS (\n  SELECT period,\n  {pivots},\n  SUM(target_value) AS target_value\n"
        f"  FROM touch GROUP BY period\n)"
    )
    select = ["media.period AS period", *[f"media.{quote_column(c)}" for c in channels]]
    if controls:
        averages = ", ".join(f"AVG({quote_column(c)}) AS {quote_column(c)}" for c in controls)
        sql += (
            f",\ncontrols AS (\n  SELECT {FREQUENCIES[freq].format(col=date)} AS period, {averages}\n"
            f"  FROM {quote_table(controls_table)} GROUP BY 1\n)"
        )
        select += [f"controls.{quote_column(c)}" for c in controls]
    select.append("media.target_value AS target_value")
    sql += f"\nSELECT {', '.join(select)}\nFROM media"
    if controls:
        sql += "\nLEFT JOIN controls ON controls.period = media.period"
    sql += "\nORDER BY 1"
    frame = warehouse.query(sql, [*params, *channels], dialect="duckdb")
    frame.columns = ["date", *channels, *controls, target]
    frame["date"] = pd.to_datetime(frame["date"])
    _check_periods(frame["date"], _PERIOD_DAYS[freq], table)
    return frame.astype({c: float for c in [*channels, *controls, target]})


def _check_columns(warehouse: Warehouse, table: str, columns: list[str], what: str) -> None:
    schema = warehouse.schema(table)  # raises TableNotFoundError with the known tables
    problem = missing_columns_problem(schema, columns)
    raise_if_problems(
        [problem] if problem else [],
        what=f"the {what} '{table}'",
        hint="Name the columns with date_column=, channel_column=, spend_column= and target=.",
    )


def _date_filter(date: str, start: str | None, end: str | None) -> tuple[str, list[object]]:
    clauses, params = [], []
    for bound, op in ((start, ">="), (end, "<=")):
        if bound is not None:
            clauses.append(f"CAST({date} AS DATE) {op} CAST(? AS DATE)")
            params.append(str(pd.Timestamp(bound).date()))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _spending_channels(warehouse, table, chan, spend, where, params) -> list[str]:
    rows = warehouse.query(
        f"SELECT {chan} AS channel FROM {quote_table(table)}{where} "
        f"GROUP BY {chan} HAVING SUM({spend}) > 0 ORDER BY 1",
        params or None,
        dialect="duckdb",
    )
    channels = [str(c) for c in rows["channel"]]
    if not channels:
        raise InputError(
            f"No channel in '{table}' has positive spend.", hint="Check the table and the date bounds."
        )
    return channels


def _check_periods(dates: pd.Series, period_days: int, table: str) -> None:
    if len(dates) < 2:
        return
    gaps = np.diff(dates.to_numpy()).astype("timedelta64[D]").astype(int)
    holes = np.flatnonzero(gaps != period_days)
    if holes.size:
        missing = [str((dates.iloc[i] + pd.Timedelta(days=period_days)).date()) for i in holes[:5]]
        n_missing_periods = int((gaps[holes] // period_days - 1).sum())
        raise InputError(
            f"The touchpoints in '{table}' have no rows for {n_missing_periods} period(s), "
            f"starting at {missing}.",
            hint="Load the missing periods (a row with zero spend is enough), "
            "or restrict start/end to a range without gaps.",
        )
