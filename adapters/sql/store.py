"""The SQL store: SQLite (a file, the default) and PostgreSQL behind one class, :class:`SQLStore`.

The schema is defined in :mod:`.tables` and created by alembic (:func:`upgrade`, in
:mod:`.connect`). Commands run on the driver's own connection (``sqlite3``, ``psycopg``) with
statements the driver prepares once: one transaction per commit, no ORM session. Recently
written instances are kept in a small LRU cache of :class:`.rows.InstanceRow`; every write is
still checked against the version in the database, and once another process is seen moving an
instance under the cache, instances are read fresh for a while (several processes writing the
same hot instances). Driver
errors become ours as :mod:`.errors` describes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy.engine import URL, make_url

from xieshang import (
    Commit,
    ConcurrencyConflict,
    ConflictCase,
    DutyRecord,
    EventRecord,
    HistoryEntry,
    Instance,
    StoreError,
    StoreUnavailable,
    Usage,
)
from xieshang.shared import GENESIS, DutyRecompute, LedgerEntry, iso

from . import duties, tables  # noqa: F401 - registers the tables on SQLModel.metadata
from .batch import write_batch
from .bulk import bulk_load
from .cache import RowCache
from .checkpoint import AUTOCHECKPOINT, Checkpointer
from .connect import DEFAULT_URL, ENV_URL, connect_sqlite, database_url, sa_engine, upgrade
from .errors import DRIVER_ERRORS, classify, conflict, plain
from .group import GroupCommit
from .host import bound_store
from .readers import ReaderReads
from .rows import (
    InstanceRow,
    entry,
    instance,
    parse,
    parsed,
)
from .selects import QueryReads
from .statements import Statements
from .timers import TimerReads
from .writer import writer_lock
from .writes import touched, write

__all__ = [
    "DEFAULT_URL",
    "ENV_FAULT",
    "ENV_URL",
    "SQLStore",
    "StoreError",
    "StoreUnavailable",
    "classify",
    "database_url",
    "open_store",
    "sa_engine",
    "upgrade",
]

# Test hook: ``XIESHANG_FAULT=after_instance_update[:N]`` kills the process (SIGKILL) the N-th
# time a commit has updated its instance rows but written nothing else. Read once, when a store
# is made; unset, it costs one ``is None`` test per commit.
ENV_FAULT = "XIESHANG_FAULT"
SYNCHRONOUS = ("FULL", "NORMAL")
# after another writer moved an instance under this store's cache, how long instances are read
# fresh
CONTENDED_SECONDS = 2.0

_plain = plain  # the name the error-mapping tests use
Params = Sequence[Any] | dict[str, Any]  # a statement's parameters, by position or by name


def open_store(
    url: str | None = None,
    *,
    synchronous: str = "FULL",
    cache_size: int = 10_000,
    busy_timeout_ms: int = 5000,
) -> SQLStore:
    """Open the SQL store at ``url`` (see :func:`database_url`), creating or upgrading its schema.

    Args:
        url: ``sqlite:///PATH`` or ``postgresql://...``; None reads ``$XIESHANG_DATABASE_URL``.
        synchronous: SQLite only: ``FULL`` (a commit survives power loss) or ``NORMAL`` (a
            commit survives a crash of the process; the last ones may be lost on power loss).
        cache_size: how many instances the LRU cache keeps; 0 turns it off.
        busy_timeout_ms: SQLite only: how long a writer waits for the lock.

    Raises:
        StoreError, StoreUnavailable: a bad URL, or a database that refused or is unreachable.
    """
    full = database_url(url)
    store = SQLStore(
        full, synchronous=synchronous, cache_size=cache_size, busy_timeout_ms=busy_timeout_ms
    )
    try:
        upgrade(sa_engine(full, synchronous=store.synchronous, busy_timeout_ms=busy_timeout_ms))
    except BaseException:
        store.close()
        raise
    return store


# -- the store ----------------------------------------------------------------------------------


def _fault_hook(spec: str) -> Callable[[str], None]:
    point, _, nth = spec.partition(":")
    left = [int(nth or 1)]

    def hook(name: str) -> None:
        if name == point:
            left[0] -= 1
            if left[0] == 0:
                os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    return hook


class SQLStore(QueryReads, TimerReads, ReaderReads):
    """The store on SQLite or PostgreSQL. Use :func:`open_store` to also create the schema.

    Thread-safe: each operation borrows a connection from a small pool of its own. Close it
    (or use it as a context manager) to close the connections.

    ``fault_hook`` is a test hook: when set, it is called with a point name
    (``after_instance_update``) in the middle of a commit; ``$XIESHANG_FAULT`` sets it.
    """

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        cache_size: int = 10_000,
        busy_timeout_ms: int = 5000,
    ) -> None:
        full = make_url(database_url(url))
        self.synchronous = str(synchronous).upper()
        if self.synchronous not in SYNCHRONOUS:
            raise StoreError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)} (got {synchronous!r})",
                synchronous=synchronous,
                allowed=list(SYNCHRONOUS),
            )
        self.url: URL = full
        self.postgres = full.get_backend_name() == "postgresql"
        self.local = not self.postgres  # works on this machine: no network to wait for
        if self.postgres:
            conninfo = full.set(drivername="postgresql").render_as_string(hide_password=False)
            self._connect: Callable[[], Any] = lambda: psycopg.connect(conninfo, autocommit=True)
            self._begin = "BEGIN"
            self._writer: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
            self._checkpoints: Checkpointer | None = None
        else:
            path, sync = str(full.database), self.synchronous
            self._connect = lambda: connect_sqlite(path, sync, busy_timeout_ms, AUTOCHECKPOINT)
            self._begin = "BEGIN IMMEDIATE"  # take the write lock first: no upgrade deadlock
            self._writer = writer_lock(path, busy_timeout_ms)  # this process's writers queue
            self._checkpoints = Checkpointer(path, sync, busy_timeout_ms, self._writer)
        self._end = "COMMIT"
        self._undo: tuple[str, ...] = ("ROLLBACK",)  # a unit of work: back to its savepoint
        self._host: Any = None  # a unit of work: the host's connection, in its transaction
        self._parent: SQLStore | None = None  # a unit of work: the store it was bound from
        self._idle: list[Any] = []
        self._closed = False
        self._cache = RowCache(cache_size)
        # until when instances are read fresh: another writer moved one under the cache lately
        self._others_until = 0.0
        self._epoch: int | None = None  # the readers rewrites counted so far (see .readers)
        self._epoch_next = 0.0
        self._counted: dict[str, tuple[int, float]] = {}  # reader rows per principal (.readers)
        # SQLite: commits of concurrent threads share a transaction (see .group)
        self._group: GroupCommit | None = None if self.postgres else GroupCommit(self)
        fault = os.environ.get(ENV_FAULT)
        self.fault_hook: Callable[[str], None] | None = _fault_hook(fault) if fault else None
        self._sql = Statements(self.postgres)
        self._p = self._sql.p

    # -- connections -----------------------------------------------------------------------

    def _get(self) -> Any:
        if self._host is not None:
            return self._host
        if self._parent is not None:
            raise Usage(
                "this unit of work has ended: its engine and store took their last statement "
                "when the with block closed; open another inside the next transaction"
            )
        try:
            return self._idle.pop()
        except IndexError:
            if self._closed:
                raise StoreError("the store is closed") from None
            try:
                return self._connect()
            except DRIVER_ERRORS as e:
                raise _plain(e) from e

    def _put(self, conn: Any, broken: bool = False) -> None:
        if conn is self._host:
            return
        if broken or self._closed or getattr(conn, "broken", False):
            conn.close()
        else:
            self._idle.append(conn)

    def _read(
        self,
        sql: str,
        params: Params = (),
        prepare: bool = False,
        raw: bool = False,
    ) -> list[Any]:
        """The rows of a select; with ``prepare``, on PostgreSQL, from a statement prepared on
        the connection at its first use (the server plans it for its values until it finds one
        plan as good for any; a select on one plan from the start is ``selects._generic``);
        with ``raw``, a text with ``$1, $2 ...`` that psycopg sends as it is."""
        conn = self._get()
        broken = False
        try:
            cursor = psycopg.RawCursor(conn) if raw and self.postgres else conn
            if prepare and self.postgres and conn is not self._host:
                return list(cursor.execute(sql, params, prepare=True).fetchall())
            return list(cursor.execute(sql, params).fetchall())
        except DRIVER_ERRORS as e:
            broken = True
            raise _plain(e) from e
        finally:
            self._put(conn, broken)

    def _write_one(self, sql: str, params: Sequence[Any]) -> None:
        conn = self._get()
        broken = False
        try:
            conn.execute(sql, params)
        except DRIVER_ERRORS as e:
            broken = True
            raise _plain(e) from e
        finally:
            self._put(conn, broken)

    def close(self) -> None:
        """Close every idle connection; connections in use close when they are returned. A unit of
        work's view lets go of the host's connection (never closing it)."""
        self._closed = True
        self._host = None
        if self._checkpoints is not None and self._parent is None:
            self._checkpoints.close()
        while self._idle:
            self._idle.pop().close()
        self._cache.clear()

    def bind(self, conn: Any) -> SQLStore:
        """This store inside a transaction its host owns (see :mod:`.host`): every statement on
        ``conn``, savepoints instead of BEGIN and COMMIT. Used by
        :meth:`xieshang.Engine.unit_of_work`.

        Raises:
            Usage: ``conn`` is not a connection inside a transaction on this store's database.
        """
        return bound_store(self, conn)

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- instances -------------------------------------------------------------------------

    def load(self, instance_id: str, *, fresh: bool = False) -> Instance | None:
        if not fresh and self._cache.size and not self._contended():
            hit = self._cache.hit(instance_id)
            if hit is not None:
                return instance(hit)
        rows = self._read(self._sql.load, (instance_id,))
        if not rows:
            return None
        row = parsed(rows[0])
        self._cache.remember(row)
        return instance(row)

    def apply(self, commit: Commit) -> None:
        """Write a commit in one transaction (on SQLite, one that commits shared with other
        threads' commits, each its own savepoint: see :mod:`.group`).

        Raises:
            ConcurrencyConflict: an update's expected version does not match, the instance id
                exists, or a command id was used before (naming the first row). Nothing is
                written.
            StoreError, StoreUnavailable: the database refused or could not be reached.
        """
        if self._epoch is None and self._cache.size and self._host is None:
            self._check_readers_epoch()  # what the cache will hold is counted from here
        try:
            if self._group is not None and self._host is None and self._parent is None:
                rows = self._group.apply(commit)
            else:
                rows = self._apply_alone(commit)
        except ConcurrencyConflict as e:
            if e.case is ConflictCase.ANOTHER_WRITER:
                self._others_until = time.monotonic() + CONTENDED_SECONDS
            raise
        if self._cache.size:
            self._cache.committed(commit, rows)
        if self._checkpoints is not None and self._host is None:
            self._checkpoints.committed()
        if self._parent is not None:  # the host may still roll back: the parent reads anew
            self._parent._cache.forget(touched(commit))

    def _contended(self) -> bool:
        """Whether another writer moved an instance under this store's cache lately: then
        every instance is read fresh, not from the cache, so that steps are not judged on
        versions that are already gone (a store alone on its database keeps its cache)."""
        return self._others_until > time.monotonic()

    def _apply_alone(self, commit: Commit) -> list[InstanceRow]:
        """``commit`` in a transaction of its own; the instance rows written. A unit of work
        writes inside its host's transaction, which holds the database already; any other
        write first takes this process's writer lock of the file (see :mod:`.writer`)."""
        with self._writer if self._host is None else contextlib.nullcontext():
            conn = self._get()
            broken = False
            try:
                return self._write(conn, commit)
            except DRIVER_ERRORS as e:
                self._abandon(conn, commit)
                broken = classify(e) == "unavailable"
                try:
                    error = _plain(e) if broken else conflict(e, commit, conn, self._sql)
                except DRIVER_ERRORS:
                    broken, error = True, _plain(e)
                raise error from e
            except BaseException:
                self._abandon(conn, commit)
                raise
            finally:
                self._put(conn, broken)

    def _write(self, conn: Any, commit: Commit) -> list[InstanceRow]:
        if self.postgres and self._host is None:
            return write_batch(self, conn, commit)  # pipelined (a unit of work is the host's)
        return write(self, conn, commit)

    def bulk_load(self, commits: Iterable[Commit]) -> int:
        """Write many commits of new instances in one transaction (see :mod:`.bulk`)."""
        return bulk_load(self, commits)

    def _abandon(self, conn: Any, commit: Commit) -> None:
        # nothing to roll back if the transaction failed to begin or the link is gone
        with contextlib.suppress(*DRIVER_ERRORS):
            if self.postgres and self._host is None:
                # the driver's own rollback also forgets the statements it holds prepared: a
                # batch that failed on the server skipped those queued after the failure, and
                # one of them may be counted prepared that the server never saw
                conn.rollback()
            else:
                for statement in self._undo:
                    conn.execute(statement)
        self._cache.forget(touched(commit))

    # -- history ---------------------------------------------------------------------------

    def history(self, instance_id: str) -> list[HistoryEntry]:
        return [entry(r) for r in self._read(self._sql.history, (instance_id,))]

    def find_command(self, command_id: str) -> HistoryEntry | None:
        rows = self._read(self._sql.command, (command_id,))
        return entry(rows[0]) if rows else None

    def actors_of(self, instance_id: str, triggers: frozenset[str]) -> set[str]:
        if not triggers:
            return set()
        p = self._p
        rows = self._read(
            f"SELECT DISTINCT actor FROM history WHERE instance_id = {p} "
            f'AND "trigger" IN ({", ".join([p] * len(triggers))})',
            (instance_id, *sorted(triggers)),
        )
        return {str(json.loads(r[0])["id"]) for r in rows}

    # -- the ledger ------------------------------------------------------------------------

    def ledger(self, after: int = 0, limit: int | None = None) -> list[LedgerEntry]:
        p = self._p
        sql = (
            "SELECT position, instance_id, seq, org, row_hash, prev_hash, hash FROM ledger "
            f"WHERE position > {p} ORDER BY position"
        )
        params: tuple[int, ...] = (after,)
        if limit is not None:
            sql += f" LIMIT {p}"
            params = (after, limit)
        return [LedgerEntry(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], r[6])
                for r in self._read(sql, params)]  # fmt: skip

    def ledger_head(self) -> tuple[int, str]:
        rows = self._read(self._sql.ledger_tail)
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)

    def row_hashes(self) -> dict[tuple[str, int], str]:
        rows = self._read("SELECT instance_id, seq, hash FROM history")
        return {(str(r[0]), int(r[1])): str(r[2]) for r in rows}

    def instance_orgs(self) -> dict[str, str]:
        return {str(r[0]): str(r[1]) for r in self._read("SELECT id, org FROM instances")}

    def instance_ids(self) -> Iterator[str]:
        return iter([r[0] for r in self._read("SELECT id FROM instances ORDER BY created_at, id")])

    def outbox(self, instance_id: str | None = None) -> list[EventRecord]:
        sql = "SELECT event_id, instance_id, seq, type, org, body FROM outbox"
        params: tuple[str, ...] = ()
        if instance_id is not None:
            sql += f" WHERE instance_id = {self._p}"
            params = (instance_id,)
        rows = self._read(sql + " ORDER BY position", params)
        return [EventRecord(r[0], r[1], r[2], r[3], r[4], parse(r[5])) for r in rows]

    def outbox_since(self, position: int, limit: int) -> list[tuple[int, EventRecord]]:
        p = self._p
        rows = self._read(
            "SELECT position, event_id, instance_id, seq, type, org, body FROM outbox "
            f"WHERE position > {p} ORDER BY position LIMIT {p}",
            (position, limit),
        )
        return [(r[0], EventRecord(r[1], r[2], r[3], r[4], r[5], parse(r[6]))) for r in rows]

    def outbox_head(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(position), 0) FROM outbox", ())[0][0])

    # -- definitions -----------------------------------------------------------------------

    def save_definition(self, content_hash: str, workflow: str, version: int, body: str) -> None:
        p = self._p
        self._write_one(
            f"INSERT INTO definitions (hash, workflow, version, body, created_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (hash) DO NOTHING",
            (content_hash, workflow, version, body, iso(datetime.now(UTC))),
        )

    def load_definition(self, content_hash: str) -> str | None:
        rows = self._read(f"SELECT body FROM definitions WHERE hash = {self._p}", (content_hash,))
        return str(rows[0][0]) if rows else None

    # -- the duty ledger (docs/duties.md) ---------------------------------------------------

    def duty_records(
        self,
        *,
        year: int | None = None,
        member: str | None = None,
        instance_id: str | None = None,
    ) -> list[DutyRecord]:
        """The duty records stored, in the order of their steps, filtered as asked."""
        return duties.read_records(self, year=year, member=member, instance_id=instance_id)

    def duty_recomputes(self, year: int | None = None) -> list[DutyRecompute]:
        """The recomputes run, oldest first (of ``year`` only, when given)."""
        return duties.read_recomputes(self, year)

    def replace_duties(
        self, year: int, records: Sequence[DutyRecord], recompute: DutyRecompute
    ) -> None:
        """Replace the records of ``year`` and record the recompute, in one transaction."""
        duties.replace_year(self, year, records, recompute)
