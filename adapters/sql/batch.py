"""How the store writes one commit on PostgreSQL: the transaction in one or two round trips.

A step's statements would each wait for the server in turn (seven round trips or more). Here
they are sent in a pipeline instead:

1. ``BEGIN`` and every row of the commit. A step of one instance is one statement (its update,
   history rows and events: ``Statements.step``) that fails on the server when the instance is
   not at the expected version; the server then skips all that follows, and the transaction
   is rolled back. Other row counts the store checks (the expected version of each instance
   of a commit of several, a timer still there) are read at a sync point here, one round trip
   more; a count other than one is the conflict it names, and the transaction is rolled back,
   as when the statements go one by one.
2. The ledger's advisory lock, the ledger entries and ``COMMIT``, in the same message as 1
   when nothing was left to read. Each entry is
   appended by one statement that reads the ledger's head and computes the entry's hash on the
   server (``sha256`` of the same canonical text :meth:`xieshang.shared.LedgerEntry.canonical`
   writes). So the lock is held for the server's own work and the commit's flush only, never
   across a round trip to this process, and writers wait for each other that long at most.

The server computes the hash only for texts that need no escaping in JSON (printable ASCII
without quotes or backslashes: ids and org codes are). An entry with any other text reads the
head back under the lock and is appended with the hash computed here, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from xieshang import Commit
from xieshang.shared import GENESIS, entry_orgs

from .errors import DRIVER_ERRORS
from .rows import InstanceRow
from .writes import ledger_rows, write_rows

if TYPE_CHECKING:
    from .store import SQLStore

__all__ = ["LEDGER_APPEND_PG", "Batch", "write_batch"]

_PLAIN = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but '"' and '\\': JSON as it is

_HEAD = (
    "SELECT position, hash FROM (SELECT position, hash FROM ledger ORDER BY position DESC "
    f"LIMIT 1) h UNION ALL SELECT 0, '{GENESIS}' ORDER BY position DESC LIMIT 1"
)
# One ledger entry after the head, its hash made on the server from the canonical text.
LEDGER_APPEND_PG = (
    "INSERT INTO ledger (position, instance_id, seq, org, row_hash, prev_hash, hash) "
    "SELECT t.position + 1, %(iid)s, %(seq)s, %(org)s, %(row)s, t.hash, encode(sha256("
    'convert_to(\'{"instance_id":"\' || %(iid)s || \'","org":"\' || %(org)s'
    ' || \'","position":\' || (t.position + 1) || \',"prev_hash":"\' || t.hash'
    " || '\",\"row_hash\":\"' || %(row)s || '\",\"seq\":' || %(seq)s || '}', 'UTF8')), 'hex') "
    f"FROM ({_HEAD}) t"
)


class Batch:
    """The statements of one transaction in a pipeline: each on a cursor of its own (a cursor
    holds the result of the last statement it sent), the row counts checked once sent."""

    def __init__(self, conn: Any, pipeline: Any) -> None:
        self.conn, self.pipeline = conn, pipeline
        self.checks: list[tuple[Any, Callable[[], NoReturn]]] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        return self.conn.execute(sql, params)

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
    refused: Exception | None = None
    try:
        with conn.pipeline() as pipeline:
            try:
                batch = Batch(conn, pipeline)
                batch.execute(store._begin)
                rows, _ = write_rows(store, batch, commit, None, batch)
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


def _append_ledger(store: SQLStore, batch: Batch, commit: Commit) -> None:
    """Queue the ledger entries of the commit's history rows, under the ledger's lock."""
    sql, orgs = store._sql, entry_orgs(commit)
    batch.execute(sql.ledger_lock)
    entries = [(e.instance_id, e.seq, orgs.get(e.instance_id, ""), e.hash) for e in commit.history]
    if all(_PLAIN.fullmatch(text) for iid, _, org, row in entries for text in (iid, org, row)):
        for iid, seq, org, row in entries:
            batch.execute(LEDGER_APPEND_PG, {"iid": iid, "seq": seq, "org": org, "row": row})
        return
    found = batch.execute(sql.ledger_tail).fetchone()  # read under the lock
    batch.executemany(sql.ledger_insert, ledger_rows(commit, found))
