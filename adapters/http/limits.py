"""What a request may take of the server: its size, and the time to send its head and its body.

uvicorn closes an idle kept-alive connection (``timeout_keep_alive``) but has no limit on the
time a client takes to send a request's head or its body, so one slow client (a slowloris)
could hold a connection, and a worker's thread, for ever. :class:`TimedH11Protocol` closes a
connection whose request head has not arrived within :data:`ENV_HEADER_TIMEOUT` seconds;
:class:`BodyTimeout` answers 408 when the body has not arrived within its limit;
:class:`BodyLimit` answers 413 to a body over its size.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import h11
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .problems import problem_response

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "ENV_BODY_TIMEOUT",
    "ENV_HEADER_TIMEOUT",
    "PROTOCOL",
    "BodyLimit",
    "BodyTimeout",
    "TimedH11Protocol",
]

ENV_HEADER_TIMEOUT = "XIESHANG_HEADER_TIMEOUT"
ENV_BODY_TIMEOUT = "XIESHANG_BODY_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
PROTOCOL = "xieshang.adapters.http.limits:TimedH11Protocol"


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, by Content-Length or while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            response = problem_response(
                413,
                "body-too-large",
                f"the request body is over {self.max_bytes} bytes",
                instance=scope["path"],
                limit=self.max_bytes,
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise StarletteHTTPException(
                        413, f"the request body is over {self.max_bytes} bytes"
                    )
            return message

        await self.app(scope, limited, send)


class BodyTimeout:
    """Answers 408 when a request's body has not arrived ``seconds`` after its head.

    Only the body is timed: once its last part arrived, ``receive`` waits as long as the app
    wants (a live event stream waits there for the client to go).
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        complete = False

        async def timed() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                # a timer on this task, not a task of its own per part (as wait_for makes):
                # a body that has arrived is read without a turn of the event loop
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise StarletteHTTPException(
                    408, f"the request body did not arrive within {self.seconds:g} s"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, timed, send)


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    return float(text) if text else default


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection whose request head has not arrived
    within ``$XIESHANG_HEADER_TIMEOUT`` seconds of the connection, or of the request's first
    bytes on a kept-alive connection (``xieshang serve --header-timeout``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = _seconds(ENV_HEADER_TIMEOUT, DEFAULT_HEADER_TIMEOUT)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._time_the_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._time_the_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timing()
        super().connection_lost(exc)

    def _time_the_head(self) -> None:
        """Time the head while the client owes one (between requests, the keep-alive timeout
        of uvicorn applies until the first bytes come)."""
        waiting = self.conn.their_state is h11.IDLE and self.timeout_keep_alive_task is None
        if waiting and self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)
        elif not waiting:
            self._stop_timing()

    def _stop_timing(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closed a connection: no request head within %gs", self.header_timeout)
            self.transport.close()
