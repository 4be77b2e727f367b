"""DuckDB, the embedded default warehouse."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackml.errors import ConnectionFailedError, InputError
from stackml.warehouse.base import (
    READ_ONLY_HINT,
    STREAM_BATCH_ROWS,
    Rows,
    Warehouse,
    empty_query_error,
    require_sql,
)
from stackml.warehouse.identifiers import quote_table, split_table
from stackml.warehouse.params import Params, rewrite
from stackml.warehouse.sources import explain_read_error, select_source

if TYPE_CHECKING:
    import pandas as pd

#: statement types a read-only warehouse runs (DESCRIBE, SHOW and SUMMARIZE are SELECTs to DuckDB)
_READ_STATEMENTS = ("SELECT", "EXPLAIN")
#: column types handed over as DuckDB's text, which keeps what Python's types lose (nanoseconds, infinity,
#: the months of an interval); timestamps get ISO 8601's 'T'
_AS_TEXT = ("DATE", "TIME", "INTERVAL", "BIT")


def database_path(url: str) -> str:
    """``duckdb:///rel.duckdb`` -> ``rel.duckdb``; ``duckdb:////abs.duckdb`` -> ``/abs.duckdb``; plain paths
    pass."""
    if url.startswith("duckdb://"):
        rest = url[len("duckdb://") :]
        return rest[1:] if rest.startswith("/") else rest
    return url


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file (or ``:memory:``)."""

    dialect = "duckdb"

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        import duckdb

        super().__init__(url, read_only=read_only)
        self.path = database_path(url)
        in_memory = self.path in ("", ":memory:")
        if read_only and not in_memory and not Path(self.path).expanduser().is_file():
            raise ConnectionFailedError(
                f"There is no DuckDB warehouse at '{self.path}' to read.",
                hint="Load a table first with `stackml ingest FILE --table NAME`, or point --warehouse "
                "at an existing file.",
            )
        if not in_memory:
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            # DuckDB cannot open an in-memory database read-only; there is nothing in it to protect, and
            # stream() still refuses statements that write.
            self._con = duckdb.connect(self.path or ":memory:", read_only=read_only and not in_memory)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            raise ConnectionFailedError(
                f"Cannot open the DuckDB warehouse at '{self.path}': {str(exc).splitlines()[0]}",
                hint="Another process may hold the file open for writing; "
                "close it, or use another --warehouse.",
            ) from exc
        except duckdb.Error as exc:
            raise ConnectionFailedError(
                f"Cannot open '{self.path}' as a DuckDB database: {str(exc).splitlines()[0]}",
                hint="Point --warehouse / STACKML_WAREHOUSE_URL at a DuckDB file (duckdb:///path/file.duckdb).",
            ) from exc

    @property
    def connection(self) -> Any:
        """The underlying ``duckdb.DuckDBPyConnection`` for engine-specific work."""
        return self._con

    def query(self, sql: str, params: Params = None, *, dialect: str | None = None) -> pd.DataFrame:
        import pandas as pd

        sql, bound = rewrite(self._translate(require_sql(sql), dialect), params, "duckdb")
        result = self._run(sql, bound)
        return result.df() if result.description is not None else pd.DataFrame()

    def execute(self, sql: str, params: Params = None, *, dialect: str | None = None) -> None:
        sql, bound = rewrite(self._translate(require_sql(sql), dialect), params, "duckdb")
        self._run(sql, bound)

    def stream(self, sql: str, params: Params = None, *, batch_rows: int = STREAM_BATCH_ROWS) -> Rows:
        import duckdb

        self._check_statements(require_sql(sql))
        sql, bound = rewrite(sql, params, "duckdb")
        try:
            relation = self._con.sql(sql, params=bound)
        except duckdb.Error as exc:
            raise _query_failed(exc) from exc
        if relation is None:  # a statement without a result (SET, ATTACH, ...)
            return Rows([], [], iter(()), lambda: None)
        columns, types = list(relation.columns), [str(t) for t in relation.types]
        exprs = [_exportable(i + 1, t) for i, t in enumerate(types)]
        nested = [i for i, t in enumerate(types) if _is_nested(t)]
        if any(e != f"#{i + 1}" for i, e in enumerate(exprs)):
            relation = relation.project(", ".join(exprs))

        def batches() -> Any:
            import json
            from decimal import Decimal

            try:
                for batch in relation.to_arrow_reader(batch_rows):
                    values = [column.to_pylist() for column in batch.columns]
                    for i in nested:  # exact numbers inside lists and structs, too
                        values[i] = [
                            None if v is None else json.loads(v, parse_float=Decimal) for v in values[i]
                        ]
                    yield list(zip(*values))
            except duckdb.Error as exc:
                raise _query_failed(exc) from exc

        produced = batches()

        def close() -> None:
            produced.close()  # drops the Arrow reader, which holds the connection's open result
            relation.close()

        return Rows(columns, types, produced, close)

    @contextlib.contextmanager
    def bounded_cache(self, limit_mb: int) -> Iterator[None]:
        """DuckDB's ``memory_limit`` lowered to ``limit_mb`` inside the block (never raised), then restored;
        beyond it DuckDB evicts cached blocks and spills intermediate results to its temporary folder."""
        previous = self._con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        current_mb = _megabytes(previous)
        if current_mb is not None and current_mb <= limit_mb:
            yield
            return
        self._con.execute(f"SET memory_limit = '{int(limit_mb)}MB'")
        try:
            yield
        finally:
            # The default again when it was the default (its printed form is rounded: setting it back from
            # the text could shave a little off), else the value as printed.
            self._con.execute("RESET memory_limit")
            if self._con.execute("SELECT current_setting('memory_limit')").fetchone()[0] != previous:
                self._con.execute("SET memory_limit = ?", [previous])

    def _check_statements(self, sql: str) -> None:
        import duckdb

        try:
            kinds = [str(s.type).rsplit(".", 1)[-1] for s in self._con.extract_statements(sql)]
        except duckdb.Error as exc:
            raise _query_failed(exc) from exc
        if not kinds:
            raise empty_query_error(sql)  # only comments
        writes = [k for k in kinds if k not in _READ_STATEMENTS]
        if self.read_only and writes:
            raise InputError(
                f"The query holds a {writes[0]} statement, which can change the warehouse; it did not run.",
                hint=READ_ONLY_HINT,
            )

    def _run(self, sql: str, bound: Any) -> Any:
        import duckdb

        try:
            return self._con.execute(sql, bound) if bound is not None else self._con.execute(sql)
        except duckdb.Error as exc:
            raise _query_failed(exc) from exc

    def tables(self) -> list[str]:
        rows = self._con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT temporary "
            "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal AND NOT temporary"
        ).fetchall()
        return sorted(
            t if s == "main" else f"{s}.{t}" for s, t in rows if not t.startswith("__stackml_load_")
        )

    def schema(self, table: str) -> dict[str, str]:
        self.require_table(table)
        schema, name = split_table(table)
        rows = self._con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND lower(table_schema) = ? AND lower(table_name) = ? "
            "ORDER BY ordinal_position",
            [schema or "main", name],
        ).fetchall()
        return dict(rows)

    def _load(self, source: Any, fmt: str, table: str, mode: str) -> int:
        import duckdb

        if fmt == "dataframe":
            view = f"__stackml_df_{uuid.uuid4().hex[:8]}"
            self._con.register(view, source)
            select, bound = f'SELECT * FROM "{view}"', None
        else:
            view = None
            select, bound = select_source(fmt, source), [str(source)]
        target = quote_table(table)
        schema, _ = split_table(table)
        staging = quote_table(f"{schema + '.' if schema else ''}__stackml_load_{uuid.uuid4().hex[:12]}")
        con = self._con
        try:
            con.execute("BEGIN TRANSACTION")
            if schema:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            if mode == "append":
                rows = con.execute(f"INSERT INTO {target} BY NAME {select}", bound).fetchone()[0]
            else:
                # Load beside the old table, then swap: until COMMIT nobody sees a half-loaded table.
                con.execute(f"CREATE TABLE {staging} AS {select}", bound)
                rows = con.execute(f"SELECT count(*) FROM {staging}").fetchone()[0]
                if mode == "replace":
                    con.execute(f"DROP TABLE {target}")
                con.execute(f"ALTER TABLE {staging} RENAME TO {quote_table(table.split('.')[-1])}")
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            if isinstance(
                exc, (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException)
            ):
                raise explain_read_error(exc, "the DataFrame" if view else source) from exc
            raise InputError(
                f"Loading into '{table}' failed: {str(exc).splitlines()[0]}",
                hint="With --if-exists append, the file's columns must exist in the table "
                "with compatible types.",
            ) from exc
        finally:
            if view:
                self._con.unregister(view)
        return int(rows)

    def close(self) -> None:
        self._con.close()


