"""Readiness: the registry and the warehouse probed for real, at most once per period, shared by all callers.

A flood of ``/ready`` calls costs one probe per ``ready_cache_s``: calls within the period get the last
result, and calls that find it stale all wait on the same single probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

__all__ = ["Probe", "ProbeCache"]


@dataclass(frozen=True)
class Probe:
    """One answer of a probe: whether it worked, what it said, and when (``time.monotonic()``)."""

    ok: bool
    detail: str
    at: float


class ProbeCache:
    """The latest result of each probe, refreshed (in a worker thread) when older than ``max_age_s``.

    Args:
        probes: name -> a callable returning ``(ok, detail)``; an exception counts as a failure.
        max_age_s: age after which a result is refreshed.
        timeout_s: longest a probe may run; a slower one counts as a failure.
    """

    def __init__(
        self, probes: dict[str, Callable[[], tuple[bool, str]]], max_age_s: float, timeout_s: float
    ) -> None:
        self._probes, self._max_age_s, self._timeout_s = probes, max_age_s, timeout_s
        self._results: dict[str, Probe] = {}
        self._lock = threading.Lock()
        self._running: Future[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="stackml-probe")
        # the refresh waits on the probes, so it runs apart from them: probes stuck in every pool thread
        # (a registry that hangs) must not leave it queued behind them, unbounded
        self._refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stackml-ready")

    def results(self) -> dict[str, Probe]:
        """The latest results, refreshed first when stale: every caller waits on the same one refresh."""
        with self._lock:
            stale = not self._results or any(
                time.monotonic() - p.at > self._max_age_s for p in self._results.values()
            )
            if stale and (self._running is None or self._running.done()):
                self._running = self._refresher.submit(self._refresh)
            running = self._running if stale else None
        if running is not None:
            running.result()  # bounded: each probe gives up after timeout_s
        return dict(self._results)

    def close(self) -> None:
        self._refresher.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _refresh(self) -> None:
        futures = {name: self._pool.submit(check) for name, check in self._probes.items()}
        for name, future in futures.items():
            self._results[name] = self._outcome(future)

    def _outcome(self, future: Future[Any]) -> Probe:
        try:
            ok, detail = future.result(timeout=self._timeout_s)
        except FutureTimeout:
            return Probe(False, f"no answer within {self._timeout_s:g} s", time.monotonic())
        except Exception as exc:  # the probe exists to turn any failure into a report
            return Probe(False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", time.monotonic())
        return Probe(bool(ok), detail, time.monotonic())
