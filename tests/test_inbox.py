"""The inbox: ``Query(actionable_by=actor)`` lists exactly the instances on which ``available()``
lets the actor fire something now (or with a suitable payload), of those it may read, in
creation order, in full pages that neither repeat nor skip; ``states`` filters several states."""

from __future__ import annotations

import functools
import itertools
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from test_access import NAMES_INSIDE, put

from xieshang import (
    Actor,
    Commit,
    Engine,
    FixedClock,
    Instance,
    PageCursor,
    Query,
    Registry,
    TransitionNotAllowed,
    Usage,
)
from xieshang.access import readers
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.checks import available, fireable
from xieshang.inbox import binding
from xieshang.ports import Store
from xieshang.workflows import bundled

NOW = datetime(2024, 9, 27, 1, tzinfo=UTC)
REGISTRY = bundled()
ORG = "city"

TASK = """\
id: task
version: 1
title: {zh: 待办}
roles:
  clerk: {zh: 办事员}
  chief: {zh: 主任}
start:
  roles: [clerk, chief]
bound_roles:
  clerk: [data.units]
data:
  units: {type: list, items: string, default: []}
  amount: {type: int, default: 0}
states:
  open: {initial: true, label: {zh: 待办}}
  checked: {label: {zh: 已核}}
  done: {final: true, label: {zh: 办结}}
transitions:
  - {trigger: check, from: open, to: checked, roles: [clerk], guard: data.amount % 3 != 0}
  - {trigger: note, from: [open, checked], to: checked, roles: [chief]}
  - {trigger: approve, from: checked, to: done, roles: [chief, clerk], not_by: [note]}
"""
TASKS = 10_000
PAGE = 97


def task_registry() -> Registry:
    return Registry.from_texts([("task.yaml", TASK)])


def unit_of(k: int) -> str:
    return f"u{k % 5}"


def amount_of(k: int) -> int:
    return k % 7


@functools.cache
def started_tasks(count: int) -> tuple[Instance, ...]:
    """``count`` open tasks started by the engine on a fixed clock, seven to a moment (so that
    creation times tie and the id decides); made once per session, in memory."""
    clock = FixedClock(NOW)
    ids = iter(f"t{k:05d}" for k in range(count))
    maker = Engine(MemoryStore(), task_registry(), clock, ids=lambda: next(ids))
    chief = Actor.of("boss", "chief", org=ORG)
    made = []
    for k in range(count):
        if k % 7 == 0:
            clock.advance(seconds=1)
        made.append(maker.start("task", {"units": [unit_of(k)], "amount": amount_of(k)}, chief))
    return tuple(made)


def bulk_tasks(engine: Engine, count: int) -> None:
    """Write the started tasks, with their reader principals, to ``engine``'s store at once."""
    wf = engine.registry.get("task")
    engine._remember_definition(wf)
    made = [i.copy() for i in started_tasks(count)]
    engine.store.apply(Commit(inserts=made, readers={i.id: readers(wf, i) for i in made}))


def walk(engine: Engine, query: Query) -> list[list[Instance]]:
    """Every page of ``query``, each started from the cursor the page before returned."""
    pages = [engine.query(query)]
    while pages[-1].next_cursor is not None:
        assert isinstance(pages[-1].next_cursor, PageCursor)
        pages.append(engine.query(Query(**{**_fields(query), "after": pages[-1].next_cursor})))
    return [p.items for p in pages]


