"""What the routes share: the served-model dependency and the JSON shape of every error answer."""

import json
from collections.abc import Sequence
from typing import Any

from fastapi import Path, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from stackml.serving.registry import ServedModel
from stackml.serving.schemas import ErrorResponse
from stackml.serving.validation import Problem

__all__ = ["ERROR", "error_response", "served_model"]

ERROR: dict[str, Any] = {"model": ErrorResponse}
"""The OpenAPI entry of an error status: its body is an :class:`ErrorResponse`."""


def error_response(
    status: int, detail: str, problems: Sequence[Problem] = (), headers: Any = None
) -> Response:
    """A JSON answer shaped like :class:`ErrorResponse`: a message and the problems behind it."""
    body = {"detail": detail, "problems": [p.__dict__ for p in problems]}
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def served_model(  # async: a plain def would cost a thread hop per request
    request: Request,
    name: str = Path(description="A served model (see GET /v1/models)."),
) -> ServedModel:
    cache = request.app.state.cache
    served = cache.get(name)
    if served is None:
        raise StarletteHTTPException(
            404, f"Model '{name}' is not served here; served models: {', '.join(cache.names)}."
        )
    return served
