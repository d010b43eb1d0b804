"""The year's reports a 政协 office publishes, computed with SQL over the stored instances.

Every figure comes from the ``instances`` table (state, flags and the JSON ``data`` column) and,
for what happened on the way (filed, overdue, return requests), from the ``history`` table by
trigger: one query each, never a replay of histories. Rates are exact fractions, printed as a
percentage with one decimal (``domain.md`` §1.5 and decision 4).

>>> from xieshang.adapters.sql import open_store
>>> store = open_store("sqlite:///city.db")          # doctest: +SKIP
>>> review_report(store, 2024).rates["filing_rate"].text   # doctest: +SKIP
'88.7%'
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console

from xieshang.adapters.settings import command_database_url
from xieshang.adapters.sql import engine_for
from xieshang.adapters.sql.tables import history as HISTORY
from xieshang.adapters.sql.tables import instances as INSTANCES

__all__ = [
    "KINDS",
    "Line",
    "Rate",
    "Report",
    "handling_report",
    "opinions_report",
    "plan_report",
    "register_cli",
    "report",
    "review_report",
]

CN = timezone(timedelta(hours=8))
UNCLASSIFIED = "未分类"
CLASSES = ("A", "B", "C")
CLASS_ZH = {"A": "A类（已解决或采纳）", "B": "B类（正在解决或列入计划）", "C": "C类（留作参考）"}
CATEGORY_ZH = {
    "economy": "经济",
    "politics": "政治",
    "culture": "文化",
    "society": "社会",
    "ecology": "生态",
}
KIND_ZH = {"individual": "个人", "joint": "联名", "collective": "集体"}
GROUND_ZH = {
    "state_secret": "涉及国家秘密",
    "prohibited": "违反法律法规",
    "party_internal": "党内事务",
    "party_org_internal": "党派团体内部事务",
    "in_litigation": "涉诉",
    "academic": "学术问题",
    "personal": "个人事务",
    "advertising": "宣传广告",
    "named_accusation": "指名控告",
    "no_concrete_suggestion": "无具体建议",
}
UNIT_ZH = {
    "urban_management": "市城管局",
    "transport": "市交通运输局",
    "traffic_police": "市公安局交警支队",
    "housing": "市住建局",
    "natural_resources": "市自然资源局",
    "education": "市教育局",
    "health": "市卫健委",
    "civil_affairs": "市民政局",
    "culture_tourism": "市文旅局",
    "water": "市水务局",
    "ecology_env": "市生态环境局",
    "market_regulation": "市市场监管局",
    "agriculture": "市农业农村局",
    "power_supply": "市供电局",
    "human_resources": "市人社局",
    "united_front": "市委统战部",
}
FORM_ZH = {
    "thematic_standing_meeting": "专题议政性常委会议",
    "thematic_consultation": "专题协商会",
    "bimonthly_forum": "双月协商座谈会",
    "chair_interview": "主席约谈会",
    "inspection_consultation": "视察协商",
    "counterpart_consultation": "对口协商",
    "sector_consultation": "界别协商",
    "proposal_handling_consultation": "提案办理协商",
    "online_consultation": "网络协商",
}
SATISFACTION = ("satisfied", "basically_satisfied", "unsatisfied")
SATISFACTION_ZH = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}
REPLIED_OR_LATER = {"replied", "rehandling", "awaiting_meeting", "closed"}
UNSTATED = "未注明"


@dataclass(frozen=True)
class Rate:
    """An exact ratio; ``percent`` rounds half up to one decimal, None when nothing to divide."""

    numerator: int
    denominator: int

    @property
    def fraction(self) -> Fraction | None:
        return Fraction(self.numerator, self.denominator) if self.denominator else None

    @property
    def percent(self) -> float | None:
        f = self.fraction
        if f is None:
            return None
        exact = Decimal(f.numerator * 100) / Decimal(f.denominator)
        return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))

    @property
    def text(self) -> str:
        p = self.percent
        return "—" if p is None else f"{p:.1f}%"

    def to_dict(self) -> dict[str, Any]:
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "percent": self.percent,
        }


@dataclass(frozen=True)
class Line:
    """One row of the printed report: section, item, count and (optionally) a rate."""

    section: str
    item: str
    count: int | None
    rate: Rate | None = None


@dataclass
class Report:
    """A report's figures: ``figures`` (counts, nested by dimension), ``rates`` and ``lines``."""

    kind: str
    title: str
    year: int
    org: str | None
    figures: dict[str, Any] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    # tables with one row per unit (or reporter): shown instead of their sections in a terminal,
    # and as extra sheets in a workbook
    wide: dict[str, tuple[list[str], list[list[Any]]]] = field(default_factory=dict)
    detail: set[str] = field(default_factory=set)

    def add(self, section: str, item: str, count: int | None, rate: Rate | None = None) -> None:
        self.lines.append(Line(section, item, count, rate))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "year": self.year,
            "org": self.org,
            "figures": self.figures,
            "rates": {k: v.to_dict() for k, v in self.rates.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True)

    def rows(self) -> list[list[Any]]:
        """The printed lines as ``[分组, 项目, 数量, 比例]``, the same in every format."""
        return [
            [
                ln.section,
                ln.item,
                "" if ln.count is None else ln.count,
                "" if ln.rate is None else ln.rate.text,
            ]
            for ln in self.lines
        ]

    HEADERS = ("分组", "项目", "数量", "比例")

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([self.title])
        writer.writerow(self.HEADERS)
        writer.writerows(self.rows())
        return buf.getvalue()

    def write_csv(self, path: Path) -> None:
        # UTF-8 with a byte-order mark: what spreadsheet programs need to read Chinese text
        path.write_text(self.to_csv(), encoding="utf-8-sig", newline="")

    def write_xlsx(self, path: Path) -> None:
        from openpyxl import Workbook  # type: ignore[import-untyped]
        from openpyxl.styles import Font  # type: ignore[import-untyped]

        wb = Workbook()
        ws = wb.active
        ws.title = self.title[:31]
        ws.append([self.title])
        ws["A1"].font = Font(bold=True, size=14)
        ws.append(list(self.HEADERS))
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for ln in self.lines:
            # rates as numbers with a percent format: the office can sum and chart them
            pct = None if ln.rate is None else ln.rate.percent
            ws.append(
                [
                    ln.section,
                    ln.item,
                    "" if ln.count is None else ln.count,
                    "—"
                    if ln.rate is not None and pct is None
                    else (None if pct is None else pct / 100),
                ]
            )
            if pct is not None:
                ws.cell(row=ws.max_row, column=4).number_format = "0.0%"
        for col, width in zip("ABCD", (18, 34, 10, 10), strict=True):
            ws.column_dimensions[col].width = width
        for name, (headers, rows) in self.wide.items():
            sheet = wb.create_sheet(name[:31])
            sheet.append(headers)
            for cell in sheet[1]:
                cell.font = Font(bold=True)
            for row in rows:
                sheet.append(row)
            sheet.column_dimensions["A"].width = 20
        wb.save(path)


