"""The record of alias moves: who moved an alias, why, from which version, and the versions to roll back to.

Two kinds of tags, written before the alias itself moves so an interruption never leaves a move unrecorded:

* on the registered model, ``stackml.previous.<alias>``: a JSON list of the versions that held the alias
  before, oldest first (the rollback stack);
* on the version that received the alias, ``stackml.alias_move.<milliseconds>``: a JSON record of the move.

A stack entry equal to the current holder (a move interrupted after its record was written) is skipped when
rolling back, so the record stays right whichever write an interruption stopped at.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

TAG_PREVIOUS = "stackml.previous."  # + alias -> JSON list of earlier holders, oldest first
TAG_MOVE = "stackml.alias_move."  # + milliseconds -> JSON record of one move onto this version
MAX_PREVIOUS = 200  # a registered-model tag holds 5,000 characters


def who() -> str:
    """The OS user moving the alias (the login, else ``$USER``, else ``unknown``)."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError when there is no passwd entry (containers)
        return os.environ.get("USER") or "unknown"


def previous_holders(model: Any, alias: str) -> list[int]:
    """The rollback stack of ``alias`` on a registered model, oldest first."""
    raw = (model.tags or {}).get(TAG_PREVIOUS + alias)
    try:
        return [int(v) for v in json.loads(raw)] if raw else []
    except (ValueError, TypeError):  # a hand-edited tag: start a fresh stack rather than fail every move
        return []


def write_previous(client: Any, name: str, alias: str, stack: list[int]) -> None:
    client.set_registered_model_tag(name, TAG_PREVIOUS + alias, json.dumps(stack[-MAX_PREVIOUS:]))


def record_move(
    client: Any,
    name: str,
    *,
    alias: str,
    version: int,
    previous: int | None,
    action: str,
    reason: str,
) -> dict[str, Any]:
    """Write the record of moving ``alias`` to ``version`` on that version, and return it."""
    record = {
        "alias": alias,
        "version": version,
        "previous": previous,
        "action": action,
        "by": who(),
        "reason": reason,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    client.set_model_version_tag(
        name, str(version), f"{TAG_MOVE}{time.time_ns() // 1_000_000}", json.dumps(record)
    )
    return record


def move_forward(
    client: Any,
    model: Any,
    *,
    alias: str,
    version: int,
    action: str,
    reason: str,
    set_alias: Callable[[str, str, int], None],
) -> dict[str, Any]:
    """Point ``alias`` of ``model`` at ``version`` as a promotion does: record the move, push the current
    holder on the rollback stack, then move the alias (the order the module docstring relies on)."""
    current = int(model.aliases[alias]) if alias in model.aliases else None
    record = record_move(
        client, model.name, alias=alias, version=version, previous=current, action=action, reason=reason
    )
    if current is not None:
        write_previous(client, model.name, alias, [*previous_holders(model, alias), current])
    set_alias(model.name, alias, version)
    return record


def moves_of(version: Any) -> list[tuple[str, dict[str, Any]]]:
    """The move records on one model version, as (tag key, record)."""
    found = []
    for key, value in (version.tags or {}).items():
        if key.startswith(TAG_MOVE):
            try:
                found.append((key, json.loads(value)))
            except ValueError:  # a hand-edited tag is not a record
                continue
    return found
