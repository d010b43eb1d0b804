"""Reading a duty rules file: safe YAML, the model, then the checks against the workflows, with
every problem listed at its line under a stable code (XS141-XS149).

| code | name | what |
| --- | --- | --- |
| XS141 | duties-shape | a key, type or value the format does not allow |
| XS142 | unknown-workflow | a rule names a workflow that is not loaded |
| XS143 | unknown-trigger | a rule names a trigger its workflow does not have |
| XS144 | unknown-category | a rule or quota names a category the file does not declare |
| XS145 | duplicate-rule | two rules share an id |
| XS146 | bad-expression | a rule's ``member`` or ``when`` is not valid CEL over its names |
| XS147 | unknown-role | a rule names a role its workflow does not declare |
| XS148 | unknown-field | an expression reads a data or payload field the step does not have |
| XS149 | duplicate-quota | two quotas for one category |
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from .compiler import CompiledWorkflow
from .duties import (
    ACTOR,
    ACTOR_MEMBERS,
    NAMES,
    STEP_MEMBERS,
    DutyFile,
    DutyRules,
    compile_rules,
)
from .errors import DutiesFileError, Problem
from .expressions import ExpressionError, compile_expression
from .rows import START
from .yamlsafe import Located, Path, read_yaml

__all__ = ["duties_problems", "load_duties", "parse_duties"]


def load_duties(
    text: str | bytes, file: str = "", workflows: Iterable[CompiledWorkflow] | None = None
) -> DutyRules:
    """The compiled rules of a file's text, checked against ``workflows`` when given.

    Raises:
        DutiesFileError: every problem of the file, each with its line and code.
    """
    rules, problems = parse_duties(text, file, workflows)
    if problems or rules is None:
        raise DutiesFileError(problems, file=file)
    return rules


def duties_problems(
    text: str | bytes, file: str = "", workflows: Iterable[CompiledWorkflow] | None = None
) -> list[Problem]:
    """Every problem of a rules file (none: it is valid)."""
    return parse_duties(text, file, workflows)[1]


def parse_duties(
    text: str | bytes, file: str = "", workflows: Iterable[CompiledWorkflow] | None = None
) -> tuple[DutyRules | None, list[Problem]]:
    """The rules (None when the file does not fit the format) and every problem found."""
    located, problems = read_yaml(text, file)
    if located is None:
        return None, problems
    if problems:
        return None, problems
    if not isinstance(located.data, dict):
        msg = f"a duty rules file is a mapping, not {type(located.data).__name__}"
        return None, [located.problem("XS141", "duties-shape", msg, ())]
    try:
        model = DutyFile.model_validate(located.data)
    except ValidationError as e:
        problems += [_shape(located, err) for err in e.errors()]
        model = None
    known = {wf.id: wf for wf in workflows} if workflows is not None else None
    problems += _checks(located, known)
    if model is None or problems:
        return None, problems
    return compile_rules(model, origin=file), problems


def _shape(located: Located, err: Any) -> Problem:
    path: Path = tuple(err["loc"])
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    return located.problem("XS141", "duties-shape", f"{err['msg']}{shown}", path)


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _checks(located: Located, known: dict[str, CompiledWorkflow] | None) -> list[Problem]:
    """The checks of what the model cannot see, on the raw data (so that a file with shape
    problems still has its other problems found)."""
    data = located.data
    out: list[Problem] = []
    categories = data.get("categories")
    names = set(categories) if isinstance(categories, dict) else None
    quotas = data.get("quotas")
    seen_quota: set[str] = set()
    for i, quota in enumerate(quotas if isinstance(quotas, list) else []):
        if not isinstance(quota, dict) or not isinstance(quota.get("category"), str):
            continue
        cat = quota["category"]
        if names is not None and cat not in names:
            out.append(_unknown_category(located, cat, names, ("quotas", i, "category")))
        if cat in seen_quota:
            msg = f"a second quota for category {cat!r}"
            out.append(located.problem("XS149", "duplicate-quota", msg, ("quotas", i, "category")))
        seen_quota.add(cat)
    rules = data.get("rules")
    ids: dict[str, int] = {}
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        at: Path = ("rules", i)
        rid = rule.get("id")
        if isinstance(rid, str):
            if rid in ids:
                msg = f"rule id {rid!r} is used by rules[{ids[rid]}] already"
                out.append(located.problem("XS145", "duplicate-rule", msg, (*at, "id")))
            else:
                ids[rid] = i
        cat = rule.get("category")
        if names is not None and isinstance(cat, str) and cat not in names:
            out.append(_unknown_category(located, cat, names, (*at, "category")))
        out += _rule_checks(located, rule, at, known)
    return out


def _unknown_category(located: Located, cat: str, names: set[str], path: Path) -> Problem:
    msg = (
        f"unknown category {cat!r}{_did_you_mean(cat, names)} (categories: "
        f"{', '.join(sorted(names))})"
    )
    return located.problem("XS144", "unknown-category", msg, path)


def _rule_checks(
    located: Located, rule: dict[str, Any], at: Path, known: dict[str, CompiledWorkflow] | None
) -> list[Problem]:
    out: list[Problem] = []
    wf: CompiledWorkflow | None = None
    workflow, trigger = rule.get("workflow"), rule.get("trigger")
    if known is not None and isinstance(workflow, str):
        wf = known.get(workflow)
        if wf is None:
            msg = (
                f"unknown workflow {workflow!r}{_did_you_mean(workflow, known)} (workflows: "
                f"{', '.join(sorted(known))})"
            )
            out.append(located.problem("XS142", "unknown-workflow", msg, (*at, "workflow")))
    triggers: list[str] = []
    if wf is not None:
        triggers = [START, *wf.definition.triggers()]
        if isinstance(trigger, str) and trigger not in triggers:
            msg = (
                f"workflow {wf.id!r} has no trigger {trigger!r}{_did_you_mean(trigger, triggers)}"
                f" (triggers: {', '.join(triggers)})"
            )
            out.append(located.problem("XS143", "unknown-trigger", msg, (*at, "trigger")))
        roles = rule.get("roles")
        declared = set(wf.definition.roles) | {"system"}
        for j, role in enumerate(roles if isinstance(roles, list) else []):
            if isinstance(role, str) and role not in declared:
                msg = (
                    f"workflow {wf.id!r} has no role {role!r}{_did_you_mean(role, declared)} "
                    f"(roles: {', '.join(sorted(declared))})"
                )
                out.append(located.problem("XS147", "unknown-role", msg, (*at, "roles", j)))
    members = _members_of(wf, trigger if isinstance(trigger, str) else None)
    for key in ("member", "when"):
        source = rule.get(key)
        if not isinstance(source, str) or (key == "member" and source.strip() == ACTOR):
            continue
        try:
            compile_expression(source, names=NAMES, members=members)
        except ExpressionError as e:
            code, name = ("XS148", "unknown-field") if e.code == "XS123" else ("XS146", e.name)
            out.append(located.problem(code, name, e.message, (*at, key)))
    return out


def _members_of(wf: CompiledWorkflow | None, trigger: str | None) -> dict[str, Any]:
    """The members each name of a rule's expression has: the workflow's data fields and the
    trigger's payload fields when they are known, any member otherwise."""
    members: dict[str, Any] = {"step": STEP_MEMBERS, "actor": ACTOR_MEMBERS}
    members["data"] = tuple(wf.definition.data) if wf is not None else None
    payload: Any = None
    if wf is not None and trigger == START:
        payload = tuple(wf.definition.data)
    elif wf is not None and trigger is not None and trigger in wf.by_trigger:
        fields: set[str] = set()
        for t in wf.by_trigger[trigger]:
            fields |= set(t.spec.payload or {})
        payload = tuple(fields)
    members["payload"] = payload
    return members
