"""The warehouse: one small interface over DuckDB (default), PostgreSQL and Spark.

Example:
    >>> from stackml.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     _ = wh.execute("CREATE TABLE t AS SELECT 1 AS x")
    ...     wh.query("SELECT x FROM t WHERE x = ?", [1]).x.tolist()
    [1]
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stackml.errors import ConfigError
from stackml.warehouse.base import IF_EXISTS_CHOICES, IngestResult, Rows, Warehouse, redact_url
from stackml.warehouse.identifiers import quote_column, quote_table, validate_table_name
from stackml.warehouse.sources import file_columns, read_file

if TYPE_CHECKING:
    from stackml.config import Settings

__all__ = [
    "connect",
    "Warehouse",
    "IngestResult",
    "Rows",
    "IF_EXISTS_CHOICES",
    "quote_table",
    "quote_column",
    "validate_table_name",
    "read_file",
    "file_columns",
]

_DUCKDB_SUFFIXES = (".duckdb", ".db", ".ddb")
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
# A scheme is two or more characters before ':' (one letter is a Windows drive, as in C:\\data\\wh.duckdb).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")
# Spark's own spelling of a local master, without our scheme: local[2], local[*]
_SPARK_LOCAL = re.compile(r"^local\[", re.IGNORECASE)
_URL_HINT = (
    "Use duckdb:///path/to/file.duckdb (the default), a path ending in .duckdb, "
    "postgresql://user@host:5432/dbname, or spark://local[2] (optionally ?path=/folder/of/tables)."
)


def connect(
    url: str | None = None, *, settings: Settings | None = None, read_only: bool = False
) -> Warehouse:
    """Open the warehouse at ``url`` (default: ``Settings.warehouse_url``, a DuckDB file in the stackml home).

    Accepted URLs: ``duckdb:///relative.duckdb``, ``duckdb:////absolute.duckdb``, ``duckdb:///:memory:``, a
    plain path ending in ``.duckdb``, ``.db`` or ``.ddb``, ``postgresql://user[:password]@host[:port]/dbname``,
    and ``spark://local[N]`` or ``spark://local[*]`` (``local[N]`` alone too): Spark SQL in this process over
    Parquet tables in the folder ``?path=...``, by default ``spark-warehouse`` in the stackml home (needs
    ``stackml[spark]`` and Java 17+). Any other scheme (``mysql://``, ``sqlite:``, ...) and any other Spark
    master (``spark://host:7077``) is refused, so a URL is never mistaken for a file name.

    Args:
        url: the warehouse URL.
        settings: where the default URL (and Spark's default folder) comes from.
        read_only: refuse every statement that would change the warehouse (DuckDB opens the file read-only
            and must find it; PostgreSQL runs every statement in a read-only transaction; Spark runs only
            queries and must find its folder).
    """
    from stackml.config import get_settings

    if url is None:
        url = (settings or get_settings()).warehouse_url
    assert url is not None
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else None
    if scheme in _POSTGRES_SCHEMES and url[match.end() :].startswith("//"):  # type: ignore[union-attr]
        from stackml.warehouse.postgres_engine import PostgresWarehouse

        return PostgresWarehouse("postgresql:" + url[match.end() :], read_only=read_only)  # type: ignore[union-attr]
    if scheme == "duckdb" or (
        scheme is None and (url == ":memory:" or url.lower().endswith(_DUCKDB_SUFFIXES))
    ):
        from stackml.warehouse.duckdb_engine import DuckDBWarehouse

        return DuckDBWarehouse(url, read_only=read_only)
    if scheme == "spark" or _SPARK_LOCAL.match(url):
        from stackml.warehouse.spark_engine import SparkWarehouse

        return SparkWarehouse(url, read_only=read_only, home=(settings or get_settings()).home)
    shown = redact_url(url)
    if scheme is not None:
        raise ConfigError(f"Unsupported warehouse URL scheme '{scheme}:' in {shown!r}.", hint=_URL_HINT)
    raise ConfigError(f"Unsupported warehouse URL {shown!r}.", hint=_URL_HINT)
