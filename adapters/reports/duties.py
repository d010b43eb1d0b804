"""委员履职: the year's duty points per member, per sector (界别) and per special committee, with
the ranking and the quotas not met.

Points come from the duty ledger (``duty_records``), counted under the rules the year was last
recomputed with (stored with the recompute), else the deployment's rules (``XIESHANG_DUTIES`` or
the bundled default): caps are applied when counting, quotas count records above zero points.
The roster of the rules (``members:``) names each member's sector and committee; members of the
roster without a record are listed with every quota unmet.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from xieshang import Actor, DutyRecord, DutyRules
from xieshang.adapters.sql import engine_for
from xieshang.adapters.sql.tables import duty_recomputes, duty_records
from xieshang.shared import RECORD_READERS, DutyFile, MemberYear, compile_duty_rules, count_year

from .model import Report
from .reading import new_report

__all__ = ["duties_report", "rules_for_report", "scope_duties", "year_records"]

UNSTATED = "未登记"
_HEADERS = ["名次", "委员", "姓名", "界别", "专委会", "总分", "条数", "未完成指标"]


def rules_for_report(source: Any, year: int) -> DutyRules:
    """The rules ``year`` is counted under: its last recompute's, else the deployment's."""
    engine, owned = engine_for(source)
    c = duty_recomputes.c
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(c.rules_body).where(c.year == year).order_by(c.id.desc()).limit(1)
            ).fetchone()
    finally:
        if owned:
            engine.dispose()
    if row is not None:
        return compile_duty_rules(DutyFile.model_validate(json.loads(row[0])), origin="recompute")
    from xieshang.adapters.settings import Settings, load_duty_rules, load_workflows

    settings = Settings()
    return load_duty_rules(settings.duties, load_workflows(settings))


def year_records(source: Any, year: int, org: str | None = None) -> list[DutyRecord]:
    """The duty records of ``year`` (of ``org`` only, when given)."""
    engine, owned = engine_for(source)
    c = duty_records.c
    q = sa.select(
        c.member, c.org, c.year, c.category, c.points, c.rule, c.instance_id, c.seq,
        c.occurred_at,
    ).where(c.year == year)  # fmt: skip
    if org is not None:
        q = q.where(c.org == org)
    try:
        with engine.connect() as conn:
            rows = conn.execute(q.order_by(c.occurred_at, c.instance_id, c.seq)).fetchall()
    finally:
        if owned:
            engine.dispose()
    return [DutyRecord(*r) for r in rows]


def duties_report(source: Any, year: int, org: str | None = None) -> Report:
    """委员履职情况: members ranked by points, sectors and committees, quotas not met."""
    rules = rules_for_report(source, year)
    roster = rules.file.members
    years = count_year(rules, year, year_records(source, year, org), members=roster)
    ranked = sorted(years.values(), key=lambda m: (-m.total, m.member))
    rep = new_report("duties", "委员履职情况", year, org)
    categories = list(rules.file.categories)
    members = []
    place, last = 0, None
    for i, my in enumerate(ranked, start=1):
        if my.total != last:
            place, last = i, my.total
        spec = roster.get(my.member)
        members.append(
            {
                "rank": place,
                "member": my.member,
                "name": spec.name if spec else None,
                "sector": (spec.sector if spec else None) or UNSTATED,
                "committee": (spec.committee if spec else None) or UNSTATED,
                "standing": bool(spec and spec.standing),
                "total": my.total,
                "records": len(my.records),
                "by_category": {k: my.counted.get(k, 0) for k in categories},
                "earned": my.earned,
                "shortfalls": [s.to_dict() for s in my.shortfalls],
            }
        )
    rep.figures = {
        "rules": rules.hash,
        "members": members,
        "by_sector": _groups(members, "sector", categories),
        "by_committee": _groups(members, "committee", categories),
        "with_shortfalls": sum(1 for m in members if m["shortfalls"]),
        "points": sum(m["total"] for m in members),
    }
    _add_lines(rep, rules, years, members)
    return rep


def _groups(members: list[dict[str, Any]], key: str, categories: list[str]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"members": 0, "points": 0, "with_shortfalls": 0, **{c: 0 for c in categories}}
    )
    for m in members:
        g = out[m[key]]
        g["members"] += 1
        g["points"] += m["total"]
        g["with_shortfalls"] += 1 if m["shortfalls"] else 0
        for c in categories:
            g[c] += m["by_category"][c]
    ranked = sorted(out.items(), key=lambda kv: (-kv[1]["points"], kv[0]))
    return {name: {"rank": i, **g} for i, (name, g) in enumerate(ranked, start=1)}


def _add_lines(
    rep: Report, rules: DutyRules, years: dict[str, MemberYear], members: list[dict[str, Any]]
) -> None:
    f = rep.figures
    rep.add("总体", "委员人数", len(members))
    rep.add("总体", "履职总分", f["points"])
    rep.add("总体", "未完成履职指标的委员", f["with_shortfalls"])
    labels = {k: v.label.zh for k, v in rules.file.categories.items()}
    for cat, label in labels.items():
        rep.add("分类得分", label, sum(m["by_category"][cat] for m in members))
    for name, g in f["by_sector"].items():
        rep.add("界别", name, g["points"])
    for name, g in f["by_committee"].items():
        rep.add("专委会", name, g["points"])
    rows = []
    for m in members:
        short = "；".join(
            f"{labels.get(s['category'], s['category'])} {s['have']}/{s['need']}"
            for s in m["shortfalls"]
        )
        row = [m["rank"], m["member"], m["name"] or "", m["sector"], m["committee"]]
        rows.append([*row, m["total"], m["records"], short])
    rep.wide["委员排名"] = (_HEADERS, rows)
    rep.notes.append(
        f"积分规则 {rules.hash[:12]}：各类封顶后合计，年度总分封顶 {rules.file.year_cap}"
        if rules.file.year_cap is not None
        else f"积分规则 {rules.hash[:12]}：各类封顶后合计"
    )


def scope_duties(rep: Report, actor: Actor | None) -> Report:
    """The report for ``actor``: a reader of members' records (the office, committees, the
    council, an administrator) sees every member's row; anyone else only their own. The
    totals by category, sector and committee name no member and stay whole."""
    if actor is None or not actor.roles.isdisjoint(RECORD_READERS):
        return rep
    mine = [m for m in rep.figures["members"] if m["member"] == actor.id]
    rep.figures["members"] = mine
    headers, rows = rep.wide["委员排名"]
    rep.wide["委员排名"] = (headers, [r for r in rows if r[1] == actor.id])
    return rep
