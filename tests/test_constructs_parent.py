"""A child's guards, guard messages and soft rules read its ``parent``.

``parent`` is the parent instance as stored when the child's step runs (``id``, ``workflow``,
``state``, ``final``, ``unit``, ``data``, ``parent_id``, ``created_at``), or null for an
instance without a parent. A step that the parent's own step fires on the child
(``children_fire``) sees the parent as after that step. A replay does not judge again what was
judged against the parent as it was then: a guard over it is not re-run, and the warnings of a
soft rule that reads it are taken as recorded. Effects may not read it (a replay could not give
the same data), which the loader says.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from constructs_support import BACKENDS, make_engine, snapshot

from xieshang import Actor, DefinitionError, Engine, Registry, TransitionNotAllowed

CLERK = Actor.of("c1", "clerk", org="city")

CASE = """\
id: case
version: 1
title: {zh: 案件}
roles: {clerk: {zh: 办事员}}
data:
  title: {type: string, required: true}
  priority: {type: enum, values: [low, high], default: low}
states:
  open: {initial: true, label: {zh: 办理中}}
  paused: {label: {zh: 暂停}}
  closed: {final: true, label: {zh: 已办结}}
transitions:
  - trigger: split
    from: open
    to: open
    roles: [clerk]
    payload: {tasks: {type: list, items: string, required: true}}
    spawn: {workflow: task, for_each: payload.tasks, data: {title: item}}
  - trigger: pause
    from: open
    to: paused
    roles: [clerk]
  - trigger: resume
    from: paused
    to: open
    roles: [clerk]
  - trigger: raise_priority
    from: [open, paused]
    to: open
    roles: [clerk]
    set: {priority: "'high'"}
  - trigger: lower_priority
    from: open
    to: open
    roles: [clerk]
    set: {priority: "'low'"}
  - trigger: close
    from: open
    to: closed
    roles: [clerk]
    children_fire:
      - {workflow: task, trigger: wrap_up, when: "!child.final"}
"""

TASK = """\
id: task
version: 1
title: {zh: 任务}
roles: {clerk: {zh: 办事员}}
data:
  title: {type: string, required: true}
states:
  todo: {initial: true, label: {zh: 待办}}
  done: {final: true, label: {zh: 已完成}}
  wrapped: {final: true, label: {zh: 随案办结}}
transitions:
  - trigger: finish
    from: todo
    to: done
    roles: [clerk]
    guard: parent == null || parent.state != 'paused'
    guard_message:
      zh: "所属案件《{parent.data.title}》处于{parent.state}状态"
      en: "its case is {parent.state}"
    warn:
      - code: high_priority_case
        when: parent != null && parent.data.priority == 'high'
        message: {zh: "所属案件为高优先级（{parent.id}）"}
  - trigger: wrap_up
    from: todo
    to: wrapped
    roles: [system]
    guard: parent.state == 'closed'
    guard_message: {zh: "只在案件办结时随案办结（案件为{parent.state}）"}
