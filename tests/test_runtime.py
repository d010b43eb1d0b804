"""The runtime's rules, on the in-memory store: check order, refusals, history, events, replay."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from xieshang import (
    Actor,
    ConcurrencyConflict,
    Engine,
    FixedClock,
    Forbidden,
    InvalidPayload,
    NotFound,
    TransitionNotAllowed,
    UnknownTrigger,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.compiler import CompiledWorkflow
from xieshang.workflows import bundled

CN = timezone(timedelta(hours=8))
MEMBER = Actor.of("m1", "member", org="city")
OTHER_MEMBER = Actor.of("m2", "member", org="city")
STAFF = Actor.of("s1", "proposal_committee", org="city")
OFFICE = Actor.of("o1", "supervision_office", org="city")
UNIT = Actor.of("u1", "handling_unit", org="city", unit="housing")


@pytest.fixture
def engine() -> Engine:
    return Engine(MemoryStore(), bundled(), FixedClock(datetime(2024, 9, 27, 9, tzinfo=CN)))


def new_proposal(engine: Engine) -> str:
    return engine.start(
        "proposal", {"title": "老旧小区加装电梯", "first_proposer": "m1"}, MEMBER
    ).id


def to_filed(engine: Engine) -> str:
    pid = new_proposal(engine)
    engine.fire(pid, "submit", MEMBER, {"category": "society"})
    engine.fire(pid, "start_review", STAFF)
    engine.fire(pid, "file", STAFF, {"number": "2024-001"})
    return pid


def reply_sole(engine: Engine, pid: str, reply_class: str = "B") -> None:
    """The sole unit's child goes from notified to replied."""
    child = next(c for c in engine.children(pid) if not c.final)
    unit = Actor.of("u-" + str(child.unit), "handling_unit", org="city", unit=child.unit)
    engine.fire(child.id, "acknowledge", unit, {"contact_person": "张科长"})
    engine.fire(child.id, "contact_proposer", unit, {"mode": "phone"})
    engine.fire(
        child.id,
        "draft_reply",
        unit,
        {"reply_class": reply_class, "reply_text": "答复", "signer": "局长"},
    )
    engine.fire(child.id, "submit_reply", unit)
    engine.fire(child.id, "approve_reply", OFFICE)


def snapshot(engine: Engine, pid: str) -> tuple[object, ...]:
    store = engine.store
    inst = store.load(pid)
    assert inst is not None
    return (inst.to_dict(), len(store.history(pid)), len(store.outbox()))


def test_start_writes_the_creation_as_the_first_history_row(engine: Engine) -> None:
    """An instance starts in the initial state, version 1, with its creation as row 1."""
    pid = new_proposal(engine)
    inst = engine.get(pid)
    rows = engine.history(pid)
    assert (inst.state, inst.version, inst.org) == ("draft", 1, "city")
    assert [(r.seq, r.trigger, r.source, r.target) for r in rows] == [(1, "start", None, "draft")]
    assert rows[0].prev_hash == "" and rows[0].hash == inst.head_hash


def test_each_accepted_command_adds_one_version_one_row_and_its_events(engine: Engine) -> None:
    """version +1, one history row, and the generic event plus the declared ones per command."""
    pid = new_proposal(engine)
    before = len(engine.store.outbox(pid))
    inst = engine.fire(pid, "submit", MEMBER, {"category": "society"})
    events = engine.store.outbox(pid)[before:]
    assert inst.version == 2 and len(engine.history(pid)) == 2
    assert [e.type for e in events] == [
        "xieshang.instance.transitioned",
        "xieshang.proposal.submitted",
    ]
    assert all(e.body["specversion"] == "1.0" and e.body["subject"] == pid for e in events)
    assert events[0].body["data"]["to"] == "submitted"


def test_unknown_trigger_names_the_triggers_that_exist(engine: Engine) -> None:
    """A trigger the definition lacks is UnknownTrigger listing the definition's triggers."""
    pid = new_proposal(engine)
    with pytest.raises(UnknownTrigger) as err:
        engine.fire(pid, "forward_to_other_unit", MEMBER)
    assert "submit" in err.value.allowed and "forward_to_other_unit" in err.value.message