# -- reading -------------------------------------------------------------------------------------


def _year_bounds(year: int) -> tuple[str, str]:
    from xieshang.shared import iso

    return iso(datetime(year, 1, 1, tzinfo=CN)), iso(datetime(year + 1, 1, 1, tzinfo=CN))


@dataclass
class _Row:
    id: str
    state: str
    data: dict[str, Any]
    overdue: bool
    unit: str | None
    parent_id: str | None


class _Reader:
    def __init__(self, source: Any) -> None:
        self.engine, self.owned = engine_for(source)

    def close(self) -> None:
        if self.owned:
            self.engine.dispose()

    @staticmethod
    def scope(workflow: str, year: int | None, org: str | None) -> sa.Select[Any]:
        """The ids of the instances of ``workflow`` created in ``year`` in ``org``."""
        q = sa.select(INSTANCES.c.id).where(INSTANCES.c.workflow == workflow)
        if year is not None:
            lo, hi = _year_bounds(year)
            q = q.where(INSTANCES.c.created_at >= lo, INSTANCES.c.created_at < hi)
        if org is not None:
            q = q.where(INSTANCES.c.org == org)
        return q

    @staticmethod
    def child_scope(workflow: str, parents: sa.Select[Any]) -> sa.Select[Any]:
        """The ids of the ``workflow`` children of the instances in ``parents``."""
        return sa.select(INSTANCES.c.id).where(
            INSTANCES.c.workflow == workflow, INSTANCES.c.parent_id.in_(parents)
        )

    def instances(self, scope: sa.Select[Any]) -> list[_Row]:
        q = (
            sa.select(
                INSTANCES.c.id,
                INSTANCES.c.state,
                INSTANCES.c.data,
                INSTANCES.c.overdue,
                INSTANCES.c.unit,
                INSTANCES.c.parent_id,
            )
            .where(INSTANCES.c.id.in_(scope))
            .order_by(INSTANCES.c.created_at, INSTANCES.c.id)
        )
        with self.engine.connect() as conn:
            return [
                _Row(r.id, r.state, json.loads(r.data), bool(r.overdue), r.unit, r.parent_id)
                for r in conn.execute(q)
            ]

    def triggered(self, scope: sa.Select[Any], triggers: set[str]) -> dict[str, Counter[str]]:
        """Per trigger, how many history rows each instance of ``scope`` has with it."""
        out: dict[str, Counter[str]] = {t: Counter() for t in triggers}
        q = (
            sa.select(HISTORY.c.instance_id, HISTORY.c.trigger, sa.func.count())
            .where(HISTORY.c.trigger.in_(sorted(triggers)), HISTORY.c.instance_id.in_(scope))
            .group_by(HISTORY.c.instance_id, HISTORY.c.trigger)
        )
        with self.engine.connect() as conn:
            for iid, trig, n in conn.execute(q):
                out[trig][iid] = n
        return out


