"""The online store: each feature view's newest row per entity, in PostgreSQL, read by key at serving time.

Layout (schema ``stackml_online``): one table per view, named as the view, with the join keys (the primary
key), one column per feature, ``event_timestamp`` and ``created_timestamp`` of the row it came from and
``materialized_at``; and ``materializations``, one row per view: the digest of the definitions the table was
built from, the watermarks the last run reached (event time, and created time where the source has one),
and when.

Materialising a view computes, on the warehouse, the newest row per entity among the source rows with
``since < event_timestamp <= until`` (ties to the newest ``created_timestamp``), copies them into a staging
table with ``COPY`` and then, in one transaction, upserts them (a stored row is replaced only by a newer one)
and moves the watermark: a reader sees the whole batch or none of it. ``since`` defaults to the last
watermark, so each run adds what arrived since the previous one. A row that arrives late, with an event time
at or before the watermark, is still read when its source has a ``created_timestamp`` later than the newest
one written so far (a late feed lands on the next run); without a created time, pass ``since`` to reach
back. When a view's definition
changes, its table is rebuilt from the whole source. :func:`materialize_view` is :func:`compute_batch`
(which only reads the online store) then :func:`write_batch`; ``FeaturesFlow`` checks each batch in between.

Reads honour the TTL: a value whose event time is older than ``now - ttl`` comes back as NULL, as the same
entity would get no value in a training set built now.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from stackml.errors import InputError, StackmlError
from stackml.features.definitions import Definitions, FeatureView
from stackml.warehouse import quote_column

if TYPE_CHECKING:
    import pandas as pd

    from stackml.config import Settings
    from stackml.warehouse import Warehouse

__all__ = [
    "SCHEMA",
    "Batch",
    "Materialized",
    "OnlineReader",
    "ViewState",
    "compute_batch",
    "materialize_view",
    "online_url",
    "stored_types",
    "view_digest",
    "view_states",
    "write_batch",
]

SCHEMA = "stackml_online"
STATE_TABLE = f"{SCHEMA}.materializations"
_TIME_COLUMNS = ("event_timestamp", "created_timestamp", "materialized_at")


@dataclass(frozen=True)
class Materialized:
    """One view's materialisation: the event-time window it read, the entities it upserted, whether the
    table was rebuilt (first run, or a changed definition) and how long it took."""

    view: str
    since: str | None
    until: str
    rows: int
    rebuilt: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ViewState:
    """What the online store holds for one view: its definition's digest, the watermark, the newest event
    time stored, the number of entities and when it was last materialised."""

    view: str
    digest: str
    watermark: datetime
    newest_event: datetime | None
    entities: int
    materialized_at: datetime


def online_url(explicit: str | None = None, settings: Settings | None = None) -> str:
    """The online store's PostgreSQL URL: ``explicit``, else the settings' ``postgres_url``, else the
    warehouse when it is PostgreSQL (``settings`` default: the process's)."""
    from stackml.config import get_settings

    if explicit:
        url = explicit
    else:
        settings = settings or get_settings()
        url = settings.postgres_url or str(settings.warehouse_url)
    if not url.startswith(("postgresql://", "postgres://")):
        raise InputError(
            f"The online feature store needs PostgreSQL, got {_redact(url)!r}.",
            hint="Pass --online postgresql://user@host:5432/db, or set STACKML_POSTGRES_URL.",
        )
    return url


def _redact(url: str) -> str:
    from stackml.warehouse.base import redact_url

    return redact_url(url)


def view_digest(defs: Definitions, view: FeatureView) -> str:
    """A digest of everything that decides a view's online table: the view, its source and join keys. The
    freshness limit is left out: it only says when to alert, so changing it keeps the table."""
    source = defs.source(view.source)
    decides = {k: v for k, v in asdict(view).items() if k != "freshness"}
    blob = json.dumps(
        {"view": decides, "source": asdict(source), "keys": defs.join_keys(view)}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def table_name(view: str) -> str:
    return f'{SCHEMA}."{view}"'


# --------------------------------------------------------------------------------------------- writing


def _create_state(con: Any) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (view text PRIMARY KEY, digest text NOT NULL, "
        "watermark timestamp NOT NULL, materialized_at timestamptz NOT NULL, rows bigint NOT NULL, "
        "seconds double precision NOT NULL, written_watermark timestamp)"
    )


def _state_row(con: Any, view: str) -> tuple[str, datetime, datetime | None] | None:
    """(digest, event-time watermark, created-time watermark) of ``view``'s last run."""
    row = con.execute(
        f"SELECT digest, watermark, written_watermark FROM {STATE_TABLE} WHERE view = %s", [view]
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def newest_rows_sql(
    defs: Definitions,
    view: FeatureView,
    types: dict[str, str],
    dialect: str,
    since: datetime | None,
    until: datetime,
    written_since: datetime | None = None,
) -> str:
    """The newest row per entity of ``view`` with ``since < event time <= until`` or, with
    ``written_since``, written after it (``created_timestamp > written_since``: a late row with an old event
    time): keys, features and both timestamps. Window features run over the whole source first (the
    projection), the window after."""
    from stackml.features.retrieval import view_projection

    keys = ", ".join(quote_column(k) for k in defs.join_keys(view))
    window = [f"p.stackml_event_ts <= {_literal(until)}"]
    if since is not None and written_since is not None:
        window.append(
            f"(p.stackml_event_ts > {_literal(since)} OR p.stackml_created_ts > {_literal(written_since)})"
        )
    elif since is not None:
        window.append(f"p.stackml_event_ts > {_literal(since)}")
    features = ", ".join(quote_column(f.name) for f in view.features)
    return (
        f"SELECT {keys}, {features}, stackml_event_ts AS event_timestamp, "
        f"stackml_created_ts AS created_timestamp FROM (SELECT p.*, ROW_NUMBER() OVER (PARTITION BY {keys} "
        "ORDER BY p.stackml_event_ts DESC, p.stackml_created_ts DESC NULLS LAST) AS stackml_rank "
        f"FROM ({view_projection(defs, view, types, dialect)}) AS p WHERE {' AND '.join(window)}) AS ranked "
        "WHERE stackml_rank = 1"
    )


def _literal(moment: datetime) -> str:
    return f"CAST('{moment.strftime('%Y-%m-%d %H:%M:%S.%f')}' AS TIMESTAMP)"


def _utc_naive(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class Batch:
    """One view's rows to materialise, computed on the warehouse and not yet written.

    Attributes:
        view: the view's name.
        since, until: the event-time window read (``since`` None: the whole source).
        rebuild: whether writing it rebuilds the online table (first run, or a changed definition).
        digest: the definition's digest the write records.
        frame: the newest row per entity: join keys, features, ``event_timestamp``, ``created_timestamp``
            (rows with a missing join key are kept here; the write leaves them out).
        types: the warehouse's type of each column of ``frame``.
        computed_at: when it was computed (naive UTC).
        ahead_rows, ahead_newest: the source rows whose event time is after ``computed_at``, and the newest
            of them; None unless counted (``count_ahead``).
        seconds: how long computing took.
        written_since: the created-time watermark the batch read from (None: the event-time window only).
    """

    view: str
    since: datetime | None
    until: datetime
    rebuild: bool
    digest: str
    frame: pd.DataFrame
    types: dict[str, str]
    computed_at: datetime
    ahead_rows: int | None = None
    ahead_newest: datetime | None = None
    seconds: float = 0.0
    written_since: datetime | None = None

    @property
    def written_until(self) -> datetime | None:
        """The newest created time in the batch: the next run reads rows written after it. (Rows written
        earlier but not chosen, an older event of the same entity, are read again: harmless.)"""
        import pandas as pd

        newest = self.frame["created_timestamp"].max() if len(self.frame) else None
        if newest is None or pd.isna(newest):
            return self.written_since
        newest = pd.Timestamp(newest).to_pydatetime()
        return newest if self.written_since is None else max(newest, self.written_since)


def materialize_view(
    defs: Definitions,
    view: FeatureView,
    wh: Warehouse,
    online: Warehouse,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Materialized:
    """Bring ``view``'s online table up to ``until`` (default now, UTC): see the module docstring. The same
    as :func:`compute_batch`, the checks of :func:`~stackml.features.validation.batch_problems` (a batch
    with rows without a join key, rows dated in the future or a column of another type than the stored one
    is refused, nothing written), then :func:`write_batch`."""
    from stackml.errors import raise_if_problems
    from stackml.features.validation import batch_problems

    batch = compute_batch(defs, view, wh, online, since=since, until=until, count_ahead=True)
    raise_if_problems(
        batch_problems(defs, batch, stored_types(online, view.name)),
        what=f"the batch of feature view '{view.name}' (nothing was written to the online store)",
        hint="Fix the source rows or the definition named above, then run again.",
    )
    return write_batch(defs, batch, online)


def compute_batch(
    defs: Definitions,
    view: FeatureView,
    wh: Warehouse,
    online: Warehouse,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    count_ahead: bool = False,
) -> Batch:
    """The newest row per entity of ``view`` with ``since < event time <= until`` (``until`` default now,
    UTC; ``since`` default the last watermark, or the whole source when the table is rebuilt), computed on
    the warehouse. It only reads the online store; :func:`write_batch` writes it. ``count_ahead`` also counts
    the source rows dated after now (a feed writing local times as UTC)."""
    from stackml.features.retrieval import source_types

    started = time.perf_counter()
    computed_at = datetime.now(timezone.utc).replace(tzinfo=None)
    until = _utc_naive(until) or computed_at
    since = _utc_naive(since)
    explicit = since is not None
    digest = view_digest(defs, view)
    state = _state_row(online.connection, view.name) if online.has_table(STATE_TABLE) else None
    exists = online.has_table(f"{SCHEMA}.{view.name}")
    rebuild = state is None or state[0] != digest or not exists
    written_since = None
    if since is None and not rebuild:
        since = state[1]  # type: ignore[index]
        # Rows that arrive late carry event times at or before the watermark; a source with a created
        # time says when each row was written, so those written since the last run are read as well.
        if defs.source(view.source).created_timestamp_field:
            written_since = state[2]  # type: ignore[index]
    if rebuild:
        since = None  # a new or changed definition: the whole source, into a fresh table
    if explicit and since is not None and since >= until:
        raise InputError(
            f"Nothing to materialise for view '{view.name}': since ({since}) is not before until ({until}).",
            hint="Pass an earlier --since, or omit it to continue from the last run.",
        )
    types = source_types(wh, defs, view.source)
    sql = newest_rows_sql(defs, view, types, wh.dialect, since, until, written_since)
    try:
        frame = wh.query(sql)
        with wh.stream(f"SELECT * FROM ({sql}) AS stackml_batch LIMIT 0") as rows:
            column_types = dict(zip(rows.columns, rows.types))
        ahead = _ahead(defs, view, types, wh, computed_at) if count_ahead else (None, None)
    except StackmlError as exc:
        raise InputError(
            f"Materialising feature view '{view.name}' failed: {exc.message}",
            hint="`stackml features apply --repo DIR` checks the definitions against the warehouse.",
        ) from exc
    return Batch(
        view.name,
        since,
        until,
        rebuild,
        digest,
        _online_frame(frame),
        column_types,
        computed_at,
        *ahead,
        seconds=time.perf_counter() - started,
        written_since=written_since,
    )


def _ahead(
    defs: Definitions, view: FeatureView, types: dict[str, str], wh: Warehouse, moment: datetime
) -> tuple[int, datetime | None]:
    """The source rows of ``view`` dated after ``moment``, and the newest of them."""
    import dataclasses

    import pandas as pd

    from stackml.features.retrieval import view_projection

    times = view_projection(defs, dataclasses.replace(view, features=()), types, wh.dialect)
    found = wh.query(
        f"SELECT count(*) AS n, max(p.stackml_event_ts) AS newest FROM ({times}) AS p "
        f"WHERE p.stackml_event_ts > {_literal(moment)}"
    )
    newest = found["newest"].iloc[0]
    return int(found["n"].iloc[0]), None if pd.isna(newest) else pd.Timestamp(newest).to_pydatetime()


def write_batch(defs: Definitions, batch: Batch, online: Warehouse) -> Materialized:
    """Write ``batch`` into the online store: ``COPY`` into a staging table, then one transaction that
    upserts it (a stored row gives way only to a newer one; the table is rebuilt first when the batch says
    so) and moves the watermark. Rows with a missing join key are left out: they cannot be read by key."""
    started = time.perf_counter()
    view = defs.view(batch.view)
    if view_digest(defs, view) != batch.digest:
        raise InputError(
            f"The definition of feature view '{view.name}' changed after its batch was computed; nothing "
            "of it was written.",
            hint="Compute the batch again with the current definitions.",
        )
    keys = defs.join_keys(view)
    con = online.connection
    _create_state(con)
    frame = batch.frame[~batch.frame[keys].isna().any(axis=1)].reset_index(drop=True)
    staging = f"__stage_{uuid.uuid4().hex[:12]}"
    if not batch.rebuild:
        # the stored table's types, so a batch of other inferred types (or none, when empty) still fits
        columns = ", ".join(quote_column(c) for c in frame.columns)
        stored = table_name(view.name)
        con.execute(f"CREATE TABLE {table_name(staging)} AS SELECT {columns} FROM {stored} WITH NO DATA")
    elif frame.empty:
        frame = frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})
    try:
        if not (frame.empty and not batch.rebuild):
            # COPY, into a table no reader knows
            online.ingest(frame, f"{SCHEMA}.{staging}", if_exists="fail" if batch.rebuild else "append")
        seconds = batch.seconds + time.perf_counter() - started
        _upsert(online, view, keys, staging, batch, len(frame), seconds)
    finally:  # also when the COPY failed half-way
        con.execute(f"DROP TABLE IF EXISTS {table_name(staging)}")
    return Materialized(
        view.name,
        None if batch.since is None else batch.since.isoformat(),
        batch.until.isoformat(),
        len(frame),
        batch.rebuild,
        round(batch.seconds + time.perf_counter() - started, 3),
    )


def stored_types(online: Warehouse, view: str) -> dict[str, str] | None:
    """Column -> PostgreSQL type of ``view``'s online table; None when it has none yet."""
    table = f"{SCHEMA}.{view}"
    return online.schema(table) if online.has_table(table) else None


def _online_frame(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    frame = frame.copy()
    for column in ("event_timestamp", "created_timestamp"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    return frame


def _upsert(
    online: Warehouse,
    view: FeatureView,
    keys: list[str],
    staging: str,
    batch: Batch,
    rows: int,
    seconds: float,
) -> None:
    rebuild = batch.rebuild
    target = table_name(view.name)
    stage = table_name(staging)
    con = online.connection
    columns = [*keys, *(f.name for f in view.features), "event_timestamp", "created_timestamp"]
    column_list = ", ".join(quote_column(c) for c in columns)
    updates = ", ".join(f"{quote_column(c)} = EXCLUDED.{quote_column(c)}" for c in columns[len(keys) :])
    key_list = ", ".join(quote_column(k) for k in keys)
    with con.transaction():
        if rebuild:
            con.execute(f"DROP TABLE IF EXISTS {target}")
            con.execute(
                f"CREATE TABLE {target} (LIKE {stage}, materialized_at timestamptz NOT NULL DEFAULT now(), "
                f"PRIMARY KEY ({key_list}))"
            )
        # A stored row gives way only to a newer one (event time, then created time): re-running a window
        # or reaching back with --since never replaces a value with an older one.
        con.execute(
            f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM {stage} "
            f"ON CONFLICT ({key_list}) DO UPDATE SET {updates}, materialized_at = now() "
            f"WHERE (EXCLUDED.event_timestamp, COALESCE(EXCLUDED.created_timestamp, '-infinity')) >= "
            f"({target}.event_timestamp, COALESCE({target}.created_timestamp, '-infinity'))"
        )
        con.execute(
            f"INSERT INTO {STATE_TABLE} AS s (view, digest, watermark, written_watermark, materialized_at, "
            "rows, seconds) VALUES (%s, %s, %s, %s, now(), %s, %s) ON CONFLICT (view) DO UPDATE SET "
            "digest = EXCLUDED.digest, watermark = GREATEST(s.watermark, EXCLUDED.watermark), "
            "written_watermark = CASE WHEN %s THEN EXCLUDED.written_watermark ELSE "
            "GREATEST(s.written_watermark, EXCLUDED.written_watermark) END, materialized_at = now(), "
            "rows = EXCLUDED.rows, seconds = EXCLUDED.seconds",
            [view.name, batch.digest, batch.until, batch.written_until, rows, seconds, rebuild],
        )


def view_states(online: Warehouse) -> dict[str, ViewState]:
    """What the online store holds, per materialised view (empty before the first run)."""
    if not online.has_table(STATE_TABLE):
        return {}
    con = online.connection
    out = {}
    for view, digest, watermark, materialized_at in con.execute(
        f"SELECT view, digest, watermark, materialized_at FROM {STATE_TABLE} ORDER BY view"
    ).fetchall():
        if not online.has_table(f"{SCHEMA}.{view}"):
            continue
        newest, entities = con.execute(
            f"SELECT max(event_timestamp), count(*) FROM {table_name(view)}"
        ).fetchone()
        out[view] = ViewState(view, digest, watermark, newest, int(entities), materialized_at)
    return out


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Group:
    """Views that share join keys, read by one query."""

    keys: tuple[str, ...]
    key_types: tuple[str, ...]
    sql: str
    outputs: tuple[str, ...]  # the feature columns the query returns, after the ordinal


class OnlineReader:
    """Reads a fixed list of features by entity key, over a small connection pool with prepared statements:
    one query per group of views that share join keys.

    Built by :meth:`stackml.features.FeatureStore.online_reader`; :meth:`read` is safe to call from many
    threads. Close it (or use it as a context manager) to close the pool.
    """

    def __init__(
        self,
        url: str,
        defs: Definitions,
        features: list[tuple[FeatureView, str]],
        *,
        pool_size: int = 4,
        timeout_s: float = 10.0,
    ) -> None:
        from stackml._deps import require

        require("psycopg")
        pool_module = require("psycopg_pool", extra="postgres")
        self.features = [view.column(f) for view, f in features]
        self.keys = list(dict.fromkeys(k for view, _ in features for k in defs.join_keys(view)))
        self._pool = pool_module.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "prepare_threshold": 0},
            open=False,
        )
        self.timeout_s = timeout_s
        try:
            self._pool.open(wait=True, timeout=timeout_s)
        except Exception as exc:  # psycopg_pool.PoolTimeout and connection errors
            self._pool.close()
            raise InputError(
                f"Cannot connect to the online feature store at {_redact(url)}: {exc}",
                hint="Check that PostgreSQL runs and the URL (--online / STACKML_POSTGRES_URL) is right.",
            ) from exc
        try:
            self._groups = self._plan(defs, features)
        except BaseException:
            self._pool.close()
            raise

    def _plan(self, defs: Definitions, features: list[tuple[FeatureView, str]]) -> list[_Group]:
        views = list(dict.fromkeys(view for view, _ in features))
        with self._pool.connection() as con:
            states = {
                row[0]: row[1]
                for row in con.execute(
                    f"SELECT view, digest FROM {STATE_TABLE}"
                    if _has_state(con)
                    else "SELECT NULL, NULL WHERE false"
                ).fetchall()
            }
            problems = []
            for view in views:
                if view.name not in states:
                    problems.append(f"view '{view.name}' has not been materialised")
                elif states[view.name] != view_digest(defs, view):
                    problems.append(
                        f"view '{view.name}' changed since it was last materialised (the online table holds "
                        "the old definition)"
                    )
            if problems:
                from stackml.errors import problems_error

                raise problems_error(
                    problems,
                    what="the online feature store",
                    hint="Run `stackml features materialize` (with the same repo) first.",
                )
            by_keys: dict[tuple[str, ...], list[FeatureView]] = {}
            for view in views:
                by_keys.setdefault(tuple(defs.join_keys(view)), []).append(view)
            groups = []
            for keys, members in by_keys.items():
                key_types = _key_types(con, members[0].name, keys)
                groups.append(_group_sql(keys, key_types, members, features))
            return groups

    def read(self, entity_rows: Any) -> dict[str, list[Any]]:
        """The features of each entity row, as columns: the join keys as given, then ``view__feature``
        (NULL where the store has no value, or only one older than the view's TTL).

        ``entity_rows``: a list of ``{key: value}`` dicts, a dict of key -> list, or a DataFrame.
        """
        rows = _key_columns(entity_rows, self.keys)
        _check_key_values(rows, self.key_types)
        n = len(rows[self.keys[0]]) if self.keys else 0
        out: dict[str, list[Any]] = {k: list(rows[k]) for k in self.keys}
        for name in self.features:
            out[name] = [None] * n
        if n == 0:
            return out
        import psycopg
        import psycopg_pool

        try:
            with self._pool.connection(timeout=self.timeout_s) as con:
                return self._read(con, rows, out)
        except psycopg_pool.PoolTimeout as exc:
            from stackml.errors import ConnectionFailedError

            raise ConnectionFailedError(
                f"The online feature store gave no connection within {self.timeout_s:g} s ({exc}).",
                hint="Check that PostgreSQL runs and accepts connections.",
            ) from exc
        except psycopg.OperationalError as exc:
            from stackml.errors import ConnectionFailedError

            raise ConnectionFailedError(
                f"Reading the online feature store failed: {' '.join(str(exc).split())[:200]}",
                hint="Check that PostgreSQL runs and accepts connections.",
            ) from exc

    @property
    def key_types(self) -> dict[str, str]:
        """Each join key's PostgreSQL type in the online tables (``bigint``, ``text``...)."""
        return {k: t for group in self._groups for k, t in zip(group.keys, group.key_types)}

    def _read(self, con: Any, rows: dict[str, list[Any]], out: dict[str, list[Any]]) -> dict[str, list[Any]]:
        import psycopg

        for group in self._groups:
            params = [list(rows[k]) for k in group.keys]
            try:
                fetched = con.execute(group.sql, params).fetchall()
            except (psycopg.errors.DataError, psycopg.errors.CannotCoerce) as exc:
                raise InputError(
                    f"An entity key does not fit its column's type ({' '.join(str(exc).split())[:200]}).",
                    hint=f"Give keys of the types {dict(zip(group.keys, group.key_types))}.",
                ) from exc
            for record in fetched:
                i = record[0] - 1
                for name, value in zip(group.outputs, record[1:]):
                    out[name][i] = float(value) if isinstance(value, Decimal) else value
        return out

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> OnlineReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_INTEGER_TYPES = ("smallint", "integer", "bigint")


def _check_key_values(rows: dict[str, list[Any]], key_types: dict[str, str]) -> None:
    """Key values as their columns' types, refusing what PostgreSQL would quietly coerce into another
    entity's key: a fraction or a boolean for an integer key (1.5 would round to 2). Whole floats (1.0, as
    pandas writes an int column holding a NaN) and digit strings (a command line's ``--key id=7``) become
    ints; a text key takes any value as its text."""
    for key, values in rows.items():
        kind = key_types.get(key)
        for i, value in enumerate(values):
            if kind in _INTEGER_TYPES:
                if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                    values[i] = int(value)
                elif isinstance(value, float) and value.is_integer():
                    values[i] = int(value)
                elif isinstance(value, bool) or not isinstance(value, int):
                    raise InputError(
                        f"Join key '{key}' is an integer ({kind}), got {value!r} in entity row {i}.",
                        hint=f"Give '{key}' as a whole number.",
                    )
            elif kind == "text" and not isinstance(value, str):
                values[i] = str(value)


def _has_state(con: Any) -> bool:
    return con.execute("SELECT to_regclass(%s) IS NOT NULL", [STATE_TABLE]).fetchone()[0]


def _key_types(con: Any, view: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    rows = dict(
        con.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            [table_name(view)],
        ).fetchall()
    )
    return tuple(rows.get(k, "text") for k in keys)


def _group_sql(
    keys: tuple[str, ...],
    key_types: tuple[str, ...],
    views: list[FeatureView],
    features: list[tuple[FeatureView, str]],
) -> _Group:
    arrays = ", ".join(f"%s::{t}[]" for t in key_types)
    aliases = ", ".join(f"k{i}" for i in range(len(keys)))
    joins, outputs, selected = [], [], []
    for j, view in enumerate(views):
        on = " AND ".join(f"v{j}.{quote_column(k)} = e.k{i}" for i, k in enumerate(keys))
        joins.append(f"LEFT JOIN {table_name(view.name)} AS v{j} ON {on}")
        fresh = (
            f"v{j}.event_timestamp >= (now() AT TIME ZONE 'UTC') - INTERVAL '{view.ttl} seconds'"
            if view.ttl
            else ""
        )
        for v, feature in features:
            if v is not view:
                continue
            column = f"v{j}.{quote_column(feature)}"
            selected.append(f"CASE WHEN {fresh} THEN {column} END" if fresh else column)
            outputs.append(view.column(feature))
    sql = (
        f"SELECT e.stackml_ord, {', '.join(selected)} FROM unnest({arrays}) WITH ORDINALITY "
        f"AS e({aliases}, stackml_ord) {' '.join(joins)}"
    )
    return _Group(keys, key_types, sql, tuple(outputs))


def _key_columns(entity_rows: Any, keys: list[str]) -> dict[str, list[Any]]:
    """Entity rows (dicts, a dict of lists or a DataFrame) as one list per join key, checked."""
    import pandas as pd

    if isinstance(entity_rows, pd.DataFrame):
        entity_rows = {c: entity_rows[c].tolist() for c in entity_rows.columns}
    if isinstance(entity_rows, dict):
        columns = entity_rows
        missing = [k for k in keys if k not in columns]
        lengths = {len(columns[k]) for k in keys if k in columns}
        if missing or len(lengths) > 1:
            raise InputError(
                f"The entity rows need the join key(s) {keys} as equal-length lists; got {sorted(columns)}"
                + (f" (missing {missing})" if missing else " of different lengths"),
                hint=f"Pass e.g. [{{{', '.join(repr(k) + ': ...' for k in keys)}}}].",
            )
        out = {k: list(columns[k]) for k in keys}
    elif isinstance(entity_rows, (list, tuple)):
        out = {k: [] for k in keys}
        for i, row in enumerate(entity_rows):
            if not isinstance(row, dict) or any(k not in row for k in keys):
                raise InputError(
                    f"Entity row {i} must be a mapping with the join key(s) {keys}, got {row!r:.200}.",
                    hint=f"Pass e.g. [{{{', '.join(repr(k) + ': ...' for k in keys)}}}].",
                )
            for k in keys:
                out[k].append(row[k])
    else:
        raise InputError(
            "The entity rows must be a list of dicts, a dict of lists or a DataFrame, "
            f"got {type(entity_rows).__name__}.",
            hint=f"Pass e.g. [{{{', '.join(repr(k) + ': ...' for k in keys)}}}].",
        )
    for k, values in out.items():
        nulls = [i for i, v in enumerate(values) if v is None or (isinstance(v, float) and v != v)]
        if nulls:
            raise InputError(
                f"Join key '{k}' is missing (null) in entity row(s) {nulls[:10]}.",
                hint="Every entity row needs a value for every join key.",
            )
    return out
