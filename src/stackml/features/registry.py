"""The feature registry: every applied version of a repo's definitions, as JSON, in one warehouse table.

``apply`` adds a row only when the definitions differ from the newest version (their JSON, sorted by name,
is compared by digest), so applying the same repo again keeps its version; each row is written by one load,
in one transaction. Two ``apply`` runs at the same moment may both take the next number: run them one at a
time (as a CI job does).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from stackml.errors import InputError, raise_if_problems
from stackml.features.definitions import Definitions

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = ["REGISTRY_TABLE", "Registered", "apply_definitions", "latest", "digest"]

REGISTRY_TABLE = "stackml_feature_registry"


@dataclass(frozen=True)
class Registered:
    """One registered version: its number, when it was applied, the digest of its JSON and the definitions;
    ``changed`` says whether the ``apply`` that returned it wrote a new version."""

    version: int
    applied_at: str
    digest: str
    definitions: Definitions
    changed: bool = False


def digest(defs: Definitions) -> str:
    """A SHA-256 of the definitions' canonical JSON: equal definitions, equal digest."""
    return hashlib.sha256(_json(defs).encode()).hexdigest()


def _json(defs: Definitions) -> str:
    return json.dumps(defs.to_dict(), sort_keys=True, separators=(",", ":"))


def latest(wh: Warehouse) -> Registered | None:
    """The newest registered version, or None when nothing was applied to this warehouse."""
    if not wh.has_table(REGISTRY_TABLE):
        return None
    frame = wh.query(
        f"SELECT version, applied_at, digest, definitions FROM {REGISTRY_TABLE} ORDER BY version DESC LIMIT 1"
    )
    if frame.empty:
        return None
    import pandas as pd

    row = frame.iloc[0]
    return Registered(
        int(row["version"]),
        pd.Timestamp(row["applied_at"]).isoformat(),
        str(row["digest"]),
        _parse(str(row["definitions"])),
    )


def _parse(text: str) -> Definitions:
    from stackml.features.repo import definitions_from_mapping

    problems: list[str] = []
    defs = definitions_from_mapping(json.loads(text), REGISTRY_TABLE, problems)
    raise_if_problems(
        problems,
        what=f"the registered feature definitions in table {REGISTRY_TABLE}",
        hint="Apply the repo again with `stackml features apply --repo DIR`.",
    )
    return defs


def apply_definitions(defs: Definitions, wh: Warehouse) -> Registered:
    """Register ``defs`` as the next version unless they equal the newest one; the version now current."""
    import pandas as pd

    current = latest(wh)
    new_digest = digest(defs)
    if current is not None and current.digest == new_digest:
        return current
    version = 1 if current is None else current.version + 1
    applied_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    row: dict[str, Any] = {
        "version": [version],
        "applied_at": [pd.Timestamp(applied_at)],
        "digest": [new_digest],
        "definitions": [_json(defs)],
    }
    if wh.read_only:
        raise InputError(
            "The warehouse was opened read-only; the feature definitions were not registered.",
            hint="Open it for writing to apply a repo.",
        )
    wh.ingest(pd.DataFrame(row), REGISTRY_TABLE, if_exists="append")
    return Registered(version, applied_at.isoformat(), new_digest, defs, changed=True)
