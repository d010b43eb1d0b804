"""Server-sent events: the caller's org's outbox events, polled from the store after a cursor.

The SSE ``id`` of an event is its position in the outbox (1-based); a client that reconnects with
``Last-Event-ID: N`` gets the events after the N-th. Without it the stream starts at the end: only
events committed after the connection opened. Delivery is at least once; the CloudEvent ``id`` in
the data is the stable key for de-duplication. Each poll reads the store's whole outbox: simple,
and fine for a dashboard or two on a county's volume; a store method that reads after a position
would make it cheap at scale.
"""

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from xieshang import Actor, Engine, XieshangError

from .auth import Authenticate
from .problems import ApiProblem, documented

__all__ = ["KEEPALIVE_SECONDS", "LOOKBACK", "POLL_SECONDS", "add_event_routes", "event_stream"]

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000
LOOKBACK = 256


async def event_stream(
    request: Request, engine: Engine, actor: Actor, last_event_id: str | None
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
    start = (
        int(last_event_id)
        if last_event_id is not None
        else len(await run_in_threadpool(store.outbox))
    )

    async def lines() -> AsyncIterator[str]:
        cursor = start
        sent: deque[str] = deque(maxlen=4 * LOOKBACK)
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        quiet = 0.0
        while not await request.is_disconnected():
            rows = await run_in_threadpool(store.outbox)
            seen: dict[str, bool] = {}
            # Rows of concurrent transactions can become visible out of order (PostgreSQL), so
            # the rows just behind the cursor are read again and only the unsent ones go out.
            for position in range(max(start, cursor - LOOKBACK), len(rows)):
                event = rows[position]
                if event.org != actor.org or event.id in sent:
                    continue
                if event.instance_id not in seen:
                    seen[event.instance_id] = await run_in_threadpool(readable, event.instance_id)
                if seen[event.instance_id]:
                    sent.append(event.id)
                    data = json.dumps(event.body, ensure_ascii=False, separators=(",", ":"))
                    yield f"id: {position + 1}\nevent: {event.type}\ndata: {data}\n\n"
                    quiet = 0.0
            cursor = max(cursor, len(rows))
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
        return await event_stream(request, engine, actor, last_event_id)