def _new(kind: str, title: str, year: int, org: str | None) -> Report:
    return Report(kind=kind, title=f"{year}年{title}", year=year, org=org)


# -- the reports ---------------------------------------------------------------------------------


def review_report(
    source: Any, year: int, org: str | None = None, *, workflow: str = "proposal"
) -> Report:
    """提案审查情况: received, filed, not filed by ground, merged, converted, withdrawn."""
    reader = _Reader(source)
    try:
        scope = reader.scope(workflow, year, org)
        rows = reader.instances(scope)
        marks = reader.triggered(scope, {"submit", "file"})
    finally:
        reader.close()
    received = [r for r in rows if marks["submit"][r.id] or r.state not in ("draft", "cosigning")]
    filed = [r for r in received if marks["file"][r.id]]
    rep = _new("review", "提案审查情况统计", year, org)
    n = len(received)
    states = Counter(r.state for r in received)
    grounds = Counter(
        r.data.get("not_filed_ground") or UNSTATED for r in received if r.state == "not_filed"
    )
    withdrawn = sum(1 for r in received if r.state == "withdrawn")
    figures: dict[str, Any] = {
        "received": n,
        "filed": len(filed),
        "not_filed": states["not_filed"],
        "merged": states["merged"],
        "converted": states["converted"],
        "withdrawn": withdrawn,
        "pending": sum(
            1 for r in received if r.state in ("submitted", "under_review", "returned_for_revision")
        ),
        "not_filed_by_ground": dict(sorted(grounds.items())),
    }
    by_category: dict[str, dict[str, int]] = {}
    for r in received:
        cat = r.data.get("category") or UNSTATED
        entry = by_category.setdefault(cat, {"received": 0, "filed": 0})
        entry["received"] += 1
        entry["filed"] += 1 if marks["file"][r.id] else 0
    by_kind: dict[str, dict[str, int]] = {}
    for r in received:
        kind = r.data.get("proposer_kind") or UNSTATED
        entry = by_kind.setdefault(kind, {"received": 0, "filed": 0})
        entry["received"] += 1
        entry["filed"] += 1 if marks["file"][r.id] else 0
    figures["by_category"] = dict(sorted(by_category.items()))
    figures["by_proposer_kind"] = dict(sorted(by_kind.items()))
    rep.figures = figures
    rep.rates["filing_rate"] = Rate(len(filed), n)
    for key in ("merged", "converted", "not_filed", "withdrawn"):
        rep.rates[f"{key}_share"] = Rate(figures[key], n)

    rep.add("总体", "收到提案", n)
    rep.add("总体", "立案", len(filed), rep.rates["filing_rate"])
    rep.add("总体", "不予立案", figures["not_filed"], rep.rates["not_filed_share"])
    rep.add("总体", "并案", figures["merged"], rep.rates["merged_share"])
    rep.add("总体", "转意见建议", figures["converted"], rep.rates["converted_share"])
    rep.add("总体", "撤案", withdrawn, rep.rates["withdrawn_share"])
    rep.add("总体", "待审查", figures["pending"])
    for ground, count in figures["not_filed_by_ground"].items():
        rep.add(
            "不予立案理由", GROUND_ZH.get(ground, ground), count, Rate(count, figures["not_filed"])
        )
    for section, key, total in (
        ("按类别（收到）", "received", n),
        ("按类别（立案）", "filed", len(filed)),
    ):
        for cat, entry in figures["by_category"].items():
            rep.add(section, CATEGORY_ZH.get(cat, cat), entry[key], Rate(entry[key], total))
    for section, key, total in (
        ("按提案者（收到）", "received", n),
        ("按提案者（立案）", "filed", len(filed)),
    ):
        for kind, entry in figures["by_proposer_kind"].items():
            rep.add(section, KIND_ZH.get(kind, kind), entry[key], Rate(entry[key], total))
    return rep


