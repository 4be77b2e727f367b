"""The FastAPI application: one service for every served model.

Endpoints: ``GET /health``, ``GET /v1/models``, ``GET /v1/models/{name}``,
``POST /v1/models/{name}/predict``, ``POST /v1/models/{name}/reload`` and ``GET /metrics``.
"""

# No `from __future__ import annotations`: FastAPI must see the locally built request model as a class.

import gc
import itertools
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager
from typing import Any

from stackml._deps import require
from stackml.config import Settings, get_settings
from stackml.errors import RegistryError
from stackml.serving.jsonable import to_jsonable
from stackml.serving.metrics import CONTENT_TYPE, Gauge, Metrics
from stackml.serving.options import ModelSpec, ServingOptions, parse_model_specs
from stackml.serving.prediction_log import PredictionLog
from stackml.serving.registry import ModelCache, ServedModel, champion_models
from stackml.serving.schemas import (
    ErrorResponse,
    HealthResponse,
    LogState,
    ModelInfo,
    ModelList,
    PredictResponse,
    ProbeResult,
    ReloadResponse,
    predict_request_model,
)
from stackml.serving.validation import Problem, validate_records

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ERROR = {"model": ErrorResponse}


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
    from fastapi import Depends, Header, Path
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import PlainTextResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from stackml import __version__
    from stackml.serving.auth import bearer_guard
    from stackml.serving.middleware import BodySizeLimit, MetricsMiddleware

    settings = settings or get_settings()
    options = options or ServingOptions()
    if (
        isinstance(reload_interval_s, bool)
        or not isinstance(reload_interval_s, (int, float))
        or reload_interval_s < 0
    ):
        from stackml.errors import InputError

        raise InputError(f"'reload_interval_s' must be a number >= 0, got {reload_interval_s!r}.")
    specs = parse_model_specs(models) if models is not None else champion_models(settings)
    cache = ModelCache(specs, settings)
    cache.load()
    plog = PredictionLog(
        settings.warehouse_url or "",
        options.spill_dir or settings.home / "serving" / "spill",
        table=options.log_table,
        batch_size=options.log_batch_size,
        flush_interval_s=options.log_flush_interval_s,
        retry_interval_s=options.log_retry_interval_s,
        hold_connection=options.log_hold_connection,
    )
    metrics = Metrics()
    metrics.add_collector(lambda: _model_gauges(cache))
    metrics.add_collector(lambda: _log_gauges(plog))
    probes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stackml-probe")

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        # MLflow, pandas and the models leave millions of long-lived objects; frozen, they stay out of
        # the collector's full passes, which otherwise stall requests for tens of milliseconds.
        gc.collect()
        gc.freeze()
        plog.start()
        cache.start(reload_interval_s)
        try:
            yield
        finally:
            # Uvicorn has finished the requests in flight by now: stop reloading, then drain the log.
            cache.stop()
            plog.close(options.shutdown_timeout_s)
            gc.unfreeze()  # an app started again (tests do) must not pile frozen garbage up

    app = fastapi.FastAPI(
        title="stackml prediction service",
        version=__version__,
        description="Predictions from registered MLflow models, validated against their signatures and "
        "logged to the warehouse's prediction_log table.",
        lifespan=lifespan,
    )
    app.state.cache, app.state.prediction_log, app.state.metrics = cache, plog, metrics
    # Added last = outermost: metrics see the 413s the size limit answers.
    app.add_middleware(BodySizeLimit, max_bytes=options.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, served=frozenset(cache.names))

    token = settings.api_token.get_secret_value() if settings.api_token else None
    guard = bearer_guard(token)
    secured = [Depends(guard)] if guard else []
    auth_responses: dict[int | str, dict[str, Any]] = {401: _ERROR} if guard else {}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Any, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Any, exc: RequestValidationError) -> Response:
        problems = [_body_problem(e) for e in exc.errors()]
        return _error(422, f"The request is invalid ({len(problems)} problem(s)).", problems)

    async def served_model(  # async: a plain def would cost a thread hop per request
        name: str = Path(description="A served model (see GET /v1/models)."),
    ) -> ServedModel:
        served = cache.get(name)
        if served is None:
            raise StarletteHTTPException(
                404, f"Model '{name}' is not served here; served models: {', '.join(cache.names)}."
            )
        return served

    PredictRequest = predict_request_model(options.max_records)  # noqa: N806 - a class
    # Request ids: a random per-app prefix and a counter, unique like uuid4 without a syscall per request.
    id_prefix, id_counter = uuid.uuid4().hex[:20], itertools.count()

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    def health() -> Response:
        """Probe the registry and the warehouse for real; ``degraded`` when either does not answer."""
        registry = _probe(probes, cache.probe, options.probe_timeout_s)
        warehouse = _probe(probes, lambda: plog.probe(options.probe_timeout_s), options.probe_timeout_s)
        stats = plog.stats()
        body = HealthResponse(
            status="ok" if registry.ok and warehouse.ok else "degraded",
            registry=registry,
            warehouse=warehouse,
            models={m.name: m.version for m in cache.models()},
            prediction_log=LogState(
                queued_requests=stats.queued,
                written_rows=stats.written_rows,
                spilled_rows=stats.spilled_rows,
                replayed_rows=stats.replayed_rows,
                spill_files=stats.spill_files,
                spill_bytes=stats.spill_bytes,
            ),
        )
        return Response(body.model_dump_json(), media_type="application/json")

    @app.get(
        "/v1/models",
        response_model=ModelList,
        responses=auth_responses,
        dependencies=secured,
        tags=["models"],
    )
    def list_served() -> ModelList:
        """The served models: version, alias, input and output schema, an example."""
        return ModelList(models=[_info(m, cache) for m in cache.models()])

    @app.get(
        "/v1/models/{name}",
        response_model=ModelInfo,
        responses={**auth_responses, 404: _ERROR},
        dependencies=secured,
        tags=["models"],
    )
    def describe(served: ServedModel = Depends(served_model)) -> ModelInfo:
        """One served model."""
        return _info(served, cache)

    @app.post(
        "/v1/models/{name}/predict",
        response_model=PredictResponse,
        # 400: a body FastAPI cannot even decode (not UTF-8); 422: JSON that is not a valid request.
        responses={**auth_responses, 400: _ERROR, 404: _ERROR, 413: _ERROR, 422: _ERROR, 500: _ERROR},
        dependencies=secured,
        tags=["models"],
    )
    async def predict(
        body: PredictRequest,  # type: ignore[valid-type]
        served: ServedModel = Depends(served_model),
        x_request_id: str | None = Header(
            None,
            description="Your id for the request (letters, digits, '._:-', at most 128); else one is made.",
        ),
    ) -> Response:
        """Predict records with the model's current version; every problem in the input gives one 422."""
        records = body.records
        frame, problems, exact = validate_records(records, served.columns)
        if problems:
            return _error(
                422,
                f"{len(problems)} problem(s) in the records for model '{served.name}' v{served.version}.",
                problems,
            )
        model_predict = served.direct if exact and served.direct is not None else served.model.predict
        try:
            if served.inline:
                output = model_predict(frame)
            else:
                output = await run_in_threadpool(model_predict, frame)
            predictions = to_jsonable(output)
        except (
            Exception
        ) as exc:  # the model's own code may raise anything; the client gets a 4xx/5xx, not a hang
            return _prediction_failure(served, exc)
        if not isinstance(predictions, list):
            predictions = [predictions]
        if x_request_id and _REQUEST_ID.match(x_request_id):
            request_id = x_request_id
        else:
            request_id = f"{id_prefix}{next(id_counter):012x}"
        plog.submit(request_id, served.name, served.version, served.alias, records, predictions)
        metrics.count_records(served.name, str(served.version), len(records))
        content = json.dumps(
            {
                "predictions": predictions,
                "model": {"name": served.name, "version": served.version},
                "request_id": request_id,
            }
        )
        return Response(content, media_type="application/json", headers={"X-Request-ID": request_id})

    @app.post(
        "/v1/models/{name}/reload",
        response_model=ReloadResponse,
        responses={**auth_responses, 404: _ERROR, 409: _ERROR, 503: _ERROR},
        dependencies=secured,
        tags=["models"],
    )
    def reload(served: ServedModel = Depends(served_model)) -> ReloadResponse:
        """Re-resolve the model's alias now; serve the version it points to (loaded fully, then swapped)."""
        try:
            result = cache.reload(served.name)
        except RegistryError as exc:
            raise StarletteHTTPException(409, f"{exc.message} Still serving v{served.version}.") from exc
        except Exception as exc:  # the registry is down or answered garbage: the old version keeps serving
            log.warning("Reloading %s failed: %s", served.name, exc)
            raise StarletteHTTPException(
                503,
                f"The registry could not be asked ({type(exc).__name__}: {exc}). "
                f"Still serving v{served.version}.",
            ) from exc
        return ReloadResponse(
            name=result.name,
            alias=result.alias,
            previous_version=result.previous_version,
            version=result.version,
            changed=result.changed,
        )

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            **auth_responses,
            200: {
                "content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
                "description": "Prometheus text format 0.0.4.",
            },
        },
        dependencies=secured,
        tags=["service"],
    )
    def prometheus() -> Response:
        """Requests, latency histogram and errors per model, plus model versions and prediction-log state."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.openapi = lambda: _openapi(app, cache)  # type: ignore[method-assign]
    return app


def _error(status: int, detail: str, problems: Sequence[Problem] = (), headers: Any = None) -> Any:
    from fastapi.responses import Response

    body = {"detail": detail, "problems": [p.__dict__ for p in problems]}
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _body_problem(error: dict[str, Any]) -> Problem:
    """A pydantic error about the body as a Problem: record index and column when the location has them."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    record = loc[1] if len(loc) > 1 and loc[0] == "records" and isinstance(loc[1], int) else None
    column = str(loc[2]) if record is not None and len(loc) > 2 else None
    where = ".".join(str(p) for p in loc) or "body"
    return Problem(record, column, "invalid_body", f"{where}: {error.get('msg', 'invalid')}.")


