"""The sinks: the contract on each, webhook signatures and answers, settings that build sinks."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sink_contract import SECRET, Receiver, SinkContract, closed_port, sample_events

from xieshang import SettingsError
from xieshang.adapters.events import (
    SIGNATURE_HEADER,
    DeliveryFailed,
    EventSettings,
    EventSink,
    JsonLinesSink,
    RedisStreamSink,
    SubscriberSink,
    WebhookSink,
    build_sinks,
    sign,
    verify,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"


class TestSubscriberSinkContract(SinkContract):
    @pytest.fixture
    def sink(self) -> Iterator[EventSink]:
        self.got: list[dict[str, Any]] = []
        yield SubscriberSink("collect", self.got.append)

    @pytest.fixture
    def broken_sink(self) -> Iterator[EventSink]:
        def fail(event: dict[str, Any]) -> None:
            raise RuntimeError("subscriber is down")

        yield SubscriberSink("broken", fail)

    def received(self, sink: EventSink) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(e)) for e in self.got]


class TestJsonLinesSinkContract(SinkContract):
    @pytest.fixture
    def sink(self, tmp_path: Path) -> Iterator[EventSink]:
        s = JsonLinesSink(tmp_path / "audit" / "events.jsonl")
        yield s
        s.close()

    @pytest.fixture
    def broken_sink(self, tmp_path: Path) -> Iterator[EventSink]:
        (tmp_path / "a-directory").mkdir()
        yield JsonLinesSink(tmp_path / "a-directory")

    def received(self, sink: EventSink) -> list[dict[str, Any]]:
        assert isinstance(sink, JsonLinesSink)
        return [json.loads(line) for line in sink.path.read_text("utf-8").splitlines()]


class TestWebhookSinkContract(SinkContract):
    @pytest.fixture
    def sink(self) -> Iterator[EventSink]:
        self.receiver = Receiver()
        s = WebhookSink(self.receiver.url, SECRET, timeout=5)
        yield s
        s.close()
        self.receiver.close()

    @pytest.fixture
    def broken_sink(self) -> Iterator[EventSink]:
        s = WebhookSink(f"http://127.0.0.1:{closed_port()}/hook", SECRET, timeout=2)
        yield s
        s.close()

    def received(self, sink: EventSink) -> list[dict[str, Any]]:
        return self.receiver.accepted()


# -- subscribers ------------------------------------------------------------------------------


def test_subscriber_error_becomes_retryable_delivery_failed_naming_the_subscriber() -> None:
    """A subscriber that raises gives a retryable DeliveryFailed that names it and the error."""

    def fail(event: dict[str, Any]) -> None:
        raise KeyError("missing")

    with pytest.raises(DeliveryFailed) as caught:
        SubscriberSink("billing", fail).deliver(sample_events(1)[0])
    assert caught.value.retryable and "sub:billing" in caught.value.reason
    assert "missing" in caught.value.reason


def test_subscriber_with_types_is_called_only_for_those_types() -> None:
    """A subscriber filtered by type is not called for other events, which count as delivered."""
    got: list[str] = []
    sink = SubscriberSink(
        "t", lambda e: got.append(e["type"]), types=frozenset({"xieshang.instance.started"})
    )
    for e in sample_events(3):
        sink.deliver(e)
    assert got == ["xieshang.instance.started"]


# -- webhooks ---------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_webhook_posts_structured_cloudevent_signed_over_timestamp_and_body(
    receiver: Receiver,
) -> None:
    """The POST has the CloudEvents content type and a valid HMAC-SHA256 signature header."""
    sink = WebhookSink(receiver.url, SECRET, clock=lambda: 1_760_000_000.0)
    event = sample_events(1)[0]
    sink.deliver(event)
    sink.close()
    ((headers, body, _),) = receiver.requests
    assert headers["Content-Type"] == "application/cloudevents+json"
    signature = headers[SIGNATURE_HEADER]
    assert re.fullmatch(r"t=1760000000,v1=[0-9a-f]{64}", signature)
    assert signature == sign(SECRET, body, 1_760_000_000)
    assert verify(SECRET, signature, body, now=1_760_000_010)
    assert json.loads(body) == event


def test_signature_fails_for_another_body_secret_or_an_old_timestamp() -> None:
    """verify refuses a changed body, a wrong secret, a stale timestamp and a garbled header."""
    body = b'{"id":"x"}'
    header = sign(SECRET, body, 1_000)
    assert verify(SECRET, header, body, now=1_000)
    assert not verify(SECRET, header, body + b" ", now=1_000)
    assert not verify("other", header, body, now=1_000)
    assert not verify(SECRET, header, body, now=1_000 + 301)
    assert not verify(SECRET, "v1=abc", body, now=1_000)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (404, False),
        (410, False),
        (422, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (302, True),
    ],
)
def test_webhook_dead_letters_4xx_except_408_and_429_and_retries_the_rest(
    status: int, retryable: bool
) -> None:
    """4xx other than 408/429 is final (dead letter); 408, 429, 5xx and others are retried."""
    receiver = Receiver(status=lambda n, body: status)
    sink = WebhookSink(receiver.url, SECRET)
    try:
        with pytest.raises(DeliveryFailed) as caught:
            sink.deliver(sample_events(1)[0])
    finally:
        sink.close()
        receiver.close()
    assert caught.value.retryable is retryable
    assert str(status) in caught.value.reason


def test_webhook_2xx_answers_are_delivered() -> None:
    """Any 2xx answer means delivered."""
    for status in (200, 201, 202, 204):
        receiver = Receiver(status=lambda n, body, s=status: s)  # type: ignore[misc]
        sink = WebhookSink(receiver.url, SECRET)
        sink.deliver(sample_events(1)[0])
        sink.close()
        receiver.close()


def test_webhook_timeout_is_a_retryable_failure() -> None:
    """A receiver slower than the timeout gives a retryable DeliveryFailed."""

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    sink = WebhookSink("http://receiver.test/hook", SECRET, transport=httpx.MockTransport(slow))
    with pytest.raises(DeliveryFailed) as caught:
        sink.deliver(sample_events(1)[0])
    assert caught.value.retryable and "timed out" in caught.value.reason


def test_webhook_really_times_out_against_a_silent_server() -> None:
    """A real server that never answers is cut off after the timeout."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    sink = WebhookSink(f"http://127.0.0.1:{server.getsockname()[1]}/", SECRET, timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(DeliveryFailed) as caught:
            sink.deliver(sample_events(1)[0])
    finally:
        sink.close()
        server.close()
    assert caught.value.retryable
    assert time.monotonic() - started < 30  # cut off, not left waiting for the server


