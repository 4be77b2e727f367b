"""Scoring an event stream with a registered model: stateless workers on a broker's consumer group.

Each worker repeats: gather a micro-batch (up to ``batch`` entries, or what came within ``max_wait_ms`` of
the first), check the records against the model's signature, predict with one model call, write the
prediction log, then write the outputs and acknowledge the entries together (see :mod:`.brokers`).
Delivery is at least once; outputs and log rows are keyed by the message id, so a redelivered entry is
answered and logged once. Entries a dead worker left unacknowledged are claimed by the living after
``claim_after_ms``. A record that cannot be scored goes to the dead-letter stream with its errors; an entry
handed out ``max_deliveries`` times without being finished (it kills its worker) goes there too.

A worker holds at most two batches: it scores one while the previous one is written (log, outputs,
acknowledgements) in a second thread, and reads nothing more until that write is done; so a slow model or a
warehouse outage leaves the backlog in the broker (back-pressure), not in memory. SIGTERM (or Ctrl-C)
finishes the batch in hand, acknowledges it and stops. The model follows its alias: a promotion is picked
up within ``reload_interval_s`` without a restart.

Message format: an input entry has ``id`` (a unique string) and ``record`` (a JSON object, one row); an
output entry has ``id``, ``prediction`` (JSON), ``model`` and ``version``; a dead letter has ``id``,
``record``, ``errors`` (a JSON list), ``stage``, ``entry`` (the input entry's id), ``model`` and ``version``.

Example:
    >>> from stackml.scoring import StreamOptions, score_stream
    >>> score_stream(StreamOptions(model="churn", source="events", out="predictions"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from stackml.errors import InputError, raise_if_problems
from stackml.scoring.brokers import DEAD, DECODE_ERROR, OUT, Entry, Outcome, Streams, open_broker

if TYPE_CHECKING:
    from stackml.config import Settings
    from stackml.scoring.brokers import Broker
    from stackml.serving.registry import ServedModel

__all__ = ["StreamOptions", "StreamStats", "StreamWorker", "score_stream"]

log = logging.getLogger(__name__)

ENDPOINT = "stream"  # the endpoint label of the service's metrics
_RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # pauses between tries of a broker or warehouse that failed
_RECORD_PREFIX = re.compile(r"^record \d+: ")


@dataclass(frozen=True)
class StreamOptions:
    """Everything a stream worker needs to know.

    Attributes:
        model: ``name`` (its champion) or ``name@alias``.
        broker: ``redis://host:port/db`` or ``kafka://host:port``.
        source: the input stream (topic).
        out: the output stream.
        dead_letter: the dead-letter stream (default ``<source>:dead``).
        group: the consumer group (workers of one deployment share it).
        workers: worker processes.
        batch: most entries per model call.
        max_wait_ms: longest the first entry of a batch waits for others.
        claim_after_ms: how long an entry may stay unacknowledged before another worker takes it over;
            longer than a batch ever takes.
        max_deliveries: deliveries after which an unfinished entry goes to the dead letters.
        warehouse: the warehouse holding the prediction log (default: the settings').
        log_table: the prediction log table.
        reload_interval_s: how often the alias is re-resolved (0: never).
        metrics_port: serve Prometheus metrics on this port (worker ``i`` on ``port + i``); None: off.
        metrics_host: the address the metrics listen on.
        until_idle_s: stop once nothing arrived for this long and nothing is pending (None: run until
            SIGTERM).
    """

    model: str
    broker: str = "redis://127.0.0.1:6379/0"
    source: str = "events"
    out: str = "predictions"
    dead_letter: str | None = None
    group: str = "stackml"
    workers: int = 1
    batch: int = 256
    max_wait_ms: int = 20
    claim_after_ms: int = 30_000
    max_deliveries: int = 5
    warehouse: str | None = None
    log_table: str = "prediction_log"
    reload_interval_s: float = 10.0
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    until_idle_s: float | None = None

    def __post_init__(self) -> None:
        from stackml.serving.options import parse_model_specs

        problems = []
        for name, low in (("workers", 1), ("batch", 1), ("max_wait_ms", 0), ("claim_after_ms", 100)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                problems.append(f"'{name}' must be a whole number >= {low}, got {value!r}")
        if not isinstance(self.max_deliveries, int) or self.max_deliveries < 1:
            problems.append(f"'max_deliveries' must be a whole number >= 1, got {self.max_deliveries!r}")
        if self.reload_interval_s < 0:
            problems.append(f"'reload_interval_s' must be >= 0, got {self.reload_interval_s!r}")
        if self.until_idle_s is not None and self.until_idle_s <= 0:
            problems.append(f"'until_idle_s' must be > 0 seconds, got {self.until_idle_s!r}")
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:
            problems.append(f"'metrics_port' must be a TCP port (1-65535), got {self.metrics_port!r}")
        names = {"source": self.source, "out": self.out, "dead_letter": self.dead_stream}
        for name, value in names.items():
            if not value or not value.strip():
                problems.append(f"'{name}' must name a stream, got {value!r}")
        if len(set(names.values())) < len(names):
            problems.append(f"the input, output and dead-letter streams must differ, got {names}")
        try:
            specs = parse_model_specs(self.model)
        except ValueError as exc:
            problems.append(str(exc).split("\n")[0])
        else:
            if len(specs) != 1:
                problems.append(f"'model' must name one model, got {self.model!r}")
        raise_if_problems(
            problems,
            what="the stream scoring options",
            hint="stackml score stream --in events --out predictions --model NAME[@ALIAS]",
        )

    @property
    def dead_stream(self) -> str:
        return self.dead_letter or f"{self.source}:dead"

    @property
    def streams(self) -> Streams:
        return Streams(self.source, self.out, self.dead_stream, self.group)


@dataclass
class StreamStats:
    """What workers did (summed over workers by :func:`score_stream`)."""

    scored: int = 0
    dead_letters: int = 0
    batches: int = 0
    claimed: int = 0
    logged: int = 0
    seconds: float = 0.0
    workers: list[str] = field(default_factory=list)

    @property
    def records_per_second(self) -> float:
        return self.scored / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: StreamStats) -> None:
        self.scored += other.scored
        self.dead_letters += other.dead_letters
        self.batches += other.batches
        self.claimed += other.claimed
        self.logged += other.logged
        self.seconds = max(self.seconds, other.seconds)
        self.workers += other.workers

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "records_per_second": round(self.records_per_second, 1)}


class StreamWorker:
    """One consumer of the group: loads the model, then scores batches until stopped.

    Args:
        options: the stream and the model.
        settings: where the registry and the default warehouse are.
        consumer: the name in the consumer group (default ``<host>-<pid>-<random>``).
        metrics_port: overrides ``options.metrics_port`` (worker processes each take their own).
    """

    def __init__(
        self,
        options: StreamOptions,
        settings: Settings | None = None,
        *,
        consumer: str | None = None,
        metrics_port: int | None = None,
    ) -> None:
        from stackml.config import get_settings
        from stackml.scoring.stream_log import StreamLog
        from stackml.serving.metrics import Metrics
        from stackml.serving.options import parse_model_specs
        from stackml.serving.registry import ModelCache

        self.options = options
        self.settings = settings or get_settings(warehouse_url=options.warehouse)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        (self.spec,) = parse_model_specs(options.model)
        self.cache = ModelCache([self.spec], self.settings, strict=True)
        self.cache.load()
        self._feature_services: dict[int, str | None] = {}
        served = self.cache.get(self.spec.name)
        service = None if served is None else self._feature_service(served)
        if served is not None and service is not None:
            raise InputError(
                f"'{self.spec}' v{served.version} was trained on feature service '{service}' (its "
                "stackml.feature_service tag): its records need features read online by entity key, which "
                "stream scoring does not do yet.",
                hint="Serve it with `stackml serve`, which adds them, or register a version without the tag "
                "whose records carry the feature columns.",
            )
        self.broker: Broker = open_broker(options.broker, options.streams, self.consumer)
        self.log = StreamLog(options.warehouse or str(self.settings.warehouse_url), options.log_table)
        self.metrics = Metrics()
        self.metrics.add_collector(self._gauges)
        self.stats = StreamStats(workers=[self.consumer])
        self.stopping = threading.Event()
        self._metrics_port = metrics_port if metrics_port is not None else options.metrics_port
        self._server: Any = None
        self._pending = self._backlog = 0
        self._next_claim = 0.0

    # -- the loop -----------------------------------------------------------------------------------------
    def run(self) -> StreamStats:
        """Score until SIGTERM / SIGINT, :meth:`stop`, or ``until_idle_s`` of quiet."""
        restore = self._install_signals()
        started = time.monotonic()
        self.cache.start(self.options.reload_interval_s)
        if self._metrics_port:
            self._server = _serve_metrics(self.metrics, self.options.metrics_host, self._metrics_port)
        log.info(
            "Stream worker %s: %s -> %s with %s.",
            self.consumer,
            self.options.source,
            self.options.out,
            self.spec,
            extra={"event": "stream_start", "consumer": self.consumer},
        )
        quiet_since = time.monotonic()
        # One batch is written (log, then outputs) in this thread while the next is read and scored: the
        # writes mostly wait on the warehouse and the broker, so the model keeps working meanwhile.
        writer = ThreadPoolExecutor(1, thread_name_prefix="stackml-stream-write")
        writing: Future[None] | None = None
        try:
            while not self.stopping.is_set():
                entries = self._retrying("read the broker", self._next_entries)
                if entries is None:
                    break
                if entries:
                    quiet_since = time.monotonic()
                    batch = self._score(entries)
                    if writing is not None:
                        writing.result()  # at most two batches in hand: back-pressure
                    writing = writer.submit(self._write, batch) if batch is not None else None
                    continue
                if writing is not None:
                    writing.result()
                    writing = None
                if self.options.until_idle_s and time.monotonic() - quiet_since >= self.options.until_idle_s:
                    self._refresh_gauges()
                    if self._pending == 0:
                        break
        finally:
            if writing is not None:
                writing.result()  # the batch in hand is written and acknowledged before we stop
            writer.shutdown()
            self.stats.seconds = time.monotonic() - started
            self._shutdown()
            restore()
        return self.stats

    def stop(self) -> None:
        """Finish the batch in hand, acknowledge it and return from :meth:`run`."""
        self.stopping.set()

    def _next_entries(self) -> list[Entry]:
        """Claimed entries of dead workers first, else a new micro-batch."""
        opts = self.options
        now = time.monotonic()
        if now >= self._next_claim:
            claimed = self.broker.claim(opts.batch, opts.claim_after_ms)
            if claimed:
                self.stats.claimed += len(claimed)
                log.warning(
                    "Stream worker %s claimed %d entries left unacknowledged by another worker.",
                    self.consumer,
                    len(claimed),
                    extra={"event": "claim", "entries": len(claimed)},
                )
                return claimed
            # Look again after a fraction of the timeout: a dead worker's entries wait little past it.
            self._next_claim = now + min(opts.claim_after_ms / 4000, 5.0)
            self._refresh_gauges()
        # Block long for the first entry (an idle worker costs nothing), then gather for max_wait_ms.
        first_wait = max(1, min(1000, int((self._next_claim - time.monotonic()) * 1000)))
        entries = self.broker.read(opts.batch, first_wait)
        if not entries or len(entries) >= opts.batch or opts.max_wait_ms == 0:
            return entries
        deadline = time.monotonic() + opts.max_wait_ms / 1000
        while len(entries) < opts.batch and not self.stopping.is_set():
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms < 1:
                break
            more = self.broker.read(opts.batch - len(entries), left_ms)
            if not more:
                break
            entries += more
        return entries

    def _score(self, entries: list[Entry]) -> _Scored | None:
        """Check and score one batch; None when the model is not available (the entries stay pending)."""
        served = self.cache.get(self.spec.name)
        if served is None:  # the alias is gone: hold the entries (they are claimed again later), wait
            log.error("Stream worker %s: %s is not available; waiting.", self.consumer, self.spec)
            self.stopping.wait(_RETRY_S[-1])
            return None
        if self._feature_service(served) is not None:  # the alias moved to such a version since the start
            log.error(
                "Stream worker %s: %s v%d reads a feature service online, which stream scoring does not "
                "do; waiting for the alias to move.",
                self.consumer,
                self.spec,
                served.version,
            )
            self.stopping.wait(_RETRY_S[-1])
            return None
        dead: list[Outcome] = []
        ids, records, kept = _parse(entries, self.options.max_deliveries, dead, served)
        predictions = self._predict(served, kept, ids, records, dead)
        now = time.time()
        outputs, rows = [], []
        for entry, message_id, prediction in zip(kept, ids, predictions):
            if prediction is _FAILED:
                continue
            text = json.dumps(prediction, default=str)
            fields = {
                "id": message_id,
                "prediction": text,
                "model": served.name,
                "version": str(served.version),
            }
            outputs.append(Outcome(entry.entry_id, OUT, fields))
            # The record as it came (the text is JSON already; encoding it again costs time)
            raw = entry.fields["record"]
            rows.append((message_id, 0, served.name, served.version, served.alias, now, raw, text))
        return _Scored(served, entries, outputs, dead, rows)

    def _write(self, batch: _Scored) -> None:
        """The log first, then outputs, dead letters and acknowledgements: an entry is acknowledged only
        once its row is written."""
        since = min(e.enqueued_ms for e in batch.entries) / 1000
        logged = self._retrying("write the prediction log", lambda: self.log.write(batch.rows, since))
        if logged is None:
            return  # stopping while the warehouse is down: the entries stay pending for another worker
        outcomes = [*batch.outputs, *batch.dead]
        if self._retrying("write the outputs", lambda: self.broker.commit(outcomes)) is None:
            return
        self._count(batch, logged)

    def _feature_service(self, served: ServedModel) -> str | None:
        """The version's feature service tag (read once per version)."""
        if served.version not in self._feature_services:
            from stackml.tracking import FEATURE_SERVICE_TAG, configure

            tags = configure(self.settings).get_model_version(served.name, str(served.version)).tags or {}
            self._feature_services[served.version] = tags.get(FEATURE_SERVICE_TAG) or None
        return self._feature_services[served.version]

    def _predict(
        self,
        served: ServedModel,
        entries: list[Entry],
        ids: list[str],
        records: list[dict[str, Any]],
        dead: list[Outcome],
    ) -> list[Any]:
        """One model call for the batch; when it fails, the halves, so a bad record costs only itself."""
        from stackml.serving.validation import validate_records

        if not records:
            return []
        frame, problems, exact = validate_records(records, served.columns)
        if problems:
            bad = {p.record for p in problems}
            for i in sorted(i for i in bad if i is not None):
                errors = [_problem(p) for p in problems if p.record == i]
                dead.append(_dead(entries[i], ids[i], "validate", errors, served))
            good = [i for i in range(len(records)) if i not in bad]
            answers = self._predict(
                served, [entries[i] for i in good], [ids[i] for i in good], [records[i] for i in good], dead
            )
            merged: list[Any] = [_FAILED] * len(records)
            for i, answer in zip(good, answers):
                merged[i] = answer
            return merged
        try:
            return _call(served, frame, exact, len(records))
        except Exception as exc:  # the model's own code may raise anything; never stop the worker for it
            if len(records) == 1:
                dead.append(_dead(entries[0], ids[0], "predict", [_failure(exc)], served))
                return [_FAILED]
            # Halve until the records that fail are alone: a few bad records cost a few calls each.
            log.warning("A batch of %d failed to predict (%s); splitting it.", len(records), exc)
            half = len(records) // 2
            return [
                *self._predict(served, entries[:half], ids[:half], records[:half], dead),
                *self._predict(served, entries[half:], ids[half:], records[half:], dead),
            ]

    def _retrying(self, what: str, action: Callable[[], Any]) -> Any:
        """``action()``, tried again with growing pauses while it fails; None when stopped meanwhile."""
        for attempt in range(10**9):
            try:
                return action()
            except Exception as exc:  # broker or warehouse down, locked, restarting: wait and try again
                pause = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
                log.warning(
                    "Stream worker %s could not %s (%s: %s); trying again in %.1f s.",
                    self.consumer,
                    what,
                    type(exc).__name__,
                    " ".join(str(exc).split())[:300],
                    pause,
                    extra={"event": "retry", "action": what},
                )
                if self.stopping.wait(pause):
                    return None
        return None

    # -- bookkeeping --------------------------------------------------------------------------------------
    def _count(self, batch: _Scored, logged: int) -> None:
        served = batch.served
        self.stats.batches += 1
        self.stats.scored += len(batch.outputs)
        self.stats.dead_letters += len(batch.dead)
        self.stats.logged += logged
        statuses = {o.entry_id: 200 for o in batch.outputs} | {d.entry_id: 422 for d in batch.dead}
        now = time.time()
        for entry in batch.entries:
            latency = max(now - entry.enqueued_ms / 1000, 0.0)  # enqueue to acknowledgement
            self.metrics.observe_request(served.name, ENDPOINT, statuses.get(entry.entry_id, 500), latency)
        if batch.outputs:
            self.metrics.count_records(served.name, str(served.version), len(batch.outputs))

    def _refresh_gauges(self) -> None:
        try:
            self._pending = self.broker.pending()
            backlog = getattr(self.broker, "backlog", None)
            self._backlog = backlog() if backlog is not None else 0
        except Exception as exc:  # only gauges: the loop reports broker trouble itself
            log.debug("Could not read the stream's gauges: %s", exc)

    def _gauges(self) -> list[Any]:
        from stackml.serving.metrics import Gauge

        group = (("stream", self.options.source), ("group", self.options.group))
        me = (("consumer", self.consumer),)
        served = self.cache.get(self.spec.name)
        return [
            Gauge(
                "stackml_stream_pending",
                "Entries handed out and not yet acknowledged.",
                {group: self._pending},
            ),
            Gauge(
                "stackml_stream_backlog",
                "Entries in the stream the group has not read yet.",
                {group: self._backlog},
            ),
            Gauge(
                "stackml_stream_batches_total",
                "Batches scored by this worker.",
                {me: self.stats.batches},
                "counter",
            ),
            Gauge(
                "stackml_stream_dead_letters_total",
                "Entries sent to the dead letters.",
                {me: self.stats.dead_letters},
                "counter",
            ),
            Gauge(
                "stackml_stream_claimed_total",
                "Entries claimed from dead workers.",
                {me: self.stats.claimed},
                "counter",
            ),
            Gauge(
                "stackml_model_version",
                "The version being served, by model and alias.",
                {(("model", self.spec.name), ("alias", self.spec.alias)): served.version if served else 0},
            ),
        ]

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, _frame: Any) -> None:
            log.info(
                "Stream worker %s: %s received; finishing the batch in hand.",
                self.consumer,
                signal.Signals(signum).name,
            )
            self.stopping.set()

        for sig in previous:
            signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _shutdown(self) -> None:
        self.cache.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for close in (self.broker.close, self.log.close):
            try:
                close()
            except Exception as exc:  # a broker gone at shutdown leaves nothing to tidy
                log.warning("Stream worker %s: shutdown: %s", self.consumer, exc)


