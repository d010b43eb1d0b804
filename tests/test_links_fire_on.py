"""Steps that reach another instance: ``fire_on`` and ``spawn.id``; list params with values.

A ``fire_on`` fires a trigger on the instance it names, as ``system``, in the same commit as the
step; when that instance refuses, the step is refused and nothing anywhere changes. A spawn
that names its child's id lets the parent record the id; an id already taken is refused.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from xieshang import (
    Actor,
    DefinitionError,
    Engine,
    FixedClock,
    InvalidPayload,
    Registry,
    TransitionNotAllowed,
)
from xieshang.adapters.memory import MemoryStore

CN = timezone(timedelta(hours=8))
CLERK = Actor.of("c1", "clerk", org="city")
OTHER_ORG = Actor.of("c9", "clerk", org="elsewhere")

TICKET = """\
id: ticket
version: 1
title: {zh: 工单}
roles: {clerk: {zh: 办事员}}
start: {roles: [clerk]}
params:
  most_taken: {type: int, default: 2}
  kinds: {type: list, default: [fault, request], values: [fault, request, praise]}
data:
  title: {type: string, required: true}
  into: {type: string}
  taken: {type: list, items: string, default: []}
  note: {type: string}
states:
  open: {initial: true, label: {zh: 处理中}}
  folded: {final: true, label: {zh: 已归并}}
  done: {final: true, label: {zh: 已办结}}
transitions:
  - trigger: fold_into
    from: open
    to: folded
    roles: [clerk]
    payload: {target: {type: string, required: true}}
    set: {into: payload.target}
    fire_on:
      instance: payload.target
      workflow: ticket
      trigger: take
      payload: {from_id: instance.id}
      message: {zh: 只能归并到处理中的工单, en: a ticket folds only into an open one}
  - trigger: take
    from: open
    to: open
    roles: [system]
    payload: {from_id: {type: string, required: true}}
    guard: size(data.taken) < params.most_taken
    guard_message: {zh: "最多归并{params.most_taken}件"}
    set: {taken: "data.taken + [payload.from_id]"}
  - trigger: close
    from: open
    to: done
    roles: [clerk]
  - trigger: split_off
    from: open
    to: open
    roles: [clerk]
    payload: {child: {type: string, required: true}}
    set: {note: "instance.id + '/' + payload.child"}
    spawn:
      workflow: ticket
      for_each: "[payload.child]"
      id: "instance.id + '/' + item"
      data: {title: item}
