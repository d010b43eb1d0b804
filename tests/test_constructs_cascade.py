"""Cascade: a step that ends an instance fires a trigger on each of its open children.

``cascade: {trigger: cancel_by_parent}`` on a transition to a final state fires the trigger on
every open child as the system actor, in the same commit: one history row per child, each an
ordinary checked step that reads the parent as the step leaves it. A child that refuses (its
guard) is left as it is, and the parent's row records it in a ``cascade_skipped`` warning naming
the child, its state and why. When the files load together, a child state from which the system
cannot fire the trigger is a load-time problem, as is a cascade to a state that is not final.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from constructs_support import BACKENDS, make_engine

from xieshang import Actor, DefinitionError, Engine, Registry

CLERK = Actor.of("c1", "clerk", org="city")

CASE = """\
id: case
version: 1
title: {zh: 案件}
roles: {clerk: {zh: 办事员}}
data:
  title: {type: string, required: true}
states:
  open: {initial: true, label: {zh: 办理中}}
  withdrawn: {final: true, label: {zh: 已撤回}}
  closed: {final: true, label: {zh: 已办结}}
transitions:
  - trigger: split
    from: open
    to: open
    roles: [clerk]
    payload: {tasks: {type: list, items: string, required: true}}
    spawn: {workflow: task, for_each: payload.tasks, data: {title: item}}
  - trigger: withdraw
    from: open
    to: withdrawn
    roles: [clerk]
    cascade: {trigger: cancel_by_parent}
  - trigger: close
    from: open
    to: closed
    roles: [clerk]
"""

TASK = """\
id: task
version: 1
title: {zh: 任务}
roles: {clerk: {zh: 办事员}}
data:
  title: {type: string, required: true}
  locked: {type: bool, default: false}
states:
  todo: {initial: true, label: {zh: 待办}}
  review: {label: {zh: 审核中}}
  done: {final: true, label: {zh: 已完成}}
  cancelled: {final: true, label: {zh: 随案撤回}}
transitions:
  - trigger: submit
    from: todo
    to: review
    roles: [clerk]
    payload: {lock: {type: bool}}
    set: {locked: "payload.lock == true"}
  - trigger: accept
    from: review
    to: done
    roles: [clerk]
  - trigger: cancel_by_parent
    from: [todo, review]
    to: cancelled
    roles: [system]
    guard: "!data.locked && parent.state == 'withdrawn'"
    guard_message: {zh: 已锁定的任务不随案撤回, en: a locked task is not withdrawn with its case}
"""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request, tmp_path, {"case": CASE, "task": TASK})


def case_with_tasks(engine: Engine, *titles: str) -> tuple[str, list[str]]:
    case = engine.start("case", {"title": "背街小巷改造"}, CLERK).id
    engine.fire(case, "split", CLERK, {"tasks": list(titles)})
    return case, [c.id for c in engine.children(case)]


def test_withdrawing_fires_the_trigger_on_every_open_child_one_row_each(engine: Engine) -> None:
    case, (todo, review, done) = case_with_tasks(engine, "清运垃圾", "修补路面", "更换路灯")
    engine.fire(review, "submit", CLERK)
    engine.fire(done, "submit", CLERK)
    engine.fire(done, "accept", CLERK)
    withdrawn = engine.fire(case, "withdraw", CLERK, reason="提案人撤回")
    assert (withdrawn.state, withdrawn.version) == ("withdrawn", 3)
    assert [(c.id, c.state) for c in engine.children(case)] == [
        (todo, "cancelled"),
        (review, "cancelled"),
        (done, "done"),
    ]
    for child, source in ((todo, "todo"), (review, "review")):
        row = engine.history(child)[-1]
        assert (row.trigger, row.source, row.target, row.actor["id"], row.reason) == (
            "cancel_by_parent",
            source,
            "cancelled",
            "system",
            "提案人撤回",
        )
    assert [r.trigger for r in engine.history(done)] == ["start", "submit", "accept"]
    assert engine.history(case)[-1].warnings is None
    assert engine.verify() == []


def test_a_child_that_refuses_is_left_and_the_parents_row_says_which_and_why(
    engine: Engine,
) -> None:
    case, (locked, free) = case_with_tasks(engine, "征地拆迁", "绿化补植")
    engine.fire(locked, "submit", CLERK, {"lock": True})
    withdrawn = engine.fire(case, "withdraw", CLERK)
    assert withdrawn.state == "withdrawn"
    assert [(c.id, c.state) for c in engine.children(case)] == [
        (locked, "review"),
        (free, "cancelled"),
    ]
    (warning,) = engine.history(case)[-1].warnings or []
    reason = (
        "'cancel_by_parent' refused in state 'review': 已锁定的任务不随案撤回 / a locked task "
        "is not withdrawn with its case"
    )
    assert warning == {
        "code": "cascade_skipped",
        "message": f"未联动的子实例：task {locked}（review）：{reason} / children not cascaded: "
        f"{locked} (review)",
        "children": [
            {
                "id": locked,
                "workflow": "task",
                "state": "review",
                "trigger": "cancel_by_parent",
                "reason": reason,
            }
        ],
    }
    types = [e.type for e in engine.store.outbox(case)]
    assert types[-3:] == [
        "xieshang.instance.transitioned",
        "xieshang.instance.completed",
        "xieshang.case.warning",
    ]
    assert engine.verify() == []
    assert engine.replay(case).state == "withdrawn"


def test_closing_without_a_cascade_leaves_the_children(engine: Engine) -> None:
    case, (task,) = case_with_tasks(engine, "清运垃圾")
    engine.fire(case, "close", CLERK)
    assert engine.get(task).state == "todo"


def load(case: str = CASE, task: str = TASK) -> None:
    Registry.from_texts([("case.yaml", case), ("task.yaml", task)])


def test_a_child_state_without_the_trigger_is_a_load_time_problem() -> None:
    with pytest.raises(DefinitionError) as caught:
        load(task=TASK.replace("from: [todo, review]", "from: todo"))
    (problem,) = caught.value.problems
    assert (problem.code, problem.path) == ("XS133", "transitions[1].cascade[0].trigger")
    assert problem.message == (
        "cascade fires 'cancel_by_parent' on task children, which the system may not fire "
        "from their open states review; add a transition from each allowing the system role"
    )


def test_a_cascade_to_a_state_that_is_not_final_is_refused() -> None:
    text = CASE.replace(
        "    to: withdrawn\n    roles: [clerk]\n    cascade",
        "    to: open\n    roles: [clerk]\n    cascade",
    )
    with pytest.raises(DefinitionError) as caught:
        load(case=text)
    # withdrawn is no longer reached either: every problem of the file is reported at once
    assert [(p.code, p.path) for p in caught.value.problems] == [
        ("XS104", "states.withdrawn"),
        ("XS133", "transitions[1].cascade"),
    ]
    assert "'open' is not a final state; final states: closed, withdrawn" in (
        caught.value.problems[1].message
    )


def test_a_cascade_naming_an_unknown_workflow_is_refused() -> None:
    text = CASE.replace(
        "cascade: {trigger: cancel_by_parent}",
        "cascade: [{trigger: cancel_by_parent, workflow: taks}]",
    )
    with pytest.raises(DefinitionError) as caught:
        load(case=text)
    assert [(p.code, p.path) for p in caught.value.problems] == [
        ("XS118", "transitions[1].cascade[0].workflow")
    ]
    assert "did you mean 'task'?" in caught.value.problems[0].message