def test_trigger_from_wrong_state_names_what_can_fire_here(engine: Engine) -> None:
    """A trigger that exists but not from this state lists what this actor may fire here (with
    a payload where one is needed): the proposer's triggers, none of the office's (the author
    acting for the office: no one else reads the draft)."""
    pid = new_proposal(engine)
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(pid, "assign", MEMBER, {"mode": "sole", "units": ["housing"]})
    assert err.value.state == "draft"
    assert err.value.allowed == ["invite_cosigners", "submit", "withdraw"]
    author_as_office = Actor.of("m1", "supervision_office", org="city")
    with pytest.raises(TransitionNotAllowed) as office:
        engine.fire(pid, "assign", author_as_office, {"mode": "sole", "units": ["housing"]})
    assert office.value.allowed == []


def test_role_is_checked_before_payload(engine: Engine) -> None:
    """A wrong role is Forbidden even when the payload is also wrong (check order). (The
    author acts in a role that may not submit: anyone else may not even read the draft.)"""
    pid = new_proposal(engine)
    author_as_staff = Actor.of("m1", "proposal_committee", org="city")
    with pytest.raises(Forbidden) as err:
        engine.fire(pid, "submit", author_as_staff, {"category": "nonsense"})
    assert "member" in err.value.allowed


def test_payload_errors_are_all_listed(engine: Engine) -> None:
    """Every field error of a payload is reported at once."""
    pid = new_proposal(engine)
    with pytest.raises(InvalidPayload) as err:
        engine.fire(pid, "submit", MEMBER, {"category": "nonsense", "colour": "red"})
    fields = {e["field"] for e in err.value.errors}
    assert fields == {"category", "colour"}


def test_missing_required_reason_is_refused(engine: Engine) -> None:
    """A transition that requires a reason refuses a command without one."""
    pid = new_proposal(engine)
    with pytest.raises(InvalidPayload) as err:
        engine.fire(pid, "withdraw", MEMBER)
    assert err.value.errors == [{"field": "reason", "error": "required"}]
    assert engine.fire(pid, "withdraw", MEMBER, reason="重复提交").state == "withdrawn"


def test_guard_refusal_names_the_rule(engine: Engine) -> None:
    """A false guard is TransitionNotAllowed carrying the guard and its message: an invited
    co-proposer (who reads the proposal) may not submit it."""
    pid = new_proposal(engine)
    engine.fire(pid, "invite_cosigners", MEMBER, {"co_proposers": ["m2"]})
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(pid, "submit", OTHER_MEMBER, {"category": "society"})
    assert err.value.guard is not None and "first_proposer" in err.value.guard
    assert "第一提案人" in err.value.message


def test_separation_of_duties_forbids_filing_own_submission(engine: Engine) -> None:
    """``not_by: [submit]``: whoever submitted may not file the same proposal."""
    both = Actor.of("m1", "member", "proposal_committee", org="city")
    pid = new_proposal(engine)
    engine.fire(pid, "submit", both, {"category": "society"})
    engine.fire(pid, "start_review", both)
    with pytest.raises(Forbidden) as err:
        engine.fire(pid, "file", both, {"number": "1"})
    assert "separation of duties" in err.value.message
    assert engine.fire(pid, "file", STAFF, {"number": "1"}).state == "filed"


@pytest.mark.parametrize(
    ("trigger", "actor", "payload", "error"),
    [
        ("nope", MEMBER, {}, UnknownTrigger),
        ("assign", MEMBER, {"mode": "sole", "units": ["a"]}, TransitionNotAllowed),
        ("submit", Actor.of("m1", "proposal_committee", org="city"), {}, Forbidden),
        ("submit", MEMBER, {"category": 3}, InvalidPayload),
        ("submit", OTHER_MEMBER, {"category": "society"}, NotFound),  # may not read a draft
    ],
)
def test_refused_command_changes_nothing(
    engine: Engine, trigger: str, actor: Actor, payload: dict[str, object], error: type
) -> None:
    """A refused command leaves the instance, the history and the outbox as they were."""
    pid = new_proposal(engine)
    before = snapshot(engine, pid)
    with pytest.raises(error):
        engine.fire(pid, trigger, actor, payload)
    assert snapshot(engine, pid) == before


