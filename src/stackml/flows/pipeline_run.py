"""Running a built-in pipeline's flow: the configuration as one JSON value, the source, the registry choices.

The CLI and the demo both start pipelines here, so a flow's Parameters are spelled in one place. The tracking
store is created before the flow starts (no step ever creates it), and a flow that is interrupted or dies
leaves no MLflow run open and no model version half-registered.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from stackml.errors import FlowFailedError
from stackml.flows.runner import FlowInterruptedError, FlowResult, flow_path, run_flow

if TYPE_CHECKING:
    from stackml.config import Settings
    from stackml.pipelines import PipelineConfig, Source

__all__ = ["run_pipeline_flow"]


def run_pipeline_flow(
    pipeline: str,
    config: PipelineConfig,
    source: Source,
    *,
    model_name: str,
    register: bool = True,
    settings: Settings | None = None,
    show_progress: bool = True,
    console: Any = None,
) -> FlowResult:
    """Run ``<pipeline>_flow.py`` with ``config`` as its ``config`` Parameter and the source's
    ``data``/``table``.

    Args:
        pipeline: the flow's name, e.g. ``"mmm"`` (see :func:`stackml.flows.available_flows`).
        config: the pipeline's configuration; the flow validates it again from JSON.
        source: the data file or warehouse table.
        model_name: the registered model name.
        register: register and promote the model.
        settings: the stackml settings the flow's steps see (home, warehouse URL, tracking store).
        show_progress, console: as for :func:`stackml.flows.run_flow`.
    """
    from stackml import tracking
    from stackml.config import get_settings

    settings = settings or get_settings()
    tracking.ensure_store(settings)
    parameters = {"config": config.to_json(), **source.as_parameters(), "model_name": model_name}
    parameters["register"] = register
    launch = uuid.uuid4().hex
    try:
        return run_flow(
            flow_path(pipeline),
            parameters,
            settings=settings,
            show_progress=show_progress,
            console=console,
            env={tracking.LAUNCH_ENV: launch},
        )
    except FlowFailedError as exc:
        interrupted = isinstance(exc, FlowInterruptedError)
        closed = tracking.abandon_launch(
            launch, status="KILLED" if interrupted else "FAILED", settings=settings
        )
        if closed.runs or closed.removed_versions:
            exc.message += _closed_note(closed, "KILLED" if interrupted else "FAILED")
        raise
    except KeyboardInterrupt:  # before the run had an id: its processes are gone, close what they opened
        tracking.abandon_launch(launch, status="KILLED", settings=settings)
        raise


def _closed_note(closed: Any, status: str) -> str:
    parts = []
    if closed.runs:
        parts.append(f"{len(closed.runs)} open MLflow run(s) marked {status}")
    if closed.removed_versions:
        parts.append(f"half-registered {', '.join(closed.removed_versions)} removed")
    return f" ({'; '.join(parts)}.)"
