"""Reading xieshang's Redis streams in a consumer group: at least once, de-duplicated, acked.

The Redis sink (:class:`~.redis_stream.RedisStreamSink`) adds each event to a stream with the
fields ``id`` (the CloudEvent id), ``type`` and ``event`` (the CloudEvent as JSON). A
:class:`StreamConsumer` is one member of a consumer group over such streams:

1. it creates the group where it is missing (from the start of the stream, ``MKSTREAM``);
2. on start it reads its own pending entries again (those it was given but did not ack before
   it stopped), before anything new;
3. each pass it claims, with ``XAUTOCLAIM``, entries another consumer was given and left idle
   longer than ``claim_idle_ms`` (a consumer that died mid-batch), then reads new entries;
4. for each entry it skips a CloudEvent id this group already handled (a key
   ``<prefix>:seen:<group>:<id>``, kept ``seen_ttl`` seconds), else calls the handler; when the
   handler returns it marks the id handled and acks the entry, in one transaction.

A handler that raises leaves its entry pending: it is retried when claimed again (by this or
another consumer, after ``claim_idle_ms``). Delivery is at least once: a consumer that stops
after the handler returned and before the ack gets the entry again, so a handler should be
idempotent, or check the same id. An entry that holds no event (no ``event`` field, not JSON) can
never succeed: it is logged and acked.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis
from redis import exceptions as rx

from xieshang import Usage

__all__ = ["StreamConsumer"]

log = logging.getLogger("xieshang.events.consumer")

Handler = Callable[[dict[str, Any]], object]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StreamConsumer:
    """One consumer of a group over xieshang's event streams.

    Args:
        client: a ``redis.Redis`` client, or a Redis URL.
        streams: the stream names (``xieshang:proposal``, or ``xieshang:events`` in single mode).
        group: the consumer group: each event is handled once per group.
        name: this consumer's name in the group; a consumer restarted under the same name
            takes up its own pending entries first.
        handler: called with each CloudEvent (a dict); the entry is acked when it returns.
        count: entries read or claimed at a time.
        block_ms: how long a pass waits for new entries.
        claim_idle_ms: how long another consumer's entry must have been idle to be claimed.
        seen_ttl: seconds a handled event id is remembered for de-duplication.
        prefix: the prefix of the de-duplication keys.

    Raises:
        Usage: no streams, an empty group or name, or a handler that is not callable.
    """

    def __init__(
        self,
        client: Any,
        streams: Sequence[str],
        group: str,
        name: str,
        handler: Handler,
        *,
        count: int = 10,
        block_ms: int = 1000,
        claim_idle_ms: int = 60_000,
        seen_ttl: int = 7 * 86400,
        prefix: str = "xieshang",
    ) -> None:
        if isinstance(streams, str) or not streams or not all(streams):
            raise Usage(f"streams must be a list of stream names (got {streams!r})", "streams")
        for option, value in (("group", group), ("name", name)):
            if not isinstance(value, str) or not value:
                raise Usage(f"{option} must be a non-empty name (got {value!r})", option)
        if not callable(handler):
            raise Usage(f"handler must be callable (got {handler!r})", "handler")
        self.client = redis.Redis.from_url(client) if isinstance(client, str) else client
        self.streams = list(streams)
        self.group, self.name, self.handler = group, name, handler
        self.count, self.block_ms, self.claim_idle_ms = count, block_ms, claim_idle_ms
        self.seen_ttl, self.prefix = seen_ttl, prefix
        self._started = False

    def seen_key(self, event_id: str) -> str:
        """The key that marks ``event_id`` handled by this group."""
        return f"{self.prefix}:seen:{self.group}:{event_id}"

    def ensure_groups(self) -> None:
        """Create the group on each stream where it is missing (the stream too)."""
        for stream in self.streams:
            try:
                self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
            except rx.ResponseError as e:
                if not str(e).startswith("BUSYGROUP"):
                    raise

    def run_once(self) -> int:
        """One pass: (the first time) the group and this consumer's own pending entries, then
        entries claimed from idle consumers, then new ones. Returns how many were handled."""
        handled = 0
        if not self._started:
            self.ensure_groups()
            handled += self._own_pending()
            self._started = True
        for stream in self.streams:
            handled += self._handle_all([(stream, self._claim(stream))])
        handled += self._handle_all(self._read(">", block=True))
        return handled

    def run(self, stop: threading.Event | None = None) -> None:
        """Pass after pass until ``stop`` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.run_once()

    def _own_pending(self) -> int:
        """This consumer's pending entries, read again from the start of each stream's list."""
        handled = 0
        for stream in self.streams:
            after = "0"
            while batch := self._read(after, block=False, streams=[stream]):
                entries = batch[0][1]
                if not entries:
                    break
                handled += self._handle_all(batch)
                after = _text(entries[-1][0])
        return handled

    def _read(
        self, start: str, *, block: bool, streams: list[str] | None = None
    ) -> list[tuple[str, list[Any]]]:
        found: Any = self.client.xreadgroup(
            self.group,
            self.name,
            {s: start for s in streams or self.streams},
            count=self.count,
            block=self.block_ms if block else None,
        )
        return [(_text(stream), entries) for stream, entries in found or []]

    def _claim(self, stream: str) -> list[Any]:
        claimed = self.client.xautoclaim(
            stream, self.group, self.name, self.claim_idle_ms, start_id="0-0", count=self.count
        )
        return list(claimed[1]) if claimed else []

    def _handle_all(self, batches: Iterable[tuple[str, list[Any]]]) -> int:
        handled = 0
        for stream, entries in batches:
            for entry_id, fields in entries:
                if fields is None:  # a pending entry trimmed from the stream: nothing to do
                    self.client.xack(stream, self.group, entry_id)
                    continue
                handled += self._handle(stream, _text(entry_id), fields)
        return handled

    def _handle(self, stream: str, entry_id: str, fields: dict[Any, Any]) -> int:
        values = {_text(k): _text(v) for k, v in fields.items()}
        try:
            event = json.loads(values["event"])
            event_id = str(values.get("id") or event["id"])
        except (KeyError, TypeError, ValueError):
            log.error("entry %s of %s holds no event; acked and skipped", entry_id, stream)
            self.client.xack(stream, self.group, entry_id)
            return 0
        if self.client.exists(self.seen_key(event_id)):
            self.client.xack(stream, self.group, entry_id)
            return 0
        try:
            self.handler(event)
        except Exception:  # the entry stays pending: claimed and retried later
            log.exception("handler failed on event %s (entry %s of %s)", event_id, entry_id, stream)
            return 0
        with self.client.pipeline(transaction=True) as tx:
            tx.set(self.seen_key(event_id), 1, ex=self.seen_ttl)
            tx.xack(stream, self.group, entry_id)
            tx.execute()
        return 1
