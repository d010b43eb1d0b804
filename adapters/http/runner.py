"""Where a command's step runs: on the event loop, or on a worker thread.

A route written as a plain function runs on a worker thread, so that its blocking calls do not
hold up the event loop. Under load that hand-off costs more than a step on a store of this
machine: the worker waits for the interpreter while the loop parses other requests, and hands
it back at every call into the database driver. A step on SQLite or in memory is a fraction of
a millisecond of CPU and one sync of the log, with no network to wait for, so the command
routes (start, fire) run it on the event loop itself. Steps there run one at a time; the
requests around them (parsing, tokens, answers) still interleave.

Two cases go to a worker thread instead:

- a store that waits for a network (PostgreSQL), or one that does not say it works on this
  machine (its ``local`` attribute): the loop would wait for every round trip;
- the :data:`COOL_SECONDS` after a step that took more than :data:`SLOW_SECONDS`: such a step
  waited, most likely for SQLite's write lock held by another process (a worker, a command),
  and while that lasts the loop must not wait with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

__all__ = ["COOL_SECONDS", "SLOW_SECONDS", "StepRunner"]

# a step on a store of this machine takes about a millisecond, and under load now and then
# tens (a sync that waits for the disk, a checkpoint, a collection): a quarter of a second
# waited for something else, most likely another process's write lock
SLOW_SECONDS = 0.25
COOL_SECONDS = 10.0

T = TypeVar("T")


class StepRunner:
    """Runs a command's step for the routes of one app over ``store``."""

    def __init__(self, store: Any) -> None:
        self.inline = getattr(store, "local", False) is True
        self._threads_until = 0.0  # until then, steps go to worker threads

    async def __call__(self, step: Callable[[], T]) -> T:
        if not self.inline or time.monotonic() < self._threads_until:
            return await run_in_threadpool(step)
        started = time.monotonic()
        try:
            return step()
        finally:
            ended = time.monotonic()
            if ended - started > SLOW_SECONDS:
                self._threads_until = ended + COOL_SECONDS
