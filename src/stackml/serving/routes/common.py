"""What the routes share: the served-model dependency, the JSON shape of every error answer and the check
of a body's content type."""

import json
from collections.abc import Sequence
from typing import Any

from fastapi import Path, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from stackml.serving.options import ServingOptions
from stackml.serving.registry import ServedModel
from stackml.serving.schemas import ErrorResponse
from stackml.serving.validation import Problem

__all__ = ["ERROR", "error_response", "served_model", "body_problem", "not_json"]

ERROR: dict[str, Any] = {"model": ErrorResponse}
"""The OpenAPI entry of an error status: its body is an :class:`ErrorResponse`."""


def error_response(
    status: int, detail: str, problems: Sequence[Problem] = (), options: Any = None, headers: Any = None
) -> Response:
    """A JSON answer shaped like :class:`ErrorResponse`: a message and the problems behind it.

    At most ``options.max_problems`` problems are listed, so the answer to a huge invalid body stays small;
    the detail says how many there were.
    """
    limit = getattr(options, "max_problems", ServingOptions.max_problems)
    if len(problems) > limit:
        detail = (
            f"{detail} The first {limit} are listed; fix them and send the request again to see the rest."
        )
        problems = problems[:limit]
    body = {"detail": detail, "problems": [p.__dict__ for p in problems]}
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


def body_problem(error: Any) -> Problem:
    """A pydantic error about the body as a Problem: record index and column when the location has them."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    listed = len(loc) > 1 and loc[0] in ("records", "entities") and isinstance(loc[1], int)
    record = loc[1] if listed else None
    column = str(loc[2])[:100] if record is not None and len(loc) > 2 else None
    where = ".".join(str(p) for p in loc)[:200] or "body"
    return Problem(record, column, "invalid_body", f"{where}: {error.get('msg', 'invalid')}.")


def not_json(content_type: str | None) -> Response | None:
    """The 415 answer to a body not declared as JSON; None when it is."""
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
            return None
    got = f"'{content_type[:100]}'" if content_type else "no Content-Type header"
    return error_response(
        415, f"The body must be JSON, sent with 'Content-Type: application/json'; got {got}."
    )


async def served_model(  # async: a plain def would cost a thread hop per request
    request: Request,
    name: str = Path(description="A served model (see GET /v1/models)."),
) -> ServedModel:
    cache = request.app.state.cache
    served = cache.get(name)
    if served is None:
        reason = cache.unavailable.get(name)
        if reason is not None:
            # Configured here but not loadable now (deleted alias, broken version): the client may retry.
            raise StarletteHTTPException(503, f"Model '{name}' is not available: {reason}")
        raise StarletteHTTPException(
            404, f"Model '{name}' is not served here; served models: {', '.join(cache.names)}."
        )
    return served
