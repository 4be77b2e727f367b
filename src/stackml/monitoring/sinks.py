"""Where alert notices go: the log (:class:`LogSink`) and a webhook (:class:`WebhookSink`).

The third sink, the ``alerts`` table, is :class:`stackml.monitoring.alerts.AlertState` itself: every alert is
written there before any other sink hears of it.

A sink never raises: :meth:`send` returns a :class:`Delivery` that says whether the notice arrived and, if
not, why; the failure is logged and the monitor goes on. A sink is any object with a ``name`` and a
``send(notice) -> Delivery`` method.

Example:
    >>> from stackml.monitoring.sinks import LogSink, Notice
    >>> notice = Notice("opened", 1, "dataset_drift", "churn", "drift.dataset", "critical", 1.0, 0.0,
    ...                 "dataset_drift on churn: drift.dataset = 1 is above 0 (window 24h)")
    >>> LogSink().send(notice).delivered
    True
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from stackml.checks import int_problem, number_problem
from stackml.errors import InputError, raise_if_problems

__all__ = ["Notice", "Delivery", "Sink", "LogSink", "WebhookSink"]

log = logging.getLogger(__name__)
#: the logger :class:`LogSink` writes alerts to
ALERT_LOGGER = "stackml.monitoring.alerts"
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_BODY_CHARS = 200  # of an error response, kept in the delivery's error


@dataclass(frozen=True)
class Notice:
    """One message about one alert: it opened or it resolved.

    Attributes:
        kind: ``"opened"`` or ``"resolved"``.
        alert_id: the alert's id in the alerts table.
        value, limit: the metric's last value and the limit it crossed.
        message: the alert's message (what fired, by how much).
        opened_at, resolved_at: UTC times.
    """

    kind: Literal["opened", "resolved"]
    alert_id: int
    rule: str
    subject: str
    metric: str
    severity: str
    value: float | None
    limit: float | None
    message: str
    opened_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def text(self) -> str:
        """One line for a chat channel: ``[CRITICAL] ...`` when it opens, ``[RESOLVED] ...`` when it ends."""
        if self.kind == "resolved":
            return f"[RESOLVED] {self.rule} on {self.subject} no longer fires (last: {self.message})"
        return f"[{self.severity.upper()}] {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """The notice as JSON-ready values (times in ISO 8601)."""
        out = asdict(self)
        for key in ("opened_at", "resolved_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


@dataclass(frozen=True)
class Delivery:
    """Whether one sink delivered one notice, after how many attempts, and the last error if it did not."""

    sink: str
    delivered: bool
    attempts: int = 1
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sink(Protocol):
    """What :func:`stackml.monitoring.alerts.reconcile` needs of a sink."""

    name: str

    def send(self, notice: Notice) -> Delivery:
        """Deliver ``notice``; never raise."""
        ...


class LogSink:
    """Writes each notice to the ``stackml.monitoring.alerts`` logger, at the level of its severity
    (``info``, ``warning``, ``critical``; a resolved alert at ``info``).

    Args:
        logger: the logger, or its name.
    """

    name = "log"

    def __init__(self, logger: logging.Logger | str = ALERT_LOGGER) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    def send(self, notice: Notice) -> Delivery:
        level = logging.INFO if notice.kind == "resolved" else _LEVELS.get(notice.severity, logging.WARNING)
        try:
            self.logger.log(level, notice.text, extra={"alert": notice.as_dict()})
        except Exception as exc:  # noqa: BLE001 - a broken log handler must not stop the monitor
            return Delivery(self.name, False, error=f"{type(exc).__name__}: {exc}")
        return Delivery(self.name, True)


class WebhookSink:
    """POSTs each notice as JSON with a Slack-compatible body: ``{"text": "...", "alert": {...}}``.

    Slack shows ``text``; other receivers read the structured ``alert`` (the fields of :class:`Notice`).
    Connection errors, timeouts, HTTP 429 and 5xx are retried ``retries`` times after the first attempt,
    waiting ``backoff_s``, then twice as long each time; other answers (4xx) are final. Nothing raises: the
    :class:`Delivery` says what happened, and a failure is logged (with the URL's host only: a Slack webhook
    URL is a secret). Once a notice has failed every retry that way, the next notices get one attempt each
    until one gets through, so a dead receiver costs one timeout per notice, not the whole ladder.

    Args:
        url: an ``http://`` or ``https://`` URL.
        timeout_s: the longest wait for the receiver, per attempt.
        retries: attempts after the first.
        backoff_s: the wait before the first retry.
    """

    name = "webhook"

    def __init__(self, url: str, *, timeout_s: float = 5, retries: int = 3, backoff_s: float = 0.5) -> None:
        scheme = urllib.parse.urlsplit(url).scheme if isinstance(url, str) else ""
        problems = [
            None if scheme in ("http", "https") else f"'url' must be an http:// or https:// URL, got {url!r}",
            number_problem("timeout_s", timeout_s, low=0, low_open=True),
            int_problem("retries", retries, low=0),
            number_problem("backoff_s", backoff_s, low=0),
        ]
        raise_if_problems(
            [p for p in problems if p],
            what="the webhook sink",
            hint="e.g. WebhookSink('https://hooks.slack.com/services/...', timeout_s=5, retries=3)",
            error=InputError,
        )
        self.url, self.timeout_s, self.retries, self.backoff_s = url, float(timeout_s), retries, backoff_s
        self.host = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
        self._down = False  # the last notice failed every retry: try the next ones once

    def __repr__(self) -> str:
        return f"WebhookSink(host={self.host!r}, timeout_s={self.timeout_s:g}, retries={self.retries})"

    def send(self, notice: Notice) -> Delivery:
        try:
            return self._send(notice)
        except Exception as exc:  # noqa: BLE001 - whatever goes wrong, the monitor must go on
            log.warning("Webhook %s: sending alert %s failed: %r", self.host, notice.alert_id, exc)
            return Delivery(self.name, False, error=f"{type(exc).__name__}: {exc}")

    def _send(self, notice: Notice) -> Delivery:
        body = json.dumps({"text": notice.text, "alert": notice.as_dict()}).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        error, retries = "", 0 if self._down else self.retries
        for attempt in range(1, retries + 2):
            status, error = self._post(request)
            if status is not None and 200 <= status < 300:
                self._down = False
                return Delivery(self.name, True, attempts=attempt)
            if status is not None and status < 500 and status != 429:
                break  # the receiver refused the notice: sending it again would not change its mind
            if attempt <= retries:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        else:
            self._down = True
        log.warning(
            "Webhook %s did not take alert %s (%s) after %d attempt(s): %s",
            self.host,
            notice.alert_id,
            notice.kind,
            attempt,
            error,
        )
        return Delivery(self.name, False, attempts=attempt, error=error)

    def _post(self, request: urllib.request.Request) -> tuple[int | None, str]:
        """``(status, error)``: the HTTP status (``None`` when no answer came) and why it failed."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, ""
        except urllib.error.HTTPError as exc:
            text = exc.read(_BODY_CHARS).decode("utf-8", "replace").strip()
            return exc.code, f"HTTP {exc.code} {exc.reason}" + (f": {text}" if text else "")
        except TimeoutError:
            return None, f"no answer within {self.timeout_s:g} s"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return None, f"no answer within {self.timeout_s:g} s"
            return None, f"cannot connect to {self.host}: {exc.reason}"
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"
