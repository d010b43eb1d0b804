"""The live streams' shared reader of the outbox: one read per poll interval whatever the number
of streams, every event once in the log (also one that becomes visible late), and a stream that
fell behind the log told so."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from xieshang import Actor, Engine
from xieshang.adapters.http import create_app
from xieshang.adapters.http.auth import MemoryTokenStore
from xieshang.adapters.http.event_feed import EventFeed
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled

MEMBER = Actor.parse("m1:member@o")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counting(MemoryStore):
    """A memory store that counts how the outbox is read."""

    def __init__(self) -> None:
        super().__init__()
        self.whole_reads = 0
        self.since_reads = 0

    def outbox(self, instance_id: str | None = None) -> Any:
        if instance_id is None:
            self.whole_reads += 1
        return super().outbox(instance_id)

    def outbox_since(self, position: int, limit: int) -> Any:
        self.since_reads += 1
        return super().outbox_since(position, limit)


@pytest.fixture
def engine() -> Engine:
    return Engine(MemoryStore(), bundled())


def propose(engine: Engine, title: str) -> str:
    return engine.start("proposal", {"title": title, "first_proposer": "m1"}, MEMBER).id


def test_streams_share_one_read_per_interval(engine: Engine) -> None:
    """Ten streams asking within one interval cause one read of the store, not ten."""
    clock = Clock()
    feed = EventFeed(engine.store, poll_seconds=0.25, clock=clock)
    feed.refresh()
    assert feed.reads == 1
    propose(engine, "a")
    for _ in range(10):
        feed.refresh()
    assert feed.reads == 1 and feed.since(0) == []  # not read again yet
    clock.now += 0.25
    for _ in range(10):
        feed.refresh()
    assert feed.reads == 2
    entries = feed.since(0)
    assert entries is not None
    assert [e.event.type for e in entries] == [
        "xieshang.instance.started",
        "xieshang.proposal.drafted",
    ]
    assert [e.number for e in entries] == [1, 2] and [e.position for e in entries] == [1, 2]
    assert feed.since(1) == entries[1:] and feed.since(2) == []


def test_an_event_visible_late_enters_the_log_once(engine: Engine) -> None:
    """An event that appears behind the watermark (its transaction committed late) gets a new
    feed number, so every stream gets it; events already seen are never logged again."""
    store = engine.store
    assert isinstance(store, MemoryStore)
    clock = Clock()
    feed = EventFeed(store, clock=clock)
    feed.refresh()
    propose(engine, "a")
    late = store._outbox.pop()
    propose(engine, "b")
    clock.now += 1
    feed.refresh()
    before = feed.since(0)
    assert before is not None and len(before) == 3
    store._outbox.insert(1, late)
    clock.now += 1
    feed.refresh()
    clock.now += 1
    feed.refresh()
    after = feed.since(before[-1].number)
    assert after is not None and [e.event.id for e in after] == [late.id]
    everything = feed.since(0)
    assert everything is not None
    ids = [e.event.id for e in everything]
    assert len(ids) == len(set(ids)) == 4


def test_a_backlog_is_read_in_batches_until_the_head(engine: Engine) -> None:
    """More new events than a batch: one refresh reads on until it reaches the head."""
    clock = Clock()
    feed = EventFeed(engine.store, lookback=1, batch=2, clock=clock)
    feed.refresh()
    for title in "abcd":
        propose(engine, title)  # eight events
    clock.now += 1
    feed.refresh()
    entries = feed.since(0)
    assert entries is not None
    assert [e.position for e in entries] == list(range(1, 9))
    assert feed.reads == 1 + 4  # after 0 (1-3), 2 (3-5), 4 (5-7), 6 (7-8: short, the head)


def test_a_stream_behind_the_log_is_told_so(engine: Engine) -> None:
    """The log keeps the newest events; a stream whose next event has left it gets None and
    reads the store itself."""
    clock = Clock()
    feed = EventFeed(engine.store, keep=3, clock=clock)
    feed.refresh()
    for title in "ab":
        propose(engine, title)
    clock.now += 1
    feed.refresh()
    assert feed.number() == 4
    assert feed.since(0) is None  # events 1 is gone: only 2, 3, 4 are kept
    kept = feed.since(1)
    assert kept is not None and [e.number for e in kept] == [2, 3, 4]


def _events(lines: Iterator[str], count: int) -> list[str]:
    ids: list[str] = []
    for line in lines:
        if line.startswith("id: "):
            ids.append(line[4:])
            if len(ids) == count:
                break
    return ids


def test_several_http_streams_never_read_the_whole_outbox(tmp_path: Path) -> None:
    """Streams over the real server read after a position only, and each gets every event."""
    store = Counting()
    engine = Engine(store, bundled())
    tokens = MemoryTokenStore()
    token = tokens.create(MEMBER)
    propose(engine, "before")
    with (
        serve_in_thread(create_app(engine, tokens)) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as one,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as two,
        one.stream("GET", "/events/stream") as first,
        two.stream("GET", "/events/stream", headers={"Last-Event-ID": "1"}) as second,
    ):
        propose(engine, "after")
        got_first = _events(first.iter_lines(), 2)
        got_second = _events(second.iter_lines(), 3)
    assert got_first == ["3", "4"]
    assert got_second == ["2", "3", "4"]
    assert store.whole_reads == 0


def test_a_last_event_id_the_stream_never_gave_is_refused_and_reads_nothing(
    tmp_path: Path,
) -> None:
    """A Last-Event-ID that is not a position is a 422 naming it; no stream opens and the
    outbox is not read."""
    store = Counting()
    engine = Engine(store, bundled())
    tokens = MemoryTokenStore()
    token = tokens.create(MEMBER)
    propose(engine, "before")
    with (
        serve_in_thread(create_app(engine, tokens)) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        for bad in ("abc", "-1", "1.5"):
            answer = client.get("/events/stream", headers={"Last-Event-ID": bad})
            assert answer.status_code == 422
            body = answer.json()
            assert body["code"] == "invalid-last-event-id" and repr(bad) in body["detail"]
    assert store.whole_reads == 0 and store.since_reads == 0
