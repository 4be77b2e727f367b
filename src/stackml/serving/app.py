"""The FastAPI application: one service for every served model.

Endpoints: ``GET /health``, ``GET /v1/models``, ``GET /v1/models/{name}``,
``POST /v1/models/{name}/predict``, ``POST /v1/models/{name}/reload`` and ``GET /metrics``; their routes are
in :mod:`stackml.serving.routes`. This module builds the app's state and puts the routes together.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from stackml._deps import require
from stackml.config import Settings, get_settings
from stackml.serving.metrics import Gauge, Metrics
from stackml.serving.options import ModelSpec, ServingOptions, parse_model_specs
from stackml.serving.prediction_log import PredictionLog
from stackml.serving.registry import ModelCache, champion_models
from stackml.serving.validation import Problem

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    models: Sequence[str | ModelSpec] | str | None = None,
    reload_interval_s: float = 30.0,
    *,
    options: ServingOptions | None = None,
) -> Any:
    """Build the prediction service for registered models.

    The models are loaded (and tried on their input examples) here, so a bad name fails at once. The
    background work (alias re-resolution, the prediction-log writer) runs while the app's lifespan
    runs: under uvicorn, or inside ``with TestClient(app):``.

    Args:
        settings: registry, warehouse, home and API token; default :func:`stackml.config.get_settings`.
        models: ``"name@alias"`` items (or one comma-separated string); default every registered model
            with a ``champion`` alias.
        reload_interval_s: seconds between re-resolutions of each alias (0: only on ``POST .../reload``).
        options: limits and prediction-log tuning.

    Returns:
        A ``fastapi.FastAPI`` application.

    Raises:
        RegistryError: a model or alias does not exist, or a model fails on its own input example.

    Example:
        >>> from fastapi.testclient import TestClient  # doctest: +SKIP
        >>> with TestClient(create_app(models=["demand@champion"])) as client:  # doctest: +SKIP
        ...     client.post("/v1/models/demand/predict", json={"records": [{"x": 1.0}]}).json()
        {'predictions': [...], 'model': {'name': 'demand', 'version': 3}, 'request_id': '...'}
    """
    fastapi = require("fastapi")
    from fastapi import Depends
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from stackml import __version__
    from stackml.serving.auth import bearer_guard
    from stackml.serving.middleware import BodySizeLimit, MetricsMiddleware
    from stackml.serving.routes import models as model_routes
    from stackml.serving.routes import predict, service
    from stackml.serving.routes.common import ERROR
    from stackml.serving.schemas import predict_request_model

    settings = settings or get_settings()
    options = options or ServingOptions()
    _check_reload_interval(reload_interval_s)
    specs = parse_model_specs(models) if models is not None else champion_models(settings)
    cache = ModelCache(specs, settings)
    cache.load()
    plog = _prediction_log(settings, options)
    metrics = Metrics()
    metrics.add_collector(lambda: _model_gauges(cache))
    metrics.add_collector(lambda: _log_gauges(plog))

    app = fastapi.FastAPI(
        title="stackml prediction service",
        version=__version__,
        description="Predictions from registered MLflow models, validated against their signatures and "
        "logged to the warehouse's prediction_log table.",
        lifespan=_lifespan,
    )
    # What the lifespan and the route handlers read (see stackml.serving.routes).
    app.state.cache, app.state.prediction_log, app.state.metrics = cache, plog, metrics
    app.state.options, app.state.reload_interval_s = options, reload_interval_s
    app.state.probes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stackml-probe")
    app.state.request_ids = predict.request_ids()
    # Added last = outermost: metrics see the 413s the size limit answers.
    app.add_middleware(BodySizeLimit, max_bytes=options.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, served=frozenset(cache.names))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)

    token = settings.api_token.get_secret_value() if settings.api_token else None
    guard = bearer_guard(token)
    secured = [Depends(guard)] if guard else []
    auth_responses: dict[int | str, dict[str, Any]] = {401: ERROR} if guard else {}
    # /health stays open (a load balancer has no token); the API and /metrics ask for it when one is set.
    app.include_router(service.public)
    predict_router = predict.router(predict_request_model(options.max_records))
    for router in (model_routes.router, predict_router, service.router):
        app.include_router(router, dependencies=secured, responses=auth_responses)

    app.openapi = lambda: _openapi(app, cache)  # type: ignore[method-assign]
    return app


def _check_reload_interval(reload_interval_s: Any) -> None:
    if (
        isinstance(reload_interval_s, bool)
        or not isinstance(reload_interval_s, (int, float))
        or reload_interval_s < 0
    ):
        from stackml.errors import InputError

        raise InputError(f"'reload_interval_s' must be a number >= 0, got {reload_interval_s!r}.")


def _prediction_log(settings: Settings, options: ServingOptions) -> PredictionLog:
    return PredictionLog(
        settings.warehouse_url or "",
        options.spill_dir or settings.home / "serving" / "spill",
        table=options.log_table,
        batch_size=options.log_batch_size,
        flush_interval_s=options.log_flush_interval_s,
        retry_interval_s=options.log_retry_interval_s,
        hold_connection=options.log_hold_connection,
    )


@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    state = app.state
    # MLflow, pandas and the models leave millions of long-lived objects; frozen, they stay out of
    # the collector's full passes, which otherwise stall requests for tens of milliseconds.
    gc.collect()
    gc.freeze()
    state.prediction_log.start()
    state.cache.start(state.reload_interval_s)
    try:
        yield
    finally:
        # Uvicorn has finished the requests in flight by now: stop reloading, then drain the log.
        state.cache.stop()
        state.prediction_log.close(state.options.shutdown_timeout_s)
        gc.unfreeze()  # an app started again (tests do) must not pile frozen garbage up


async def _http_error(_request: Any, exc: Any) -> Any:
    from stackml.serving.routes.common import error_response

    return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _invalid_request(_request: Any, exc: Any) -> Any:
    from stackml.serving.routes.common import error_response

    problems = [_body_problem(e) for e in exc.errors()]
    return error_response(422, f"The request is invalid ({len(problems)} problem(s)).", problems)


def _body_problem(error: dict[str, Any]) -> Problem:
    """A pydantic error about the body as a Problem: record index and column when the location has them."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    record = loc[1] if len(loc) > 1 and loc[0] == "records" and isinstance(loc[1], int) else None
    column = str(loc[2]) if record is not None and len(loc) > 2 else None
    where = ".".join(str(p) for p in loc) or "body"
    return Problem(record, column, "invalid_body", f"{where}: {error.get('msg', 'invalid')}.")