def handling_report(
    source: Any,
    year: int,
    org: str | None = None,
    *,
    workflow: str = "proposal",
    unit_workflow: str = "proposal_handling",
) -> Report:
    """提案办理情况: answer classes, closure, reply, on-time and satisfaction rates, per unit."""
    reader = _Reader(source)
    try:
        scope = reader.scope(workflow, year, org)
        rows = reader.instances(scope)
        marks = reader.triggered(scope, {"file", "overdue"})
        filed = [r for r in rows if marks["file"][r.id]]
        filed_ids = {r.id for r in filed}
        kid_scope = reader.child_scope(unit_workflow, scope)
        kids = [k for k in reader.instances(kid_scope) if k.parent_id in filed_ids]
        kid_marks = reader.triggered(kid_scope, {"request_return", "overdue"})
    finally:
        reader.close()
    n = len(filed)
    classes = Counter(
        r.data.get("reply_class") if r.data.get("reply_class") in CLASSES else UNCLASSIFIED
        for r in filed
    )
    closed = sum(1 for r in filed if r.state == "closed")
    replied = [r for r in filed if r.state in REPLIED_OR_LATER]
    on_time = sum(
        1
        for r in replied
        if r.data.get("replied_on")
        and r.data.get("reply_due")
        and r.data["replied_on"] <= r.data["reply_due"]
    )
    sat = Counter(
        r.data.get("satisfaction") for r in filed if r.data.get("satisfaction") in SATISFACTION
    )
    evaluated = sum(sat.values())
    overdue = sum(1 for r in filed if r.overdue or marks["overdue"][r.id])
    key = sum(1 for r in filed if r.data.get("key_proposal"))
    rehandled = sum(1 for r in filed if (r.data.get("rehandle_count") or 0) > 0)

    def blank_unit() -> dict[str, Any]:
        return {
            "assigned": 0,
            "replies": 0,
            "late_replies": 0,
            "return_requests": 0,
            "released": 0,
            "countersigned": 0,
            "overdue": 0,
            "open": 0,
            "classes": {c: 0 for c in (*CLASSES, UNCLASSIFIED)},
            "evaluated": 0,
            "satisfied": 0,
        }

    units: dict[str, dict[str, Any]] = {}
    for k in kids:
        u = units.setdefault(k.unit or UNSTATED, blank_unit())
        u["assigned"] += 1
        u["return_requests"] += kid_marks["request_return"][k.id]
        u["overdue"] += 1 if (k.overdue or kid_marks["overdue"][k.id]) else 0
        if k.state == "replied":
            u["replies"] += 1
            cls = k.data.get("reply_class")
            u["classes"][cls if cls in CLASSES else UNCLASSIFIED] += 1
            due, on = k.data.get("due"), k.data.get("replied_on")
            if due and on and on > due:
                u["late_replies"] += 1
        elif k.state == "reassigned":
            u["released"] += 1
        elif k.state == "countersigned":
            u["countersigned"] += 1
        else:
            u["open"] += 1
    # the proposer's evaluation is the lead unit's, or each unit's own in split mode
    for r in filed:
        if r.data.get("mode") == "split":
            pairs = [
                (e.get("unit"), e.get("satisfaction")) for e in r.data.get("unit_evaluations") or []
            ]
        else:
            pairs = [(r.data.get("lead_unit"), r.data.get("satisfaction"))]
        for name, feeling in pairs:
            if name and feeling in SATISFACTION:
                u = units.setdefault(name, blank_unit())
                u["evaluated"] += 1
                u["satisfied"] += 1 if feeling != "unsatisfied" else 0

    rep = _new("handling", "提案办理情况统计", year, org)
    rep.figures = {
        "filed": n,
        "classes": {c: classes[c] for c in (*CLASSES, UNCLASSIFIED)},
        "replied": len(replied),
        "replied_on_time": on_time,
        "closed": closed,
        "evaluated": evaluated,
        "satisfaction": {s: sat[s] for s in SATISFACTION},
        "overdue": overdue,
        "key_proposals": key,
        "rehandled": rehandled,
        "units": dict(sorted(units.items())),
    }
    rep.rates = {
        "closure_rate": Rate(closed, n),
        "reply_rate": Rate(len(replied), n),
        "on_time_rate": Rate(on_time, len(replied)),
        "satisfaction_rate": Rate(sat["satisfied"] + sat["basically_satisfied"], evaluated),
        "adoption_rate": Rate(classes["A"], n),
        **{f"class_{c}_share": Rate(classes[c], n) for c in CLASSES},
        "unclassified_share": Rate(classes[UNCLASSIFIED], n),
    }
    rep.add("总体", "立案提案", n)
    rep.add("总体", "已答复", len(replied), rep.rates["reply_rate"])
    rep.add("总体", "按期答复", on_time, rep.rates["on_time_rate"])
    rep.add("总体", "已办结", closed, rep.rates["closure_rate"])
    rep.add("总体", "已评价", evaluated)
    rep.add(
        "总体",
        "满意+基本满意",
        sat["satisfied"] + sat["basically_satisfied"],
        rep.rates["satisfaction_rate"],
    )
    rep.add("总体", "逾期", overdue, Rate(overdue, n))
    rep.add("总体", "重新办理", rehandled, Rate(rehandled, n))
    rep.add("总体", "重点提案", key)
    for c in CLASSES:
        rep.add("答复类别", CLASS_ZH[c], classes[c], rep.rates[f"class_{c}_share"])
    rep.add("答复类别", UNCLASSIFIED, classes[UNCLASSIFIED], rep.rates["unclassified_share"])
    for s in SATISFACTION:
        rep.add("评价", SATISFACTION_ZH[s], sat[s], Rate(sat[s], evaluated))
    wide: list[list[Any]] = []
    for key_name, u in rep.figures["units"].items():
        name = UNIT_ZH.get(key_name, key_name)
        due_replies = u["assigned"] - u["released"] - u["countersigned"]
        wide.append(
            [
                name,
                u["assigned"],
                u["replies"],
                u["late_replies"],
                u["return_requests"],
                *(u["classes"][c] for c in (*CLASSES, UNCLASSIFIED)),
                Rate(u["satisfied"], u["evaluated"]).text,
            ]
        )
        rep.detail.add(name)
        rep.add(name, "交办件次", u["assigned"])
        rep.add(
            name,
            "答复",
            u["replies"],
            Rate(u["replies"], due_replies),
        )
        rep.add(name, "逾期答复", u["late_replies"], Rate(u["late_replies"], u["replies"]))
        rep.add(name, "申退", u["return_requests"])
        rep.add(name, "改办", u["released"])
        rep.add(name, "会签", u["countersigned"])
        for c in (*CLASSES, UNCLASSIFIED):
            rep.add(name, f"{c}类" if c in CLASSES else c, u["classes"][c])
        rep.add(name, "满意+基本满意", u["satisfied"], Rate(u["satisfied"], u["evaluated"]))
    headers = ["承办单位", "交办", "答复", "逾期", "申退", "A", "B", "C", UNCLASSIFIED, "满意率"]
    rep.wide["承办单位"] = (headers, wide)
    return rep