_FAILED = object()  # a record that went to the dead letters instead of the output


@dataclass(frozen=True)
class _Scored:
    """A scored batch waiting to be written: its outputs, dead letters and log rows."""

    served: ServedModel
    entries: list[Entry]
    outputs: list[Outcome]
    dead: list[Outcome]
    rows: list[tuple[Any, ...]]


def _parse(
    entries: list[Entry], max_deliveries: int, dead: list[Outcome], served: ServedModel
) -> tuple[list[str], list[dict[str, Any]], list[Entry]]:
    """Each entry's id and record; malformed entries go to ``dead``."""
    ids, records, kept, seen = [], [], [], set()
    for entry in entries:
        message_id = entry.fields.get("id", "")
        errors = []
        if entry.deliveries > max_deliveries:
            errors.append(
                f"handed out {entry.deliveries} times without being finished (its workers died on it?); "
                f"the limit is {max_deliveries}"
            )
        if DECODE_ERROR in entry.fields:
            errors.append(entry.fields[DECODE_ERROR])
        if not message_id.strip():
            errors.append("the entry has no 'id' field (a unique string)")
        elif message_id in seen:
            errors.append(f"the id {message_id!r} appears twice in one batch; ids must be unique")
        record: Any = None
        if "record" not in entry.fields:
            errors.append("the entry has no 'record' field (a JSON object)")
        else:
            try:
                record = json.loads(entry.fields["record"])
            except ValueError as exc:
                errors.append(f"'record' is not valid JSON: {exc}")
            else:
                if not isinstance(record, dict):
                    errors.append(f"'record' must be a JSON object (one row), got {type(record).__name__}")
        if errors:
            stage = "delivery" if entry.deliveries > max_deliveries else "parse"
            dead.append(_dead(entry, message_id, stage, [{"message": e} for e in errors], served))
            continue
        seen.add(message_id)
        ids.append(message_id)
        records.append(record)
        kept.append(entry)
    return ids, records, kept


