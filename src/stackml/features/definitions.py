"""The objects of a feature repo: entities, sources, feature views and feature services, as small frozen
dataclasses holding SQL.

A repo declares them in YAML or Python (see :mod:`stackml.features.repo`); they are plain values, so two repos
that declare the same things compare equal and serialise to the same JSON (the registry's version moves only
when that JSON changes).

Example:
    >>> from stackml.features.definitions import Entity, Feature, FeatureView, parse_ttl
    >>> view = FeatureView("customer_orders", entities=("customer",), source="orders", ttl=parse_ttl("30d"),
    ...                    features=(Feature("amount", "amount"),))
    >>> view.ttl, view.column("amount")
    (2592000, 'customer_orders__amount')
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

__all__ = [
    "Definitions",
    "Entity",
    "Feature",
    "FeatureService",
    "FeatureView",
    "Source",
    "format_ttl",
    "freshness_problem",
    "name_problem",
    "parse_ttl",
    "ttl_problem",
]

#: names become SQL column aliases (``view__feature``) and table-free identifiers on every engine
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_TTL = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
TTL_HINT = "Write the TTL as a whole number with a unit: 45s, 15m, 12h, 30d or 2w (0 means unbounded)."


def ttl_problem(value: object) -> str | None:
    """``None`` when ``value`` is a TTL :func:`parse_ttl` reads, else the sentence that says why not."""
    if isinstance(value, bool):
        return f"the TTL must be a duration such as 30d, got {value!r}"
    if isinstance(value, timedelta):
        ok = value.total_seconds() >= 0 and value.total_seconds() == int(value.total_seconds())
        return None if ok else f"the TTL must be a whole number of seconds >= 0, got {value!r}"
    if isinstance(value, int):
        return None if value >= 0 else f"the TTL must be >= 0, got {value!r}"
    if isinstance(value, str) and _TTL.match(value):
        return None
    return f"the TTL must be a duration such as 30d, 12h or 0, got {value!r}"


def freshness_problem(value: object) -> str | None:
    """``None`` when ``value`` is a freshness limit (a duration above 0, read as :func:`parse_ttl` reads a
    TTL), else the sentence that says why not."""
    if ttl_problem(value) is None and parse_ttl(value) > 0:
        return None
    return (
        "the freshness limit must be a duration above 0 such as 2h, 30m or 1d (leave it out for no check), "
        f"got {value!r}"
    )


def parse_ttl(value: object) -> int:
    """A TTL in seconds: ``"30d"``, ``"12h"``, ``"15m"``, ``"45s"``, ``"2w"``, a bare number of seconds, or a
    :class:`~datetime.timedelta`; ``0`` means unbounded (every older row counts).

    Example:
        >>> parse_ttl("12h"), parse_ttl(0), parse_ttl(timedelta(days=1))
        (43200, 0, 86400)
    """
    problem = ttl_problem(value)
    if problem:
        from stackml.errors import InputError

        raise InputError(problem[0].upper() + problem[1:] + ".", hint=TTL_HINT)
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, int):
        return value
    match = _TTL.match(str(value))
    assert match is not None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def format_ttl(seconds: int) -> str:
    """A TTL in seconds as :func:`parse_ttl` reads it, in its largest whole unit; 0 is ``unbounded``.

    Example:
        >>> format_ttl(2592000), format_ttl(90), format_ttl(0)
        ('30d', '90s', 'unbounded')
    """
    if not seconds:
        return "unbounded"
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def name_problem(kind: str, name: object) -> str | None:
    """``None`` when ``name`` is a valid name for a ``kind`` (letters, digits, underscores), else why not."""
    if isinstance(name, str) and _NAME.match(name) and "__" not in name.strip("_"):
        return None
    return (
        f"{kind} name {name!r} is not a valid name (letters, digits and underscores, starting with a letter "
        "or underscore, at most 63 characters, no '__' inside: it separates view and feature in columns)"
    )


@dataclass(frozen=True)
class Entity:
    """What features describe (a customer), identified by its join key columns (``customer_id``)."""

    name: str
    join_keys: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class Source:
    """Rows of feature data: a warehouse ``table`` or a SQL ``query`` (exactly one), with the time each row
    describes (``timestamp_field``) and, optionally, the time it was written (``created_timestamp_field``),
    which breaks ties and guards against backfills."""

    name: str
    table: str | None = None
    query: str | None = None
    timestamp_field: str = "event_timestamp"
    created_timestamp_field: str | None = None


@dataclass(frozen=True)
class Feature:
    """One feature: a SQL expression over the source's columns (a column, ``amount > 100``, or a window
    aggregation such as ``avg(amount) OVER (PARTITION BY customer_id ORDER BY event_timestamp ROWS 6
    PRECEDING)``), in the warehouse engine's dialect. A window runs over the whole source before the
    point-in-time join, so it must look only backwards (``PRECEDING``), or it leaks later rows."""

    name: str
    expr: str


@dataclass(frozen=True)
class FeatureView:
    """Features of some entities computed from one source; a row is valid for ``ttl`` seconds after its event
    time (``0``: forever). ``freshness`` is the age the newest event time in the online store may reach
    before ``stackml features monitor`` calls the view stale (None: no freshness check); it is an alert limit
    only, so changing it does not rebuild the online table. In a repo's Python file ``ttl`` and
    ``freshness`` may be anything :func:`parse_ttl` reads (``"30d"``, a ``timedelta``); loading the repo turns
    them into seconds."""

    name: str
    entities: tuple[str, ...]
    source: str
    features: tuple[Feature, ...]
    ttl: int = 0
    freshness: int | None = None

    def column(self, feature: str) -> str:
        """The output column of ``feature``: ``view__feature``."""
        return f"{self.name}__{feature}"


@dataclass(frozen=True)
class FeatureService:
    """A named list of features for one model: ``"view:feature"`` references, or ``"view"`` for all of a
    view's features."""

    name: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class Definitions:
    """Everything a repo declares, each kind in declaration order."""

    entities: tuple[Entity, ...] = ()
    sources: tuple[Source, ...] = ()
    views: tuple[FeatureView, ...] = ()
    services: tuple[FeatureService, ...] = ()
    #: where each object was declared (``kind:name`` -> file), for messages; not part of the definitions
    origins: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def entity(self, name: str) -> Entity:
        return {e.name: e for e in self.entities}[name]

    def source(self, name: str) -> Source:
        return {s.name: s for s in self.sources}[name]

    def view(self, name: str) -> FeatureView:
        return {v.name: v for v in self.views}[name]

    def service(self, name: str) -> FeatureService:
        return {s.name: s for s in self.services}[name]

    def join_keys(self, view: FeatureView) -> list[str]:
        """The join key columns of ``view``'s entities, in order, without repeats."""
        return list(dict.fromkeys(k for e in view.entities for k in self.entity(e).join_keys))

    def to_dict(self) -> dict[str, Any]:
        """The definitions as plain JSON-ready values (the YAML form, with TTLs in seconds), sorted by name so
        that the order of files and declarations does not change the registry's version."""

        def clean(obj: Any) -> dict[str, Any]:
            return {k: v for k, v in asdict(obj).items() if v is not None and v != ""}

        return {
            "entities": [clean(e) for e in sorted(self.entities, key=lambda o: o.name)],
            "sources": [clean(s) for s in sorted(self.sources, key=lambda o: o.name)],
            "feature_views": [clean(v) for v in sorted(self.views, key=lambda o: o.name)],
            "services": [clean(s) for s in sorted(self.services, key=lambda o: o.name)],
        }
