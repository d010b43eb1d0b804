"""Members' duty rules: the model of a rules file, its compiled form, and the records a step earns.

A rules file (``duties.yaml``) is data per deployment: each rule maps a committed step (a
workflow, a trigger, the role it was fired in, an optional CEL condition) to points in a
category for one or several members (the actor, or members a CEL expression names, such as a
proposal's co-proposers). A record is a pure function of one history row and the instance data
that row left, so the same function writes records in a step's transaction, recomputes a year,
and lets ``audit verify`` check what is stored. Reading and validating a file is in
:mod:`xieshang.duties_file`; totals, caps and quotas in :mod:`xieshang.duties_totals`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field

from .calendar import CHINA_TZ
from .expressions import Compiled, activation, compile_expression
from .fields import Ident, Label, _Model
from .records import HistoryEntry, canonical_json

__all__ = [
    "ACTOR",
    "CategorySpec",
    "CompiledRule",
    "DutyFile",
    "DutyRecord",
    "DutyRule",
    "DutyRules",
    "MemberSpec",
    "QuotaSpec",
    "compile_rules",
    "records_for",
    "year_of",
]

ACTOR = "actor"  # a rule's default member: whoever fired the step
NAMES = ("data", "payload", "actor", "step")  # what a rule's expressions read
STEP_MEMBERS = ("workflow", "trigger", "from", "to", "role", "instance_id", "org")
ACTOR_MEMBERS = ("id", "roles", "org", "unit")


class CategorySpec(_Model):
    """A category of duties (提案, 社情民意, 会议出勤 ...) and the most points it counts a year."""

    label: Label
    cap: int | None = Field(default=None, ge=0, description="most points a member counts a year")


class QuotaSpec(_Model):
    """A yearly quota: at least ``at_least`` records above zero points in ``category``."""

    category: Ident
    at_least: int = Field(ge=1)
    label: Label | None = None


class MemberSpec(_Model):
    """A member of the roster: the name, sector (界别) and special committee reports group by."""

    name: str = Field(min_length=1, max_length=100)
    sector: str | None = Field(default=None, max_length=100)
    committee: str | None = Field(default=None, max_length=100)
    standing: bool = Field(default=False, description="a standing committee member (常委)")


class DutyRule(_Model):
    """One rule: what happened, who earns, how many points in which category."""

    id: Ident
    label: Label | None = None
    workflow: Ident
    trigger: Ident = Field(description="a trigger of the workflow, or 'start' for its creation")
    roles: list[Ident] | None = Field(
        default=None, description="only steps fired in one of these roles; none: any role"
    )
    member: str = Field(
        default=ACTOR,
        min_length=1,
        max_length=500,
        description="who earns: 'actor', or a CEL expression over data, payload, actor and step "
        "giving a member id or a list of them",
    )
    when: str | None = Field(default=None, min_length=1, max_length=2000)
    category: Ident
    points: int = Field(ge=0, le=1000)


class DutyFile(_Model):
    """A deployment's duty rules, as written in its ``duties.yaml``."""

    version: int = Field(ge=1)
    title: Label
    categories: dict[Ident, CategorySpec] = Field(min_length=1)
    year_cap: int | None = Field(default=None, ge=0)
    quotas: list[QuotaSpec] = Field(default_factory=list)
    rules: list[DutyRule] = Field(min_length=1)
    members: dict[str, MemberSpec] = Field(
        default_factory=dict, description="the roster: member id -> name, sector, committee"
    )


@dataclass(frozen=True, slots=True)
class DutyRecord:
    """Points a member earned by one history row under one rule.

    Points are stored as earned: caps are applied when totals are counted
    (:mod:`xieshang.duties_totals`), so that a record never depends on the records before it.
    """

    member: str
    org: str
    year: int
    category: str
    points: int
    rule: str
    instance_id: str
    seq: int
    occurred_at: str

    def key(self) -> tuple[str, int, str, str]:
        return (self.instance_id, self.seq, self.rule, self.member)

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "org": self.org,
            "year": self.year,
            "category": self.category,
            "points": self.points,
            "rule": self.rule,
            "instance_id": self.instance_id,
            "seq": self.seq,
            "occurred_at": self.occurred_at,
        }


