"""Checks of feature definitions: references between them (no warehouse) and against the warehouse
(tables and columns exist, every feature expression runs, join keys agree in type).

Each check returns problems (sentences naming the file or view and what was found) so callers report every
problem at once. Sources are tables or queries, never other views, so definitions cannot form cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackml.features.definitions import Definitions, FeatureView, Source

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = ["reference_problems", "resolve_features", "warehouse_problems", "source_sql", "type_family"]

#: engine type text (DuckDB, PostgreSQL, Spark) -> a family; two families that differ cannot be joined
_FAMILIES = (
    ("timestamp", ("timestamp", "datetime")),
    ("date", ("date",)),
    ("bool", ("bool",)),
    ("number", ("int", "decimal", "numeric", "double", "float", "real", "hugeint", "serial")),
    ("text", ("varchar", "text", "char", "string", "uuid")),
)


def type_family(engine_type: str) -> str:
    """``'BIGINT'`` -> ``'number'``, ``'character varying'`` -> ``'text'``, ``'timestamp_ntz'`` ->
    ``'timestamp'``; an unknown type is its own family."""
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
