"""The examples of the process owners' guides load, compile, evaluate and run as written.

Every fenced ``yaml`` block of ``docs/*.md`` that is a whole workflow file loads with no problem
and every other one parses as YAML; the worked example of ``docs/workflows.md`` loads and runs
to its final state; every CEL example of ``docs/expressions.md`` compiles in the place it is
shown for, gives the result its ``// →`` comment states over the page's sample, and each one
marked ``// ✗`` really fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from xieshang import (
    Actor,
    DefinitionError,
    Engine,
    FixedClock,
    Forbidden,
    NotFound,
    Registry,
    TransitionNotAllowed,
    load_definition,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.date_functions import date_functions
from xieshang.errors import FunctionFailed
from xieshang.expressions import (
    ACTOR_FIELDS,
    INSTANCE_FIELDS,
    ExpressionError,
    compile_expression,
    new_context,
)
from xieshang.workflows import load_registry

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
EXAMPLES = ROOT / "docs" / "examples"
EXPRESSIONS = ROOT / "docs" / "expressions.md"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```", re.M | re.S)
# an example line: the expression, then `// → result` (a CEL literal) or `// ✗ why`
EXAMPLE = re.compile(r"^(?P<expr>.*?)(?:\s+//\s*(?P<mark>→|✗)\s*(?P<rest>.*))?$")


def blocks(doc: Path, lang: str) -> list[str]:
    """The bodies of the fenced blocks of ``lang`` in ``doc``, in order."""
    text = doc.read_text(encoding="utf-8")
    return [m["body"] for m in FENCE.finditer(text) if m["lang"] == lang]


def yaml_blocks() -> list[tuple[str, str]]:
    return [(f"{doc.name}#{i}", body) for doc in DOCS for i, body in enumerate(blocks(doc, "yaml"))]


def is_workflow(data: Any) -> bool:
    return isinstance(data, dict) and "id" in data and ("states" in data or "transitions" in data)


# -- yaml blocks ----------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "body"), yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_every_yaml_block_parses_and_a_whole_workflow_loads(where: str, body: str) -> None:
    """A block that is a whole workflow file loads with no problem; an excerpt parses as YAML."""
    data = yaml.safe_load(body)
    assert data is not None, f"{where} is empty"
    if is_workflow(data):
        compiled = load_definition(body, where, known_workflows=None)
        assert compiled.id == data["id"]


# -- the CEL examples of docs/expressions.md ------------------------------------------------


def sample() -> dict[str, Any]:
    """The page's sample, its timestamps as timestamps."""
    (text,) = blocks(EXPRESSIONS, "json")
    values: dict[str, Any] = json.loads(text)
    values["now"] = datetime.fromisoformat(values["now"])
    for key in ("created_at", "entered_at"):
        values["instance"][key] = datetime.fromisoformat(values["instance"][key])
    return values


def cel_examples() -> list[tuple[str, str | None, str]]:
    """Each example line of the page's ``cel`` blocks: (expression, mark, rest)."""
    out = []
    for body in blocks(EXPRESSIONS, "cel"):
        for line in body.splitlines():
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            m = EXAMPLE.match(line.strip())
            assert m is not None
            out.append((m["expr"].strip(), m["mark"], (m["rest"] or "").strip()))
    return out


INSPECTION = (EXAMPLES / "member_inspection.yaml").read_text(encoding="utf-8")
DEFINITION = yaml.safe_load(INSPECTION)
HOLD = next(t for t in DEFINITION["transitions"] if t["trigger"] == "hold_inspection")
MEMBERS: dict[str, Any] = {
    "data": set(DEFINITION["data"]),
    "payload": set(HOLD["payload"]),
    "params": set(DEFINITION["params"]),
    "actor": ACTOR_FIELDS,
    "instance": INSTANCE_FIELDS,
    "item": None,
}
FUNCTIONS = date_functions("cn_official")
# how a wrong example fails: when it loads, a date function, or CEL itself when it runs
WRONG = (ExpressionError, FunctionFailed, TypeError, RuntimeError, KeyError, IndexError)


