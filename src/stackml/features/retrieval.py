"""Point-in-time correct training sets: for each entity row, each feature view's newest row that was already
true at the entity's time, as one SQL query.

The rules (Feast's): for an entity row with keys ``k`` and time ``t``, a view's candidate rows are those of
its source with the same keys and ``t - ttl <= event_timestamp <= t`` (``ttl`` 0: no lower bound); the newest
``event_timestamp`` wins, ties go to the newest ``created_timestamp`` (a row without one loses a tie); with
``created_before_entity`` a row must also have been written by ``t`` (``created_timestamp <= t``, or no
created time), so a backfill cannot leak into the past. An entity row without a candidate keeps NULLs. Every
entity row comes back once, in its order, duplicates included.

Time zones: a time zone-aware entity timestamp is converted to UTC; a naive one is read as UTC. Source
timestamps stored with a time zone (``TIMESTAMPTZ``) are compared in UTC, naive ones are read as UTC.

On DuckDB (without ``created_before_entity``) each view is an ``ASOF JOIN`` over the source reduced to its
newest-written row per key and event time; elsewhere a join on the keys and the time window ranked by
``ROW_NUMBER()`` per entity row.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackml.errors import InputError, StackmlError
from stackml.features.definitions import Definitions, FeatureView
from stackml.features.validation import source_sql
from stackml.warehouse import quote_column

if TYPE_CHECKING:
    import pandas as pd

    from stackml.warehouse import Warehouse

__all__ = [
    "ENTITY_TIMESTAMP",
    "load_entities",
    "source_types",
    "training_set",
    "training_set_sql",
    "view_projection",
]

ENTITY_TIMESTAMP = "event_timestamp"
_ROW = "stackml_row"
_SQL_START = re.compile(r"^\s*(\(|select\b|with\b|from\b|values\b|table\b)", re.IGNORECASE)


def load_entities(entities: Any, wh: Warehouse) -> pd.DataFrame:
    """The entity rows: a DataFrame as it is, a ``.csv``/``.parquet`` path read strictly, or a SQL query run
    on the warehouse (a string starting with SELECT, WITH, FROM or VALUES)."""
    import pandas as pd

    if isinstance(entities, pd.DataFrame):
        return entities
    if isinstance(entities, str) and _SQL_START.match(entities):
        return wh.query(entities)
    if isinstance(entities, (str, Path)):
        from stackml.warehouse import read_file

        return read_file(entities)
    raise InputError(
        f"The entities must be a DataFrame, a .csv/.parquet path or a SQL query, "
        f"got {type(entities).__name__}.",
        hint="Pass a frame with the join keys and event_timestamp, e.g. pd.DataFrame({'customer_id': [1], "
        "'event_timestamp': [pd.Timestamp('2024-01-01')]}).",
    )


def _utc_naive(values: pd.Series) -> pd.Series:
    """Entity timestamps as naive UTC: aware ones converted; naive ones (and text without offset) are UTC."""
    import pandas as pd

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    if values.dtype.kind == "M":
        return values.astype("datetime64[us]")
    try:
        return (
            pd.to_datetime(values, utc=True, format="ISO8601").dt.tz_localize(None).astype("datetime64[us]")
        )
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"The entity column '{ENTITY_TIMESTAMP}' holds values that are not timestamps ({exc}).",
            hint="Give it timestamps (ISO 8601 text such as 2024-01-31T12:00:00, with an optional offset).",
        ) from exc


def training_set(
    defs: Definitions,
    wh: Warehouse,
    entities: pd.DataFrame,
    features: list[tuple[FeatureView, str]],
    *,
    created_before_entity: bool = False,
) -> pd.DataFrame:
    """``entities`` with one column per feature (``view__feature``), point-in-time correct (module
    docstring), computed by one query on ``wh``."""
    views = list(dict.fromkeys(view for view, _ in features))
    keys = list(dict.fromkeys(k for view in views for k in defs.join_keys(view)))
    _check_entities(entities, keys, [view.column(f) for view, f in features])
    frame = entities.reset_index(drop=True)
    loaded = frame[keys].copy()
    loaded[ENTITY_TIMESTAMP] = _utc_naive(frame[ENTITY_TIMESTAMP])
    loaded.insert(0, _ROW, range(len(loaded)))
    table = f"stackml_entities_{uuid.uuid4().hex[:12]}"
    wh.ingest(loaded, table)
    try:
        by_source = {name: source_types(wh, defs, name) for name in dict.fromkeys(v.source for v in views)}
        types_by_view = {view.name: by_source[view.source] for view in views}
        sql = training_set_sql(
            defs, features, table, wh.dialect, types_by_view, created_before_entity=created_before_entity
        )
        try:
            result = wh.query(sql)
        except StackmlError as exc:
            names = ", ".join(v.name for v in views)
            raise InputError(
                f"The training-set query over feature view(s) {names} failed: {exc.message}",
                hint="Check that the entity columns have the types of the sources' join keys; "
                "`stackml features apply` checks the definitions themselves.",
            ) from exc
    finally:
        wh.execute(f"DROP TABLE IF EXISTS {table}")
    result = result.sort_values(_ROW).reset_index(drop=True)
    out = frame.copy()
    for view, feature in features:
        out[view.column(feature)] = result[view.column(feature)].to_numpy()
    return out


def _check_entities(entities: pd.DataFrame, keys: list[str], outputs: list[str]) -> None:
    columns = [str(c) for c in entities.columns]
    problems = []
    if ENTITY_TIMESTAMP not in columns:
        problems.append(f"no '{ENTITY_TIMESTAMP}' column (it has {columns})")
    missing = [k for k in keys if k not in columns]
    if missing:
        problems.append(f"the features' join key(s) {missing} are missing (it has {columns})")
    clashing = [c for c in (*outputs, _ROW) if c in columns]
    if clashing:
        problems.append(f"column(s) {clashing} clash with the names of the output's feature columns")
    if problems:
        from stackml.errors import problems_error

        raise problems_error(
            problems,
            what="the entity rows",
            hint=f"Give one row per entity and time: the join keys {keys} and '{ENTITY_TIMESTAMP}'.",
        )


def source_types(wh: Warehouse, defs: Definitions, name: str) -> dict[str, str]:
    """Column -> engine type of the source ``name`` (to compare its time zone-aware timestamps in UTC)."""
    source = defs.source(name)
    with wh.stream(f"SELECT * FROM {source_sql(source)} AS src LIMIT 0") as rows:
        return dict(zip(rows.columns, rows.types))


def _timestamp(column: str, engine_type: str | None, dialect: str) -> str:
    """A source timestamp as naive UTC: ``TIMESTAMPTZ`` converted (Spark's session is UTC already)."""
    ref = f"src.{quote_column(column)}"
    aware = engine_type is not None and (
        "time zone" in engine_type.lower() or engine_type.lower() == "timestamptz"
    )
    if aware and dialect in ("duckdb", "postgres"):
        return f"CAST(timezone('UTC', {ref}) AS TIMESTAMP)"
    return f"CAST({ref} AS TIMESTAMP)"


def _interval(seconds: int, dialect: str) -> str:
    return f"INTERVAL '{seconds}' SECOND" if dialect == "spark" else f"INTERVAL '{seconds} seconds'"


def view_projection(defs: Definitions, view: FeatureView, types: dict[str, str], dialect: str) -> str:
    """The view's source as key columns, ``stackml_event_ts``, ``stackml_created_ts`` and its features."""
    source = defs.source(view.source)
    created = (
        _timestamp(source.created_timestamp_field, types.get(source.created_timestamp_field), dialect)
        if source.created_timestamp_field
        else "CAST(NULL AS TIMESTAMP)"
    )
    event = _timestamp(source.timestamp_field, types.get(source.timestamp_field), dialect)
    columns = [
        *(f"src.{quote_column(k)} AS {quote_column(k)}" for k in defs.join_keys(view)),
        f"{event} AS stackml_event_ts",
        f"{created} AS stackml_created_ts",
        *(f"({f.expr}) AS {quote_column(f.name)}" for f in view.features),
    ]
    return f"SELECT {', '.join(columns)} FROM {source_sql(source)} AS src"


def training_set_sql(
    defs: Definitions,
    features: list[tuple[FeatureView, str]],
    entity_table: str,
    dialect: str,
    source_types: dict[str, dict[str, str]],
    *,
    created_before_entity: bool = False,
) -> str:
    """The one query of :func:`training_set`: ``stackml_row`` and the feature columns, one row per entity
    row, for the engine ``dialect`` (``duckdb``, ``postgres`` or ``spark``)."""
    views = list(dict.fromkeys(view for view, _ in features))
    ctes, joins, selected = [], [], []
    for i, view in enumerate(views):
        wanted = [f for v, f in features if v is view]
        projection = view_projection(defs, view, source_types.get(view.name, {}), dialect)
        keys = " AND ".join(f"e.{quote_column(k)} = s.{quote_column(k)}" for k in defs.join_keys(view))
        outputs = ", ".join(f"s.{quote_column(f)} AS {quote_column(view.column(f))}" for f in wanted)
        fresh = (
            f"s.stackml_event_ts >= e.{ENTITY_TIMESTAMP} - {_interval(view.ttl, dialect)}" if view.ttl else ""
        )

        if dialect == "duckdb" and not created_before_entity:
            # ASOF finds, per key, the greatest (event time, created time) pair at or below (t, infinity):
            # the newest event time <= t and, at a tie, the newest write (a row without a created time loses
            # it), in one pass with no window over the source. The TTL then only drops a winner too old.
            newest = "{'t': s.stackml_event_ts, 'c': coalesce(s.stackml_created_ts, TIMESTAMP '-infinity')}"
            ctes.append(
                f"v{i} AS (SELECT e.{_ROW}, 1 AS stackml_rank, {outputs} FROM entities AS e "
                f"ASOF JOIN ({projection}) AS s ON {keys} AND "
                f"{{'t': e.{ENTITY_TIMESTAMP}, 'c': TIMESTAMP 'infinity'}} >= {newest}"
                f"{' WHERE ' + fresh if fresh else ''})"
            )
        else:
            created = (
                " AND (s.stackml_created_ts IS NULL OR s.stackml_created_ts <= e.event_timestamp)"
                if created_before_entity
                else ""
            )
            ctes.append(
                f"v{i} AS (SELECT e.{_ROW}, {outputs}, ROW_NUMBER() OVER (PARTITION BY e.{_ROW} "
                "ORDER BY s.stackml_event_ts DESC, s.stackml_created_ts DESC NULLS LAST) AS stackml_rank "
                f"FROM entities AS e JOIN ({projection}) AS s ON {keys} "
                f"AND s.stackml_event_ts <= e.{ENTITY_TIMESTAMP}{' AND ' + fresh if fresh else ''}{created})"
            )
        joins.append(f"LEFT JOIN v{i} ON v{i}.{_ROW} = e.{_ROW} AND v{i}.stackml_rank = 1")
        selected.extend(f"v{i}.{quote_column(view.column(f))}" for f in wanted)
    return (
        f"WITH entities AS (SELECT * FROM {entity_table}), {', '.join(ctes)} "
        f"SELECT e.{_ROW}, {', '.join(selected)} FROM entities AS e {' '.join(joins)} ORDER BY e.{_ROW}"
    )
