"""A store's pages of a query, read scope and inbox clauses included, are exactly the instances a
plain filter keeps, in creation order, each once: over a few hundred random instances with
random readers, on SQLite and PostgreSQL and in memory, whatever the page size.

The filter below is written from the documented meaning of :class:`xieshang.Query` and
:class:`xieshang.ActClause`, not from any store's code.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xieshang import ActClause, Commit, Engine, Instance, PageCursor, Query, Registry, Store
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store

FLOW = """\
id: {id}
version: {version}
title: {{zh: 案件}}
roles:
  clerk: {{zh: 办事员}}
  handling_unit: {{zh: 承办单位}}
start:
  roles: [clerk]
data:
  title: {{type: string}}
states:
  received: {{initial: true, label: {{zh: 已收到}}}}
  handling: {{label: {{zh: 办理中}}}}
  replied: {{label: {{zh: 已答复}}}}
  closed: {{final: true, label: {{zh: 已办结}}}}
transitions:
  - {{trigger: accept, from: received, to: handling, roles: [clerk]}}
  - {{trigger: reply, from: handling, to: replied, roles: [handling_unit]}}
  - {{trigger: close, from: replied, to: closed, roles: [clerk]}}
"""
REGISTRY = Registry.from_texts(
    [
        ("case1.yaml", FLOW.format(id="case", version=1)),
        ("case2.yaml", FLOW.format(id="case", version=2)),
        ("note1.yaml", FLOW.format(id="note", version=1)),
    ]
)
VERSIONS = [(wf.id, wf.definition.version, wf.hash) for wf in REGISTRY.versions()]
HASHES = [h for _, _, h in VERSIONS]
STATES = ("received", "handling", "replied", "closed")
ORGS = ("org0", "org1")
UNITS = ("u0", "u1", "u2")
PRINCIPALS = (
    "*",
    "a:m1",
    "a:m2",
    "r:clerk",
    "r:handling_unit",
    *(f"u:handling_unit:{u}" for u in UNITS),
)
T0 = datetime(2025, 3, 3, 1, tzinfo=UTC)


def world(seed: int, count: int) -> tuple[list[Instance], dict[str, dict[str, int]]]:
    """``count`` instances and their readers, drawn from ``seed``: creation times collide (the
    id breaks the tie), units and readers vary independently."""
    rnd = random.Random(seed)
    out, readers = [], {}
    for k in range(count):
        workflow, version, definition = rnd.choice(VERSIONS)
        state = rnd.choice(STATES)
        at = T0 + timedelta(seconds=rnd.randrange(count // 2))
        units = rnd.sample(UNITS, rnd.randrange(3))
        data: dict[str, Any] = {"title": f"t{k}", "units": units}
        if rnd.random() < 0.5:
            data["lead_unit"] = rnd.choice(UNITS)
        iid = f"i{rnd.randrange(10**6):06d}-{k}"
        out.append(
            Instance(
                iid,
                workflow,
                version,
                definition,
                rnd.choice(ORGS),
                state,
                data,
                1,
                at,
                at,
                at,
                final=state == "closed",
                overdue=state == "handling" and rnd.random() < 0.5,
                unit=rnd.choice((None, *UNITS)),
                head_hash="h",
            )
        )
        chosen = rnd.sample(PRINCIPALS, rnd.randrange(4))
        if chosen or rnd.random() < 0.5:  # some have no row at all, some an empty set
            readers[iid] = {p: rnd.randint(1, 3) for p in chosen}
    return out, readers


def holds(value: Any, unit: str) -> bool:
    return value == unit or (isinstance(value, list) and unit in value)


def clause_matches(i: Instance, c: ActClause) -> bool:
    """An inbox clause as ActClause's documentation states it."""
    if c.workflow is not None and i.workflow != c.workflow:
        return False
    if c.definition_hash is None:
        return (
            not i.final
            and i.definition_hash not in c.known
            and (not c.states or i.state in c.states)
        )
    if i.definition_hash != c.definition_hash or i.state not in c.states:
        return False
    if c.anywhere:
        return True
    if c.own_unit and (i.unit is None or i.unit == c.unit):
        return True
    return c.unit is not None and any(holds(i.data.get(f), c.unit) for f in c.fields)


def kept(instances: list[Instance], readers: dict[str, dict[str, int]], q: Query) -> list[str]:
    """The ids ``q`` asks for, by a plain filter over every instance, in creation order."""
    out = []
    for i in sorted(instances, key=lambda i: (i.created_at, i.id)):
        equal = [(q.workflow, i.workflow), (q.state, i.state), (q.org, i.org),
                 (q.unit, i.unit), (q.overdue, i.overdue), (q.final, i.final)]  # fmt: skip
        if any(want is not None and want != have for want, have in equal):
            continue
        if q.states is not None and i.state not in q.states:
            continue
        if q.readers is not None and not q.readers & set(readers.get(i.id, {})):
            continue
        if q.acts is not None and not any(clause_matches(i, c) for c in q.acts):
            continue
        out.append(i.id)
    return out


BINDINGS = {
    "anywhere": {"anywhere": True},
    "own": {"own_unit": True},
    "fields": {"fields": ("units",)},
    "own and fields": {"own_unit": True, "fields": ("lead_unit", "units")},
}


