"""Freshness: how old the newest row of a table is, against the age it may reach.

A feed that stopped shows here first: its table still answers queries, only nothing new arrives.

Example:
    >>> from stackml.monitoring.freshness import parse_freshness_spec
    >>> parse_freshness_spec("orders.created_at=6h")
    ('orders', 'created_at', datetime.timedelta(seconds=21600))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from stackml.errors import InputError
from stackml.monitoring.sources import parse_window

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = ["Freshness", "check_freshness", "parse_freshness_spec"]


@dataclass(frozen=True)
class Freshness:
    """The age of a table's newest row.

    Attributes:
        table, column: what was checked.
        newest: the newest timestamp (None when the table is empty or every value is missing).
        age_hours: hours from ``newest`` to the check (None when there is no row).
        limit_hours: the age at which the table counts as stale.
        stale: older than the limit, or empty, or unreadable.
        reason: None, or why no age could be measured (no such table or column, no rows).
    """

    table: str
    column: str
    newest: datetime | None
    age_hours: float | None
    limit_hours: float
    stale: bool
    reason: str | None = None

    def as_dict(self) -> dict:
        return {
            "table": self.table,
            "column": self.column,
            "newest": None if self.newest is None else self.newest.isoformat(),
            "age_hours": None if self.age_hours is None else round(self.age_hours, 3),
            "limit_hours": self.limit_hours,
            "stale": self.stale,
            "reason": self.reason,
        }


def parse_freshness_spec(text: str) -> tuple[str, str, timedelta]:
    """``TABLE.COLUMN=AGE`` (e.g. ``orders.created_at=6h``) as ``(table, column, limit)``."""
    target, _, age = str(text).partition("=")
    table, _, column = target.strip().rpartition(".")
    if not table or not column or not age.strip():
        raise InputError(
            f"The freshness check {text!r} is not TABLE.COLUMN=AGE.",
            hint="For example --freshness orders.created_at=6h (the newest created_at at most 6 hours old).",
        )
    return table, column, parse_window(age)


def check_freshness(
    warehouse: Warehouse, table: str, column: str, limit: timedelta | str, *, now: datetime | None = None
) -> Freshness:
    """The age of the newest ``column`` value in ``table`` against ``limit``; a missing table or column or an
    empty table is stale with its reason, never an exception (the other checks still run)."""
    from stackml.warehouse.identifiers import quote_column, quote_table

    limit_hours = parse_window(limit).total_seconds() / 3600
    now = (now or datetime.now(UTC)).astimezone(UTC)

    def stale(reason: str) -> Freshness:
        return Freshness(table, column, None, None, limit_hours, True, reason)

    if not warehouse.has_table(table):
        return stale(f"the table '{table}' does not exist in {warehouse.redacted_url()}")
    if column not in warehouse.schema(table):
        return stale(f"the table '{table}' has no column '{column}' (it has {list(warehouse.schema(table))})")
    newest = warehouse.query(f"SELECT max({quote_column(column)}) AS newest FROM {quote_table(table)}")
    value = newest["newest"].iloc[0]
    if value is None or pd.isna(value):
        return stale(f"the table '{table}' has no rows with a '{column}'")
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    age = (now - stamp.to_pydatetime()).total_seconds() / 3600
    return Freshness(table, column, stamp.to_pydatetime(), age, limit_hours, age > limit_hours)
