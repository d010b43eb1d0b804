"""The statements of the SQL store, written once per store for its driver's placeholder.

The instance and history columns come from :mod:`.rows`, so a statement and the row it reads
name the same columns in the same order.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Dialect

from xieshang import Query

from .queries import QueryText
from .rows import HISTORY_COLUMNS, INSTANCE_COLUMNS

__all__ = ["Statements"]

_ICOLS = ", ".join(INSTANCE_COLUMNS)
_HCOLS = ", ".join(f'"{c}"' if c == "trigger" else c for c in HISTORY_COLUMNS)
_OUTBOX = "INSERT INTO outbox (event_id, instance_id, seq, type, org, body, created_at) VALUES"
# What a step may change. The identity columns (workflow, org, parent, unit) never change, and
# leaving them out of the SET spares SQLite the upkeep of their indexes.
_UPDATED = ["workflow_version", "definition_hash", "state", "data", "version", "updated_at",
            "entered_at", "final", "due_at", "overdue", "head_hash", "due_basis",
            "suspended_at"]  # fmt: skip
# the columns an update leaves out of its SET when they keep their value (see Statements.updates)
_KEPT = ("state", "due_at", "entered_at")


def numbered(sql: str) -> str:
    """``sql`` (PostgreSQL) with its ``%s`` marks numbered ``$1``, ``$2`` ... in their order."""
    parts = sql.split("%s")
    if any("%" in part for part in parts):
        raise ValueError(f"a statement to number holds a % that is not a mark: {sql!r}")
    return "".join(f"{part}${k}" for k, part in enumerate(parts[:-1], 1)) + parts[-1]


class Statements:
    """The SQL text of every statement the store runs on PostgreSQL (``%s``; a query's select
    ``$1``, ``$2`` ...) or SQLite (``?``)."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        # queries are compiled with $1, $2 ... and run as psycopg's raw queries, whose text the
        # driver sends as it is: a text in psycopg's own %s style is parsed at every run once it
        # is longer than psycopg caches (4096 bytes), as an inbox's merged selects are
        self.dialect: Dialect = (
            postgresql.psycopg.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
            if postgres
            else sqlite_dialect.dialect()
        )
        p = "%s" if postgres else "?"

        def marks(n: int) -> str:
            return ", ".join([p] * n)

        self.load = f"SELECT {_ICOLS} FROM instances WHERE id = {p}"
        self.insert = f"INSERT INTO instances ({_ICOLS}) VALUES ({marks(len(INSTANCE_COLUMNS))})"
        # keyed by (state unchanged, due_at unchanged, entered_at unchanged): columns left out
        # keep their index (and their value) as is
        self.updates = {
            same: "UPDATE instances SET " + ", ".join(
                f"{c} = {p}" for c in _UPDATED
                if not any(kept and c == name for name, kept in zip(_KEPT, same, strict=True))
            ) + f" WHERE id = {p} AND version = {p}"
            for same in itertools.product((False, True), repeat=len(_KEPT))
        }  # fmt: skip
        self.version = f"SELECT version FROM instances WHERE id = {p}"
        self.history_insert = (
            f"INSERT INTO history ({_HCOLS}) VALUES ({marks(len(HISTORY_COLUMNS))})"
        )
        self.history = f"SELECT {_HCOLS} FROM history WHERE instance_id = {p} ORDER BY seq"
        self.command = f"SELECT {_HCOLS} FROM history WHERE command_id = {p}"
        self.reseal = (
            f"UPDATE history SET payload = {p}, seal = {p} "
            f"WHERE instance_id = {p} AND seq = {p} AND hash = {p}"
        )
        self.outbox_insert = f"{_OUTBOX} ({marks(7)})"
        self.clear = f"DELETE FROM timers WHERE instance_id = {p}"
        self.timer_insert = (
            f'INSERT INTO timers (instance_id, kind, "trigger", due_at, version, org, basis) '
            f"VALUES ({marks(7)})"
        )
        self.consume = (
            f"DELETE FROM timers WHERE id = (SELECT id FROM timers WHERE instance_id = {p} "
            f'AND kind = {p} AND "trigger" = {p} AND due_at = {p} AND version = {p} '
            f"AND org = {p} ORDER BY id LIMIT 1)"
        )
        # The ledger's head is its last position, read in the transaction that appends after
        # it. On PostgreSQL a transaction-scoped advisory lock, taken last, just before COMMIT,
        # orders the writers: they wait for each other only while one of them commits (see
        # .batch). SQLite's write lock, taken at BEGIN, orders them already.
        self.ledger_lock = "SELECT pg_advisory_xact_lock(8679604582553462130)" if postgres else ""
        self.ledger_tail = "SELECT position, hash FROM ledger ORDER BY position DESC LIMIT 1"
        # PostgreSQL inside a host's transaction (a unit of work; a store's own transactions
        # are pipelined, see .batch): both in one round trip (no parameters: the simple
        # protocol, which runs each statement on a snapshot of its own, so the read sees what
        # committed while the lock was waited for); the lock is then held one round trip less
        self.ledger_lock_tail = f"{self.ledger_lock}; {self.ledger_tail}" if postgres else ""
        self.ledger_insert = (
            "INSERT INTO ledger (position, instance_id, seq, org, row_hash, prev_hash, hash) "
            f"VALUES ({marks(7)})"
        )
        self.touch = (
            f"UPDATE instances SET children_version = children_version + 1 "
            f"WHERE id = {p} AND children_version = {p}"
        )
        self.children = f"SELECT children_version FROM instances WHERE id = {p}"
        self.readers_clear = f"DELETE FROM readers WHERE instance_id = {p}"
        # an in-place rewrite of readers, for the caches of other processes (see .cache)
        self.readers_epoch = "SELECT value FROM cache_epochs WHERE name = 'readers'"
        self.readers_epoch_bump = "UPDATE cache_epochs SET value = value + 1 WHERE name = 'readers'"
        self.readers_insert = (
            f"INSERT INTO readers (instance_id, principal, level, created_at) VALUES ({marks(4)})"
        )
        # a step's readers: the creation time copied from the instance row the step wrote
        self.readers_copy = (
            "INSERT INTO readers (instance_id, principal, level, created_at) "
            f"SELECT id, {p}, {p}, created_at FROM instances WHERE id = {p}"
        )
        self.definitions = "SELECT hash, workflow FROM definitions"
        self.p = p
        self._queries = QueryText(postgres, self.dialect)
        self._outbox_rows: dict[int, str] = {1: self.outbox_insert}
        self._steps: dict[tuple[str, int, int, bool], str] = {}

    def outbox_rows(self, count: int) -> str:
        """The insert of ``count`` outbox rows in one statement (a step's events)."""
        found = self._outbox_rows.get(count)
        if found is None:
            row = f"({', '.join([self.p] * 7)})"
            found = self._outbox_rows[count] = f"{_OUTBOX} {', '.join([row] * count)}"
        return found

    def step(self, update: str, rows: int, events: int, *, ledger: bool = False) -> str:
        """PostgreSQL: one step's ``update`` of its instance, its ``rows`` history rows and its
        ``events`` outbox rows in one statement. When the update finds no instance at the
        expected version, the statement fails on the server (a division by the zero rows
        updated: SQL has no other way to raise), so the transaction is aborted there and
        nothing queued after it runs; :func:`.errors.classify` names that failure.

        With ``ledger``, the statement also appends the ledger entry of its one history row
        (``xieshang_ledger_append``, its last four values): it is then the whole step, a
        transaction of its own. The entry is appended last, once the update and the inserts
        are done (each counted in the statement's FROM, which is read before anything is
        selected) and the version was found: a writer takes the instance's row, then the
        ledger's lock, which it holds for the entry and the commit only.

        Its marks are numbered (``$1``, ``$2`` ...), for a ``psycopg.RawCursor``: the driver
        caches its reading of a ``%s`` text only up to 50 values, and a step has more, so it
        would split the text again at every step (a fifth of the client's time a step)."""
        key = (update, rows, events, ledger)
        found = self._steps.get(key)
        if found is None:
            history = f"({', '.join([self.p] * len(HISTORY_COLUMNS))})"
            values = ", ".join([history] * rows)
            parts = [
                f"u AS ({update} RETURNING 1)",
                f"h AS (INSERT INTO history ({_HCOLS}) VALUES {values} RETURNING 1)",
            ]
            if events:
                parts.append(f"o AS ({self.outbox_rows(events)} RETURNING 1)")
            if ledger:
                inserts = ["h", "o"] if events else ["h"]
                done = ", ".join(f"(SELECT count(*) FROM {t}) {t}{t}" for t in inserts)
                p = self.p
                select = (
                    f"SELECT xieshang_ledger_append({p}, {p}, {p}, {p}) "
                    f"FROM (SELECT count(*) AS n FROM u) uu, {done} WHERE 1 / uu.n = 1"
                )
            else:
                select = "SELECT 1 / count(*) FROM u"
            found = self._steps[key] = numbered(f"WITH {', '.join(parts)} {select}")
        return found

    def query(
        self,
        query: Query,
        definitions: Sequence[tuple[str, str]] = (),
        levels: bool = False,
        narrow: tuple[bool, ...] | None = None,
    ) -> tuple[str, Sequence[Any] | dict[str, Any]]:
        """The select of the instances ``query`` asks for, and its parameters (see
        :mod:`.queries`); ``definitions`` are the (hash, workflow) of the stored definitions;
        with ``levels``, each row ends with the highest level the query's readers hold;
        ``narrow`` flags the readers (sorted) that read few instances."""
        return self._queries.select(query, definitions, levels, narrow)
