"""Online features: ``POST /v1/features/{service}``, the newest stored values of a feature service's
features for each entity sent, read by key from the PostgreSQL online store.

Like a prediction, the body is read on the event loop and everything else (parsing, checks, the read) runs
in the thread pool: the read waits on PostgreSQL.
"""

# No `from __future__ import annotations`: FastAPI reads the handler's annotations at runtime.

import json
from typing import Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from stackml.serving.enrichment import read_features
from stackml.serving.logs import REQUEST_ID
from stackml.serving.routes.common import ERROR, error_response, not_json
from stackml.serving.routes.predict import parse_body, set_request_id
from stackml.serving.schemas import FeaturesResponse

__all__ = ["router", "answer"]


def router(request_model: type[BaseModel]) -> APIRouter:
    """The features route; ``request_model`` (the app's record limit is in its schema) checks the body."""
    features_router = APIRouter(tags=["features"])
    schema = {"$ref": f"#/components/schemas/{request_model.__name__}"}

    @features_router.post(
        "/v1/features/{service}",
        response_model=FeaturesResponse,
        responses={400: ERROR, 404: ERROR, 413: ERROR, 415: ERROR, 422: ERROR, 503: ERROR},
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
        },
    )
    async def read(
        request: Request,
        service: str = Path(description="A feature service of the served feature definitions."),
        x_request_id: str | None = Header(
            None,
            description="Your id for the request (letters, digits, '._:-', at most 128); else one is made.",
        ),
    ) -> Response:
        """The features of each entity: its join keys, then one ``view__feature`` value each (null when
        the store has none, or only one older than the view's TTL); every problem in the input, one 422."""
        state = request.app.state
        unknown = state.features.unknown(service)
        if unknown is not None:
            raise StarletteHTTPException(
                404, f"Feature service '{service[:100]}' is not served here: {unknown}."
            )
        refused = not_json(request.headers.get("content-type"))
        if refused is not None:
            return refused
        body = await request.body()
        set_request_id(state, x_request_id)
        return await run_in_threadpool(answer, state, service, request_model, body)

    return features_router


def answer(state: Any, service: str, request_model: type[BaseModel], body: bytes) -> Response:
    """Parse, check, read and encode one request (a plain function: it runs in a worker thread)."""
    entities, problems, status = parse_body(body, request_model, "entities")
    if problems:
        return error_response(
            status, f"The request is invalid ({len(problems)} problem(s)).", problems, state.options
        )
    read = read_features(state.features, service, entities, noun="entity", strict=True)
    if read.status != 200:
        return error_response(read.status, read.detail, read.problems, state.options)
    rows = []
    for i, entity in enumerate(entities):
        row = {key: entity[key] for key in read.keys}
        for name, values in read.columns.items():
            row[name] = values[i]
        rows.append(row)
    request_id = REQUEST_ID.get() or ""
    content = json.dumps({"service": service, "features": rows, "request_id": request_id})
    return Response(content, media_type="application/json", headers={"X-Request-ID": request_id})
