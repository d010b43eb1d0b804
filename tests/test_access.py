"""Access: unit-level roles act only for the units an instance names, and reads follow the
workflow's ``read:`` rules (a reader who may not see an instance gets NotFound, as for none)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xieshang import Actor, Engine, FixedClock, Forbidden, NotFound, Query, Registry, access
from xieshang.access import readers
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.compiler import CompiledWorkflow
from xieshang.ports import Store
from xieshang.records import Commit, Instance
from xieshang.workflows import bundled

NOW = datetime(2024, 9, 27, 1, tzinfo=UTC)
ORG = "city"
INSIDE, OUTSIDE = "unit_in", "unit_out"
UNIT_ROLES = {"handling_unit", "department", "appraised_unit"}
# a department's topic suggestion answers the plan's open call: no unit is named there to bind
OPEN_TO_EVERY_UNIT = {("annual_consultation_plan", "department")}
# the data by which each workflow names INSIDE as its unit (proposal_handling: the instance's own)
NAMES_INSIDE: dict[str, dict[str, Any]] = {
    "proposal": {"units": [INSIDE], "lead_unit": INSIDE, "mode": "sole"},
    "consultation_topic": {"departments": [INSIDE]},
    "democratic_appraisal": {"target_unit": INSIDE},
    "key_proposal_supervision": {"units": [INSIDE]},
    "micro_consultation": {"tasks": [{"task": "t", "owner": INSIDE, "due_date": "2030-01-01"}]},
    "opinion_report": {"department": INSIDE},
    "proposal_handling": {},
}
EXAMPLE = {"string": "x", "text": "x", "int": 2024, "number": 1.0, "bool": True}


def required_data(wf: CompiledWorkflow) -> dict[str, Any]:
    """Values for the workflow's required fields, of the declared types."""
    out: dict[str, Any] = {}
    for name, spec in wf.definition.data.items():
        if not spec.required:
            continue
        if spec.type == "enum":
            out[name] = (spec.values or ("x",))[0]
        elif spec.type == "date":
            out[name] = "2024-09-27"
        elif spec.type == "list":
            out[name] = []
        else:
            out[name] = EXAMPLE.get(spec.type, "x")
    return out


def put(
    engine: Engine,
    workflow: str,
    state: str,
    data: dict[str, Any],
    *,
    iid: str,
    unit: str | None = None,
) -> Instance:
    """Store an instance in any state, with its reader principals, as a step would write it."""
    wf = engine.registry.get(workflow)
    engine._remember_definition(wf)
    instance = Instance(
        iid, workflow, wf.definition.version, wf.hash, ORG, state,
        {**required_data(wf), **data}, 1, NOW, NOW, NOW,
        final=state in wf.final_states, unit=unit,
    )  # fmt: skip
    engine.store.apply(Commit(inserts=[instance], readers={iid: readers(wf, instance)}))
    return instance


@pytest.fixture
def engine() -> Engine:
    return Engine(MemoryStore(), bundled(), FixedClock(NOW))


# -- 1. units bound everywhere they act ---------------------------------------------------------


def test_every_unit_level_role_of_a_bundled_workflow_is_bound() -> None:
    """A role that acts for a unit (承办单位, 责任部门, 被评议单位) is bound in every workflow
    where it fires a transition, but for the plan's open call for topics."""
    for wf in bundled():
        acting = {r for t in wf.definition.transitions for r in t.roles} & UNIT_ROLES
        for role in acting - {r for (w, r) in OPEN_TO_EVERY_UNIT if w == wf.id}:
            assert role in wf.bound, f"{wf.id}: {role} is not bound"


BOUND_CASES = [
    (wf.id, role, t.trigger, state)
    for wf in bundled()
    for role in wf.bound
    for t in wf.definition.transitions
    if role in t.roles
    for state in sorted(t.from_)
]


