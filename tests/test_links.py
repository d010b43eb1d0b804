"""Other instances by id: ``lookup(id)`` in a guard reads one of the same org; a transition's
``update:`` writes fields on one, as one ``linked_update`` row in the same commit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from xieshang import (
    Actor,
    Engine,
    FixedClock,
    InvalidPayload,
    Registry,
    TransitionNotAllowed,
)
from xieshang.adapters.memory import MemoryStore

NOTE = """\
id: note
version: 1
title: {zh: 记录}
roles:
  clerk: {zh: 办事员}
start:
  roles: [clerk]
data:
  title: {type: string, required: true}
  outcome: {type: enum, values: [done, dropped]}
  count: {type: int, default: 0}
states:
  open: {initial: true, label: {zh: 开}}
  closed: {final: true, label: {zh: 关}}
transitions:
  - {trigger: close, from: open, to: closed, roles: [clerk]}
"""

CASE = """\
id: case
version: 1
title: {zh: 案件}
roles:
  clerk: {zh: 办事员}
start:
  roles: [clerk]
data:
  note_id: {type: string}
  outcome: {type: string}
states:
  open: {initial: true, label: {zh: 开}}
  linked: {label: {zh: 已关联}}
  closed: {final: true, label: {zh: 关}}
transitions:
  - trigger: link
    from: open
    to: linked
    roles: [clerk]
    payload:
      note_id: {type: string, required: true}
    guard: lookup(payload.note_id) != null && lookup(payload.note_id).state == 'open'
    guard_message: {zh: "不是本会未关闭的记录：{payload.note_id}"}
    set: {note_id: payload.note_id}
  - trigger: conclude
    from: linked
    to: closed
    roles: [clerk]
    payload:
      outcome: {type: string, required: true}
    set: {outcome: payload.outcome}
    update:
      instance: data.note_id
      workflow: note
      set: {outcome: payload.outcome}
"""

CLERK = Actor.of("c1", "clerk", org="city")
OTHER = Actor.of("c2", "clerk", org="town")


@pytest.fixture
def engine() -> Engine:
    registry = Registry.from_texts([("note.yaml", NOTE), ("case.yaml", CASE)])
    counter = iter(range(1, 1000))
    clock = FixedClock(datetime(2024, 5, 6, 1, tzinfo=UTC))
    return Engine(MemoryStore(), registry, clock, ids=lambda: f"x{next(counter)}")


def test_lookup_reads_an_instance_of_the_same_org_only(engine: Engine) -> None:
    """Another org's instance, like a missing one, is null to lookup: the guard refuses."""
    theirs = engine.start("note", {"title": "镇里的"}, OTHER).id
    case = engine.start("case", {}, CLERK).id
    for ref in (theirs, "x999"):
        with pytest.raises(TransitionNotAllowed) as err:
            engine.fire(case, "link", CLERK, {"note_id": ref})
        assert f"不是本会未关闭的记录：{ref}" in err.value.message
    ours = engine.start("note", {"title": "市里的"}, CLERK).id
    engine.fire(ours, "close", CLERK)
    with pytest.raises(TransitionNotAllowed):
        engine.fire(case, "link", CLERK, {"note_id": ours})  # closed: the guard reads its state
    assert engine.get(case).version == 1


def test_update_writes_one_linked_row_on_the_named_instance(engine: Engine) -> None:
    """The step's row on the case, one linked_update row on the note: what, from where."""
    note = engine.start("note", {"title": "记录"}, CLERK).id
    case = engine.start("case", {}, CLERK).id
    engine.fire(case, "link", CLERK, {"note_id": note})
    engine.fire(note, "close", CLERK)  # a closed instance still records what is written to it
    engine.fire(case, "conclude", CLERK, {"outcome": "done"})
    assert engine.get(note).data == {"title": "记录", "outcome": "done", "count": 0}
    assert engine.get(note).version == 3 and engine.get(note).state == "closed"
    row = engine.history(note)[-1]
    assert (row.trigger, row.source, row.target) == ("linked_update", "closed", "closed")
    assert row.role == "clerk" and row.actor["id"] == "c1"
    assert row.payload == {
        "from_id": case,
        "from_workflow": "case",
        "from_trigger": "conclude",
        "set": {"outcome": "done"},
    }
    assert [r.trigger for r in engine.history(case)] == ["start", "link", "conclude"]
    # replay takes the linked row as recorded; the link guard is not judged again, though the
    # note is closed by now
    assert engine.verify() == []


