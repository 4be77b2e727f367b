"""Online features by entity key: the body of ``POST /v1/features/{service}``, and the columns a feature
service adds to a prediction's records before the model's signature is checked.

Records of an enriched model carry the service's join keys (and the model's other inputs), never the
service's ``view__feature`` columns: a value sent for one would be used in place of what the model was
trained on, so it is refused (422) instead. A feature the store has no value for (an entity never
materialised, or a value older than the view's TTL) arrives as null, which the signature's check reports.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stackml.errors import InputError
from stackml.serving.jsonable import to_jsonable
from stackml.serving.online_features import OnlineFeatures
from stackml.serving.validation import Column, Problem, clip_name, json_type, shown

__all__ = ["Features", "Enriched", "read_features", "enrich", "explain_feature_problems"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Features:
    """What one read by key gave: the join keys and the feature columns, one list per column; or, when
    ``status`` is not 200, what to answer: a ``detail`` and the ``problems`` behind it."""

    keys: list[str]
    columns: dict[str, list[Any]]
    status: int = 200
    detail: str = ""
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Enriched:
    """A prediction's records with their features.

    Attributes:
        records: what the model's signature is checked against: each record and its features, without the
            join keys the signature does not take.
        logged: what the prediction log keeps: each record as sent, and its features.
        failed: the failed read, when the records could not be enriched (then both lists are empty).
    """

    records: list[dict[str, Any]]
    logged: list[dict[str, Any]]
    failed: Features | None = None


def _is_key(value: Any) -> bool:
    # Floats and booleans would be cast to a key column silently (1.5 -> 2), reading another entity.
    return type(value) is str or type(value) is int


def key_problems(
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    service: str,
    *,
    noun: str,
    allowed: frozenset[str] | None = None,
    features: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Every missing, null or wrongly typed join key, every feature column sent, and (with ``allowed``)
    every field outside it, each naming its row and column."""
    problems = []
    for i, row in enumerate(rows):
        for key in keys:
            value = row.get(key)
            if value is None:
                kind, said = ("missing_column", "is missing") if key not in row else ("null_value", "is null")
                message = f"{noun} {i}: join key '{key}' of feature service '{service}' {said}."
                problems.append(Problem(i, key, kind, message))
            elif not _is_key(value):
                problems.append(
                    Problem(
                        i,
                        key,
                        "wrong_type",
                        f"{noun} {i}: join key '{key}' must be a JSON string or integer; "
                        f"got {json_type(value)} {shown(value)}.",
                    )
                )
        for name in row:
            if name in features:
                problems.append(
                    Problem(
                        i,
                        name,
                        "feature_column",
                        f"{noun} {i}: column '{name}' is read from feature service '{service}' by "
                        f"{', '.join(keys)}; leave it out of the {noun}.",
                    )
                )
            elif allowed is not None and name not in allowed:
                problems.append(
                    Problem(
                        i,
                        clip_name(name),
                        "unknown_column",
                        f"{noun} {i}: unknown field '{clip_name(name)}'; feature service '{service}' is read "
                        f"by: {', '.join(keys)}.",
                    )
                )
    return problems


def read_features(
    features: OnlineFeatures,
    service: str,
    rows: Sequence[dict[str, Any]],
    *,
    noun: str,
    strict: bool,
) -> Features:
    """The service's features for ``rows``, as JSON values; ``strict``: rows hold the join keys only.

    A key that does not fit its column gives 422; an online store that cannot be opened or read, 503
    (the reader is opened again on the next request).
    """
    keys, columns = features.columns(service)
    problems = key_problems(
        rows,
        keys,
        service,
        noun=noun,
        allowed=frozenset(keys) if strict else None,
        features=frozenset(columns),
    )
    if problems:
        return Features(keys, {}, 422, f"The {noun}s are invalid ({len(problems)} problem(s)).", problems)
    try:
        reader = features.reader(service)
    except Exception as exc:  # an unreachable store, a view not materialised: any of them, retried next time
        return _unavailable(keys, service, exc)
    try:
        read = reader.read(rows)
    except InputError as exc:  # the keys were checked above, so: a key its column's type does not hold
        message = f"Feature service '{service}': {_said(exc)}"
        return Features(keys, {}, 422, message, [Problem(None, None, "wrong_type", message)])
    except Exception as exc:  # the store went away mid-read: psycopg and pool errors alike
        return _unavailable(keys, service, exc)
    return Features(keys, {name: to_jsonable(read[name]) for name in columns})


def enrich(
    features: OnlineFeatures, service: str, records: list[dict[str, Any]], columns: Sequence[Column] | None
) -> Enriched:
    """Add the service's features to each record (see the module docstring).

    ``columns`` is the model's signature: join keys it does not take are left out of the model's records
    (without a signature, records keep them).
    """
    read = read_features(features, service, records, noun="record", strict=False)
    if read.status != 200:
        return Enriched([], [], read)
    logged = []
    for i, record in enumerate(records):
        merged = dict(record)
        for name, values in read.columns.items():
            merged[name] = values[i]
        logged.append(merged)
    taken = {c.name for c in columns} if columns is not None else None
    dropped = [k for k in read.keys if taken is not None and k not in taken]
    model_records = [{k: v for k, v in r.items() if k not in dropped} for r in logged] if dropped else logged
    return Enriched(model_records, logged)


def explain_feature_problems(problems: list[Problem], service: str, added: set[str]) -> list[Problem]:
    """The signature's problems, each about a column the service added saying so: a null there means the
    store had no value for the entity, which the client cannot fix by sending one."""
    explained = []
    for p in problems:
        if p.column in added:
            note = (
                f" (feature service '{service}' has no value for this entity: it was never materialised, "
                "or its newest value is older than the view's TTL)"
                if p.kind == "null_value"
                else f" (read from feature service '{service}')"
            )
            p = Problem(p.record, p.column, p.kind, p.message.rstrip(".") + note + ".")
        explained.append(p)
    return explained


def _said(exc: Exception) -> str:
    message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    hint = getattr(exc, "hint", None)
    text = f"{message} {hint}" if hint else message
    return " ".join(str(text).split())[:500]


def _unavailable(keys: list[str], service: str, exc: Exception) -> Features:
    """503: the client may send the same request again once the store is back (the reader reopens)."""
    message = _said(exc)
    log.warning("Feature service '%s' cannot be read: %s", service, message)
    return Features(keys, {}, 503, f"Feature service '{service}' cannot be read now: {message}")
