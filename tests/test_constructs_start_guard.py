"""A guard on start: ``start.guard`` over the new instance's data, params, actor and now.

A start whose guard does not hold is refused as a ``TransitionNotAllowed`` of trigger
``start`` naming the guard and its message, and writes nothing. The guard runs after the
roles and the data are checked, over the data as validated (defaults filled). Children a
parent's spawn starts are not judged by it. A guard that reads a name a start does not have is
a load-time problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from constructs_support import BACKENDS, make_engine, snapshot

from xieshang import (
    Actor,
    DefinitionError,
    Engine,
    Forbidden,
    InvalidPayload,
    Registry,
    TransitionNotAllowed,
)

MEMBER = Actor.of("m1", "member", org="city")
PARTY = Actor.of("p1", "member", "party_org", org="city")
OFFICE = Actor.of("o1", "office", org="city")

SUGGESTION = """\
id: topic_suggestion
version: 1
title: {zh: 议题建议}
roles: {member: {zh: 委员}, party_org: {zh: 民主党派}, office: {zh: 政协办公室}}
params:
  years_ahead: {type: int, default: 1}
start:
  roles: [member]
  guard: >-
    data.year >= year(now) && data.year <= year(now) + params.years_ahead
    && (data.category != 'party' || 'party_org' in actor.roles)
  guard_message:
    zh: >-
      年度须为{year(now)}至{year(now) + params.years_ahead}年，党派议题由党派提出（收到{data.year}）
    en: >-
      the year must be {year(now)} to {year(now) + params.years_ahead}; party topics come
      from a party
data:
  title: {type: string, required: true}
  year: {type: int, required: true}
  category: {type: enum, values: [general, party], default: general}
states:
  received: {initial: true, label: {zh: 已收到}}
  filed: {final: true, label: {zh: 已登记}}
transitions:
  - trigger: file
    from: received
    to: filed
    roles: [office]
"""

CALL = """\
id: call
version: 1
title: {zh: 征集}
roles: {office: {zh: 政协办公室}}
data:
  title: {type: string, required: true}
states:
  open: {initial: true, label: {zh: 征集中}}
  closed: {final: true, label: {zh: 已结束}}
transitions:
  - trigger: carry_over
    from: open
    to: closed
    roles: [office]
    payload: {year: {type: int, required: true}}
    spawn:
      workflow: topic_suggestion
      for_each: "[payload.year]"
      data: {title: data.title, year: item}
"""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request, tmp_path, {"topic_suggestion": SUGGESTION, "call": CALL})


def test_a_start_the_guard_refuses_names_it_and_writes_nothing(engine: Engine) -> None:
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed) as caught:
        engine.start("topic_suggestion", {"title": "城市更新", "year": 2030}, MEMBER)
    assert caught.value.message == (
        "'start' of 'topic_suggestion' refused: 年度须为2024至2025年，党派议题由党派提出"
        "（收到2030） / the year must be 2024 to 2025; party topics come from a party"
    )
    assert caught.value.details["trigger"] == "start"
    assert caught.value.details["state"] == "received"
    assert caught.value.details["guard"].startswith("data.year >= year(now)")
    assert snapshot(engine) == before
    assert engine.store.load_definition(engine.registry.get("topic_suggestion").hash) is None


def test_the_guard_reads_the_actor(engine: Engine) -> None:
    data = {"title": "民营经济发展", "year": 2024, "category": "party"}
    with pytest.raises(TransitionNotAllowed):
        engine.start("topic_suggestion", data, MEMBER)
    started = engine.start("topic_suggestion", data, PARTY)
    assert (started.state, started.version, started.data["category"]) == ("received", 1, "party")
    assert engine.verify() == []


def test_a_start_that_holds_reads_defaults(engine: Engine) -> None:
    started = engine.start("topic_suggestion", {"title": "城市更新", "year": 2025}, MEMBER)
    assert started.data == {"title": "城市更新", "year": 2025, "category": "general"}


def test_roles_and_data_are_judged_before_the_guard(engine: Engine) -> None:
    with pytest.raises(Forbidden):
        engine.start("topic_suggestion", {"title": "x", "year": 2030}, OFFICE)
    with pytest.raises(InvalidPayload) as caught:
        engine.start("topic_suggestion", {"title": "x"}, MEMBER)
    assert caught.value.errors[0]["field"] == "year"


def test_a_child_started_by_a_spawn_is_not_judged_by_the_start_guard(engine: Engine) -> None:
    call = engine.start("call", {"title": "跨年议题"}, OFFICE).id
    engine.fire(call, "carry_over", OFFICE, {"year": 2030})
    (child,) = engine.children(call)
    assert (child.workflow, child.data["year"]) == ("topic_suggestion", 2030)


@pytest.mark.parametrize(
    ("guard", "code", "says"),
    [
        ("payload.year > 0", "XS121", "unknown name 'payload'"),
        ("data.yaer > 0", "XS123", "data.yaer is not declared"),
        ("instance.id != ''", "XS121", "names allowed here: actor, data, now, params"),
        ("data.year >", "XS120", ""),
    ],
)
def test_a_bad_start_guard_is_a_load_time_problem(guard: str, code: str, says: str) -> None:
    text = SUGGESTION.replace(
        "  guard: >-\n    data.year >= year(now) && data.year <= year(now) + params.years_ahead\n"
        "    && (data.category != 'party' || 'party_org' in actor.roles)\n",
        f'  guard: "{guard}"\n',
    )
    with pytest.raises(DefinitionError) as caught:
        Registry.from_texts([("s.yaml", text)])
    problems = caught.value.problems
    assert [(p.code, p.path) for p in problems] == [(code, "start.guard")]
    assert says in problems[0].message