def test_expected_version_mismatch_is_a_conflict(engine: Engine) -> None:
    """A command made against an old version is refused as a ConcurrencyConflict."""
    pid = new_proposal(engine)
    engine.fire(pid, "submit", MEMBER, {"category": "society"}, expected_version=1)
    with pytest.raises(ConcurrencyConflict) as err:
        engine.fire(pid, "start_review", STAFF, expected_version=1)
    assert (err.value.expected, err.value.actual) == (1, 2)


def test_command_id_makes_a_retry_return_the_first_result(engine: Engine) -> None:
    """Retrying a command with the same command id acts once and returns the same result."""
    pid = new_proposal(engine)
    first = engine.fire(pid, "submit", MEMBER, {"category": "society"}, command_id="c-1")
    again = engine.fire(pid, "submit", MEMBER, {"category": "society"}, command_id="c-1")
    assert (again.version, again.state, again.data) == (first.version, first.state, first.data)
    assert len(engine.history(pid)) == 2


def test_other_org_sees_not_found(engine: Engine) -> None:
    """An actor of another org neither sees nor moves an instance: NotFound, not Forbidden."""
    pid = new_proposal(engine)
    stranger = Actor.of("x", "member", org="another_city")
    with pytest.raises(NotFound):
        engine.get(pid, stranger)
    with pytest.raises(NotFound):
        engine.fire(pid, "submit", stranger, {"category": "society"})


def test_assign_modes_are_checked_by_guard(engine: Engine) -> None:
    """Split needs two units; lead+assisting needs its lead among the units."""
    pid = to_filed(engine)
    with pytest.raises(TransitionNotAllowed):
        engine.fire(pid, "assign", OFFICE, {"mode": "split", "units": ["housing"]})
    with pytest.raises(TransitionNotAllowed):
        engine.fire(
            pid,
            "assign",
            OFFICE,
            {"mode": "lead_assisting", "units": ["housing", "water"], "lead_unit": "transport"},
        )
    inst = engine.fire(
        pid,
        "assign",
        OFFICE,
        {"mode": "lead_assisting", "units": ["housing", "water"], "lead_unit": "water"},
    )
    assert inst.data["lead_unit"] == "water" and inst.data["reply_due"] == "2024-12-27"
    assert inst.due_at == datetime(2024, 12, 28, tzinfo=CN)


def test_withdrawal_after_assignment_is_refused(engine: Engine) -> None:
    """A proposal cannot be withdrawn once it is assigned (decision 6)."""
    pid = to_filed(engine)
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    with pytest.raises(TransitionNotAllowed):
        engine.fire(pid, "withdraw", MEMBER, reason="不想办了")


def test_unsatisfied_twice_goes_to_a_meeting_then_closes(engine: Engine) -> None:
    """One re-handling round; a second 'unsatisfied' waits for a face-to-face meeting."""
    pid = to_filed(engine)
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    reply_sole(engine, pid)
    assert (
        engine.fire(pid, "evaluate", MEMBER, {"satisfaction": "unsatisfied"}).state == "rehandling"
    )
    reply_sole(engine, pid)
    inst = engine.fire(pid, "evaluate", MEMBER, {"satisfaction": "unsatisfied"})
    assert (inst.state, inst.data["rehandle_count"]) == ("awaiting_meeting", 1)
    inst = engine.fire(pid, "final_meeting", STAFF, {"minutes": "面商纪要"}, reason="已面商")
    assert inst.state == "closed" and inst.final
    types = [e.type for e in engine.store.outbox(pid)]
    assert types.count("xieshang.instance.completed") == 1


