"""``engine.subscribe(fn, types=[...])``: each event of a committed step reaches the subscriber
after the commit (the step is already visible to another connection), on the memory store and
on SQLite; a subscriber that raises is logged and undoes nothing; a refused step announces
nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from xieshang import Actor, Engine, FixedClock, InvalidPayload, Registry, Usage
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store

NOW = datetime(2024, 9, 27, 1, tzinfo=UTC)
NOTE = """\
id: note
version: 1
title: {zh: 记录}
roles:
  clerk: {zh: 办事员}
start:
  roles: [clerk]
data:
  title: {type: string, required: true}
states:
  open: {initial: true, label: {zh: 开}}
  closed: {final: true, label: {zh: 关}}
transitions:
  - {trigger: close, from: open, to: closed, roles: [clerk], emits: [note.closed]}
"""
CLERK = Actor.of("c1", "clerk", org="city")


@pytest.fixture(params=["memory", "sqlite"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Any]]:
    """An engine on each store, and a way to read the store from outside the engine (for
    SQLite, a second connection to the file: it sees only what was committed)."""
    registry = Registry.from_texts([("note.yaml", NOTE)])
    if request.param == "memory":
        store = MemoryStore()
        yield Engine(store, registry, FixedClock(NOW)), store
        return
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with open_store(url) as store, open_store(url) as outside:
        yield Engine(store, registry, FixedClock(NOW)), outside


def test_subscribers_hear_each_event_after_its_commit(setup: tuple[Engine, Any]) -> None:
    """Every event of start and fire reaches the subscriber, in order, and when it does the
    step is already stored for any reader (its version and its history row)."""
    engine, outside = setup
    heard: list[tuple[str, int, int]] = []

    def listen(event: dict[str, Any]) -> None:
        stored = outside.load(event["subject"], fresh=True)
        heard.append((event["type"], stored.version, len(outside.history(event["subject"]))))

    engine.subscribe(listen)
    iid = engine.start("note", {"title": "t"}, CLERK).id
    engine.fire(iid, "close", CLERK)
    assert heard == [
        ("xieshang.instance.started", 1, 1),
        ("xieshang.instance.transitioned", 2, 2),
        ("xieshang.instance.completed", 2, 2),
        ("xieshang.note.closed", 2, 2),
    ]


def test_types_choose_the_events_and_unsubscribe_stops_them(setup: tuple[Engine, Any]) -> None:
    """With types, only those events; after unsubscribing, none."""
    engine, _ = setup
    closed: list[str] = []
    stop = engine.subscribe(lambda e: closed.append(e["subject"]), types=["xieshang.note.closed"])
    first = engine.start("note", {"title": "a"}, CLERK).id
    engine.fire(first, "close", CLERK)
    stop()
    second = engine.start("note", {"title": "b"}, CLERK).id
    engine.fire(second, "close", CLERK)
    assert closed == [first]


def test_a_failing_subscriber_is_logged_and_undoes_nothing(
    setup: tuple[Engine, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A subscriber that raises is logged with the event it failed on; the step stays stored
    and the next subscriber is still called."""
    engine, outside = setup
    after: list[str] = []

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("the mail server is down")

    engine.subscribe(broken)
    engine.subscribe(lambda e: after.append(e["type"]))
    with caplog.at_level(logging.ERROR, logger="xieshang.subscribers"):
        iid = engine.start("note", {"title": "t"}, CLERK).id
    assert outside.load(iid, fresh=True).version == 1
    assert after == ["xieshang.instance.started"]
    [record] = caplog.records
    assert "failed on event" in record.getMessage() and "xieshang.instance.started" in (
        record.getMessage()
    )
    assert record.exc_info is not None and "mail server" in str(record.exc_info[1])


def test_a_refused_step_announces_nothing(setup: tuple[Engine, Any]) -> None:
    """A refused start and a refused fire commit nothing and tell no subscriber."""
    engine, _ = setup
    heard: list[str] = []
    engine.subscribe(lambda e: heard.append(e["type"]))
    with pytest.raises(InvalidPayload):
        engine.start("note", {}, CLERK)
    iid = engine.start("note", {"title": "t"}, CLERK).id
    heard.clear()
    with pytest.raises(InvalidPayload):
        engine.fire(iid, "close", CLERK, {"extra": 1})
    assert heard == []


def test_bad_subscriptions_are_refused_and_change_nothing() -> None:
    """A subscriber that is not callable, or types that are not a list of names, are Usage
    errors naming the argument; the store stays as it was."""
    store = MemoryStore()
    engine = Engine(store, Registry.from_texts([("note.yaml", NOTE)]), FixedClock(NOW))
    with pytest.raises(Usage) as bad:
        engine.subscribe("print")  # type: ignore[arg-type]
    assert bad.value.message == "a subscriber must be callable (got 'print' that is a str)"
    with pytest.raises(Usage) as bad:
        engine.subscribe(print, types="xieshang.note.closed")
    assert "types must be a list of event types" in bad.value.message
    assert engine.store is store