def plan_report(source: Any, year: int, org: str | None = None) -> Report:
    """年度协商计划执行情况: topics planned, held, closed, carried over, cancelled."""
    reader = _Reader(source)
    try:
        scope = reader.scope("consultation_topic", year, org)
        rows = reader.instances(scope)
        marks = reader.triggered(scope, {"hold_meeting", "approve"})
    finally:
        reader.close()
    # planned: started by the approved plan, or approved on its own
    topics = [t for t in rows if t.parent_id is not None or marks["approve"][t.id]]
    rep = _new("plan", "年度协商计划执行情况", year, org)
    n = len(topics)
    states = Counter(t.state for t in topics)
    held_ids = {t.id for t in topics if marks["hold_meeting"][t.id]}
    instructed = sum(1 for t in topics if t.data.get("instruction_leader"))
    blank = {"planned": 0, "held": 0, "closed": 0}
    by_cat: dict[str, dict[str, int]] = defaultdict(lambda: dict(blank))
    by_form: dict[str, dict[str, int]] = defaultdict(lambda: dict(blank))
    for t in topics:
        for table, keyname in ((by_cat, t.data.get("category")), (by_form, t.data.get("form"))):
            entry = table[keyname or UNSTATED]
            entry["planned"] += 1
            entry["held"] += 1 if t.id in held_ids else 0
            entry["closed"] += 1 if t.state == "closed" else 0
    rep.figures = {
        "planned": n,
        "held": len(held_ids),
        "closed": states["closed"],
        "carried_over": states["carried_over"],
        "cancelled": states["cancelled_by_revision"],
        "instructed": instructed,
        "by_state": dict(sorted(states.items())),
        "by_category": dict(sorted(by_cat.items())),
        "by_form": dict(sorted(by_form.items())),
    }
    rep.rates = {
        "held_rate": Rate(len(held_ids), n),
        "closure_rate": Rate(states["closed"], n),
    }
    rep.add("总体", "计划议题", n)
    rep.add("总体", "已开展协商", len(held_ids), rep.rates["held_rate"])
    rep.add("总体", "已办结", states["closed"], rep.rates["closure_rate"])
    rep.add("总体", "成果获领导批示", instructed)
    rep.add("总体", "转入下年度", states["carried_over"], Rate(states["carried_over"], n))
    rep.add(
        "总体",
        "计划调整取消",
        states["cancelled_by_revision"],
        Rate(states["cancelled_by_revision"], n),
    )
    for cat, e in rep.figures["by_category"].items():
        rep.add(
            "按类别（计划/开展率）",
            CATEGORY_ZH.get(cat, cat),
            e["planned"],
            Rate(e["held"], e["planned"]),
        )
    for form, e in rep.figures["by_form"].items():
        rep.add(
            "按协商形式（计划/开展率）",
            FORM_ZH.get(form, form),
            e["planned"],
            Rate(e["held"], e["planned"]),
        )
    return rep


