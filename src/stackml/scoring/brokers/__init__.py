"""The message brokers stream scoring reads from and writes to, behind one small interface.

A broker hands a worker batches of :class:`Entry` (new ones, or ones a dead worker left unfinished) and
takes back one :class:`Outcome` per entry: an output, a dead letter, or nothing. :meth:`Broker.commit`
writes the outcomes and acknowledges their entries together, so an entry is answered once even when two
workers ended up holding it.

Adapters: Redis Streams (``redis://``, the default, :mod:`.redis_streams`) and Kafka (``kafka://``,
:mod:`.kafka`). :func:`open_broker` picks one from the URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from stackml.errors import ConfigError

__all__ = ["Broker", "Entry", "Outcome", "Streams", "open_broker", "OUT", "DEAD", "DROP", "DECODE_ERROR"]

OUT, DEAD, DROP = "out", "dead", "drop"  # where an outcome goes: the output, the dead letters, nowhere
DECODE_ERROR = "_decode_error"  # an adapter sets this field when a field of the message is not UTF-8 text


@dataclass(frozen=True)
class Streams:
    """The names a worker uses: the input, the output, the dead letters and the consumer group."""

    source: str
    out: str
    dead: str
    group: str


@dataclass(frozen=True)
class Entry:
    """One input message.

    Attributes:
        entry_id: the broker's own id (Redis stream id ``<ms>-<seq>``; Kafka ``partition:offset``).
        fields: the message's fields as text (``id`` and ``record``, by the message format).
        enqueued_ms: when the broker took it (milliseconds since the epoch), for end-to-end latency.
        deliveries: how often it has been handed to a worker (1 the first time).
    """

    entry_id: str
    fields: dict[str, str]
    enqueued_ms: int
    deliveries: int = 1


@dataclass(frozen=True)
class Outcome:
    """What to write for one entry before it is acknowledged: ``fields`` to ``target`` (OUT or DEAD), or
    nothing (DROP)."""

    entry_id: str
    target: str
    fields: dict[str, str] = field(default_factory=dict)


class Broker(Protocol):
    """What a stream worker needs of a broker."""

    streams: Streams

    def read(self, count: int, block_ms: int) -> list[Entry]:
        """Up to ``count`` new entries for this worker, waiting at most ``block_ms`` for the first one."""

    def claim(self, count: int, min_idle_ms: int) -> list[Entry]:
        """Entries other workers took more than ``min_idle_ms`` ago and never acknowledged (they died)."""

    def commit(self, outcomes: list[Outcome]) -> int:
        """Write every outcome and acknowledge its entry, atomically per entry; an entry someone else
        acknowledged already is skipped. Returns how many were written."""

    def pending(self) -> int:
        """Entries handed out and not yet acknowledged, across the group."""

    def close(self) -> None:
        """Leave the group (when nothing is pending for this worker) and close the connection."""


def open_broker(url: str, streams: Streams, consumer: str) -> Broker:
    """The broker at ``url``: ``redis://host:port/db`` (or ``rediss://``) or ``kafka://host:port[,host:port]``.

    Raises:
        ConfigError: for another scheme.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        from stackml.scoring.brokers.redis_streams import RedisStreams

        return RedisStreams(url, streams, consumer)
    if scheme == "kafka":
        from stackml.scoring.brokers.kafka import KafkaBroker

        return KafkaBroker(url, streams, consumer)
    raise ConfigError(
        f"Unsupported broker URL {url!r}.",
        hint="Use redis://host:6379/0 (Redis Streams) or kafka://host:9092 (Kafka).",
    )
