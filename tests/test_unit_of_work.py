"""One transaction with the host: its rows and the engine's steps commit together or not at all.

The host keeps its own table in the engine's database and hands its connection, inside its
transaction, to ``Engine.unit_of_work``: on SQLite and PostgreSQL, through SQLAlchemy (a
Connection and a Session) and through the bare drivers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from store_contract import MEMBER, propose, table_counts

from xieshang import (
    ConcurrencyConflict,
    Engine,
    FixedClock,
    NotFound,
    Query,
    Registry,
    TransitionNotAllowed,
    Usage,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store


@pytest.fixture
def engine(sql_url: str, registry: Registry, clock: FixedClock) -> Iterator[Engine]:
    with open_store(sql_url) as store:
        yield Engine(store, registry, clock)


@pytest.fixture
def host(sql_url: str) -> Iterator[sa.Engine]:
    """The host's own SQLAlchemy engine on the same database, with one table of its own."""
    url = make_url(sql_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    else:
        url = url.set(drivername="sqlite")
    host = sa.create_engine(url)
    with host.begin() as conn:
        conn.execute(sa.text("CREATE TABLE attachments (id TEXT PRIMARY KEY, instance_id TEXT)"))
    yield host
    host.dispose()


def attachments(host: sa.Engine) -> list[tuple[str, str]]:
    with host.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, instance_id FROM attachments ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


def host_step(conn: Any, engine: Engine, name: str) -> str:
    """The host's unit: an attachment row of its own and a proposal started and submitted."""
    with engine.unit_of_work(conn) as uow:
        started = propose(uow, name)
        uow.fire(started.id, "submit", MEMBER, {"category": "economy"})
        assert uow.get(started.id, MEMBER).state == "submitted"  # its own writes, uncommitted
        # and its queries, on the host's connection, as it is
        found = uow.query(Query(workflow="proposal", state="submitted", limit=500)).items
        assert started.id in [i.id for i in found]
    conn.execute(
        sa.text("INSERT INTO attachments (id, instance_id) VALUES (:a, :i)"),
        {"a": f"att-{name}", "i": started.id},
    )
    return started.id


def test_a_host_row_and_engine_steps_commit_together(
    engine: Engine, host: sa.Engine, sql_url: str
) -> None:
    before = table_counts(sql_url)
    with host.begin() as conn:
        iid = host_step(conn, engine, "同一事务")
    assert attachments(host) == [("att-同一事务", iid)]
    got = engine.get(iid, MEMBER)
    assert (got.state, got.version) == ("submitted", 2)
    assert [h.trigger for h in engine.history(iid)] == ["start", "submit"]
    after = table_counts(sql_url)
    assert after["history"] - before["history"] == 2
    assert after["ledger"] - before["ledger"] == 2
    assert after["outbox"] > before["outbox"]
    assert engine.verify() == []


def test_a_host_rollback_takes_the_engine_steps_with_it(
    engine: Engine, host: sa.Engine, sql_url: str
) -> None:
    kept = propose(engine, "之前的").id  # committed on its own, and cached by the store
    before = table_counts(sql_url)
    with pytest.raises(RuntimeError, match="the host failed"), host.begin() as conn:
        iid = host_step(conn, engine, "回滚")
        raise RuntimeError("the host failed after both were written")
    assert attachments(host) == []
    assert table_counts(sql_url) == before
    with pytest.raises(NotFound):
        engine.get(iid, MEMBER)
    assert engine.verify() == []
    # the store goes on from the ledger as it is: no gap where the rolled-back rows were
    engine.fire(kept, "submit", MEMBER, {"category": "economy"})
    positions = [e.position for e in engine.store.ledger()]
    assert positions == list(range(1, len(positions) + 1))
    assert engine.verify() == []


def test_a_refused_command_leaves_the_host_transaction_usable(
    sql_url: str, registry: Registry, clock: FixedClock, host: sa.Engine
) -> None:
    """A command the engine refuses, and one the database refuses (the instance id exists: its
    insert fails midway), roll back to their savepoints; the host's row and the steps before
    and after them commit."""
    ids = iter(["p1", "p1", "p2"])
    with open_store(sql_url) as store:
        engine = Engine(store, registry, clock, ids=lambda: next(ids))
        with host.begin() as conn:
            with engine.unit_of_work(conn) as uow:
                first = propose(uow, "拒绝之后")
                with pytest.raises(TransitionNotAllowed):
                    uow.fire(first.id, "start_review", MEMBER)  # not from a draft
                with pytest.raises(ConcurrencyConflict):
                    propose(uow, "同一编号")  # id p1 again: the database refuses the row
                uow.fire(first.id, "submit", MEMBER, {"category": "economy"})
                second = propose(uow, "再一个")
            conn.execute(sa.text("INSERT INTO attachments VALUES ('a1', :i)"), {"i": first.id})
        assert attachments(host) == [("a1", "p1")]
        assert engine.get("p1", MEMBER).state == "submitted"
        assert [h.trigger for h in engine.history("p1")] == ["start", "submit"]
        assert engine.get(second.id, MEMBER).data["title"] == "再一个"
        assert engine.verify() == []


def test_a_session_is_accepted(engine: Engine, host: sa.Engine) -> None:
    with Session(host) as session, session.begin():
        with engine.unit_of_work(session) as uow:
            iid = propose(uow, "会话").id
        session.execute(sa.text("INSERT INTO attachments VALUES ('s1', :i)"), {"i": iid})
    assert attachments(host) == [("s1", iid)]
    assert engine.get(iid, MEMBER).state == "draft"


def test_the_bare_driver_connections_are_accepted(engine: Engine, sql_url: str) -> None:
    url = make_url(sql_url)
    if url.get_backend_name() == "sqlite":
        raw: Any = sqlite3.connect(str(url.database))  # the module's implicit transactions
    else:
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        raw = psycopg.connect(plain)  # autocommit off: a transaction opens with the first statement
    try:
        with engine.unit_of_work(raw) as uow:
            iid = propose(uow, "驱动").id
        raw.rollback()
        with pytest.raises(NotFound):
            engine.get(iid, MEMBER)
        with engine.unit_of_work(raw) as uow:
            iid = propose(uow, "驱动").id
        raw.commit()
        assert engine.get(iid, MEMBER).state == "draft"
    finally:
        raw.close()


def test_an_ended_unit_of_work_refuses(engine: Engine, host: sa.Engine) -> None:
    with host.begin() as conn, engine.unit_of_work(conn) as uow:
        iid = propose(uow, "结束").id
    with pytest.raises(Usage, match="unit of work has ended"):
        uow.get(iid, MEMBER)
    assert engine.get(iid, MEMBER).state == "draft"


def test_what_cannot_join_is_refused_and_writes_nothing(
    engine: Engine, sql_url: str, tmp_path: Any, registry: Registry, clock: FixedClock
) -> None:
    before = table_counts(sql_url)
    memory = Engine(MemoryStore(), registry, clock)
    with pytest.raises(Usage, match="needs the SQL store"), memory.unit_of_work(object()):
        pass
    with pytest.raises(Usage, match="SQLAlchemy Connection or Session"), engine.unit_of_work(""):
        pass
    other = sqlite3.connect(tmp_path / "other.db")
    try:
        wrong = r"one transaction needs one database|another kind of database"
        with pytest.raises(Usage, match=wrong), engine.unit_of_work(other):
            pass
    finally:
        other.close()
    url = make_url(sql_url)
    if url.get_backend_name() == "sqlite":
        auto: Any = sqlite3.connect(str(url.database), isolation_level=None)
    else:
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        auto = psycopg.connect(plain, autocommit=True)
    try:
        autocommit = "autocommit mode and no transaction is open"
        with pytest.raises(Usage, match=autocommit), engine.unit_of_work(auto):
            pass
    finally:
        auto.close()
    assert table_counts(sql_url) == before
