"""PostgreSQL writes a step in one or two round trips, the ledger's hash made on the server.

The server writes the canonical text of a ledger entry itself when no text in it needs
escaping in JSON; otherwise the head is read back and the hash made here. Either way the
stored hash is the one :meth:`LedgerEntry.compute_hash` gives, and the ledger verifies.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from store_contract import CHAIR, COMMITTEE, MEMBER, bump, propose, sql_connection, to_filed

from xieshang import Actor, Commit, ConcurrencyConflict, ConflictCase, Engine, Query, Registry
from xieshang.adapters.sql import SQLStore, open_store
from xieshang.adapters.sql import readers as sql_readers
from xieshang.adapters.sql.batch import _PLAIN, Batch
from xieshang.adapters.sql.rows import history_values
from xieshang.ledger import LedgerEntry
from xieshang.records import iso

pytestmark = pytest.mark.postgres

# any text PostgreSQL stores: no NUL, no lone surrogate
ORGS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=12,
)


@pytest.fixture
def store(pg_database: str) -> Iterator[SQLStore]:
    with open_store(pg_database) as store:
        yield store


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(org=ORGS)
@example(org="gy")  # the server makes the hash
@example(org="ab-1.2_c:d e~!")  # printable ASCII, still the server
@example(org="市政协")  # not ASCII: made here
@example(org='a"b')
@example(org="a\\b")
@example(org="tab\there\n")
def test_every_ledger_hash_is_the_canonical_one(
    store: SQLStore, registry: Registry, org: str
) -> None:
    """Whichever side makes it, each entry's hash is that of its canonical text, and the
    ledger stays one chain without a gap."""
    engine = Engine(store, registry)
    member = Actor.of("m1", "member", org=org)
    head = store.ledger_head()[0]
    iid = propose(engine, "账本", by=member).id
    engine.fire(iid, "submit", member, {"category": "society"})
    added = store.ledger(after=head)
    assert [(e.instance_id, e.seq, e.org) for e in added] == [(iid, 1, org), (iid, 2, org)]
    for e in added:
        again = LedgerEntry(e.position, e.instance_id, e.seq, e.org, e.row_hash, e.prev_hash)
        assert e.hash == again.compute_hash(), (org, _PLAIN.fullmatch(org) is not None)
    whole = store.ledger(after=max(head - 1, 0))
    assert [e.position for e in whole] == list(range(max(head, 1), head + 3))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(whole))


class _Held(Exception):
    pass


def held(store: SQLStore, fire: Callable[[], object]) -> Commit:
    """The commit ``fire`` makes on ``store``, kept instead of written."""
    kept: list[Commit] = []
    apply = store.apply

    def hold(commit: Commit) -> None:
        kept.append(commit)
        raise _Held

    store.apply = hold  # type: ignore[method-assign]
    try:
        with pytest.raises(_Held):
            fire()
    finally:
        store.apply = apply  # type: ignore[method-assign]
    return kept[0]


def test_a_refused_version_writes_nothing_of_the_batch(
    store: SQLStore, pg_database: str, registry: Registry
) -> None:
    """A commit built on a version another writer moved on from is refused when its batch is
    sent, by the row count of its UPDATE: the rows queued with it are rolled back (no history
    row, event or ledger entry) and the instance is as the other writer left it."""
    engine = Engine(store, registry)
    iid = propose(engine, "过期").id
    to_filed(engine, iid)
    stale = held(store, lambda: engine.fire(iid, "flag_key", CHAIR, {"lead_leader": "stale"}))
    with sql_connection(pg_database) as (conn, _):  # another writer, leaving no history row
        conn.execute("UPDATE instances SET version = version + 1 WHERE id = %s", (iid,))
    head, after = store.ledger_head(), store.load(iid, fresh=True)
    rows, events = store.history(iid), store.outbox(iid)
    with pytest.raises(ConcurrencyConflict) as refused:
        store.apply(stale)
    assert refused.value.instance_id == iid
    assert refused.value.case == ConflictCase.ANOTHER_WRITER
    assert store.ledger_head() == head
    assert store.history(iid) == rows
    assert store.outbox(iid) == events
    assert store.load(iid, fresh=True) == after
    assert (refused.value.expected, refused.value.actual) == (4, 5)


def test_a_step_of_one_instance_reads_no_row_count_before_its_commit(
    store: SQLStore, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step of one instance goes to the server in one round trip: its version is checked on
    the server. A commit of two instances reads its row counts first, one round trip more."""
    engine = Engine(store, registry)
    iid = propose(engine, "一次").id
    to_filed(engine, iid)
    sent: list[int] = []
    send = Batch.send

    def counted(batch: Batch) -> None:
        sent.append(len(batch.checks))
        send(batch)

    monkeypatch.setattr(Batch, "send", counted)
    engine.fire(iid, "flag_key", CHAIR, {"lead_leader": "一次"})
    assert sent == []
    assert engine.verify(iid) == []
    a, b = propose(engine, "甲"), propose(engine, "乙")
    (new_a, entry_a, _), (new_b, entry_b, _) = bump(a), bump(b)
    both = Commit(updates=[(new_a, a.version), (new_b, b.version)], history=[entry_a, entry_b])
    store.apply(both)
    assert sent == [2]  # the two versions, read before the ledger's lock is asked for
    stored = [store.load(i.id, fresh=True) for i in (a, b)]
    assert [i.version if i else None for i in stored] == [2, 2]


