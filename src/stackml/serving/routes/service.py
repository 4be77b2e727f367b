"""The service's own routes: ``GET /health`` (liveness, open), ``GET /ready`` and ``GET /metrics``."""

import time

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from stackml.serving.metrics import CONTENT_TYPE
from stackml.serving.schemas import LiveResponse, LogState, ProbeResult, ReadyResponse, ServedVersion

__all__ = ["public", "router"]

public = APIRouter(tags=["service"])
"""Routes that never ask for the bearer token."""
router = APIRouter(tags=["service"])
"""Routes that create_app puts behind the bearer token, like the API."""

_LIVE = b'{"status":"ok"}'


@public.get("/health", response_model=LiveResponse)
async def health() -> Response:  # async and constant: a flood of liveness checks costs next to nothing
    """Liveness: the process answers. No detail; see ``GET /ready`` for the state of the service."""
    return Response(_LIVE, media_type="application/json")


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
def ready(request: Request) -> Response:
    """Readiness and detail: probes of the registry and the warehouse (cached), models, prediction log."""
    state = request.app.state
    cache, stats = state.cache, state.prediction_log.stats()
    probes = state.readiness.results()
    registry, warehouse = probes["registry"], probes["warehouse"]
    models = {m.name: ServedVersion(alias=m.alias, version=m.version) for m in cache.models()}
    if state.draining.is_set():
        status = "draining"
    elif not models:
        status = "unavailable"
    elif registry.ok and warehouse.ok and not cache.unavailable and not cache.last_errors:
        status = "ok"
    else:
        status = "degraded"
    body = ReadyResponse(
        status=status,
        registry=ProbeResult(ok=registry.ok, detail=registry.detail),
        warehouse=ProbeResult(ok=warehouse.ok, detail=warehouse.detail),
        probed_seconds_ago=round(time.monotonic() - min(registry.at, warehouse.at), 3),
        models=models,
        unavailable=dict(cache.unavailable),
        refresh_errors=dict(cache.last_errors),
        prediction_log=LogState(
            queued_requests=stats.queued,
            written_rows=stats.written_rows,
            spilled_rows=stats.spilled_rows,
            replayed_rows=stats.replayed_rows,
            spill_files=stats.spill_files,
            spill_bytes=stats.spill_bytes,
        ),
    )
    code = 503 if status in ("draining", "unavailable") else 200
    return Response(body.model_dump_json(), status_code=code, media_type="application/json")


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
            "description": "Prometheus text format 0.0.4.",
        },
    },
)
def prometheus(request: Request) -> Response:
    """Requests, latency histogram and errors per model, plus model versions and prediction-log state."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
