"""Checkpoints of a SQLite file's write-ahead log, run on a thread of their own.

In WAL mode every commit appends its pages to the log; a checkpoint copies them back into the
database file (and syncs it). By default SQLite runs one inside the commit that takes the log
past 1,000 pages, so every few hundred steps one caller waits tens of milliseconds for a copy
that has nothing to do with its step. The store's connections raise that bound to
:data:`AUTOCHECKPOINT` pages, a safety net only, and a :class:`Checkpointer` per store runs the
checkpoints on its own connection instead: after every :data:`EVERY` commits, and at least
once a second while commits come.

Each is done in two passes. The first (``PASSIVE``) copies the log while this process's
writers go on. It cannot finish the log: the commits written meanwhile are not copied, and
SQLite starts the log over (instead of letting it grow) only at a commit that finds every frame
copied. So the second pass copies what came meanwhile, a few commits' pages, while it holds the
process's writer lock of the file (:mod:`.writer`): the next commit then starts the log over.
Durability is unchanged: a commit is durable when its log pages are (at ``synchronous=FULL``,
synced at the commit), and a checkpoint only moves durable pages.

The thread starts with the first commit a store writes (a store that only reads has none),
stops when the store closes, and starts again in a forked child, which inherits the store but
not the thread. Connections of other programs on the file keep SQLite's default and checkpoint
as they commit.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading

from xieshang import StoreUnavailable

from .writer import WriterLock

__all__ = ["AUTOCHECKPOINT", "EVERY", "Checkpointer"]

EVERY = 200  # commits between two checkpoints (at ~10 pages a step, 2,000 pages of log)
# the log size (pages) at which a commit of the store checkpoints by itself: reached only when
# the thread cannot keep up or cannot open the file
AUTOCHECKPOINT = 20_000
_IDLE_WAIT = 1.0  # seconds the thread waits for commits before it checkpoints what came

# the forks this process descends from: a commit compares it with the count its store's thread
# was started at (asking the kernel for the process id at every commit costs a system call)
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)

# Held by a checkpoint thread while it is inside SQLite, and by a fork while it forks: a child
# forked while the thread held one of SQLite's own mutexes (opening its connection, say) would
# wait for it for ever at its first connection, since the thread that held it is not there.
_inside = threading.Lock()
os.register_at_fork(
    before=_inside.acquire, after_in_parent=_inside.release, after_in_child=_inside.release
)


class Checkpointer:
    """The checkpoint thread of one store's SQLite file."""

    def __init__(
        self, path: str, synchronous: str, busy_timeout_ms: int, writer: WriterLock
    ) -> None:
        self.path = path
        self.writer = writer
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.runs = 0  # checkpoints done (for tests and benchmarks)
        self._lock = threading.Lock()
        self._settled = threading.Condition()
        self._asked = 0  # checkpoints asked for (by commits)
        self._wake = threading.Event()
        self._stop = False
        self._since = 0  # commits since the last checkpoint was asked for
        self._done = 0  # the asked checkpoints that ran
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._forks = -1  # the value of _forks when the thread was started (never: -1)

    def committed(self, count: int = 1) -> None:
        """Count ``count`` commits of the store; every :data:`EVERY`, wake the thread."""
        self._since += count  # a lost increment under a race only delays a checkpoint
        if self._since >= EVERY:
            self._since = 0
            self._asked += 1
            self._wake.set()
        if self._forks != _forks:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._stop or self._forks == _forks:  # stopped, or another commit started it
                return
            self._pid, self._forks = os.getpid(), _forks
            self._wake = threading.Event()  # one a forked parent's thread held is not ours
            self._thread = threading.Thread(
                target=self._run, name=f"xieshang-checkpoint {self.path}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            with _inside:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
            while not self._stop:
                self._wake.wait(_IDLE_WAIT)
                self._wake.clear()
                if self._stop:
                    break
                asked = self._asked
                with contextlib.suppress(sqlite3.Error, StoreUnavailable):  # the next one tries
                    self._checkpoint(conn)
                with self._settled:
                    self.runs, self._done = self.runs + 1, asked
                    self._settled.notify_all()
        except sqlite3.Error:  # the file cannot be opened: commits checkpoint at AUTOCHECKPOINT
            pass
        finally:
            if conn is not None:
                with _inside:
                    conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        with _inside:
            _, log, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if log > 0:  # not just emptied by another: copy what commits added meanwhile
            with self.writer, _inside:  # the writer lock first, never waited for holding _inside
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the checkpoints asked for so far have run (a benchmark counts them in the
        time of the commits that asked)."""
        with self._settled:
            self._settled.wait_for(
                lambda: self._done >= self._asked or self._stop or self._thread is None, timeout
            )

    def close(self) -> None:
        """Stop the thread (after the checkpoint it is running, if any)."""
        with self._lock:
            self._stop = True
            thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout=5)
