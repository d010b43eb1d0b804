"""The Redis Streams consumer against the real Redis of ``$XIESHANG_TEST_REDIS_URL``: the group is
created, each event is handled once per group and acked after its handler returns, duplicates
are skipped by CloudEvent id, a consumer killed mid-batch leaves its entries to another that
claims them, and a restarted consumer takes up its own pending entries first."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from xieshang import Usage
from xieshang.adapters.events import RedisStreamSink, StreamConsumer

REDIS_ENV = "XIESHANG_TEST_REDIS_URL"


class Killed(BaseException):
    """What stops a consumer dead in its handler: nothing after it runs, nothing is acked."""


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    url = os.environ.get(REDIS_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {REDIS_ENV} is not set")
        pytest.skip(f"{REDIS_ENV} is not set")
    c = redis.Redis.from_url(url, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"xs-test-{uuid.uuid4().hex[:12]}"
    yield name
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)


def publish(client: redis.Redis, prefix: str, ids: list[str]) -> str:
    """Add an event per id to the prefix's single stream, as the relay's sink does."""
    sink = RedisStreamSink("redis://test", mode="single", prefix=prefix, client=client)
    for event_id in ids:
        sink.deliver(
            {
                "id": event_id,
                "type": "xieshang.instance.transitioned",
                "subject": f"i-{event_id}",
                "data": {"workflow": "proposal"},
            }
        )
    return f"{prefix}:events"


def consumer(
    client: redis.Redis, prefix: str, name: str, handler: Any, **options: Any
) -> StreamConsumer:
    options = {"block_ms": 5, "count": 10, **options}
    return StreamConsumer(client, [f"{prefix}:events"], "mailer", name, handler, prefix=prefix,
                          **options)  # fmt: skip


def drain(c: StreamConsumer) -> None:
    while c.run_once():
        pass


def pending(client: redis.Redis, stream: str) -> dict[str, int]:
    """Pending entries per consumer of the group."""
    return {p["name"]: p["pending"] for p in client.xpending(stream, "mailer")["consumers"]}


def test_each_event_is_handled_once_and_acked(client: redis.Redis, prefix: str) -> None:
    """The group is created on first use; five events, one of them added twice, reach the
    handler once each, in order; nothing stays pending; each id is marked handled."""
    stream = publish(client, prefix, ["e0", "e1", "e2", "e2", "e3", "e4"])
    handled: list[str] = []
    c = consumer(client, prefix, "a", lambda e: handled.append(e["id"]))
    drain(c)
    assert handled == ["e0", "e1", "e2", "e3", "e4"]
    assert [g["name"] for g in client.xinfo_groups(stream)] == ["mailer"]
    assert pending(client, stream) == {}
    assert client.ttl(c.seen_key("e3")) > 0
    publish(client, prefix, ["e3", "e5"])
    drain(c)
    assert handled == ["e0", "e1", "e2", "e3", "e4", "e5"]


def test_a_consumer_killed_mid_batch_leaves_its_entries_to_another(
    client: redis.Redis, prefix: str
) -> None:
    """A is killed in its handler of the third event of a batch of six: the first two are
    acked, the other four stay pending with A; B claims them with XAUTOCLAIM and handles them,
    so every event is handled exactly once."""
    stream = publish(client, prefix, [f"e{k}" for k in range(6)])
    handled: list[tuple[str, str]] = []

    def dies_on_e2(event: dict[str, Any]) -> None:
        if event["id"] == "e2":
            raise Killed
        handled.append(("a", event["id"]))

    with pytest.raises(Killed):
        consumer(client, prefix, "a", dies_on_e2).run_once()
    assert handled == [("a", "e0"), ("a", "e1")]
    assert pending(client, stream) == {"a": 4}
    b = consumer(client, prefix, "b", lambda e: handled.append(("b", e["id"])), claim_idle_ms=0)
    drain(b)
    assert handled == [("a", "e0"), ("a", "e1"), ("b", "e2"), ("b", "e3"), ("b", "e4"), ("b", "e5")]
    assert pending(client, stream) == {}


def test_a_restarted_consumer_takes_up_its_own_pending_entries_first(
    client: redis.Redis, prefix: str
) -> None:
    """Killed mid-batch and started again under its name (claiming nothing from others), A
    handles its four pending entries before any new one."""
    stream = publish(client, prefix, [f"e{k}" for k in range(6)])
    handled: list[str] = []

    def dies_on_e2(event: dict[str, Any]) -> None:
        if event["id"] == "e2":
            raise Killed
        handled.append(event["id"])

    with pytest.raises(Killed):
        consumer(client, prefix, "a", dies_on_e2, count=6).run_once()
    publish(client, prefix, ["e6"])
    again = consumer(client, prefix, "a", lambda e: handled.append(e["id"]), count=2)
    drain(again)
    assert handled == ["e0", "e1", "e2", "e3", "e4", "e5", "e6"]
    assert pending(client, stream) == {}


def test_a_failing_handler_leaves_its_entry_pending_until_claimed_again(
    client: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises is logged; its entry stays pending (the others are acked) and is
    handled when claimed again."""
    stream = publish(client, prefix, ["e0", "e1", "e2"])
    handled: list[str] = []
    failures = iter([RuntimeError("smtp down")])

    def flaky(event: dict[str, Any]) -> None:
        if event["id"] == "e1":
            error = next(failures, None)
            if error is not None:
                raise error
        handled.append(event["id"])

    c = consumer(client, prefix, "a", flaky, claim_idle_ms=0)
    with caplog.at_level(logging.ERROR, logger="xieshang.events.consumer"):
        assert c.run_once() >= 2
    assert "handler failed on event e1" in caplog.text
    drain(c)
    assert handled == ["e0", "e2", "e1"]
    assert pending(client, stream) == {}


def test_an_entry_without_an_event_is_logged_and_acked(
    client: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry no sink wrote (no event field) can never be handled: it is acked, not retried."""
    stream = f"{prefix}:events"
    client.xadd(stream, {"note": "hand-written"})
    handled: list[str] = []
    with caplog.at_level(logging.ERROR, logger="xieshang.events.consumer"):
        drain(consumer(client, prefix, "a", lambda e: handled.append(e["id"])))
    assert handled == [] and "holds no event" in caplog.text
    assert pending(client, stream) == {}


def test_bad_arguments_are_refused_naming_them(client: redis.Redis) -> None:
    """No streams, an empty group, a handler that cannot be called: Usage naming each."""
    with pytest.raises(Usage) as bad:
        StreamConsumer(client, "xieshang:events", "g", "a", print)
    assert bad.value.message.startswith("streams must be a list of stream names")
    with pytest.raises(Usage) as bad:
        StreamConsumer(client, ["xieshang:events"], "", "a", print)
    assert bad.value.message == "group must be a non-empty name (got '')"
    with pytest.raises(Usage) as bad:
        StreamConsumer(client, ["xieshang:events"], "g", "a", "print")
    assert bad.value.message == "handler must be callable (got 'print')"
