"""The format's factoring: named ``types``, ``role_groups``, ``let`` and ``branches``.

Each is expanded when the file loads into the plain definition it stands for, so a factored file
and the same file written out are the same definition with the same ``content_hash``; a misuse
is a coded problem (XS134-XS140) at its path and line in the file. A list of objects of a named
type is checked on input like a payload; branches take the first target whose guard holds, and
a refusal when none does names each branch's message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from constructs_support import BACKENDS, make_engine, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xieshang import (
    Actor,
    Definition,
    DefinitionError,
    Engine,
    FixedClock,
    InvalidPayload,
    Registry,
    TransitionNotAllowed,
    load_definition,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import load_registry, workflow_files

CLERK = Actor.of("c1", "clerk", org="city")
MEMBER = Actor.of("m1", "member", org="city")
NOW = datetime(2024, 3, 4, 9, tzinfo=timezone(timedelta(hours=8)))

FACTORED = """\
id: review
version: 1
title: {zh: 评价}
roles:
  member: {zh: 委员}
  party_org: {zh: 民主党派}
  clerk: {zh: 办事员}
role_groups:
  proposers: [member, party_org]
types:
  satisfaction: {enum: [satisfied, basically_satisfied, unsatisfied]}
  task:
    label: {zh: 任务}
    fields:
      title: {type: string, required: true, max_length: 50}
      due: {type: date, required: true}
      answer: {type: satisfaction}
let:
  satisfied: payload.satisfaction == 'satisfied'
  basically: payload.satisfaction == 'basically_satisfied'
  pleased: let.satisfied || let.basically
  late: date(t.due) < date(now)
data:
  satisfaction: {type: satisfaction}
  tasks: {type: list, items: task, default: []}
states:
  open: {initial: true, label: {zh: 办理中}}
  closed: {final: true, label: {zh: 已办结}}
  reopened: {label: {zh: 重新办理}}
  disputed: {final: true, label: {zh: 有异议}}
start:
  roles: [clerk, proposers]
transitions:
  - trigger: plan
    from: [open, reopened]
    to: open
    roles: [clerk]
    payload:
      tasks: {type: list, items: task, required: true, min_length: 1}
    guard: "!payload.tasks.exists(t, let.late)"
    guard_message: {zh: "期限已过：{payload.tasks.filter(t, let.late).map(t, t.title)}"}
    set: {tasks: payload.tasks}
  - trigger: evaluate
    from: [open, reopened]
    roles: [proposers]
    payload:
      satisfaction: {type: satisfaction, required: true}
    set: {satisfaction: payload.satisfaction}
    branches:
      - to: closed
        guard: let.pleased
        guard_message: {zh: 满意或基本满意则办结, en: closed when pleased}
      - to: reopened
        guard: payload.satisfaction == 'unsatisfied' && data.tasks.size() < 2
        guard_message: {zh: 不满意且任务少于两项则重新办理, en: reopened when few tasks}
      - to: disputed
        guard: "!let.pleased && data.tasks.size() >= 2"
        guard_message: {zh: 不满意且任务已有两项以上则有异议, en: disputed otherwise}
  - trigger: close
    from: reopened
    to: closed
    roles: [clerk]
