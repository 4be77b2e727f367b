"""Prometheus metrics of the service, kept in memory and written in the text exposition format.

A hand-written registry keeps the service free of one more dependency; it holds counters, one latency
histogram and gauges read at scrape time from collectors (model versions, prediction-log state).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["Metrics", "Gauge", "CONTENT_TYPE", "LATENCY_BUCKETS_S"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]


@dataclass
class Gauge:
    """A metric family read at scrape time: ``samples`` maps label tuples to values.

    ``kind`` is ``gauge``, or ``counter`` for totals kept elsewhere (e.g. rows the log wrote).
    """

    name: str
    help: str
    samples: dict[Labels, float] = field(default_factory=dict)
    kind: str = "gauge"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}" if labels else ""


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Metrics:
    """Thread-safe counters and a latency histogram per model, rendered for ``GET /metrics``.

    Example:
        >>> m = Metrics()
        >>> m.observe_request("demand", "predict", 200, 0.004)
        >>> 'stackml_requests_total{model="demand",endpoint="predict",status="200"} 1' in m.render()
        True
    """

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS_S) -> None:
        self._buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._errors: dict[tuple[str, int], int] = {}
        # (model, endpoint) -> [count per bucket ..., count above the last bucket], sum, count
        self._latency: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        self._records: dict[tuple[str, str], int] = {}
        self._collectors: list[Callable[[], Iterable[Gauge]]] = []

    def observe_request(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency; a status of 400 or more also counts as an error."""
        slot = bisect.bisect_left(self._buckets, seconds)
        with self._lock:
            key = (model, endpoint, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            if status >= 400:
                self._errors[(model, status)] = self._errors.get((model, status), 0) + 1
            hist = self._latency.get((model, endpoint))
            if hist is None:
                hist = self._latency[(model, endpoint)] = ([0] * (len(self._buckets) + 1), [0.0, 0.0])
            hist[0][slot] += 1
            hist[1][0] += seconds
            hist[1][1] += 1

    def count_records(self, model: str, version: str, n: int) -> None:
        """Count ``n`` records predicted by ``model`` at ``version``."""
        with self._lock:
            key = (model, version)
            self._records[key] = self._records.get(key, 0) + n

    def add_collector(self, collector: Callable[[], Iterable[Gauge]]) -> None:
        """Register a function returning gauges, called on every scrape."""
        self._collectors.append(collector)

    def render(self) -> str:
        """All metrics in the Prometheus text format (version 0.0.4)."""
        with self._lock:
            requests = dict(self._requests)
            errors = dict(self._errors)
            latency = {k: (list(v[0]), list(v[1])) for k, v in self._latency.items()}
            records = dict(self._records)
        lines = [
            "# HELP stackml_requests_total Requests answered, by model, endpoint and HTTP status.",
            "# TYPE stackml_requests_total counter",
        ]
        for (model, endpoint, status), n in sorted(requests.items()):
            labels = (("model", model), ("endpoint", endpoint), ("status", str(status)))
            lines.append(f"stackml_requests_total{_labels(labels)} {n}")
        lines += [
            "# HELP stackml_errors_total Requests answered with a status >= 400, by model and status.",
            "# TYPE stackml_errors_total counter",
        ]
        for (model, status), n in sorted(errors.items()):
            lines.append(f"stackml_errors_total{_labels((('model', model), ('status', str(status))))} {n}")
        lines += [
            "# HELP stackml_request_duration_seconds Time from request to response, by model and endpoint.",
            "# TYPE stackml_request_duration_seconds histogram",
        ]
        for (model, endpoint), (counts, (total, count)) in sorted(latency.items()):
            base = (("model", model), ("endpoint", endpoint))
            running = 0
            for bound, n in zip((*self._buckets, float("inf")), counts):
                running += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(
                    f"stackml_request_duration_seconds_bucket{_labels((*base, ('le', le)))} {running}"
                )
            lines.append(f"stackml_request_duration_seconds_sum{_labels(base)} {total!r}")
            lines.append(f"stackml_request_duration_seconds_count{_labels(base)} {int(count)}")
        lines += [
            "# HELP stackml_predicted_records_total Records predicted, by model and version.",
            "# TYPE stackml_predicted_records_total counter",
        ]
        for (model, version), n in sorted(records.items()):
            lines.append(
                f"stackml_predicted_records_total{_labels((('model', model), ('version', version)))} {n}"
            )
        for collector in self._collectors:
            for gauge in collector():
                lines += [f"# HELP {gauge.name} {gauge.help}", f"# TYPE {gauge.name} {gauge.kind}"]
                lines += [f"{gauge.name}{_labels(k)} {_number(v)}" for k, v in sorted(gauge.samples.items())]
        return "\n".join(lines) + "\n"
