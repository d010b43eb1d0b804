"""Two worker processes ticking one PostgreSQL database: every due timer acts exactly once.

Proposals are assigned (a reply deadline and a reminder each) and others replied (a timer that
closes them unevaluated); two processes then tick the same database at the same moment until
nothing is due. Each deadline must be marked once, each reminder sent once, each timer fired
once: counted in the history and the outbox. A human command racing a timer on the same
instance either wins or is told (conflict or refusal); nothing is lost, every chain verifies.
"""

from __future__ import annotations

import multiprocessing
import traceback
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from xieshang import Actor, ConcurrencyConflict, Engine, FixedClock, TransitionNotAllowed
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

pytestmark = pytest.mark.postgres

CN = timezone(timedelta(hours=8))
MEMBER = Actor.of("m1", "member", org="city")
STAFF = Actor.of("s1", "proposal_committee", org="city")
OFFICE = Actor.of("o1", "supervision_office", org="city")
UNIT = Actor.of("u1", "handling_unit", org="city", unit="housing")
LATE = datetime(2025, 6, 1, 9, tzinfo=CN)


def assigned(engine: Engine, n: int) -> str:
    pid = engine.start("proposal", {"title": f"提案{n}", "first_proposer": "m1"}, MEMBER).id
    engine.fire(pid, "submit", MEMBER, {"category": "society"})
    engine.fire(pid, "start_review", STAFF)
    engine.fire(pid, "file", STAFF, {"number": f"2024-{n:03d}"})
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    return pid


def reply(engine: Engine, pid: str) -> None:
    child = engine.children(pid)[0].id
    engine.fire(child, "acknowledge", UNIT, {"contact_person": "张"})
    engine.fire(child, "contact_proposer", UNIT, {"mode": "phone"})
    engine.fire(
        child, "draft_reply", UNIT, {"reply_class": "B", "reply_text": "答", "signer": "局长"}
    )
    engine.fire(child, "submit_reply", UNIT)
    engine.fire(child, "approve_reply", OFFICE)


def tick_until_idle(url: str, start: Any, results: Any) -> None:
    """Tick until nothing is due; put (fired, conflicts), or the error that stopped it, so that
    the test reports a worker's failure at once instead of waiting for a count never sent."""
    try:
        with open_store(url) as store:
            engine = Engine(store, bundled(), FixedClock(LATE))
            start.wait(60)
            fired = conflicts = 0
            while True:
                report = engine.tick(LATE, limit=20)
                fired += report.fired
                conflicts += report.conflicts
                if report.fired == 0 and report.conflicts == 0:
                    break
        results.put((fired, conflicts))
    except BaseException:
        results.put(traceback.format_exc())
        raise


def test_two_workers_fire_each_timer_exactly_once(pg_database: str) -> None:
    """Every deadline, reminder and timer acts once although two processes tick together."""
    clock = FixedClock(datetime(2024, 9, 27, 9, tzinfo=CN))
    with open_store(pg_database) as store:
        engine = Engine(store, bundled(), clock)
        waiting = [assigned(engine, n) for n in range(8)]
        answered = [assigned(engine, n) for n in range(8, 14)]
        clock.set(datetime(2024, 10, 15, 9, tzinfo=CN))
        for pid in answered:
            reply(engine, pid)
        due = len(store.due_timers(LATE, limit=10_000))
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=tick_until_idle, args=(pg_database, start, results)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    failed = [o for o in outcomes if isinstance(o, str)]
    assert not failed, "a worker failed:\n" + "\n".join(failed)
    assert sum(fired for fired, _ in outcomes) == due == 8 * 2 + 6
    with open_store(pg_database) as store:
        engine = Engine(store, bundled(), FixedClock(LATE))
        for pid in waiting:
            rows = [r.trigger for r in engine.history(pid)]
            reminders = [e for e in store.outbox(pid) if e.type == "xieshang.instance.reminder"]
            assert rows.count("overdue") == 1 and len(reminders) == 1
            assert engine.get(pid).overdue
        for pid in answered:
            assert [r.trigger for r in engine.history(pid)].count("close_without_evaluation") == 1
            assert engine.get(pid).state == "closed"
        assert store.due_timers(LATE, limit=10) == []
        assert engine.verify() == []


def test_a_timer_racing_a_human_loses_nothing(pg_database: str) -> None:
    """The member evaluates as the close timer fires: one of them acts, the other is told."""
    clock = FixedClock(datetime(2024, 9, 27, 9, tzinfo=CN))
    with open_store(pg_database) as store:
        engine = Engine(store, bundled(), clock)
        pid = assigned(engine, 1)
        reply(engine, pid)
        timer = next(t for t in store.due_timers(LATE) if t.instance_id == pid)
        before = engine.get(pid)
        # the member's command is judged on the same version the timer will use
        engine.fire(
            pid, "evaluate", MEMBER, {"satisfaction": "satisfied"}, expected_version=before.version
        )
        with pytest.raises((ConcurrencyConflict, TransitionNotAllowed)):
            engine._run_timer(timer, LATE)
        report = engine.tick(LATE)
        rows = [r.trigger for r in engine.history(pid)]
        assert rows[-1] == "evaluate" and "close_without_evaluation" not in rows
        assert report.fired == 0 and engine.get(pid).state == "closed"
        assert engine.verify() == []