@pytest.mark.parametrize(("workflow", "role", "trigger", "state"), BOUND_CASES)
def test_a_unit_outside_the_instance_is_refused_and_available_agrees(
    engine: Engine, workflow: str, role: str, trigger: str, state: str
) -> None:
    """An actor of a bound role acting for a unit the instance does not name is Forbidden for
    every trigger of that role, naming its unit and the units allowed; available() says no.
    Where it may not even read the instance, both answer NotFound, as for no instance."""
    unit = INSIDE if workflow == "proposal_handling" else None
    put(engine, workflow, state, NAMES_INSIDE[workflow], iid="i1", unit=unit)
    outsider = Actor.of("clerk", role, org=ORG, unit=OUTSIDE)
    if engine.level(engine.get("i1"), outsider) == 0:
        with pytest.raises(NotFound) as unseen:
            engine.fire("i1", trigger, outsider, {}, reason="r")
        with pytest.raises(NotFound) as absent:
            engine.fire("none", trigger, outsider, {}, reason="r")
        assert unseen.value.message == absent.value.message.replace("'none'", "'i1'")
        with pytest.raises(NotFound):
            engine.available("i1", outsider)
        assert engine.history("i1") == [] and engine.get("i1").version == 1
        return
    with pytest.raises(Forbidden) as refused:
        engine.fire("i1", trigger, outsider, {}, reason="r")
    assert refused.value.allowed == [INSIDE]
    assert OUTSIDE in refused.value.message and INSIDE in refused.value.message
    assert engine.history("i1") == [] and engine.get("i1").version == 1
    [choice] = [a for a in engine.available("i1", outsider) if a.trigger == trigger][:1]
    assert not choice.allowed and OUTSIDE in (choice.reason or "")
    insider = Actor.of("clerk", role, org=ORG, unit=INSIDE)
    for a in engine.available("i1", insider):
        assert a.reason is None or "acts for unit" not in a.reason


def test_an_unassigned_clerk_cannot_ask_for_an_extension(engine: Engine) -> None:
    """The issue's case: a clerk of a unit never assigned is refused request_extension, and it is
    not in that clerk's inbox; the assigned unit's clerk may ask."""
    put(
        engine,
        "proposal",
        "assigned",
        {"units": ["water"], "lead_unit": "water", "mode": "sole", "assigned_on": "2024-09-01",
         "reply_due": "2024-12-01", "is_public": True},
        iid="p1",
    )  # fmt: skip
    stranger = Actor.of("x", "handling_unit", org=ORG, unit="housing")
    with pytest.raises(Forbidden, match="housing"):
        engine.fire("p1", "request_extension", stranger, {"new_due": "2025-01-01"}, reason="r")
    inbox = {a.trigger: a.allowed for a in engine.available("p1", stranger)}
    assert inbox["request_extension"] is False
    clerk = Actor.of("y", "handling_unit", org=ORG, unit="water")
    done = engine.fire("p1", "request_extension", clerk, {"new_due": "2025-01-01"}, reason="r")
    assert done.data["extension_requested_due"] == "2025-01-01"


# -- 2. who may read what ------------------------------------------------------------------------

PROPOSAL = bundled().get("proposal")
AUTHOR = Actor.of("m1", "member", org=ORG)
CO = Actor.of("m2", "member", org=ORG)
MEMBER = Actor.of("m3", "member", org=ORG)
COMMITTEE = Actor.of("c1", "proposal_committee", org=ORG)
OFFICE = Actor.of("s1", "supervision_office", org=ORG)
CHAIRS = Actor.of("ch", "chairpersons_council", org=ORG)
ASSIGNED = Actor.of("h1", "handling_unit", org=ORG, unit="water")
UNASSIGNED = Actor.of("h2", "handling_unit", org=ORG, unit="housing")
ELSEWHERE = Actor.of("c9", "proposal_committee", org="another")
READERS = [AUTHOR, CO, MEMBER, COMMITTEE, OFFICE, CHAIRS, ASSIGNED, UNASSIGNED, ELSEWHERE]
HIDDEN_STATES = {"draft", "cosigning"}


def expected_level(actor: Actor, state: str, public: bool) -> str | None:
    """The proposal's read rules, written out by hand: None, 'see', 'data' or 'internal'."""
    if actor.org != ORG:
        return None
    if actor is AUTHOR:
        return "data"
    if actor is CO and state != "draft":
        return "data"
    if actor is ASSIGNED:
        return "data"
    if state in HIDDEN_STATES:
        return None
    if actor in (COMMITTEE, OFFICE):
        return "internal"
    if actor is CHAIRS and public:
        return "data"
    return "see" if public else None


