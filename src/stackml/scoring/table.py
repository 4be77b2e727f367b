"""Scoring a whole warehouse table with a registered model, in chunks, written atomically.

The table is read in chunks of at most ``chunk`` rows (the warehouse may hand over fewer: DuckDB's batches
of a large result hold about 60,000); each chunk is scored with one model call and appended to a
Parquet file on local disk, so memory holds one chunk whatever the table's size. Only when every chunk is
scored does the file replace the output table, in one transaction (the warehouse's bulk load): a failed or
interrupted run leaves the old output as it was, never half a table.

Example:
    >>> from stackml.scoring import score_table
    >>> with connect() as wh:  # doctest: +SKIP
    ...     score_table(wh, "customers", "segments@champion", out="customers_scored").rows
    2000
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from stackml.errors import InputError, raise_if_problems

if TYPE_CHECKING:
    from stackml.config import Settings
    from stackml.warehouse import Warehouse

__all__ = ["ScoredTable", "score_table", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 100_000
# The engine's block cache while a table is scored: without a bound DuckDB keeps every block it scanned (up
# to 80% of the machine's memory), and memory grows with the table; beyond it DuckDB evicts and spills.
CACHE_LIMIT_MB = 64
OUTPUT_PREFIX = "prediction_"  # an output column whose name the input table already uses gets this prefix


@dataclass(frozen=True)
class ScoredTable:
    """What :func:`score_table` wrote."""

    table: str
    out: str
    model: str
    version: int
    rows: int
    chunks: int
    seconds: float
    prediction_columns: list[str]

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "out": self.out,
            "model": self.model,
            "version": self.version,
            "rows": self.rows,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "prediction_columns": self.prediction_columns,
        }


def score_table(
    warehouse: Warehouse,
    table: str,
    model: str,
    *,
    out: str | None = None,
    chunk: int = DEFAULT_CHUNK,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoredTable:
    """Score every row of ``table`` with ``model`` (``name``, ``name@alias`` or ``name/version``) into ``out``
    (default ``<table>_scored``): the table's columns, then the model's output columns.

    Args:
        warehouse: where the table is and the output goes.
        table: the rows to score; it must hold the columns of the model's signature (others are kept, not
            passed to the model).
        model: the registered model.
        out: the output table, replaced atomically.
        chunk: the most rows per model call (and in memory at once).
        settings: where the registry is.
        progress: called as ``progress(rows_done, rows_total)`` after each chunk.

    Raises:
        InputError: no such table, missing columns, ``out`` equal to ``table``, a bad ``chunk``, or a model
            that returns other than one row per record (a forecaster: use its own command).
    """
    from stackml import tracking
    from stackml.warehouse.identifiers import fold_table_name

    out = fold_table_name(out or f"{table}_scored")
    problems = []
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        problems.append(f"'chunk' must be a positive number of rows, got {chunk!r}")
    if out == fold_table_name(table):
        problems.append(f"the output table is the input table ('{out}'); name another with --out")
    raise_if_problems(problems, what="the scoring call", hint="stackml score table --table T --model NAME")
    warehouse.require_table(table)
    version = tracking.resolve_version(model, settings=settings)
    loaded = tracking.load_model(f"models:/{version.name}/{version.version}", settings=settings)
    inputs = _input_columns(loaded)
    columns = list(warehouse.schema(table))
    missing = [c for c in inputs if c not in columns]
    if missing:
        raise InputError(
            f"The table '{table}' lacks the column(s) {missing} that '{version.name}' v{version.version} "
            f"takes (it has {columns}).",
            hint="Score a table with the model's input columns, or rename them in a view.",
        )
    total = warehouse.row_count(table)
    with warehouse.bounded_cache(CACHE_LIMIT_MB):
        return _score_all(warehouse, table, out, loaded, version, inputs, columns, total, chunk, progress)


def _score_all(
    warehouse: Warehouse,
    table: str,
    out: str,
    loaded: Any,
    version: Any,
    inputs: list[str],
    columns: list[str],
    total: int,
    chunk: int,
    progress: Callable[[int, int], None] | None,
) -> ScoredTable:
    from stackml.warehouse.identifiers import quote_table

    started = time.perf_counter()
    done, chunks, predicted = 0, 0, []
    with tempfile.TemporaryDirectory(prefix="stackml-score-") as folder:
        path = Path(folder) / "scored.parquet"
        writer = None
        try:
            with warehouse.stream(f"SELECT * FROM {quote_table(table)}", batch_rows=chunk) as rows:
                for batch in rows:
                    frame = pd.DataFrame.from_records(batch, columns=rows.columns)
                    scored, predicted = _score_chunk(loaded, frame, inputs or columns, version, done)
                    writer = _append(writer, path, scored)
                    done, chunks = done + len(frame), chunks + 1
                    if progress is not None:
                        progress(done, total)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:  # an empty table: the output is empty too, with the input's columns
            warehouse.ingest(pd.DataFrame(columns=columns), out, if_exists="replace")
        else:
            warehouse.ingest(path, out, if_exists="replace")
    return ScoredTable(
        table=table,
        out=out,
        model=version.name,
        version=version.version,
        rows=done,
        chunks=chunks,
        seconds=time.perf_counter() - started,
        prediction_columns=predicted,
    )


def _input_columns(loaded: Any) -> list[str]:
    """The columns of the model's input signature (empty without one: every column is passed)."""
    schema = loaded.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        return []
    return list(schema.input_names())


def _score_chunk(
    loaded: Any, frame: pd.DataFrame, inputs: list[str], version: Any, first_row: int = 0
) -> tuple[pd.DataFrame, list]:
    from stackml.tracking._setup import mlflow_module

    mlflow = mlflow_module()
    try:
        predictions = loaded.predict(frame[inputs])
    except mlflow.exceptions.MlflowException as exc:  # the signature refused the chunk's values
        # MLflow prints the whole chunk before its reason; keep the reason
        reason = str(getattr(exc, "message", exc)).rsplit("Error:", 1)[-1].strip()[:300]
        raise InputError(
            f"'{version.name}' v{version.version} refused rows {first_row:,}-{first_row + len(frame) - 1:,} "
            f"of the table: {reason}",
            hint="Fix or cast those values (the signature gives each column's type); nothing was written.",
        ) from exc
    if not isinstance(predictions, pd.DataFrame):
        predictions = pd.DataFrame({"prediction": list(pd.Series(predictions))})
    if len(predictions) != len(frame):
        raise InputError(
            f"'{version.name}' v{version.version} returned {len(predictions)} rows for {len(frame)} records; "
            "table scoring needs one prediction per row.",
            hint="Forecasters answer several rows per series: use `stackml forecast` for them.",
        )
    renamed = {c: (f"{OUTPUT_PREFIX}{c}" if c in frame.columns else c) for c in predictions.columns}
    predictions = predictions.rename(columns=renamed).reset_index(drop=True)
    return pd.concat([frame.reset_index(drop=True), predictions], axis=1), list(predictions.columns)


def _append(writer: Any, path: Path, frame: pd.DataFrame) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema)
    writer.write_table(table.cast(writer.schema) if table.schema != writer.schema else table)
    return writer
