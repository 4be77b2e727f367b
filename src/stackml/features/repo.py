"""Reading a feature repo: every ``*.yaml``/``*.yml`` file of a folder, plus ``*.py`` files that define
:class:`~stackml.features.definitions.Entity`, ``Source``, ``FeatureView`` and ``FeatureService`` objects.

Every problem in every file is collected and raised together, each naming its file and object, so one run
of ``stackml features apply`` shows them all.

The YAML form (``ttl: 0`` is unbounded; ``query:`` may replace ``table:``; ``freshness:``, optional, is the
age the newest online value may reach before ``stackml features monitor`` raises a freshness alert)::

    entities: [{name: customer, join_keys: [customer_id]}]
    sources:
      - name: orders
        table: orders
        timestamp_field: event_timestamp
        created_timestamp_field: created_timestamp
    feature_views:
      - name: customer_orders
        entities: [customer]
        source: orders
        ttl: 30d
        freshness: 2h
        features: [{name: amount, expr: amount}, {name: big, expr: "amount > 100"}]
    services: [{name: churn, features: ["customer_orders:amount", "customer_orders:big"]}]
"""

from __future__ import annotations

import runpy
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stackml.errors import InputError, raise_if_problems
from stackml.features.definitions import (
    TTL_HINT,
    Definitions,
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    Source,
    freshness_problem,
    name_problem,
    parse_ttl,
    ttl_problem,
)
from stackml.features.validation import reference_problems

__all__ = ["load_repo", "definitions_from_mapping"]

_SECTIONS = ("entities", "sources", "feature_views", "services")
_FIELDS = {
    "entities": ({"name", "join_keys"}, {"description"}),
    "sources": ({"name"}, {"table", "query", "timestamp_field", "created_timestamp_field"}),
    "feature_views": ({"name", "entities", "source", "features"}, {"ttl", "freshness"}),
    "services": ({"name", "features"}, set()),
}
_KIND = {"entities": "entity", "sources": "source", "feature_views": "feature view", "services": "service"}
REPO_HINT = "Fix the definitions named above; the YAML form is described in the README's 'Feature store'."


