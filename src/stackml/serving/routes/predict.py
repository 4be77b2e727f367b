"""Prediction: ``POST /v1/models/{name}/predict``, the hot path of the service."""

# No `from __future__ import annotations`: FastAPI must see the request model, built per app, as a class.

import itertools
import json
import logging
import re
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from stackml.serving.jsonable import to_jsonable
from stackml.serving.registry import ServedModel
from stackml.serving.routes.common import ERROR, error_response, served_model
from stackml.serving.schemas import PredictResponse
from stackml.serving.validation import Problem, validate_records

__all__ = ["request_ids", "router"]

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_ids() -> Iterator[str]:
    """Request ids: a random per-app prefix and a counter, unique like uuid4 without a syscall per request."""
    prefix = uuid.uuid4().hex[:20]
    return (f"{prefix}{n:012x}" for n in itertools.count())


def router(request_model: type[BaseModel]) -> APIRouter:
    """The prediction route, taking ``request_model`` (the app's record limit is in its schema) as body."""
    predict_router = APIRouter(tags=["models"])

    @predict_router.post(
        "/v1/models/{name}/predict",
        response_model=PredictResponse,
        # 400: a body FastAPI cannot even decode (not UTF-8); 422: JSON that is not a valid request.
        responses={400: ERROR, 404: ERROR, 413: ERROR, 422: ERROR, 500: ERROR},
    )
    async def predict(
        request: Request,
        body: request_model,  # type: ignore[valid-type]
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
            return error_response(
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
        state = request.app.state
        if x_request_id and _REQUEST_ID.match(x_request_id):
            request_id = x_request_id
        else:
            request_id = next(state.request_ids)
        plog, metrics = state.prediction_log, state.metrics
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

    return predict_router


def _prediction_failure(served: ServedModel, exc: Exception) -> Response:
    """MLflow's schema enforcement rejecting the input is the client's fault (422); anything else is ours."""
    code = getattr(exc, "error_code", "")
    where = f"model '{served.name}' v{served.version}"
    if code == "INVALID_PARAMETER_VALUE":
        message = " ".join(str(getattr(exc, "message", exc)).split())[:500]
        return error_response(
            422, f"The input does not fit {where}: {message}", [Problem(None, None, "invalid_body", message)]
        )
    log.exception("Prediction failed for %s", where)
    return error_response(500, f"The {where} failed to predict: {type(exc).__name__}: {str(exc)[:500]}")