def evaluate(source: str, variables: dict[str, Any]) -> Any:
    compiled = compile_expression(source, names=list(variables), members=MEMBERS)
    return compiled.run(new_context(variables, FUNCTIONS))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_the_page_has_examples_of_every_kind() -> None:
    marks = [mark for _, mark, _ in cel_examples()]
    assert marks.count("→") >= 60 and marks.count("✗") >= 10 and None not in marks


@pytest.mark.parametrize(
    ("source", "mark", "rest"), cel_examples(), ids=[e[0] for e in cel_examples()]
)
def test_every_cel_example_gives_what_the_page_says(source: str, mark: str, rest: str) -> None:
    """A `→` example compiles and evaluates to the value after the arrow; a `✗` one fails,
    when it loads or when it runs."""
    values = sample()
    if mark == "✗":
        with pytest.raises(WRONG):
            evaluate(source, values)
        return
    expected = evaluate(rest, {})
    got = evaluate(source, values)
    assert same(got, expected), f"{source} gives {got!r}, the page says {rest}"


# -- the worked example ---------------------------------------------------------------------

CN = timezone(timedelta(hours=8))
ORG = "city"
WORKED = Registry.from_texts(
    (p.name, p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.yaml"))
)
OFFICE = Actor.of("office1", "cppcc_office", org=ORG)
ZHANG = Actor.of("zhang", "special_committee", org=ORG)
LI = Actor.of("li", "special_committee", org=ORG)
HOUSING = Actor.of("hb", "department", org=ORG, unit="housing_bureau")
URBAN = Actor.of("um", "department", org=ORG, unit="urban_management")
PLAN = {
    "title": "城区老旧小区改造视察",
    "departments": ["housing_bureau", "urban_management"],
    "inspection_date": "2024-10-09",
}
LATE_NOTICE = (
    "视察通知须在视察日期（2024-10-09）前至少5个工作日发出；现只提前4个工作日 / the notice "
    "must go out at least 5 working days before the inspection on 2024-10-09"
)


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=CN)


def member(name: str) -> Actor:
    return Actor.of(name, "member", org=ORG)


def test_the_example_files_validate_beside_the_bundled_workflows() -> None:
    """docs/examples loads with the bundled workflows known, as `xieshang validate` checks it."""
    registry = load_registry([EXAMPLES])
    assert {"member_inspection", "inspection_feedback", "proposal"} <= set(registry.ids())


def test_the_inspection_alone_names_a_workflow_that_is_not_loaded() -> None:
    """Validated alone, the parent is refused: its spawn names the child's workflow (XS118)."""
    with pytest.raises(DefinitionError) as refused:
        Registry.from_texts([("member_inspection.yaml", INSPECTION)])
    assert [(p.code, p.path) for p in refused.value.problems] == [
        ("XS118", "transitions[2].spawn.workflow")
    ]


def test_the_worked_example_runs_to_its_final_state(sql_url: str) -> None:
    """The walk of docs/workflows.md §17: the late notice is recorded, the sign-up and
    inspection guards refuse with their messages, one child per department is bound to it,
    the timer escalates and the deadline reminds then marks overdue, the last answer completes
    the join, the drafter may not approve, and the audit verifies every chain."""
    clock = FixedClock(at("2024-09-20T09:00"))
    with open_store(sql_url) as store:
        walk(Engine(store, WORKED, clock), clock)


