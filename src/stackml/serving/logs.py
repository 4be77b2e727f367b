"""The service's log lines: one format (text or JSON) for stackml's own loggers and uvicorn's.

Every line carries a timestamp, the level, the logger, the process id and, for lines written while a
request is handled, its request id (from :data:`REQUEST_ID`, which the prediction route sets).
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from typing import Any

__all__ = ["REQUEST_ID", "LOG_FORMATS", "log_config", "TextFormatter", "JsonFormatter"]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("stackml_request_id", default=None)
"""The id of the request being handled; thread-pool work copies it with the rest of the context."""

LOG_FORMATS = ("text", "json")
# LogRecord attributes that are not `extra=` fields a caller added.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    # uvicorn adds a colored copy of its message; it is no field of ours.
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and k != "color_message"}


class TextFormatter(logging.Formatter):
    """``2026-01-02T03:04:05.678Z WARNING stackml.serving.registry pid=12 request_id=ab message``."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = REQUEST_ID.get()
        parts = [_timestamp(record), record.levelname, record.name, f"pid={record.process}"]
        if request_id:
            parts.append(f"request_id={request_id}")
        line = " ".join(parts) + " " + record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts``, ``level``, ``logger``, ``pid``, ``request_id``, ``message``, extras."""

    def format(self, record: logging.LogRecord) -> str:
        item: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "request_id": REQUEST_ID.get(),
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            item["exception"] = self.formatException(record.exc_info)
        return json.dumps(item, default=str)


def log_config(fmt: str = "text", level: str = "info", access_log: bool = False) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for uvicorn's ``log_config``: every worker process applies it.

    Args:
        fmt: ``text`` or ``json``.
        level: level of stackml's and uvicorn's loggers.
        access_log: whether uvicorn's access log writes a line per request.
    """
    if fmt not in LOG_FORMATS:
        from stackml.errors import InputError

        raise InputError(f"The log format must be one of {', '.join(LOG_FORMATS)}; got {fmt!r}.")
    formatter = {"()": f"{__name__}.{'JsonFormatter' if fmt == 'json' else 'TextFormatter'}"}
    handler = {"class": "logging.StreamHandler", "formatter": "service", "stream": "ext://sys.stderr"}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"service": formatter},
        "handlers": {"stderr": handler},
        "loggers": {
            "stackml": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {
                "handlers": ["stderr"] if access_log else [],
                "level": level if access_log else "CRITICAL",
                "propagate": False,
            },
        },
    }