def _call(served: ServedModel, frame: Any, exact: bool, n: int) -> list[Any]:
    from stackml.serving.jsonable import to_jsonable

    predict = served.direct if exact and served.direct is not None else served.model.predict
    answers = to_jsonable(predict(frame))
    if not isinstance(answers, list) or len(answers) != n:
        got = len(answers) if isinstance(answers, list) else type(answers).__name__
        raise ValueError(
            f"'{served.name}' v{served.version} answered {got} rows for {n} records; stream scoring needs "
            "one prediction per record (forecasters have their own command)"
        )
    return answers


def _problem(problem: Any) -> dict[str, Any]:
    return {
        "column": problem.column,
        "kind": problem.kind,
        "message": _RECORD_PREFIX.sub("", problem.message),
    }


def _failure(exc: Exception) -> dict[str, Any]:
    message = " ".join(str(getattr(exc, "message", exc)).split())[:500]
    return {"kind": "predict_failed", "message": f"{type(exc).__name__}: {message}"}


def _dead(
    entry: Entry, message_id: str, stage: str, errors: list[dict[str, Any]], served: ServedModel
) -> Outcome:
    return Outcome(
        entry.entry_id,
        DEAD,
        {
            "id": message_id,
            "record": entry.fields.get("record", ""),
            "errors": json.dumps(errors),
            "stage": stage,
            "entry": entry.entry_id,
            "model": served.name,
            "version": str(served.version),
        },
    )