def walk(engine: Engine, clock: FixedClock) -> None:
    """The steps of the session in docs/workflows.md §17, each result checked."""
    iid = engine.start("member_inspection", PLAN, OFFICE).id

    clock.set(at("2024-09-27T09:00"))
    notice = next(a for a in engine.available(iid, OFFICE) if a.trigger == "send_notice")
    assert (notice.allowed, [w["code"] for w in notice.warnings]) == (True, ["notice_late"])
    assert engine.fire(iid, "send_notice", OFFICE).state == "signing_up"
    assert engine.history(iid)[-1].warnings == [{"code": "notice_late", "message": LATE_NOTICE}]
    types = [e.type for e in engine.store.outbox(iid)]
    assert "xieshang.member_inspection.warning" in types

    clock.set(at("2024-09-29T10:00"))
    for name in ("m1", "m2"):
        engine.fire(iid, "sign_up", member(name))
    with pytest.raises(TransitionNotAllowed) as twice:
        engine.fire(iid, "sign_up", member("m1"))
    assert "已报名，或名额（30人）已满" in twice.value.message
    clock.set(at("2024-10-08T10:00"))
    with pytest.raises(TransitionNotAllowed) as early:
        engine.fire(iid, "hold_inspection", OFFICE, {"findings": "加装电梯进度慢"})
    assert "视察须在2024-10-09当天或之后记录，且至少3名委员报名（现2名）" in early.value.message
    engine.fire(iid, "sign_up", member("m3"))
    assert engine.get(iid).data["members"] == ["m1", "m2", "m3"]

    clock.set(at("2024-10-09T17:00"))
    held = engine.fire(
        iid, "hold_inspection", OFFICE, {"findings": "加装电梯进度慢；管线改造未同步"}
    )
    assert (held.state, held.version) == ("awaiting_answers", 6)
    kids = {c.unit: c for c in engine.children(iid)}
    assert sorted(kids) == ["housing_bureau", "urban_management"]
    assert {(c.state, c.data["findings"], c.due_at) for c in kids.values()} == {
        ("answering", "加装电梯进度慢；管线改造未同步", at("2024-10-30T00:00"))
    }
    housing, urban = kids["housing_bureau"].id, kids["urban_management"].id
    with pytest.raises(NotFound) as elsewhere:  # it may not read it: as if it did not exist
        engine.fire(housing, "answer", URBAN, {"answer": "不归我们管"})
    assert elsewhere.value.message == f"no instance {housing!r}"
    assert engine.get(housing).version == 1

    clock.set(at("2024-10-15T10:00"))
    assert engine.fire(housing, "answer", HOUSING, {"answer": "已制定加装电梯三年计划"}).data[
        "on_time"
    ]
    assert engine.get(iid).state == "awaiting_answers"

    assert engine.tick(at("2024-10-24T09:00")).fired == 2  # the escalation and the reminder
    escalated = engine.get(iid)
    assert (escalated.state, escalated.data["escalated"]) == ("awaiting_answers", True)
    assert "xieshang.member_inspection.escalated" in [e.type for e in engine.store.outbox(iid)]
    assert "xieshang.instance.reminder" in [e.type for e in engine.store.outbox(urban)]
    assert engine.tick(at("2024-10-30T09:00")).fired == 1  # the deadline
    assert engine.get(urban).overdue

    clock.set(at("2024-10-31T10:00"))
    answered = engine.fire(urban, "answer", URBAN, {"answer": "管线改造纳入明年计划"})
    assert (answered.state, answered.data["on_time"]) == ("answered", False)
    drafting = engine.get(iid)
    assert (drafting.state, drafting.data["late_answers"]) == ("drafting", 1)
    assert (drafting.data["report_due"], drafting.due_at) == ("2024-11-30", at("2024-12-03T00:00"))
    joined = engine.history(iid)[-1]
    assert (joined.trigger, joined.actor["id"]) == ("all_answered", "system")

    clock.set(at("2024-11-05T10:00"))
    engine.fire(iid, "draft_report", ZHANG, {"report": "视察报告：……"})
    clock.set(at("2024-11-06T10:00"))
    with pytest.raises(Forbidden) as own:
        engine.fire(iid, "approve_report", ZHANG)
    assert "separation of duties" in own.value.message
    assert engine.get(iid).state == "reviewing"
    closed = engine.fire(iid, "approve_report", LI)
    assert (closed.state, closed.final) == ("closed", True)

    assert [r.trigger for r in engine.history(iid)] == [
        "start", "send_notice", "sign_up", "sign_up", "sign_up", "hold_inspection",
        "escalate", "all_answered", "draft_report", "approve_report",
    ]  # fmt: skip
    assert engine.verify() == []


