"""Kafka as the broker: a consumer group on the input topic; outputs, dead letters and offsets committed in
one transaction.

URL: ``kafka://host:9092[,host2:9092]``, the bootstrap servers (credentials go in the settings below).

Topics: the input stream (``--in``), the output (``--out``) and the dead letters (``--dead-letter``) are
topics; ``--group`` is the consumer group. Kafka allows only ``[A-Za-z0-9._-]`` in topic names, so every
other character becomes ``.``: the default dead letters of ``events``, ``events:dead``, are the topic
``events.dead``. Create the topics first: reads fail while the input topic is missing.

Messages: an input message's value is UTF-8 JSON ``{"id": "...", "record": {...}}`` (its key is not read);
its entry id is ``partition:offset``. A value not of that shape still becomes an entry, and the worker sends
it to the dead letters. An output's key is the id and its value a JSON object of the output's fields as text
(``id``, ``prediction`` as JSON text, ``model``, ``version``); a dead letter's likewise (``id``, ``record``,
``errors``, ``stage``, ``entry``, ``model``, ``version``).

Semantics: each input message is answered exactly once. A worker writes a batch's outputs and dead letters
and moves the group's committed offsets past the batch in one Kafka transaction (``transactional.id`` is
``stackml-<group>-<consumer>``); it reads with ``isolation.level=read_committed``, and readers of the output
should too. A worker that dies drops out of the group after ``session.timeout.ms`` (45 s by default); its
partitions go to the living, which read them again from the last committed offset. That re-delivery, not
``claim``, takes over a dead worker's messages (``claim_after_ms`` only re-hands a batch a worker set aside
itself). A worker that holds a batch longer than ``max.poll.interval.ms`` (300 s by default) is put out of
the group: its late commit is refused and the batch read again. Kafka does not count deliveries, so
``max_deliveries`` cannot stop a message that kills every worker reading it. A crashed worker's open
transaction holds back read_committed readers of the output until the broker aborts it, after
``transaction.timeout.ms`` (60 s by default). Transactions need Kafka 2.5 or later; a single-broker cluster
also needs ``transaction.state.log.replication.factor=1`` and ``transaction.state.log.min.isr=1``.

Settings: any librdkafka setting, for both the consumer and the producer, from the environment variable
``STACKML_KAFKA_<SETTING>``: the setting's name in capitals with ``.`` written ``_``::

    export STACKML_KAFKA_SECURITY_PROTOCOL=SASL_SSL
    export STACKML_KAFKA_SASL_MECHANISM=PLAIN
    export STACKML_KAFKA_SASL_USERNAME=scorer
    export STACKML_KAFKA_SASL_PASSWORD=...
    stackml score stream --broker kafka://b1:9092,b2:9092 --in events --out predictions --model churn

A setting only one of the two clients knows (``transaction.timeout.ms``) draws a harmless warning from the
other. The settings the semantics rest on (``bootstrap.servers``, ``group.id``, ``group.instance.id``,
``transactional.id``, ``enable.auto.commit``, ``isolation.level``) cannot be set this way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from stackml._deps import require
from stackml.errors import ConfigError, ConnectionFailedError
from stackml.scoring.brokers import DEAD, DECODE_ERROR, DROP, OUT, Entry, Outcome, Streams

__all__ = ["KafkaBroker", "bootstrap_servers", "entry_from_message", "kafka_settings", "topic_name"]

log = logging.getLogger(__name__)

ENV_PREFIX = "STACKML_KAFKA_"
# Exactly-once rests on these; the URL, the group option and the adapter set them.
RESERVED = (
    "bootstrap.servers",
    "group.id",
    "group.instance.id",  # static membership would keep a crashed worker's partitions from the living
    "transactional.id",
    "enable.auto.commit",
    "isolation.level",
)
_CONNECT_TIMEOUT_S = 5.0
_INIT_TIMEOUT_S = 30.0  # the first transactional producer of a cluster waits for __transaction_state
_TXN_TIMEOUT_S = 30.0
_COMMIT_TRIES = 3
_MAX_TOPIC = 249
_NOT_IN_TOPIC = re.compile(r"[^A-Za-z0-9._-]")
_FORMAT = 'a JSON object {"id": "...", "record": {...}}'
_CONNECT_HINT = (
    "Check --broker (kafka://host:9092[,host2:9092]) and that Kafka is running; TLS and SASL settings go in "
    "STACKML_KAFKA_* variables (e.g. STACKML_KAFKA_SECURITY_PROTOCOL=SASL_SSL)."
)


def topic_name(stream: str) -> str:
    """The Kafka topic for a stream name: characters outside ``[A-Za-z0-9._-]`` become ``.``.

    Raises:
        ConfigError: when no legal topic name results (empty, ``.``, ``..`` or over 249 characters).

    Example:
        >>> topic_name("events:dead")
        'events.dead'
    """
    topic = _NOT_IN_TOPIC.sub(".", stream)
    if topic in ("", ".", "..") or len(topic) > _MAX_TOPIC:
        raise ConfigError(
            f"The stream name {stream!r} makes no Kafka topic name (it maps to {topic!r}).",
            hint="Kafka topics have 1 to 249 characters from [A-Za-z0-9._-] and are not '.' or '..'.",
        )
    return topic


def bootstrap_servers(url: str) -> str:
    """``host:port[,host:port]`` from ``kafka://host:port[,host:port]``.

    Raises:
        ConfigError: for another scheme, no host, or credentials in the URL.
    """
    scheme, sep, rest = url.partition("://")
    servers = rest.split("/", 1)[0].split("?", 1)[0]
    hosts = [host.strip() for host in servers.split(",") if host.strip()]
    if scheme.lower() != "kafka" or not sep or not hosts or "@" in servers:
        from stackml.warehouse.base import redact_url

        raise ConfigError(
            f"Not a Kafka broker URL: {redact_url(url)!r}.",
            hint="Use kafka://host:9092[,host2:9092]; credentials go in STACKML_KAFKA_SASL_USERNAME and "
            "STACKML_KAFKA_SASL_PASSWORD.",
        )
    return ",".join(hosts)


def kafka_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """librdkafka settings from ``STACKML_KAFKA_<SETTING>`` variables (``_`` for ``.``), by setting name.

    Raises:
        ConfigError: for a setting the adapter sets itself (see ``RESERVED``).

    Example:
        >>> kafka_settings({"STACKML_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
        {'security.protocol': 'SASL_SSL'}
    """
    environ = os.environ if environ is None else environ
    settings: dict[str, str] = {}
    for variable, value in environ.items():
        if not variable.upper().startswith(ENV_PREFIX) or len(variable) == len(ENV_PREFIX):
            continue
        setting = variable[len(ENV_PREFIX) :].lower().replace("_", ".")
        if setting in RESERVED:
            raise ConfigError(
                f"{variable} sets '{setting}', which the Kafka adapter sets itself.",
                hint="Remove it: the servers come from --broker, the group from --group, and the rest are "
                "fixed for exactly-once delivery.",
            )
        settings[setting] = value
    return dict(sorted(settings.items()))


def entry_from_message(partition: int, offset: int, timestamp_ms: int, value: bytes | None) -> Entry:
    """The entry for one input message; never raises.

    A value that is not UTF-8 JSON of the message format keeps what could be read (the raw text as
    ``record``) and says what is wrong in ``fields[DECODE_ERROR]``; a missing ``id`` or ``record`` is left
    missing; an integer ``id`` is taken as its decimal text. The worker sends such an entry to the dead
    letters with the reasons.

    Example:
        >>> entry_from_message(0, 7, 1, b'{"id": "a", "record": {"x": 1}}').fields
        {'id': 'a', 'record': '{"x": 1}'}
    """
    entry_id = f"{partition}:{offset}"
    return Entry(entry_id, _fields(value), timestamp_ms, 1)


def _fields(value: bytes | None) -> dict[str, str]:
    if value is None:
        return {DECODE_ERROR: f"the message has no value; expected {_FORMAT}"}
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return {
            "record": value.decode("utf-8", "replace"),
            DECODE_ERROR: "the message value is not UTF-8 text",
        }
    try:
        message = json.loads(text)
    except ValueError as exc:
        return {"record": text, DECODE_ERROR: f"the message value is not JSON ({exc}); expected {_FORMAT}"}
    if not isinstance(message, dict):
        kind = type(message).__name__
        return {"record": text, DECODE_ERROR: f"the message value is a JSON {kind}; expected {_FORMAT}"}
    fields: dict[str, str] = {}
    message_id = message.get("id")
    if isinstance(message_id, str):
        fields["id"] = message_id
    elif isinstance(message_id, int) and not isinstance(message_id, bool):
        fields["id"] = str(message_id)
    elif message_id is not None:
        fields[DECODE_ERROR] = f"'id' must be a string, got {type(message_id).__name__}"
    if "record" in message:
        record = message["record"]
        # A string is taken as the record's JSON text, as in the Redis format; anything else is re-encoded
        # and the worker checks that it is an object.
        fields["record"] = record if isinstance(record, str) else json.dumps(record)
    return fields


def _position(entry_id: str) -> tuple[int, int]:
    partition, _, offset = entry_id.partition(":")
    return int(partition), int(offset)


class KafkaBroker:
    """A worker's connection to Kafka: a consumer in the group and a transactional producer (see the module
    docstring).

    Args:
        url: ``kafka://host:port[,host:port]``.
        streams: the stream names (mapped to topic names by :func:`topic_name`) and the consumer group.
        consumer: this worker's name (unique per process): the client id and part of the transactional id.

    Raises:
        ConfigError: a bad URL, stream name or ``STACKML_KAFKA_*`` setting.
        ConnectionFailedError: no broker answered within 5 s, or transactions could not be started.
    """

    def __init__(self, url: str, streams: Streams, consumer: str) -> None:
        ck = require("confluent_kafka", "kafka")
        self._ck = ck
        self.streams = streams
        self.consumer = consumer
        self.servers = bootstrap_servers(url)
        self.source_topic, self.out_topic, self.dead_topic = _topics(streams)
        self._targets = {OUT: self.out_topic, DEAD: self.dead_topic, DROP: None}
        self._group_moved = {
            ck.KafkaError.ILLEGAL_GENERATION,
            ck.KafkaError.UNKNOWN_MEMBER_ID,
            ck.KafkaError.FENCED_INSTANCE_ID,
            ck.KafkaError.REBALANCE_IN_PROGRESS,
        }
        settings = kafka_settings()
        self.transactional_id = f"stackml-{streams.group}-{consumer}"
        self._consumer_conf: dict[str, Any] = {
            "client.id": consumer,
            "auto.offset.reset": "earliest",  # a new group scores the backlog, as on Redis
            **settings,
            "bootstrap.servers": self.servers,
            "group.id": streams.group,
            "enable.auto.commit": False,  # offsets move only inside the output transaction
            "isolation.level": "read_committed",
            "logger": log,
        }
        self._producer_conf: dict[str, Any] = {
            "client.id": consumer,
            **settings,
            "bootstrap.servers": self.servers,
            "transactional.id": self.transactional_id,
            "logger": log,
        }
        # Entries read and not yet committed, with when they were handed out (monotonic), in read order.
        self._held: dict[str, tuple[Entry, float]] = {}
        self._next_offset: dict[int, int] = {}  # partition -> the offset after the last message read
        self._assigned: set[int] = set()
        self._unsure = False  # a commit failed in a way that leaves its fate unknown; check before the next
        self._closed = False
        self._producer: Any = None
        self._producer_ready = False
        try:
            self._consumer = ck.Consumer(self._consumer_conf)
        except ck.KafkaException as exc:
            raise _settings_error(exc) from exc
        try:
            metadata = self._consumer.list_topics(timeout=_CONNECT_TIMEOUT_S)
        except ck.KafkaException as exc:
            self._consumer.close()
            raise ConnectionFailedError(
                f"Cannot reach the Kafka brokers at {self.servers}: {_reason(exc)}", hint=_CONNECT_HINT
            ) from exc
        missing = [
            t for t in (self.source_topic, self.out_topic, self.dead_topic) if t not in metadata.topics
        ]
        if missing:
            log.warning(
                "Kafka at %s has no topic %s yet; create it (reads fail while the input topic is missing).",
                self.servers,
                ", ".join(missing),
            )
        try:
            self._transactional_producer()
        except ck.KafkaException as exc:
            self._consumer.close()
            if exc.args and getattr(exc.args[0], "code", lambda: None)() == ck.KafkaError._INVALID_ARG:
                raise _settings_error(exc) from exc
            raise ConnectionFailedError(
                f"Kafka at {self.servers} did not start transactions for {self.transactional_id}: "
                f"{_reason(exc)}",
                hint="Transactions need Kafka 2.5 or later; a single broker also needs "
                "transaction.state.log.replication.factor=1 and transaction.state.log.min.isr=1.",
            ) from exc
        self._consumer.subscribe(
            [self.source_topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        log.info(
            "Kafka at %s: topic %s -> %s, dead letters to %s, group %s.",
            self.servers,
            self.source_topic,
            self.out_topic,
            self.dead_topic,
            streams.group,
        )

    # -- the Broker interface ----------------------------------------------------------------------------
    def read(self, count: int, block_ms: int) -> list[Entry]:
        # poll() returns as soon as one message is there, where consume() may wait out its whole timeout
        # for a full batch (it depends on the client's version); consume(timeout=0) then takes only what was
        # fetched already. The worker gathers the rest of a batch itself.
        first = self._consumer.poll(max(block_ms, 0) / 1000)
        if first is None:
            return []
        messages = [first]
        if count > 1:
            messages += self._consumer.consume(num_messages=count - 1, timeout=0)
        entries: list[Entry] = []
        problem = None
        for message in messages:
            error = message.error()
            if error is None:
                entries.append(self._hold(message))
            elif error.code() != self._ck.KafkaError._PARTITION_EOF and problem is None:
                problem = error
        if problem is not None:
            if not entries:
                raise self._ck.KafkaException(problem)
            # The messages beside it are consumed already: hand them out; a lasting error recurs next read.
            log.warning("Kafka consumer error beside %d messages: %s", len(entries), problem)
        return entries

    def claim(self, count: int, min_idle_ms: int) -> list[Entry]:
        """Entries this worker read more than ``min_idle_ms`` ago and has not committed, handed out again.

        A dead worker's messages need no claiming on Kafka: once it has missed ``session.timeout.ms``, the
        group gives its partitions to the living, who read them again from the last committed offset (after
        a crash, or any rebalance, uncommitted messages are delivered again). What is left to claim is a batch
        this worker set aside uncommitted (its model was unavailable, say): nothing else would read it again.
        """
        cutoff = time.monotonic() - min_idle_ms / 1000
        stale = [entry for entry, handed_out in self._held.values() if handed_out <= cutoff][:count]
        now = time.monotonic()
        again = [replace(entry, deliveries=entry.deliveries + 1) for entry in stale]
        for entry in again:
            self._held[entry.entry_id] = (entry, now)
        return again

    def commit(self, outcomes: list[Outcome]) -> int:
        """Produce the outputs and dead letters and commit the group's offsets past them in one transaction.

        An outcome whose entry this worker no longer holds (its partition moved to another worker, or it was
        committed already) is skipped. On failure the transaction is aborted and the error raised; the entries
        stay held, so a retry writes them, except after the group moved on (the worker was fenced): then the
        partitions are rewound and the retry writes nothing.
        """
        batch: dict[str, Outcome] = {}
        for outcome in outcomes:
            if outcome.target not in self._targets:
                raise ValueError(f"Unknown outcome target {outcome.target!r}; expected out, dead or drop.")
            if outcome.entry_id in self._held and outcome.entry_id not in batch:
                batch[outcome.entry_id] = outcome
        if self._unsure and batch:
            self._skip_committed(batch)
        if not batch:
            return 0
        producer = self._transactional_producer()
        offsets = self._offsets_after(batch)
        try:
            producer.begin_transaction()
            for outcome in batch.values():
                topic = self._targets[outcome.target]
                if topic is None:
                    continue
                key = outcome.fields.get("id") or None
                producer.produce(
                    topic,
                    value=json.dumps(outcome.fields).encode("utf-8"),
                    key=key.encode("utf-8") if key else None,
                )
            metadata = self._consumer.consumer_group_metadata()
            producer.send_offsets_to_transaction(offsets, metadata, _TXN_TIMEOUT_S)
            self._commit_transaction(producer)
        except (self._ck.KafkaException, BufferError) as exc:
            self._abort(producer, exc)
            raise
        for entry_id in batch:
            del self._held[entry_id]
        return len(batch)

    def pending(self) -> int:
        """Entries this worker has read and not committed (Kafka keeps no group-wide list); never raises."""
        return len(self._held)

    def backlog(self) -> int:
        """Messages in this worker's partitions it has not read yet, from cached watermarks; 0 on error."""
        try:
            assigned = [self._ck.TopicPartition(self.source_topic, p) for p in sorted(self._assigned)]
            total = 0
            for tp in self._consumer.position(assigned) if assigned else []:
                marks = self._consumer.get_watermark_offsets(tp, cached=True)
                if marks and tp.offset >= 0 and marks[1] >= 0:
                    total += max(marks[1] - tp.offset, 0)
            return total
        except Exception as exc:  # only a gauge
            log.debug("Could not read the Kafka backlog: %s", exc)
            return 0

    def close(self) -> None:
        """Leave the group now (the partitions move without waiting for the session timeout) and flush the
        producer. Uncommitted entries are read again by whoever gets their partitions."""
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close()
        finally:
            if self._producer is not None:
                self._producer.flush(_TXN_TIMEOUT_S)
                self._producer = None

    # -- the rest --------------------------------------------------------------------------------------------
    def _transactional_producer(self) -> Any:
        """The producer with its transactions initialised (which fences an earlier producer with this
        transactional id and settles a transaction it left open); made anew after it broke."""
        if self._producer is None:
            self._producer = self._ck.Producer(self._producer_conf)
            self._producer_ready = False
        if not self._producer_ready:
            try:
                self._producer.init_transactions(_INIT_TIMEOUT_S)
            except self._ck.KafkaException as exc:
                if not (exc.args and exc.args[0].retriable()):
                    self._producer = None
                raise  # a retriable failure (a timeout) resumes on the next call
            self._producer_ready = True
        return self._producer

    def _hold(self, message: Any) -> Entry:
        partition, offset = message.partition(), message.offset()
        kind, stamp = message.timestamp()
        if kind == self._ck.TIMESTAMP_NOT_AVAILABLE or stamp <= 0:
            stamp = int(time.time() * 1000)
        entry = entry_from_message(partition, offset, stamp, message.value())
        self._held[entry.entry_id] = (entry, time.monotonic())
        self._next_offset[partition] = max(self._next_offset.get(partition, 0), offset + 1)
        return entry

    def _offsets_after(self, batch: Mapping[str, Outcome]) -> list[Any]:
        """Per partition of the batch, the offset to commit: the next one to read, or the lowest one still
        held outside the batch (a set-aside entry must be read again after a crash: no commit passes it)."""
        lowest: dict[int, int] = {}
        for entry_id in batch:
            partition, offset = _position(entry_id)
            lowest.setdefault(partition, self._next_offset.get(partition, offset + 1))
        for entry_id in self._held:
            partition, offset = _position(entry_id)
            if partition in lowest and entry_id not in batch:
                lowest[partition] = min(lowest[partition], offset)
        return [self._ck.TopicPartition(self.source_topic, p, o) for p, o in sorted(lowest.items())]

    def _commit_transaction(self, producer: Any) -> None:
        for attempt in range(_COMMIT_TRIES):
            try:
                producer.commit_transaction(_TXN_TIMEOUT_S)
                return
            except self._ck.KafkaException as exc:
                error = exc.args[0] if exc.args else None
                # A retriable error (a timeout) leaves the commit under way: calling again resumes it.
                if not (error is not None and error.retriable()) or attempt == _COMMIT_TRIES - 1:
                    raise

    def _abort(self, producer: Any, exc: BaseException) -> None:
        error = exc.args[0] if isinstance(exc, self._ck.KafkaException) and exc.args else None
        try:
            producer.abort_transaction(_TXN_TIMEOUT_S)
        except self._ck.KafkaException as abort_exc:
            # The producer is unusable (fenced, fatal) or its commit may have gone through: start a fresh one,
            # whose init settles the old transaction, and check the committed offsets before writing again.
            log.warning("Kafka transaction could not be aborted (%s); restarting the producer.", abort_exc)
            self._producer = None
            self._unsure = True
        if error is not None and error.fatal():
            self._producer = None
        if error is not None and error.code() in self._group_moved:
            # The group moved on without this worker: its uncommitted entries are someone else's, or are
            # read again once it rejoins; the worker's retry of this commit finds nothing held.
            self._rewind(self._partitions_held())

    def _skip_committed(self, batch: dict[str, Outcome]) -> None:
        """Drop entries below the group's committed offsets: an earlier, uncertain commit wrote them."""
        partitions = sorted({_position(entry_id)[0] for entry_id in batch})
        tps = [self._ck.TopicPartition(self.source_topic, p) for p in partitions]
        committed = {tp.partition: tp.offset for tp in self._consumer.committed(tps, timeout=_TXN_TIMEOUT_S)}
        for entry_id in list(batch):
            partition, offset = _position(entry_id)
            if offset < committed.get(partition, -1):
                del batch[entry_id]
                del self._held[entry_id]
        self._unsure = False

    def _partitions_held(self) -> set[int]:
        return {_position(entry_id)[0] for entry_id in self._held}

    def _rewind(self, partitions: set[int]) -> None:
        """Forget the held entries of ``partitions`` and seek back to the lowest, so they are read again."""
        lowest: dict[int, int] = {}
        for entry_id in list(self._held):
            partition, offset = _position(entry_id)
            if partition in partitions:
                lowest[partition] = min(lowest.get(partition, offset), offset)
                del self._held[entry_id]
        for partition, offset in lowest.items():
            self._next_offset[partition] = offset
            try:
                self._consumer.seek(self._ck.TopicPartition(self.source_topic, partition, offset))
            except self._ck.KafkaException as exc:  # not assigned any more: its new owner reads it again
                log.debug("No seek on partition %d: %s", partition, exc)

    def _on_assign(self, _consumer: Any, partitions: list[Any]) -> None:
        self._assigned.update(tp.partition for tp in partitions)

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        # Whoever gets these partitions reads them from the last committed offset, so what this worker holds
        # of them is no longer its to answer: its commit skips them.
        gone = {tp.partition for tp in partitions}
        self._assigned -= gone
        for entry_id in [e for e in self._held if _position(e)[0] in gone]:
            del self._held[entry_id]
        for partition in gone:
            self._next_offset.pop(partition, None)


def _topics(streams: Streams) -> tuple[str, str, str]:
    topics = (topic_name(streams.source), topic_name(streams.out), topic_name(streams.dead))
    if len(set(topics)) < len(topics):
        names = f"{streams.source!r}, {streams.out!r} and {streams.dead!r}"
        raise ConfigError(
            f"The streams {names} map to the Kafka topics {', '.join(topics)}, which must differ.",
            hint="Kafka topic names take only [A-Za-z0-9._-]; other characters become '.'. Rename a stream.",
        )
    return topics


def _reason(exc: BaseException) -> str:
    error = exc.args[0] if exc.args else exc
    text = error.str() if hasattr(error, "str") else str(error)
    return " ".join(str(text).split())


def _settings_error(exc: BaseException) -> ConfigError:
    return ConfigError(
        f"Kafka refused a client setting: {_reason(exc)}",
        hint="Check the STACKML_KAFKA_* variables: a librdkafka setting's name in capitals, '_' for '.'.",
    )