@dataclass(frozen=True, slots=True)
class CompiledRule:
    spec: DutyRule
    member: Compiled | None  # None: the actor
    when: Compiled | None


@dataclass(frozen=True, slots=True)
class DutyRules:
    """A validated rules file, its expressions compiled, its rules indexed by (workflow, trigger).

    ``hash`` names the rules (SHA-256 of their canonical JSON); ``body`` is that JSON, which a
    recompute stores so that the rules a year was counted with can be read back."""

    file: DutyFile
    by_step: dict[tuple[str, str], tuple[CompiledRule, ...]]
    hash: str
    body: str
    origin: str = ""

    @property
    def workflows(self) -> frozenset[str]:
        return frozenset(w for w, _ in self.by_step)


def compile_rules(file: DutyFile, *, origin: str = "") -> DutyRules:
    """Compile a validated file's expressions (:func:`xieshang.duties_file.parse_duties` has
    checked them, with their lines)."""
    by_step: dict[tuple[str, str], list[CompiledRule]] = {}
    for rule in file.rules:
        member = None if rule.member.strip() == ACTOR else compile_any(rule.member)
        when = compile_any(rule.when) if rule.when is not None else None
        by_step.setdefault((rule.workflow, rule.trigger), []).append(
            CompiledRule(rule, member, when)
        )
    body = canonical_json(file.model_dump(mode="json", exclude_none=True))
    return DutyRules(
        file,
        {k: tuple(v) for k, v in by_step.items()},
        hashlib.sha256(body.encode()).hexdigest(),
        body,
        origin,
    )


def compile_any(source: str) -> Compiled:
    """An expression of a rule, any member of ``data`` and ``payload`` allowed."""
    return compile_expression(
        source,
        names=NAMES,
        members={"step": STEP_MEMBERS, "actor": ACTOR_MEMBERS, "data": None, "payload": None},
    )


def year_of(occurred_at: str) -> int:
    """The year a step counts in: the year of its moment in China time."""
    return datetime.fromisoformat(occurred_at).astimezone(CHINA_TZ).year


def records_for(
    rules: DutyRules, org: str, row: HistoryEntry, data: dict[str, Any]
) -> list[DutyRecord]:
    """The records ``row`` earns under ``rules``; ``data`` is the instance's data after it.

    A rule whose expression fails on this step (a missing field, a wrong type) earns nothing:
    the step itself was valid, and the same failure recurs at every recompute.
    """
    matched = rules.by_step.get((row.workflow, row.trigger))
    if not matched:
        return []
    out: list[DutyRecord] = []
    ctx: Any = None
    for rule in matched:
        if rule.spec.roles is not None and row.role not in rule.spec.roles:
            continue
        if ctx is None and (rule.when is not None or rule.member is not None):
            ctx = activation(_variables(org, row, data))
        try:
            if rule.when is not None and rule.when.run(ctx) is not True:
                continue
            members = _members(rule.member.run(ctx) if rule.member is not None else row.actor["id"])
        except Exception:
            continue
        year = year_of(row.occurred_at)
        for member in members:
            out.append(
                DutyRecord(
                    member,
                    org,
                    year,
                    rule.spec.category,
                    rule.spec.points,
                    rule.spec.id,
                    row.instance_id,
                    row.seq,
                    row.occurred_at,
                )
            )
    return out


def _variables(org: str, row: HistoryEntry, data: dict[str, Any]) -> dict[str, Any]:
    actor = row.actor
    return {
        "data": data,
        "payload": row.payload,
        "actor": {
            "id": actor.get("id"),
            "roles": list(actor.get("roles", [])),
            "org": actor.get("org"),
            "unit": actor.get("unit"),
        },
        "step": {
            "workflow": row.workflow,
            "trigger": row.trigger,
            "from": row.source,
            "to": row.target,
            "role": row.role,
            "instance_id": row.instance_id,
            "org": org,
        },
    }


def _members(value: Any) -> list[str]:
    """The member ids an expression gave: one id, a list of them (duplicates once, in order)."""
    items = value if isinstance(value, list | tuple) else [value]
    seen: list[str] = []
    for item in items:
        if isinstance(item, str) and item and item not in seen:
            seen.append(item)
    return seen