def opinions_report(source: Any, year: int, org: str | None = None) -> Report:
    """社情民意信息: submitted, adopted, instructed, closed; per reporter."""
    reader = _Reader(source)
    try:
        items = reader.instances(reader.scope("opinion_report", year, org))
    finally:
        reader.close()
    rep = _new("opinions", "社情民意信息工作统计", year, org)
    submitted = [i for i in items if i.state != "draft"]
    adopted = {i.id for i in submitted if i.state not in ("submitted", "not_adopted")}
    instructed = sum(1 for i in submitted if i.data.get("instructed"))
    closed = sum(1 for i in submitted if i.state == "closed")
    per: dict[str, dict[str, int]] = defaultdict(
        lambda: {"submitted": 0, "adopted": 0, "instructed": 0}
    )
    for i in submitted:
        who = str(i.data.get("reporter") or UNSTATED)
        per[who]["submitted"] += 1
        per[who]["adopted"] += 1 if i.id in adopted else 0
        per[who]["instructed"] += 1 if i.data.get("instructed") else 0
    rep.figures = {
        "submitted": len(submitted),
        "adopted": len(adopted),
        "not_adopted": sum(1 for i in submitted if i.state == "not_adopted"),
        "instructed": instructed,
        "closed": closed,
        "by_state": dict(sorted(Counter(i.state for i in items).items())),
        "per_reporter": dict(sorted(per.items())),
    }
    rep.rates = {
        "adoption_rate": Rate(len(adopted), len(submitted)),
        "instruction_rate": Rate(instructed, len(adopted)),
    }
    rep.add("总体", "报送", len(submitted))
    rep.add("总体", "采用", len(adopted), rep.rates["adoption_rate"])
    rep.add("总体", "未采用", rep.figures["not_adopted"])
    rep.add("总体", "获领导批示", instructed, rep.rates["instruction_rate"])
    rep.add("总体", "办结", closed)
    for who, e in rep.figures["per_reporter"].items():
        rep.add("按报送人（报送/采用率）", who, e["submitted"], Rate(e["adopted"], e["submitted"]))
    return rep