def test_a_step_that_writes_only_its_rows_is_one_statement_of_its_own(
    store: SQLStore, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that writes its instance row, one history row and its events, and nothing else,
    is one statement (its ledger entry in it), a transaction by itself: no BEGIN, no COMMIT.
    A step that also sets timers goes as before, in a transaction of several statements. Both
    leave the instance's chain and the ledger whole; a stale one of either kind writes
    nothing."""
    engine = Engine(store, registry)
    iid = propose(engine, "一条").id
    sent: list[str] = []
    execute, execute_raw = psycopg.Connection.execute, psycopg.RawCursor.execute

    def counted(conn: psycopg.Connection, query: str, *args: object, **kw: object) -> object:
        sent.append(str(query).split()[0])
        return execute(conn, query, *args, **kw)  # type: ignore[arg-type]

    def counted_raw(cur: psycopg.RawCursor, query: str, *args: object, **kw: object) -> object:
        sent.append(str(query).split()[0])
        return execute_raw(cur, query, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(psycopg.Connection, "execute", counted)
    monkeypatch.setattr(psycopg.RawCursor, "execute", counted_raw)
    to_filed(engine, iid)  # submit sets the review's deadline: its timers too
    assert sent[0] == "BEGIN" and sent.count("BEGIN") == sent.count("COMMIT") > 0
    sent.clear()
    engine.fire(iid, "flag_key", CHAIR, {"lead_leader": "一条"})
    assert sent == ["WITH"]
    assert engine.verify() == []  # the chain, the replay and the ledger
    stale = store.load(iid, fresh=True)
    assert stale is not None
    head = store.ledger_head()
    ahead, entry, _ = bump(stale)
    sent.clear()
    with pytest.raises(ConcurrencyConflict) as refused:  # expects a version the row never had
        store.apply(Commit(updates=[(ahead, stale.version + 5)], history=[entry]))
    # the statement, then the read of the version the row is at, which the conflict names
    assert sent == ["WITH", "SELECT"] and refused.value.case is ConflictCase.ANOTHER_WRITER
    assert (refused.value.expected, refused.value.actual) == (stale.version + 5, stale.version)
    assert store.ledger_head() == head
    assert [e.seq for e in store.history(iid)] == list(range(1, stale.version + 1))
    assert store.load(iid, fresh=True) == stale


def test_a_query_is_prepared_at_its_first_use(store: SQLStore, registry: Registry) -> None:
    """A query's select is prepared on the connection the first time it runs; a second page
    of the same shape with other values reuses it and reads its own rows."""
    engine = Engine(store, registry)
    mine = [propose(engine, f"准备{k}").id for k in range(3)]
    conn = store._get()
    try:
        before = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
    finally:
        store._put(conn)
    first = store.query(Query(workflow="proposal", states=["draft"], limit=2))
    after = store.query(
        Query(
            workflow="proposal",
            states=["draft"],
            limit=2,
            after=(iso(first[-1].created_at), first[-1].id),
        )
    )
    assert [i.id for i in first + after] == mine
    conn = store._get()
    try:
        texts = [
            r[0] for r in conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()
        ]
    finally:
        store._put(conn)
    assert len(texts) > before
    assert any("FROM instances" in t and "LIMIT" in t for t in texts)


def test_refused_batches_leave_no_statement_believed_prepared(
    store: SQLStore, pg_database: str, registry: Registry
) -> None:
    """A batch the server refuses skips the statements queued after the failure. The driver
    prepares a statement at its fifth use, and may count one prepared at a use the server
    skipped. Here another writer holds the refused batch's history row uncommitted, so that
    every statement of the batch is queued before the server refuses it, at the other's
    commit. Refused batch after refused batch on one connection, then good steps on it: they
    are written, not refused for a statement the server never prepared."""
    engine = Engine(store, registry)
    with open_store(pg_database) as mine:
        own = Engine(mine, registry)

        def refused(k: int) -> None:
            iid = propose(engine, f"失败{k}").id
            engine.fire(iid, "submit", MEMBER, {"category": "society"})
            kept = held(store, lambda: engine.fire(iid, "start_review", COMMITTEE))
            outcome: list[BaseException] = []

            def write() -> None:
                try:
                    mine.apply(kept)
                except BaseException as e:  # reported below
                    outcome.append(e)

            with sql_connection(pg_database) as (conn, _):
                conn.execute("BEGIN")
                # the same row, not yet committed: the batch waits on its key
                conn.execute(mine._sql.history_insert, history_values(kept.history[0]))
                writer = threading.Thread(target=write)
                writer.start()
                time.sleep(0.3)  # the batch is sent and waits for the row's key
                conn.execute("COMMIT")
                writer.join(30)
            [refusal] = outcome
            assert isinstance(refusal, ConcurrencyConflict)
            assert isinstance(refusal.__cause__, psycopg.errors.UniqueViolation)

        refused(0)  # the connection's first rollback, before it holds anything prepared
        first = propose(own, "之前").id
        own.fire(first, "submit", MEMBER, {"category": "society"})  # each statement used once
        for k in range(1, 6):  # the fifth use of those queued after the failure is skipped
            refused(k)
        iid = propose(own, "之后").id
        assert to_filed(own, iid).state == "filed"
        assert [r.trigger for r in own.history(iid)] == ["start", "submit", "start_review", "file"]
        assert own.verify(iid) == []  # (the refused ones hold a row no step wrote)


def test_an_inbox_is_read_from_one_plan_for_any_values(
    store: SQLStore, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inbox's select (merged exact ranges of indexes) runs on the generic plan of its
    prepared statement from its first run, and so does a scoped page whose principals all read
    few instances (a walk along their reader rows); a scoped page whose principals read many is
    planned for its values (how many rows they read decides its plan). Each page holds what
    the same select gives run plainly."""
    engine = Engine(store, registry)
    mine = [propose(engine, f"待办{k}").id for k in range(3)]
    for iid in mine[:2]:
        engine.fire(iid, "submit", MEMBER, {"category": "society"})
    inbox = engine.query(Query(actionable_by=COMMITTEE, limit=10))
    again = engine.query(Query(actionable_by=COMMITTEE, limit=10))
    assert [i.id for i in inbox.items] == [i.id for i in again.items] == mine[:2]
    scoped = Query(workflow="proposal", limit=10)
    for _ in range(2):
        assert [i.id for i in engine.query(scoped, actor=MEMBER).items] == mine
    monkeypatch.setattr(sql_readers, "FEW_FILTERED", 0)  # now each principal reads many
    for _ in range(2):
        assert [i.id for i in engine.query(scoped, actor=MEMBER).items] == mine
    conn = store._get()
    try:
        plans = conn.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%instances%' AND statement LIKE '%LIMIT%'"
        ).fetchall()
    finally:
        store._put(conn)
    inboxes = [(g, c) for text, g, c in plans if "definition_hash" in text.split("WHERE", 1)[1]]
    walks = [(g, c) for text, g, c in plans if "walk0" in text]
    others = [
        (g, c)
        for text, g, c in plans
        if "walk0" not in text and "definition_hash" not in text.split("WHERE", 1)[1]
    ]
    assert inboxes and all(g >= 2 and c == 0 for g, c in inboxes), plans
    assert walks and all(g >= 2 and c == 0 for g, c in walks), plans
    assert others and all(c >= 1 for _, c in others), plans