def proposal_in(engine: Engine, state: str, public: bool, iid: str) -> Instance:
    return put(
        engine,
        "proposal",
        state,
        {"first_proposer": "m1", "co_proposers": ["m2"], "units": ["water"],
         "lead_unit": "water", "is_public": public, "body": "正文", "number": "N1"},
        iid=iid,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("state", "public"), list(itertools.product(sorted(PROPOSAL.definition.states), [True, False]))
)
def test_proposal_readers_in_every_state(engine: Engine, state: str, public: bool) -> None:
    """Every reader against every state, public or not: who gets NotFound, who only the public
    fields, who the internal rows; the answer for an unreadable instance equals a missing one's."""
    proposal_in(engine, state, public, "p1")
    engine.store.apply(
        Commit(history=[_internal_row(engine.store.load("p1"))])  # type: ignore[arg-type]
    )
    for actor in READERS:
        want = expected_level(actor, state, public)
        if want is None:
            with pytest.raises(NotFound) as hidden:
                engine.get("p1", actor)
            with pytest.raises(NotFound) as missing:
                engine.get("nope", actor)
            as_missing = missing.value.to_dict()
            as_missing.update(key="p1", message="no instance 'p1'")
            assert hidden.value.to_dict() == as_missing
            with pytest.raises(NotFound):
                engine.history("p1", actor)
            assert engine.query(Query(workflow="proposal"), actor=actor).items == []
            continue
        shown = engine.get("p1", actor)
        assert ("body" in shown.data) == (want != "see"), (actor.id, want)
        kinds = {r.visibility for r in engine.history("p1", actor)}
        assert ("internal" in kinds) == (want == "internal"), (actor.id, want)
        [listed] = engine.query(Query(workflow="proposal"), actor=actor).items
        assert listed.data == shown.data
    assert "body" in engine.get("p1").data  # the trusted embedding reads everything


def _internal_row(instance: Instance) -> Any:
    from xieshang.records import HistoryEntry

    return HistoryEntry(
        instance.id, 1, instance.workflow, instance.workflow_version, instance.definition_hash,
        "note", instance.state, instance.state, {"id": "c1"}, "proposal_committee", None,
        {"body": "内部"}, "internal", NOW.isoformat(), NOW.isoformat(), None, "",
    ).sealed()  # fmt: skip


def test_handling_units_read_only_what_is_assigned_to_them(engine: Engine) -> None:
    """A unit's handling child is read by that unit and the offices, not by another unit; the
    children of a proposal are filtered the same way."""
    proposal_in(engine, "assigned", True, "p1")
    for unit in ("water", "housing"):
        put(engine, "proposal_handling", "notified", {"title": "t", "role": "split"},
            iid=f"c-{unit}", unit=unit)  # fmt: skip
        engine.store.load(f"c-{unit}")
    water = Actor.of("h1", "handling_unit", org=ORG, unit="water")
    assert engine.get("c-water", water).unit == "water"
    with pytest.raises(NotFound):
        engine.get("c-housing", water)
    assert engine.get("c-housing", OFFICE).unit == "housing"
    assert [i.id for i in engine.query(Query(workflow="proposal_handling"), actor=water).items] == [
        "c-water"
    ]


DRAFTS = [(wf.id, "draft") for wf in bundled() if "draft" in wf.definition.states]


@pytest.mark.parametrize(("workflow", "state"), DRAFTS)
def test_a_draft_is_read_only_by_its_author(engine: Engine, workflow: str, state: str) -> None:
    """In every bundled workflow with drafts, another member, a committee or a unit of the same
    org gets NotFound for a draft, and lists do not show it."""
    author_field = {
        "proposal": "first_proposer",
        "opinion_report": "reporter",
        "standing_report": "member",
    }.get(workflow)
    put(engine, workflow, state, {author_field: "m1"} if author_field else {}, iid="d1")
    for actor in (MEMBER, COMMITTEE, ASSIGNED, Actor.of("x", "public", org=ORG)):
        with pytest.raises(NotFound):
            engine.get("d1", actor)
        assert engine.query(Query(workflow=workflow), actor=actor).items == []
    if author_field:
        assert engine.get("d1", AUTHOR).id == "d1"


