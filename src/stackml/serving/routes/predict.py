"""Prediction: ``POST /v1/models/{name}/predict``, the hot path of the service.

The route reads the raw body on the event loop and does nothing else there: parsing, validation, the
model call and JSON encoding run in :func:`answer`, in the thread pool, so one client sending large
bodies cannot stall the others. Only a small body for a fast model is answered on the loop, where a
thread hop would cost more than the work; never one whose records are enriched with online features
(:mod:`stackml.serving.enrichment`), which waits on PostgreSQL.
"""

# No `from __future__ import annotations`: FastAPI reads the handler's annotations at runtime.

import itertools
import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from stackml.serving.enrichment import enrich, explain_feature_problems
from stackml.serving.jsonable import to_jsonable
from stackml.serving.logs import REQUEST_ID
from stackml.serving.registry import ServedModel
from stackml.serving.routes.common import ERROR, body_problem, error_response, not_json, served_model
from stackml.serving.schemas import PredictResponse
from stackml.serving.validation import Problem, validate_records

__all__ = ["request_ids", "router", "answer", "parse_body", "set_request_id", "INLINE_BODY_BYTES"]

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Bodies up to this size, for a model that predicts within INLINE_PREDICT_S, are answered on the event
# loop: a few records validate in microseconds, less than the thread hop costs.
INLINE_BODY_BYTES = 4096


def request_ids() -> Iterator[str]:
    """Request ids: a random per-app prefix and a counter, unique like uuid4 without a syscall per request."""
    prefix = uuid.uuid4().hex[:20]
    return (f"{prefix}{n:012x}" for n in itertools.count())


def router(request_model: type[BaseModel]) -> APIRouter:
    """The prediction route; ``request_model`` (the app's record limit is in its schema) checks the body."""
    predict_router = APIRouter(tags=["models"])
    # the body is read raw (see predict); the docs still describe it, by the schema the app registers
    schema = {"$ref": f"#/components/schemas/{request_model.__name__}"}

    @predict_router.post(
        "/v1/models/{name}/predict",
        response_model=PredictResponse,
        # 400: a body that is not UTF-8 text; 415: not declared as JSON; 422: JSON but not a valid request.
        responses={400: ERROR, 404: ERROR, 413: ERROR, 415: ERROR, 422: ERROR, 500: ERROR, 503: ERROR},
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
        },
    )
    async def predict(
        request: Request,
        served: ServedModel = Depends(served_model),
        x_request_id: str | None = Header(
            None,
            description="Your id for the request (letters, digits, '._:-', at most 128); else one is made.",
        ),
    ) -> Response:
        """Predict records with the model's current version; every problem in the input gives one 422."""
        refused = not_json(request.headers.get("content-type"))
        if refused is not None:
            return refused
        body = await request.body()
        state = request.app.state
        set_request_id(state, x_request_id)
        # A model enriched from the online store waits on PostgreSQL: never on the event loop.
        if served.inline and served.feature_service is None and len(body) <= INLINE_BODY_BYTES:
            return answer(state, served, request_model, body)
        return await run_in_threadpool(answer, state, served, request_model, body)

    return predict_router


def answer(state: Any, served: ServedModel, request_model: type[BaseModel], body: bytes) -> Response:
    """Parse, validate, predict, log and encode one request (a plain function: it runs in a worker thread)."""
    options = state.options
    records, problems, status = parse_body(body, request_model, "records")
    if problems:
        return error_response(
            status, f"The request is invalid ({len(problems)} problem(s)).", problems, options
        )
    model_records = records
    if served.feature_service is not None:
        enriched = enrich(state.features, served.feature_service, records, served.columns)
        if enriched.failed is not None:
            failed = enriched.failed
            return error_response(failed.status, failed.detail, failed.problems, options)
        records, model_records = enriched.logged, enriched.records  # the log keeps keys and features
    frame, problems, exact = validate_records(model_records, served.columns)
    if problems:
        if served.feature_service is not None:
            _, added = state.features.columns(served.feature_service)
            problems = explain_feature_problems(problems, served.feature_service, set(added))
        where = f"model '{served.name}' v{served.version}"
        return error_response(
            422, f"{len(problems)} problem(s) in the records for {where}.", problems, options
        )
    model_predict = served.direct if exact and served.direct is not None else served.model.predict
    try:
        predictions = to_jsonable(model_predict(frame))
    except Exception as exc:  # the model's own code may raise anything; the client gets a 4xx/5xx, not a hang
        return _prediction_failure(served, exc)
    if not isinstance(predictions, list):
        predictions = [predictions]
    request_id = REQUEST_ID.get() or ""
    # Written to the local journal before the answer leaves: an answered prediction survives a SIGKILL.
    state.prediction_log.submit(request_id, served.name, served.version, served.alias, records, predictions)
    state.metrics.count_records(served.name, str(served.version), len(records))
    content = json.dumps(
        {
            "predictions": predictions,
            "model": {"name": served.name, "version": served.version},
            "request_id": request_id,
        }
    )
    return Response(content, media_type="application/json", headers={"X-Request-ID": request_id})


def set_request_id(state: Any, given: str | None) -> None:
    """Set the client's request id when well-formed, else a new one, in this task's context (for the logs)."""
    REQUEST_ID.set(given if given and _REQUEST_ID.match(given) else next(state.request_ids))


def parse_body(body: bytes, request_model: type[BaseModel], field: str) -> tuple[Any, list[Problem], int]:
    """The body's ``field`` list, or the problems with the body and the status to answer them with."""
    try:
        payload = json.loads(body)
    except UnicodeDecodeError as exc:
        return None, [Problem(None, None, "invalid_body", f"The body is not UTF-8 text: {exc}.")], 400
    except ValueError as exc:  # JSONDecodeError, and integers too long to read
        return None, [Problem(None, None, "invalid_body", f"The body is not valid JSON: {exc}.")], 422
    try:
        request_model.model_validate(payload)
    except ValidationError as exc:
        return None, [body_problem(e) for e in exc.errors(include_url=False)], 422
    return payload[field], [], 200


def _prediction_failure(served: ServedModel, exc: Exception) -> Response:
    """MLflow's schema enforcement or our InputError rejecting the input is the client's fault (422)."""
    from stackml.errors import InputError

    code = getattr(exc, "error_code", "")
    where = f"model '{served.name}' v{served.version}"
    if code == "INVALID_PARAMETER_VALUE" or isinstance(exc, InputError):
        message = " ".join(str(getattr(exc, "message", exc)).split())[:500]
        return error_response(
            422, f"The input does not fit {where}: {message}", [Problem(None, None, "invalid_body", message)]
        )
    log.exception("Prediction failed for %s", where)
    return error_response(500, f"The {where} failed to predict: {type(exc).__name__}: {str(exc)[:500]}")
