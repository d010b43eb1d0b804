"""Group commit on SQLite: the commits that threads of one process hand in while another commit
is being written share one transaction, and so one fsync, each still its own atomic step.

SQLite has one writer at a time, and at ``synchronous=FULL`` most of a commit's time is the sync
of the write-ahead log. Threads that queue for the write lock inside the driver's busy handler
sleep and retry; here they queue in the process instead. The first thread to hand in a commit
leads: it takes every commit waiting (its own first), begins one transaction, writes each commit
between ``SAVEPOINT`` and ``RELEASE``, and commits once. A commit that fails (a version
conflict, a used command id, a refused row) is rolled back to its savepoint and its error goes
to its own caller alone; the others commit. Only a failure of the transaction itself (BEGIN or
COMMIT: the disk, a lock held by another process past the busy timeout) fails every commit of
the batch, and then none of them is written. When its own commit is done, the leader hands the
lead to the oldest waiting thread and returns.

A batch of one is written exactly as without grouping (BEGIN, the statements, COMMIT).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xieshang import Commit

from .errors import DRIVER_ERRORS, classify, conflict, plain
from .rows import InstanceRow
from .writes import touched, write_rows

if TYPE_CHECKING:
    from .store import SQLStore

__all__ = ["GroupCommit"]

_SAVEPOINT = "SAVEPOINT xs_step"
_RELEASE = "RELEASE SAVEPOINT xs_step"
_UNDO = "ROLLBACK TO SAVEPOINT xs_step"


@dataclass(eq=False)
class _Ticket:
    commit: Commit
    done: threading.Event | None = None  # made only for a ticket that waits (see apply)
    lead: bool = False  # woken to lead the next batch, not because its commit is done
    finished: bool = False
    rows: list[InstanceRow] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommit:
    """The queue of one store's commits. ``batches`` and ``commits`` count what was written
    (their ratio is the commits that shared a sync)."""

    def __init__(self, store: SQLStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._queue: list[_Ticket] = []
        self._leading = False
        self.batches = 0
        self.commits = 0

    def apply(self, commit: Commit) -> list[InstanceRow]:
        """Write ``commit`` (alone or with others); the instance rows written, or its error."""
        ticket = _Ticket(commit)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._leading
            self._leading = True
            if not lead:
                ticket.done = threading.Event()
        if not lead:
            assert ticket.done is not None
            ticket.done.wait()
            if not ticket.lead:
                return _result(ticket)
        try:
            while not ticket.finished:
                with self._lock:
                    batch, self._queue = self._queue, []
                self._run(batch, ticket)
        finally:
            self._hand_over()
        return _result(ticket)

    def _hand_over(self) -> None:
        with self._lock:
            if self._queue:
                after = self._queue[0]
                after.lead = True
                assert after.done is not None  # queued behind a leader, so it waits
                after.done.set()
            else:
                self._leading = False

    def _run(self, batch: list[_Ticket], own: _Ticket) -> None:
        try:
            if len(batch) == 1:
                self._alone(batch[0])
            else:
                self._together(batch)
        finally:
            self.batches += 1
            self.commits += len(batch)
            for t in batch:
                t.finished = True
                if t is not own:
                    t.lead = False
                    assert t.done is not None
                    t.done.set()

    def _alone(self, ticket: _Ticket) -> None:
        try:
            ticket.rows = self._store._apply_alone(ticket.commit)
        except BaseException as e:  # the caller's thread raises it
            ticket.error = e

    def _together(self, batch: list[_Ticket]) -> None:
        try:
            with self._store._writer:  # other stores of this process on the file wait
                self._transaction(batch)
        except Exception as e:  # the writer lock was not had: none of the batch is written
            for t in batch:
                if t.error is None:
                    t.error, t.rows = e, []

    def _transaction(self, batch: list[_Ticket]) -> None:
        store = self._store
        conn = store._get()
        broken = False
        try:
            cur = conn.cursor()
            cur.execute(store._begin)
            for t in batch:
                cur.execute(_SAVEPOINT)
                try:
                    t.rows = write_rows(store, cur, t.commit)
                except BaseException as e:
                    cur.execute(_UNDO)
                    cur.execute(_RELEASE)
                    t.error = (
                        conflict(e, t.commit, conn, store._sql)
                        if isinstance(e, DRIVER_ERRORS)
                        else e
                    )
                    store._cache.forget(touched(t.commit))
                    if not isinstance(e, Exception):
                        raise
                    continue
                cur.execute(_RELEASE)
            cur.execute(store._end)
        except BaseException as e:  # the transaction itself failed: nothing of it is written
            broken = isinstance(e, DRIVER_ERRORS) and classify(e) == "unavailable"
            with contextlib.suppress(*DRIVER_ERRORS):
                conn.execute("ROLLBACK")
            error = plain(e) if isinstance(e, DRIVER_ERRORS) else e
            for t in batch:
                if t.error is None:
                    t.error, t.rows = error, []
                store._cache.forget(touched(t.commit))
            if not isinstance(e, Exception):
                raise
        finally:
            store._put(conn, broken)


def _result(ticket: _Ticket) -> list[InstanceRow]:
    if ticket.error is not None:
        raise ticket.error
    return ticket.rows