def test_an_update_the_target_refuses_changes_nothing(engine: Engine) -> None:
    """A target of another org, of another workflow, or a value its field refuses: the whole
    step is refused, naming it, and neither instance moves."""
    note = engine.start("note", {"title": "记录"}, CLERK).id
    case = engine.start("case", {}, CLERK).id
    engine.fire(case, "link", CLERK, {"note_id": note})
    with pytest.raises(InvalidPayload) as err:
        engine.fire(case, "conclude", CLERK, {"outcome": "half"})
    assert err.value.errors[0]["field"] == "update.set.outcome"
    assert "'done' or 'dropped'" in err.value.message
    assert engine.get(case).version == 2 and engine.get(note).version == 1


def test_an_update_of_a_suspended_instance_is_refused_and_changes_nothing(
    engine: Engine,
) -> None:
    """A suspended instance takes no linked update: the step naming it is refused with the
    suspension, nothing is written to either, and after resume the same step goes through."""
    admin = Actor.of("a1", "admin", org="city")
    note = engine.start("note", {"title": "记录"}, CLERK).id
    case = engine.start("case", {}, CLERK).id
    engine.fire(case, "link", CLERK, {"note_id": note})
    engine.suspend(note, admin, "核查中")
    before = (engine.get(note).version, engine.get(case).version, len(engine.store.outbox()))
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(case, "conclude", CLERK, {"outcome": "done"})
    assert f"instance {note} is suspended" in err.value.message
    assert "suspended_at" in err.value.details
    after = (engine.get(note).version, engine.get(case).version, len(engine.store.outbox()))
    assert after == before and "outcome" not in engine.get(note).data
    engine.resume(note, admin, "核查完毕")
    engine.fire(case, "conclude", CLERK, {"outcome": "done"})
    assert engine.get(note).data["outcome"] == "done" and engine.get(case).state == "closed"
    assert engine.verify() == []


def test_an_update_naming_no_instance_of_its_workflow_is_refused(engine: Engine) -> None:
    """The id must name an instance of the declared workflow in the step's org."""
    other_case = engine.start("case", {}, CLERK).id
    case = engine.start("case", {}, CLERK).id
    engine.fire(case, "link", CLERK, {"note_id": other_case})  # open, but not a note
    with pytest.raises(InvalidPayload) as err:
        engine.fire(case, "conclude", CLERK, {"outcome": "done"})
    assert err.value.errors == [
        {"field": "update.instance", "error": f"no 'note' instance {other_case!r} in org 'city'"}
    ]
    assert engine.get(case).state == "linked" and engine.get(other_case).version == 1


def test_a_lookup_of_an_id_that_is_not_text_is_refused_as_a_failed_function() -> None:
    """``lookup(1)`` is a refusal with its ``function_failed`` detail, nothing printed. (An int
    the load can see is refused there, XS130: ``dyn()`` hides it until the step runs.)"""
    text = CASE.replace(
        "lookup(payload.note_id) != null", "lookup(dyn(size(payload.note_id))) != null"
    )
    registry = Registry.from_texts([("note.yaml", NOTE), ("case.yaml", text)])
    engine = Engine(MemoryStore(), registry, FixedClock(datetime(2024, 5, 6, tzinfo=UTC)))
    case = engine.start("case", {}, CLERK).id
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(case, "link", CLERK, {"note_id": "x"})
    assert err.value.to_dict()["function_failed"]["reason"] == "an instance id is text, not 1"
    assert engine.get(case).version == 1


def test_an_update_of_the_instance_s_own_parent_is_refused() -> None:
    """A parent's row is written by its join; an update naming it is refused, naming why."""
    parent = NOTE + (
        "  - trigger: open_case\n    from: open\n    to: open\n    roles: [clerk]\n"
        "    spawn: {workflow: case, for_each: '[1]', data: {note_id: instance.id}}\n"
    )
    registry = Registry.from_texts([("note.yaml", parent), ("case.yaml", CASE)])
    engine = Engine(MemoryStore(), registry, FixedClock(datetime(2024, 5, 6, tzinfo=UTC)))
    note = engine.start("note", {"title": "记录"}, CLERK).id
    engine.fire(note, "open_case", CLERK)
    case = engine.children(note)[0].id
    engine.fire(case, "link", CLERK, {"note_id": note})
    with pytest.raises(InvalidPayload) as err:
        engine.fire(case, "conclude", CLERK, {"outcome": "done"})
    assert "this instance's parent or child" in err.value.errors[0]["error"]
    assert engine.get(case).state == "linked" and engine.get(note).version == 2