"""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request, tmp_path, {"case": CASE, "task": TASK})


def case_with_tasks(engine: Engine, *titles: str) -> tuple[str, list[str]]:
    case = engine.start("case", {"title": "背街小巷改造"}, CLERK).id
    engine.fire(case, "split", CLERK, {"tasks": list(titles)})
    return case, [c.id for c in engine.children(case)]


def test_a_guard_over_the_parent_state_refuses_naming_it_and_changes_nothing(
    engine: Engine,
) -> None:
    case, (task,) = case_with_tasks(engine, "清运垃圾")
    engine.fire(case, "pause", CLERK)
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed) as caught:
        engine.fire(task, "finish", CLERK)
    assert caught.value.message == (
        "'finish' refused in state 'todo': 所属案件《背街小巷改造》处于paused状态 / "
        "its case is paused"
    )
    assert caught.value.details["guard"] == "parent == null || parent.state != 'paused'"
    assert snapshot(engine) == before
    engine.fire(case, "resume", CLERK)
    assert engine.fire(task, "finish", CLERK).state == "done"


def test_a_child_without_a_parent_reads_null(engine: Engine) -> None:
    alone = engine.start("task", {"title": "独立任务"}, CLERK).id
    done = engine.fire(alone, "finish", CLERK)
    assert done.state == "done"
    assert engine.history(alone)[-1].warnings is None


def test_a_soft_rule_over_the_parent_is_recorded_and_replays_after_the_parent_changed(
    engine: Engine,
) -> None:
    """The warning names the parent as it was; the parent changes afterwards, and verify
    still holds (the warning is taken as recorded, the guard is not judged again)."""
    case, (first, second) = case_with_tasks(engine, "修路灯", "补绿化")
    engine.fire(case, "raise_priority", CLERK)
    engine.fire(first, "finish", CLERK)
    assert engine.history(first)[-1].warnings == [
        {"code": "high_priority_case", "message": f"所属案件为高优先级（{case}）"}
    ]
    engine.fire(case, "lower_priority", CLERK)
    engine.fire(second, "finish", CLERK)
    assert engine.history(second)[-1].warnings is None
    engine.fire(case, "pause", CLERK)
    assert engine.verify() == []
    assert engine.replay(first).state == "done"


def test_a_step_the_parent_fires_sees_the_parent_as_after_its_step(engine: Engine) -> None:
    """``close`` fires ``wrap_up`` on each open task, whose guard needs the case closed: it
    reads the case as the close leaves it, in the same commit."""
    case, (first, second) = case_with_tasks(engine, "修路灯", "补绿化")
    engine.fire(first, "finish", CLERK)
    closed = engine.fire(case, "close", CLERK)
    assert closed.state == "closed"
    assert [(c.id, c.state) for c in engine.children(case)] == [
        (first, "done"),
        (second, "wrapped"),
    ]
    row = engine.history(second)[-1]
    assert (row.trigger, row.actor["id"], row.source, row.target) == (
        "wrap_up",
        "system",
        "todo",
        "wrapped",
    )
    assert engine.verify() == []


def test_a_system_step_outside_the_parents_step_reads_it_as_stored(engine: Engine) -> None:
    """Fired on its own (the case still open), ``wrap_up``'s guard refuses, naming the state."""
    _, (task,) = case_with_tasks(engine, "修路灯")
    from xieshang.records import SYSTEM

    with pytest.raises(TransitionNotAllowed) as caught:
        engine.fire(task, "wrap_up", SYSTEM)
    assert caught.value.message == (
        "'wrap_up' refused in state 'todo': 只在案件办结时随案办结（案件为open）"
    )


def test_an_unknown_member_of_parent_is_a_load_time_problem() -> None:
    text = TASK.replace("parent.state != 'paused'", "parent.stat != 'paused'")
    with pytest.raises(DefinitionError) as caught:
        Registry.from_texts([("case.yaml", CASE), ("task.yaml", text)])
    (problem,) = caught.value.problems
    assert (problem.code, problem.path) == ("XS123", "transitions[0].guard")
    assert "parent.stat is not declared" in problem.message
    assert "did you mean 'state'?" in problem.message


def test_an_effect_may_not_read_the_parent_and_the_loader_says_why() -> None:
    text = TASK.replace(
        "    roles: [system]\n", "    roles: [system]\n    set: {title: parent.data.title}\n"
    )
    with pytest.raises(DefinitionError) as caught:
        Registry.from_texts([("case.yaml", CASE), ("task.yaml", text)])
    (problem,) = caught.value.problems
    assert (problem.code, problem.path) == ("XS121", "transitions[1].set.title")
    assert problem.message.startswith(
        "parent in 'parent.data.title': it reads the parent as it is now, and is allowed only "
        "in a transition's guard, guard_message and warn"
    )
