"""The Kafka broker adapter: topic names, message decoding, settings, the start-up connection check, the
transaction each commit makes (against a stand-in client), and one run against a real broker when
STACKML_TEST_KAFKA names one."""

from __future__ import annotations

import json
import os
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from stackml.errors import ConfigError, ConnectionFailedError
from stackml.scoring.brokers import DEAD, DECODE_ERROR, DROP, OUT, Outcome, Streams, open_broker
from stackml.scoring.brokers import kafka as kafka_module
from stackml.scoring.brokers.kafka import (
    KafkaBroker,
    bootstrap_servers,
    entry_from_message,
    kafka_settings,
    topic_name,
)

STREAMS = Streams(source="events", out="predictions", dead="events:dead", group="scorers")


# -- pure functions ------------------------------------------------------------------------------------------
def test_stream_names_map_to_legal_topic_names() -> None:
    assert topic_name("events:dead") == "events.dead"
    assert topic_name("my events/v2 ☃") == "my.events.v2.."
    assert topic_name("Already_legal-1.0") == "Already_legal-1.0"
    for bad in ("", ":", "::", "x" * 250):
        with pytest.raises(ConfigError, match="Kafka topic"):
            topic_name(bad)


def test_the_url_names_the_bootstrap_servers() -> None:
    assert bootstrap_servers("kafka://b1:9092,b2:9093") == "b1:9092,b2:9093"
    assert bootstrap_servers("KAFKA://b1:9092/") == "b1:9092"
    for bad in ("redis://b1:6379/0", "kafka://", "kafka://user:secret@b1:9092", "b1:9092"):
        with pytest.raises(ConfigError, match="Kafka broker URL") as caught:
            bootstrap_servers(bad)
        assert "secret" not in str(caught.value)


def test_a_well_formed_message_becomes_an_entry() -> None:
    value = json.dumps({"id": "m1", "record": {"x": 1.5, "kind": "a"}}).encode()
    entry = entry_from_message(3, 41, 1_700_000_000_123, value)
    assert entry.entry_id == "3:41" and entry.enqueued_ms == 1_700_000_000_123 and entry.deliveries == 1
    assert entry.fields == {"id": "m1", "record": json.dumps({"x": 1.5, "kind": "a"})}
    assert entry_from_message(0, 0, 1, b'{"id": 7, "record": "{\\"x\\": 1}"}').fields == {
        "id": "7",
        "record": '{"x": 1}',
    }


@pytest.mark.parametrize(
    ("value", "marked"),
    [
        (b"\xff\xfe{not utf-8", "not UTF-8"),
        (b"id=m1;x=2", "not JSON"),
        (b"[1, 2]", "JSON list"),
        (None, "no value"),
        (b'{"id": ["m1"], "record": {"x": 1}}', "'id' must be a string"),
    ],
)
def test_a_malformed_message_becomes_an_entry_marked_with_its_error(value: bytes | None, marked: str) -> None:
    entry = entry_from_message(0, 5, 1, value)
    assert entry.entry_id == "0:5"
    assert marked in entry.fields[DECODE_ERROR]
    if value is not None and not value.startswith(b"{"):
        assert entry.fields["record"] == value.decode("utf-8", "replace")


def test_every_malformed_message_goes_to_the_dead_letters() -> None:
    from stackml.scoring.stream import _parse

    values = [
        b"\xff",
        b"nope",
        b"[1]",
        None,
        b'{"record": {"x": 1}}',
        b'{"id": "m9"}',
        b'{"id": "a", "record": 3}',
    ]
    entries = [entry_from_message(0, i, 1, v) for i, v in enumerate(values)]
    dead: list[Outcome] = []
    ids, records, kept = _parse(entries, 5, dead, SimpleNamespace(name="m", version=1))
    assert ids == [] and records == [] and kept == []
    assert [d.entry_id for d in dead] == [e.entry_id for e in entries]
    assert all(d.target == DEAD and json.loads(d.fields["errors"]) for d in dead)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKML_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STACKML_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("STACKML_KAFKA_SESSION_TIMEOUT_MS", "10000")
    monkeypatch.setenv("STACKML_KAFKAESQUE", "not a setting")
    assert kafka_settings() == {
        "sasl.mechanism": "PLAIN",
        "security.protocol": "SASL_SSL",
        "session.timeout.ms": "10000",
    }
    monkeypatch.setenv("STACKML_KAFKA_ENABLE_AUTO_COMMIT", "true")
    with pytest.raises(ConfigError, match="enable.auto.commit"):
        kafka_settings()


