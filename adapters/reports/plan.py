"""年度协商计划执行情况: how the year's consultation plan was carried out."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .labels import CATEGORY_ZH, FORM_ZH, UNSTATED
from .model import Rate, Report
from .reading import Reader, new_report

__all__ = ["plan_report"]


def plan_report(source: Any, year: int, org: str | None = None) -> Report:
    """年度协商计划执行情况: topics planned, held, closed, carried over, cancelled."""
    reader = Reader(source)
    try:
        scope = reader.scope("consultation_topic", year, org)
        rows = reader.instances(scope)
        marks = reader.triggered(scope, {"hold_meeting", "approve"})
    finally:
        reader.close()
    # planned: started by the approved plan, or approved on its own
    topics = [t for t in rows if t.parent_id is not None or marks["approve"][t.id]]
    rep = new_report("plan", "年度协商计划执行情况", year, org)
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
    for section, key, names in (
        ("按类别（计划/开展率）", "by_category", CATEGORY_ZH),
        ("按协商形式（计划/开展率）", "by_form", FORM_ZH),
    ):
        for value, e in rep.figures[key].items():
            rep.add(section, names.get(value, value), e["planned"], Rate(e["held"], e["planned"]))
    return rep
