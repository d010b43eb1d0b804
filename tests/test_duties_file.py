"""Duty rules files are validated like workflows: every mistake of a file is reported at once,
each with its line, its path and a stable code (XS141-XS149), names with a did-you-mean; the
bundled default passes; the JSON Schema an editor uses comes from the same model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xieshang import DutiesFileError, Registry, load_duties
from xieshang.shared import DutyFile, duties_problems
from xieshang.workflows import DUTIES_FILE, bundled

REGISTRY: Registry = bundled()

VALID = """\
version: 1
title: {zh: 规则}
categories:
  attendance: {label: {zh: 会议出勤}}
  proposal: {label: {zh: 提案}, cap: 30}
quotas:
  - category: proposal
    at_least: 1
  - category: attendance
    at_least: 2
rules:
  - id: attended
    workflow: meeting_attendance
    trigger: sign_in
    category: attendance
    points: 2
  - id: leave
    workflow: meeting_attendance
    trigger: request_leave
    category: attendance
    points: 0
  - id: recorded
    workflow: meeting_attendance
    trigger: record_present
    member: payload.members
    category: attendance
    points: 2
  - id: filed
    workflow: proposal
    trigger: file
    member: data.first_proposer
    category: proposal
    points: 5
  - id: plenary
    workflow: meeting_attendance
    trigger: sign_in
    when: data.kind == 'plenary'
    category: attendance
    points: 1
  - id: suggested
    workflow: annual_consultation_plan
    trigger: suggest_topic
    roles: [member]
    category: proposal
    points: 1
"""

# Each mutation replaces one line of VALID (by its 1-based number) and brings one problem
# there: (line, the line's text, the mutant text, the code expected at that line).
MUTATIONS = {
    "unknown_workflow": (13, "    workflow: meeting_attendance", "    workflow: meeting_atendance",
                         "XS142"),
    "unknown_trigger": (19, "    trigger: request_leave", "    trigger: request_leav", "XS143"),
    "unknown_category": (26, "    category: attendance", "    category: atendance", "XS144"),
    "duplicate_rule": (28, "  - id: filed", "  - id: leave", "XS145"),
    "bad_expression": (37, "    when: data.kind == 'plenary'", "    when: data.kind ==", "XS146"),
    "unknown_role": (43, "    roles: [member]", "    roles: [membr]", "XS147"),
    "unknown_field": (31, "    member: data.first_proposer", "    member: data.first_propser",
                      "XS148"),
    "negative_points": (21, "    points: 0", "    points: -1", "XS141"),
    "duplicate_quota": (9, "  - category: attendance", "  - category: proposal", "XS149"),
}  # fmt: skip


def mutate(names: list[str]) -> str:
    lines = VALID.splitlines()
    for name in names:
        number, before, after, _ = MUTATIONS[name]
        assert lines[number - 1] == before, (name, lines[number - 1])
        lines[number - 1] = after
    return "\n".join(lines) + "\n"


def test_the_valid_file_and_the_bundled_default_have_no_problem() -> None:
    assert duties_problems(VALID, "valid.yaml", REGISTRY) == []
    text = DUTIES_FILE.read_text(encoding="utf-8")
    assert duties_problems(text, str(DUTIES_FILE), REGISTRY) == []


def test_a_file_with_every_mistake_gets_every_problem_with_its_line_and_code() -> None:
    """All nine mistakes at once: nine problems, each at its line, with its code, path and a
    message that names what was wrong and what would be allowed."""
    with pytest.raises(DutiesFileError) as info:
        load_duties(mutate(list(MUTATIONS)), "broken.yaml", REGISTRY)
    found = [(p.line, p.code, p.path) for p in info.value.problems]
    assert found == [
        (9, "XS149", "quotas[1].category"),
        (13, "XS142", "rules[0].workflow"),
        (19, "XS143", "rules[1].trigger"),
        (21, "XS141", "rules[1].points"),
        (26, "XS144", "rules[2].category"),
        (28, "XS145", "rules[3].id"),
        (31, "XS148", "rules[3].member"),
        (37, "XS146", "rules[4].when"),
        (43, "XS147", "rules[5].roles[0]"),
    ]
    by_code = {p.code: p.message for p in info.value.problems}
    assert (
        "unknown workflow 'meeting_atendance'; did you mean 'meeting_attendance'?"
        in (by_code["XS142"])
    )
    assert "has no trigger 'request_leav'; did you mean 'request_leave'?" in by_code["XS143"]
    assert "unknown category 'atendance'; did you mean 'attendance'?" in by_code["XS144"]
    assert "did you mean 'first_proposer'?" in by_code["XS148"]
    assert "has no role 'membr'; did you mean 'member'?" in by_code["XS147"]
    assert "rule id 'leave' is used by rules[1] already" in by_code["XS145"]
    assert str(info.value).startswith("9 problems in duty rules file broken.yaml:")


@settings(deadline=None, max_examples=40)
@given(names=st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, unique=True))
def test_any_set_of_mistakes_is_reported_whole(names: list[str]) -> None:
    """Whatever mistakes a valid file is given, loading refuses it with exactly one problem per
    mistake, at that mistake's line and with its code."""
    with pytest.raises(DutiesFileError) as info:
        load_duties(mutate(names), "mutant.yaml", REGISTRY)
    found = sorted((p.line, p.code) for p in info.value.problems)
    assert found == sorted((MUTATIONS[n][0], MUTATIONS[n][3]) for n in names)
    assert all(p.file == "mutant.yaml" and p.path for p in info.value.problems)


def test_a_file_that_is_not_a_mapping_or_not_yaml_is_refused_at_its_line() -> None:
    [problem] = duties_problems("- just\n- a list\n", "list.yaml", REGISTRY)
    assert (problem.code, problem.line) == ("XS141", 1)
    [problem] = duties_problems("rules: [\n", "broken.yaml", REGISTRY)
    assert problem.code == "XS001"


def test_without_workflows_only_the_file_itself_is_checked() -> None:
    """A file checked alone (no workflows loaded) still has its own names and shape checked."""
    problems = duties_problems(mutate(["unknown_workflow", "unknown_category"]), "a.yaml")
    assert [(p.line, p.code) for p in problems] == [(26, "XS144")]


def test_the_json_schema_forbids_unknown_keys_and_requires_the_rules() -> None:
    schema = DutyFile.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"version", "title", "categories", "rules"}
    rule = schema["$defs"]["DutyRule"]
    assert set(rule["required"]) == {"id", "workflow", "trigger", "category", "points"}


def test_the_example_of_the_guide_is_a_valid_rules_file() -> None:
    """The rules file shown in docs/duties.md loads against the bundled workflows."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "duties.md").read_text("utf-8")
    [example] = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "rules:" in b]
    rules = load_duties(example, "docs/duties.md", REGISTRY)
    assert [r.id for r in rules.file.rules] == [
        "proposal_filed", "proposal_cosigned", "opinion_adopted", "attended", "leave",
    ]  # fmt: skip
    assert rules.file.members["m001"].sector == "经济界"
