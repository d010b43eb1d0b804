"""社情民意信息: the opinion reports submitted and adopted, per reporter."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .labels import UNSTATED
from .model import Rate, Report
from .reading import Reader, new_report

__all__ = ["opinions_report"]


def opinions_report(source: Any, year: int, org: str | None = None) -> Report:
    """社情民意信息: submitted, adopted, instructed, closed; per reporter."""
    reader = Reader(source)
    try:
        items = reader.instances(reader.scope("opinion_report", year, org))
    finally:
        reader.close()
    rep = new_report("opinions", "社情民意信息工作统计", year, org)
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
