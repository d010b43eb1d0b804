"""The Redis Streams sink: ``XADD`` of each event, to one stream per workflow or one stream.

Each stream entry has three fields: ``id`` (the CloudEvent id), ``type`` and ``event`` (the
CloudEvent as JSON). Delivery is at least once: after a relay crash or a lost reply the same
event can be added twice, as two entries with the same ``id`` field. Consumers de-duplicate by
that field (for example ``SET xieshang:seen:<id> 1 NX EX 86400`` before acting), not by the
stream entry id, which Redis assigns.
"""

from __future__ import annotations

from typing import Any, Literal

import redis
from redis import exceptions as rx
from redis.typing import EncodableT, FieldT

from .sinks import DeliveryFailed, encode, redacted_url

__all__ = ["RedisStreamSink", "StreamMode"]

StreamMode = Literal["per_workflow", "single"]


class RedisStreamSink:
    """Adds each event to a Redis stream.

    Args:
        url: the Redis URL (``redis://host:port/db``).
        mode: ``per_workflow`` (stream ``<prefix>:<workflow>``, the default) or ``single``
            (stream ``<prefix>:events``).
        prefix: the stream name prefix, ``xieshang`` by default.
        maxlen: if set, streams are trimmed to about this many entries (``MAXLEN ~``).
        timeout: socket timeout in seconds.
        client: a ready client, for tests; ``url`` still names the sink
            (``redis:<url>#<mode>:<prefix>``).
    """

    def __init__(
        self,
        url: str,
        *,
        mode: StreamMode = "per_workflow",
        prefix: str = "xieshang",
        maxlen: int | None = None,
        timeout: float = 5.0,
        client: Any = None,
    ) -> None:
        self.mode = mode
        self.prefix = prefix
        self.maxlen = maxlen
        self.name = f"redis:{redacted_url(url)}#{mode}:{prefix}"
        self._client = client or redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def stream_of(self, event: dict[str, Any]) -> str:
        """The stream an event goes to."""
        if self.mode == "single":
            return f"{self.prefix}:events"
        data = event.get("data")
        workflow = data.get("workflow") if isinstance(data, dict) else None
        if not workflow:
            workflow = str(event.get("source", "")).rstrip("/").rsplit("/", 1)[-1] or "unknown"
        return f"{self.prefix}:{workflow}"

    def deliver(self, event: dict[str, Any]) -> None:
        stream = self.stream_of(event)
        try:
            self._client.xadd(stream, _fields(event), maxlen=self.maxlen, approximate=True)
        except rx.RedisError as e:
            raise self._failure(stream, e) from e

    def deliver_many(self, events: list[dict[str, Any]]) -> list[DeliveryFailed | None]:
        """Add several events in one round trip (a pipeline, not a transaction), in order; the
        outcome of each. A lost connection fails them all (retryable)."""
        streams = [self.stream_of(e) for e in events]
        pipe = self._client.pipeline(transaction=False)
        for stream, event in zip(streams, events, strict=True):
            pipe.xadd(stream, _fields(event), maxlen=self.maxlen, approximate=True)
        try:
            replies = pipe.execute(raise_on_error=False)
        except rx.RedisError as e:
            return [self._failure(stream, e) for stream in streams]
        return [
            self._failure(stream, r) if isinstance(r, rx.RedisError) else None
            for stream, r in zip(streams, replies, strict=True)
        ]

    def _failure(self, stream: str, e: rx.RedisError) -> DeliveryFailed:
        if isinstance(e, rx.DataError | rx.NoScriptError):
            return DeliveryFailed(False, f"{self.name}: {stream}: {e}")
        if isinstance(e, rx.ResponseError):
            # WRONGTYPE: the key is not a stream; retrying cannot help until someone fixes it
            retryable = not str(e).startswith("WRONGTYPE")
            return DeliveryFailed(retryable, f"{self.name}: {stream}: {e}")
        return DeliveryFailed(True, f"{self.name}: {type(e).__name__}: {e}")

    def close(self) -> None:
        self._client.close()


def _fields(event: dict[str, Any]) -> dict[FieldT, EncodableT]:
    return {"id": str(event["id"]), "type": str(event.get("type", "")), "event": encode(event)}