def _query_failed(exc: Exception) -> InputError:
    first = str(exc).splitlines()[0]
    if "read-only mode" in first:
        return InputError(f"The query did not run: {first}", hint=READ_ONLY_HINT)
    return InputError(f"The query failed: {first}", hint="Check the SQL.")


def _is_nested(duckdb_type: str) -> bool:
    return duckdb_type.endswith("]") or duckdb_type.startswith(("STRUCT", "MAP", "UNION"))


def _exportable(position: int, duckdb_type: str) -> str:
    """The projection that hands column ``position`` to Python without losing anything."""
    ref = f"#{position}"
    if _is_nested(duckdb_type):
        return f"CAST(to_json({ref}) AS VARCHAR)"
    if duckdb_type.startswith("TIMESTAMP"):
        return f"replace(CAST({ref} AS VARCHAR), ' ', 'T')"
    if duckdb_type.startswith(_AS_TEXT):
        return f"CAST({ref} AS VARCHAR)"
    if duckdb_type == "UUID":
        return f"CAST({ref} AS VARCHAR)"
    return ref


_SIZE = re.compile(r"^\s*([\d.]+)\s*([KMGT]?i?B)\s*$", re.IGNORECASE)
_UNIT_MB = {"b": 1 / 2**20, "kb": 1e3 / 2**20, "kib": 1 / 2**10, "mb": 1e6 / 2**20, "mib": 1.0}
_UNIT_MB |= {"gb": 1e9 / 2**20, "gib": 2**10, "tb": 1e12 / 2**20, "tib": 2**20}


def _megabytes(setting: str) -> float | None:
    """DuckDB's memory setting (``'19.0 GiB'``, ``'300.0 MB'``) in MiB; None when unreadable."""
    match = _SIZE.match(str(setting))
    if not match:
        return None
    return float(match.group(1)) * _UNIT_MB[match.group(2).lower()]
