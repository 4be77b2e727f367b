"""Redis Streams as the broker: a consumer group on the input stream, outputs and dead letters as streams.

Exactly one output per input entry, even across crashes: a worker writes an entry's output in the same
server-side script that acknowledges it (``XACK``), and only when ``XACK`` says the entry was still
pending. If a worker dies before its script ran, the entry stays pending and a living worker claims it
(``XAUTOCLAIM``) once it has been idle for the claim timeout; if two workers end up scoring the same
entry (a slow one, and the one that claimed from it), the second script finds it acknowledged and writes
nothing. On Redis Cluster the three streams must share a hash slot: name them with a common ``{tag}``.
"""

from __future__ import annotations

import json
from typing import Any

from stackml._deps import require
from stackml.errors import ConnectionFailedError
from stackml.scoring.brokers import DEAD, DECODE_ERROR, DROP, OUT, Entry, Outcome, Streams

__all__ = ["RedisStreams"]

# KEYS: source, out, dead. ARGV: the group, then the batch as JSON (decoded in the server: packing thousands
# of arguments costs the client more than the script): [[entry id, target (0 none, 2 out, 3 dead),
# [field, value, ...]], ...]. An entry is written only if this call is the one that acknowledged it.
_COMMIT = """
local group = ARGV[1]
local written = 0
for _, item in ipairs(cjson.decode(ARGV[2])) do
  if redis.call('XACK', KEYS[1], group, item[1]) == 1 then
    if item[2] > 0 then
      redis.call('XADD', KEYS[item[2]], '*', unpack(item[3]))
    end
    written = written + 1
  end
end
return written
"""
_TARGETS = {DROP: 0, OUT: 2, DEAD: 3}


class RedisStreams:
    """A worker's connection to Redis Streams (see the module docstring).

    Args:
        url: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS).
        streams: the stream names and the consumer group (created, with the input stream, when missing;
            a new group starts at the beginning of the stream, so a backlog is scored).
        consumer: this worker's name in the group (unique per process).
    """

    def __init__(self, url: str, streams: Streams, consumer: str) -> None:
        redis = require("redis", "stream")
        self.streams = streams
        self.consumer = consumer
        try:
            self._redis = redis.Redis.from_url(url, socket_timeout=30, health_check_interval=30)
            self._redis.ping()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ValueError) as exc:
            raise ConnectionFailedError(
                f"Cannot reach the Redis broker at {_redacted(url)}: {exc}",
                hint="Check --broker (redis://host:6379/0) and that Redis is running.",
            ) from exc
        try:
            self._redis.xgroup_create(streams.source, streams.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._commit = self._redis.register_script(_COMMIT)
        self._claim_cursor = "0-0"

    def read(self, count: int, block_ms: int) -> list[Entry]:
        reply = self._redis.xreadgroup(
            self.streams.group,
            self.consumer,
            {self.streams.source: ">"},
            count=count,
            block=max(int(block_ms), 1),
        )
        return [_entry(eid, fields) for _, items in reply or [] for eid, fields in items]

    def claim(self, count: int, min_idle_ms: int) -> list[Entry]:
        cursor, items, *_ = self._redis.xautoclaim(
            self.streams.source,
            self.streams.group,
            self.consumer,
            min_idle_time=int(min_idle_ms),
            start_id=self._claim_cursor,
            count=count,
        )
        # A full pass over the pending list ends with cursor 0-0; the next call starts over.
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        items = [(eid, fields) for eid, fields in items if fields is not None]
        if not items:
            return []
        ids = [eid.decode() if isinstance(eid, bytes) else str(eid) for eid, _ in items]
        details = self._redis.xpending_range(
            self.streams.source,
            self.streams.group,
            min=min(ids, key=_order),
            max=max(ids, key=_order),
            count=len(ids) + 100,
            consumername=self.consumer,
        )
        deliveries = {_text(d["message_id"]): int(d["times_delivered"]) for d in details}
        return [_entry(eid, fields, deliveries.get(i, 2)) for (eid, fields), i in zip(items, ids)]

    def commit(self, outcomes: list[Outcome]) -> int:
        if not outcomes:
            return 0
        batch = [
            [o.entry_id, _TARGETS[o.target], [part for pair in o.fields.items() for part in pair]]
            for o in outcomes
        ]
        keys = [self.streams.source, self.streams.out, self.streams.dead]
        return int(self._commit(keys=keys, args=[self.streams.group, json.dumps(batch)]))

    def pending(self) -> int:
        return int(self._redis.xpending(self.streams.source, self.streams.group)["pending"])

    def backlog(self) -> int:
        """Entries in the input stream the group has not read yet (Redis 7's consumer-group lag)."""
        for group in self._redis.xinfo_groups(self.streams.source):
            if _text(group["name"]) == self.streams.group:
                lag = group.get("lag")
                return int(lag) if lag is not None else 0
        return 0

    def close(self) -> None:
        try:
            mine = self._redis.xpending_range(
                self.streams.source, self.streams.group, min="-", max="+", count=1, consumername=self.consumer
            )
            if not mine:  # leave the group tidy; a consumer with pending entries stays for others to claim
                self._redis.xgroup_delconsumer(self.streams.source, self.streams.group, self.consumer)
        finally:
            self._redis.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _entry(entry_id: Any, raw: dict[Any, Any], deliveries: int = 1) -> Entry:
    eid = _text(entry_id)
    fields: dict[str, str] = {}
    for key, value in raw.items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        try:
            fields[name] = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            fields[name] = value.decode("utf-8", "replace")
            fields[DECODE_ERROR] = f"the field '{name}' is not UTF-8 text"
    return Entry(eid, fields, _order(eid)[0], deliveries)


def _redacted(url: str) -> str:
    from stackml.warehouse.base import redact_url

    return redact_url(url)
