"""Serving: one FastAPI service for every registered model, by ``name@alias``.

Input is validated against each model's MLflow signature, every prediction is logged to the
warehouse's ``prediction_log`` table (batched off the request path, spilled to disk while the warehouse
is down), aliases are re-resolved while serving, and ``/metrics`` speaks Prometheus. Feature services are
read online by entity key (``/v1/features/{service}``), and a model trained on one gets its features added
to each record before it sees it (:mod:`stackml.serving.enrichment`).

Example:
    >>> from stackml.serving import create_app
    >>> app = create_app(models=["demand@champion"])  # doctest: +SKIP
    >>> # uvicorn.run(app, port=8000), or from a shell: stackml serve --models demand@champion
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackml.serving.options import ModelSpec, ServingOptions, parse_model_specs

if TYPE_CHECKING:
    from stackml.serving.app import create_app

__all__ = ["create_app", "ServingOptions", "ModelSpec", "parse_model_specs"]


def __getattr__(name: str) -> Any:
    # FastAPI is imported on first use of the app, so `stackml.serving.options` stays cheap to import.
    if name == "create_app":
        from stackml.serving.app import create_app

        return create_app
    raise AttributeError(f"module 'stackml.serving' has no attribute {name!r}")
