"""The FastAPI application: one service for every served model.

Endpoints: ``GET /health``, ``GET /ready``, ``GET /v1/models``, ``GET /v1/models/{name}``,
``POST /v1/models/{name}/predict``, ``POST /v1/models/{name}/reload``, ``POST /v1/features/{service}`` and
``GET /metrics``; their routes are in :mod:`stackml.serving.routes`. This module builds the app's state and
puts the routes together.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from stackml._deps import require
from stackml.config import Settings, get_settings
from stackml.serving.health import ProbeCache
from stackml.serving.listener import QUEUE_GRACE_S, refuse_new_connections
from stackml.serving.metrics import Gauge, Metrics
from stackml.serving.online_features import OnlineFeatures, online_features
from stackml.serving.options import ModelSpec, ServingOptions, parse_model_specs
from stackml.serving.prediction_log import PredictionLog
from stackml.serving.registry import ModelCache, champion_models

__all__ = ["create_app", "prediction_log"]

log = logging.getLogger(__name__)
# How long a thread may hold the GIL while another waits for it (see _lifespan).
SWITCH_INTERVAL_S = 0.001


def create_app(
    settings: Settings | None = None,
    models: Sequence[str | ModelSpec] | str | None = None,
    reload_interval_s: float = 30.0,
    *,
    options: ServingOptions | None = None,
    features: OnlineFeatures | None = None,
) -> Any:
    """Build the prediction service for registered models.

    The models are loaded (and tried on their input examples) here, so a bad name fails at once. With
    ``models`` left out, every champion is served and one that cannot be loaded is reported in ``/ready``
    and the log instead of stopping the others. The background work (alias re-resolution, the
    prediction-log writer) runs while the app's lifespan
    runs: under uvicorn, or inside ``with TestClient(app):``.

    Args:
        settings: registry, warehouse, home and API token; default :func:`stackml.config.get_settings`.
        models: ``"name@alias"`` items (or one comma-separated string); default every registered model
            with a ``champion`` alias.
        reload_interval_s: seconds between re-resolutions of each alias (0: only on ``POST .../reload``).
        options: limits, prediction-log tuning and the feature services (``features_repo``,
            ``online_url``, ``enrich``).
        features: the feature services, already read (a worker gets its parent's); default read here from
            ``options.features_repo``, else the definitions registered in the warehouse, if any.

    Returns:
        A ``fastapi.FastAPI`` application.

    Raises:
        RegistryError: a named model or alias does not exist, fails on its own input example or names a
            feature service that cannot enrich it; or, by default, no champion at all can be served.
        InputError: ``options.features_repo`` does not load.

    Example:
        >>> from fastapi.testclient import TestClient  # doctest: +SKIP
        >>> with TestClient(create_app(models=["demand@champion"])) as client:  # doctest: +SKIP
        ...     client.post("/v1/models/demand/predict", json={"records": [{"x": 1.0}]}).json()
        {'predictions': [...], 'model': {'name': 'demand', 'version': 3}, 'request_id': '...'}
    """
    fastapi = require("fastapi")
    from fastapi import Depends
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from stackml import __version__
    from stackml.serving.auth import bearer_guard
    from stackml.serving.middleware import BodySizeLimit, CloseWhileDraining, MetricsMiddleware
    from stackml.serving.routes import features as feature_routes
    from stackml.serving.routes import models as model_routes
    from stackml.serving.routes import predict, service
    from stackml.serving.routes.common import ERROR
    from stackml.serving.schemas import features_request_model, predict_request_model

    settings = settings or get_settings()
    options = options or ServingOptions()
    _check_reload_interval(reload_interval_s)
    specs = parse_model_specs(models) if models is not None else champion_models(settings)
    _check_enrich(options, specs)
    # Read before the prediction log holds the warehouse: DuckDB admits one configuration per process.
    features = features if features is not None else online_features(settings, options)
    # Models named by the caller must all load; of the champions found, serve those that do.
    cache = ModelCache(specs, settings, strict=models is not None, features=features)
    cache.load()
    plog = prediction_log(settings, options)
    metrics = Metrics()
    metrics.add_collector(lambda: _model_gauges(cache))
    metrics.add_collector(lambda: _log_gauges(plog))

    app = fastapi.FastAPI(
        title="stackml prediction service",
        version=__version__,
        description="Predictions from registered MLflow models, validated against their signatures and "
        "logged to the warehouse's prediction_log table.",
        lifespan=_lifespan,
        # Served below, behind the token when one is set: the document names every model.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    # What the lifespan and the route handlers read (see stackml.serving.routes).
    app.state.cache, app.state.prediction_log, app.state.metrics = cache, plog, metrics
    app.state.features = features
    app.state.options, app.state.reload_interval_s = options, reload_interval_s
    timeout = options.probe_timeout_s
    app.state.readiness = ProbeCache(
        {"registry": cache.probe, "warehouse": lambda: plog.probe(timeout)}, options.ready_cache_s, timeout
    )
    app.state.draining = threading.Event()
    app.state.request_ids = predict.request_ids()
    # Added last = outermost: metrics see the 413s the size limit answers.
    app.add_middleware(CloseWhileDraining, draining=app.state.draining)
    app.add_middleware(BodySizeLimit, max_bytes=options.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, served=frozenset(cache.names))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)

    token = settings.api_token.get_secret_value() if settings.api_token else None
    guard = bearer_guard(token)
    secured = [Depends(guard)] if guard else []
    auth_responses: dict[int | str, dict[str, Any]] = {401: ERROR} if guard else {}
    # /health (liveness, no detail) stays open; the API, /ready, /metrics and the docs ask for the token.
    app.include_router(service.public)
    request_model = predict_request_model(options.max_records)
    entities_model = features_request_model(options.max_records)
    routers = (model_routes.router, predict.router(request_model), feature_routes.router(entities_model))
    for router in (*routers, service.router):
        app.include_router(router, dependencies=secured, responses=auth_responses)
    app.openapi = lambda: _openapi(  # type: ignore[method-assign]
        app, cache, features, (request_model, entities_model), options.publish_examples
    )

    @app.get("/openapi.json", include_in_schema=False, dependencies=secured)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=secured)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    return app


def _check_reload_interval(reload_interval_s: Any) -> None:
    if (
        isinstance(reload_interval_s, bool)
        or not isinstance(reload_interval_s, (int, float))
        or reload_interval_s < 0
    ):
        from stackml.errors import InputError

        raise InputError(f"'reload_interval_s' must be a number >= 0, got {reload_interval_s!r}.")


def _check_enrich(options: ServingOptions, specs: Sequence[ModelSpec]) -> None:
    unserved = sorted(set(options.enrich) - {s.name for s in specs})
    if unserved:
        from stackml.errors import InputError

        raise InputError(
            f"--enrich names model(s) this service does not serve: {unserved} "
            f"(served: {', '.join(sorted(s.name for s in specs))}).",
            hint="Name served models in --enrich MODEL=SERVICE, or add them to --models.",
        )


def prediction_log(settings: Settings, options: ServingOptions) -> PredictionLog:
    """The prediction log the service writes for these settings and options (not started)."""
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
    # The prediction-log writer and the alias reloader hold the GIL for bursts of tens of milliseconds;
    # with Python's 5 ms switch interval the event loop waits up to 5 ms each time it wants the GIL back
    # during one (bench/serving.py: p99 19 ms at 1 ms against 21-25 ms at 5 ms, same machine).
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    state.prediction_log.start()
    state.cache.start(state.reload_interval_s)
    previous = _drain_on_sigterm(state)
    try:
        yield
    finally:
        # Uvicorn has finished the requests in flight by now: stop reloading, then drain the log.
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        state.cache.stop()
        state.readiness.close()
        state.features.close()
        state.prediction_log.close(state.options.shutdown_timeout_s)
        gc.unfreeze()  # an app started again (tests do) must not pile frozen garbage up
        sys.setswitchinterval(switch_interval)


def _drain_on_sigterm(state: Any) -> Any:
    """Put a drain period in front of the server's own SIGTERM handler; returns the handler it wraps.

    Uvicorn closes idle kept-alive connections the moment SIGTERM arrives, so a request a client sends
    on one at that moment is reset unanswered. Instead the service stops taking connections (a client is
    refused before it sends anything, and may retry elsewhere; see :mod:`stackml.serving.listener`), keeps
    answering on the open ones during
    the drain, each answer with ``Connection: close`` and ``/ready`` with 503, then hands the signal on.
    Signal handlers belong to the main thread: an app run in another thread (tests) keeps uvicorn's.
    """
    import asyncio

    drain_s = state.options.drain_s
    if drain_s <= 0 or threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return None
    loop = asyncio.get_running_loop()

    def begin_drain() -> None:
        # Stop taking connections before any answer says "Connection: close", or the clients it sends away
        # could reconnect into the listen queue just before it closes and be reset there. uvicorn's handler
        # is a method of its Server, whose `servers` are the listening asyncio servers.
        listeners = list(getattr(getattr(previous, "__self__", None), "servers", None) or ())
        queued = [listener for listener in listeners if refuse_new_connections(listener)]
        for listener in listeners:
            if listener in queued:  # accept what is queued there first, then close it empty
                loop.call_later(QUEUE_GRACE_S, listener.close)
            else:
                listener.close()
        state.draining.set()

    def on_sigterm(sig: int, frame: Any) -> None:
        if state.draining.is_set():  # a second SIGTERM: stop now
            previous(sig, frame)
            return
        loop.call_soon_threadsafe(begin_drain)
        log.info("SIGTERM: draining for %g s before shutting down.", drain_s, extra={"event": "drain"})
        threading.Timer(drain_s, previous, args=(sig, None)).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    return previous


async def _http_error(request: Any, exc: Any) -> Any:
    from stackml.serving.routes.common import error_response

    return error_response(
        exc.status_code,
        str(exc.detail),
        options=request.app.state.options,
        headers=getattr(exc, "headers", None),
    )


async def _invalid_request(request: Any, exc: Any) -> Any:
    from stackml.serving.routes.common import body_problem, error_response

    problems = [body_problem(e) for e in exc.errors()]
    return error_response(
        422, f"The request is invalid ({len(problems)} problem(s)).", problems, request.app.state.options
    )


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


def _openapi(
    app: Any,
    cache: ModelCache,
    features: OnlineFeatures,
    request_models: tuple[Any, ...],
    publish_examples: bool,
) -> dict[str, Any]:
    """The generated document, with the served names as the values of ``{name}`` and ``{service}``.

    Built on each call (it is rarely fetched), so it follows the versions being served. Rows of the
    models' input examples (training data) are in it only with ``publish_examples``.
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
                if parameter.get("in") == "path" and parameter.get("name") == "service" and features.services:
                    parameter["schema"]["enum"] = features.services
            if path.endswith("/predict") and publish_examples:
                content = operation["requestBody"]["content"]["application/json"]
                content["examples"] = {
                    m.name: {"summary": f"{m.name} v{m.version}", "value": {"records": m.example}}
                    for m in cache.models()
                    if m.example
                }
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    # The routes read their bodies themselves (off the event loop); the models that check them document them.
    for request_model in request_models:
        components[request_model.__name__] = request_model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
