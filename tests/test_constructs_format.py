"""The new constructs in the file format: the JSON Schema accepts them, and the examples of the
docs load.

``workflow.schema.json`` (what editors and CI check files with) must accept every construct the
loader accepts: ``workdays_before`` in expressions, ``not_by`` as a rule with a scope,
``start.guard``, ``cascade`` as one entry or a list; and refuse a scope it does not know. Each
YAML example of the docs for these constructs loads in a workflow of its own.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from xieshang import Registry
from xieshang.yamlsafe import read_yaml

DOCS = Path(__file__).resolve().parent.parent / "docs"

EVERYTHING = """\
id: everything
version: 1
title: {zh: 新构件}
roles: {clerk: {zh: 办事员}, writer: {zh: 执笔人}}
start:
  roles: [clerk]
  guard: data.year >= year(now)
  guard_message: 年度不能早于今年
data:
  title: {type: string, required: true}
  year: {type: int, required: true}
  meeting_date: {type: date}
states:
  open:
    initial: true
    label: {zh: 办理中}
    deadline: {at: "workdays_before(data.meeting_date, '5 working days')"}
  drafted: {label: {zh: 已起草}}
  done: {final: true, label: {zh: 已办结}}
  withdrawn: {final: true, label: {zh: 已撤回}}
transitions:
  - trigger: draft_report
    from: [open, drafted]
    to: drafted
    roles: [writer]
    guard: parent == null || parent.state != 'paused'
    set: {meeting_date: "due_date(data.meeting_date, '-1 month')"}
  - trigger: approve
    from: drafted
    to: done
    roles: [clerk]
    not_by: {triggers: [draft_report], scope: last}
    cascade: {trigger: cancel_by_parent}
  - trigger: withdraw
    from: [open, drafted]
    to: withdrawn
    roles: [clerk]
    not_by: [draft_report]
    cascade: [{trigger: cancel_by_parent, workflow: everything}]
  - trigger: cancel_by_parent
    from: [open, drafted]
    to: withdrawn
    roles: [system]
"""


def schema_errors(data: Any) -> list[str]:
    """The schema's errors for ``data`` (jsonschema_rs, installed with schemathesis)."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    text = resources.files("xieshang").joinpath("schema/workflow.schema.json").read_text("utf-8")
    validator = jsonschema_rs.validator_for(json.loads(text))
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(data)]


def test_the_schema_accepts_every_new_construct_the_loader_accepts() -> None:
    Registry.from_texts([("everything.yaml", EVERYTHING)])
    located, problems = read_yaml(EVERYTHING)
    assert problems == [] and located is not None
    assert schema_errors(located.data) == []


def test_the_schema_refuses_an_unknown_scope_and_a_cascade_without_trigger() -> None:
    located, _ = read_yaml(EVERYTHING.replace("scope: last", "scope: latest"))
    assert located is not None and schema_errors(located.data) != []
    located, _ = read_yaml(
        EVERYTHING.replace("cascade: {trigger: cancel_by_parent}", "cascade: {}")
    )
    assert located is not None and schema_errors(located.data) != []


def section(doc: str, heading: str) -> list[str]:
    """The YAML blocks of one section of a doc."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    body = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", body, re.S)


SKELETON = """\
id: doc_example
version: 1
title: {zh: 文档示例}
roles: {clerk: {zh: 办事员}, writer: {zh: 执笔人}, office: {zh: 办公室}, member: {zh: 委员},
  party_org: {zh: 党派}, proposal_committee: {zh: 提案委}}
params:
  notice_lead: {type: duration, default: 5 working days}
  years_ahead: {type: int, default: 1}
data:
  title: {type: string}
  year: {type: int}
  category: {type: string}
  priority: {type: string}
  inspection_date: {type: date}
  notice_by: {type: date}
"""

STATES = """\
states:
  todo: {initial: true, label: {zh: 待办}}
  drafted: {label: {zh: 已起草}}
  filed: {label: {zh: 已立案}}
  assigned: {label: {zh: 已交办}}
  preparing: {label: {zh: 筹备中}}
  noticed: {final: true, label: {zh: 已通知}}
  done: {final: true, label: {zh: 已完成}}
  approved: {final: true, label: {zh: 已审定}}
  withdrawn: {final: true, label: {zh: 已撤回}}
transitions:
  - {trigger: draft_report, from: todo, to: drafted, roles: [writer]}
  - {trigger: file, from: drafted, to: filed, roles: [clerk]}
  - {trigger: assign, from: filed, to: assigned, roles: [clerk]}
  - {trigger: prepare, from: assigned, to: preparing, roles: [clerk]}
  - {trigger: finish_all, from: [preparing, todo], to: done, roles: [clerk]}
  - {trigger: end_noticed, from: todo, to: noticed, roles: [clerk]}
  - {trigger: end_approved, from: todo, to: approved, roles: [clerk]}
  - {trigger: end_withdrawn, from: todo, to: withdrawn, roles: [clerk]}
"""


def load(text: str) -> None:
    Registry.from_texts([("doc.yaml", text)])


def test_the_documented_not_by_rule_loads() -> None:
    (example,) = section("workflow-format.md", "Separation of duties: `not_by` and its scope")
    load(SKELETON + STATES + example)


def test_the_documented_start_guard_loads() -> None:
    (example,) = section("workflow-format.md", "A guard on start: `start.guard`")
    example = example.replace("params:\n  years_ahead: {type: int, default: 1}\n", "")
    load(SKELETON + example + STATES)


def test_the_documented_parent_guard_loads() -> None:
    (example,) = section("workflow-format.md", "A child reads its parent: `parent`")
    load(
        SKELETON + STATES + example.replace("from: todo\n    to: done", "from: todo\n    to: done")
    )


def test_the_documented_cascade_loads_with_its_child() -> None:
    parent, child = section(
        "workflow-format.md", "Ending the children with their parent: `cascade:`"
    )
    child_text = (
        "id: proposal_handling\nversion: 1\ntitle: {zh: 办理}\nstates:\n"
        "  assigned: {initial: true, label: {zh: 已交办}}\n"
        "  acknowledged: {label: {zh: 已签收}}\n  handling: {label: {zh: 办理中}}\n"
        "  cancelled: {final: true, label: {zh: 已撤回}}\ntransitions:\n"
        + child
        + "  - {trigger: take, from: assigned, to: acknowledged, roles: [system]}\n"
        + "  - {trigger: work, from: acknowledged, to: handling, roles: [system]}\n"
    )
    spawning = (
        "  - trigger: hand_over\n    from: filed\n    to: assigned\n    roles: [clerk]\n"
        "    spawn: {workflow: proposal_handling, for_each: \"['u1']\", data: {}}\n"
    )
    Registry.from_texts(
        [("doc.yaml", SKELETON + STATES + spawning + parent), ("child.yaml", child_text)]
    )


def test_the_documented_backward_count_loads() -> None:
    (example,) = section("time.md", "Counting backwards: `workdays_before` and negative durations")
    text = SKELETON + example.replace(
        "states:\n", "states:\n  noticed: {final: true, label: 已通知}\n"
    )
    load(text)
