"""The stream step of ``stackml demo``: customer events through a Redis stream, scored by a stream worker.

2,000 events (and two broken ones) are written to the Redis stream ``demo_customer_events``; one worker in
this process scores them in micro-batches with the segmentation the monitoring step registered, writes the
segments to ``demo_customer_segments``, every prediction to the warehouse's prediction log, and the broken
events to ``demo_customer_events:dead`` with their errors; it stops once the stream is drained. Without a
Redis server on 127.0.0.1:6379 (``STACKML_DEMO_REDIS_URL`` names another) the step says so and is skipped.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from stackml.demo.monitor_demo import MODEL_NAME, customers

if TYPE_CHECKING:
    from stackml.demo import DemoContext

EVENTS = "demo_customer_events"
SEGMENTS = "demo_customer_segments"
N_EVENTS = 2000


def stream_step(ctx: DemoContext) -> None:
    """Write customer events to a Redis stream and score them with a stream worker."""
    from stackml.scoring.stream import StreamOptions, score_stream

    url = os.environ.get("STACKML_DEMO_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = _redis(url)
    if client is None:
        ctx.say(f"No Redis server answers at {url}: skipping the stream step (start redis-server to see it).")
        return
    options = StreamOptions(model=MODEL_NAME, broker=url, source=EVENTS, out=SEGMENTS, until_idle_s=1.0)
    client.delete(EVENTS, SEGMENTS, options.dead_stream)  # the demo owns these names: start afresh
    pipe = client.pipeline(transaction=False)
    for i, record in enumerate(customers(N_EVENTS, seed=3).to_dict("records")):
        pipe.xadd(EVENTS, {"id": f"event-{i}", "record": json.dumps(record)})
    pipe.xadd(EVENTS, {"id": "event-broken-json", "record": "{spend: 12"})
    pipe.xadd(EVENTS, {"id": "event-no-spend", "record": json.dumps({"visits": 3.0, "tenure": 8.0})})
    pipe.execute()
    ctx.say(f"Scoring {N_EVENTS + 2:,} customer events from the Redis stream '{EVENTS}' with a stream worker")
    stats = score_stream(options, ctx.settings)
    dead = [json.loads(fields[b"errors"])[0]["message"] for _, fields in client.xrange(options.dead_stream)]
    ctx.say(
        f"Scored {stats.scored:,} events in {stats.batches} batches into '{SEGMENTS}'; "
        f"{stats.dead_letters} sent to '{options.dead_stream}': {dead}"
    )
    client.close()


def _redis(url: str):  # noqa: ANN202 - a redis.Redis, or None when none answers
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError:
        client.close()
        return None
    return client
