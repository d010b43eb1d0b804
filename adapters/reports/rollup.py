"""A rolled-up report: an org's figures with those of the orgs under it that the deployment's
settings roll up to it (``rollup: true``, recursively), per org and summed.

Counts are summed, rates pooled (numerators and denominators summed, so the rate is exact),
nested counts merged key by key. A figure that does not add up (a score, a mean, a name) is
left out of the sum and shown per org. Each org's report is produced for the same actor as
the parent's, so the detail rows of another org's instances are left out as
:mod:`.scope` leaves out any row the actor may not read: the parent's office sees the
children's counts, not their rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from xieshang import SYSTEM, Actor, DeploymentConfig, Forbidden

from .kinds import report
from .model import Line, Rate, Report

__all__ = ["Rollup", "rollup_report"]

NOT_SET = "rollup is not set for it in the deployment settings"


@dataclass
class Rollup:
    """The parent's report and each rolled-up org's (``per_org``, parent first), their sum
    (``total``), and the orgs under the parent left out, each with the reason."""

    org: str
    per_org: dict[str, Report]
    total: Report
    left_out: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.total.kind,
            "year": self.total.year,
            "org": self.org,
            "rollup": {"orgs": list(self.per_org), "left_out": self.left_out},
            "total": self.total.to_dict(),
            "per_org": {org: rep.to_dict() for org, rep in self.per_org.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True)


def _check_reader(config: DeploymentConfig, org: str, actor: Actor | None) -> None:
    if actor is None or actor == SYSTEM:
        return  # the trusted operator
    if actor.org is not None and actor.org != org:
        raise Forbidden(
            f"actor {actor.id!r} of org {actor.org!r} cannot read the rolled-up report of "
            f"org {org!r}",
            trigger="report",
            actor=actor.id,
            allowed=[actor.org],
        )
    roles = list(config.report_roles)
    if not set(actor.roles) & set(roles):
        raise Forbidden(
            f"actor {actor.id!r} with roles {sorted(actor.roles)} may not read a rolled-up "
            f"report; allowed roles: {', '.join(roles)}",
            trigger="report",
            actor=actor.id,
            allowed=roles,
        )


def _included(config: DeploymentConfig, org: str) -> tuple[list[str], dict[str, str]]:
    """The orgs whose figures roll up to ``org`` (itself first), and those left out."""
    kept, left = [org], {}
    todo = [org]
    while todo:
        for child in config.children(todo.pop(0)):
            if child.rollup:
                kept.append(child.id)
                todo.append(child.id)
            else:
                left[child.id] = NOT_SET
    return kept, left


def rollup_report(
    kind: str,
    source: Any,
    year: int,
    org: str,
    config: DeploymentConfig,
    actor: Actor | None = None,
) -> Rollup:
    """``org``'s report ``kind`` rolled up over the orgs ``config`` lets it see.

    Raises:
        Forbidden: ``actor`` is of another org, or holds none of ``config.report_roles``.
        Usage: ``org`` is not an org of the settings.
    """
    from xieshang import Usage

    if config.org(org) is None:
        known = ", ".join(o.id for o in config.orgs) or "none"
        raise Usage(f"--org {org!r} is not an org of the deployment settings (orgs: {known})")
    _check_reader(config, org, actor)
    orgs, left = _included(config, org)
    per_org = {o: report(kind, source, year, o, actor=actor) for o in orgs}
    first = per_org[org]
    total = Report(kind, first.title, year, org)
    total.figures = _sum([r.figures for r in per_org.values()]) or {}
    names = dict.fromkeys(k for r in per_org.values() for k in r.rates)
    for name in names:
        rates = [r.rates[name] for r in per_org.values() if name in r.rates]
        total.rates[name] = Rate(sum(x.numerator for x in rates), sum(x.denominator for x in rates))
    total.lines = _lines([r.lines for r in per_org.values()])
    total.notes = [
        *first.notes,
        f"汇总 (rollup): {', '.join(orgs)}",
        *(f"未汇总 (left out): {o}: {why}" for o, why in left.items()),
    ]
    return Rollup(org, per_org, total, left)


def _sum(values: list[Any]) -> Any:
    """Counts summed, mappings merged key by key, lists joined; None for what does not add."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return sum(values)
    if all(isinstance(v, dict) for v in values):
        keys = dict.fromkeys(k for v in values for k in v)
        return {k: _sum([v[k] for v in values if k in v]) for k in keys}
    if all(isinstance(v, list) for v in values):
        return [x for v in values for x in v]
    if len(values) == 1:
        return values[0]
    return None


def _lines(per_org: list[list[Line]]) -> list[Line]:
    groups: dict[tuple[str, str], list[Line]] = {}
    for lines in per_org:
        for line in lines:
            groups.setdefault((line.section, line.item), []).append(line)
    out = []
    for (section, item), lines in groups.items():
        count = _sum([ln.count for ln in lines])
        rates = [ln.rate for ln in lines]
        rate = None
        if all(r is not None for r in rates):
            rate = Rate(
                sum(r.numerator for r in rates if r), sum(r.denominator for r in rates if r)
            )
        out.append(Line(section, item, count, rate))
    return out
