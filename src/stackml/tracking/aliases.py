"""Moving an alias by hand: promote a chosen version, roll back to the previous holder, read the record.

:func:`stackml.tracking.promote` moves ``champion`` only when a candidate wins a comparison; the functions
here are the operator's: they move the alias when told, refuse a version that cannot serve (missing, not
ready, or with a NaN or infinite primary metric), and record who moved it and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stackml.config import Settings
from stackml.errors import InputError, RegistryError
from stackml.tracking import _alias_log
from stackml.tracking._setup import configure, mlflow_module, translate_mlflow_error
from stackml.tracking.registry import TAG_METRIC, get_version, name_filter, registered_model, run_metrics

__all__ = ["AliasMove", "move_alias", "rollback", "alias_history"]


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias, as recorded.

    Attributes:
        name: registered model name.
        alias: the alias moved, e.g. ``"champion"``.
        version: the version that holds the alias after the move.
        previous: the version that held it before (None if none).
        action: ``"compared"`` (by :func:`stackml.tracking.promote`), ``"promote"`` or ``"rollback"``.
        by: the OS user who moved it.
        reason: why.
        at: when (UTC, ISO 8601).
        moved: False when the alias already pointed to ``version`` (nothing was written).
    """

    name: str
    alias: str
    version: int
    previous: int | None
    action: str
    by: str
    reason: str
    at: str
    moved: bool = True


def move_alias(
    name: str,
    version: int | str,
    *,
    reason: str,
    alias: str = "champion",
    metric: str | None = None,
    settings: Settings | None = None,
) -> AliasMove:
    """Point ``alias`` of ``name`` at ``version``, whatever the current holder scores; record who and why.

    Args:
        name: registered model name.
        version: the version to promote.
        reason: why, recorded with the OS user.
        alias: the alias to move.
        metric: the metric that must be a finite number; default the primary metric the version was
            compared on, else every metric of its run.
        settings: where the registry is; default the settings last configured.

    Raises:
        RegistryError: the model or version does not exist, the version is not ready, or its primary
            metric is missing, NaN or infinite.

    Example:
        >>> move_alias("demand", 3, reason="v4 drifts on the new stores").previous  # doctest: +SKIP
        4
    """
    _check_reason(reason)
    client = configure(settings)
    mlflow = mlflow_module()
    target = get_version(client, mlflow, name, version)
    _check_servable(client, mlflow, target, metric)
    model = registered_model(client, mlflow, name)
    current = int(model.aliases[alias]) if alias in model.aliases else None
    if current == int(target.version):
        return AliasMove(name, alias, current, current, "promote", _alias_log.who(), reason, "", moved=False)
    record = _alias_log.move_forward(
        client,
        model,
        alias=alias,
        version=int(target.version),
        action="promote",
        reason=reason,
        set_alias=lambda n, a, v: _set_alias(client, mlflow, n, a, v),
    )
    return AliasMove(name=name, **record)


def rollback(
    name: str, *, reason: str, alias: str = "champion", settings: Settings | None = None
) -> AliasMove:
    """Move ``alias`` back to the version that held it before the current one; record who and why.

    Rolling back again goes one further back, as an undo does. Versions deleted since are skipped.

    Raises:
        RegistryError: the model does not exist, has no such alias, no earlier holder is recorded, or the
            earlier holder cannot serve (see :func:`move_alias`).

    Example:
        >>> rollback("demand", reason="v5 doubles the error on Mondays").version  # doctest: +SKIP
        4
    """
    _check_reason(reason)
    client = configure(settings)
    mlflow = mlflow_module()
    model = registered_model(client, mlflow, name)
    if alias not in model.aliases:
        raise RegistryError(
            f"Model '{name}' has no '{alias}' alias to roll back; its aliases are "
            f"{sorted(model.aliases) or 'none'}.",
            hint=f"Set one with `stackml models promote {name} VERSION --reason ...`.",
        )
    current = int(model.aliases[alias])
    existing = {int(v.version) for v in client.search_model_versions(name_filter(name))}
    stack = _alias_log.previous_holders(model, alias)
    while stack and (stack[-1] == current or stack[-1] not in existing):
        stack.pop()
    if not stack:
        raise RegistryError(
            f"Model '{name}' has no earlier '{alias}' to roll back to: v{current} is the first one recorded.",
            hint=f"Choose a version with `stackml models promote {name} VERSION --reason ...`.",
        )
    target = get_version(client, mlflow, name, stack.pop())
    _check_servable(client, mlflow, target, None)
    record = _alias_log.record_move(
        client,
        name,
        alias=alias,
        version=int(target.version),
        previous=current,
        action="rollback",
        reason=reason,
    )
    # The alias moves before the stack shrinks: interrupted in between, the next rollback skips the entry.
    _set_alias(client, mlflow, name, alias, target.version)
    _alias_log.write_previous(client, name, alias, stack)
    return AliasMove(name=name, **record)


def alias_history(name: str, alias: str = "champion", *, settings: Settings | None = None) -> list[AliasMove]:
    """Every recorded move of ``alias`` of ``name``, oldest first."""
    client = configure(settings)
    mlflow = mlflow_module()
    registered_model(client, mlflow, name)
    found = []
    for mv in client.search_model_versions(name_filter(name)):
        for key, record in _alias_log.moves_of(mv):
            if record.get("alias") == alias:
                found.append((key, record))
    fields = ("alias", "version", "previous", "action", "by", "reason", "at")
    return [
        AliasMove(name=name, **{f: record.get(f) for f in fields})
        for _, record in sorted(found, key=lambda item: int(item[0].rsplit(".", 1)[1]))
    ]


def _check_reason(reason: Any) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise InputError(
            f"A reason is required to move an alias by hand; got {reason!r}.",
            hint="Pass --reason 'why', e.g. --reason 'v5 doubles the error on Mondays'.",
        )


def _check_servable(client: Any, mlflow: Any, mv: Any, metric: str | None) -> None:
    """Refuse a version that is not ready or whose primary metric (or any metric) is missing or not finite."""
    where = f"Model '{mv.name}' v{mv.version}"
    if mv.status != "READY":
        raise RegistryError(
            f"{where} cannot take an alias: its registration is {mv.status}, not READY.",
            hint="Choose a READY version; `stackml models` lists them.",
        )
    metrics = run_metrics(client, mlflow, mv)
    metric = metric or (mv.tags or {}).get(TAG_METRIC)
    if metric is not None and metric not in metrics:
        raise RegistryError(
            f"{where} cannot take an alias: its primary metric '{metric}' is missing from run {mv.run_id}; "
            f"it has {sorted(metrics) or 'no metrics'}.",
            hint="Choose a version whose run logged it; `stackml models` shows each version's metrics.",
        )
    checked = {metric: metrics[metric]} if metric is not None else metrics
    bad = {k: v for k, v in checked.items() if not math.isfinite(v)}
    if bad:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
        raise RegistryError(
            f"{where} cannot take an alias: {shown} is not a finite number.",
            hint="Choose a version with a finite score; `stackml models` shows each version's metrics.",
        )


def _set_alias(client: Any, mlflow: Any, name: str, alias: str, version: str) -> None:
    try:
        client.set_registered_model_alias(name, alias, str(version))
    except mlflow.exceptions.MlflowException as exc:
        raise translate_mlflow_error(exc, f"alias '{alias}' of model '{name}'") from exc