@st.composite
def inbox(draw: st.DrawFn) -> tuple[ActClause, ...]:
    """An actor's clauses as the engine makes them: per version, its states grouped by how the
    actor's role is bound there (disjoint, so a store may merge one select per state), and one
    for the versions the engine has not loaded; sometimes with overlapping clauses added."""
    unit = draw(st.sampled_from((None, *UNITS)))
    out = []
    for workflow, _, definition in VERSIONS:
        by: dict[str, list[str]] = {}
        for state in STATES:
            how = draw(st.sampled_from((None, *BINDINGS)))
            if how is not None:
                by.setdefault(how, []).append(state)
        out += [
            ActClause(workflow, definition, tuple(states), unit=unit, **BINDINGS[how])  # type: ignore[arg-type]
            for how, states in by.items()
        ]
    known = draw(st.sets(st.sampled_from(HASHES), min_size=1))
    wanted = draw(st.sets(st.sampled_from(STATES), max_size=2))
    out.append(ActClause(None, None, tuple(sorted(wanted)), known=tuple(sorted(known))))
    if draw(st.integers(0, 3)) == 0:
        extra = draw(st.sampled_from(out))
        out.append(ActClause(extra.workflow, extra.definition_hash, extra.states, anywhere=True))
    return tuple(out)


queries = st.builds(
    Query,
    workflow=st.sampled_from((None, None, "case", "note")),
    state=st.sampled_from((None, None, None, *STATES)),
    org=st.sampled_from((None, *ORGS)),
    overdue=st.sampled_from((None, None, True, False)),
    final=st.sampled_from((None, None, True, False)),
    unit=st.sampled_from((None, None, None, *UNITS)),
    states=st.one_of(st.none(), st.lists(st.sampled_from(STATES), min_size=1, max_size=3)),
    readers=st.one_of(
        st.none(), st.frozensets(st.sampled_from(PRINCIPALS), min_size=1, max_size=5)
    ),
    acts=st.one_of(st.none(), inbox()),
)


@pytest.fixture
def store(sql_url: str) -> Iterator[Store]:
    """A store on each SQL backend knowing every version's definition."""
    with open_store(sql_url) as made:
        remember(made)
        yield made


def remember(store: Store) -> None:
    engine = Engine(store, REGISTRY)
    for wf in REGISTRY.versions():
        engine._remember_definition(wf)


def clear(store: Any) -> None:
    """Every instance and reader row gone (the definitions stay)."""
    conn = store._get()
    try:
        conn.execute("DELETE FROM readers")
        conn.execute("DELETE FROM instances")
        conn.commit()
    finally:
        store._put(conn)


def pages(store: Store, q: Query, limit: int) -> list[list[str]]:
    """Every page of ``q``, each after the last row of the one before, until a short page."""
    out: list[list[str]] = []
    after: PageCursor | None = None
    while True:
        rows = store.query(Query(**{**_fields(q), "limit": limit, "after": after}))
        out.append([i.id for i in rows])
        if len(rows) < limit:
            return out
        after = PageCursor.of(rows[-1])


def _fields(q: Query) -> dict[str, Any]:
    return {name: getattr(q, name) for name in Query.__match_args__}


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(150, 300),
    asked=st.lists(queries, min_size=6, max_size=12),
    limit=st.integers(1, 9),
)
def test_every_page_holds_what_a_plain_filter_keeps(
    store: Store, seed: int, count: int, asked: list[Query], limit: int
) -> None:
    """Paged by ``after`` at any size, the pages of each query, from the SQL store and from the
    memory store, concatenate to exactly the ids the plain filter keeps, in creation order: no
    row lost, repeated or out of scope, and every page but the last is full."""
    clear(store)
    memory = MemoryStore()
    remember(memory)
    instances, readers = world(seed, count)
    for each in (store, memory):
        each.apply(Commit(inserts=instances, readers=readers))
    for q in asked:
        expected = kept(instances, readers, q)
        for each in (store, memory):
            found = pages(each, q, limit)
            assert [i for page in found for i in page] == expected, (type(each).__name__, q)
            assert all(len(page) == limit for page in found[:-1])
            assert len(found[-1]) < limit


def test_a_definition_another_process_stores_is_in_the_next_inbox_page(sql_url: str) -> None:
    """An inbox's clause for the definitions an engine has not loaded reads the instances of
    the definitions stored then: one that another process stores after this store read an inbox
    is in this store's very next page (on PostgreSQL the stored definitions are read with the
    page, and a page made for fewer is read again)."""
    case1, note1 = (wf for wf in REGISTRY.versions() if wf.definition.version == 1)
    clause = ActClause(None, None, ("received",), known=(case1.hash,))
    inbox = Query(acts=(clause,), limit=10)
    with open_store(sql_url) as here, open_store(sql_url) as other:
        Engine(here, REGISTRY)._remember_definition(case1)
        assert here.query(inbox) == here.query(inbox) == []
        Engine(other, REGISTRY)._remember_definition(note1)
        new = Instance(
            "n1", "note", 1, note1.hash, "org0", "received", {"title": "t"}, 1, T0, T0, T0,
            head_hash="h",
        )  # fmt: skip
        other.apply(Commit(inserts=[new]))
        assert [i.id for i in here.query(inbox)] == ["n1"]
        assert [i.id for i in here.query(inbox)] == ["n1"]