def test_webhook_passes_retry_after_on_429() -> None:
    """A 429 with Retry-After tells the relay how long to wait."""

    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "120"})

    sink = WebhookSink("http://receiver.test/hook", SECRET, transport=httpx.MockTransport(busy))
    with pytest.raises(DeliveryFailed) as caught:
        sink.deliver(sample_events(1)[0])
    assert (caught.value.retryable, caught.value.retry_after) == (True, 120.0)


def test_webhook_name_hides_credentials_in_the_url() -> None:
    """The sink name (stored in the database) carries no user or password."""
    sink = WebhookSink("https://bot:pa55@hooks.example.org/x?team=7", SECRET)
    assert sink.name == "webhook:https://hooks.example.org/x?team=7"
    sink.close()


def test_docs_verification_snippet_accepts_our_signature_and_refuses_a_forgery() -> None:
    """The receiver snippet in docs/webhooks.md verifies what the sink signs."""
    code = re.search(r"```python\n(.*?)```", DOCS.read_text("utf-8"), re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)
    body = json.dumps(sample_events(1)[0]).encode()
    header = sign(SECRET, body, int(time.time()))
    assert namespace["verify_xieshang_signature"](SECRET, header, body) is True
    assert namespace["verify_xieshang_signature"](SECRET, header, body[:-1] + b" ") is False
    old = sign(SECRET, body, int(time.time()) - 3600)
    assert namespace["verify_xieshang_signature"](SECRET, old, body) is False


# -- settings ---------------------------------------------------------------------------------


def test_settings_from_environment_build_one_sink_per_destination(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """XIESHANG_* variables configure webhooks (comma-separated), Redis and a JSON Lines file."""
    monkeypatch.setenv("XIESHANG_WEBHOOK_URLS", "http://a.test/h, https://b.test/h")
    monkeypatch.setenv("XIESHANG_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("XIESHANG_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("XIESHANG_REDIS_STREAM_MODE", "single")
    monkeypatch.setenv("XIESHANG_JSONL_PATH", str(tmp_path / "e.jsonl"))
    monkeypatch.setenv("XIESHANG_MAX_ATTEMPTS", "4")
    settings = EventSettings()
    sinks = build_sinks(settings)
    assert [type(s) for s in sinks] == [WebhookSink, WebhookSink, RedisStreamSink, JsonLinesSink]
    assert sinks[0].name == "webhook:http://a.test/h"
    assert isinstance(sinks[2], RedisStreamSink) and sinks[2].mode == "single"
    assert settings.max_attempts == 4
    for s in sinks:
        getattr(s, "close", lambda: None)()


def test_settings_file_is_read_below_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The TOML file named by XIESHANG_SETTINGS_FILE configures sinks; the environment wins."""
    path = tmp_path / "xieshang.toml"
    path.write_text(
        'webhook_urls = ["http://file.test/h"]\nwebhook_secret = "from-file"\n'
        "retry_base = 2.0\nmax_attempts = 3\n"
    )
    monkeypatch.setenv("XIESHANG_SETTINGS_FILE", str(path))
    monkeypatch.setenv("XIESHANG_MAX_ATTEMPTS", "7")
    settings = EventSettings()
    assert settings.webhook_urls == ["http://file.test/h"]
    assert (settings.retry_base, settings.max_attempts) == (2.0, 7)


def test_webhooks_without_a_secret_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook URLs without XIESHANG_WEBHOOK_SECRET are a settings error naming the variable."""
    monkeypatch.setenv("XIESHANG_WEBHOOK_URLS", "http://a.test/h")
    monkeypatch.delenv("XIESHANG_WEBHOOK_SECRET", raising=False)
    with pytest.raises(SettingsError, match="XIESHANG_WEBHOOK_SECRET"):
        EventSettings()


def test_webhook_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook URL that is not http(s) is refused, and named."""
    with pytest.raises(SettingsError, match="ftp://x"):
        EventSettings(webhook_urls=["ftp://x"], webhook_secret=SECRET)


def test_public_surface_of_the_events_package_is_pinned() -> None:
    """xieshang.adapters.events exports exactly the supported names, each importable."""
    import xieshang.adapters.events as events

    assert sorted(events.__all__) == sorted(
        [
            "SIGNATURE_HEADER",
            "DeadLetter",
            "DeliveryFailed",
            "EventSettings",
            "EventSink",
            "JsonLinesSink",
            "RedisStreamSink",
            "Relay",
            "StreamConsumer",
            "SubscriberSink",
            "WebhookSink",
            "build_sinks",
            "encode",
            "register_cli",
            "sign",
            "verify",
        ]
    )
    assert all(hasattr(events, name) for name in events.__all__)
