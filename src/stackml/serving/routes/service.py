"""The service's own routes: ``GET /health`` (open to load balancers) and ``GET /metrics`` (Prometheus)."""

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from stackml.serving.metrics import CONTENT_TYPE
from stackml.serving.schemas import HealthResponse, LogState, ProbeResult

__all__ = ["public", "router"]

public = APIRouter(tags=["service"])
"""Routes that never ask for the bearer token."""
router = APIRouter(tags=["service"])
"""Routes that create_app puts behind the bearer token, like the API."""


@public.get("/health", response_model=HealthResponse)
def health(request: Request) -> Response:
    """Probe the registry and the warehouse for real; ``degraded`` when either does not answer."""
    state = request.app.state
    cache, plog, timeout = state.cache, state.prediction_log, state.options.probe_timeout_s
    registry = _probe(state.probes, cache.probe, timeout)
    warehouse = _probe(state.probes, lambda: plog.probe(timeout), timeout)
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


def _probe(pool: ThreadPoolExecutor, check: Any, timeout: float) -> ProbeResult:
    try:
        ok, detail = pool.submit(check).result(timeout=timeout)
    except FutureTimeout:
        return ProbeResult(ok=False, detail=f"no answer within {timeout:g} s")
    except Exception as exc:  # the probe exists to turn any failure into a report
        return ProbeResult(ok=False, detail=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    return ProbeResult(ok=ok, detail=detail)
