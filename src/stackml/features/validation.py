"""Checks of feature definitions: references between them (no warehouse) and against the warehouse
(tables and columns exist, every feature expression runs, join keys agree in type); and checks of a batch
computed for the online store before it is written (:func:`batch_problems`).

Each check returns problems (sentences naming the file or view and what was found) so callers report every
problem at once. Sources are tables or queries, never other views, so definitions cannot form cycles.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from stackml.features.definitions import Definitions, FeatureView, Source

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = [
    "ALL_NULL_MIN_ROWS",
    "CLOCK_SKEW",
    "batch_problems",
    "reference_problems",
    "resolve_features",
    "warehouse_problems",
    "source_sql",
    "type_family",
]

#: a batch of at least this many rows with a feature missing in every row is refused (fewer may be chance)
ALL_NULL_MIN_ROWS = 10
#: how far past now a source row's event time may be before it counts as dated in the future
CLOCK_SKEW = timedelta(minutes=5)

#: engine type text (DuckDB, PostgreSQL, Spark) -> a family; two families that differ cannot be joined
_FAMILIES = (
    ("interval", ("interval",)),  # before the numbers: it starts with "int"
    ("timestamp", ("timestamp", "datetime")),
    ("date", ("date",)),
    ("bool", ("bool",)),
    (
        "number",
        ("int", "bigint", "smallint", "tinyint", "hugeint", "ubigint", "usmallint", "utinyint", "uinteger")
        + ("uhugeint", "decimal", "numeric", "double", "float", "real", "serial", "bigserial", "smallserial"),
    ),
    ("text", ("varchar", "text", "char", "string", "uuid")),
)


def type_family(engine_type: str) -> str:
    """``'BIGINT'`` -> ``'number'``, ``'character varying'`` -> ``'text'``, ``'timestamp_ntz'`` ->
    ``'timestamp'``; an unknown type is its own family.

    Example:
        >>> [type_family(t) for t in ("INTEGER", "bigint", "DECIMAL(10,2)", "interval")]
        ['number', 'number', 'number', 'interval']
    """
    lowered = engine_type.lower()
    for family, words in _FAMILIES:
        if any(lowered.startswith(w) or f" {w}" in lowered for w in words):
            return family
    return lowered


def resolve_features(
    defs: Definitions, refs: list[str] | tuple[str, ...]
) -> tuple[list[tuple[FeatureView, str]], list[str]]:
    """``["view:feature", "view"]`` -> ``[(view, feature), ...]`` in order without repeats, and the problems
    (unknown views or features)."""
    views = {v.name: v for v in defs.views}
    resolved: dict[tuple[str, str], tuple[FeatureView, str]] = {}
    problems = []
    for ref in refs:
        view_name, _, feature = ref.partition(":")
        view = views.get(view_name)
        if view is None:
            problems.append(f"unknown feature view {view_name!r} in {ref!r} (views: {sorted(views)})")
            continue
        names = [f.name for f in view.features]
        if feature and feature not in names:
            problems.append(f"unknown feature {ref!r}: view {view_name!r} has {names}")
            continue
        for name in [feature] if feature else names:
            resolved.setdefault((view_name, name), (view, name))
    return list(resolved.values()), problems


def reference_problems(defs: Definitions, broken: frozenset[str] = frozenset()) -> list[str]:
    """Unknown entities, sources and features, and features declared twice in a view, found without a
    warehouse. ``broken`` names objects (``kind:name``) that were declared but could not be read: a reference
    to one is not reported again as unknown."""
    entities, sources = {e.name for e in defs.entities}, {s.name for s in defs.sources}
    problems = []

    def where(kind: str, name: str) -> str:
        origin = defs.origins.get(f"{kind}:{name}")
        return f"{origin}: {kind} {name!r}" if origin else f"{kind} {name!r}"

    for view in defs.views:
        unknown = [e for e in view.entities if e not in entities and f"entity:{e}" not in broken]
        if unknown:
            problems.append(
                f"{where('feature view', view.name)}: unknown entities {unknown} "
                f"(entities: {sorted(entities)})"
            )
        if view.source not in sources and f"source:{view.source}" not in broken:
            problems.append(
                f"{where('feature view', view.name)}: unknown source {view.source!r} "
                f"(sources: {sorted(sources)})"
            )
        names = [f.name for f in view.features]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(
                f"{where('feature view', view.name)}: feature(s) {repeated} declared more than once"
            )
    for service in defs.services:
        readable = [r for r in service.features if f"feature view:{r.partition(':')[0]}" not in broken]
        _, unresolved = resolve_features(defs, readable)
        problems.extend(f"{where('service', service.name)}: {p}" for p in unresolved)
    return problems


def source_sql(source: Source) -> str:
    """The source as a FROM item: the quoted table, or the query in parentheses."""
    from stackml.warehouse import quote_table

    return quote_table(source.table) if source.table else f"({source.query})"


def warehouse_problems(defs: Definitions, wh: Warehouse) -> list[str]:
    """Problems only the warehouse can show: unknown tables or columns, feature expressions that fail (with
    the engine's error), timestamps that are not timestamps, and join keys typed differently by two views'
    sources (such views cannot share an entity row)."""
    problems: list[str] = []
    source_columns: dict[str, dict[str, str]] = {}
    for source in defs.sources:
        columns, problem = _columns(wh, source)
        if problem:
            problems.append(f"source {source.name!r}: {problem}")
            continue
        source_columns[source.name] = columns
        for label, column in (
            ("timestamp_field", source.timestamp_field),
            ("created_timestamp_field", source.created_timestamp_field),
        ):
            if column is None:
                continue
            if column not in columns:
                problems.append(
                    f"source {source.name!r}: {label} {column!r} is not a column (it has {list(columns)})"
                )
            elif type_family(columns[column]) not in ("timestamp", "date"):
                problems.append(
                    f"source {source.name!r}: {label} {column!r} is {columns[column]}, not a timestamp"
                )
    key_types: dict[str, dict[str, tuple[str, str]]] = {}
    for view in defs.views:
        columns = source_columns.get(view.source)
        if columns is None:
            continue
        keys = defs.join_keys(view)
        missing = [k for k in keys if k not in columns]
        if missing:
            problems.append(
                f"feature view {view.name!r}: join key(s) {missing} are not columns of source "
                f"{view.source!r} (it has {list(columns)})"
            )
        for key in keys:
            if key in columns:
                key_types.setdefault(key, {})[view.name] = (columns[key], type_family(columns[key]))
        problems.extend(_expression_problems(wh, view, defs.source(view.source)))
    for key, by_view in key_types.items():
        if len({family for _, family in by_view.values()}) > 1:
            shown = ", ".join(f"{v} has {t}" for v, (t, _) in by_view.items())
            problems.append(f"join key {key!r} has clashing types across feature views ({shown})")
    return problems


def _columns(wh: Warehouse, source: Source) -> tuple[dict[str, str], str | None]:
    from stackml.errors import StackmlError

    if source.table and not wh.has_table(source.table):
        return (
            {},
            f"table {source.table!r} does not exist in {wh.redacted_url()} (tables: {wh.tables() or 'none'})",
        )
    try:
        with wh.stream(f"SELECT * FROM {source_sql(source)} AS src LIMIT 0") as rows:
            return dict(zip(rows.columns, rows.types)), None
    except StackmlError as exc:  # the engine's error, named with the source
        return {}, f"its SQL fails: {exc.message}"


def _expression_problems(wh: Warehouse, view: FeatureView, source: Source) -> list[str]:
    """Run every expression on no rows: one query when all pass, one per feature to name those that fail."""
    from stackml.errors import StackmlError

    def fails(features: tuple) -> str | None:
        exprs = ", ".join(f'({f.expr}) AS "{f.name}"' for f in features)
        try:
            with wh.stream(f"SELECT {exprs} FROM {source_sql(source)} AS src LIMIT 0"):
                return None  # planning the query is the check
        except StackmlError as exc:
            return exc.message

    if fails(view.features) is None:
        return []
    problems = []
    for feature in view.features:
        error = fails((feature,))
        if error:
            problems.append(
                f"feature view {view.name!r}: feature {feature.name!r} ({feature.expr}) fails: {error}"
            )
    return problems


def batch_problems(defs: Definitions, batch: Any, stored: dict[str, str] | None) -> list[str]:
    """What is wrong with ``batch`` (a :class:`~stackml.features.online.Batch`, not imported: online.py
    imports this module) before anything is written to the online store: rows without a join key, source
    rows dated in the future (more than :data:`CLOCK_SKEW` ahead: a feed writing local times as UTC), a
    column whose type clashes with the stored online table (``stored``: its column types; None when there is
    none), a feature missing in every row of a batch of :data:`ALL_NULL_MIN_ROWS` rows or more."""
    view = defs.view(batch.view)
    keys = defs.join_keys(view)
    frame = batch.frame
    label = f"feature view {view.name!r}"
    problems = []
    keyless = frame[keys].isna().any(axis=1)
    if keyless.any():
        missing = [k for k in keys if frame[k].isna().any()]
        problems.append(
            f"{label}: {int(keyless.sum())} of {len(frame)} row(s) have no value for join key(s) {missing} "
            "(such a row cannot be read by key: fix the source, or filter it out in a query source)"
        )
    if batch.ahead_rows and batch.ahead_newest and batch.ahead_newest > batch.computed_at + CLOCK_SKEW:
        now, newest = f"{batch.computed_at:%Y-%m-%d %H:%M}", f"{batch.ahead_newest:%Y-%m-%d %H:%M}"
        problems.append(
            f"{label}: {batch.ahead_rows} source row(s) have event times after now ({now} UTC), the newest "
            f"at {newest}: are local times stored as UTC?"
        )
    if stored is not None and not batch.rebuild:
        for column, engine_type in batch.types.items():
            if column not in stored:
                continue
            ours, theirs = _family(engine_type), _family(stored[column])
            if ours != "null" and ours != theirs:
                problems.append(
                    f"{label}: column {column!r} is {engine_type} in the warehouse but {stored[column]} in "
                    "the online table (a source column changed type: run with a changed definition, or "
                    "cast it in the feature's expression)"
                )
    if len(frame) >= ALL_NULL_MIN_ROWS:
        empty = [f.name for f in view.features if frame[f.name].isna().all()]
        if empty:
            problems.append(
                f"{label}: feature(s) {empty} are missing in all {len(frame)} rows of the batch (a "
                "renamed or emptied source column?)"
            )
    return problems


def _family(engine_type: str) -> str:
    """The type family for comparing a warehouse column with an online one: a date fits a timestamp;
    DuckDB's NULL type (an expression that is always NULL) fits anything."""
    family = type_family(engine_type)
    if family == "date":
        return "timestamp"
    return "null" if family.strip('"') == "null" else family
