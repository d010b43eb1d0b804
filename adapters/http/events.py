"""Server-sent events: the caller's org's outbox events, read after a position.

The SSE ``id`` of an event is its position in the outbox; a client that reconnects with
``Last-Event-ID: N`` gets the events after position N. Without it the stream starts at the end:
only events committed after the connection opened. Delivery is at least once; the CloudEvent
``id`` in the data is the stable key for de-duplication. The streams of one server share one
reader of the outbox (``EventFeed``): however many clients are connected, the store is read at
most once per poll interval, after a shared position watermark.
"""

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from xieshang import Actor, Engine, EventRecord, XieshangError

from .auth import Authenticate
from .event_feed import EventFeed
from .problems import ApiProblem, documented

__all__ = ["KEEPALIVE_SECONDS", "LOOKBACK", "POLL_SECONDS", "add_event_routes", "event_stream"]

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000
LOOKBACK = 256
CATCH_UP_BATCH = 1000


async def event_stream(
    request: Request, engine: Engine, feed: EventFeed, actor: Actor, last_event_id: str | None
) -> StreamingResponse:
    """A streaming response of ``actor.org``'s events after ``last_event_id`` (or from now),
    only of the instances ``actor`` may read (its reader level judged when the event is sent)."""
    store = engine.store

    def readable(instance_id: str) -> bool:
        instance = store.load(instance_id, fresh=True)
        try:
            return instance is not None and engine.level(instance, actor) > 0
        except XieshangError:
            return False

    if last_event_id is not None and not last_event_id.strip().isdigit():
        raise ApiProblem(
            422,
            "invalid-last-event-id",
            f"Last-Event-ID {last_event_id!r} is not an id this stream gave",
        )
    start = int(last_event_id) if last_event_id is not None else await run_in_threadpool(feed.head)

    async def lines() -> AsyncIterator[str]:
        sent: deque[str] = deque(maxlen=4 * LOOKBACK)
        cursor = start  # the newest position sent (or the start)
        seen: dict[str, bool] = {}

        async def send(position: int, event: EventRecord) -> str | None:
            nonlocal cursor
            if position <= start or event.org != actor.org or event.id in sent:
                return None
            if event.instance_id not in seen:
                seen[event.instance_id] = await run_in_threadpool(readable, event.instance_id)
            if not seen[event.instance_id]:
                return None
            sent.append(event.id)
            cursor = max(cursor, position)
            data = json.dumps(event.body, ensure_ascii=False, separators=(",", ":"))
            return f"id: {position}\nevent: {event.type}\ndata: {data}\n\n"

        async def catch_up() -> AsyncIterator[str]:
            """Read the store after this stream's cursor until its head: for a stream that
            resumes from an old position or fell behind the shared log."""
            position = max(cursor - LOOKBACK, start)
            while True:
                rows = await run_in_threadpool(store.outbox_since, position, CATCH_UP_BATCH)
                for row_position, event in rows:
                    if (line := await send(row_position, event)) is not None:
                        yield line
                if len(rows) < CATCH_UP_BATCH:
                    return
                position = rows[-1][0]

        yield f"retry: {RETRY_MS}\n: connected\n\n"
        await run_in_threadpool(feed.refresh)
        number = feed.number()
        if last_event_id is not None:
            async for line in catch_up():
                yield line
        quiet = 0.0
        while not await request.is_disconnected():
            await run_in_threadpool(feed.refresh)
            seen.clear()  # readability is judged again each poll
            entries = feed.since(number)
            if entries is None:  # behind the shared log: read the store until caught up
                number = feed.number()
                async for caught in catch_up():
                    quiet = 0.0
                    yield caught
                entries = []
            for entry in entries:
                number = entry.number
                if (message := await send(entry.position, entry.event)) is not None:
                    quiet = 0.0
                    yield message
            await asyncio.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keepalive\n\n"

    return StreamingResponse(
        lines(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def add_event_routes(api: FastAPI, engine: Engine, caller: Authenticate) -> None:
    """Add ``GET /events/stream`` to ``api``, for the actor ``caller`` authenticates."""
    Caller = Annotated[Actor, Depends(caller)]
    feed = EventFeed(engine.store, poll_seconds=POLL_SECONDS, lookback=LOOKBACK)

    @api.get(
        "/events/stream",
        operation_id="stream_events",
        tags=["events"],
        response_class=Response,
        responses={
            200: {
                "description": "Server-sent events: one CloudEvent (JSON) per message, as the "
                "document's webhooks describe it; the SSE id resumes the stream through "
                "Last-Event-ID.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **documented(401, 422),
        },
    )
    async def stream(
        request: Request,
        actor: Caller,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
    ) -> Response:
        """The caller's org's events as they are committed (from the outbox)."""
        return await event_stream(request, engine, feed, actor, last_event_id)
