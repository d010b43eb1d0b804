"""The event sink port, its one error, and the two local sinks: subscribers and JSON Lines.

A sink takes one CloudEvent (a plain dict, structured JSON mode) and either returns, which
means delivered, or raises :class:`DeliveryFailed`. The relay calls sinks only with committed
events, one event at a time, in order per instance; delivery is at least once, so a sink may
see the same event (the same ``id``) again after a crash or a retry.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from xieshang import DeliveryFailed
from xieshang.adapters.sql.rows import dump

__all__ = [
    "DeliveryFailed",
    "EventSink",
    "JsonLinesSink",
    "SubscriberSink",
    "encode",
    "redacted_url",
]


@runtime_checkable
class EventSink(Protocol):
    """Where the relay delivers events.

    ``name`` is stable across restarts: the relay records each delivery under it, so renaming
    a sink makes the relay deliver every stored event to it again. ``close()`` is optional, and
    so is ``deliver_many(events) -> list[DeliveryFailed | None]``: several events in one go, in
    order, with the outcome of each. The relay gives it at most one event per instance at a
    time, so a failure never lets an instance's later event arrive before an earlier one.
    """

    name: str

    def deliver(self, event: dict[str, Any]) -> None:
        """Deliver one CloudEvent, or raise :class:`DeliveryFailed`."""


def encode(event: dict[str, Any]) -> bytes:
    """The event as compact UTF-8 JSON: what webhooks sign and send, what files and streams hold.
    Written as the store writes its JSON columns (``dump``: the outbox row's own text, for an
    event read from it)."""
    return dump(event).encode()


def redacted_url(url: str) -> str:
    """``url`` without its user and password: what sink names (stored in the database) show."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class SubscriberSink:
    """An in-process subscriber: a callback, called by the relay after the step committed.

    A callback that raises never affects the command that produced the event (the command has
    already committed); the relay records the failure and calls it again later. Raise
    :class:`DeliveryFailed` with ``retryable=False`` to dead-letter an event at once.

    Args:
        name: the subscriber's stable name (its deliveries are recorded under ``sub:<name>``).
        callback: called with each event dict; may be called twice with the same event.
        types: if given, only events of these types reach the callback (others count as
            delivered).
    """

    def __init__(
        self,
        name: str,
        callback: Callable[[dict[str, Any]], object],
        *,
        types: frozenset[str] | None = None,
    ) -> None:
        self.name = f"sub:{name}"
        self._callback = callback
        self._types = types

    def deliver(self, event: dict[str, Any]) -> None:
        if self._types is not None and event.get("type") not in self._types:
            return
        try:
            self._callback(event)
        except DeliveryFailed:
            raise
        except Exception as e:  # any subscriber error is a failed delivery
            raise DeliveryFailed(True, f"subscriber {self.name!r} raised {e!r}") from e


class JsonLinesSink:
    """Appends each event as one JSON line to a file, flushed and fsynced before it returns.

    For audits and debugging. A line is written whole or the delivery fails; after a crash the
    last event may appear twice (same ``id``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = f"jsonl:{self.path}"
        self._lock = threading.Lock()
        self._file: Any = None

    def deliver(self, event: dict[str, Any]) -> None:
        line = encode(event) + b"\n"
        with self._lock:
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across events
                self._file.write(line)
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as e:
                self._close()
                raise DeliveryFailed(True, f"cannot append to {str(self.path)!r}: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            # the next delivery reopens the file and reports its own error
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
