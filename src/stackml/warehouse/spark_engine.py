"""Spark as a warehouse: Spark SQL over Parquet tables in a folder (``spark://local[2]?path=/data/wh``).

The tables are folders of Parquet files, written atomically (:mod:`~stackml.warehouse.spark_tables`);
queries run in the process's one Spark session, started on the first statement
(:mod:`~stackml.warehouse.spark_session`); statements that write tables are carried out on the folders
(:mod:`~stackml.warehouse.spark_sql`). Results come back in the dtypes DuckDB gives for the same values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from stackml._deps import require
from stackml.errors import (
    ConfigError,
    ConnectionFailedError,
    InputError,
    StackmlError,
    TableExistsError,
)
from stackml.warehouse.base import (
    READ_ONLY_HINT,
    STREAM_BATCH_ROWS,
    Rows,
    Warehouse,
    empty_query_error,
    require_sql,
)
from stackml.warehouse.identifiers import fold_table_name
from stackml.warehouse.params import Params, rewrite
from stackml.warehouse.spark_session import forget, log_path, require_java, spark_session, sync_catalog
from stackml.warehouse.spark_sql import READ_WORDS, Statement, split_statements
from stackml.warehouse.spark_tables import (
    data_files,
    remove_table,
    staged_load,
    table_folders,
    write_parquet,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SparkWarehouse", "spark_location"]

_LOCAL = re.compile(r"^(?:spark://)?(local(?:\[(?:[1-9]\d*|\*)\])?)(?:\?(.*))?$", re.IGNORECASE)
_URL_HINT = "Use spark://local[2] or spark://local[*], optionally with ?path=/folder/of/tables."


def spark_location(url: str, home: Path) -> tuple[str, Path]:
    """``spark://local[2]?path=/data/wh`` -> ``("local[2]", Path("/data/wh"))``; without ``path``, the folder
    ``spark-warehouse`` in ``home``."""
    match = _LOCAL.match(url)
    if not match:
        master = url.split("://", 1)[-1].split("?", 1)[0]
        raise ConfigError(
            f"Unsupported Spark master {master!r} in {url!r}: the Spark warehouse runs Spark in this process "
            "(local mode), whose tables are folders on this machine.",
            hint=_URL_HINT,
        )
    query = parse_qs(match.group(2) or "", keep_blank_values=True)
    unknown = sorted(set(query) - {"path"})
    if unknown or any(len(v) != 1 or not v[0] for v in query.values()):
        raise ConfigError(
            f"Unsupported options in the Spark warehouse URL {url!r}: {unknown or query}.",
            hint="The one option is path, the folder of the tables: spark://local[2]?path=/data/warehouse.",
        )
    path = Path(query["path"][0]).expanduser() if "path" in query else home / "spark-warehouse"
    return match.group(1).lower(), path.absolute()


class SparkWarehouse(Warehouse):
    """Parquet tables in a folder, queried with Spark SQL in local mode (``spark://local[N]``)."""

    dialect = "spark"

    def __init__(self, url: str, *, read_only: bool = False, home: Path | None = None) -> None:
        require("pyspark", "spark")
        super().__init__(url, read_only=read_only)
        if home is None:
            from stackml.config import get_settings

            home = get_settings().home
        self.master, self.path = spark_location(url, home)
        self._log_dir = home / "logs"
        require_java()
        if read_only and not self.path.is_dir():
            raise ConnectionFailedError(
                f"There is no Spark warehouse at '{self.path}' to read.",
                hint="Load a table first with `stackml ingest FILE --table NAME`, or point --warehouse at "
                "the folder of the tables (spark://local[2]?path=/folder).",
            )
        if not read_only:
            self.path.mkdir(parents=True, exist_ok=True)

    @property
    def spark(self) -> Any:
        """The process's ``SparkSession`` (started on first use), its catalog holding this folder's tables."""
        session = spark_session(self.master, self._log_dir)
        sync_catalog(session, table_folders(self.path))
        return session

    # -- queries -------------------------------------------------------------------------------
    def query(self, sql: str, params: Params = None, *, dialect: str | None = None) -> pd.DataFrame:
        import pandas as pd

        frame = self._run(self._translate(require_sql(sql), dialect), params)
        if frame is None or not frame.columns:
            return pd.DataFrame()
        return _pandas(self._spark_call(frame.toArrow))

    def execute(self, sql: str, params: Params = None, *, dialect: str | None = None) -> None:
        self._run(self._translate(require_sql(sql), dialect), params)

    def stream(self, sql: str, params: Params = None, *, batch_rows: int = STREAM_BATCH_ROWS) -> Rows:
        frame = self._run(require_sql(sql), params)
        if frame is None or not frame.columns:
            return Rows([], [], iter(()), lambda: None)
        fields = frame.schema.fields
        positional = frame.toDF(*[f"c{i}" for i in range(len(fields))])  # names may repeat
        exported = positional.selectExpr(*[_exportable(f"c{i}", f.dataType) for i, f in enumerate(fields)])
        nested = [i for i, f in enumerate(fields) if _is_nested(f.dataType)]

        def batches() -> Any:
            rows = self._spark_call(exported.toLocalIterator)
            batch: list[tuple[Any, ...]] = []
            while True:
                row = self._spark_call(next, rows, None)
                if row is None:
                    break
                batch.append(_python_values(row, nested))
                if len(batch) == batch_rows:
                    yield batch
                    batch = []
            if batch:
                yield batch

        produced = batches()
        return Rows(
            [f.name for f in fields], [f.dataType.simpleString() for f in fields], produced, produced.close
        )

    def _run(self, sql: str, params: Params) -> Any:
        """Run every statement of ``sql``; the last one's Spark DataFrame (None when it returns no rows)."""
        statements = split_statements(sql)
        if not statements:
            raise empty_query_error(sql)  # only comments
        not_queries = [s for s in statements if s.kind != "read"]
        if self.read_only and not_queries:
            raise InputError(
                f"The query holds {not_queries[0].word or 'a statement'!r}, which is not a query "
                f"({', '.join(READ_WORDS)}); it did not run.",
                hint=READ_ONLY_HINT,
            )
        if params is not None and len(statements) > 1:
            raise InputError(
                f"Query parameters bind to one statement, but the query holds {len(statements)}.",
                hint="Run the statements one by one, each with its own parameters.",
            )
        # Checks the parameters against the placeholders; Spark takes '?' and ':name' as they are written.
        _, bound = rewrite(sql, params, "spark")
        if isinstance(bound, dict):
            bound = {name: _bindable(value) for name, value in bound.items()}
        elif bound is not None:
            bound = [_bindable(value) for value in bound]
        result = None
        for statement in statements:
            result = self._statement(statement, bound)
        return result

    def _statement(self, statement: Statement, bound: Any) -> Any:
        if statement.error is not None:
            raise statement.error
        if statement.kind in ("read", "other"):
            return self._sql(statement.text, bound)
        assert statement.table is not None
        exists = self.has_table(statement.table)
        if statement.kind == "create":
            self._create_table(statement, bound, exists)
        elif statement.if_exists and not exists:
            pass  # DROP TABLE IF EXISTS of a table that is not there
        else:
            self.require_table(statement.table)
            if statement.kind == "drop":
                self._refuse_load(statement.table)
                remove_table(self.path, statement.table)
                forget(statement.table)
            else:
                frame = self._aligned(self._sql(statement.query or "", bound), statement)
                self._write(frame, statement.table, "append")
        return None

    def _create_table(self, statement: Statement, bound: Any, exists: bool) -> None:
        assert statement.table is not None
        if exists and statement.if_exists:
            return
        if exists and not statement.replace:
            raise TableExistsError(
                f"Table '{statement.table}' already exists in {self.redacted_url()}.",
                hint="Write CREATE OR REPLACE TABLE to replace it, or DROP TABLE it first.",
            )
        frame = self._sql(statement.query or "", bound)
        self._write(frame, statement.table, "replace" if exists else "create")

    def _sql(self, text: str, bound: Any) -> Any:
        return (
            self._spark_call(self.spark.sql, text, args=bound)
            if bound is not None
            else self._spark_call(self.spark.sql, text)
        )

    def _spark_call(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``, with Spark's errors raised as ours."""
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            return call(*args, **kwargs)
        except PySparkException as exc:
            raise _query_failed(exc) from exc
        except Py4JError as exc:  # the JVM is gone, or answered with an error PySpark does not classify
            if hasattr(exc, "java_exception"):
                raise _query_failed(exc) from exc
            raise ConnectionFailedError(
                f"Lost the Spark session: {' '.join(str(exc).split())[:200]}",
                hint=f"See {log_path()} for the JVM's output; a new process starts a new session.",
            ) from exc

    # -- tables --------------------------------------------------------------------------------
    def tables(self) -> list[str]:
        return sorted(table_folders(self.path))

    def schema(self, table: str) -> dict[str, str]:
        self.require_table(table)
        fields = self._spark_call(self.spark.table, _spark_name(table)).schema.fields
        return {f.name: f.dataType.simpleString() for f in fields}

    def row_count(self, table: str) -> int:
        """Read from the Parquet files' footers: exact, and no Spark job."""
        import pyarrow.parquet as pq

        self.require_table(table)
        return sum(pq.read_metadata(file).num_rows for file in data_files(self.path / fold_table_name(table)))

    # -- loading -------------------------------------------------------------------------------
    def _load(self, source: Any, fmt: str, table: str, mode: str) -> int:
        self._refuse_load(table)
        append_to = self.path / table if mode == "append" else None
        with staged_load(self.path, table, mode) as folder:
            return write_parquet(source, fmt, folder, table, append_to)

    def _refuse_load(self, table: str) -> None:
        if self.read_only:
            raise InputError(
                f"The warehouse was opened read-only; '{table}' was not changed.",
                hint="Connect without read_only=True (CLI: pass --write) to change tables.",
            )

    def _aligned(self, frame: Any, statement: Statement) -> Any:
        """The rows of an INSERT as the table's columns: by position, or by the names the INSERT lists."""
        import pyspark.sql.functions as F

        assert statement.table is not None
        target = self.spark.table(_spark_name(statement.table)).schema.fields
        given = list(statement.columns)
        if not given and len(frame.columns) != len(target):
            raise InputError(
                f"INSERT INTO {statement.table} gives {len(frame.columns)} values per row, but the table has "
                f"{len(target)} columns ({[f.name for f in target]}).",
                hint="Give one value per column, or name the columns: INSERT INTO name (a, b) SELECT ...",
            )
        unknown = [c for c in given if c.lower() not in {f.name.lower() for f in target}]
        if given and (unknown or len(given) != len(frame.columns)):
            raise InputError(
                f"INSERT INTO {statement.table} names column(s) {unknown or given} that do not match the "
                f"table's {[f.name for f in target]} or the query's {len(frame.columns)} values.",
                hint="Name existing columns, one per value of the query.",
            )
        positional = frame.toDF(*[f"c{i}" for i in range(len(frame.columns))])
        source = {name.lower(): f"c{i}" for i, name in enumerate(given or [f.name for f in target])}
        return positional.select(
            *[
                (F.col(source[f.name.lower()]) if f.name.lower() in source else F.lit(None))
                .cast(f.dataType)
                .alias(f.name)
                for f in target
            ]
        )

    def _write(self, frame: Any, table: str, mode: str) -> None:
        """Write a Spark DataFrame as a load of ``table`` (``mode``: create, replace or append)."""
        self._refuse_load(table)
        with staged_load(self.path, table, mode) as folder:
            self._spark_call(frame.write.parquet, str(folder))

    def close(self) -> None:
        """Nothing to release: the Spark session belongs to the process and serves every Spark warehouse."""


def _bindable(value: Any) -> Any:
    """A parameter as Spark binds it: it takes Python's scalars, not numpy's (a pandas column's values), and
    pandas' NaT is NULL."""
    if type(value).__name__ == "NaTType":
        return None
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def _spark_name(table: str) -> str:
    name = fold_table_name(table)
    return ".".join(f"`{part}`" for part in (name if "." in name else f"default.{name}").split("."))


def _pandas(table: Any) -> pd.DataFrame:
    """An Arrow result as the DataFrame the DuckDB warehouse gives for the same values (DuckDB converts it).

    Spark's functions return its default ``TIMESTAMP`` (an instant) where DuckDB returns a timestamp without
    a time zone (``date_trunc``, ``timestamp_seconds``): with the session pinned to UTC, such a column is
    handed over as its UTC wall time, as Spark's own ``toPandas`` does, so both engines give the same values.
    """
    import duckdb
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(i, field.name, table.column(i).cast(pa.timestamp(field.type.unit)))
    con = duckdb.connect()
    try:
        return con.from_arrow(table).df()
    finally:
        con.close()


def _is_nested(data_type: Any) -> bool:
    from pyspark.sql.types import ArrayType, MapType, StructType

    return isinstance(data_type, (ArrayType, MapType, StructType))


def _exportable(column: str, data_type: Any) -> str:
    """The projection that hands ``column`` to Python without losing anything (see :class:`Rows`)."""
    from pyspark.sql import types as T

    ref = f"`{column}`"
    if _is_nested(data_type):
        return f"to_json({ref}) AS {ref}"  # exact numbers inside lists and structs, too
    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
        return f"replace(CAST({ref} AS STRING), ' ', 'T') AS {ref}"
    if isinstance(
        data_type, (T.DateType, T.DayTimeIntervalType, T.YearMonthIntervalType, T.CalendarIntervalType)
    ):
        return f"CAST({ref} AS STRING) AS {ref}"
    return ref


def _python_values(row: Any, nested: list[int]) -> tuple[Any, ...]:
    from decimal import Decimal

    values = [bytes(v) if isinstance(v, bytearray) else v for v in row]
    for i in nested:
        if values[i] is not None:
            values[i] = json.loads(values[i], parse_float=Decimal)
    return tuple(values)


def _query_failed(exc: Exception) -> StackmlError:
    """Spark's error as one line in our words: the first line of its message, without the query plan."""
    text = str(getattr(exc, "java_exception", None) or exc)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    first = re.sub(r"^org\.apache\.spark\.\S+: ", "", first)
    return InputError(
        f"The query failed: {first[:400]}",
        hint="Check the SQL (Spark SQL; pass dialect='duckdb' to write it in DuckDB's dialect).",
    )
