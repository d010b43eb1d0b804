"""Suspension and repair: a suspended instance refuses every command, naming the suspension and
``resume``; its timers hold and its deadline moves by the time it was held; ``set_state``
repairs a state by hand. Each is one audited row by an admin, replayed by verify."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from xieshang import (
    Actor,
    Engine,
    FixedClock,
    Forbidden,
    InvalidPayload,
    Registry,
    TransitionNotAllowed,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.workflows import load_registry

FIXTURES = Path(__file__).parent / "fixtures" / "versions"
ORG = "guiyang"
MEMBER = Actor.of("m1", "member", org=ORG)
OFFICE = Actor.of("o1", "office", org=ORG)
ADMIN = Actor.of("a1", "admin", org=ORG)
# 10 working days from Friday 2024-03-01 end with Friday 2024-03-15, China time
DUE = datetime(2024, 3, 15, 16, 0, tzinfo=UTC)
REMIND = datetime(2024, 3, 12, 16, 0, tzinfo=UTC)  # 2 working days before: the start of 03-14


@pytest.fixture(scope="module")
def versions() -> Registry:
    return load_registry([FIXTURES])


@pytest.fixture
def engine(sql_url: str, versions: Registry, clock: FixedClock) -> Iterator[Engine]:
    with open_store(sql_url) as store:
        yield Engine(store, versions, clock, pins={ORG: {"suggestion": 1}})


def reviewing(engine: Engine) -> str:
    iid = engine.start("suggestion", {"title": "社区养老"}, MEMBER).id
    engine.fire(iid, "accept", OFFICE)
    return iid


def pending(engine: Engine, iid: str) -> list[tuple[str, datetime]]:
    return sorted((t.kind, t.due_at) for t in engine.store.timers_of(iid))


def test_a_suspended_instance_refuses_commands_and_its_clock_stops(
    engine: Engine, clock: FixedClock
) -> None:
    """While suspended: every command refused naming ``resume``, no timer fires. On resume the
    deadline and the pending timers move by the seven days it was held; verify passes."""
    iid = reviewing(engine)
    assert engine.get(iid).due_at == DUE
    assert pending(engine, iid) == [("deadline", DUE), ("reminder", REMIND)]
    held = engine.suspend(iid, ADMIN, "等待信访调查结果")
    assert held.suspended_at == clock.now() and pending(engine, iid) == []
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(iid, "answer", OFFICE, {"answer": "已采纳"})
    assert err.value.allowed == ["resume"]
    assert err.value.message == (
        f"'answer' refused: instance {iid} is suspended since 2024-03-01T09:00:00.000000+00:00; "
        "nothing may act on it until an admin resumes it (allowed: resume)"
    )
    clock.advance(days=7)
    assert engine.tick(datetime(2024, 3, 30, tzinfo=UTC)).fired == 0
    engine.resume(iid, ADMIN, "调查完毕")
    back = engine.get(iid)
    assert back.suspended_at is None and back.due_at == datetime(2024, 3, 22, 16, tzinfo=UTC)
    assert pending(engine, iid) == [
        ("deadline", datetime(2024, 3, 22, 16, tzinfo=UTC)),
        ("reminder", datetime(2024, 3, 19, 16, tzinfo=UTC)),
    ]
    rows = engine.history(iid)
    assert [(r.trigger, r.role, r.visibility, r.reason) for r in rows[-2:]] == [
        ("suspend", "admin", "internal", "等待信访调查结果"),
        ("resume", "admin", "internal", "调查完毕"),
    ]
    assert rows[-1].payload == {
        "suspended_at": "2024-03-01T09:00:00.000000+00:00",
        "held_seconds": 604800.0,
    }
    assert engine.verify() == []
    engine.fire(iid, "answer", OFFICE, {"answer": "已采纳"})
    assert engine.get(iid).state == "answered" and engine.verify() == []


def test_suspend_and_resume_are_refused_when_they_make_no_sense(engine: Engine) -> None:
    """Not an admin, no reason, twice, resuming what runs, suspending what has ended: refused,
    each naming what is allowed, and nothing written."""
    iid = reviewing(engine)
    with pytest.raises(Forbidden) as forbidden:
        engine.suspend(iid, OFFICE, "x")
    assert forbidden.value.allowed == ["admin"]
    with pytest.raises(InvalidPayload) as no_reason:
        engine.suspend(iid, ADMIN, " ")
    assert no_reason.value.errors == [{"field": "reason", "error": "required"}]
    with pytest.raises(TransitionNotAllowed) as not_held:
        engine.resume(iid, ADMIN, "x")
    assert not_held.value.allowed == ["suspend"]
    engine.suspend(iid, ADMIN, "核查")
    with pytest.raises(TransitionNotAllowed) as twice:
        engine.suspend(iid, ADMIN, "再次")
    assert twice.value.allowed == ["resume"]
    with pytest.raises(TransitionNotAllowed) as repair:
        engine.set_state(iid, "answered", ADMIN, "纸质答复")
    assert repair.value.allowed == ["resume"]
    assert len(engine.history(iid)) == 3
    engine.resume(iid, ADMIN, "核查完毕")
    engine.fire(iid, "answer", OFFICE, {"answer": "好"})
    with pytest.raises(TransitionNotAllowed) as final:
        engine.suspend(iid, ADMIN, "x")
    assert final.value.message == (
        f"instance {iid} is final (state 'answered'): nothing runs that could be suspended"
    )
    assert engine.verify() == []


def test_set_state_repairs_a_state_by_hand(engine: Engine, clock: FixedClock) -> None:
    """The instance enters the state as if it had just arrived: its deadline counted from now;
    a state the definition lacks is refused naming its states."""
    iid = engine.start("suggestion", {"title": "路灯"}, MEMBER).id
    with pytest.raises(InvalidPayload) as unknown:
        engine.set_state(iid, "under_review", ADMIN, "x")
    assert unknown.value.errors[0]["error"].endswith("its states: submitted, reviewing, answered")
    with pytest.raises(TransitionNotAllowed) as same:
        engine.set_state(iid, "submitted", ADMIN, "x")
    assert same.value.allowed == ["reviewing", "answered"]
    clock.advance(days=3)
    fixed = engine.set_state(iid, "reviewing", ADMIN, "纸质受理单已签")
    assert (fixed.state, fixed.entered_at) == ("reviewing", clock.now())
    assert fixed.due_at == datetime(2024, 3, 18, 16, tzinfo=UTC)  # 10 working days from 03-04
    row = engine.history(iid)[-1]
    assert (row.trigger, row.source, row.target, row.role) == (
        "set_state",
        "submitted",
        "reviewing",
        "admin",
    )
    assert pending(engine, iid)[0] == ("deadline", datetime(2024, 3, 18, 16, tzinfo=UTC))
    assert engine.verify() == []


def test_admin_rows_by_anyone_else_fail_the_replay(versions: Registry, clock: FixedClock) -> None:
    """A suspend, resume or set_state row rebuilt with valid hashes but by a non-admin is
    refused by the replay, as a forged redact row is."""
    engine = Engine(MemoryStore(), versions, clock, pins={ORG: {"suggestion": 1}})
    iid = reviewing(engine)
    engine.suspend(iid, ADMIN, "核查")
    engine.resume(iid, ADMIN, "核查完毕")
    engine.set_state(iid, "submitted", ADMIN, "退回")
    rows = engine.store.history(iid)
    assert engine._replay_rows(rows).state == "submitted"
    for seq in (3, 4, 5):
        forged = list(rows)
        prev = rows[seq - 2].hash
        for i in range(seq - 1, len(rows)):
            actor = OFFICE.to_dict() if i == seq - 1 else rows[i].actor
            forged[i] = replace(rows[i], actor=actor, prev_hash=prev, hash="").sealed()
            prev = forged[i].hash
        with pytest.raises(Forbidden) as err:
            engine._replay_rows(forged)
        assert (
            err.value.message.startswith(f"row {seq}: ") and "only 'admin' may" in err.value.message
        )


def test_a_suspended_instance_offers_nothing_and_leaves_the_inbox(engine: Engine) -> None:
    """``available`` names the suspension for every trigger, and the inbox of the office no
    longer lists the instance until it is resumed."""
    iid = reviewing(engine)
    assert engine.query(actionable_by=OFFICE).items[0].id == iid
    engine.suspend(iid, ADMIN, "核查")
    [answer] = engine.available(iid, OFFICE)
    assert (answer.trigger, answer.allowed, answer.needs_payload) == ("answer", False, False)
    assert answer.reason is not None and answer.reason.endswith("(allowed: resume)")
    assert engine.query(actionable_by=OFFICE).items == []
    engine.resume(iid, ADMIN, "核查完毕")
    assert [i.id for i in engine.query(actionable_by=OFFICE).items] == [iid]


def test_what_no_store_keeps_is_refused_before_anything(engine: Engine) -> None:
    """A reason holding a NUL character is refused naming it, and nothing is written."""
    iid = reviewing(engine)
    with pytest.raises(InvalidPayload) as err:
        engine.suspend(iid, ADMIN, "核\x00查")
    assert err.value.errors[0]["field"] == "reason"
    with pytest.raises(InvalidPayload):
        engine.migrate("suggestion", 2, ADMIN, set_exprs={"category": "'a\x00'"})
    assert len(engine.history(iid)) == 2 and engine.get(iid).suspended_at is None


def test_a_child_cannot_complete_the_join_of_a_suspended_parent(clock: FixedClock) -> None:
    """The last unit's reply would close its suspended parent: it is refused naming the
    parent's suspension; after the parent resumes, the reply closes it."""
    fixtures = FIXTURES.parent / "valid"
    files = [(n, (fixtures / n).read_text("utf-8")) for n in ("assignment.yaml", "unit_reply.yaml")]
    engine = Engine(MemoryStore(), Registry.from_texts(files), clock)
    office = Actor.of("o1", "office", org=ORG)
    parent = engine.start("assignment", {}, office).id
    engine.fire(parent, "assign", office, {"units": ["water"]})
    [child] = engine.children(parent)
    engine.suspend(parent, ADMIN, "核查交办")
    unit = Actor.of("w1", "handling_unit", org=ORG, unit="water")
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(child.id, "reply", unit, {"reply_class": "A"})
    assert err.value.message.startswith(f"'all_replied' refused: instance {parent} is suspended")
    assert engine.get(child.id).state == "handling"
    engine.resume(parent, ADMIN, "核查完毕")
    engine.fire(child.id, "reply", unit, {"reply_class": "A"})
    assert engine.get(parent).state == "closed" and engine.verify() == []
