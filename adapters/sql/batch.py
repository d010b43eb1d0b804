"""How the store writes one commit on PostgreSQL: the transaction in one or two round trips.

A step that writes its instance row, one history row and its events, and nothing else (no
timers, readers, duties), is one statement: its update, its rows and its ledger entry (see
``Statements.step``), which is a transaction by itself, with no ``BEGIN`` or ``COMMIT`` to
send. Any other commit's statements would each wait for the server in turn (seven round trips
or more). They are sent in a pipeline instead:

1. ``BEGIN`` and every row of the commit. A step of one instance is one statement (its update,
   history rows and events: ``Statements.step``) that fails on the server when the instance is
   not at the expected version; the server then skips all that follows, and the transaction
   is rolled back. Other row counts the store checks (the expected version of each instance
   of a commit of several, a timer still there) are read at a sync point here, one round trip
   more; a count other than one is the conflict it names, and the transaction is rolled back,
   as when the statements go one by one.
2. The ledger entries and ``COMMIT``, in the same round trip as 1 when nothing was left to
   read. Each entry is one call of ``xieshang_ledger_append``, which takes the ledger's
   advisory lock, reads the head and writes the entry, its hash computed on the server
   (``sha256`` of the same canonical text :meth:`xieshang.shared.LedgerEntry.canonical`
   writes). So the lock is held for the server's own work and the commit's flush only, never
   across a round trip to this process or the time it takes to send its next statement, and
   writers wait for each other that long at most.

The server computes the hash only for texts that need no escaping in JSON (printable ASCII
without quotes or backslashes: ids and org codes are). An entry with any other text reads the
head back under the lock and is appended with the hash computed here, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import psycopg

from xieshang import Commit
from xieshang.shared import entry_orgs

from .errors import DRIVER_ERRORS
from .rows import InstanceRow, instance_row
from .writes import OUTBOX_ROWS, ledger_rows, step_statement, write_rows

if TYPE_CHECKING:
    from .store import SQLStore

__all__ = ["LEDGER_APPEND_PG", "Batch", "write_batch"]

_PLAIN = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but '"' and '\\': JSON as it is

# One ledger entry after the head, under the ledger's lock, in one call: the function takes
# the lock, then reads the head and writes the entry, its hash made on the server from the
# canonical text (migration 0016_ledger_append).
LEDGER_APPEND_PG = "SELECT xieshang_ledger_append(%s, %s, %s, %s)"


class Batch:
    """The statements of one transaction in a pipeline: each on a cursor of its own (a cursor
    holds the result of the last statement it sent), the row counts checked once sent."""

    def __init__(self, conn: Any, pipeline: Any) -> None:
        self.conn, self.pipeline = conn, pipeline
        self.checks: list[tuple[Any, Callable[[], NoReturn]]] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        return self.conn.execute(sql, params)

    def execute_numbered(self, sql: str, params: Any) -> Any:
        """A statement whose marks are numbered (``$1`` ...): sent as it is, not read again."""
        return psycopg.RawCursor(self.conn).execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> None:
        self.conn.cursor().executemany(sql, rows)

    def expect(self, cur: Any, fail: Callable[[], NoReturn]) -> None:
        """Call ``fail`` if the statement ``cur`` sent did not touch exactly one row."""
        self.checks.append((cur, fail))

    def send(self) -> None:
        """Send what is queued and wait for its results; then check the row counts."""
        self.pipeline.sync()
        checks, self.checks = self.checks, []
        for cur, fail in checks:
            if cur.rowcount != 1:
                fail()


def write_batch(store: SQLStore, conn: Any, commit: Commit) -> list[InstanceRow]:
    """Write ``commit`` on ``conn`` in one transaction, pipelined; the instance rows written.
    The caller rolls back when this raises.

    A refused batch's error is raised once the pipeline is closed, not from inside it: the
    driver would log a warning of its own ("error ignored terminating") when a block that
    raised ends on a pipeline the server has not yet reported back from; the error that
    closing it then meets is the same refusal, already raised."""
    if _alone(store, commit):
        new, expected = commit.updates[0]
        row = instance_row(new)
        psycopg.RawCursor(conn).execute(*step_statement(store, commit, row, expected, ledger=True))
        return [row]
    refused: Exception | None = None
    try:
        with conn.pipeline() as pipeline:
            try:
                batch = Batch(conn, pipeline)
                batch.execute(store._begin)
                rows = write_rows(store, batch, commit, batch)
                if batch.checks:  # counts to read before the ledger's lock is asked for
                    batch.send()
                if commit.history:
                    _append_ledger(store, batch, commit)
                batch.execute(store._end)
            except Exception as e:
                refused = e
    except DRIVER_ERRORS:
        if refused is None:
            raise
    if refused is not None:
        raise refused
    return rows


def _alone(store: SQLStore, commit: Commit) -> bool:
    """Whether ``commit`` is a step that writes its instance row, one history row and its
    events and nothing else, with the texts the server hashes: then it is one statement
    (:meth:`.statements.Statements.step` with its ledger entry), a transaction of its own."""
    if (
        len(commit.updates) != 1
        or len(commit.history) != 1
        or len(commit.events) > OUTBOX_ROWS
        or commit.inserts
        or commit.touch
        or commit.consume_timers
        or commit.clear_timers
        or commit.timers
        or commit.readers
        or commit.reseal
        or commit.duties
        or store.fault_hook is not None
    ):
        return False
    [e], org = commit.history, commit.updates[0][0].org
    return all(_PLAIN.fullmatch(text) for text in (e.instance_id, org, e.hash))


def _append_ledger(store: SQLStore, batch: Batch, commit: Commit) -> None:
    """Queue the ledger entries of the commit's history rows, under the ledger's lock."""
    sql, orgs = store._sql, entry_orgs(commit)
    entries = [(e.instance_id, e.seq, orgs.get(e.instance_id, ""), e.hash) for e in commit.history]
    if all(_PLAIN.fullmatch(text) for iid, _, org, row in entries for text in (iid, org, row)):
        for entry in entries:
            batch.execute(LEDGER_APPEND_PG, entry)
        return
    batch.execute(sql.ledger_lock)
    found = batch.execute(sql.ledger_tail).fetchone()  # read under the lock
    batch.executemany(sql.ledger_insert, ledger_rows(commit, found))