def test_an_unreachable_broker_fails_fast_with_a_hint() -> None:
    pytest.importorskip("confluent_kafka")
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as caught:
        open_broker("kafka://127.0.0.1:1", STREAMS, "w1")
    assert time.monotonic() - started < 10
    assert "127.0.0.1:1" in str(caught.value) and "STACKML_KAFKA_" in (caught.value.hint or "")


# -- the adapter against a stand-in client -------------------------------------------------------------------
class FakeMessage:
    def __init__(self, partition: int, offset: int, value: Any = None, error: Any = None) -> None:
        self._partition, self._offset, self._value, self._error = partition, offset, value, error

    def error(self) -> Any:
        return self._error

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> Any:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000 + self._offset)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A stand-in for confluent_kafka: real errors and partitions, recorded clients."""
    ck = pytest.importorskip("confluent_kafka")
    made = SimpleNamespace(consumers=[], producers=[])

    class Consumer:
        def __init__(self, conf: dict[str, Any]) -> None:
            self.conf, self.queue, self.seeks, self.closed = conf, [], [], False
            self.committed_at: dict[int, int] = {}
            made.consumers.append(self)

        def list_topics(self, timeout: float) -> Any:
            return SimpleNamespace(topics={"events": None, "predictions": None, "events.dead": None})

        def subscribe(self, topics: list[str], **callbacks: Any) -> None:
            self.topics, self.callbacks = topics, callbacks
            callbacks["on_assign"](self, [ck.TopicPartition("events", 0), ck.TopicPartition("events", 1)])

        def poll(self, timeout: float) -> Any:
            return self.queue.pop(0) if self.queue else None

        def consume(self, num_messages: int, timeout: float) -> list[Any]:
            taken, self.queue = self.queue[:num_messages], self.queue[num_messages:]
            return taken

        def consumer_group_metadata(self) -> str:
            return "group-metadata"

        def seek(self, tp: Any) -> None:
            self.seeks.append((tp.partition, tp.offset))

        def committed(self, tps: list[Any], timeout: float) -> list[Any]:
            return [
                ck.TopicPartition(tp.topic, tp.partition, self.committed_at.get(tp.partition, -1001))
                for tp in tps
            ]

        def close(self) -> None:
            self.closed = True

    class Producer:
        def __init__(self, conf: dict[str, Any]) -> None:
            self.conf, self.calls, self.fail = conf, [], {}
            self.topics: dict[str, list[tuple[Any, Any]]] = {}
            self.offsets: list[list[tuple[int, int]]] = []
            made.producers.append(self)

        def _call(self, name: str) -> None:
            self.calls.append(name)
            if name in self.fail:
                raise self.fail.pop(name)

        def init_transactions(self, timeout: float) -> None:
            self._call("init")

        def begin_transaction(self) -> None:
            self._call("begin")
            self.staged: list[tuple[str, Any, Any]] = []

        def produce(self, topic: str, value: Any = None, key: Any = None) -> None:
            self._call("produce")
            self.staged.append((topic, key, value))

        def send_offsets_to_transaction(self, offsets: list[Any], metadata: Any, timeout: float) -> None:
            self._call("offsets")
            assert metadata == "group-metadata"
            self.staged_offsets = [(tp.topic, tp.partition, tp.offset) for tp in offsets]

        def commit_transaction(self, timeout: float) -> None:
            self._call("commit")
            for topic, key, value in self.staged:
                self.topics.setdefault(topic, []).append((key, json.loads(value)))
            self.offsets.append(self.staged_offsets)

        def abort_transaction(self, timeout: float) -> None:
            self._call("abort")

        def flush(self, timeout: float) -> int:
            return 0

    module = SimpleNamespace(
        Consumer=Consumer,
        Producer=Producer,
        TopicPartition=ck.TopicPartition,
        KafkaException=ck.KafkaException,
        KafkaError=ck.KafkaError,
        TIMESTAMP_NOT_AVAILABLE=ck.TIMESTAMP_NOT_AVAILABLE,
    )
    monkeypatch.setattr(kafka_module, "require", lambda name, extra=None: module)
    made.ck = ck
    return made


def message(partition: int, offset: int, message_id: str) -> FakeMessage:
    return FakeMessage(partition, offset, json.dumps({"id": message_id, "record": {"x": offset}}).encode())


def output(entry_id: str, message_id: str) -> Outcome:
    return Outcome(entry_id, OUT, {"id": message_id, "prediction": "1", "model": "m", "version": "1"})


def test_clients_are_configured_for_exactly_once(
    fake: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKML_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STACKML_KAFKA_AUTO_OFFSET_RESET", "latest")
    broker = KafkaBroker("kafka://k1:9092,k2:9092", STREAMS, "w1")
    (consumer,), (producer,) = fake.consumers, fake.producers
    assert consumer.topics == ["events"] and broker.dead_topic == "events.dead"
    assert consumer.conf["bootstrap.servers"] == producer.conf["bootstrap.servers"] == "k1:9092,k2:9092"
    assert consumer.conf["group.id"] == "scorers" and consumer.conf["client.id"] == "w1"
    assert (
        consumer.conf["enable.auto.commit"] is False and consumer.conf["isolation.level"] == "read_committed"
    )
    assert (
        consumer.conf["auto.offset.reset"] == "latest"
    )  # a setting from the environment wins over a default
    assert "group.instance.id" not in consumer.conf
    assert consumer.conf["security.protocol"] == producer.conf["security.protocol"] == "SASL_SSL"
    assert producer.conf["transactional.id"] == "stackml-scorers-w1" and producer.calls == ["init"]
    broker.close()
    assert consumer.closed


def test_streams_that_map_to_one_topic_are_refused(fake: SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match="must differ"):
        KafkaBroker("kafka://k1:9092", Streams("events", "events.dead", "events:dead", "g"), "w1")


def test_a_commit_writes_outputs_dead_letters_and_offsets_in_one_transaction(fake: SimpleNamespace) -> None:
    broker = KafkaBroker("kafka://k1:9092", STREAMS, "w1")
    consumer, producer = fake.consumers[0], fake.producers[0]
    eof = FakeMessage(1, 0, error=fake.ck.KafkaError(fake.ck.KafkaError._PARTITION_EOF))
    consumer.queue = [message(0, 10, "a"), message(1, 4, "b"), eof, message(0, 11, "c"), message(1, 5, "d")]
    entries = broker.read(10, 100)
    assert [e.entry_id for e in entries] == ["0:10", "1:4", "0:11", "1:5"]
    assert entries[0].enqueued_ms == 1_700_000_000_010 and broker.pending() == 4
    dead = Outcome("1:5", DEAD, {"id": "d", "record": "{}", "errors": "[]", "stage": "parse"})
    outcomes = [output("0:10", "a"), output("1:4", "b"), Outcome("0:11", DROP), dead, output("0:10", "a")]
    assert broker.commit(outcomes) == 4
    assert producer.calls == ["init", "begin", "produce", "produce", "produce", "offsets", "commit"]
    assert producer.topics["predictions"] == [
        (b"a", {"id": "a", "prediction": "1", "model": "m", "version": "1"}),
        (b"b", {"id": "b", "prediction": "1", "model": "m", "version": "1"}),
    ]
    assert producer.topics["events.dead"] == [(b"d", dead.fields)]
    assert producer.offsets == [[("events", 0, 12), ("events", 1, 6)]]
    assert broker.pending() == 0 and broker.commit(outcomes) == 0  # answered once


def test_a_failed_transaction_is_aborted_raised_and_written_on_retry(fake: SimpleNamespace) -> None:
    ck = fake.ck
    broker = KafkaBroker("kafka://k1:9092", STREAMS, "w1")
    consumer, producer = fake.consumers[0], fake.producers[0]
    consumer.queue = [message(0, 0, "a"), message(0, 1, "b")]
    entries = broker.read(10, 100)
    timeout = ck.KafkaError(ck.KafkaError._TIMED_OUT, "coordinator away", txn_requires_abort=True)
    producer.fail["offsets"] = ck.KafkaException(timeout)
    outcomes = [output(e.entry_id, e.fields["id"]) for e in entries]
    with pytest.raises(ck.KafkaException):
        broker.commit(outcomes)
    assert producer.calls[-1] == "abort" and "predictions" not in producer.topics and broker.pending() == 2
    assert broker.commit(outcomes) == 2
    assert [key for key, _ in producer.topics["predictions"]] == [b"a", b"b"]
    assert producer.offsets == [[("events", 0, 2)]]


def test_a_commit_after_the_group_moved_on_rewinds_and_writes_nothing(fake: SimpleNamespace) -> None:
    ck = fake.ck
    broker = KafkaBroker("kafka://k1:9092", STREAMS, "w1")
    consumer, producer = fake.consumers[0], fake.producers[0]
    consumer.queue = [message(0, 7, "a"), message(1, 3, "b"), message(0, 8, "c")]
    entries = broker.read(10, 100)
    fenced = ck.KafkaError(ck.KafkaError.ILLEGAL_GENERATION, "stale generation", txn_requires_abort=True)
    producer.fail["offsets"] = ck.KafkaException(fenced)
    outcomes = [output(e.entry_id, e.fields["id"]) for e in entries]
    with pytest.raises(ck.KafkaException):
        broker.commit(outcomes)
    assert sorted(consumer.seeks) == [(0, 7), (1, 3)]  # read again from the first unanswered message
    assert broker.pending() == 0 and broker.commit(outcomes) == 0 and "predictions" not in producer.topics


def test_after_a_commit_of_unknown_fate_the_committed_offsets_decide(fake: SimpleNamespace) -> None:
    ck = fake.ck
    broker = KafkaBroker("kafka://k1:9092", STREAMS, "w1")
    consumer, producer = fake.consumers[0], fake.producers[0]
    consumer.queue = [message(0, 0, "a"), message(0, 1, "b")]
    entries = broker.read(10, 100)
    outcomes = [output(e.entry_id, e.fields["id"]) for e in entries]
    producer.fail["commit"] = ck.KafkaException(ck.KafkaError(ck.KafkaError._FENCED, "fenced", fatal=True))
    producer.fail["abort"] = ck.KafkaException(ck.KafkaError(ck.KafkaError._FATAL, "fatal", fatal=True))
    with pytest.raises(ck.KafkaException, match="fenced"):
        broker.commit(outcomes)
    consumer.committed_at[0] = 2  # the commit went through after all
    assert broker.commit(outcomes) == 0 and broker.pending() == 0
    consumer.queue = [message(0, 2, "c")]
    (later,) = broker.read(10, 100)
    assert broker.commit([output(later.entry_id, "c")]) == 1
    (fresh,) = fake.producers[1:]  # the broken producer was replaced; a and b were not written again
    assert fresh.calls[0] == "init" and [key for key, _ in fresh.topics["predictions"]] == [b"c"]
    assert "predictions" not in producer.topics


def test_revoked_partitions_are_not_answered_by_the_old_owner(fake: SimpleNamespace) -> None:
    ck = fake.ck
    broker = KafkaBroker("kafka://k1:9092", STREAMS, "w1")
    consumer, producer = fake.consumers[0], fake.producers[0]
    consumer.queue = [message(0, 0, "a"), message(1, 0, "b")]
    entries = broker.read(10, 100)
    consumer.callbacks["on_revoke"](consumer, [ck.TopicPartition("events", 1)])
    assert broker.commit([output(e.entry_id, e.fields["id"]) for e in entries]) == 1
    assert [key for key, _ in producer.topics["predictions"]] == [b"a"]
    assert producer.offsets == [[("events", 0, 1)]]


def test_a_batch_set_aside_is_claimed_again_and_no_commit_passes_it(fake: SimpleNamespace) -> None:
    broker = KafkaBroker("kafka://k1:9092", STREAMS, "w1")
    consumer, producer = fake.consumers[0], fake.producers[0]
    consumer.queue = [message(0, 0, "a"), message(0, 1, "b")]
    set_aside = broker.read(10, 100)  # the worker holds these without answering (its model was away)
    assert broker.claim(10, 60_000) == []
    consumer.queue = [message(0, 2, "c")]
    (later,) = broker.read(10, 100)
    assert broker.commit([output(later.entry_id, "c")]) == 1
    assert producer.offsets == [[("events", 0, 0)]]  # not past the unanswered 0:0 and 0:1
    claimed = broker.claim(10, 0)
    assert [(e.entry_id, e.deliveries) for e in claimed] == [(e.entry_id, 2) for e in set_aside]
    assert broker.commit([output(e.entry_id, e.fields["id"]) for e in claimed]) == 2
    assert producer.offsets[-1] == [("events", 0, 3)] and broker.pending() == 0


def test_a_read_error_is_raised_unless_messages_came_with_it(fake: SimpleNamespace) -> None:
    ck = fake.ck
    broker = KafkaBroker("kafka://k1:9092", STREAMS, "w1")
    consumer = fake.consumers[0]
    failure = FakeMessage(0, -1, error=ck.KafkaError(ck.KafkaError.UNKNOWN_TOPIC_OR_PART, "no topic"))
    consumer.queue = [failure]
    with pytest.raises(ck.KafkaException, match="no topic"):
        broker.read(10, 100)
    consumer.queue = [message(0, 0, "a"), failure]
    assert [e.entry_id for e in broker.read(10, 100)] == ["0:0"]
    consumer.queue = [FakeMessage(0, 1, b"\xff\xfe")]  # a bad message never raises
    (bad,) = broker.read(10, 100)
    assert DECODE_ERROR in bad.fields and broker.read(10, 0) == []


# -- a real broker -------------------------------------------------------------------------------------------
KAFKA = os.environ.get("STACKML_TEST_KAFKA")


def _drain(
    servers: str, topic: str, expect: int, settle_s: float = 3.0
) -> list[tuple[bytes, dict[str, Any]]]:
    """Every committed message of ``topic``: waits for ``expect`` of them, then ``settle_s`` for extras."""
    from confluent_kafka import Consumer

    reader = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"stackml-test-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    reader.subscribe([topic])
    got: list[tuple[bytes, dict[str, Any]]] = []
    deadline = time.monotonic() + 60
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            if len(got) >= expect:
                quiet_until = quiet_until or time.monotonic() + settle_s
                if time.monotonic() >= quiet_until:
                    break
            msg = reader.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append((msg.key(), json.loads(msg.value())))
    finally:
        reader.close()
    return got


def _read_all(broker: KafkaBroker, expect: int, within_s: float = 60) -> list[Any]:
    entries: list[Any] = []
    deadline = time.monotonic() + within_s
    while len(entries) < expect and time.monotonic() < deadline:
        entries += broker.read(50, 500)
    return entries


@pytest.mark.slow
@pytest.mark.skipif(not KAFKA, reason="no Kafka broker: set STACKML_TEST_KAFKA=host:port to run")
def test_a_real_broker_answers_each_message_once() -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    servers = str(KAFKA)
    tag = uuid.uuid4().hex[:8]
    streams = Streams(
        f"stackml-test-{tag}", f"stackml-test-{tag}-out", f"stackml-test-{tag}:dead", f"g-{tag}"
    )
    topics = [topic_name(streams.source), topic_name(streams.out), topic_name(streams.dead)]
    admin = AdminClient({"bootstrap.servers": servers})
    created = admin.create_topics([NewTopic(t, num_partitions=2 if t == topics[0] else 1) for t in topics])
    for future in created.values():
        future.result(30)
    url = f"kafka://{servers}"
    try:
        producer = Producer({"bootstrap.servers": servers})
        for i in range(20):
            value = json.dumps({"id": f"m{i}", "record": {"x": i}})
            producer.produce(topics[0], key=f"m{i}".encode(), value=value.encode())
        assert producer.flush(30) == 0

        # A worker that reads and dies before committing: its messages come to the next one.
        first = KafkaBroker(url, streams, "w1")
        assert len(_read_all(first, 20)) == 20
        first.close()

        second = KafkaBroker(url, streams, "w2")
        entries = _read_all(second, 20)
        assert sorted(e.fields["id"] for e in entries) == sorted(f"m{i}" for i in range(20))
        assert all(json.loads(e.fields["record"]) == {"x": int(e.fields["id"][1:])} for e in entries)
        outcomes = []
        for e in entries:
            message_id = e.fields["id"]
            if message_id == "m3":
                fields = {"id": message_id, "record": e.fields["record"], "errors": "[]", "stage": "parse"}
                outcomes.append(Outcome(e.entry_id, DEAD, fields))
            elif message_id == "m5":
                outcomes.append(Outcome(e.entry_id, DROP))
            else:
                outcomes.append(output(e.entry_id, message_id))
        assert second.commit(outcomes) == 20 and second.pending() == 0
        assert second.commit(outcomes) == 0
        second.close()

        outputs = _drain(servers, topics[1], 18)
        assert sorted(key.decode() for key, _ in outputs) == sorted(
            f"m{i}" for i in range(20) if i not in (3, 5)
        )
        assert all(
            value == {"id": key.decode(), "prediction": "1", "model": "m", "version": "1"}
            for key, value in outputs
        )
        dead = _drain(servers, topics[2], 1)
        assert [(key, value["id"], value["stage"]) for key, value in dead] == [(b"m3", "m3", "parse")]

        # The group's offsets moved past the batch: a new worker reads nothing old, then only what is new.
        third = KafkaBroker(url, streams, "w3")
        try:
            assert _read_all(third, 1, within_s=10) == []
            producer.produce(topics[0], value=json.dumps({"id": "m20", "record": {"x": 20}}).encode())
            assert producer.flush(30) == 0
            assert [e.fields["id"] for e in _read_all(third, 1)] == ["m20"]
        finally:
            third.close()
    finally:
        for future in admin.delete_topics(topics).values():
            try:
                future.result(30)
            except Exception:  # cleanup only
                pass
