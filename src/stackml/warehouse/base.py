"""The warehouse interface every engine implements."""

from __future__ import annotations

import abc
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stackml.errors import InputError, TableExistsError, TableNotFoundError
from stackml.warehouse.identifiers import fold_table_name
from stackml.warehouse.params import Params

if TYPE_CHECKING:
    import pandas as pd

IfExists = Literal["fail", "replace", "append"]
IF_EXISTS_CHOICES = ("fail", "replace", "append")
SOURCE_FORMATS = ("csv", "parquet")
#: rows per batch when a result is streamed (:meth:`Warehouse.stream`)
STREAM_BATCH_ROWS = 10_000
READ_ONLY_HINT = "The warehouse was opened read-only; with `stackml sql`, pass --write to change it."


def redact_url(url: str) -> str:
    """``url`` without its password, safe to print."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def require_sql(sql: object) -> str:
    """Return ``sql`` when it holds a statement, else raise: an empty query is a mistake, not a no-op."""
    if not isinstance(sql, str) or not sql.strip():
        raise empty_query_error(sql)
    return sql


def empty_query_error(sql: object) -> InputError:
    """The error for a query without a statement (empty, blank or only comments)."""
    return InputError(
        f"The query holds no SQL statement (got {sql!r}).",
        hint='Pass the SQL to run, e.g. stackml sql "SELECT * FROM sales LIMIT 5".',
    )


class Rows:
    """A query's result, read in batches so memory stays flat whatever its size; use it as a context manager.

    Attributes:
        columns: the column names, in order (duplicates kept, as the query returned them).
        types: the engine's type of each column, as text.

    Iterating yields lists of row tuples. Values are exact: ``None``, ``bool``, ``int``, ``float``,
    ``decimal.Decimal``, ``str``, ``bytes``, ``uuid.UUID``, lists and dicts; dates, times, timestamps and
    intervals arrive as the engine's own text (ISO 8601 for timestamps, with a ``T``), which keeps every
    digit and the values Python cannot hold (``infinity``, nanoseconds, months in an interval).
    """

    def __init__(
        self,
        columns: list[str],
        types: list[str],
        batches: Iterator[list[tuple[Any, ...]]],
        close: Callable[[], None],
    ) -> None:
        self.columns, self.types = columns, types
        self._batches, self._close = batches, close

    def __iter__(self) -> Iterator[list[tuple[Any, ...]]]:
        return self._batches

    def __enter__(self) -> Rows:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()


@dataclass(frozen=True)
class IngestResult:
    """What a load did: the table, the rows it now holds from this load, and how long it took."""

    table: str
    rows: int
    seconds: float
    mode: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def source_format(source: object) -> str:
    """Classify an ingest source as ``dataframe``, ``csv`` or ``parquet``, checking that a file exists and
    that its start is what its name says (see :func:`stackml.warehouse.files.inspect_file`)."""
    if not isinstance(source, (str, Path)):
        import pandas as pd  # only here: a file path is the common case and pandas costs ~0.5 s to import

        if isinstance(source, pd.DataFrame):
            from stackml.warehouse.files import duplicated_names_problem

            problem = duplicated_names_problem([str(c) for c in source.columns])
            if problem:
                raise InputError(
                    f"The DataFrame has {problem}.", hint="Rename the columns so that each name is unique."
                )
            return "dataframe"
        raise InputError(
            f"Cannot ingest an object of type {type(source).__name__}.",
            hint="Pass a path to a .csv or .parquet file, or a pandas DataFrame.",
        )
    path = Path(source)
    if not path.exists():
        raise InputError(
            f"File not found: '{source}'.", hint="Check the path; it is resolved from the current directory."
        )
    if path.is_dir():
        raise InputError(f"'{source}' is a directory, not a file.", hint="Pass a .csv or .parquet file.")
    if path.stat().st_size == 0:
        raise InputError(f"'{source}' is empty (0 bytes).", hint="Pass a file with a header row and data.")
    suffixes = [s.lower() for s in path.suffixes]
    fmt = (
        "parquet"
        if ".parquet" in suffixes or ".pq" in suffixes
        else "csv"
        if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes
        else None
    )
    if fmt is not None:
        from stackml.warehouse.files import inspect_file

        inspect_file(path, fmt)  # the header: compression, encoding, delimiter, unique column names
        return fmt
    raise InputError(
        f"Cannot tell the format of '{source}' from its extension.",
        hint="Name the file *.csv (optionally .csv.gz) or *.parquet.",
    )


class Warehouse(abc.ABC):
    """A small, engine-neutral interface to a SQL warehouse.

    Use :func:`stackml.warehouse.connect` to get one. Placeholders are ``?`` with a list or ``:name`` with a
    mapping on every engine; values are always bound, never formatted into SQL.
    """

    dialect: str = ""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only

    # -- queries -------------------------------------------------------------------------------
    @abc.abstractmethod
    def query(self, sql: str, params: Params = None, *, dialect: str | None = None) -> pd.DataFrame:
        """Run ``sql`` and return the result as a DataFrame.

        ``dialect`` names the SQL dialect the text is written in (e.g. ``"duckdb"``); when it differs from
        this engine's, sqlglot translates it first, so a pipeline can write its SQL once.
        """

    @abc.abstractmethod
    def execute(self, sql: str, params: Params = None, *, dialect: str | None = None) -> None:
        """Run a statement that returns no rows, in its own transaction."""

    @abc.abstractmethod
    def stream(self, sql: str, params: Params = None, *, batch_rows: int = STREAM_BATCH_ROWS) -> Rows:
        """Run ``sql`` (one or more statements; the last one's rows are returned) and read the result in
        batches of ``batch_rows`` rows.

        On a read-only warehouse only queries run (``SELECT``, ``WITH``, ``VALUES``, ``SHOW``,
        ``DESCRIBE``, ``EXPLAIN``); anything else raises :class:`~stackml.errors.InputError` before it runs.

        Example:
            >>> from stackml.warehouse import connect
            >>> with connect("duckdb:///:memory:") as wh, wh.stream("SELECT 1e-12 AS x") as rows:
            ...     rows.columns, [batch for batch in rows]
            (['x'], [[(1e-12,)]])
        """

    @abc.abstractmethod
    def tables(self) -> list[str]:
        """Names of the user tables, sorted; tables outside the default schema are ``schema.table``."""

    @abc.abstractmethod
    def schema(self, table: str) -> dict[str, str]:
        """Column name -> engine type of ``table``, in column order."""

    #: whether two table names differing only in case are two tables (PostgreSQL, for quoted names)
    case_sensitive_names: bool = False

    def has_table(self, table: str) -> bool:
        """Whether ``table`` exists; names are folded to lowercase, as SQL does (see
        :func:`~stackml.warehouse.identifiers.fold_table_name`)."""
        name, known = fold_table_name(table), self.tables()
        return name in (known if self.case_sensitive_names else [t.lower() for t in known])

    def row_count(self, table: str) -> int:
        from stackml.warehouse.identifiers import quote_table

        self.require_table(table)
        return int(self.query(f"SELECT count(*) AS n FROM {quote_table(table)}").iloc[0, 0])

    # -- loading -------------------------------------------------------------------------------
    def ingest(self, source: Any, table: str, if_exists: IfExists = "fail") -> IngestResult:
        """Load a CSV or Parquet file, or a DataFrame, into ``table`` through the engine's bulk path.

        Args:
            source: path to ``.csv``/``.csv.gz``/``.parquet``, or a pandas DataFrame.
            table: target table, validated (``name`` or ``schema.name``) and stored in lowercase, as SQL
                folds names (``result.table`` says the stored name).
            if_exists: ``"fail"`` (default) refuses an existing table; ``"replace"`` swaps in the new data
                atomically (a failed load leaves the old table untouched); ``"append"`` adds rows by column
                name.

        Example:
            >>> from stackml.warehouse import connect
            >>> import pandas as pd
            >>> wh = connect("duckdb:///:memory:")
            >>> wh.ingest(pd.DataFrame({"a": [1, 2]}), "t").rows
            2
        """
        table = fold_table_name(table)
        if if_exists not in IF_EXISTS_CHOICES:
            raise InputError(
                f"if_exists must be one of {list(IF_EXISTS_CHOICES)}, got {if_exists!r}.",
                hint="Use 'replace' to overwrite the table or 'append' to add rows.",
            )
        fmt = source_format(source)
        exists = self.has_table(table)
        if exists and if_exists == "fail":
            raise TableExistsError(
                f"Table '{table}' already exists in {self.redacted_url()}.",
                hint="Pass if_exists='replace' (CLI: --if-exists replace) to overwrite it "
                "or 'append' to add rows.",
            )
        started = time.perf_counter()
        mode = "append" if exists and if_exists == "append" else ("replace" if exists else "create")
        rows = self._load(source, fmt, table, mode)
        return IngestResult(table=table, rows=rows, seconds=time.perf_counter() - started, mode=mode)

    @abc.abstractmethod
    def _load(self, source: Any, fmt: str, table: str, mode: str) -> int:
        """Load ``source`` into ``table`` (``mode`` is create, replace or append) in one transaction."""

    # -- memory --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def bounded_cache(self, limit_mb: int) -> Iterator[None]:
        """Keep the engine's in-process cache of table blocks under ``limit_mb`` inside the block.

        A long scan (scoring a whole table) would otherwise leave the engine caching the table's blocks up
        to its own limit (DuckDB: 80% of the machine's memory), so this process's memory grows with the
        table. Engines that cache nothing in this process (PostgreSQL) ignore it.
        """
        yield

    # -- lifecycle -----------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def redacted_url(self) -> str:
        """The URL without a password, safe to print."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.redacted_url()!r})"

    def require_table(self, table: str) -> None:
        """Raise :class:`TableNotFoundError`, naming the known tables, when ``table`` does not exist."""
        if not self.has_table(table):
            known = self.tables()
            raise TableNotFoundError(
                f"Table '{table}' does not exist in {self.redacted_url()} (tables: {known or 'none'}).",
                hint="Load it first with `stackml ingest PATH --table NAME`, or check the spelling.",
            )

    def _translate(self, sql: str, dialect: str | None) -> str:
        if dialect is None or dialect == self.dialect:
            return sql
        import sqlglot

        from stackml.warehouse.params import protect_placeholders, restore_placeholders

        try:
            translated = sqlglot.transpile(protect_placeholders(sql), read=dialect, write=self.dialect)
            return restore_placeholders(";\n".join(translated))
        except sqlglot.errors.ParseError as exc:
            raise InputError(
                f"Cannot parse the {dialect} SQL: {exc}", hint="Check the query syntax."
            ) from exc