def test_read_rules_keep_the_draft_from_members_until_the_report_is_approved() -> None:
    """§14: a member who took part reads the report once closed, not the draft; another member
    sees the public fields only, and never the internal row of the draft."""
    clock = FixedClock(at("2024-09-20T09:00"))
    engine = Engine(MemoryStore(), WORKED, clock)
    iid = engine.start("member_inspection", {**PLAN, "inspection_date": "2024-10-31"}, OFFICE).id
    engine.fire(iid, "send_notice", OFFICE)
    for name in ("m1", "m2", "m3"):
        engine.fire(iid, "sign_up", member(name))
    clock.set(at("2024-10-31T10:00"))
    engine.fire(iid, "hold_inspection", OFFICE, {"findings": "加装电梯进度慢"})
    for kid in engine.children(iid):
        engine.fire(kid.id, "answer", HOUSING if kid.unit == "housing_bureau" else URBAN,
                    {"answer": "收到"})  # fmt: skip
    engine.fire(iid, "draft_report", ZHANG, {"report": "视察报告稿"})
    public = ["departments", "inspection_date", "method", "title"]
    assert sorted(engine.get(iid, member("m2")).data) == public
    engine.fire(iid, "approve_report", LI)
    assert engine.get(iid, member("m2")).data["report"] == "视察报告稿"
    assert sorted(engine.get(iid, member("m9")).data) == public
    assert "draft_report" not in [r.trigger for r in engine.history(iid, member("m9"))]
    assert "draft_report" in [r.trigger for r in engine.history(iid, ZHANG)]


