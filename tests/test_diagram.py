"""Drawing workflows: Mermaid and Graphviz DOT text with the Chinese labels.

Besides states and steps, a drawing shows each state's deadline, and under each step its guard
(abbreviated; in DOT the full text is the tooltip, which the SVG carries as a ``<title>``), the
timer that fires it, the child workflow it starts and the trigger it cascades to its children.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from xieshang import Definition, load_definition
from xieshang.adapters.common import DiagramFormat, draw
from xieshang.diagram import CJK_FONTS, abbreviate, to_dot, to_mermaid
from xieshang.workflows import bundled_files

FIXTURES = Path(__file__).parent / "fixtures" / "valid"
PROPOSAL = load_definition(
    (bundled_files()[0].parent / "proposal.yaml").read_text(encoding="utf-8")
).definition
QUOTED = load_definition((FIXTURES / "assignment.yaml").read_text(encoding="utf-8")).definition


def edges(dot: str) -> list[tuple[str, str, str]]:
    """(source, target, the label's first line) of each edge between two states."""
    found = re.findall(r'^    "(\w+)" -> "(\w+)" \[label="((?:[^"\\]|\\.)*)"', dot, re.M)
    return [(s, t, label.split("\\n")[0]) for s, t, label in found]


def small(**extra: object) -> Definition:
    return Definition.model_validate(
        {
            "id": "small",
            "version": 1,
            "title": "小流程",
            "roles": {"clerk": "办事员"},
            "states": {
                "open": {"initial": True, "label": "打开"},
                "done": {"final": True, "label": "完成"},
            },
            "transitions": [
                {"trigger": "finish", "from": "open", "to": "done", "roles": ["clerk"]}
            ],
            **extra,
        }
    )


# -- Mermaid -----------------------------------------------------------------------------------


def test_mermaid_is_a_state_diagram_with_the_title_in_front_matter() -> None:
    """The text opens with YAML front matter holding the zh title, then stateDiagram-v2."""
    lines = to_mermaid(PROPOSAL).splitlines()
    assert lines[:4] == ["---", 'title: "提案办理"', "---", "stateDiagram-v2"]


def test_mermaid_declares_every_state_with_its_chinese_label() -> None:
    """Each state appears once as `state "<zh label>" as <id>`, in file order."""
    text = to_mermaid(PROPOSAL)
    declared = re.findall(r'^    state "([^"]*)" as (\w+)$', text, re.M)
    assert [(label.split("<br/>")[0], name) for label, name in declared] == [
        (s.label.zh, name) for name, s in PROPOSAL.states.items()
    ]


def test_mermaid_marks_the_initial_and_final_states() -> None:
    """`[*] -->` enters the initial state; every final state, and only those, goes to `[*]`."""
    text = to_mermaid(PROPOSAL)
    assert re.findall(r"^    \[\*\] --> (\w+)$", text, re.M) == ["draft"]
    assert set(re.findall(r"^    (\w+) --> \[\*\]$", text, re.M)) == PROPOSAL.final_states


def test_mermaid_draws_one_edge_per_source_labelled_with_label_and_roles() -> None:
    """A transition from several states is one edge per source, `label [role, role]`."""
    text = to_mermaid(PROPOSAL)
    submit = re.findall(r"^    (\w+) --> submitted: (.*)$", text, re.M)
    assert [s for s, _ in submit] == ["draft", "cosigning", "returned_for_revision"]
    assert {label.split("<br/>")[0] for _, label in submit} == {
        "提交 [政协委员, 民主党派, 人民团体, 专门委员会]"
    }
    count = sum(len(t.from_) for t in PROPOSAL.transitions)
    assert len(re.findall(r"^    \w+ --> \w+: ", text, re.M)) == count


def test_an_unlabelled_transition_borrows_its_triggers_label() -> None:
    """A transition without a label shows the label of its trigger's first labelled one."""
    text = to_mermaid(PROPOSAL)
    assert "    replied --> rehandling: 评价 [" in text
    assert "    assigned --> assigned: 确定为重点提案 [主席会议]" in text


def test_a_trigger_with_no_label_anywhere_shows_the_trigger_and_system_role() -> None:
    """No label at all: the trigger name; the undeclared `system` role shows as 系统."""
    definition = small(
        transitions=[{"trigger": "finish", "from": "open", "to": "done", "roles": ["system"]}]
    )
    assert "    open --> done: finish [系统]" in to_mermaid(definition)
    assert '"open" -> "done" [label="finish [系统]"]' in to_dot(definition)


def test_mermaid_escapes_quotes_line_breaks_and_statement_separators() -> None:
    """Quotes, `;`, `#` and line breaks in labels become Mermaid entity codes and <br/>."""
    text = to_mermaid(QUOTED)
    assert 'title: "交办\\"测试\\""' in text
    assert '    state "已立案<br/>(待交办)" as filed' in text
    assert "    filed --> assigned: 交办#59; 分办 #35;1 [督查室]" in text
    body = text.split("stateDiagram-v2\n", 1)[1]
    for line in body.splitlines():
        assert line.count('"') in (0, 2), line


def test_a_state_named_like_a_mermaid_keyword_gets_a_safe_id() -> None:
    """States called `end` or `state` are drawn under another id, with their label intact."""
    definition = small(
        states={
            "state": {"initial": True, "label": "状态"},
            "end": {"final": True, "label": "结束"},
            "end_state": {"final": True, "label": "另一个结束"},
        },
        transitions=[
            {"trigger": "finish", "from": "state", "to": "end", "roles": ["clerk"]},
            {"trigger": "other", "from": "state", "to": "end_state", "roles": ["clerk"]},
        ],
    )
    text = to_mermaid(definition)
    ids = dict(re.findall(r'^    state "([^"]*)" as (\w+)$', text, re.M))
    assert ids["结束"] not in {"end", "end_state"}
    assert ids["状态"] != "state"
    assert len(set(ids.values())) == 3
    assert f"    {ids['状态']} --> {ids['结束']}: " in text


def test_mermaid_draws_a_definition_that_has_not_been_checked() -> None:
    """A target state that does not exist is drawn under its own name, not a crash."""
    definition = small(
        transitions=[{"trigger": "finish", "from": "open", "to": "closd", "roles": ["clerk"]}]
    )
    assert '    state "closd" as closd' in to_mermaid(definition)
    assert '"open" -> "closd"' in to_dot(definition)


# -- DOT ---------------------------------------------------------------------------------------


def test_dot_is_a_utf8_digraph_in_a_font_with_chinese_glyphs() -> None:
    """The graph declares UTF-8 and a CJK font for graph, nodes and edges."""
    text = to_dot(PROPOSAL)
    assert text.startswith('digraph "proposal" {\n')
    assert text.endswith("}\n")
    assert 'charset="UTF-8"' in text
    assert text.count(f'fontname="{CJK_FONTS}"') == 3
    assert "CJK" in CJK_FONTS


def test_dot_draws_final_states_as_double_circles_and_enters_the_initial_state() -> None:
    """Final states, and only those, are doublecircle; a start point leads to the initial state."""
    text = to_dot(PROPOSAL)
    doubles = set(re.findall(r'^    "(\w+)" \[label="[^"]*", shape=doublecircle', text, re.M))
    assert doubles == PROPOSAL.final_states
    assert re.findall(r'^    "__start" -> "(\w+)";$', text, re.M) == ["draft"]


def test_dot_edges_carry_the_chinese_label_and_roles() -> None:
    """Each (source, transition) between two states is one edge labelled `label [roles]`; the
    steps that stay in a state share one loop listing them all, so loops never overlap."""
    found = edges(to_dot(PROPOSAL))
    assert ("filed", "assigned", "交办 [督查室, 提案委员会]") in found
    moving = [(s, t.to) for t in PROPOSAL.transitions for s in t.from_ if s != t.to]
    staying = {s for t in PROPOSAL.transitions for s in t.from_ if s == t.to}
    assert len(found) == len(moving) + len(staying)
    text = to_dot(PROPOSAL)
    loops = re.findall(r'^    "assigned" -> "assigned" \[label="((?:[^"\\]|\\.)*)"', text, re.M)
    assert len(loops) == 1 and loops[0].count("\\n") >= 3  # four steps stay in 已交办


def test_dot_escapes_quotes_backslashes_and_line_breaks() -> None:
    """`"` and `\\` are backslash-escaped; a line break becomes DOT's `\\n`."""
    text = to_dot(QUOTED)
    assert 'label="交办\\"测试\\""' in text
    assert '"filed" [label="已立案\\n(待交办)"];' in text
    assert '"assigned" [label="C:\\\\办理中"];' in text


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="the Graphviz `dot` binary is not installed"
)
@pytest.mark.parametrize("definition", [PROPOSAL, QUOTED], ids=["proposal", "quoted-labels"])
def test_graphviz_reads_the_dot_text_without_complaint(definition: Definition) -> None:
    """Graphviz parses the output (escaping included) and lays out every state."""
    result = subprocess.run(
        ["dot", "-Tplain"], input=to_dot(definition).encode(), capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"syntax error" not in result.stderr
    nodes = re.findall(rb"^node (\w+) ", result.stdout, re.M)
    assert set(definition.states) <= {n.decode() for n in nodes}


# -- both --------------------------------------------------------------------------------------


@pytest.mark.parametrize("draw", [to_mermaid, to_dot], ids=["mermaid", "dot"])
def test_drawing_is_deterministic(draw: Callable[[Definition], str]) -> None:
    """The same definition, loaded again from its own JSON, draws to the same text."""
    again = Definition.model_validate(PROPOSAL.to_json())
    assert draw(PROPOSAL) == draw(again) == draw(PROPOSAL)


# -- what a step does beyond moving ----------------------------------------------------------

RICH = load_definition(
    """\
id: rich
version: 1
title: {zh: 丰富流程}
roles: {clerk: {zh: 办事员}}
params:
  reply_limit: {type: duration, default: 3 months}
data:
  title: {type: string, required: true}
  units: {type: list, items: string, default: []}
  meeting_date: {type: date}
states:
  open:
    initial: true
    label: {zh: 办理中}
    deadline: {after: params.reply_limit, roll: next_workday, remind_before: 15 days}
  waiting:
    label: {zh: 待开会}
    deadline: {at: "workdays_before(data.meeting_date, '5 working days')"}
  done: {final: true, label: {zh: 已办结}}
  withdrawn: {final: true, label: {zh: 已撤回}}
transitions:
  - trigger: assign
    from: open
    to: waiting
    roles: [clerk]
    guard: size(data.units) > 0 && data.units.all(u, u != '') && data.title != ''
    spawn: {workflow: unit_task, for_each: data.units, data: {title: item}}
  - trigger: time_out
    from: waiting
    to: done
    roles: [system]
  - trigger: withdraw
    from: [open, waiting]
    to: withdrawn
    roles: [clerk]
    cascade: {trigger: cancel_by_parent}
timers:
  - {in: waiting, after: 10 working days, fire: time_out}
"""
).definition
FULL_GUARD = "size(data.units) > 0 && data.units.all(u, u != '') && data.title != ''"


def test_a_state_shows_its_deadline_with_roll_and_reminder() -> None:
    text = to_mermaid(RICH)
    assert (
        '    state "办理中<br/>期限：3个月（params.reply_limit）（遇休顺延），提前15天提醒" as open'
        in text
    )
    assert '    state "待开会<br/>期限：workdays_before(data.meeting_da…" as waiting' in text
    dot = to_dot(RICH)
    assert (
        '"waiting" [label="待开会\\n期限：workdays_before(data.meeting_da…", tooltip="deadline '
        "at: workdays_before(data.meeting_date, '5 working days')\"];"
    ) in dot


def test_a_step_shows_its_guard_abbreviated_and_the_full_guard_as_tooltip() -> None:
    assert abbreviate(FULL_GUARD) == "size(data.units) > 0 && data.un…"
    assert abbreviate("a  &&\n   b") == "a && b"
    dot = to_dot(RICH)
    assert (
        '    "open" -> "waiting" [label="assign [办事员]\\n条件：size(data.units) > 0 && '
        'data.un…\\n⇒ 启动子流程 unit_task", tooltip="assign: guard ' + FULL_GUARD + '"];'
    ) in dot
    assert (
        "    open --> waiting: assign [办事员]<br/>条件：size(data.units) #gt; 0 && data.un…"
        "<br/>⇒ 启动子流程 unit_task"
    ) in to_mermaid(RICH)


def test_a_timer_shows_on_the_step_it_fires_with_its_duration() -> None:
    assert '    "waiting" -> "done" [label="time_out [系统]\\n⏱ 10个工作日后"];' in to_dot(RICH)
    assert "    waiting --> done: time_out [系统]<br/>⏱ 10个工作日后" in to_mermaid(RICH)


def test_a_spawn_draws_the_child_workflow_as_a_node_and_a_cascade_names_its_trigger() -> None:
    dot = to_dot(RICH)
    assert (
        '    "__workflow_unit_task" [shape=component, style=dashed, label="子流程 unit_task"];'
    ) in dot
    assert '    "waiting" -> "__workflow_unit_task" [style=dashed, arrowhead=empty];' in dot
    assert (
        '    "open" -> "withdrawn" [label="withdraw [办事员]\\n↯ 子实例：cancel_by_parent"];' in dot
    )
    assert "    waiting --> withdrawn: withdraw [办事员]<br/>↯ 子实例：cancel_by_parent" in (
        to_mermaid(RICH)
    )


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="the Graphviz `dot` binary is not installed"
)
def test_the_svg_carries_each_tooltip_as_a_title() -> None:
    """Browsers show an element's ``<title>``: the full guard and deadline are there."""
    svg = draw(RICH, DiagramFormat.svg, timeout=30).decode()
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    assert (
        "assign: guard size(data.units) &gt; 0 &amp;&amp; data.units.all(u, u != &#39;&#39;)"
        in (" ".join(titles))
    )
    assert any(t.startswith("deadline at: workdays_before(data.meeting_date") for t in titles)