def load_repo(path: str | Path) -> Definitions:
    """The definitions of the repo folder ``path``, checked for every problem that needs no warehouse
    (syntax, missing or unknown fields, bad names and TTLs, duplicates, unknown references)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(
            f"The feature repo '{path}' is not a folder.",
            hint="Pass --repo with the folder that holds your *.yaml (or *.py) definitions.",
        )
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in (".yaml", ".yml", ".py") and p.is_file()
    )
    if not files:
        raise InputError(
            f"The feature repo '{path}' holds no *.yaml, *.yml or *.py file.",
            hint="Add a definitions file such as features.yaml (see the README's 'Feature store').",
        )
    problems: list[str] = []
    parts: list[Definitions] = []
    for file in files:
        if file.suffix.lower() == ".py":
            parts.append(_from_python(file, problems))
        else:
            data = _read_yaml(file, problems)
            if data is not None:
                parts.append(definitions_from_mapping(data, file.name, problems))
    merged = _merge(parts, problems)
    declared = {f"{kind}:{name}" for kind, name in _declared(files)}
    read = set(merged.origins)
    problems.extend(reference_problems(merged, frozenset(declared - read)))
    raise_if_problems(problems, what=f"the feature repo '{path}'", hint=REPO_HINT)
    return merged


def _declared(files: list[Path]) -> list[tuple[str, str]]:
    """(kind, name) of every object the YAML files name, read or not (for references to broken ones)."""
    import yaml

    found = []
    for file in files:
        if file.suffix.lower() == ".py":
            continue
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue  # reported by _read_yaml
        if not isinstance(data, dict):
            continue
        for section, kind in _KIND.items():
            items = data.get(section)
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    found.append((kind, item["name"]))
    return found


def _read_yaml(file: Path, problems: list[str]) -> dict[str, Any] | None:
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(f"{file.name}: is not valid YAML{where}: {reason}")
        return None
    except UnicodeDecodeError as exc:
        problems.append(f"{file.name}: is not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(
            f"{file.name}: must be a mapping with the keys {list(_SECTIONS)}, got a {type(data).__name__}"
        )
        return None
    return data


def definitions_from_mapping(data: dict[str, Any], origin: str, problems: list[str]) -> Definitions:
    """The definitions in one YAML (or registry JSON) mapping; what cannot be read is added to ``problems``,
    each prefixed with ``origin``."""
    unknown = [k for k in data if k not in _SECTIONS]
    if unknown:
        problems.append(f"{origin}: unknown section(s) {unknown} (known: {list(_SECTIONS)})")
    built: dict[str, list[Any]] = {section: [] for section in _SECTIONS}
    for section, build in _BUILDERS.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            problems.append(f"{origin}: '{section}' must be a list, got {type(items).__name__}")
            continue
        for i, item in enumerate(items):
            obj = _item(section, i, item, origin, problems, build)
            if obj is not None:
                built[section].append(obj)
    origins = {f"{_KIND[s]}:{o.name}": origin for s, objs in built.items() for o in objs}
    return Definitions(
        entities=tuple(built["entities"]),
        sources=tuple(built["sources"]),
        views=tuple(built["feature_views"]),
        services=tuple(built["services"]),
        origins=origins,
    )


def _item(
    section: str, i: int, item: Any, origin: str, problems: list[str], build: Callable[..., Any]
) -> Any:
    kind = _KIND[section]
    if not isinstance(item, dict):
        problems.append(f"{origin}: {section}[{i}] must be a mapping, got {item!r}")
        return None
    label = f"{origin}: {kind} {item.get('name', f'#{i + 1}')!r}"
    required, optional = _FIELDS[section]
    found = []
    missing = sorted(required - set(item))
    if missing:
        found.append(f"{label}: missing {missing}")
    extra = sorted(set(item) - required - optional)
    if extra:
        found.append(f"{label}: unknown field(s) {extra} (known: {sorted(required | optional)})")
    if "name" in item:
        problem = name_problem(kind, item["name"])
        if problem:
            found.append(f"{origin}: {problem}")
    if not found:
        found.extend(f"{label}: {p}" for p in _field_problems(section, item))
    problems.extend(found)
    return None if found else build(item)


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _field_problems(section: str, item: dict[str, Any]) -> list[str]:
    """What is wrong with the fields of one well-formed item (right keys present)."""
    found = []
    if section == "entities" and not _is_names(item["join_keys"]):
        found.append(f"'join_keys' must be a non-empty list of column names, got {item['join_keys']!r}")
    if section == "sources":
        given = [k for k in ("table", "query") if item.get(k) is not None]
        if len(given) != 1:
            found.append(f"give exactly one of 'table' or 'query', got {given or 'neither'}")
        for key in ("table", "query", "timestamp_field", "created_timestamp_field"):
            if item.get(key) is not None and not (isinstance(item[key], str) and item[key].strip()):
                found.append(f"'{key}' must be a non-empty string, got {item[key]!r}")
    if section == "feature_views":
        if not _is_names(item["entities"]):
            found.append(f"'entities' must be a non-empty list of entity names, got {item['entities']!r}")
        if not isinstance(item["source"], str):
            found.append(f"'source' must be the name of a source, got {item['source']!r}")
        if "ttl" in item and ttl_problem(item["ttl"]):
            found.append(f"{ttl_problem(item['ttl'])} ({TTL_HINT})")
        if item.get("freshness") is not None and freshness_problem(item["freshness"]):
            found.append(str(freshness_problem(item["freshness"])))
        features = item["features"]
        if not isinstance(features, list) or not features:
            found.append(f"'features' must be a non-empty list of {{name, expr}}, got {features!r}")
        else:
            for j, feature in enumerate(features):
                if not isinstance(feature, dict) or set(feature) != {"name", "expr"}:
                    found.append(f"feature #{j + 1} must be a mapping {{name, expr}}, got {feature!r}")
                elif not isinstance(feature["expr"], str) or not feature["expr"].strip():
                    found.append(
                        f"feature {feature['name']!r}: 'expr' must be SQL text, got {feature['expr']!r}"
                    )
                elif name_problem("feature", feature["name"]):
                    found.append(str(name_problem("feature", feature["name"])))
    if section == "services" and not _is_names(item["features"]):
        found.append(
            f"'features' must be a non-empty list of 'view:feature' (or 'view'), got {item['features']!r}"
        )
    return found


_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "entities": lambda d: Entity(d["name"], tuple(d["join_keys"]), d.get("description", "")),
    "sources": lambda d: Source(
        d["name"],
        table=d.get("table"),
        query=d.get("query"),
        timestamp_field=d.get("timestamp_field") or "event_timestamp",
        created_timestamp_field=d.get("created_timestamp_field"),
    ),
    "feature_views": lambda d: FeatureView(
        d["name"],
        entities=tuple(d["entities"]),
        source=d["source"],
        features=tuple(Feature(f["name"], f["expr"]) for f in d["features"]),
        ttl=parse_ttl(d.get("ttl", 0)),
        freshness=None if d.get("freshness") is None else parse_ttl(d["freshness"]),
    ),
    "services": lambda d: FeatureService(d["name"], tuple(d["features"])),
}


def _from_python(file: Path, problems: list[str]) -> Definitions:
    """The definition objects a Python file leaves in its namespace (it runs, as Feast runs repo files),
    checked as their YAML form is (a ``ttl`` or ``freshness`` may be ``"30d"`` or a ``timedelta`` here
    too)."""
    try:
        namespace = runpy.run_path(str(file), run_name=f"stackml_feature_repo_{file.stem}")
    except Exception as exc:  # noqa: BLE001 - any error in the user's file becomes one problem naming it
        problems.append(f"{file.name}: failed to run: {type(exc).__name__}: {exc}")
        return Definitions()
    values = [v for k, v in namespace.items() if not k.startswith("_")]
    kinds = {"entities": Entity, "sources": Source, "feature_views": FeatureView, "services": FeatureService}
    data = {
        section: [_plain(asdict(v)) for v in values if type(v) is kind] for section, kind in kinds.items()
    }
    return definitions_from_mapping(data, file.name, problems)


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: the shape YAML gives."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _merge(parts: list[Definitions], problems: list[str]) -> Definitions:
    """One set of definitions from every file; a name declared twice (in one file or two) is a problem."""
    merged: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    origins: dict[str, str] = {}
    for part in parts:
        for section, objs in zip(_SECTIONS, (part.entities, part.sources, part.views, part.services)):
            for obj in objs:
                key = f"{_KIND[section]}:{obj.name}"
                if obj.name in merged[section]:
                    problems.append(
                        f"{part.origins.get(key, '?')}: {_KIND[section]} {obj.name!r} is declared more than "
                        f"once (also in {origins[key]})"
                    )
                    continue
                merged[section][obj.name] = obj
                origins[key] = part.origins.get(key, "?")
    return Definitions(
        entities=tuple(merged["entities"].values()),
        sources=tuple(merged["sources"].values()),
        views=tuple(merged["feature_views"].values()),
        services=tuple(merged["services"].values()),
        origins=origins,
    )
