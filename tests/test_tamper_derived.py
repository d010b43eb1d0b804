"""What verify derives from the history: the instance row, its events, its timers, its
definition and the roles of its rows. Each tamper is plain SQL on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict

import pytest
from store_contract import propose, sql_connection, to_filed

from xieshang import Engine, FixedClock, HistoryEntry, Registry
from xieshang.adapters.sql import open_store
from xieshang.shared import canonical_json


@pytest.fixture
def engine(sql_url: str, registry: Registry, clock: FixedClock) -> Iterator[Engine]:
    with open_store(sql_url) as store:
        yield Engine(store, registry, clock)


def tamper(url: str, sql: str, params: tuple[object, ...]) -> None:
    with sql_connection(url) as (conn, mark):
        conn.execute(sql.replace("?", mark), params)


def filed(engine: Engine) -> str:
    iid = propose(engine, "被改的").id
    to_filed(engine, iid)
    assert engine.verify() == []
    return iid


def kinds(engine: Engine, iid: str) -> list[str]:
    return [p["kind"] for p in engine.verify(iid)]


@pytest.mark.parametrize(
    ("column", "value", "kind"),
    [
        ("parent_id", "someone-else", "moved-parent"),
        ("unit", "U9", "moved-unit"),
        ("final", True, "column-differs"),
        ("overdue", True, "column-differs"),
        ("workflow_version", 7, "column-differs"),
        ("created_at", "2020-01-01T00:00:00.000000+00:00", "column-differs"),
    ],
)
def test_an_instance_column_the_history_contradicts_is_found(
    engine: Engine, sql_url: str, column: str, value: object, kind: str
) -> None:
    """A column of the instance row rewritten alone is named, with what the history gives."""
    iid = filed(engine)
    tamper(sql_url, f"UPDATE instances SET {column} = ? WHERE id = ?", (value, iid))
    engine.store.load(iid, fresh=True)
    found = engine.verify(iid)
    assert [p["kind"] for p in found] == [kind]
    assert column in found[0]["message"]


def test_a_units_handling_moved_to_another_unit_is_found(engine: Engine, sql_url: str) -> None:
    """A unit's handling child re-bound to another unit in its instance row: the creation row
    recorded the unit, so the move is named."""
    from store_contract import OFFICE

    iid = filed(engine)
    engine.fire(iid, "assign", OFFICE, {"mode": "sole", "units": ["U1"]})
    [child] = engine.children(iid)
    assert engine.store.history(child.id)[0].unit == "U1"
    tamper(sql_url, "UPDATE instances SET unit = ? WHERE id = ?", ("U2", child.id))
    engine.store.load(child.id, fresh=True)
    [found] = engine.verify(child.id)
    assert found["kind"] == "moved-unit" and "'U2'" not in found["message"]
    assert "U2" in found["message"] and "U1" in found["message"]


def test_an_instance_the_system_started_for_an_org_verifies_and_its_move_is_found(
    engine: Engine, sql_url: str
) -> None:
    """The system (an actor of no org) starts a unit's handling for an org: its creation row
    records that org, so the instance verifies, and moving it to another org is named."""
    from xieshang import SYSTEM

    child = engine.start(
        "proposal_handling", {"title": "直接交办", "role": "sole"}, SYSTEM, org="O1", unit="U1"
    )
    assert engine.store.history(child.id)[0].actor["org"] == "O1"
    assert engine.verify(child.id) == []
    tamper(sql_url, "UPDATE instances SET org = ? WHERE id = ?", ("O2", child.id))
    engine.store.load(child.id, fresh=True)
    assert kinds(engine, child.id) == ["moved-org"]


def overdue_then_extended(engine: Engine, clock: FixedClock) -> str:
    """A unit's handling that went overdue, then an approved extension moved its due date past
    now (a parent_update row that lifts the overdue mark); returns the child's id."""
    from store_contract import OFFICE, UNIT

    iid = filed(engine)
    engine.fire(iid, "assign", OFFICE, {"mode": "sole", "units": ["U1"]})
    [child] = engine.children(iid)
    engine.fire(child.id, "acknowledge", UNIT, {"contact_person": "联系人"})
    engine.fire(child.id, "contact_proposer", UNIT, {"mode": "phone"})
    clock.advance(days=100)
    engine.tick()
    assert engine.get(child.id).overdue
    engine.fire(iid, "request_extension", UNIT, {"new_due": "2024-08-30"}, reason="调研")
    engine.fire(iid, "approve_extension", OFFICE)
    extended = engine.get(child.id)
    assert not extended.overdue and extended.data["due"] == "2024-08-30"
    return child.id