def _model_gauges(cache: ModelCache) -> list[Gauge]:
    versions = Gauge("stackml_model_version", "Version served, by model and alias.")
    reloads = Gauge(
        "stackml_model_reloads_total", "Times a new version was swapped in, by model.", kind="counter"
    )
    stale = Gauge("stackml_model_refresh_failing", "1 while the last re-resolution of the alias failed.")
    for m in cache.models():
        versions.samples[(("model", m.name), ("alias", m.alias))] = m.version
        reloads.samples[(("model", m.name),)] = cache.reloads.get(m.name, 0)
        stale.samples[(("model", m.name),)] = 1 if m.name in cache.last_errors else 0
    return [versions, reloads, stale]


def _log_gauges(plog: PredictionLog) -> list[Gauge]:
    s = plog.stats()
    rows = Gauge("stackml_prediction_log_rows_total", "Prediction-log rows, by outcome.", kind="counter")
    rows.samples = {
        (("outcome", "written"),): s.written_rows,
        (("outcome", "spilled"),): s.spilled_rows,
        (("outcome", "replayed"),): s.replayed_rows,
    }
    return [
        rows,
        Gauge(
            "stackml_prediction_log_queued_requests", "Requests waiting for the log writer.", {(): s.queued}
        ),
        Gauge(
            "stackml_prediction_log_spill_bytes",
            "Bytes in spill files waiting for replay.",
            {(): s.spill_bytes},
        ),
        Gauge(
            "stackml_prediction_log_warehouse_ok",
            "1 when the last warehouse write or probe succeeded.",
            {(): 1 if s.warehouse_ok else 0},
        ),
    ]


def _openapi(app: Any, cache: ModelCache) -> dict[str, Any]:
    """The generated document, with the served names as the values of ``{name}`` and their examples.

    Built on each call (it is rarely fetched), so the examples follow the versions being served.
    """
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            default_422 = operation.get("responses", {}).get("422", {})
            if "HTTPValidationError" in json.dumps(default_422):
                # FastAPI documents a 422 for any route with a parameter; a free-text path name cannot fail.
                del operation["responses"]["422"]
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") == "name":
                    parameter["schema"]["enum"] = cache.names
            if path.endswith("/predict"):
                content = operation["requestBody"]["content"]["application/json"]
                content["examples"] = {
                    m.name: {"summary": f"{m.name} v{m.version}", "value": {"records": m.example}}
                    for m in cache.models()
                    if m.example
                }
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
