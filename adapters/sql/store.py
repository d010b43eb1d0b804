"""The SQL store: SQLite (a file, the default) and PostgreSQL behind one class, :class:`SQLStore`.

The schema is defined in :mod:`.tables` and created by alembic (:func:`upgrade`, in
:mod:`.connect`). Commands run on the driver's own connection (``sqlite3``, ``psycopg``) with
statements the driver prepares once: one transaction per commit, no ORM session. Recently
written instances are kept in a small LRU cache of :class:`.rows.InstanceRow`; every write is
still checked against the version in the database. Driver errors become ours as
:mod:`.errors` describes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, Dialect, make_url
from sqlmodel import SQLModel

from xieshang import (
    Commit,
    ConcurrencyConflict,
    ConflictCase,
    EventRecord,
    HistoryEntry,
    Instance,
    Query,
    StoreError,
    StoreUnavailable,
    TimerRecord,
    XieshangError,
)
from xieshang.shared import LedgerEntry, append_entries, iso

from . import tables  # noqa: F401 - registers the tables on SQLModel.metadata
from .connect import DEFAULT_URL, ENV_URL, connect_sqlite, database_url, sa_engine, upgrade
from .errors import DRIVER_ERRORS, classify, plain
from .rows import (
    HISTORY_COLUMNS,
    INSTANCE_COLUMNS,
    InstanceRow,
    dump,
    entry,
    history_values,
    insert_values,
    instance,
    instance_row,
    parsed,
)

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

_INSTANCES = SQLModel.metadata.tables["instances"]
_READERS = SQLModel.metadata.tables["readers"]
_ICOLS = ", ".join(INSTANCE_COLUMNS)
_HCOLS = ", ".join(f'"{c}"' if c == "trigger" else c for c in HISTORY_COLUMNS)
# What a step may change. The identity columns (workflow, org, parent, unit) never change, and
# leaving them out of the SET spares SQLite the upkeep of their indexes.
_UPDATED = ["workflow_version", "definition_hash", "state", "data", "version", "updated_at",
            "entered_at", "final", "due_at", "overdue", "head_hash", "due_basis"]  # fmt: skip
_plain = plain  # the name the error-mapping tests use


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


class SQLStore:
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
        self._dialect: Dialect = (
            postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
            if self.postgres
            else sqlite_dialect.dialect()
        )
        if self.postgres:
            conninfo = full.set(drivername="postgresql").render_as_string(hide_password=False)
            self._connect: Callable[[], Any] = lambda: psycopg.connect(conninfo, autocommit=True)
            self._begin = "BEGIN"
        else:
            path, sync = str(full.database), self.synchronous
            self._connect = lambda: connect_sqlite(path, sync, busy_timeout_ms)
            self._begin = "BEGIN IMMEDIATE"  # take the write lock first: no upgrade deadlock
        self._idle: list[Any] = []
        self._closed = False
        self._cache: OrderedDict[str, InstanceRow] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        fault = os.environ.get(ENV_FAULT)
        self.fault_hook: Callable[[str], None] | None = _fault_hook(fault) if fault else None
        p = "%s" if self.postgres else "?"

        def marks(n: int) -> str:
            return ", ".join([p] * n)

        self._sql_load = f"SELECT {_ICOLS} FROM instances WHERE id = {p}"
        self._sql_insert = (
            f"INSERT INTO instances ({_ICOLS}) VALUES ({marks(len(INSTANCE_COLUMNS))})"
        )
        # keyed by (state unchanged, due_at unchanged): columns left out keep their index as is
        self._sql_updates = {
            (same_state, same_due): "UPDATE instances SET " + ", ".join(
                f"{c} = {p}" for c in _UPDATED
                if not (same_state and c == "state") and not (same_due and c == "due_at")
            ) + f" WHERE id = {p} AND version = {p}"
            for same_state in (False, True)
            for same_due in (False, True)
        }  # fmt: skip
        self._sql_version = f"SELECT version FROM instances WHERE id = {p}"
        self._sql_history_insert = (
            f"INSERT INTO history ({_HCOLS}) VALUES ({marks(len(HISTORY_COLUMNS))})"
        )
        self._sql_history = f"SELECT {_HCOLS} FROM history WHERE instance_id = {p} ORDER BY seq"
        self._sql_command = f"SELECT {_HCOLS} FROM history WHERE command_id = {p}"
        self._sql_outbox_insert = (
            "INSERT INTO outbox (event_id, instance_id, seq, type, org, body, created_at) "
            f"VALUES ({marks(7)})"
        )
        self._sql_clear = f"DELETE FROM timers WHERE instance_id = {p}"
        self._sql_timer_insert = (
            f'INSERT INTO timers (instance_id, kind, "trigger", due_at, version, org, basis) '
            f"VALUES ({marks(7)})"
        )
        self._sql_consume = (
            f"DELETE FROM timers WHERE id = (SELECT id FROM timers WHERE instance_id = {p} "
            f'AND kind = {p} AND "trigger" = {p} AND due_at = {p} AND version = {p} '
            f"AND org = {p} ORDER BY id LIMIT 1)"
        )
        # the head is locked last, just before COMMIT: concurrent writers wait for each other
        # only while one of them commits (PostgreSQL); SQLite's write lock is taken at BEGIN
        lock = " FOR UPDATE" if self.postgres else ""
        self._sql_head = f"SELECT position, hash FROM ledger_head WHERE id = 1{lock}"
        self._sql_head_update = f"UPDATE ledger_head SET position = {p}, hash = {p} WHERE id = 1"
        self._sql_ledger_insert = (
            "INSERT INTO ledger (position, instance_id, seq, org, row_hash, prev_hash, hash) "
            f"VALUES ({marks(7)})"
        )
        self._sql_touch = (
            f"UPDATE instances SET children_version = children_version + 1 "
            f"WHERE id = {p} AND children_version = {p}"
        )
        self._sql_children = f"SELECT children_version FROM instances WHERE id = {p}"
        self._sql_readers_clear = f"DELETE FROM readers WHERE instance_id = {p}"
        self._sql_readers_insert = (
            f"INSERT INTO readers (instance_id, principal, level) VALUES ({marks(3)})"
        )
        self._p = p

    # -- connections -----------------------------------------------------------------------

    def _get(self) -> Any:
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
        if broken or self._closed or getattr(conn, "broken", False):
            conn.close()
        else:
            self._idle.append(conn)

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        conn = self._get()
        broken = False
        try:
            return list(conn.execute(sql, params).fetchall())
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
        """Close every idle connection; connections in use close when they are returned."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        with self._cache_lock:
            self._cache.clear()

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- instances -------------------------------------------------------------------------

    def load(self, instance_id: str, *, fresh: bool = False) -> Instance | None:
        if not fresh and self._cache_size:
            with self._cache_lock:
                hit = self._cache.get(instance_id)
                if hit is not None:
                    self._cache.move_to_end(instance_id)
            if hit is not None:
                return instance(hit)
        rows = self._read(self._sql_load, (instance_id,))
        if not rows:
            return None
        row = parsed(rows[0])
        self._remember(row)
        return instance(row)

    def apply(self, commit: Commit) -> None:
        """Write a commit in one transaction.

        Raises:
            ConcurrencyConflict: an update's expected version does not match, the instance id
                exists, or a command id was used before (naming the first row). Nothing is
                written.
            StoreError, StoreUnavailable: the database refused or could not be reached.
        """
        conn = self._get()
        broken = False
        try:
            rows = self._write(conn, commit)
        except DRIVER_ERRORS as e:
            self._abandon(conn, commit)
            broken = classify(e) == "unavailable"
            try:
                error = _plain(e) if broken else self._conflict(e, commit, conn)
            except DRIVER_ERRORS:
                broken, error = True, _plain(e)
            raise error from e
        except BaseException:
            self._abandon(conn, commit)
            raise
        finally:
            self._put(conn, broken)
        if self._cache_size:
            self._cache_commit(commit, rows)

    def _write(self, conn: Any, commit: Commit) -> list[InstanceRow]:
        cur = conn.cursor()
        ex = cur.execute
        ex(self._begin)
        rows: list[InstanceRow] = []
        for new in commit.inserts:
            row = instance_row(new)
            ex(self._sql_insert, insert_values(row))
            rows.append(row)
        for new, expected in commit.updates:
            row = instance_row(new)
            due = new.due_at
            values = {
                "workflow_version": new.workflow_version, "definition_hash": new.definition_hash,
                "state": new.state, "data": row.data, "version": new.version,
                "updated_at": iso(new.updated_at), "entered_at": iso(new.entered_at),
                "final": new.final, "due_at": iso(due) if due is not None else None,
                "overdue": new.overdue, "head_hash": new.head_hash, "due_basis": new.due_basis,
            }  # fmt: skip
            # the row at the expected version is the one cached at it (versions name contents),
            # so its indexed columns that did not change can be left out of the SET
            with self._cache_lock:
                held = self._cache.get(new.id)
            same_state = same_due = False
            if held is not None and held.version == expected:
                same_state, same_due = held.state == new.state, held.due_at == due
            if same_due:
                del values["due_at"]
            if same_state:
                del values["state"]
            ex(self._sql_updates[same_state, same_due], (*values.values(), new.id, expected))
            if cur.rowcount != 1:
                found = ex(self._sql_version, (new.id,)).fetchone()
                raise ConcurrencyConflict(
                    new.id, expected, found[0] if found else None, case=ConflictCase.ANOTHER_WRITER
                )
            rows.append(row)
        for t in commit.consume_timers:
            ex(self._sql_consume, (t.instance_id, t.kind, t.trigger, iso(t.due_at), t.version,
                                   t.org))  # fmt: skip
            if cur.rowcount != 1:  # another worker fired it first
                raise ConcurrencyConflict(t.instance_id, case=ConflictCase.TIMER_TAKEN)
        for parent_id, seen in commit.touch:
            ex(self._sql_touch, (parent_id, seen))
            if cur.rowcount != 1:
                found = ex(self._sql_children, (parent_id,)).fetchone()
                raise ConcurrencyConflict(
                    parent_id, seen, found[0] if found else None,
                    case=ConflictCase.CHILDREN_CHANGED,
                )  # fmt: skip
        if self.fault_hook is not None:
            self.fault_hook("after_instance_update")
        inserted = {new.id for new in commit.inserts}
        for instance_id, levels in commit.readers.items():
            if instance_id not in inserted:
                ex(self._sql_readers_clear, (instance_id,))
            if levels:
                cur.executemany(
                    self._sql_readers_insert,
                    [(instance_id, who, level) for who, level in sorted(levels.items())],
                )
        for e in commit.history:
            ex(self._sql_history_insert, history_values(e))
        if commit.events:
            at = commit.history[0].recorded_at if commit.history else iso(datetime.now(UTC))
            events = [
                (v.id, v.instance_id, v.seq, v.type, v.org, dump(v.body), at) for v in commit.events
            ]
            if len(events) == 1:
                ex(self._sql_outbox_insert, events[0])
            else:
                cur.executemany(self._sql_outbox_insert, events)
        for instance_id in commit.clear_timers:
            ex(self._sql_clear, (instance_id,))
        if commit.timers:
            cur.executemany(
                self._sql_timer_insert,
                [
                    (t.instance_id, t.kind, t.trigger, iso(t.due_at), t.version, t.org, t.basis)
                    for t in commit.timers
                ],
            )
        if commit.history:
            head = ex(self._sql_head).fetchone()
            entries = append_entries(commit, (int(head[0]), str(head[1])))
            cur.executemany(
                self._sql_ledger_insert,
                [(e.position, e.instance_id, e.seq, e.org, e.row_hash, e.prev_hash, e.hash)
                 for e in entries],
            )  # fmt: skip
            ex(self._sql_head_update, (entries[-1].position, entries[-1].hash))
        ex("COMMIT")
        return rows

    def _abandon(self, conn: Any, commit: Commit) -> None:
        # nothing to roll back if the transaction failed to begin or the link is gone
        with contextlib.suppress(*DRIVER_ERRORS):
            conn.execute("ROLLBACK")
        touched = [new.id for new in commit.inserts]
        touched += [new.id for new, _ in commit.updates]
        touched += [parent_id for parent_id, _ in commit.touch]
        touched += [t.instance_id for t in commit.consume_timers]
        with self._cache_lock:
            for instance_id in touched:
                self._cache.pop(instance_id, None)

    def _conflict(self, error: BaseException, commit: Commit, conn: Any) -> XieshangError:
        kind = classify(error)
        p = self._p
        if kind == "command-id":
            for e in commit.history:
                if e.command_id is None:
                    continue
                found = conn.execute(
                    f"SELECT instance_id, seq FROM history WHERE command_id = {p}", (e.command_id,)
                ).fetchone()
                if found is not None:
                    return ConcurrencyConflict(
                        found[0], None, found[1], case=ConflictCase.COMMAND_USED
                    )
            return ConcurrencyConflict(
                commit.history[0].instance_id, case=ConflictCase.COMMAND_USED
            )
        if kind == "instance-id":
            for new in commit.inserts:
                found = conn.execute(self._sql_version, (new.id,)).fetchone()
                if found is not None:
                    return ConcurrencyConflict(
                        new.id, None, found[0], case=ConflictCase.INSTANCE_EXISTS
                    )
        if kind in ("instance-id", "history-seq", "retry"):
            expected = {new.id: v for new, v in commit.updates}
            iid = (
                commit.updates[0][0].id
                if commit.updates
                else commit.inserts[0].id
                if commit.inserts
                else commit.history[0].instance_id
            )
            found = conn.execute(self._sql_version, (iid,)).fetchone()
            return ConcurrencyConflict(
                iid, expected.get(iid), found[0] if found else None,
                case=ConflictCase.ANOTHER_WRITER,
            )  # fmt: skip
        return _plain(error)

    # -- the cache -------------------------------------------------------------------------

    def _cache_commit(self, commit: Commit, rows: list[InstanceRow]) -> None:
        """Keep the committed rows. An update never writes ``children_version``, so an updated
        row keeps the count cached before (uncached, it is left to the next load); a touch adds
        one to its parent's count."""
        inserted = len(commit.inserts)
        for row in rows[:inserted]:
            self._remember(row)
        with self._cache_lock:
            for row in rows[inserted:]:
                held = self._cache.get(row.id)
                if held is not None and held.version <= row.version:
                    self._cache[row.id] = row._replace(children_version=held.children_version)
            for parent_id, seen in commit.touch:
                held = self._cache.get(parent_id)
                if held is not None:
                    if held.children_version == seen:
                        self._cache[parent_id] = held._replace(children_version=seen + 1)
                    else:
                        del self._cache[parent_id]

    def _remember(self, row: InstanceRow) -> None:
        if not self._cache_size:
            return
        with self._cache_lock:
            held = self._cache.get(row.id)
            if held is not None and held.version > row.version:
                return  # a newer version was cached by another thread meanwhile
            self._cache[row.id] = row
            self._cache.move_to_end(row.id)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    # -- history ---------------------------------------------------------------------------

    def history(self, instance_id: str) -> list[HistoryEntry]:
        return [entry(r) for r in self._read(self._sql_history, (instance_id,))]

    def find_command(self, command_id: str) -> HistoryEntry | None:
        rows = self._read(self._sql_command, (command_id,))
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

    # -- queries ---------------------------------------------------------------------------

    def query(self, query: Query) -> list[Instance]:
        c = _INSTANCES.c
        columns = [c[name] for name in INSTANCE_COLUMNS]
        stmt = sa.select(*columns).order_by(c.created_at, c.id).limit(query.limit)
        criteria = ((c.workflow, query.workflow), (c.state, query.state), (c.org, query.org),
                    (c.overdue, query.overdue), (c.final, query.final), (c.unit, query.unit),
                    (c.parent_id, query.parent_id))  # fmt: skip
        for column, want in criteria:
            if want is not None:
                stmt = stmt.where(column == want)
        if query.after is not None:
            stmt = stmt.where(
                sa.tuple_(c.created_at, c.id) > sa.tuple_(*map(sa.literal, query.after))
            )
        if query.field is not None:
            stmt = stmt.where(self._field_equals(query.field, query.value))
        if query.readers is not None:
            r = _READERS.c
            stmt = stmt.where(
                sa.exists().where(r.instance_id == c.id, r.principal.in_(sorted(query.readers)))
            )
        compiled = stmt.compile(dialect=self._dialect, compile_kwargs={"render_postcompile": True})
        params: Sequence[Any] | dict[str, Any] = (
            [compiled.params[k] for k in compiled.positiontup]
            if compiled.positiontup is not None
            else compiled.params
        )
        return [instance(parsed(r)) for r in self._read(compiled.string, params)]

    def _field_equals(self, field: str, value: Any) -> sa.ColumnElement[bool]:
        """``data[field] == value`` compared as JSON values; a missing field equals None."""
        data = _INSTANCES.c.data
        if self.postgres:
            null = sa.cast(sa.literal("null"), JSONB)
            found = sa.func.coalesce(sa.cast(data, JSONB).op("->")(field), null)
            return found == sa.cast(sa.literal(dump(value)), JSONB)
        path = '$."' + field.replace('"', '""') + '"'
        # both sides go through json_extract, so strings, numbers, booleans and lists compare
        # as SQLite's JSON functions see them; IS makes a missing field equal to null
        return sa.func.json_extract(data, path).is_not_distinct_from(
            sa.func.json_extract(dump(value), "$")
        )

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
        rows = self._read("SELECT position, hash FROM ledger_head WHERE id = 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, "")

    def row_hashes(self) -> dict[tuple[str, int], str]:
        rows = self._read("SELECT instance_id, seq, hash FROM history")
        return {(str(r[0]), int(r[1])): str(r[2]) for r in rows}

    def instance_orgs(self) -> dict[str, str]:
        return {str(r[0]): str(r[1]) for r in self._read("SELECT id, org FROM instances")}

    def readers(self, instance_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        ids = list(dict.fromkeys(instance_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._read(
                "SELECT instance_id, principal, level FROM readers WHERE instance_id IN "
                f"({', '.join([self._p] * len(chunk))})",
                chunk,
            )
            for iid, who, level in rows:
                out.setdefault(iid, {})[who] = int(level)
        return out

    def instance_ids(self) -> Iterator[str]:
        return iter([r[0] for r in self._read("SELECT id FROM instances ORDER BY created_at, id")])

    def outbox(self, instance_id: str | None = None) -> list[EventRecord]:
        sql = "SELECT event_id, instance_id, seq, type, org, body FROM outbox"
        params: tuple[str, ...] = ()
        if instance_id is not None:
            sql += f" WHERE instance_id = {self._p}"
            params = (instance_id,)
        rows = self._read(sql + " ORDER BY position", params)
        return [EventRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    # -- timers ----------------------------------------------------------------------------

    def due_timers(self, now: datetime, limit: int = 100) -> list[TimerRecord]:
        p = self._p
        rows = self._read(
            f'SELECT instance_id, kind, "trigger", due_at, version, org, basis FROM timers '
            f"WHERE due_at <= {p} ORDER BY due_at, id LIMIT {p}",
            (iso(now), limit),
        )
        return [_timer(r) for r in rows]

    def timers_of(self, instance_id: str) -> list[TimerRecord]:
        rows = self._read(
            f'SELECT instance_id, kind, "trigger", due_at, version, org, basis FROM timers '
            f"WHERE instance_id = {self._p} ORDER BY due_at, id",
            (instance_id,),
        )
        return [_timer(r) for r in rows]

    def calendar_dependent(self) -> list[str]:
        rows = self._read(
            "SELECT id, created_at FROM instances WHERE final = false AND due_basis IS NOT NULL "
            "UNION SELECT i.id, i.created_at FROM timers t JOIN instances i ON i.id = t.instance_id"
            " WHERE t.basis IS NOT NULL ORDER BY 2, 1"
        )
        return [str(r[0]) for r in rows]

    def delete_timer(self, timer: TimerRecord) -> None:
        t = timer
        self._write_one(
            self._sql_consume, (t.instance_id, t.kind, t.trigger, iso(t.due_at), t.version, t.org)
        )

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


def _timer(r: Sequence[Any]) -> TimerRecord:
    instance_id, kind, trigger, due_at, version, org, basis = r
    return TimerRecord(instance_id, kind, trigger, datetime.fromisoformat(due_at), version, org,
                       basis)  # fmt: skip
