"""DuckDB, the embedded default warehouse."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackml.errors import ConnectionFailedError, InputError
from stackml.warehouse.base import Warehouse
from stackml.warehouse.identifiers import quote_table, split_table
from stackml.warehouse.params import Params, rewrite
from stackml.warehouse.sources import explain_read_error, select_source

if TYPE_CHECKING:
    import pandas as pd


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

        super().__init__(url)
        self.path = database_path(url)
        if self.path not in ("", ":memory:"):
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(self.path or ":memory:", read_only=read_only)
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
        sql, bound = rewrite(self._translate(sql, dialect), params, "duckdb")
        return self._run(sql, bound).df()

    def execute(self, sql: str, params: Params = None, *, dialect: str | None = None) -> None:
        sql, bound = rewrite(self._translate(sql, dialect), params, "duckdb")
        self._run(sql, bound)

    def _run(self, sql: str, bound: Any) -> Any:
        import duckdb

        try:
            return self._con.execute(sql, bound) if bound is not None else self._con.execute(sql)
        except duckdb.Error as exc:
            raise InputError(f"The query failed: {str(exc).splitlines()[0]}", hint="Check the SQL.") from exc

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
            "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
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
