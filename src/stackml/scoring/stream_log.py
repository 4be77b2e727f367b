"""The stream workers' prediction log: each batch written before its entries are acknowledged, once per id.

Unlike the HTTP service's log (queued, written behind the answer), a stream worker writes a batch's rows
synchronously: an entry is acknowledged only once its row is in the table, so an entry is never lost,
and a failed write just leaves the entries pending. Rows are keyed by the message id (``request_id``)
and the model: an entry scored twice (its first worker died after writing the log and before
acknowledging) is inserted once. The check looks back only as far as the oldest entry of the batch was
enqueued (less a margin for clock skew), so it stays cheap on a large table: the rows it must find were
written after that.

Several worker processes may share the table. On PostgreSQL their inserts take turns under a
transaction-scoped advisory lock (two workers holding the same entry cannot both insert it) and the
connection is kept; a DuckDB file admits one writing process, so it is opened for each batch and a
worker that finds it locked waits and tries again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stackml.serving.prediction_log import COLUMNS, create_log_table
from stackml.warehouse.identifiers import quote_table, validate_table_name

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = ["StreamLog", "SKEW_MARGIN_S"]

SKEW_MARGIN_S = 600.0  # clocks of the broker and the workers may differ this much


class StreamLog:
    """Idempotent, synchronous writer of stream predictions to the prediction log table.

    Args:
        warehouse_url: the warehouse holding the table.
        table: the table (created when missing; the service's ``prediction_log`` by default).

    Example:
        >>> log = StreamLog("postgresql://postgres@127.0.0.1:5432/test")  # doctest: +SKIP
        >>> row = ("e1", 0, "churn", 3, "champion", 1.7e9, '{"x": 1}', "0.2")
        >>> log.write([row], since_s=1.7e9)  # doctest: +SKIP
        1
    """

    def __init__(self, warehouse_url: str, table: str = "prediction_log") -> None:
        from stackml.warehouse import connect

        self.table = validate_table_name(table)
        self.warehouse_url = warehouse_url
        self._connect = connect
        self._wh: Warehouse | None = None
        self._prepared = False
        self.written = 0

    def write(self, rows: Sequence[tuple[Any, ...]], since_s: float) -> int:
        """Insert the rows (``COLUMNS`` order, ``logged_at`` in seconds since the epoch) whose
        ``(request_id, model_name)`` is not in the table since ``since_s``; all or nothing.

        Returns:
            The rows inserted.

        Raises:
            Whatever the warehouse raises (unreachable, locked): nothing was written; try again.
        """
        if not rows:
            return 0
        wh = self._connection()
        try:
            since = since_s - SKEW_MARGIN_S
            if wh.dialect == "postgres":
                inserted = self._insert_postgres(wh, rows, since)
            else:
                inserted = self._insert_duckdb(wh, rows, since)
        except BaseException:
            self._drop()
            raise
        if wh.dialect != "postgres":
            self._drop()  # free the DuckDB file for the other workers
        self.written += inserted
        return inserted

    def close(self) -> None:
        self._drop()

    # -- engines ------------------------------------------------------------------------------------------
    def _insert_postgres(self, wh: Warehouse, rows: Sequence[tuple[Any, ...]], since: float) -> int:
        import json

        table, columns = quote_table(self.table), ", ".join(COLUMNS)
        # The batch travels as one JSON parameter: psycopg adapts a list of values in Python, JSON is
        # encoded in C and parsed by the server (as jsonb: once, not once per field), several times faster
        # for a batch of hundreds of rows.
        values = (
            "r->>0, (r->>1)::int, r->>2, (r->>3)::int, r->>4, to_timestamp((r->>5)::float8), r->>6, r->>7"
        )
        con = wh.connection
        with con.transaction(), con.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"stackml-stream-log:{self.table}"])
            cur.execute(
                f"INSERT INTO {table} ({columns}) SELECT * FROM (SELECT {values} "
                "FROM jsonb_array_elements(%s::jsonb) AS r) AS s"
                f"({columns}) WHERE NOT EXISTS (SELECT 1 FROM {table} AS p "
                "WHERE p.request_id = s.request_id AND p.model_name = s.model_name AND p.logged_at >= %s)",
                [json.dumps(list(rows)), _timestamp(since)],
            )
            return max(cur.rowcount, 0)

    def _insert_duckdb(self, wh: Warehouse, rows: Sequence[tuple[Any, ...]], since: float) -> int:
        import pandas as pd

        frame = pd.DataFrame.from_records(list(rows), columns=list(COLUMNS))
        frame["logged_at"] = pd.to_datetime(frame["logged_at"], unit="s", utc=True)
        table, columns = quote_table(self.table), ", ".join(COLUMNS)
        con = wh.connection
        con.register("stackml_stream_batch", frame)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                con.execute(
                    f"INSERT INTO {table} ({columns}) SELECT {columns} FROM stackml_stream_batch AS s "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS p WHERE p.request_id = s.request_id "
                    "AND p.model_name = s.model_name AND p.logged_at >= ?)",
                    [_timestamp(since)],
                )
                after = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                raise
        finally:
            con.unregister("stackml_stream_batch")
        return int(after - before)

    # -- connection ---------------------------------------------------------------------------------------
    def _connection(self) -> Warehouse:
        if self._wh is None:
            wh = self._connect(self.warehouse_url)
            try:
                if not self._prepared or wh.dialect != "postgres":
                    create_log_table(wh, self.table)
                    if wh.dialect == "postgres":
                        # The de-duplicating insert looks rows up by id: without an index it reads the table.
                        index = quote_table(f"{self.table.rsplit('.', 1)[-1]}_request_id_idx")
                        wh.execute(
                            f"CREATE INDEX IF NOT EXISTS {index} ON {quote_table(self.table)} "
                            "(request_id, model_name)"
                        )
                    self._prepared = True
            except BaseException:
                with contextlib.suppress(Exception):
                    wh.close()
                raise
            self._wh = wh
        return self._wh

    def _drop(self) -> None:
        if self._wh is not None:
            with contextlib.suppress(Exception):
                self._wh.close()
            self._wh = None


def _timestamp(seconds: float) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc)