def test_a_workflow_without_read_rules_hides_drafts_and_non_public_instances(
    tmp_path: Path,
) -> None:
    """The default for a definition with no read: section: anyone of the org reads everything,
    but never a draft nor an instance whose data says is_public: false."""
    from xieshang.loading import load_definition

    text = (Path(__file__).parent / "fixtures" / "valid" / "minimal.yaml").read_text("utf-8")
    wf = load_definition(text)
    assert wf.definition.read is None
    from xieshang.access import default_rules

    [rule] = default_rules(["draft", "open"], ["is_public"])
    assert rule.anyone and rule.not_states == ("draft",) and rule.when == "data.is_public != false"
    assert readers(wf, _bare(wf, next(iter(wf.definition.states)))) == {"*": 3}


def _bare(wf: CompiledWorkflow, state: str) -> Instance:
    return Instance("i", wf.id, 1, wf.hash, ORG, state, {}, 1, NOW, NOW, NOW)


# -- the same answers from get and from a query, on every store ---------------------------------

ACTORS = st.builds(
    Actor.of,
    st.sampled_from(["m1", "m2", "m3", "c1"]),
    st.sampled_from(
        ["member", "proposal_committee", "supervision_office", "handling_unit",
         "chairpersons_council"]
    ),
    org=st.sampled_from([ORG, ORG, "another"]),
    unit=st.sampled_from([None, "water", "housing"]),
)  # fmt: skip
STATES = st.sampled_from(sorted(PROPOSAL.definition.states))


@pytest.fixture(params=["memory", "sqlite"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield MemoryStore()
        return
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        yield store


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    instances=st.lists(st.tuples(STATES, st.booleans(), st.sampled_from(["water", "housing"])),
                       min_size=1, max_size=6),
    actor=ACTORS,
)  # fmt: skip
def test_query_shows_exactly_what_get_lets_the_actor_read(
    any_store: Store, instances: list[tuple[str, bool, str]], actor: Actor
) -> None:
    """For random proposals and a random reader, a scoped query lists exactly the instances
    get() answers, with the same data, and a reader below 'data' never sees a non-public field;
    no reader ever sees a draft it did not write nor a non-public proposal it has no part in."""
    engine = Engine(any_store, bundled(), FixedClock(NOW))
    prefix = f"h{abs(hash((tuple(instances), actor))) % 10**9}-"
    ids = []
    for n, (state, public, unit) in enumerate(instances):
        iid = f"{prefix}{n}"
        put(engine, "proposal", state,
            {"first_proposer": "m1", "co_proposers": ["m2"], "units": [unit], "lead_unit": unit,
             "is_public": public, "body": "正文"}, iid=iid)  # fmt: skip
        ids.append((iid, state, public, unit))
    readable: dict[str, dict[str, Any]] = {}
    for iid, state, public, unit in ids:
        try:
            readable[iid] = engine.get(iid, actor).data
        except NotFound:
            continue
        part = actor.id in ("m1", "m2") or ("handling_unit" in actor.roles and actor.unit == unit)
        if state == "draft":
            assert actor.id == "m1" or ("handling_unit" in actor.roles and actor.unit == unit)
        if not public:
            assert part or actor.roles & {"proposal_committee", "supervision_office"}
    listed = {
        i.id: i.data
        for i in engine.query(Query(workflow="proposal", limit=1000), actor=actor).items
        if i.id.startswith(prefix)
    }
    assert listed == readable
    public_fields = {k for k, f in PROPOSAL.definition.data.items() if f.public}
    for data in listed.values():
        assert "body" not in data or set(data) - public_fields


# each bundled transition whose steps keep the readers when they stay in their state
KEEPING = [
    (wf.id, t.index)
    for wf in bundled()
    for t in wf.transitions
    if access.keeps_readers(wf, t) and t.target in t.sources
]
SETS = max(len(t.sets) for wf in bundled() for t in wf.transitions)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    pick=st.sampled_from(KEEPING),
    values=st.lists(JSON_VALUES, min_size=SETS, max_size=SETS),
    inside=st.booleans(),
    public=st.booleans(),
)
def test_a_step_said_to_keep_the_readers_keeps_them_whatever_it_sets(
    pick: tuple[str, int], values: list[Any], inside: bool, public: bool
) -> None:
    """A step the engine does not re-judge the readers of (a transition from a state to itself
    whose effects set no field the read rules or bindings read) leaves them as they were,
    whatever values its effects set and whatever else the instance holds."""
    wf = bundled().get(pick[0])
    t = wf.transitions[pick[1]]
    data = {**required_data(wf), **(NAMES_INSIDE.get(wf.id, {}) if inside else {})}
    if "is_public" in wf.definition.data:
        data["is_public"] = public
    before = Instance(
        "i1", wf.id, wf.definition.version, wf.hash, ORG, t.target, data, 1, NOW, NOW, NOW,
        unit=INSIDE if inside else None,
    )  # fmt: skip
    set_values = dict(zip([n for n, _ in t.sets], values[: len(t.sets)], strict=True))
    after = replace(before, data={**data, **set_values})
    after.version, after.overdue, after.due_at = 2, True, NOW
    assert readers(wf, after) == readers(wf, before)


