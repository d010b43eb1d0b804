"""How the SQL store writes one commit: every row of it in one transaction, in an order that
takes the instance rows (and so their versions) first, then the ledger entries last, after the
history rows they chain.

The expected versions are checked by the UPDATE itself (``WHERE version = expected``); a row
that does not match is a :class:`xieshang.ConcurrencyConflict` naming the case. On PostgreSQL
a step of one instance writes its update, history rows and events in one statement that fails
on the server when the update found no row, and its ledger entry too when nothing else is
written (see ``Statements.step`` and :mod:`.batch`).

The ledger is appended after the head read in the transaction: on SQLite no other writer can
come between, since ``BEGIN IMMEDIATE`` took the write lock; on PostgreSQL the head is read
under an advisory lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from xieshang import Commit, ConcurrencyConflict, ConflictCase, EventRecord
from xieshang.shared import GENESIS, append_rows, iso

from .duties import write_duties
from .rows import InstanceRow, dump, history_values, insert_values, instance_row

if TYPE_CHECKING:
    from .batch import Batch
    from .store import SQLStore

__all__ = ["ledger_rows", "step_statement", "touched", "write", "write_rows"]

ANOTHER, CHILDREN = ConflictCase.ANOTHER_WRITER, ConflictCase.CHILDREN_CHANGED


def touched(commit: Commit) -> list[str]:
    """The instances whose rows a commit writes."""
    touched = [new.id for new in commit.inserts]
    touched += [new.id for new, _ in commit.updates]
    touched += [parent_id for parent_id, _ in commit.touch]
    touched += [t.instance_id for t in commit.consume_timers]
    return touched


OUTBOX_ROWS = 200  # events per insert: far below either database's limit of parameters
FOLDED_ROWS = 20  # history rows of a step PostgreSQL writes in one statement with its update


def event_texts(events: list[EventRecord]) -> list[str]:
    """The JSON of each event's body, as ``dump`` writes it. The events of one step share their
    ``data`` (one dict, last in every body): it is encoded once and spliced in."""
    shared: dict[int, str] = {}
    texts = []
    for v in events:
        body = v.body
        data = body.get("data")
        if not isinstance(data, dict) or next(reversed(body)) != "data":
            texts.append(dump(body))
            continue
        text = shared.get(id(data))
        if text is None:
            text = shared[id(data)] = dump(data)
        without = body.copy()
        del without["data"]
        head = dump(without)
        texts.append(f'{head[:-1]},"data":{text}}}' if len(body) > 1 else f'{{"data":{text}}}')
    return texts


def write(store: SQLStore, conn: Any, commit: Commit) -> list[InstanceRow]:
    """Write ``commit`` on ``conn`` in one transaction; the instance rows written (inserts
    first). The caller rolls back when this raises."""
    cur = conn.cursor()
    cur.execute(store._begin)
    rows = write_rows(store, cur, commit)
    cur.execute(store._end)
    return rows


def write_rows(
    store: SQLStore,
    cur: Any,
    commit: Commit,
    batch: Batch | None = None,
) -> list[InstanceRow]:
    """The statements of ``commit`` inside a transaction the caller began; the instance rows
    written. With a ``batch`` (PostgreSQL), the statements are only queued, each on a cursor of
    its own, and their row counts checked when the batch is sent; the ledger is then the
    batch's to append."""
    ex = cur.execute

    def expect(done: Any, fail: Callable[[], NoReturn]) -> None:
        if batch is not None:
            batch.expect(done, fail)
        elif done.rowcount != 1:
            fail()

    rows: list[InstanceRow] = []
    # PostgreSQL, pipelined: a step of one instance sends its update, history and events as
    # one statement, which fails on the server when the update finds no row to update
    folded = (
        batch is not None
        and len(commit.updates) == 1
        and not commit.inserts
        and 0 < len(commit.history) <= FOLDED_ROWS
        and len(commit.events) <= OUTBOX_ROWS
        and store.fault_hook is None
    )
    for new in commit.inserts:
        row = instance_row(new)
        ex(store._sql.insert, insert_values(row))
        rows.append(row)
    for new, expected in commit.updates:
        row = instance_row(new)
        if folded:
            assert batch is not None
            batch.execute_numbered(*step_statement(store, commit, row, expected))
        else:
            sql, values = _update(store, row, expected)
            done = ex(sql, (*values, new.id, expected))
            expect(done, _found(ex, store._sql.version, new.id, expected, ANOTHER))
        rows.append(row)
    for t in commit.consume_timers:
        done = ex(store._sql.consume, (t.instance_id, t.kind, t.trigger, iso(t.due_at),
                                       t.version, t.org))  # fmt: skip
        # another worker fired it first
        expect(done, _gone(t.instance_id, ConflictCase.TIMER_TAKEN))
    for parent_id, seen in commit.touch:
        done = ex(store._sql.touch, (parent_id, seen))
        expect(done, _found(ex, store._sql.children, parent_id, seen, CHILDREN))
    if store.fault_hook is not None:
        if batch is not None:
            batch.send()  # the update reaches the database before the fault
        store.fault_hook("after_instance_update")
    inserted = {new.id for new in commit.inserts}
    if commit.readers.keys() - inserted - {new.id for new, _ in commit.updates}:
        ex(store._sql.readers_epoch_bump)  # rewritten in place: other processes' caches drop them
    for instance_id, levels in commit.readers.items():
        if instance_id not in inserted:
            ex(store._sql.readers_clear, (instance_id,))
        if levels:
            cur.executemany(
                store._sql.readers_copy,
                [(who, level, instance_id) for who, level in sorted(levels.items())],
            )
    for e in commit.reseal:
        done = ex(store._sql.reseal, (dump(e.payload), dump(e.seal), e.instance_id, e.seq, e.hash))
        expect(done, _gone(e.instance_id, ANOTHER))  # the row is not the one the redaction read
    if not folded:
        for e in commit.history:
            ex(store._sql.history_insert, history_values(e))
        outbox = _outbox_values(commit)  # the events in statements of many rows each, in order
        for start in range(0, len(commit.events), OUTBOX_ROWS):
            count = min(OUTBOX_ROWS, len(commit.events) - start)
            ex(store._sql.outbox_rows(count), outbox[7 * start : 7 * (start + count)])
    for instance_id in commit.clear_timers:
        ex(store._sql.clear, (instance_id,))
    if commit.timers:
        cur.executemany(
            store._sql.timer_insert,
            [
                (t.instance_id, t.kind, t.trigger, iso(t.due_at), t.version, t.org, t.basis)
                for t in commit.timers
            ],
        )
    write_duties(store, cur, commit)
    if commit.history and not batch:
        _append_ledger(store, cur, commit)
    return rows