def test_a_parent_update_that_lifts_the_overdue_mark_replays(
    engine: Engine, clock: FixedClock
) -> None:
    """The replay applies the moved deadline and lifts the mark as the update did, and derives
    the update's deadline_changed event: the child verifies."""
    child = overdue_then_extended(engine, clock)
    rows = engine.store.history(child)
    assert rows[-1].trigger == "parent_update"
    assert [e.type for e in engine.store.outbox(child) if e.seq == rows[-1].seq] == [
        "xieshang.instance.deadline_changed"
    ]
    assert engine.verify() == []


def test_a_rewritten_event_of_a_parent_update_is_forged(
    engine: Engine, clock: FixedClock, sql_url: str
) -> None:
    """Events of the rows the engine writes on its own are derived and held like the others."""
    child = overdue_then_extended(engine, clock)
    last = engine.store.history(child)[-1].seq
    [event] = [e for e in engine.store.outbox(child) if e.seq == last]
    body = {**event.body, "data": {**event.body["data"], "due_at": "2030-01-01T00:00:00Z"}}
    tamper(sql_url, "UPDATE outbox SET body = ? WHERE event_id = ?", (json.dumps(body), event.id))
    assert [(p["seq"], p["kind"]) for p in engine.verify(child)] == [(last, "forged-event")]


def test_an_event_rewritten_in_the_outbox_is_forged(engine: Engine, sql_url: str) -> None:
    """The relay would sign a rewritten event: verify names it forged, with its row."""
    iid = filed(engine)
    event = engine.store.outbox(iid)[1]
    body = {**event.body, "data": {**event.body["data"], "to": "closed"}}
    tamper(sql_url, "UPDATE outbox SET body = ? WHERE event_id = ?", (json.dumps(body), event.id))
    found = engine.verify(iid)
    assert [(p["seq"], p["kind"]) for p in found] == [(event.seq, "forged-event")]


def test_an_event_inserted_or_deleted_is_found(engine: Engine, sql_url: str) -> None:
    """An event no row announced is forged; an announced one that is gone is removed."""
    iid = filed(engine)
    event = engine.store.outbox(iid)[0]
    tamper(sql_url, "DELETE FROM outbox WHERE event_id = ?", (event.id,))
    assert kinds(engine, iid) == ["removed-event"]
    body = {**event.body, "id": f"{iid}-2-9"}
    tamper(
        sql_url,
        "INSERT INTO outbox (event_id, instance_id, seq, type, org, body, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event.id, iid, event.seq, event.type, event.org, json.dumps(event.body), "x"),
    )
    assert kinds(engine, iid) == []
    tamper(
        sql_url,
        "INSERT INTO outbox (event_id, instance_id, seq, type, org, body, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (body["id"], iid, 2, event.type, event.org, json.dumps(body), "x"),
    )
    assert kinds(engine, iid) == ["forged-event"]


def test_a_timer_nothing_set_is_forged(engine: Engine, sql_url: str) -> None:
    """A timer row inserted to fire a step (here: close the proposal) is found."""
    iid = filed(engine)
    tamper(
        sql_url,
        'INSERT INTO timers (instance_id, kind, "trigger", due_at, version, org) '
        "VALUES (?, ?, ?, ?, ?, ?)",
        (iid, "timer", "close", "2024-03-02T00:00:00.000000+00:00", 4, "gy"),
    )
    assert kinds(engine, iid) == ["forged-timer"]


def test_a_loosened_stored_definition_is_found(engine: Engine, sql_url: str) -> None:
    """A stored definition body edited to let members do the committee's steps no longer
    matches its hash."""
    iid = filed(engine)
    content_hash = engine.get(iid).definition_hash
    body = json.loads(engine.store.load_definition(content_hash) or "{}")
    for t in body["transitions"]:
        t["roles"] = sorted({*t["roles"], "member"})
    tamper(
        sql_url,
        "UPDATE definitions SET body = ? WHERE hash = ?",
        (canonical_json(body), content_hash),
    )
    assert kinds(engine, iid) == ["definition-altered"]


def test_a_step_reattributed_to_a_role_the_definition_refuses_is_found(
    engine: Engine, sql_url: str
) -> None:
    """Rewriting who filed a proposal (a member instead of the committee) and recomputing the
    chain passes the hashes, but the replay re-judges the role."""
    iid = filed(engine)
    rows = engine.history(iid)
    prev = ""
    for row in rows:
        body = asdict(row)
        if row.trigger == "file":
            body["actor"] = {"id": "m1", "roles": ["member"], "org": "gy"}
            body["role"] = "member"
        body["prev_hash"] = prev
        new = HistoryEntry(**body).sealed()
        tamper(
            sql_url,
            "UPDATE history SET actor = ?, role = ?, prev_hash = ?, hash = ? "
            "WHERE instance_id = ? AND seq = ?",
            (json.dumps(new.actor), new.role, new.prev_hash, new.hash, iid, new.seq),
        )
        prev = new.hash
    tamper(sql_url, "UPDATE instances SET head_hash = ? WHERE id = ?", (prev, iid))
    assert kinds(engine, iid) == ["role-not-allowed"]