def _fields(q: Query) -> dict[str, Any]:
    return {name: getattr(q, name) for name in Query.__match_args__}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """10,000 tasks in a SQLite file, then in a PostgreSQL schema; written once per backend
    (the tests that use them only read)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('inbox')}/inbox.db"
        with open_store(url) as store:
            yield _filled(store)
        return
    pg_url = str(request.getfixturevalue("pg_url"))
    name = f"xs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={name}"})
        with open_store(url.render_as_string(hide_password=False)) as store:
            yield _filled(store)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _filled(store: Store) -> Engine:
    engine = Engine(store, task_registry(), FixedClock(NOW))
    bulk_tasks(engine, TASKS)
    return engine


def test_the_inbox_pages_over_ten_thousand_instances(big: Engine) -> None:
    """A clerk of u1 may check the open tasks of u1 whose amount is not a multiple of 3: the
    store narrows to u1 (2,000 of 10,000), the guard drops 3 of each 7 of those, and the pages
    (97 each) are full but the last, in creation order, neither repeating nor skipping."""
    clerk = Actor.of("c1", "clerk", org=ORG, unit="u1")
    pages = walk(big, Query(actionable_by=clerk, limit=PAGE))
    expected = [f"t{k:05d}" for k in range(TASKS) if k % 5 == 1 and amount_of(k) % 3 != 0]
    assert len(expected) == 1143
    assert [i.id for page in pages for i in page] == expected
    assert [len(p) for p in pages[:-1]] == [PAGE] * (len(pages) - 1)
    assert len(pages[-1]) == len(expected) % PAGE == 76
    first = big.query(Query(actionable_by=clerk, limit=2))
    assert dict(first.triggers) == {"t00001": ("check",), "t00011": ("check",)}


def test_an_actor_with_nothing_to_do_gets_one_empty_page(big: Engine) -> None:
    """A clerk of no unit, a clerk of a unit no task names, and another org's chief have empty
    inboxes; a chief's holds every open task."""
    for nobody in (
        Actor.of("c0", "clerk", org=ORG),
        Actor.of("c9", "clerk", org=ORG, unit="u9"),
        Actor.of("b2", "chief", org="town"),
    ):
        page = big.query(Query(actionable_by=nobody, limit=PAGE))
        assert (page.items, page.next_cursor) == ([], None)
    chief = Actor.of("b1", "chief", org=ORG)
    assert sum(map(len, walk(big, Query(actionable_by=chief, limit=1000)))) == TASKS


