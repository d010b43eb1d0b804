"""Events out: the outbox relay and the sinks it delivers CloudEvents to.

Public surface: the :class:`EventSink` port and its :class:`DeliveryFailed` error; the sinks
(:class:`SubscriberSink`, :class:`WebhookSink`, :class:`RedisStreamSink`,
:class:`JsonLinesSink`); :class:`EventSettings` and :func:`build_sinks`; the :class:`Relay`; the
:class:`StreamConsumer` that reads the Redis streams in a consumer group;
:func:`sign` / :func:`verify` for webhook signatures; :func:`register_cli`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .consumer import StreamConsumer
from .dead_letters import DeadLetter
from .redis_stream import RedisStreamSink
from .relay import Relay
from .settings import EventSettings, build_sinks
from .sinks import DeliveryFailed, EventSink, JsonLinesSink, SubscriberSink, encode
from .webhook import SIGNATURE_HEADER, WebhookSink, sign, verify

if TYPE_CHECKING:
    import typer

__all__ = [
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


def register_cli(app: typer.Typer) -> None:
    """Add ``relay`` and ``events list|retry`` to the ``xieshang`` app (typer loads only then)."""
    from .cli import register_cli as register

    register(app)