def _serve_metrics(metrics: Any, host: str, port: int) -> Any:
    """``GET /metrics`` on ``host:port`` in a daemon thread (the text format the service's ``/metrics``
    uses)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from stackml.serving.metrics import CONTENT_TYPE

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics is served here")
                return
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:  # scrapes are not news
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="stackml-stream-metrics", daemon=True).start()
    return server


# -- several workers ----------------------------------------------------------------------------------------
def score_stream(
    options: StreamOptions,
    settings: Settings | None = None,
    *,
    on_start: Callable[[list[str]], None] | None = None,
    logging_config: dict[str, Any] | None = None,
) -> StreamStats:
    """Run ``options.workers`` stream workers until SIGTERM / SIGINT (or ``until_idle_s`` of quiet).

    One worker runs in this process; more run as child processes (each loads the model once), stopped
    together on SIGTERM. A child that dies is not restarted here: the others claim its entries; a
    supervisor (systemd, Kubernetes) restarts the command.

    Args:
        options: the streams, the model and the workers.
        settings: where the registry and the default warehouse are.
        on_start: called with the workers' names once they run.
        logging_config: a :func:`logging.config.dictConfig` each worker process applies.

    Raises:
        InputError: bad options (checked by :class:`StreamOptions`).
        RegistryError: the model does not resolve or load.
        ConnectionFailedError: the broker cannot be reached.
    """
    from stackml.config import get_settings

    settings = settings or get_settings(warehouse_url=options.warehouse)
    if options.workers == 1:
        worker = StreamWorker(options, settings)
        if on_start is not None:
            on_start([worker.consumer])
        return worker.run()
    return _run_children(options, settings, on_start, logging_config)


def _run_children(
    options: StreamOptions,
    settings: Settings,
    on_start: Callable[[list[str]], None] | None,
    logging_config: dict[str, Any] | None,
) -> StreamStats:
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no forked copies of threads, locks or connections
    results = context.Queue()
    children = []
    for i in range(options.workers):
        port = options.metrics_port + i if options.metrics_port else None
        child = context.Process(
            target=_child_main,
            args=(replace(options, workers=1), settings, port, results, logging_config),
            name=f"stackml-stream-{i}",
        )
        child.start()
        children.append(child)
    stop = threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def forward(_signum: int, _frame: Any) -> None:
        stop.set()
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signal.SIGTERM)

    if threading.current_thread() is threading.main_thread():
        for sig in previous:
            signal.signal(sig, forward)
    try:
        if on_start is not None:
            on_start([f"pid {c.pid}" for c in children])
        total = StreamStats()
        gathered = 0
        while gathered < len(children):
            try:
                item = results.get(timeout=0.5)
            except Exception:  # queue.Empty: check for children that died without reporting
                if all(not c.is_alive() for c in children) and results.empty():
                    break
                continue
            gathered += 1
            if isinstance(item, StreamStats):
                total.add(item)
            else:
                log.error("A stream worker failed: %s", item)
        for child in children:
            child.join(timeout=30)
        failed = [c for c in children if c.exitcode not in (0, None)]
        if failed and not stop.is_set():
            log.error("%d of %d stream workers ended with an error.", len(failed), len(children))
        return total
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _child_main(
    options: StreamOptions,
    settings: Settings,
    port: int | None,
    results: Any,
    logging_config: dict[str, Any] | None,
) -> None:
    if logging_config is not None:
        import logging.config

        logging.config.dictConfig(logging_config)
    try:
        stats = StreamWorker(options, settings, metrics_port=port).run()
    except Exception as exc:  # reported to the parent, which prints it; the child exits non-zero
        results.put(f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from exc
    results.put(stats)
