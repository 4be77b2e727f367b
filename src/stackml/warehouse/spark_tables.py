"""The folder of a Spark warehouse: one folder of Parquet files per table, one folder inside it per load.

``<path>/<table>`` (``<path>/analytics.sales`` for a schema-qualified name) holds a ``batch-*`` folder per
load. A load writes its files beside the tables, in a folder whose name starts with '.', which listings and
Spark skip, and is renamed into place once complete: a new table appears whole, a replaced table is swapped
for the new one only when the new data is complete, an append adds its batch folder in one rename, and a
failed load leaves nothing behind. Any Parquet reader takes the files (DuckDB:
``read_parquet('<path>/<table>/*/*.parquet')``).

Files and DataFrames are parsed by the strict DuckDB reader every engine shares, so a file loads with the same
types and fails with the same one-line error as on DuckDB and PostgreSQL, and DuckDB writes the Parquet file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stackml._folders import replace_folder
from stackml.errors import IdentifierError, InputError
from stackml.warehouse.identifiers import quote_column, validate_table_name
from stackml.warehouse.sources import explain_read_error, select_source

__all__ = ["data_files", "remove_table", "staged_load", "table_folders", "write_parquet"]

_LOAD_HINT = "With --if-exists append, the file's columns must exist in the table with compatible types."
# DuckDB types that Spark cannot read from Parquet -> what a load writes instead (the value kept whole).
_SPARK_READABLE = {
    "TIMESTAMP_NS": "TIMESTAMP",  # Spark holds microseconds, as PostgreSQL does
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_S": "TIMESTAMP",
    "UTINYINT": "SMALLINT",
    "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT",
    "UBIGINT": "DECIMAL(38,0)",
    "HUGEINT": "DECIMAL(38,0)",
    "UHUGEINT": "DECIMAL(38,0)",
    "UUID": "VARCHAR",
    "TIME": "VARCHAR",
    "TIME WITH TIME ZONE": "VARCHAR",
    "INTERVAL": "VARCHAR",
    "BIT": "VARCHAR",
}


def table_folders(root: Path) -> dict[str, Path]:
    """Table name -> folder, for each table folder in ``root``."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return {}
    tables = {}
    for entry in entries:
        if entry.name.startswith(".") or entry.name != entry.name.lower() or not entry.is_dir():
            continue  # a load in progress, a table being removed, or a file
        try:
            tables[validate_table_name(entry.name)] = Path(entry.path)
        except IdentifierError:
            continue  # not one of ours: a folder a person put there
    return tables


def data_files(folder: Path) -> list[Path]:
    """The Parquet files of the table in ``folder`` (Spark's checksums and markers start with '.' or '_')."""
    return sorted(f for f in folder.glob("*/*.parquet") if not f.name.startswith((".", "_")))


@contextmanager
def staged_load(root: Path, table: str, mode: str) -> Iterator[Path]:
    """A fresh folder (not yet created) for one load's Parquet files; when the block succeeds, the load is
    renamed into place as ``mode`` says (create, replace or append); in any case nothing else is left."""
    staged = root / f".stackml-load-{uuid.uuid4().hex[:12]}"
    batch = f"batch-{uuid.uuid4().hex[:12]}"
    try:
        yield staged / batch
        target = root / table
        if mode == "append":
            os.rename(staged / batch, target / batch)
        elif mode == "create":
            os.rename(staged, target)
        else:
            replace_folder(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def remove_table(root: Path, table: str) -> None:
    gone = root / f".stackml-old-{uuid.uuid4().hex[:12]}"
    os.rename(root / table, gone)  # one rename: no reader sees a half-deleted table
    shutil.rmtree(gone, ignore_errors=True)


def write_parquet(source: Any, fmt: str, folder: Path, table: str, append_to: Path | None) -> int:
    """Parse ``source`` (a file of format ``fmt`` or a DataFrame) and write it into ``folder`` as one Parquet
    file, in types Spark reads (when appending: as the columns of the table in ``append_to``); the rows
    written."""
    import duckdb
    import pyarrow.parquet as pq

    reader = duckdb.connect()
    try:
        reader.execute("SET TimeZone = 'UTC'")  # a cast to a table's TIMESTAMPTZ reads local times as UTC
        if fmt == "dataframe":
            reader.register("__source", source)
            relation = reader.sql("SELECT * FROM __source")
        else:
            relation = reader.sql(select_source(fmt, source), params=[str(source)])
        target = None if append_to is None else _parquet_types(reader, append_to)
        relation = relation.project(_projection(relation, target, table))
        folder.mkdir(parents=True)
        file = folder / f"part-{uuid.uuid4().hex}.parquet"
        relation.to_parquet(str(file))
    except duckdb.Error as exc:
        raise explain_read_error(exc, source if fmt != "dataframe" else "the DataFrame") from exc
    finally:
        reader.close()
    return pq.read_metadata(file).num_rows


def _parquet_types(reader: Any, folder: Path) -> list[tuple[str, str]]:
    """The columns and DuckDB types of the table in ``folder``; every load of a table is written in them."""
    described = reader.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(data_files(folder)[0])])
    return [(row[0], row[1]) for row in described.fetchall()]


def _projection(relation: Any, target: list[tuple[str, str]] | None, table: str) -> str:
    """The columns a load writes: each in a type Spark reads, or for an append, the table's columns matched
    by name (those the source lacks are NULL)."""
    types = dict(zip(relation.columns, map(str, relation.types)))
    if target is None:
        return ", ".join(
            f"CAST({quote_column(c)} AS {_SPARK_READABLE[t]}) AS {quote_column(c)}"
            if t in _SPARK_READABLE
            else quote_column(c)
            for c, t in types.items()
        )
    by_name = {c.lower(): c for c in types}
    unknown = [c for c in types if c.lower() not in {name.lower() for name, _ in target}]
    if unknown:
        raise InputError(
            f"Loading into '{table}' failed: the table has no column(s) {unknown} "
            f"(it has {[name for name, _ in target]}).",
            hint=_LOAD_HINT,
        )
    return ", ".join(
        f"CAST({quote_column(by_name[name.lower()]) if name.lower() in by_name else 'NULL'} AS {kind}) "
        f"AS {quote_column(name)}"
        for name, kind in target
    )