def _prediction_failure(served: ServedModel, exc: Exception) -> Any:
    """MLflow's schema enforcement rejecting the input is the client's fault (422); anything else is ours."""
    code = getattr(exc, "error_code", "")
    where = f"model '{served.name}' v{served.version}"
    if code == "INVALID_PARAMETER_VALUE":
        message = " ".join(str(getattr(exc, "message", exc)).split())[:500]
        return _error(
            422, f"The input does not fit {where}: {message}", [Problem(None, None, "invalid_body", message)]
        )
    log.exception("Prediction failed for %s", where)
    return _error(500, f"The {where} failed to predict: {type(exc).__name__}: {str(exc)[:500]}")


def _probe(pool: ThreadPoolExecutor, check: Any, timeout: float) -> ProbeResult:
    try:
        ok, detail = pool.submit(check).result(timeout=timeout)
    except FutureTimeout:
        return ProbeResult(ok=False, detail=f"no answer within {timeout:g} s")
    except Exception as exc:  # the probe exists to turn any failure into a report
        return ProbeResult(ok=False, detail=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    return ProbeResult(ok=ok, detail=detail)


def _info(served: ServedModel, cache: ModelCache) -> ModelInfo:
    return ModelInfo(
        name=served.name,
        alias=served.alias,
        version=served.version,
        run_id=served.run_id,
        input_schema=served.input_schema,
        output_schema=served.output_schema,
        example=served.example,
        loaded_at=served.loaded_at,
        last_refresh_error=cache.last_errors.get(served.name),
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
