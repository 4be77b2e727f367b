"""The prediction log: every prediction lands in a warehouse table, written in batches off the request path.

A request appends its entry to this process's local journal file (one JSON line, a ``write`` without
``fsync``: the kernel keeps it even if the process is killed with SIGKILL) and to an in-memory queue,
before its answer leaves. One writer thread gathers the queue into batches (by size or age), starts a new
journal, appends the batch to the table through the warehouse's bulk path and deletes the journal that
held it. While the warehouse is unreachable that journal becomes a spill file (fsynced); once the
warehouse is back, spill files, and the journals of processes that died, are replayed before new rows
with a de-duplicating insert, so a batch whose first write was in doubt is never counted twice.
Shutdown drains the queue. No answered prediction is lost short of losing the local disk (a power cut
can lose the journal lines of the last second that the kernel had not yet written out).

The writer holds one warehouse connection for the life of the service: DuckDB admits a single writing
process, and the service is that process. Other processes of the same service (several workers, a
second instance on the same home) spill while they cannot get the file; whoever holds it replays
their spill files too, so every row still reaches the table.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackml.warehouse.identifiers import quote_table, validate_table_name

if TYPE_CHECKING:
    import pandas as pd

    from stackml.warehouse import Warehouse

__all__ = ["PredictionLog", "LogStats", "COLUMNS", "create_log_table"]

log = logging.getLogger(__name__)

COLUMNS = (
    "request_id",
    "row_index",
    "model_name",
    "model_version",
    "model_alias",
    "logged_at",
    "inputs",
    "outputs",
)
# Written in the SQL that DuckDB and PostgreSQL share; inputs and outputs are JSON text.
_DDL = (
    "CREATE TABLE IF NOT EXISTS {table} ("
    "request_id VARCHAR NOT NULL, row_index INTEGER NOT NULL, model_name VARCHAR NOT NULL, "
    "model_version INTEGER NOT NULL, model_alias VARCHAR, logged_at TIMESTAMP WITH TIME ZONE NOT NULL, "
    "inputs VARCHAR NOT NULL, outputs VARCHAR)"
)
SPILL_GLOB = "spill-*.jsonl"
JOURNAL_GLOB = "journal-*.jsonl"
WHOLE_REQUEST = -1  # row_index of a row holding a whole request whose outputs do not pair with its inputs


def create_log_table(wh: Warehouse, table: str) -> None:
    """Create the prediction log table when it is missing (the same table the service and the stream
    workers write)."""
    wh.execute(_DDL.format(table=quote_table(validate_table_name(table))))


@dataclass(frozen=True)
class _Entry:
    request_id: str
    model_name: str
    model_version: int
    model_alias: str
    logged_at_us: int  # microseconds since the epoch: the tables' precision, and exact in a spill file
    records: Sequence[Any]
    predictions: Any


@dataclass(frozen=True)
class LogStats:
    """State of the log, for ``/health`` and ``/metrics``.

    Attributes:
        queued: requests waiting for the writer.
        written_rows: rows appended to the table by this process.
        spilled_rows: rows this process wrote to its spill file.
        replayed_rows: spilled rows (of any process) this process moved into the table.
        spill_files: spill files waiting in the spill folder.
        spill_bytes: their total size.
        warehouse_ok: whether the last attempt to use the warehouse succeeded.
        last_error: the last warehouse error, if the last attempt failed.
    """

    queued: int
    written_rows: int
    spilled_rows: int
    replayed_rows: int
    spill_files: int
    spill_bytes: int
    warehouse_ok: bool
    last_error: str | None


class PredictionLog:
    """Batched, spill-backed writer of the ``prediction_log`` table.

    Args:
        warehouse_url: where the table lives (DuckDB file or PostgreSQL).
        spill_dir: folder for spill files while the warehouse is down.
        table: table name, created when missing.
        batch_size: requests gathered before the writer is woken early (each request gives at least one
            row); otherwise it writes whatever has gathered every ``flush_interval_s``.
        flush_interval_s: longest a row waits in memory.
        retry_interval_s: pause between attempts to reach a warehouse that was down.
        hold_connection: keep the connection between batches (the default). False reopens the warehouse
            for each batch, so other processes can open a DuckDB file in between, at the price of an open
            and a checkpoint per batch (tens of milliseconds).
        connect: opens a warehouse from a URL (``stackml.warehouse.connect``).

    Example:
        >>> plog = PredictionLog("duckdb:///:memory:", Path("/tmp/spill"))  # doctest: +SKIP
        >>> plog.start()  # doctest: +SKIP
        >>> plog.submit("r1", "demand", 3, "champion", [{"x": 1}], [2.0])  # doctest: +SKIP
        >>> plog.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        warehouse_url: str,
        spill_dir: Path,
        *,
        table: str = "prediction_log",
        batch_size: int = 500,
        flush_interval_s: float = 1.0,
        retry_interval_s: float = 2.0,
        hold_connection: bool = True,
        connect: Callable[[str], Warehouse] | None = None,
    ) -> None:
        from stackml.warehouse import connect as default_connect

        self.table = validate_table_name(table)
        self.warehouse_url = warehouse_url
        self.spill_dir = Path(spill_dir)
        self.spill_path = self.spill_dir / f"spill-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_interval_s = retry_interval_s
        self._connect = connect or default_connect
        self._hold = hold_connection
        # Requests append, the writer pops: both are atomic on a deque, and no append wakes the writer
        # (a wake per request would make the request thread and the writer trade the GIL all the time).
        self._pending: deque[_Entry] = deque()
        self._wake = threading.Event()
        self._waiters: list[threading.Event] = []
        self._waiters_lock = threading.Lock()
        self._stopping = False
        self._lock = threading.Lock()  # guards the connection: DuckDB connections are not thread-safe
        self._wh: Warehouse | None = None
        self._next_attempt = 0.0
        self._last_error: str | None = None
        self._prepared = False
        self._thread: threading.Thread | None = None
        self._closed = False
        self._written = self._spilled = self._replayed = 0
        # The journal every submit appends to; the writer swaps it for a new one with each batch it takes.
        self._journal_lock = threading.Lock()
        self._journal: tuple[Path, int] | None = None
        self._own_journals: set[str] = set()

    # -- request side -------------------------------------------------------------------------------------
    def submit(
        self,
        request_id: str,
        model_name: str,
        model_version: int,
        model_alias: str,
        records: Sequence[Any],
        predictions: Any,
        logged_at: float | None = None,
    ) -> None:
        """Queue one request's predictions; returns at once (the writer thread does the rest).

        ``logged_at`` is in seconds since the epoch (default now); it is kept to the microsecond.
        """
        entry = _Entry(
            request_id,
            model_name,
            int(model_version),
            model_alias,
            round((time.time() if logged_at is None else logged_at) * 1e6),
            records,
            predictions,
        )
        if self._closed:
            # Too late for the writer: keep the rows on disk for the next process to replay.
            self._spill(self._rows([entry]))
            return
        line = (json.dumps(entry.__dict__, default=str) + "\n").encode()
        with self._journal_lock:  # the writer takes the queue and swaps the journal under the same lock
            if self._journal is None:
                self._journal = self._open_journal()
            _write_all(self._journal[1], line)
            self._pending.append(entry)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            self._closed = self._stopping = False
            self._thread = threading.Thread(target=self._run, name="stackml-prediction-log", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Write (or spill) everything submitted so far, replaying spill files when the warehouse is up.

        Returns:
            True when done within ``timeout``.
        """
        if self._thread is None or not self._thread.is_alive():
            return False
        done = threading.Event()
        with self._waiters_lock:
            self._waiters.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue, stop the writer and close the connection (what cannot be written is spilled)."""
        if self._thread is not None and self._thread.is_alive():
            self._stopping = True
            self._wake.set()
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error(
                    "The prediction log writer did not finish within %.0f s; queued rows go to %s.",
                    timeout,
                    self.spill_path,
                )
        self._closed = True
        with self._journal_lock:
            leftovers, journal, self._journal = self._drain(), self._journal, None
        # Anything still queued (no writer, or one stuck on the warehouse) is in the journal already.
        if journal is not None:
            self._seal(journal, spilled=len(self._rows(leftovers)) if leftovers else 0)
        with self._lock:
            self._disconnect(None)

    # -- health -------------------------------------------------------------------------------------------
    def probe(self, timeout: float = 3.0) -> tuple[bool, str]:
        """Check the warehouse for real: ``SELECT 1`` on the writer's connection (connecting if needed)."""
        if not self._lock.acquire(timeout=timeout):
            return False, f"the log writer has been busy with the warehouse for over {timeout:g} s"
        try:
            wh = self._connection(force=True)
            if wh is None:
                return False, self._last_error or "not connected"
            try:
                wh.query("SELECT 1 AS ok")
            except Exception as exc:  # any driver failure means the warehouse is not usable right now
                self._disconnect(exc)
                return False, self._last_error or str(exc)
            if not self._hold:
                self._disconnect(None)
            return True, wh.redacted_url()
        finally:
            self._lock.release()

    def has_leftovers(self) -> bool:
        """Whether spill files, or journals of processes that stopped, wait to be replayed."""
        return self._has_spill()

    def stats(self) -> LogStats:
        files = list(self.spill_dir.glob(SPILL_GLOB)) if self.spill_dir.is_dir() else []
        size = 0
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                size += path.stat().st_size
        return LogStats(
            len(self._pending),
            self._written,
            self._spilled,
            self._replayed,
            len(files),
            size,
            self._last_error is None,
            self._last_error,
        )

    # -- writer thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            with self._waiters_lock:
                waiters, self._waiters = self._waiters, []
            stopping = self._stopping
            with self._journal_lock:
                entries = self._drain()
                journal = self._journal if entries else None
                if journal is not None:
                    self._journal = self._open_journal()
            if entries or waiters or stopping or self._has_spill():
                # A flush or the shutdown tries the warehouse even inside the retry interval.
                self._guarded_write(entries, journal, force=bool(waiters) or stopping)
            for done in waiters:
                done.set()
            if stopping and not self._pending:
                return

    def _guarded_write(
        self, entries: list[_Entry], journal: tuple[Path, int] | None, *, force: bool = False
    ) -> None:
        try:
            written = self._write(entries, force=force)
        except Exception:  # the writer must outlive any bug in one batch; its rows stay in the journal
            log.exception("The prediction log writer failed on a batch of %d requests.", len(entries))
            written = False
        if journal is not None:
            self._seal(journal, spilled=0 if written else len(self._rows(entries)), delete=written)

    def _write(self, entries: list[_Entry], *, force: bool = False) -> bool:
        """Write the batch to the table (replaying spill files first); False when the warehouse is down."""
        rows = self._rows(entries)
        with self._lock:
            wh = self._connection(force=force)
            if wh is not None:
                try:
                    replay_error = self._replay_guarded(wh)
                    if rows:
                        self._append(wh, rows)
                except Exception as exc:  # psycopg, DuckDB and our own errors alike mean "not now"
                    self._disconnect(exc)
                else:
                    # New rows were written even if an old spill file could not be: one bad file must not
                    # hold the log up. Its error stays visible in /health until a replay succeeds.
                    self._last_error = replay_error
                    if not self._hold:
                        self._disconnect(None)
                    return True
        return not rows

    def _replay_guarded(self, wh: Warehouse) -> str | None:
        """Replay spill files; a failure of the data (not of the connection) is returned, not raised."""
        try:
            self._replay_spills(wh)
        except Exception as exc:  # the file stays for the next attempt either way
            wh.query("SELECT 1 AS ok")  # raises when it was the connection that failed: handled as an outage
            log.warning("Prediction log: replaying spill files failed: %s", exc)
            return f"replaying spill files failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        return None

    def _connection(self, *, force: bool = False) -> Warehouse | None:
        """The open connection, or a new one; None while down (tried again after the retry interval)."""
        if self._wh is not None:
            return self._wh
        if not force and time.monotonic() < self._next_attempt:
            return None
        try:
            wh = self._connect(self.warehouse_url)
        except Exception as exc:  # ConnectionFailedError, a missing driver, a locked DuckDB file, ...
            self._disconnect(exc)
            return None
        try:
            if not self._prepared:
                # Once per process (and after each failure): a DuckDB file is reopened for every batch.
                create_log_table(wh, self.table)
                prefix = f"{self.table}_replay_"
                for leftover in (t for t in wh.tables() if t.startswith(prefix)):
                    # A replay interrupted by a crash; its spill file is still there and will run again.
                    wh.execute(f"DROP TABLE IF EXISTS {quote_table(leftover)}")
                self._prepared = True
        except Exception as exc:
            with contextlib.suppress(Exception):
                wh.close()
            self._disconnect(exc)
            return None
        self._wh, self._last_error = wh, None
        return wh

    def _disconnect(self, exc: BaseException | None) -> None:
        """Close the connection; after an error, remember it and wait the retry interval before retrying."""
        if self._wh is not None:
            with contextlib.suppress(Exception):
                self._wh.close()
            self._wh = None
        if exc is not None:
            self._prepared = False  # the table may be what went wrong (dropped, say): create it again
            self._last_error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            self._next_attempt = time.monotonic() + self._retry_interval_s
            log.warning(
                "Prediction log: warehouse unavailable (%s); spilling to %s.",
                self._last_error,
                self.spill_dir,
            )

    # -- rows ---------------------------------------------------------------------------------------------
    @staticmethod
    def _rows(entries: Sequence[_Entry]) -> list[tuple[Any, ...]]:
        """One row per record and its prediction, or one row for the whole request if they do not pair.

        Outputs with several rows per record (a forecast: ``h`` rows per ``unique_id``) pair with their
        record through the columns both share; each record's row then holds the list of its outputs.
        """
        rows = []
        dumps = json.dumps
        for e in entries:
            head = (e.model_name, e.model_version, e.model_alias, e.logged_at_us)
            preds = e.predictions
            if isinstance(preds, list) and len(preds) == len(e.records):
                pairs = zip(e.records, preds)
            else:
                pairs = _pairs_by_key(e.records, preds)
            if pairs is not None:
                for i, (record, pred) in enumerate(pairs):
                    rows.append(
                        (e.request_id, i, *head, dumps(record, default=str), dumps(pred, default=str))
                    )
            else:
                rows.append(
                    (
                        e.request_id,
                        WHOLE_REQUEST,
                        *head,
                        dumps(list(e.records), default=str),
                        dumps(preds, default=str),
                    )
                )
        return rows

    @staticmethod
    def _frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
        frame["row_index"] = frame["row_index"].astype("int32")
        frame["model_version"] = frame["model_version"].astype("int32")
        frame["logged_at"] = pd.to_datetime(frame["logged_at"], unit="us", utc=True)
        return frame

    def _append(self, wh: Warehouse, rows: list[tuple[Any, ...]]) -> None:
        wh.ingest(self._frame(rows), self.table, if_exists="append")
        self._written += len(rows)

    def _insert_new(self, wh: Warehouse, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows not already in the table, all or nothing.

        A row is identified by request id, row index and time: a client may reuse its own request ids, but
        not within the same microsecond.
        """
        staging = f"{self.table}_replay_{uuid.uuid4().hex[:12]}"
        wh.ingest(self._frame(rows), staging)
        target, source, columns = quote_table(self.table), quote_table(staging), ", ".join(COLUMNS)
        try:
            wh.execute(
                f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {source} AS s WHERE NOT EXISTS "
                f"(SELECT 1 FROM {target} AS p WHERE p.request_id = s.request_id "
                f"AND p.row_index = s.row_index "
                f"AND p.logged_at = s.logged_at)"
            )
        finally:
            wh.execute(f"DROP TABLE IF EXISTS {source}")

    # -- spill files --------------------------------------------------------------------------------------
    def _has_spill(self) -> bool:
        if not self.spill_dir.is_dir():
            return False
        if any(self.spill_dir.glob(SPILL_GLOB)):
            return True
        # The journal of a process that died (ours are skipped; a live one's is locked and waits).
        return any(p.name not in self._own_journals for p in self.spill_dir.glob(JOURNAL_GLOB))

    def _open_journal(self) -> tuple[Path, int]:
        """A new journal file, locked for as long as this process may still write or delete it."""
        import fcntl

        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"journal-{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # replayers skip it while we live; the kernel drops it if we die
        self._own_journals.add(path.name)
        return path, fd

    def _seal(self, journal: tuple[Path, int], *, spilled: int, delete: bool = False) -> None:
        """Done with a journal: delete it (its rows are in the table) or keep it as a spill file."""
        path, fd = journal
        try:
            if delete or os.fstat(fd).st_size == 0:
                os.unlink(path)
            else:
                os.fsync(fd)  # from now on it is the only copy of its rows: make it survive a power cut
                spill = path.with_name("spill-" + path.name.removeprefix("journal-"))
                os.rename(path, spill)
                self._spilled += spilled
                log.warning(
                    "Prediction log: spilled %d rows to %s (the warehouse is unavailable: %s).",
                    spilled,
                    spill,
                    self._last_error,
                    extra={"event": "spill", "rows": spilled, "file": str(spill)},
                )
        finally:
            os.close(fd)  # releases the lock: the file may be replayed now
            self._own_journals.discard(path.name)

    def _spill(self, rows: list[tuple[Any, ...]]) -> None:
        """Append rows to this process's spill file, under an exclusive lock, and fsync."""
        import fcntl

        data = "".join(json.dumps(dict(zip(COLUMNS, row)), default=str) + "\n" for row in rows).encode()
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.spill_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # A replayer may have taken and unlinked the file while we waited: then start a new one.
                try:
                    current = os.stat(self.spill_path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    current = False
                if current:
                    _write_all(fd, data)
                    os.fsync(fd)
                    self._spilled += len(rows)
                    return
            finally:
                os.close(fd)

    def _replay_spills(self, wh: Warehouse) -> None:
        """Move every spill file in the folder into the table; files another process is writing wait."""
        import fcntl

        journals = [p for p in self.spill_dir.glob(JOURNAL_GLOB) if p.name not in self._own_journals]
        for path in sorted([*self.spill_dir.glob(SPILL_GLOB), *journals]):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if os.stat(path).st_ino != os.fstat(fd).st_ino:
                        continue
                except (BlockingIOError, FileNotFoundError):
                    continue
                with os.fdopen(os.dup(fd), "rb") as fh:
                    lines = fh.read().splitlines()
                rows, bad = [], []
                for line in lines:
                    try:
                        item = json.loads(line)
                        if "records" in item:  # a journal line: one request
                            rows.extend(self._rows([_Entry(**item)]))
                        else:  # a row spilled after shutdown, or by an earlier version
                            rows.append(tuple(item[c] for c in COLUMNS))
                    except (ValueError, KeyError, TypeError):
                        bad.append(line)
                if rows:
                    self._insert_new(wh, rows)
                if bad:
                    # A line torn by a crash mid-write: keep it for a person instead of dropping it silently.
                    rejected = path.with_suffix(".rejected")
                    with rejected.open("ab") as fh:
                        fh.write(b"\n".join(bad) + b"\n")
                    log.error("Prediction log: %d unreadable spill lines kept in %s.", len(bad), rejected)
                os.unlink(path)
                self._replayed += len(rows)
                if rows:
                    log.info(
                        "Prediction log: replayed %d spilled rows from %s.",
                        len(rows),
                        path.name,
                        extra={"event": "replay", "rows": len(rows), "file": path.name},
                    )
            finally:
                os.close(fd)

    def _drain(self) -> list[_Entry]:
        entries = []
        with contextlib.suppress(IndexError):
            while True:
                entries.append(self._pending.popleft())
        return entries


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _pairs_by_key(records: Sequence[Any], predictions: Any) -> list[tuple[Any, list[Any]]] | None:
    """Each record with the output rows that share its values in the columns both have, or None.

    None when the outputs are no list of objects, share no column with the records, or some record has
    no output row: then they do not pair, and the request is logged whole.
    """
    if not (isinstance(predictions, list) and predictions and records):
        return None
    if not all(isinstance(p, dict) for p in predictions) or not all(isinstance(r, dict) for r in records):
        return None
    keys = [k for k in records[0] if k in predictions[0]]
    if not keys:
        return None
    by_key: dict[str, list[Any]] = {}
    for pred in predictions:
        by_key.setdefault(json.dumps([pred.get(k) for k in keys], default=str), []).append(pred)
    pairs = []
    for record in records:
        matched = by_key.get(json.dumps([record.get(k) for k in keys], default=str))
        if matched is None:
            return None
        pairs.append((record, matched))
    return pairs
