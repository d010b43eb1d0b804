"""The Redis Streams sink on a real redis-server: the contract, and streams holding exactly the
committed events, in order.

The server is named by ``XIESHANG_TEST_REDIS_URL``. Without it these tests skip, except in CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sink_contract import SinkContract, closed_port, drive, make_engine, sample_events

from xieshang.adapters.events import (
    DeliveryFailed,
    EventSettings,
    EventSink,
    RedisStreamSink,
    Relay,
)
from xieshang.adapters.sql.store import open_store

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get("XIESHANG_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must set XIESHANG_TEST_REDIS_URL: the Redis tests may not be skipped")
        pytest.skip("XIESHANG_TEST_REDIS_URL is not set")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as e:
        pytest.fail(f"XIESHANG_TEST_REDIS_URL={url!r} does not answer: {e}")
    return url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A stream prefix of this test's own; its streams are deleted afterwards."""
    name = f"xs-test-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def stream_events(url: str, stream: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url)
    try:
        entries = client.xrange(stream)
    finally:
        client.close()
    out = []
    for _, fields in entries:
        event = json.loads(fields[b"event"])
        assert fields[b"id"].decode() == event["id"]
        assert fields[b"type"].decode() == event["type"]
        out.append(event)
    return out


class TestRedisStreamSinkContract(SinkContract):
    @pytest.fixture
    def sink(self, redis_url: str, prefix: str) -> Iterator[EventSink]:
        self.url = redis_url
        s = RedisStreamSink(redis_url, mode="single", prefix=prefix)
        yield s
        s.close()

    @pytest.fixture
    def broken_sink(self) -> Iterator[EventSink]:
        s = RedisStreamSink(f"redis://127.0.0.1:{closed_port()}/0", timeout=1)
        yield s
        s.close()

    def received(self, sink: EventSink) -> list[dict[str, Any]]:
        assert isinstance(sink, RedisStreamSink)
        return stream_events(self.url, f"{sink.prefix}:events")


def test_stream_per_workflow_holds_exactly_the_committed_events_in_order(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """Stream <prefix>:<workflow> holds exactly the committed events, once each, each
    instance's in its commit order (the relay sends the k-th event of each instance together)."""
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    engine = make_engine(store)
    drive(engine, instances=3, notes=3)
    relay = Relay(store, [RedisStreamSink(redis_url, prefix=prefix)], EventSettings())
    committed = [e.body for e in store.outbox()]
    try:
        assert relay.run_once() == len(committed)
        assert relay.run_once() == 0
    finally:
        relay.close()
        store.close()
    arrived = stream_events(redis_url, f"{prefix}:relaytest")
    assert sorted(arrived, key=lambda e: e["id"]) == sorted(committed, key=lambda e: e["id"])
    for subject in {e["subject"] for e in committed}:
        mine = [e for e in committed if e["subject"] == subject]
        assert [e for e in arrived if e["subject"] == subject] == mine
    client = redis.Redis.from_url(redis_url)
    assert sorted(k.decode() for k in client.scan_iter(f"{prefix}:*")) == [f"{prefix}:relaytest"]
    client.close()


def test_single_stream_mode_puts_every_workflow_in_one_stream(redis_url: str, prefix: str) -> None:
    """In ``single`` mode all events go to <prefix>:events."""
    sink = RedisStreamSink(redis_url, mode="single", prefix=prefix)
    events = sample_events(3)
    other = {**events[0], "id": "other-1-0", "data": {**events[0]["data"], "workflow": "other"}}
    for e in [*events, other]:
        sink.deliver(e)
    sink.close()
    assert [e["id"] for e in stream_events(redis_url, f"{prefix}:events")] == [
        *(e["id"] for e in events),
        "other-1-0",
    ]


def test_a_key_that_is_not_a_stream_is_a_final_failure(redis_url: str, prefix: str) -> None:
    """WRONGTYPE (the stream's key holds a string) is dead-lettered, not retried."""
    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}:relaytest", "not a stream")
    client.close()
    sink = RedisStreamSink(redis_url, prefix=prefix)
    with pytest.raises(DeliveryFailed) as caught:
        sink.deliver(sample_events(1)[0])
    sink.close()
    assert caught.value.retryable is False and "WRONGTYPE" in caught.value.reason


def test_maxlen_trims_the_stream(redis_url: str, prefix: str) -> None:
    """With maxlen the stream is trimmed to about that many entries."""
    sink = RedisStreamSink(redis_url, mode="single", prefix=prefix, maxlen=5)
    event = sample_events(1)[0]
    for _ in range(500):
        sink.deliver(event)
    sink.close()
    client = redis.Redis.from_url(redis_url)
    assert client.xlen(f"{prefix}:events") < 500
    client.close()


def test_several_events_in_one_go_each_get_their_outcome(redis_url: str, prefix: str) -> None:
    """``deliver_many`` adds the events in order in one round trip; an event whose stream key
    is not a stream fails alone (final), the others arrive."""
    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}:other", "not a stream")
    client.close()
    sink = RedisStreamSink(redis_url, prefix=prefix)
    events = sample_events(3)
    other = {**events[0], "id": "other-1-0", "data": {**events[0]["data"], "workflow": "other"}}
    outcomes = sink.deliver_many([events[0], other, *events[1:]])
    sink.close()
    assert [o is None for o in outcomes] == [True, False, True, True]
    failed = outcomes[1]
    assert failed is not None and failed.retryable is False and "WRONGTYPE" in failed.reason
    stream = sink.stream_of(events[0])
    assert [e["id"] for e in stream_events(redis_url, stream)] == [e["id"] for e in events]


def test_several_events_to_an_unreachable_server_all_fail_retryable() -> None:
    """A lost connection fails every event of the round trip, each to be retried."""
    sink = RedisStreamSink(f"redis://127.0.0.1:{closed_port()}/0", timeout=1)
    outcomes = sink.deliver_many(sample_events(2))
    sink.close()
    assert len(outcomes) == 2
    assert all(o is not None and o.retryable for o in outcomes)
