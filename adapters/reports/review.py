"""提案审查情况: the review of the year's proposals.

A proposal converted into an opinion report (转社情民意) was not filed: it counts under 不予立案
(and its ground) and again as converted. The channel a proposal came in by gives the online share.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .labels import CATEGORY_ZH, CHANNEL_ZH, GROUND_ZH, KIND_ZH, ONLINE, UNSTATED
from .model import Rate, Report
from .reading import Reader, Row, new_report

__all__ = ["review_report"]


def review_report(
    source: Any, year: int, org: str | None = None, *, workflow: str = "proposal"
) -> Report:
    """提案审查情况: received, filed, not filed by ground (of which converted), merged,
    withdrawn; by category, kind of proposer and channel."""
    reader = Reader(source)
    try:
        scope = reader.scope(workflow, year, org)
        rows = reader.instances(scope)
        marks = reader.triggered(scope, {"submit", "file"})
    finally:
        reader.close()
    received = [r for r in rows if marks["submit"][r.id] or r.state not in ("draft", "cosigning")]
    filed = [r for r in received if marks["file"][r.id]]
    rep = new_report("review", "提案审查情况统计", year, org)
    n = len(received)
    states = Counter(r.state for r in received)
    not_filed = [r for r in received if r.state in ("not_filed", "converted")]
    grounds = Counter(r.data.get("not_filed_ground") or UNSTATED for r in not_filed)
    converted = Counter(
        r.data.get("not_filed_ground") or UNSTATED for r in not_filed if r.state == "converted"
    )
    withdrawn = sum(1 for r in received if r.state == "withdrawn")
    filed_ids = {r.id for r in filed}
    by_channel = _received_and_filed(received, filed_ids, "channel")
    figures: dict[str, Any] = {
        "received": n,
        "filed": len(filed),
        "not_filed": len(not_filed),
        "merged": states["merged"],
        "converted": states["converted"],
        "withdrawn": withdrawn,
        "pending": sum(
            1 for r in received if r.state in ("submitted", "under_review", "returned_for_revision")
        ),
        "not_filed_by_ground": dict(sorted(grounds.items())),
        "converted_by_ground": dict(sorted(converted.items())),
        "online": by_channel.get(ONLINE, {}).get("received", 0),
    }
    figures["by_category"] = _received_and_filed(received, filed_ids, "category")
    figures["by_proposer_kind"] = _received_and_filed(received, filed_ids, "proposer_kind")
    figures["by_channel"] = by_channel
    rep.figures = figures
    rep.rates["filing_rate"] = Rate(len(filed), n)
    for key in ("merged", "converted", "not_filed", "withdrawn", "online"):
        rep.rates[f"{key}_share"] = Rate(figures[key], n)

    rep.add("总体", "收到提案", n)
    rep.add("总体", "立案", len(filed), rep.rates["filing_rate"])
    rep.add("总体", "不予立案", figures["not_filed"], rep.rates["not_filed_share"])
    rep.add("总体", "其中转社情民意", figures["converted"], rep.rates["converted_share"])
    rep.add("总体", "并案", figures["merged"], rep.rates["merged_share"])
    rep.add("总体", "撤案", withdrawn, rep.rates["withdrawn_share"])
    rep.add("总体", "待审查", figures["pending"])
    rep.add("总体", "网上提交", figures["online"], rep.rates["online_share"])
    for ground, count in figures["not_filed_by_ground"].items():
        name = GROUND_ZH.get(ground, ground)
        rep.add("不予立案理由", name, count, Rate(count, figures["not_filed"]))
    for ground, count in figures["converted_by_ground"].items():
        name = GROUND_ZH.get(ground, ground)
        rep.add("转社情民意（按不予立案理由）", name, count, Rate(count, grounds[ground]))
    for prefix, dimension, names in (
        ("按类别", "by_category", CATEGORY_ZH),
        ("按提案者", "by_proposer_kind", KIND_ZH),
        ("按提交渠道", "by_channel", CHANNEL_ZH),
    ):
        for suffix, key, total in (("收到", "received", n), ("立案", "filed", len(filed))):
            for value, entry in figures[dimension].items():
                rep.add(
                    f"{prefix}（{suffix}）",
                    names.get(value, value),
                    entry[key],
                    Rate(entry[key], total),
                )
    return rep


def _received_and_filed(
    received: list[Row], filed_ids: set[str], field: str
) -> dict[str, dict[str, int]]:
    """Per value of ``data[field]``, how many proposals were received and filed, by value."""
    out: dict[str, dict[str, int]] = {}
    for r in received:
        entry = out.setdefault(r.data.get(field) or UNSTATED, {"received": 0, "filed": 0})
        entry["received"] += 1
        entry["filed"] += 1 if r.id in filed_ids else 0
    return dict(sorted(out.items()))