@pytest.fixture(params=["memory", "sqlite"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield MemoryStore()
        return
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        yield store


def test_separation_of_duties_and_states_are_judged(any_store: Store) -> None:
    """approve is not_by note: the chief who noted a task has only note left on it, another
    chief has both; states=[...] keeps the instances in any of the states named."""
    engine = Engine(any_store, task_registry(), FixedClock(NOW))
    bulk_tasks(engine, 20)
    noter, other = Actor.of("b1", "chief", org=ORG), Actor.of("b2", "chief", org=ORG)
    engine.fire("t00003", "note", noter)
    engine.fire("t00004", "note", other)
    page = engine.query(Query(actionable_by=noter, states=["checked"]))
    assert [i.id for i in page.items] == ["t00003", "t00004"]
    assert dict(page.triggers) == {"t00003": ("note",), "t00004": ("note", "approve")}
    both = engine.query(Query(states=["checked", "done"], limit=100))
    assert [i.id for i in both.items] == ["t00003", "t00004"]
    assert engine.query(Query(states=[], limit=100)).items == []
    assert len(engine.query(Query(actionable_by=noter, states=["open"], limit=100)).items) == 18


def test_bad_inbox_queries_are_refused_naming_what_is_allowed() -> None:
    """A cursor no page gave, states that are not a list of names, and an inbox read as another
    actor are Usage errors naming the option."""
    engine = Engine(MemoryStore(), task_registry(), FixedClock(NOW))
    with pytest.raises(Usage) as bad:
        Query(after="page-two")
    assert bad.value.message == "after 'page-two' is not a cursor a page gave (<ISO datetime>|<id>)"
    with pytest.raises(Usage) as bad:
        Query(states="open")  # type: ignore[arg-type]
    assert bad.value.message == "states must be a list of state names (got 'open' that is a str)"
    chief = Actor.of("b1", "chief", org=ORG)
    with pytest.raises(Usage) as bad:
        engine.query(Query(actionable_by=chief), actor=Actor.of("b2", "chief", org=ORG))
    assert "actionable_by 'b1' but actor 'b2'" in bad.value.message
    assert str(PageCursor.parse(("2024-09-27T01:00:00.000000+00:00", "t1"))) == (
        "2024-09-27T01:00:00.000000+00:00|t1"
    )


def test_bindings_the_store_can_test_and_those_it_cannot() -> None:
    """Plain text fields are tested by the store; an expression over a list's members is left
    to the checks (the store matches every unit)."""
    reg = REGISTRY
    assert binding(reg.get("proposal"), "handling_unit").fields == ("units", "lead_unit")
    assert binding(reg.get("proposal_handling"), "handling_unit").own_unit
    assert binding(reg.get("micro_consultation"), "department").anywhere
    assert binding(reg.get("proposal"), "proposal_committee").anywhere


# -- the inbox agrees with available() on random instances of every bundled workflow ---------

WORKFLOWS = REGISTRY.ids()
ROLES = sorted({r for wf in REGISTRY for r in wf.definition.roles} - {"system"})
ACTORS = st.builds(
    Actor.of,
    st.sampled_from(["m1", "m2", "clerk"]),
    st.sampled_from(ROLES),
    st.sampled_from(ROLES),
    org=st.sampled_from([ORG, ORG, "town"]),
    unit=st.sampled_from([None, "unit_in", "unit_out"]),
)
INSTANCES = st.lists(
    st.tuples(
        st.sampled_from(WORKFLOWS),
        st.integers(0, 40),
        st.sampled_from([None, "unit_in", "unit_out"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


def _data(workflow: str, unit: str | None, public: bool) -> dict[str, Any]:
    """Data naming ``unit`` (or a unit nobody acts for) where the workflow names its units,
    m1 as its proposer or reporter, and whether it is public."""
    named = json.dumps(NAMES_INSIDE.get(workflow, {})).replace('"unit_in"', f'"{unit or "unit_x"}"')
    fields = REGISTRY.get(workflow).definition.data
    people = {k: "m1" for k in ("first_proposer", "reporter") if k in fields}
    flag = {"is_public": public} if "is_public" in fields else {}
    return {**json.loads(named), **people, **flag}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(instances=INSTANCES, actor=ACTORS, limit=st.integers(1, 4))
def test_the_inbox_is_what_available_allows(
    any_store: Store, instances: list[tuple[str, int, str | None, bool]], actor: Actor, limit: int
) -> None:
    """For random instances of every bundled workflow in random states, with their units named
    or not, and a random actor (two roles, an org, a unit or none), the inbox pages list
    exactly the instances the actor may read on which available() allows some trigger, with
    those triggers."""
    engine = Engine(any_store, REGISTRY, FixedClock(NOW))
    prefix = f"h{abs(hash((tuple(instances), actor, limit))) % 10**9}-"
    ids = []
    for n, (workflow, pick, unit, public) in enumerate(instances):
        states = sorted(REGISTRY.get(workflow).definition.states)
        own = unit if workflow == "proposal_handling" else None
        iid = f"{prefix}{n:02d}"
        put(engine, workflow, states[pick % len(states)], _data(workflow, unit, public),
            iid=iid, unit=own)  # fmt: skip
        ids.append(iid)
    expected: dict[str, tuple[str, ...]] = {}
    for iid in ids:
        if engine.level(engine.get(iid), actor) == 0:
            continue
        fire = tuple(
            dict.fromkeys(
                a.trigger for a in engine.available(iid, actor) if a.allowed or a.needs_payload
            )
        )
        if fire:
            expected[iid] = fire
    got: dict[str, tuple[str, ...]] = {}
    after: PageCursor | None = None
    while True:
        page = engine.query(Query(actionable_by=actor, limit=limit, after=after))
        assert len(page.items) == limit or page.next_cursor is None
        mine = [i for i in page.items if i.id.startswith(prefix)]
        got |= {i.id: page.triggers[i.id] for i in mine}
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert got == expected


@settings(max_examples=150, deadline=None)
@given(instances=INSTANCES, actor=ACTORS)
def test_what_an_inbox_judges_of_a_row_is_what_available_allows(
    instances: list[tuple[str, int, str | None, bool]], actor: Actor
) -> None:
    """The check an inbox makes of each row its store found (``fireable``, which judges a
    transition only roles and units can refuse without building its step) names exactly the
    triggers available() allows or allows with a payload, for random instances of every bundled
    workflow in random states and a random actor, whatever the store filtered first."""
    engine = Engine(MemoryStore(), REGISTRY, FixedClock(NOW))
    for n, (workflow, pick, unit, public) in enumerate(instances):
        states = sorted(REGISTRY.get(workflow).definition.states)
        own = unit if workflow == "proposal_handling" else None
        stored = put(engine, workflow, states[pick % len(states)], _data(workflow, unit, public),
                     iid=f"i{n:02d}", unit=own)  # fmt: skip
        judged = [a for a in available(engine, stored, actor) if a.allowed or a.needs_payload]
        assert fireable(engine, stored, actor) == tuple(dict.fromkeys(a.trigger for a in judged))


# the task's roles, binding and data, with a transition of each kind of check
JUDGED = TASK.split("states:")[0].replace("id: task", "id: judged") + """\
states:
  open: {initial: true, label: {zh: 待办}}
  done: {final: true, label: {zh: 办结}}
transitions:
  - {trigger: take, from: open, to: open, roles: [clerk]}
  - {trigger: weigh, from: open, to: open, roles: [chief], guard: data.amount > 2}
  - {trigger: halve, from: open, to: open, roles: [chief], set: {amount: 12 / data.amount}}
  - trigger: mark
    from: open
    to: open
    roles: [chief]
    warn:
      - {code: big, when: data.amount > 4, mode: refuse, message: {zh: 太大}}
  - {trigger: note, from: open, to: open, roles: [chief]}
  - {trigger: close, from: open, to: done, roles: [chief, clerk], not_by: [note]}
"""


def test_each_kind_of_check_an_inbox_makes_of_a_row_agrees_with_available() -> None:
    """A transition only roles and units decide (``take``, ``note``), and one a guard, an
    effect, a refusing soft rule or separation of duties also decides: for instances of each
    amount, with a unit or none, noted by the chief or not, and actors of each role and unit,
    ``fireable`` names what available() allows or allows with a payload."""
    engine = Engine(MemoryStore(), Registry.from_texts([("judged.yaml", JUDGED)]), FixedClock(NOW))
    chief = Actor.of("boss", "chief", org=ORG)
    actors = [chief, Actor.of("c0", "chief", org=ORG)] + [
        Actor.of(f"k{unit}", "clerk", org=ORG, unit=unit) for unit in ("u1", "u2", None)
    ]
    seen: set[tuple[str, ...]] = set()
    for amount, units, noted in itertools.product(range(7), ([], ["u1"]), (False, True)):
        stored = engine.start("judged", {"units": units, "amount": amount}, chief)
        if noted:
            stored = engine.fire(stored.id, "note", chief)
        for actor in actors:
            judged = [a for a in available(engine, stored, actor) if a.allowed or a.needs_payload]
            fire = fireable(engine, stored, actor)
            assert fire == tuple(dict.fromkeys(a.trigger for a in judged)), (amount, units, actor)
            seen.add(fire)
    # each check both lets a trigger through and holds it back somewhere
    for trigger in ("take", "weigh", "halve", "mark", "close"):
        assert any(trigger in fire for fire in seen) and any(trigger not in f for f in seen)


EFFECTS = """\
id: effects
version: 1
title: {zh: 效果}
roles:
  clerk: {zh: 办事员}
start:
  roles: [clerk]
data:
  amount: {type: int, default: 0}
states:
  open: {initial: true, label: {zh: 待办}}
  done: {label: {zh: 办结}}
  archived: {final: true, label: {zh: 归档}}
transitions:
  - trigger: weigh
    from: open
    to: open
    roles: [clerk]
    payload: {grams: {type: int}}
    set: {amount: payload.grams * 2}
  - {trigger: split, from: open, to: done, roles: [clerk], set: {amount: data.amount / 0}}
  - {trigger: close, from: open, to: done, roles: [clerk]}
  - {trigger: reopen, from: done, to: open, roles: [clerk]}
  - {trigger: archive, from: done, to: archived, roles: [clerk]}
"""


def test_effects_that_fail_without_the_payload_leave_a_trigger_in_the_inbox(
    any_store: Store,
) -> None:
    """weigh's effect reads an optional payload field, so it fails on the payload left out: a
    suitable payload may pass it, and the inbox lists it (as available() says it needs one).
    split's effect fails on any payload (it has none): the inbox leaves it out, and so does
    the refusal of a trigger from another state, naming what the actor may fire instead."""
    engine = Engine(any_store, Registry.from_texts([("e.yaml", EFFECTS)]), FixedClock(NOW))
    clerk = Actor.of("c1", "clerk", org=ORG)
    iid = engine.start("effects", {}, clerk).id
    judged = {a.trigger: (a.allowed, a.needs_payload) for a in engine.available(iid, clerk)}
    assert judged == {"weigh": (False, True), "split": (False, False), "close": (True, False)}
    page = engine.query(Query(actionable_by=clerk))
    assert [i.id for i in page.items] == [iid]
    assert page.triggers[iid] == ("weigh", "close")
    with pytest.raises(TransitionNotAllowed) as refused:
        engine.fire(iid, "reopen", clerk)
    assert refused.value.allowed == ["close", "weigh"]
