"""网络协商: the year's topics posted online, the comments they drew and what became of them.

Comments, participants and suggestions are the counts each topic keeps in its data; posted,
submitted, instructed and fed back are counted from the history, so a topic counts for every
step it took whatever state it is in now.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .labels import CATEGORY_ZH, UNSTATED
from .model import Rate, Report
from .reading import Reader, Row, new_report

__all__ = ["online_report"]

CHANNEL_ZH = {
    "portal": "门户网站",
    "app": "移动履职平台",
    "wechat_group": "微信群",
    "qq_group": "QQ群",
    "live_broadcast": "网络直播",
}
STATE_ZH = {
    "draft": "草拟",
    "open": "征求意见中",
    "closed_for_comments": "征求意见结束",
    "summarised": "已综述",
    "submitted": "已报送",
    "instructed": "已获批示",
    "feedback_given": "已反馈",
    "closed": "已办结",
}
_STEPS = {
    "open": "posted",
    "submit": "submitted",
    "record_instruction": "instructed",
    "feed_back": "fed_back",
    "close_without_comments": "closed_without_comments",
}
_HEADERS = ["议题", "平台", "开始", "截止", "意见", "参与人", "建议", "状态"]


def online_report(source: Any, year: int, org: str | None = None) -> Report:
    """网络协商: topics posted, comments, participants, suggestions, submitted, instructed."""
    reader = Reader(source)
    try:
        scope = reader.scope("online_consultation", year, org)
        rows = reader.instances(scope)
        marks = reader.triggered(scope, set(_STEPS))
    finally:
        reader.close()
    rep = new_report("online", "网络协商情况", year, org)
    steps = {name: sum(1 for r in rows if marks[t][r.id]) for t, name in _STEPS.items()}
    blank = {"posted": 0, "comments": 0, "suggestions": 0}
    by_channel: dict[str, dict[str, int]] = defaultdict(lambda: dict(blank))
    by_category: dict[str, dict[str, int]] = defaultdict(lambda: dict(blank))
    for r in rows:
        if not marks["open"][r.id]:
            continue
        for table, name in (
            (by_channel, r.data.get("channel")),
            (by_category, r.data.get("category")),
        ):
            entry = table[str(name or UNSTATED)]
            entry["posted"] += 1
            entry["comments"] += _count(r, "comment_count")
            entry["suggestions"] += _count(r, "suggestion_count")
    rep.figures = {
        "topics": len(rows),
        **steps,
        "closed": sum(1 for r in rows if r.state == "closed"),
        "comments": sum(_count(r, "comment_count") for r in rows),
        "participants": sum(_count(r, "participant_count") for r in rows),
        "suggestions": sum(_count(r, "suggestion_count") for r in rows),
        "by_state": dict(sorted(Counter(r.state for r in rows).items())),
        "by_channel": dict(sorted(by_channel.items())),
        "by_category": dict(sorted(by_category.items())),
    }
    f = rep.figures
    rep.rates = {
        "submission_rate": Rate(f["submitted"], f["posted"]),
        "instruction_rate": Rate(f["instructed"], f["submitted"]),
        "feedback_rate": Rate(f["fed_back"], f["submitted"]),
        "suggestion_share": Rate(f["suggestions"], f["comments"]),
    }
    _add_lines(rep)
    shown = [r for r in rows if marks["open"][r.id]]
    rep.wide["网络协商议题"] = (_HEADERS, [_wide_row(r) for r in shown])
    rep.row_ids["网络协商议题"] = [(r.id,) for r in shown]
    return rep


def _count(r: Row, name: str) -> int:
    return int(r.data.get(name) or 0)


def _add_lines(rep: Report) -> None:
    f, rates = rep.figures, rep.rates
    rep.add("总体", "网络协商议题", f["topics"])
    rep.add("总体", "已发布征求意见", f["posted"], Rate(f["posted"], f["topics"]))
    rep.add("总体", "无人参与办结", f["closed_without_comments"])
    rep.add("总体", "报送党政", f["submitted"], rates["submission_rate"])
    rep.add("总体", "获领导批示", f["instructed"], rates["instruction_rate"])
    rep.add("总体", "向参与者反馈", f["fed_back"], rates["feedback_rate"])
    rep.add("总体", "已办结", f["closed"], Rate(f["closed"], f["topics"]))
    rep.add("参与", "意见（条）", f["comments"])
    rep.add("参与", "参与人次", f["participants"])
    rep.add("参与", "归纳建议（条）", f["suggestions"], rates["suggestion_share"])
    for section, key, names in (
        ("按平台（议题/建议占意见）", "by_channel", CHANNEL_ZH),
        ("按类别（议题/建议占意见）", "by_category", CATEGORY_ZH),
    ):
        for name, e in f[key].items():
            rep.add(
                section, names.get(name, name), e["posted"], Rate(e["suggestions"], e["comments"])
            )


def _wide_row(r: Row) -> list[Any]:
    d = r.data
    return [
        d.get("title"),
        CHANNEL_ZH.get(str(d.get("channel")), d.get("channel")),
        d.get("opened_on") or "",
        d.get("closes_on") or "",
        _count(r, "comment_count"),
        _count(r, "participant_count"),
        _count(r, "suggestion_count"),
        STATE_ZH.get(r.state, r.state),
    ]