KINDS = {
    "review": review_report,
    "handling": handling_report,
    "plan": plan_report,
    "opinions": opinions_report,
}


def report(kind: str, source: Any, year: int, org: str | None = None) -> Report:
    """The report ``kind`` (one of :data:`KINDS`)."""
    try:
        fn = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown report {kind!r}; one of {', '.join(KINDS)}") from None
    return fn(source, year, org)


def render_table(rep: Report) -> Any:
    """The report for a terminal: its lines, then one wide table per :attr:`Report.wide`."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    title = rep.title + (f"（{rep.org}）" if rep.org else "")
    table = Table(title=title, show_lines=False)
    for h, justify in zip(Report.HEADERS, ("left", "left", "right", "right"), strict=True):
        table.add_column(h, justify=justify)  # type: ignore[arg-type]
    last = None
    for row in rep.rows():
        if row[0] in rep.detail:
            continue
        section = row[0] if row[0] != last else ""
        last = row[0]
        table.add_row(section, row[1], str(row[2]), row[3])
    parts: list[Any] = [table]
    for name, (headers, rows) in rep.wide.items():
        wide = Table(title=f"{rep.title}：{name}", box=box.SIMPLE_HEAD, padding=(0, 1))
        for i, h in enumerate(headers):
            wide.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
        for r in rows:
            wide.add_row(*(str(v) for v in r))
        parts.append(wide)
    return Group(*parts)


# -- the command ---------------------------------------------------------------------------------


def register_cli(app: typer.Typer) -> None:
    """Add ``xieshang report KIND --year Y [--org O] [--format ...] [-o FILE]``."""

    @app.command("report")
    def report_command(
        ctx: typer.Context,
        kind: Annotated[str, typer.Argument(help="review | handling | plan | opinions")],
        year: Annotated[int, typer.Option("--year", help="The year (by creation date, UTC+8).")],
        org: Annotated[str | None, typer.Option("--org", help="Only this organisation.")] = None,
        fmt: Annotated[str, typer.Option("--format", help="table | json | csv | xlsx")] = "table",
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help="Write to this file.")
        ] = None,
        db: Annotated[str | None, typer.Option("--db", help="Database URL or SQLite path.")] = None,
    ) -> None:
        """The year's figures: proposal review, handling, plan execution, opinion reports."""
        err = Console(stderr=True)
        if kind not in KINDS:
            err.print(f"unknown report {kind!r}; one of {', '.join(KINDS)}")
            raise typer.Exit(2)
        if fmt not in ("table", "json", "csv", "xlsx"):
            err.print(f"unknown format {fmt!r}; one of table, json, csv, xlsx")
            raise typer.Exit(2)
        url = command_database_url(ctx, db)
        rep = report(kind, url, year, org)
        if fmt == "xlsx":
            if output is None:
                err.print("--format xlsx needs -o FILE")
                raise typer.Exit(2)
            rep.write_xlsx(output)
            return
        if fmt == "csv":
            if output is not None:
                rep.write_csv(output)
            else:
                typer.echo(rep.to_csv(), nl=False)
            return
        if fmt == "json":
            if output is not None:
                output.write_text(rep.to_json() + "\n", encoding="utf-8")
            else:
                typer.echo(rep.to_json())
            return
        console = Console(record=output is not None)
        console.print(render_table(rep))
        if output is not None:
            output.write_text(console.export_text(), encoding="utf-8")
