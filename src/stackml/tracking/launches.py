"""Closing what an interrupted flow left open: its MLflow runs and any model version it half-registered.

A flow started by stackml runs with a launch id in its environment, and :func:`stackml.tracking.start_run`
tags every run with it. When the flow is interrupted or dies, the caller (still alive, the flow's processes
gone) calls :func:`abandon_launch`: runs still RUNNING are ended with the given status, and a version
registered by one of those runs whose promotion was cut short is deleted, so the registry holds only whole
versions; resuming the flow registers the model again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackml.config import Settings
from stackml.tracking._setup import configure, mlflow_module
from stackml.tracking.registry import TAG_DECISION
from stackml.tracking.runs import EXPERIMENT_PREFIX, TAG_LAUNCH

__all__ = ["Abandoned", "abandon_launch"]


@dataclass
class Abandoned:
    """What :func:`abandon_launch` closed.

    Attributes:
        runs: ids of the runs it ended.
        removed_versions: ``"name vN"`` of each half-registered version it deleted.
    """

    runs: list[str] = field(default_factory=list)
    removed_versions: list[str] = field(default_factory=list)


def abandon_launch(launch: str, *, status: str = "KILLED", settings: Settings | None = None) -> Abandoned:
    """End the launch's open runs with ``status`` and delete the versions it left half-registered.

    A version counts as half-registered when its registration did not finish (not READY), when no promotion
    decision was recorded on it, or when it was decided "promoted" but the alias never moved to it.

    Args:
        launch: the launch id the flow ran with (the ``stackml.launch`` run tag).
        status: ``"KILLED"`` for an interrupted or stopped flow, ``"FAILED"`` for one that died.
        settings: where to track; default the settings last configured.
    """
    client = configure(settings)
    mlflow = mlflow_module()
    closed = Abandoned()
    experiments = client.search_experiments(filter_string=f"name LIKE '{EXPERIMENT_PREFIX}%'")
    if not experiments:
        return closed
    runs = client.search_runs(
        [e.experiment_id for e in experiments], filter_string=f"tags.`{TAG_LAUNCH}` = '{launch}'"
    )
    for run in runs:
        if run.info.status not in ("FINISHED", status):
            # A run an interrupted task ended as FAILED (KeyboardInterrupt) was killed all the same.
            client.set_terminated(run.info.run_id, status=status)
            closed.runs.append(run.info.run_id)
        for mv in client.search_model_versions(f"run_id = '{run.info.run_id}'"):
            if _half_made(client, mv):
                try:
                    client.delete_model_version(mv.name, mv.version)
                except mlflow.exceptions.MlflowException:  # already gone: nothing half-made remains
                    continue
                closed.removed_versions.append(f"{mv.name} v{mv.version}")
    return closed


def _half_made(client: Any, mv: Any) -> bool:
    decision = (mv.tags or {}).get(TAG_DECISION)
    if mv.status != "READY" or decision is None:
        return True
    if decision != "promoted":
        return False
    aliases = client.get_registered_model(mv.name).aliases
    return str(mv.version) not in {str(v) for v in aliases.values()}