def test_a_deployment_that_refuses_late_notices_overrides_the_param() -> None:
    """§9 and §13: with notice_late set to refuse, the late notice is refused with the soft
    rule's message, and nothing is written."""
    registry = Registry.from_texts(
        ((p.name, p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.yaml"))),
        params={"member_inspection": {"notice_late": "refuse"}},
    )
    engine = Engine(MemoryStore(), registry, FixedClock(at("2024-09-27T09:00")))
    iid = engine.start("member_inspection", PLAN, OFFICE).id
    with pytest.raises(TransitionNotAllowed) as refused:
        engine.fire(iid, "send_notice", OFFICE)
    assert refused.value.message == f"'send_notice' refused in state 'planning': {LATE_NOTICE}"
    assert (engine.get(iid).state, engine.get(iid).version) == ("planning", 1)


def test_an_instance_keeps_the_definition_it_started_on() -> None:
    """§16: after version 2 changes a param, the instance started under version 1 keeps its
    limit and its version; a new instance starts under version 2."""
    v2 = INSPECTION.replace("version: 1", "version: 2", 1).replace(
        "min_members: {type: int, default: 3,", "min_members: {type: int, default: 1,"
    )
    child = (EXAMPLES / "inspection_feedback.yaml").read_text(encoding="utf-8")
    store, clock = MemoryStore(), FixedClock(at("2024-09-20T09:00"))
    old = Engine(store, WORKED, clock).start("member_inspection", PLAN, OFFICE).id
    engine = Engine(store, Registry.from_texts([("v2.yaml", v2), ("child.yaml", child)]), clock)
    new = engine.start("member_inspection", PLAN, OFFICE).id
    for iid in (old, new):
        engine.fire(iid, "send_notice", OFFICE)
        engine.fire(iid, "sign_up", member("m1"))
    clock.set(at("2024-10-09T10:00"))
    with pytest.raises(TransitionNotAllowed) as refused:
        engine.fire(old, "hold_inspection", OFFICE, {"findings": "x"})
    assert "至少3名委员报名（现1名）" in refused.value.message
    assert engine.fire(new, "hold_inspection", OFFICE, {"findings": "x"}).state == (
        "awaiting_answers"
    )
    assert (engine.get(old).workflow_version, engine.get(new).workflow_version) == (1, 2)
    assert engine.verify() == []


# -- the sessions and the program of docs/workflows.md ---------------------------------------

GUIDE = ROOT / "docs" / "workflows.md"


def run_session(body: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a shell block with bash, from a copy of the repository's example files."""
    shutil.copytree(EXAMPLES, cwd / "docs" / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIESHANG_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", body],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_the_command_line_session_runs_as_pasted(tmp_path: Path) -> None:
    """§17's session: the notice warns, the join moves the inspection to drafting, the
    drafter's approval is refused, the other member's closes it, and the audit verifies."""
    session = blocks(GUIDE, "sh")[0]
    result = run_session(session, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "⚠ notice_late" in out
    assert "fired 2, stale 0" in out
    assert "部门反馈齐备 (all_answered)" in out and "已办结 (closed)" in out
    assert "refused: zhang drafted the report" in out
    assert "may not fire 'approve_report'" in result.stderr
    assert "separation of duties" in result.stderr
    assert "✓ 3 instances verified" in out


@pytest.mark.skipif(
    shutil.which("curl") is None and os.environ.get("CI") != "true",
    reason="the HTTP session needs curl (CI installs it)",
)
def test_the_http_session_runs_as_pasted(tmp_path: Path) -> None:
    """§17's HTTP session starts an inspection over the API with the office's token."""
    result = run_session(blocks(GUIDE, "sh")[1], tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"workflow":"member_inspection","workflow_version":1' in result.stdout.replace(" ", "")
    assert '"state":"planning"' in result.stdout.replace(" ", "")


def test_the_override_in_section_9_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """§9's program, run from the repository's root, gives the overridden limit."""
    (program,) = blocks(GUIDE, "python")
    monkeypatch.chdir(ROOT)
    scope: dict[str, Any] = {}
    exec(program, scope)  # the page's own example, from the repository
    assert scope["registry"].get("member_inspection").params["notice_lead"] == "10 working days"


# -- the guide's excerpts are the example's ---------------------------------------------------

SECTIONS = ("id", "version", "title", "description", "calendar", "roles", "bound_roles", "start")
SECTIONS += ("params", "data", "states", "transitions", "timers", "read")
STEP_KEYS = {"trigger", "from", "to", "label", "roles", "payload", "guard", "guard_message", "set"}
STEP_KEYS |= {"reason_required", "visibility", "not_by", "emits", "spawn", "join", "warn"}
FILES = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.yaml"))]


def within(part: Any, whole: Any) -> bool:
    """Whether ``part`` is ``whole`` with some keys (or list elements, for lists of maps) left
    out."""
    if isinstance(part, dict) and isinstance(whole, dict):
        return all(k in whole and within(v, whole[k]) for k, v in part.items())
    if isinstance(part, list) and part and all(isinstance(x, dict) for x in part):
        return isinstance(whole, list) and all(any(within(x, y) for y in whole) for x in part)
    return bool(part == whole)


def excerpts() -> list[tuple[str, Any]]:
    found = []
    for i, body in enumerate(blocks(GUIDE, "yaml")):
        data = yaml.safe_load(body)
        if isinstance(data, list):
            data = {"transitions": data}
        elif isinstance(data, dict) and set(data) <= STEP_KEYS:
            data = {"transitions": [data]}  # a part of one transition
        if not is_workflow(data):
            found.append((f"workflows.md#{i}", data))
    return found


def test_the_guide_shows_a_whole_workflow_and_excerpts() -> None:
    """At least one block of the guide is a whole file (loaded above), the others excerpts."""
    whole = [b for b in blocks(GUIDE, "yaml") if is_workflow(yaml.safe_load(b))]
    assert len(whole) == 1 and len(excerpts()) == len(blocks(GUIDE, "yaml")) - 1


@pytest.mark.parametrize(("where", "part"), excerpts(), ids=[w for w, _ in excerpts()])
def test_every_excerpt_of_the_guide_is_in_the_example_files(where: str, part: Any) -> None:
    """What the guide shows of the worked example is what docs/examples holds."""
    assert set(part) <= set(SECTIONS), f"{where}: {sorted(set(part) - set(SECTIONS))}"
    assert any(within(part, whole) for whole in FILES), f"{where} differs from docs/examples"
