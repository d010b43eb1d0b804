"""The event sink contract, run on every sink, and the helpers the relay tests share.

Subclass :class:`SinkContract` once per sink; provide the ``sink`` and ``broken_sink`` fixtures
and ``received`` (what the sink's destination holds, in arrival order).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat

from xieshang import Actor, Engine, FixedClock
from xieshang.adapters.events import DeliveryFailed, EventSink
from xieshang.adapters.memory import MemoryStore
from xieshang.ports import Store
from xieshang.registry import Registry

WORKFLOW = """\
id: relaytest
version: 1
title: {zh: 中继测试, en: Relay test}
roles:
  clerk: {zh: 办事员}
data:
  title: {type: string, required: true, public: true}
  note: {type: string, public: true}
states:
  open: {initial: true, label: {zh: 办理中}}
  closed: {final: true, label: {zh: 已办结}}
transitions:
  - trigger: note
    from: open
    to: open
    roles: [clerk]
    payload: {note: {type: string, required: true}}
    set: {note: payload.note}
  - trigger: close
    from: open
    to: closed
    roles: [clerk]
"""
CLERK = Actor.of("c1", "clerk", org="city")
SECRET = "s3cret-for-tests"


def make_engine(store: Store | None = None) -> Engine:
    """An engine over ``store`` (in memory by default) that runs the ``relaytest`` workflow."""
    registry = Registry.from_texts([("relaytest.yaml", WORKFLOW)])
    clock = FixedClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    return Engine(store or MemoryStore(), registry, clock)


def drive(engine: Engine, instances: int = 3, notes: int = 3, *, close: bool = True) -> list[str]:
    """Start ``instances`` instances and fire ``notes`` notes on each, interleaved."""
    ids = [engine.start("relaytest", {"title": f"议题 {i}"}, CLERK).id for i in range(instances)]
    for n in range(notes):
        for iid in ids:
            engine.fire(iid, "note", CLERK, {"note": f"第{n}次意见 — {iid[:6]}"})
    if close:
        for iid in ids:
            engine.fire(iid, "close", CLERK)
    return ids


def sample_events(n: int = 5) -> list[dict[str, Any]]:
    """``n`` real events (from an engine on the in-memory store), in commit order."""
    engine = make_engine()
    drive(engine, instances=1, notes=max(0, n - 1), close=False)
    return [e.body for e in engine.store.outbox()][:n]


def parse_cloudevent(body: bytes, content_type: str = "application/cloudevents+json") -> Any:
    """The CloudEvents SDK's reading of a structured-mode body (raises if it is not valid)."""
    message = ce_http.HTTPMessage(headers={"content-type": content_type}, body=body)
    return ce_http.from_http(message, JSONFormat())


def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty database on the test PostgreSQL server, dropped afterwards."""
    server = os.environ.get("XIESHANG_TEST_PG_URL")
    if not server:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must set XIESHANG_TEST_PG_URL: PostgreSQL tests may not be skipped")
        pytest.skip("XIESHANG_TEST_PG_URL is not set")
    name = f"xs_events_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Receiver:
    """A real HTTP server on 127.0.0.1 recording every request; ``status`` decides each answer.

    ``status(n, body)`` gets the 0-based request number and the body and returns the HTTP
    status to answer; by default the first ``fail_first`` requests get 503, the rest 200.
    """

    def __init__(
        self, fail_first: int = 0, status: Callable[[int, bytes], int] | None = None
    ) -> None:
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self._lock = threading.Lock()
        self._status = status or (lambda n, body: 503 if n < fail_first else 200)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    code = receiver._status(len(receiver.requests), body)
                    receiver.requests.append((dict(self.headers.items()), body, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def accepted(self) -> list[dict[str, Any]]:
        """The events answered with a 2xx, in arrival order."""
        with self._lock:
            return [json.loads(b) for _, b, code in self.requests if 200 <= code < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SinkContract:
    """The rules every :class:`EventSink` keeps."""

    @pytest.fixture
    def sink(self) -> Iterator[EventSink]:
        raise NotImplementedError

    @pytest.fixture
    def broken_sink(self) -> Iterator[EventSink]:
        """A sink of the same kind whose destination cannot be reached."""
        raise NotImplementedError

    def received(self, sink: EventSink) -> list[dict[str, Any]]:
        raise NotImplementedError

    def test_sink_implements_the_port(self, sink: EventSink) -> None:
        """Every sink is an EventSink with a non-empty name."""
        assert isinstance(sink, EventSink)
        assert isinstance(sink.name, str) and sink.name

    def test_delivered_event_arrives_whole_as_a_valid_cloudevent(self, sink: EventSink) -> None:
        """What arrives is the event as sent, and the CloudEvents SDK reads it as 1.0."""
        event = sample_events(1)[0]
        sink.deliver(event)
        (got,) = self.received(sink)
        assert got == event
        parsed = parse_cloudevent(json.dumps(got).encode())
        assert (parsed.get_id(), parsed.get_specversion()) == (event["id"], "1.0")
        assert parsed.get_extension("sequence") == event["sequence"]

    def test_events_arrive_in_the_order_delivered(self, sink: EventSink) -> None:
        """A sink keeps the order of deliveries."""
        events = sample_events(5)
        for e in events:
            sink.deliver(e)
        assert [e["id"] for e in self.received(sink)] == [e["id"] for e in events]

    def test_redelivery_arrives_again_with_the_same_id(self, sink: EventSink) -> None:
        """Delivering an event twice gives two arrivals with the same id: receivers de-duplicate."""
        event = sample_events(1)[0]
        sink.deliver(event)
        sink.deliver(event)
        assert [e["id"] for e in self.received(sink)] == [event["id"], event["id"]]

    def test_chinese_text_survives_delivery(self, sink: EventSink) -> None:
        """Data in Chinese arrives unchanged."""
        event = sample_events(2)[1]
        sink.deliver(event)
        assert self.received(sink)[0]["data"]["data"]["note"] == event["data"]["data"]["note"]
        assert "意见" in self.received(sink)[0]["data"]["data"]["note"]

    def test_unreachable_destination_raises_retryable_delivery_failed(
        self, broken_sink: EventSink
    ) -> None:
        """An unreachable destination is a retryable DeliveryFailed, never another error."""
        with pytest.raises(DeliveryFailed) as caught:
            broken_sink.deliver(sample_events(1)[0])
        assert caught.value.retryable is True
        assert caught.value.reason

    def test_close_may_be_called_twice(self, sink: EventSink) -> None:
        """Closing a sink twice is harmless."""
        close = getattr(sink, "close", None)
        if close is not None:
            close()
            close()