"""

_MESSAGE = {
    "zh": "满意或基本满意则办结；不满意且任务少于两项则重新办理；不满意且任务已有两项以上则有异议",
    "en": "closed when pleased; reopened when few tasks; disputed otherwise",
}
_STEP = {"from": ["open", "reopened"], "trigger": "evaluate", "roles": ["member", "party_org"]}
_SAT = {"type": "enum", "values": ["satisfied", "basically_satisfied", "unsatisfied"]}
# a let goes in without brackets where precedence reads it whole (== beside ||), in brackets
# where it would not (after !)
_PLEASED = "payload.satisfaction == 'satisfied' || payload.satisfaction == 'basically_satisfied'"
WRITTEN_OUT: dict[str, Any] = {
    "id": "review",
    "version": 1,
    "title": {"zh": "评价"},
    "roles": {"member": {"zh": "委员"}, "party_org": {"zh": "民主党派"}, "clerk": {"zh": "办事员"}},
    "data": {
        "satisfaction": _SAT,
        "tasks": {
            "type": "list",
            "items": "object",
            "default": [],
            "fields": {
                "title": {"type": "string", "required": True, "max_length": 50},
                "due": {"type": "date", "required": True},
                "answer": _SAT,
            },
        },
    },
    "states": {
        "open": {"initial": True, "label": {"zh": "办理中"}},
        "closed": {"final": True, "label": {"zh": "已办结"}},
        "reopened": {"label": {"zh": "重新办理"}},
        "disputed": {"final": True, "label": {"zh": "有异议"}},
    },
    "start": {"roles": ["clerk", "member", "party_org"]},
    "transitions": [
        {
            "trigger": "plan",
            "from": ["open", "reopened"],
            "to": "open",
            "roles": ["clerk"],
            "payload": {
                "tasks": {
                    "type": "list",
                    "items": "object",
                    "required": True,
                    "min_length": 1,
                    "fields": {
                        "title": {"type": "string", "required": True, "max_length": 50},
                        "due": {"type": "date", "required": True},
                        "answer": _SAT,
                    },
                }
            },
            "guard": "!payload.tasks.exists(t, date(t.due) < date(now))",
            "guard_message": {
                "zh": "期限已过：{payload.tasks.filter(t, date(t.due) < date(now)).map(t, t.title)}"
            },
            "set": {"tasks": "payload.tasks"},
        },
        {
            **_STEP,
            "to": "closed",
            "payload": {"satisfaction": {**_SAT, "required": True}},
            "set": {"satisfaction": "payload.satisfaction"},
            "guard": _PLEASED,
            "guard_message": _MESSAGE,
        },
        {
            **_STEP,
            "to": "reopened",
            "payload": {"satisfaction": {**_SAT, "required": True}},
            "set": {"satisfaction": "payload.satisfaction"},
            "guard": "payload.satisfaction == 'unsatisfied' && data.tasks.size() < 2",
            "guard_message": _MESSAGE,
        },
        {
            **_STEP,
            "to": "disputed",
            "payload": {"satisfaction": {**_SAT, "required": True}},
            "set": {"satisfaction": "payload.satisfaction"},
            "guard": f"!({_PLEASED}) && data.tasks.size() >= 2",
            "guard_message": _MESSAGE,
        },
        {"trigger": "close", "from": "reopened", "to": "closed", "roles": ["clerk"]},
    ],
}


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(DefinitionError) as info:
        load_definition(text, "f.yaml")
    return [(p.code, p.line, p.path) for p in info.value.problems]


def line_of(text: str, needle: str, nth: int = 0) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[nth]


# -- expansion -----------------------------------------------------------------------------------


def test_a_factored_file_is_the_definition_written_out_with_the_same_hash() -> None:
    """Types, role groups, lets and branches expand into exactly the plain definition."""
    factored = load_definition(FACTORED, "review.yaml").definition
    plain = Definition.model_validate(WRITTEN_OUT)
    assert factored.to_json() == plain.to_json()
    assert factored.content_hash == plain.content_hash
    assert [t.to for t in factored.transitions] == [
        "open",
        "closed",
        "reopened",
        "disputed",
        "closed",
    ]


def test_the_model_expands_factored_data_given_to_it_directly() -> None:
    """Definition.model_validate takes the factored form too (a Python embedding's dict)."""
    data = yaml.safe_load(FACTORED)
    assert Definition.model_validate(data).content_hash == Definition(**WRITTEN_OUT).content_hash


def test_a_file_without_factoring_is_read_as_before() -> None:
    """The old forms are untouched: the written-out file loads to the same definition."""
    text = yaml.safe_dump(WRITTEN_OUT, allow_unicode=True, sort_keys=False)
    assert load_definition(text).definition.to_json() == Definition(**WRITTEN_OUT).to_json()


# the content hashes of the bundled workflows before they were rewritten with the factoring;
# key_proposal_selection's is of its version 2, whose selected proposals are typed items, and
# annual_consultation_plan's of its version 2, whose guards name the nine forms by a let
BUNDLED_HASHES = dict(
    line.split()
    for line in """
annual_awards.yaml f4ecfb38a08a1987636ed87bba01597479cc48a785671200b7a8245a96be3f18
annual_consultation_plan.yaml 820b78e7ccae8e76a8d2996b5ea7f87e3d21e30183338523ce497259944d01fd
consultation_topic.yaml b8f99909ad434c1c4676d8b3e4cffbaa4d361d3d1ad559feed220a79eef35aa9
democratic_appraisal.yaml e1e95b5c2a984614839cf4870752b72c17152ad5e4c715e6b83c44224d303300
key_proposal_selection.yaml ff86b2cd2c82ea2cd614c31d0de722acefadb2a46cedbe417eb0976d7d087eea
key_proposal_supervision.yaml b61377e95051b568640c5573141b46d74170db32c71a2e1ccda026479637c9e0
meeting_attendance.yaml 3ccc03d9b68ab253652a86c1bd4cb4074afb651db018cc9fc688f05b4c66fc58
micro_consultation.yaml 56824b174325f5c08ac1b0e90b2790109202ba2536f7c98ab2f46ea4fde97555
online_consultation.yaml 24d436ca96ab2b1ad590f83a6bccd46380af177c02196627362e56f61bf15126
opinion_report.yaml 9aa6a85c31d04ab48e194e2cee187e7e0daa3cde2983db134e10beeb9a215dad
proposal.yaml a5add37ab6c791223b12454ab525285cb27c5a9e237a95011f248c9b78723755
proposal_handling.yaml a2bb1fbc3a60a91904246ce4dc59cc349c11998c3ffb91eb5cb5f64d1d2abae9
standing_report.yaml 8e3fead16ba4cebef5ab3575be0c6673c249db287faf72755ea0ad78b54de19a
""".strip().splitlines()
)
FACTORED_FILES = {
    "annual_consultation_plan.yaml": {"let", "types"},
    "consultation_topic.yaml": {"types"},
    "key_proposal_selection.yaml": {"let", "types"},
    "micro_consultation.yaml": {"types"},
    "online_consultation.yaml": {"types"},
    "opinion_report.yaml": {"types"},
    "proposal.yaml": {"types", "role_groups"},
}


def test_rewriting_the_bundled_workflows_with_the_factoring_changed_no_hash() -> None:
    """Each bundled file expands to the definition it was before: running instances, which pin
    the hash, see no change, and no version had to move; except key_proposal_selection, whose
    typed items changed its definition and so its version, and annual_consultation_plan, whose
    guards read the nine forms from a let (the text of the guards changed)."""
    found = {}
    used = {}
    for path in workflow_files():
        text = path.read_text(encoding="utf-8")
        wf = load_definition(text, path.name)
        found[path.name] = wf.definition.content_hash
        keys = set(yaml.safe_load(text)) & {"types", "role_groups", "let"}
        if keys:
            used[path.name] = keys
        moved = {"key_proposal_selection.yaml", "annual_consultation_plan.yaml"}
        assert wf.definition.version == (2 if path.name in moved else 1)
    assert found == BUNDLED_HASHES
    assert used == FACTORED_FILES


def test_the_annual_plan_names_the_nine_forms_once() -> None:
    """The forms were written out in three guards and a guard message; now in one let."""
    path = next(p for p in workflow_files() if p.name == "annual_consultation_plan.yaml")
    text = path.read_text("utf-8")
    assert text.count("'thematic_standing_meeting'") == 1
    assert text.count("let.forms") == 4


def test_proposal_evaluations_no_longer_repeat_the_proposer_roles_and_enums() -> None:
    """The repetition the factoring removes is gone from the text of proposal.yaml."""
    text = next(p for p in workflow_files() if p.name == "proposal.yaml").read_text("utf-8")
    assert text.count("member, party_org, people_org, special_committee") == 1
    assert text.count("satisfied, basically_satisfied, unsatisfied") == 1
    assert text.count("economy, politics, culture, society, ecology") == 1


# -- a random factoring expands to the same definition ----------------------------------------


@st.composite
def factorings(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A plain definition and a random factoring of it (names, groups and lets drawn)."""
    values = ["a", *draw(st.lists(st.sampled_from("bcdefgh"), max_size=4, unique=True))]
    roles = draw(
        st.lists(st.sampled_from(["clerk", "member", "chair", "unit"]), min_size=1, unique=True)
    )
    guard = draw(st.sampled_from(["data.n > 1", "size(data.tags) == 0", "data.kind == 'a'"]))
    plain: dict[str, Any] = {
        "id": "w",
        "version": draw(st.integers(1, 9)),
        "title": {"zh": "流程"},
        "roles": {r: {"zh": r} for r in ["clerk", "member", "chair", "unit"]},
        "data": {
            "kind": {"type": "enum", "values": values},
            "n": {"type": "int", "default": 0},
            "tags": {"type": "list", "items": "enum", "item_values": values, "default": []},
        },
        "states": {
            "a": {"initial": True, "label": {"zh": "甲"}},
            "b": {"final": True, "label": {"zh": "乙"}},
        },
        "transitions": [
            {
                "trigger": "go",
                "from": ["a"],
                "to": "b",
                "roles": roles,
                "guard": f"{guard} && true",
            },
            {"trigger": "go", "from": ["a"], "to": "b", "roles": roles},
        ],
    }
    factored = json.loads(json.dumps(plain))
    if draw(st.booleans()):
        factored["types"] = {"kind_value": {"enum": values}}
        factored["data"]["kind"] = {"type": "kind_value"}
        if draw(st.booleans()):
            factored["data"]["tags"] = {"type": "list", "items": "kind_value", "default": []}
    if draw(st.booleans()):
        split = draw(st.integers(0, len(roles)))
        factored["role_groups"] = {"crew": roles[:split] or roles}
        rest = [r for r in roles if r not in (roles[:split] or roles)]
        for step in factored["transitions"]:
            step["roles"] = ["crew", *rest]
    if draw(st.booleans()):
        # a let that is the whole guard, a let of such a let, or a comparison beside && goes in
        # as written
        factored["let"] = {"cond": f"{guard} && true", "same": "let.cond", "base": guard}
        choice = draw(st.sampled_from(["let.same", "let.cond", "let.base && true"]))
        factored["transitions"][0]["guard"] = choice
    if draw(st.booleans()):
        first, second = factored["transitions"]
        base = {k: v for k, v in first.items() if k not in ("to", "guard")}
        factored["transitions"] = [
            {**base, "branches": [{"to": "b", "guard": first["guard"]}, {"to": "b"}]}
        ]
        del second
    return plain, factored


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(factorings())
def test_any_factoring_of_a_definition_expands_to_that_definition(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    plain, factored = pair
    text = yaml.safe_dump(factored, allow_unicode=True, sort_keys=False)
    loaded = load_definition(text, "w.yaml").definition
    assert loaded.to_json() == Definition.model_validate(plain).to_json()
    assert loaded.content_hash == Definition.model_validate(plain).content_hash


# -- problems at their place in the file ---------------------------------------------------------


def test_a_problem_inside_a_branch_is_placed_at_the_branch() -> None:
    """The checks run on the expanded transitions; their problems name the branch in the file."""
    text = FACTORED.replace("  - to: reopened", "  - to: reopend")
    assert problems(text) == [
        ("XS101", line_of(text, "to: reopend"), "transitions[1].branches[1].to")
    ]


def test_a_problem_after_branches_keeps_the_transition_index_of_the_file() -> None:
    text = FACTORED.replace(
        "    from: reopened\n    to: closed", "    from: reopened\n    to: closd"
    )
    assert problems(text) == [("XS101", line_of(text, "to: closd"), "transitions[2].to")]


def test_an_unknown_role_next_to_a_group_is_placed_at_its_index_in_the_file() -> None:
    text = FACTORED.replace("roles: [clerk, proposers]", "roles: [proposers, clerc]")
    assert problems(text) == [("XS110", line_of(text, "clerc"), "start.roles[1]")]


def test_a_misshapen_payload_of_a_named_type_is_one_schema_problem_at_its_field() -> None:
    text = FACTORED.replace(
        "due: {type: date, required: true}", "due: {type: date, required: maybe}"
    )
    assert problems(text) == [
        ("XS010", line_of(text, "maybe"), "types.task.fields.due.required")
    ] or (problems(text)[0][0] == "XS010")


def test_misspelt_factoring_keys_are_offered_their_spelling() -> None:
    """The did-you-mean of an unknown key knows types, role_groups, let and branches."""
    with pytest.raises(DefinitionError) as info:
        load_definition(FACTORED.replace("role_groups:", "role_group:"), "f.yaml")
    messages = [p.message for p in info.value.problems if p.code == "XS010"]
    assert any("did you mean 'role_groups'" in m for m in messages)
    with pytest.raises(DefinitionError) as info:
        load_definition(FACTORED.replace("    branches:", "    branchs:"), "f.yaml")
    messages = [p.message for p in info.value.problems if p.code == "XS010"]
    assert any("did you mean 'branches'" in m for m in messages)


def test_a_branch_holding_trigger_and_a_transition_with_its_own_to_are_refused() -> None:
    text = FACTORED.replace(
        "      - to: disputed\n", "      - to: disputed\n        trigger: dispute\n"
    ).replace("    roles: [proposers]\n", "    roles: [proposers]\n    to: closed\n")
    found = problems(text)
    assert (
        "XS140",
        line_of(text, "trigger: dispute"),
        "transitions[1].branches[2].trigger",
    ) in found
    assert ("XS140", line_of(text, "    to: closed"), "transitions[1].to") in found
    assert {code for code, _, _ in found} == {"XS140"}


def test_a_let_cycle_and_a_let_that_is_not_text_are_bad_lets() -> None:
    text = FACTORED.replace(
        "  late: date(t.due) < date(now)\n",
        "  late: date(t.due) < date(now)\n  ping: let.pong\n  pong: let.ping\n  odd: [1]\n",
    )
    found = problems(text)
    assert ("XS139", line_of(text, "ping: let.pong"), "let.ping") in found
    assert ("XS139", line_of(text, "odd: [1]"), "let.odd") in found
    assert {code for code, _, _ in found} == {"XS139"}


def test_a_group_that_takes_a_roles_name_is_a_bad_role_group() -> None:
    text = FACTORED.replace("  proposers: [member, party_org]", "  member: [member, party_org]")
    found = problems(text)
    assert ("XS137", line_of(text, "  member: [member"), "role_groups.member") in found


def test_the_type_of_a_let_is_inferred_where_it_is_used() -> None:
    """A let giving an int, used as a guard, is a wrong-type problem at the guard."""
    text = FACTORED.replace("    guard: let.pleased\n", "    guard: let.count\n").replace(
        "  late:", "  count: data.tasks.size() + 1\n  late:"
    )
    found = problems(text)
    assert [(c, p) for c, _, p in found] == [("XS127", "transitions[1].branches[0].guard")]


def test_the_fields_of_a_typed_item_are_typed_for_the_checker() -> None:
    """An item field declared as a date compared with an int is a type mismatch."""
    text = FACTORED.replace("late: date(t.due) < date(now)", "late: t.due > 3")
    assert {c for c, _, _ in problems(text)} == {"XS128"}


# -- the schema --------------------------------------------------------------------------------


def schema_errors(data: Any) -> list[str]:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    text = resources.files("xieshang").joinpath("schema/workflow.schema.json").read_text("utf-8")
    validator = jsonschema_rs.validator_for(json.loads(text))
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(data)]


def test_the_schema_accepts_the_factoring_and_refuses_a_branch_without_to() -> None:
    data = yaml.safe_load(FACTORED)
    assert schema_errors(data) == []
    data["transitions"][1]["branches"][0].pop("to")
    assert schema_errors(data) != []


def test_the_schema_accepts_every_bundled_workflow() -> None:
    for path in workflow_files():
        assert schema_errors(yaml.safe_load(path.read_text("utf-8"))) == [], path.name


# -- at run time -------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request, tmp_path, {"review": FACTORED})


def test_typed_items_are_checked_on_input_and_a_refusal_changes_nothing(engine: Engine) -> None:
    review = engine.start("review", {}, CLERK).id
    before = snapshot(engine)
    with pytest.raises(InvalidPayload) as info:
        engine.fire(review, "plan", CLERK, {"tasks": [{"title": "走访", "owner": "x"}]})
    assert sorted((e["field"], e["error"]) for e in info.value.errors) == [
        ("tasks.0.due", "required"),
        ("tasks.0.owner", "not a declared field"),
    ]
    with pytest.raises(InvalidPayload) as info:
        engine.fire(review, "plan", CLERK, {"tasks": [{"title": "走访", "due": "2024-13-01"}]})
    assert [e["field"] for e in info.value.errors] == ["tasks.0.due"]
    assert snapshot(engine) == before
    task = {"title": "走访", "due": "2024-04-01", "answer": "satisfied"}
    assert engine.fire(review, "plan", CLERK, {"tasks": [task]}).data["tasks"] == [task]


def test_the_first_branch_whose_guard_holds_is_taken(engine: Engine) -> None:
    first = engine.start("review", {}, CLERK).id
    assert (
        engine.fire(first, "evaluate", MEMBER, {"satisfaction": "basically_satisfied"}).state
        == "closed"
    )
    second = engine.start("review", {}, CLERK).id
    assert (
        engine.fire(second, "evaluate", MEMBER, {"satisfaction": "unsatisfied"}).state == "reopened"
    )
    due = {"due": "2024-05-01"}
    engine.fire(second, "plan", CLERK, {"tasks": [{"title": "一", **due}, {"title": "二", **due}]})
    assert (
        engine.fire(second, "evaluate", MEMBER, {"satisfaction": "unsatisfied"}).state == "disputed"
    )


def test_a_refusal_when_no_branch_holds_names_each_branch() -> None:
    """With every branch guarded and none holding, the refusal gives each branch's message."""
    text = FACTORED.replace('guard: "!let.pleased && data.tasks.size() >= 2"', "guard: 'false'")
    engine = Engine(MemoryStore(), Registry.from_texts([("review.yaml", text)]), FixedClock(NOW))
    review = engine.start("review", {}, CLERK).id
    due = {"due": "2024-05-01"}
    engine.fire(review, "plan", CLERK, {"tasks": [{"title": "一", **due}, {"title": "二", **due}]})
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed) as info:
        engine.fire(review, "evaluate", MEMBER, {"satisfaction": "unsatisfied"})
    assert info.value.message == (
        "'evaluate' refused in state 'open': 满意或基本满意则办结；不满意且任务少于两项则重新办理；"
        "不满意且任务已有两项以上则有异议 / closed when pleased; reopened when few tasks; "
        "disputed otherwise"
    )
    assert snapshot(engine) == before


def test_the_bundled_key_proposal_selection_refuses_an_item_without_its_committee() -> None:
    """Its selected proposals are typed items: a missing or undeclared field is named when the
    data comes in (here at start; the select step's payload has the same type), and the
    refusal changes nothing."""
    engine = Engine(MemoryStore(), load_registry(), FixedClock(NOW))
    committee = Actor.of("pc", "proposal_committee", org="city")
    item = {"proposal_id": "p1", "lead_leader": "市长", "due": "2024-09-30", "note": "x"}
    data = {"year": 2024, "filed_count": 100, "selected": [item]}
    with pytest.raises(InvalidPayload) as info:
        engine.start("key_proposal_selection", data, committee)
    assert sorted((e["field"], e["error"]) for e in info.value.errors) == [
        ("selected.0.note", "not a declared field"),
        ("selected.0.supervising_committee", "required"),
    ]
    assert snapshot(engine) == ([], [], 0)
    wf = engine.registry.get("key_proposal_selection")
    payload = wf.definition.transitions[1].payload["selected"]
    assert (payload.items, sorted(payload.fields or {})) == (
        "object",
        ["due", "lead_leader", "proposal_id", "supervising_committee", "units"],
    )
