"""A reminder before a deadline is recorded: one internal ``remind`` history row.

The row is the system's, in place (source and target the state), its payload the deadline and
the moment the reminder was due; the instance's version is +1 and nothing else changes. Its
``instance.reminder`` event has the row's sequence. Only readers of internal rows see it. A
replay applies it as a no-change row and derives its event, so ``verify`` holds; a reminder row
rewritten to name another actor fails the replay.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from constructs_support import BACKENDS, CN, make_engine

from xieshang import Actor, Engine, Forbidden, derive

CLERK = Actor.of("c1", "clerk", org="city")
CHIEF = Actor.of("k1", "chief", org="city")

LETTER = """\
id: letter
version: 1
title: {zh: 来信}
roles: {clerk: {zh: 办事员}, chief: {zh: 主任}}
data:
  title: {type: string, required: true}
states:
  handling:
    initial: true
    label: {zh: 办理中}
    deadline: {after: 10 working days, remind_before: 3 working days}
  answered: {final: true, label: {zh: 已答复}}
transitions:
  - trigger: answer
    from: handling
    to: answered
    roles: [clerk]
read:
  see: [{anyone: true}]
  data: [{roles: [clerk]}]
  internal: [{roles: [chief]}]
"""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request, tmp_path, {"letter": LETTER})


def reminded(engine: Engine) -> str:
    """A letter started on Monday 2024-03-04: due at the end of 03-18; reminded 3 working days
    before its last day, at the start of 03-13."""
    letter = engine.start("letter", {"title": "小区停车难"}, CLERK).id
    assert engine.tick(datetime(2024, 3, 12, 23, 59, tzinfo=CN)).fired == 0
    assert engine.tick(datetime(2024, 3, 13, 9, tzinfo=CN)).fired == 1
    return letter


def test_a_reminder_writes_one_internal_row_and_its_event(engine: Engine) -> None:
    letter = reminded(engine)
    stored = engine.get(letter)
    assert (stored.state, stored.version, stored.overdue) == ("handling", 2, False)
    assert stored.due_at == datetime(2024, 3, 19, tzinfo=CN)
    row = engine.history(letter)[-1]
    assert (row.seq, row.trigger, row.source, row.target, row.role, row.visibility) == (
        2,
        "remind",
        "handling",
        "handling",
        "system",
        "internal",
    )
    assert row.actor == {"id": "system", "roles": ["system"]}
    assert row.payload == {
        "due_at": "2024-03-18T16:00:00.000000+00:00",
        "remind_at": "2024-03-12T16:00:00.000000+00:00",
    }
    (event,) = [e for e in engine.store.outbox(letter) if e.type == "xieshang.instance.reminder"]
    assert (event.id, event.seq) == (f"{letter}-reminder-2024-03-12T16:00:00.000000+00:00", 2)
    assert event.body["data"]["version"] == 2
    assert engine.tick(datetime(2024, 3, 14, tzinfo=CN)).fired == 0


def test_verify_and_replay_hold_across_a_reminder_row(engine: Engine) -> None:
    letter = reminded(engine)
    engine.fire(letter, "answer", CLERK)
    assert engine.verify() == []
    replayed = engine.replay(letter)
    assert (replayed.state, replayed.version) == ("answered", 3)


def test_only_readers_of_internal_rows_see_the_reminder(engine: Engine) -> None:
    letter = reminded(engine)
    assert [r.trigger for r in engine.history(letter, CLERK)] == ["start"]
    assert [r.trigger for r in engine.history(letter, CHIEF)] == ["start", "remind"]


def test_a_reminder_row_rewritten_to_another_actor_fails_its_replay(engine: Engine) -> None:
    letter = reminded(engine)
    rows = engine.store.history(letter)
    forged = [*rows[:-1], replace(rows[-1], actor=CLERK.to_dict(), role="clerk")]
    with pytest.raises(Forbidden) as caught:
        engine._replay_rows(forged)
    assert caught.value.message == (
        "row 2: a reminder by 'c1' as 'clerk'; only the system sends reminders"
    )


def test_a_forged_reminder_event_is_found(engine: Engine) -> None:
    """The reminder event is now derived from its row: one with other content is forged."""
    letter = reminded(engine)
    (event,) = [e for e in engine.store.outbox(letter) if e.type == "xieshang.instance.reminder"]
    body = {**event.body, "data": {**event.body["data"], "due_at": "2024-04-01"}}
    forged = replace(event, body=body)
    rows = engine.store.history(letter)
    findings = derive.event_findings([event], [forged], rows)
    assert findings == [(2, "forged-event", f"event {event.id} is not the event row 2 announced")]