def test_the_transitions_said_to_keep_the_readers_are_those_that_set_no_field_they_read() -> None:
    """Some bundled transitions keep the readers, and a transition whose effects set a field a
    read rule reads (proposal's submit sets is_public) or that moves is judged again."""
    assert len(KEEPING) >= 10
    proposal = bundled().get("proposal")
    submit = proposal.by_trigger["submit"][0]
    assert not access.keeps_readers(proposal, submit)
    assert ("proposal", proposal.by_trigger["flag_key"][0].index) in KEEPING


VERSIONED = """\
id: versioned
version: 1
title: {zh: 版本}
roles:
  clerk: {zh: 办事员}
  watcher: {zh: 观察员}
start:
  roles: [clerk]
read:
  data:
    - roles: [clerk]
    - roles: [watcher]
      when: instance.version < 3
states:
  open: {initial: true, label: {zh: 待办}}
  done: {final: true, label: {zh: 办结}}
transitions:
  - {trigger: note, from: open, to: open, roles: [clerk]}
  - {trigger: close, from: open, to: done, roles: [clerk]}
"""


def test_a_step_that_stays_in_its_state_is_judged_again_when_the_rules_read_the_instance() -> None:
    """A read rule over an instance member (its version) can change with any step, even one
    that stays in its state and sets nothing: the readers are judged again, and stored."""
    engine = Engine(MemoryStore(), Registry.from_texts([("v.yaml", VERSIONED)]), FixedClock(NOW))
    clerk = Actor.of("k1", "clerk", org=ORG)
    iid = engine.start("versioned", {}, clerk).id
    seen = []
    for _ in range(3):
        seen.append(sorted(engine.store.readers([iid])[iid]))
        engine.fire(iid, "note", clerk)
    seen.append(sorted(engine.store.readers([iid])[iid]))
    assert seen == [["r:clerk", "r:watcher"]] * 2 + [["r:clerk"]] * 2


def test_a_step_that_moves_is_judged_again_though_it_sets_nothing() -> None:
    """A rule that holds in some states only: a step that moves into one of them and sets no
    field changes the readers, one that stays in its state and sets none does not."""
    stated = VERSIONED.replace("when: instance.version < 3", "states: [done]")
    engine = Engine(MemoryStore(), Registry.from_texts([("s.yaml", stated)]), FixedClock(NOW))
    clerk = Actor.of("k1", "clerk", org=ORG)
    iid = engine.start("versioned", {}, clerk).id
    engine.fire(iid, "note", clerk)
    assert engine.store.readers([iid])[iid] == {"r:clerk": 2}
    engine.fire(iid, "close", clerk)
    assert engine.store.readers([iid])[iid] == {"r:clerk": 2, "r:watcher": 2}