"""


def registry(text: str = TICKET, **params: Any) -> Registry:
    return Registry.from_texts([("ticket.yaml", text)], params={"ticket": params})


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    clock = FixedClock(datetime(2024, 3, 4, 9, tzinfo=CN))
    counter = itertools.count(1)
    ids = lambda: f"t{next(counter):03d}"  # noqa: E731 (a one-line id generator)
    if request.param == "memory":
        yield Engine(MemoryStore(), registry(), clock, ids=ids)
        return
    from xieshang.adapters.sql import open_store

    url = (
        f"sqlite:///{tmp_path / 'links.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    store = open_store(url, synchronous="NORMAL")
    yield Engine(store, registry(), clock, ids=ids)
    store.close()  # type: ignore[attr-defined]


def ticket(engine: Engine, title: str, actor: Actor = CLERK) -> str:
    return engine.start("ticket", {"title": title}, actor).id


def snapshot(engine: Engine) -> tuple[Any, ...]:
    ids = sorted(engine.store.instance_ids())  # type: ignore[attr-defined]
    rows = [engine.store.load(i, fresh=True) for i in ids]
    return (
        [(r.id, r.state, r.version, r.data) for r in rows if r is not None],
        [len(engine.store.history(i)) for i in ids],
        len(engine.store.outbox()),
    )


def test_fire_on_steps_both_instances_in_one_commit(engine: Engine) -> None:
    """The folded ticket and the one it folds into each get one row; both replay."""
    main, dup = ticket(engine, "路灯不亮"), ticket(engine, "路灯坏了")
    folded = engine.fire(dup, "fold_into", CLERK, {"target": main})
    assert (folded.state, folded.data["into"]) == ("folded", main)
    taken = engine.get(main)
    assert (taken.state, taken.version, taken.data["taken"]) == ("open", 2, [dup])
    row = engine.history(main)[-1]
    assert (row.trigger, row.actor["id"], row.role, row.payload) == (
        "take",
        "system",
        "system",
        {"from_id": dup},
    )
    assert [e.type for e in engine.store.outbox(main)][-1] == "xieshang.instance.transitioned"
    assert engine.verify() == []
    assert engine.replay(main).data == taken.data


def test_a_refusal_by_the_other_instance_refuses_the_step_and_changes_nothing(
    engine: Engine,
) -> None:
    """The other instance's guard refuses: the step is refused with its message, and no
    instance, row or event is written."""
    main = ticket(engine, "井盖缺失")
    for n in range(2):
        engine.fire(ticket(engine, f"重复{n}"), "fold_into", CLERK, {"target": main})
    third = ticket(engine, "重复2")
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(third, "fold_into", CLERK, {"target": main})
    assert err.value.message == (
        f"'fold_into' refused in state 'open': 只能归并到处理中的工单 / a ticket folds only "
        f"into an open one (ticket {main!r} is in state 'open': 'take' refused in state "
        f"'open': 最多归并2件)"
    )
    assert err.value.details["target"]["state"] == "open"
    assert err.value.details["target"]["refusal"]["code"] == "transition-not-allowed"
    assert snapshot(engine) == before


def test_an_instance_in_a_state_the_trigger_does_not_leave_refuses(engine: Engine) -> None:
    main, dup = ticket(engine, "噪音扰民"), ticket(engine, "夜间施工")
    engine.fire(main, "close", CLERK)
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(dup, "fold_into", CLERK, {"target": main})
    assert f"(ticket {main!r} is in state 'done': 'take' cannot fire in state 'done'" in (
        err.value.message
    )
    assert "(only from open)" in err.value.message
    assert snapshot(engine) == before


@pytest.mark.parametrize("target", ["self", "missing", "other_org"])
def test_no_other_instance_of_the_org_to_fire_on_is_a_refusal(engine: Engine, target: str) -> None:
    dup = ticket(engine, "占道经营")
    elsewhere = ticket(engine, "别处的工单", OTHER_ORG)
    name = {"self": dup, "missing": "t999", "other_org": elsewhere}[target]
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(dup, "fold_into", CLERK, {"target": name})
    assert f"there is no other ticket {name!r} of org 'city' to fire 'take' on" in (
        err.value.message
    )
    assert snapshot(engine) == before


def test_a_spawn_names_its_child_and_refuses_an_id_taken(engine: Engine) -> None:
    """The parent records the child's id with the same expression; a second child with the
    same id is refused, naming it."""
    parent = ticket(engine, "小区改造")
    done = engine.fire(parent, "split_off", CLERK, {"child": "加装电梯"})
    child = engine.get(f"{parent}/加装电梯")
    assert (done.data["note"], child.parent_id, child.data["title"]) == (
        child.id,
        parent,
        "加装电梯",
    )
    before = snapshot(engine)
    with pytest.raises(InvalidPayload) as err:
        engine.fire(parent, "split_off", CLERK, {"child": "加装电梯"})
    assert err.value.errors == [
        {"field": "spawn[0].id", "error": f"instance '{parent}/加装电梯' already exists"}
    ]
    assert snapshot(engine) == before
    assert engine.verify() == []


def test_fire_on_must_name_a_trigger_the_system_may_fire() -> None:
    text = TICKET.replace("trigger: take\n      payload", "trigger: close\n      payload")
    with pytest.raises(DefinitionError) as err:
        registry(text)
    [problem] = err.value.problems
    assert (problem.code, problem.path) == ("XS113", "transitions[0].fire_on.trigger")
    assert "no transition of 'ticket' lets the system role fire" in problem.message


def test_fire_on_must_name_a_loaded_workflow() -> None:
    text = TICKET.replace(
        "workflow: ticket\n      trigger: take", "workflow: tickets\n      trigger: take"
    )
    with pytest.raises(DefinitionError) as err:
        registry(text)
    [problem] = err.value.problems
    assert (problem.code, problem.path) == ("XS118", "transitions[0].fire_on.workflow")
    assert problem.message == "fire_on names unknown workflow 'tickets'; did you mean 'ticket'?"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            ["fault", "complaint"],
            "override ['fault', 'complaint']: 'complaint' not one of fault, request, praise",
        ),
        ("fault", "override 'fault': expected a list of strings"),
        ([1], "override [1]: expected a list of strings"),
    ],
)
def test_a_list_param_takes_only_its_values(override: Any, message: str) -> None:
    with pytest.raises(DefinitionError) as err:
        registry(kinds=override)
    [problem] = err.value.problems
    assert (problem.code, problem.path, problem.message) == (
        "XS116",
        "params.kinds.default",
        message,
    )
    assert registry(kinds=["praise"]).get("ticket").params["kinds"] == ["praise"]
