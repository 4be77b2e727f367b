"""Running a built-in pipeline's flow: the configuration as one JSON value, the source, the registry choices.

The CLI and the demo both start pipelines here, so a flow's Parameters are spelled in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackml.flows.runner import FlowResult, flow_path, run_flow

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
    parameters = {"config": config.to_json(), **source.as_parameters(), "model_name": model_name}
    parameters["register"] = register
    return run_flow(
        flow_path(pipeline), parameters, settings=settings, show_progress=show_progress, console=console
    )
