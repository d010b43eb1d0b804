"""One writer at a time per SQLite file in this process: writers queue on a lock, not in SQLite.

SQLite lets one transaction write at a time. A thread that finds the write lock taken sleeps in
SQLite's busy handler, which polls with growing sleeps: under load the waiting threads wake
late, and the writes are served in no useful order. Threads of one process instead queue on
the :class:`WriterLock` of their database file, taken before ``BEGIN IMMEDIATE`` and released
after ``COMMIT`` or ``ROLLBACK``; each write then starts as soon as the previous one ends. The
busy handler still waits for the writers of other processes (a worker, a command).

Every store of a process on one file shares its lock (files are told apart by their real path),
so two stores of one process over one file do not wait for each other in the busy handler
either.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

from xieshang import StoreUnavailable

__all__ = ["WriterLock", "writer_lock"]

_registry_lock = threading.Lock()
_locks: dict[str, threading.Lock] = {}


def _release_in_child() -> None:
    # a forked child has only the thread that forked: a lock another thread of the parent held
    # at the fork would never be released there
    global _registry_lock
    _registry_lock = threading.Lock()
    for lock in _locks.values():
        if lock.locked():
            lock.release()


os.register_at_fork(after_in_child=_release_in_child)


class WriterLock:
    """The writer lock of one SQLite file, as a context manager.

    Args:
        path: the database file.
        timeout: seconds a writer waits for the lock (the store's busy timeout) before it is
            refused with :class:`~xieshang.StoreUnavailable`, as a write that stays locked past
            SQLite's busy timeout is.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path = os.path.realpath(path)
        self.timeout = timeout
        with _registry_lock:
            self._lock = _locks.setdefault(self.path, threading.Lock())

    def __enter__(self) -> WriterLock:
        if not self._lock.acquire(timeout=self.timeout):
            raise StoreUnavailable(
                f"the database is unavailable: another writer of this process held "
                f"{self.path!r} for more than {self.timeout:g} s (the busy timeout)",
                driver_error="writer lock timeout",
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._lock.release()


def writer_lock(path: str, busy_timeout_ms: int) -> WriterLock:
    """The writer lock of the SQLite file ``path`` for a store with that busy timeout."""
    return WriterLock(path, busy_timeout_ms / 1000)