def _update(store: SQLStore, new: InstanceRow, expected: int) -> tuple[str, list[Any]]:
    """The update of an instance row from ``expected`` and the values it sets (its id and
    the expected version follow them)."""
    due = new.due_at
    # the row at the expected version is the one cached at it (versions name contents), so its
    # columns that did not change and have an index, or a moment to spell, can be left out
    held = store._cache.peek(new.id)
    same_state = same_due = same_entered = False
    if held is not None and held.version == expected:
        same_state, same_due = held.state == new.state, held.due_at == due
        same_entered = held.entered_at == new.entered_at
    values = {
        "workflow_version": new.workflow_version, "definition_hash": new.definition_hash,
        "state": new.state, "data": new.data, "version": new.version,
        "updated_at": iso(new.updated_at),
        "entered_at": None if same_entered else iso(new.entered_at),
        "final": new.final, "due_at": iso(due) if due is not None else None,
        "overdue": new.overdue, "head_hash": new.head_hash, "due_basis": new.due_basis,
        "suspended_at": iso(new.suspended_at) if new.suspended_at is not None else None,
    }  # fmt: skip
    if same_due:
        del values["due_at"]
    if same_state:
        del values["state"]
    if same_entered:
        del values["entered_at"]
    return store._sql.updates[same_state, same_due, same_entered], [*values.values()]


def step_statement(
    store: SQLStore, commit: Commit, new: InstanceRow, expected: int, *, ledger: bool = False
) -> tuple[str, list[Any]]:
    """PostgreSQL: the one statement of a step of one instance (its update, history rows and
    events; with ``ledger``, the ledger entry of its one history row too) and its values. Its
    marks are numbered: it is sent on a ``psycopg.RawCursor``."""
    update, values = _update(store, new, expected)
    sql = store._sql.step(update, len(commit.history), len(commit.events), ledger=ledger)
    params = [*values, new.id, expected]
    for e in commit.history:
        params.extend(history_values(e))
    params.extend(_outbox_values(commit))
    if ledger:
        [e] = commit.history
        params += (e.instance_id, e.seq, new.org, e.hash)
    return sql, params


def _outbox_values(commit: Commit) -> list[Any]:
    """The values of the outbox rows of a commit's events, row after row, in their order."""
    at = commit.history[0].recorded_at if commit.history else iso(datetime.now(UTC))
    texts = event_texts(commit.events)
    values: list[Any] = []
    for v, text in zip(commit.events, texts, strict=True):
        values += (v.id, v.instance_id, v.seq, v.type, v.org, text, at)
    return values


# what a row count other than one means, each read only when it happens


def _found(
    ex: Any, sql: str, iid: str, expected: int, case: ConflictCase
) -> Callable[[], NoReturn]:
    """The conflict of a row not at the count it was expected at: the count ``sql`` finds."""

    def fail() -> NoReturn:
        found = ex(sql, (iid,)).fetchone()
        raise ConcurrencyConflict(iid, expected, found[0] if found else None, case=case)

    return fail


def _gone(iid: str, case: ConflictCase) -> Callable[[], NoReturn]:
    """The conflict of a row that is no longer there as it was read."""

    def fail() -> NoReturn:
        raise ConcurrencyConflict(iid, case=case)

    return fail


def _append_ledger(store: SQLStore, cur: Any, commit: Commit) -> None:
    """Append the ledger entries of a commit's history rows after the head read here (the
    read and a plain insert cost SQLite less than one insert that checks the head itself,
    which reads the table it inserts into through a temporary copy)."""
    sql, ex = store._sql, cur.execute
    if sql.ledger_lock_tail:
        ex(sql.ledger_lock_tail)
        cur.nextset()  # past the lock's result, to the head's
        found = cur.fetchone()
    else:
        found = ex(sql.ledger_tail).fetchone()
    rows = ledger_rows(commit, found)
    if len(rows) == 1:
        ex(sql.ledger_insert, rows[0])
    else:
        cur.executemany(sql.ledger_insert, rows)


def ledger_rows(commit: Commit, head: Any) -> list[tuple[Any, ...]]:
    """The ledger rows of a commit's history rows after ``head`` (a row of position and hash
    as read, or None when the ledger is empty)."""
    return append_rows(commit, (int(head[0]), str(head[1])) if head else (0, GENESIS))
