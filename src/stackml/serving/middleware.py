"""ASGI middleware of the service: request metrics and the request body size limit.

Both are plain ASGI (no ``BaseHTTPMiddleware``), which costs a few microseconds per request instead of a
task and a stream per request.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Container
from typing import Any

from fastapi import HTTPException

from stackml.serving.metrics import Metrics

__all__ = ["MetricsMiddleware", "BodySizeLimit", "BodyTooLarge", "CloseWhileDraining"]

_MODEL_PATH = re.compile(r"^/v1/models/([^/]+)(?:/(predict|reload))?/?$")
UNKNOWN_MODEL = "_unknown"  # label for paths naming a model that is not served: keeps label values bounded
NO_MODEL = ""

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


def route_labels(path: str, served: Container[str]) -> tuple[str, str]:
    """(model, endpoint) labels of a request path."""
    match = _MODEL_PATH.match(path)
    if match:
        name = match.group(1)
        return (name if name in served else UNKNOWN_MODEL), (match.group(2) or "model")
    if path in ("/health", "/ready", "/metrics", "/v1/models"):
        return NO_MODEL, path.strip("/").replace("v1/", "")
    if path.startswith("/v1/features/"):  # one label for every service: client-chosen paths stay bounded
        return NO_MODEL, "features"
    return NO_MODEL, "other"


class MetricsMiddleware:
    """Counts every HTTP request by model, endpoint and status, and observes its latency."""

    def __init__(self, app: Any, metrics: Metrics, served: Container[str]) -> None:
        self.app, self.metrics, self.served = app, metrics, served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering

        async def send_and_record(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            model, endpoint = route_labels(scope["path"], self.served)
            self.metrics.observe_request(model, endpoint, status, time.perf_counter() - started)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit.

    An HTTPException, because FastAPI turns any other error raised while it reads the body into a 400.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"The request body is larger than {max_bytes} bytes.")


class BodySizeLimit:
    """Answers 413 to bodies over ``max_bytes``: at once from ``Content-Length``, or while streaming."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await self._reject(send)
                    return
                break
        received = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"The request body is larger than {self.max_bytes} bytes.", "problems": []}
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


class CloseWhileDraining:
    """While ``draining`` is set (after SIGTERM), every answer carries ``Connection: close``.

    A client then opens a new connection for its next request instead of sending it on a kept-alive one
    that the shutdown is about to close, which would reset it with the request unanswered.
    """

    def __init__(self, app: Any, draining: Any) -> None:
        self.app, self.draining = app, draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.draining.is_set():
            await self.app(scope, receive, send)
            return

        async def closing_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing_send)
