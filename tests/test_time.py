"""Time in the proposal workflow: deadlines, reminders, overdue, extensions, windows, timers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from xieshang import Actor, Engine, FixedClock, TransitionNotAllowed
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled

CN = timezone(timedelta(hours=8))
MEMBER = Actor.of("m1", "member", org="city")
STAFF = Actor.of("s1", "proposal_committee", org="city")
OFFICE = Actor.of("o1", "supervision_office", org="city")
UNIT = Actor.of("u1", "handling_unit", org="city", unit="housing")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2024, 9, 27, 9, tzinfo=CN))


@pytest.fixture
def engine(clock: FixedClock) -> Engine:
    return Engine(MemoryStore(), bundled(), clock)


def assigned(engine: Engine) -> str:
    pid = engine.start(
        "proposal", {"title": "城区共享单车停放管理", "first_proposer": "m1"}, MEMBER
    ).id
    engine.fire(pid, "submit", MEMBER, {"category": "society"})
    engine.fire(pid, "start_review", STAFF)
    engine.fire(pid, "file", STAFF, {"number": "2024-017"})
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    return pid


def reply_sole(engine: Engine, pid: str) -> None:
    child = next(c for c in engine.children(pid) if not c.final)
    engine.fire(child.id, "acknowledge", UNIT, {"contact_person": "张科长"})
    engine.fire(child.id, "contact_proposer", UNIT, {"mode": "phone"})
    engine.fire(
        child.id, "draft_reply", UNIT, {"reply_class": "A", "reply_text": "答复", "signer": "局长"}
    )
    engine.fire(child.id, "submit_reply", UNIT)
    engine.fire(child.id, "approve_reply", OFFICE)


def event_types(engine: Engine, pid: str) -> list[str]:
    return [e.type for e in engine.store.outbox(pid)]


def test_assignment_sets_the_reply_deadline_three_months_on(engine: Engine) -> None:
    """Reply due 3 calendar months after assignment; overdue from the end of that day."""
    inst = engine.get(assigned(engine))
    assert inst.data["reply_due"] == "2024-12-27"
    assert inst.due_at == datetime(2024, 12, 28, tzinfo=CN)


def test_return_window_closes_after_five_working_days_across_national_day(
    engine: Engine, clock: FixedClock
) -> None:
    """Assigned on 2024-09-27: the 5-working-day return window ends on 2024-10-10."""
    child = engine.children(assigned(engine))[0].id
    clock.set(datetime(2024, 10, 11, 9, tzinfo=CN))
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(
            child, "request_return", UNIT, {"suggested_unit": "市城管局"}, reason="非本单位职责"
        )
    assert "2024-10-10" in err.value.message and "5 working days" in err.value.message
    clock.set(datetime(2024, 10, 10, 17, tzinfo=CN))
    inst = engine.fire(
        child, "request_return", UNIT, {"suggested_unit": "urban_management"}, reason="非本单位职责"
    )
    assert inst.state == "return_requested" and inst.data["suggested_unit"] == "urban_management"


def test_reminder_comes_before_the_deadline_recorded_as_an_internal_row(
    engine: Engine, clock: FixedClock
) -> None:
    """15 days before the reply deadline a reminder event goes out with one internal
    ``remind`` row; the state, data and deadline stay, the version is +1.

    The deadline's last day is 2024-12-27; 15 days before it is the start of 2024-12-12.
    """
    pid = assigned(engine)
    before = engine.get(pid)
    assert engine.tick(datetime(2024, 12, 11, 23, 59, tzinfo=CN)).fired == 0
    report = engine.tick(datetime(2024, 12, 12, 0, 0, tzinfo=CN))
    assert report.fired == 1
    assert event_types(engine, pid)[-1] == "xieshang.instance.reminder"
    after = engine.get(pid)
    assert (after.version, after.state, after.data, after.due_at) == (
        before.version + 1,
        before.state,
        before.data,
        before.due_at,
    )
    row = engine.history(pid)[-1]
    assert (row.trigger, row.visibility, row.source, row.target) == (
        "remind",
        "internal",
        before.state,
        before.state,
    )
    assert engine.tick(datetime(2024, 12, 14, tzinfo=CN)).fired == 0
    assert engine.verify(pid) == []


def test_overdue_is_flagged_once_and_recorded_in_history(engine: Engine) -> None:
    """Past the deadline the instance is flagged overdue once: one row, one event."""
    pid = assigned(engine)
    engine.tick(datetime(2024, 12, 28, 0, 0, 1, tzinfo=CN))
    engine.tick(datetime(2025, 1, 5, tzinfo=CN))
    inst = engine.get(pid)
    assert inst.overdue
    assert [r.trigger for r in engine.history(pid)].count("overdue") == 1
    assert event_types(engine, pid).count("xieshang.instance.overdue") == 1
    assert engine.query(overdue=True).items[0].id == pid
    assert engine.verify() == []


def test_extension_within_the_ceiling_moves_the_deadline(engine: Engine, clock: FixedClock) -> None:
    """An approved extension moves the due date; the overdue timer follows it."""
    pid = assigned(engine)
    clock.set(datetime(2024, 12, 1, 9, tzinfo=CN))
    engine.fire(pid, "request_extension", UNIT, {"new_due": "2025-02-28"}, reason="需跨年度预算")
    inst = engine.fire(pid, "approve_extension", OFFICE)
    assert inst.data["reply_due"] == "2025-02-28" and inst.due_at == datetime(2025, 3, 1, tzinfo=CN)
    assert engine.tick(datetime(2024, 12, 30, tzinfo=CN)).fired == 0
    assert not engine.get(pid).overdue
    assert engine.verify() == []


def test_extension_beyond_the_ceiling_is_refused_naming_the_cap(
    engine: Engine, clock: FixedClock
) -> None:
    """A new due date more than 6 months after assignment is refused, naming 2025-03-27."""
    pid = assigned(engine)
    clock.set(datetime(2024, 12, 1, 9, tzinfo=CN))
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(pid, "request_extension", UNIT, {"new_due": "2025-04-30"}, reason="工程量大")
    assert "2025-03-27" in err.value.message


def test_unevaluated_reply_closes_by_timer_after_the_window(
    engine: Engine, clock: FixedClock
) -> None:
    """15 working days after the reply, the system closes a proposal nobody evaluated."""
    pid = assigned(engine)
    clock.set(datetime(2024, 10, 8, 10, tzinfo=CN))
    reply_sole(engine, pid)
    assert engine.tick(datetime(2024, 10, 28, 23, tzinfo=CN)).fired == 0
    report = engine.tick(datetime(2024, 10, 30, 0, 0, 1, tzinfo=CN))
    assert report.fired == 1
    inst = engine.get(pid)
    rows = engine.history(pid)
    assert inst.state == "closed" and rows[-1].actor["id"] == "system"
    assert rows[-1].trigger == "close_without_evaluation"
    assert engine.verify() == []


def test_a_timer_acts_once_even_if_two_ticks_see_it(engine: Engine, clock: FixedClock) -> None:
    """Two ticks over the same due timers: the second finds nothing left to fire."""
    pid = assigned(engine)
    late = datetime(2025, 1, 10, tzinfo=CN)
    timers = engine.store.due_timers(late)
    first = engine.tick(late)
    for timer in timers:  # a second worker that read the same rows before the first committed
        with pytest.raises(Exception):  # noqa: B017 - conflict or stale, never a second act
            engine._run_timer(timer, late)
    assert first.fired == len(timers) >= 2
    assert [r.trigger for r in engine.history(pid)].count("overdue") == 1


def test_leaving_the_state_cancels_its_timers(engine: Engine, clock: FixedClock) -> None:
    """A reply before the deadline leaves no overdue or reminder timer behind."""
    pid = assigned(engine)
    clock.set(datetime(2024, 10, 15, 9, tzinfo=CN))
    reply_sole(engine, pid)
    kinds = {
        (t.instance_id, t.kind) for t in engine.store.due_timers(datetime(2025, 6, 1, tzinfo=CN))
    }
    assert kinds == {(pid, "timer")}
    assert not engine.get(pid).overdue