def test_unit_bound_actor_cannot_act_for_another_unit(engine: Engine) -> None:
    """A handling unit's child admits only actors of that unit: to another unit, which may not
    read it, it does not exist."""
    pid = to_filed(engine)
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    child = engine.children(pid)[0]
    water = Actor.of("u9", "handling_unit", org="city", unit="water")
    with pytest.raises(NotFound) as err:
        engine.fire(child.id, "acknowledge", water, {"contact_person": "李"})
    assert err.value.message == f"no instance {child.id!r}"
    assert (
        engine.fire(child.id, "acknowledge", UNIT, {"contact_person": "张"}).state == "acknowledged"
    )


def test_available_explains_what_the_actor_may_not_do(engine: Engine) -> None:
    """available() lists every trigger of the state, with the reason when it is not allowed; a
    trigger whose payload decides is reported as needing one, with its schema."""
    pid = new_proposal(engine)
    mine = {a.trigger: a for a in engine.available(pid, MEMBER)}
    author_as_staff = Actor.of("m1", "proposal_committee", org="city")
    theirs = {a.trigger: a for a in engine.available(pid, author_as_staff)}
    assert mine["withdraw"].allowed and not mine["withdraw"].needs_payload
    assert (mine["submit"].allowed, mine["submit"].needs_payload) == (False, True)
    assert (mine["submit"].payload_schema or {})["required"] == ["category"]
    assert not theirs["submit"].allowed and not theirs["submit"].needs_payload
    assert "allowed roles" in (theirs["submit"].reason or "")


def test_replay_rebuilds_the_stored_instance(engine: Engine) -> None:
    """Replaying the history through the pinned definition gives the stored state and data."""
    pid = to_filed(engine)
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    stored = engine.get(pid)
    replayed = engine.replay(pid)
    assert (replayed.state, replayed.data, replayed.version) == (
        stored.state,
        stored.data,
        stored.version,
    )
    assert engine.verify() == []


def test_internal_step_emits_no_event(engine: Engine) -> None:
    """A transition whose history entry is internal announces nothing."""
    from xieshang import Registry, load_definition

    wf = load_definition(
        """
id: tiny
version: 1
title: 小流程
roles: {clerk: 办事员}
states:
  a: {initial: true, label: 甲}
  b: {final: true, label: 乙}
transitions:
  - {trigger: go, from: a, to: b, roles: [clerk], visibility: internal}
"""
    )
    eng = Engine(MemoryStore(), Registry([wf]))
    clerk = Actor.of("c", "clerk")
    iid = eng.start("tiny", {}, clerk).id
    n = len(eng.store.outbox())
    eng.fire(iid, "go", clerk)
    assert len(eng.store.outbox()) == n and len(eng.history(iid)) == 2


def test_the_machine_moves_only_along_a_transition_from_the_current_state(engine: Engine) -> None:
    """The compiled workflow's move runs the state machine's transition; from a state the
    transition does not leave, it refuses, naming what can fire there."""
    from xieshang.compiler import Cursor

    wf = engine.registry.get("proposal")
    submit = wf.by_trigger["submit"][0]
    cursor = Cursor("draft")
    wf.move(cursor, submit)
    assert cursor.state == "submitted"
    stuck = Cursor("closed")
    with pytest.raises(TransitionNotAllowed) as refused:
        wf.move(stuck, submit)
    assert stuck.state == "closed"
    assert refused.value.details["allowed"] == []  # closed is final: nothing fires there
    filed = Cursor("filed")
    with pytest.raises(TransitionNotAllowed) as refused:
        wf.move(filed, submit)
    assert "flag_key" in refused.value.details["allowed"]


@pytest.mark.parametrize("wf", list(bundled()), ids=lambda wf: wf.id)
def test_the_machine_moves_each_transition_from_each_of_its_states_to_its_target(
    wf: CompiledWorkflow,
) -> None:
    """Every transition of every bundled workflow, from each state it leaves, ends in its
    target: a move elsewhere as a move, one that stays (an internal transition of the machine)
    where it was."""
    from xieshang.compiler import Cursor

    moves = 0
    for t in wf.transitions:
        for source in t.sources:
            cursor = Cursor(source)
            wf.move(cursor, t)
            assert cursor.state == t.spec.to, (t.trigger, source)
            moves += 1
    assert moves >= len(wf.transitions)
