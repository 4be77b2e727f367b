"""The warehouse: one small interface over DuckDB (default) and PostgreSQL.

Example:
    >>> from stackml.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     _ = wh.execute("CREATE TABLE t AS SELECT 1 AS x")
    ...     wh.query("SELECT x FROM t WHERE x = ?", [1]).x.tolist()
    [1]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackml.errors import ConfigError
from stackml.warehouse.base import IF_EXISTS_CHOICES, IngestResult, Warehouse
from stackml.warehouse.identifiers import quote_column, quote_table, validate_table_name
from stackml.warehouse.sources import file_columns, read_file

if TYPE_CHECKING:
    from stackml.config import Settings

__all__ = [
    "connect",
    "Warehouse",
    "IngestResult",
    "IF_EXISTS_CHOICES",
    "quote_table",
    "quote_column",
    "validate_table_name",
    "read_file",
    "file_columns",
]

_DUCKDB_SUFFIXES = (".duckdb", ".db", ".ddb")


def connect(url: str | None = None, *, settings: Settings | None = None) -> Warehouse:
    """Open the warehouse at ``url`` (default: ``Settings.warehouse_url``, a DuckDB file in the stackml home).

    Accepted URLs: ``duckdb:///relative.duckdb``, ``duckdb:////absolute.duckdb``, ``duckdb:///:memory:``, a
    plain path ending in ``.duckdb``, and ``postgresql://user[:password]@host[:port]/dbname``.
    """
    if url is None:
        from stackml.config import get_settings

        url = (settings or get_settings()).warehouse_url
    assert url is not None
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from stackml.warehouse.postgres_engine import PostgresWarehouse

        return PostgresWarehouse(url.replace("postgresql+psycopg://", "postgresql://"))
    if url.startswith("duckdb:") or url == ":memory:" or url.lower().endswith(_DUCKDB_SUFFIXES):
        from stackml.warehouse.duckdb_engine import DuckDBWarehouse

        return DuckDBWarehouse(url)
    raise ConfigError(
        f"Unsupported warehouse URL {url!r}.",
        hint="Use duckdb:///path/to/file.duckdb (the default) or postgresql://user@host:5432/dbname.",
    )
