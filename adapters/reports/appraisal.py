"""民主评议: the year's appraisal targets, their vote, rank and rectification rounds.

The vote is the last count recorded (a count taken again replaces it); the satisfaction rate is
satisfied / returned ballots, as the appraisal workflow records it. Targets are ranked by that
rate, highest first; equal rates share a rank (1, 2, 2, 4), as the appraisal rules allow ties
in the top three and the bottom three. A rectification round is each time the unit was sent to
rectify: its plan, then each follow-up that sent it back.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Any

from .model import Rate, Report
from .reading import Reader, Row, new_report

__all__ = ["appraisal_report"]

BALLOTS = ("members_total", "present", "ballots_issued", "ballots_returned")
VOTES = ("vote_satisfied", "vote_unsatisfied", "vote_unknown", "vote_blank")
VOTE_ZH = {
    "vote_satisfied": "满意",
    "vote_unsatisfied": "不满意",
    "vote_unknown": "不了解",
    "vote_blank": "弃权（空白）",
}
STATE_ZH = {
    "target_proposed": "拟定评议对象",
    "party_consent": "报党委同意",
    "rejected": "未获同意",
    "planning": "制定方案",
    "investigating": "调研测评",
    "voting": "集中评议",
    "feedback_issued": "已反馈评议意见",
    "rectifying": "整改中",
    "follow_up": "回头看",
    "closed": "评议结束",
}
_HEADERS = [
    "评议对象",
    "应到",
    "实到",
    "发出",
    "收回",
    "满意",
    "不满意",
    "不了解",
    "弃权",
    "满意率",
    "排名",
    "整改轮次",
    "状态",
]
_TRIGGERS = {"record_ballots", "submit_rectification_plan", "rectify_again", "overdue"}


def appraisal_report(source: Any, year: int, org: str | None = None) -> Report:
    """民主评议: targets, attendance, ballots, votes, satisfaction rank, rectification rounds."""
    reader = Reader(source)
    try:
        scope = reader.scope("democratic_appraisal", year, org)
        rows = reader.instances(scope)
        marks = reader.triggered(scope, _TRIGGERS)
    finally:
        reader.close()
    rep = new_report("appraisal", "民主评议情况", year, org)
    targets = [_target(r, marks) for r in rows]
    _rank(targets)
    voted = [t for t in targets if t["ballots_returned"]]
    totals = {k: sum(t[k] for t in voted) for k in (*BALLOTS, *VOTES)}
    rep.figures = {
        "targets": len(targets),
        "rejected": sum(1 for r in rows if r.state == "rejected"),
        "voted": len(voted),
        "closed": sum(1 for r in rows if r.state == "closed"),
        "by_state": dict(sorted(Counter(r.state for r in rows).items())),
        **totals,
        "recounts": sum(t["recounts"] for t in targets),
        "rectification_rounds": sum(t["rectification_rounds"] for t in targets),
        "rectified_again": sum(1 for t in targets if t["rectification_rounds"] > 1),
        "rectification_overdue": sum(1 for t in targets if t["overdue"]),
        "top": [t["target"] for t in voted if t["rank"] <= 3],
        "bottom": [t["target"] for t in voted if t["rank_from_bottom"] <= 3],
        "per_target": targets,
    }
    rep.figure_ids = {
        "per_target": [(t["id"],) for t in targets],
        "top": [(t["id"],) for t in voted if t["rank"] <= 3],
        "bottom": [(t["id"],) for t in voted if t["rank_from_bottom"] <= 3],
    }
    rep.rates = {
        "attendance_rate": Rate(totals["present"], totals["members_total"]),
        "return_rate": Rate(totals["ballots_returned"], totals["ballots_issued"]),
        "satisfaction_rate": Rate(totals["vote_satisfied"], totals["ballots_returned"]),
    }
    _add_lines(rep, voted)
    rep.wide["评议对象"] = (_HEADERS, [_wide_row(t) for t in targets])
    rep.row_ids["评议对象"] = [(t["id"],) for t in targets]
    return rep


def _target(r: Row, marks: dict[str, Counter[str]]) -> dict[str, Any]:
    d = r.data
    counts = {k: int(d.get(k) or 0) for k in (*BALLOTS, *VOTES)}
    return {
        "id": r.id,
        "target": d.get("target"),
        "target_kind": d.get("target_kind"),
        "state": r.state,
        **counts,
        "satisfaction": Rate(counts["vote_satisfied"], counts["ballots_returned"]).to_dict(),
        "rank": None,
        "rank_from_bottom": None,
        "recounts": max(0, marks["record_ballots"][r.id] - 1),
        "rectification_rounds": marks["submit_rectification_plan"][r.id]
        + marks["rectify_again"][r.id],
        "overdue": bool(r.overdue or marks["overdue"][r.id]),
    }


def _rank(targets: list[dict[str, Any]]) -> None:
    """Competition ranks by satisfaction (1, 2, 2, 4), from the top and from the bottom."""
    rates = {
        t["id"]: Fraction(t["vote_satisfied"], t["ballots_returned"])
        for t in targets
        if t["ballots_returned"]
    }
    for t in targets:
        mine = rates.get(t["id"])
        if mine is None:
            continue
        t["rank"] = 1 + sum(1 for other in rates.values() if other > mine)
        t["rank_from_bottom"] = 1 + sum(1 for other in rates.values() if other < mine)
    targets.sort(key=lambda t: (t["rank"] is None, t["rank"] or 0, str(t["target"])))


def _add_lines(rep: Report, voted: list[dict[str, Any]]) -> None:
    f, rates = rep.figures, rep.rates
    rep.add("总体", "评议对象", f["targets"])
    rep.add("总体", "未获党委同意", f["rejected"])
    rep.add("总体", "已测评", f["voted"], Rate(f["voted"], f["targets"]))
    rep.add("总体", "评议结束", f["closed"], Rate(f["closed"], f["targets"]))
    rep.add("测评", "应到委员", f["members_total"])
    rep.add("测评", "实到委员", f["present"], rates["attendance_rate"])
    rep.add("测评", "发出票", f["ballots_issued"])
    rep.add("测评", "收回票", f["ballots_returned"], rates["return_rate"])
    for k in VOTES:
        rep.add("测评", VOTE_ZH[k], f[k], Rate(f[k], f["ballots_returned"]))
    rep.add("测评", "重新计票", f["recounts"])
    rep.add("整改", "整改轮次（合计）", f["rectification_rounds"])
    rep.add("整改", "回头看后再次整改的对象", f["rectified_again"])
    rep.add("整改", "整改逾期的对象", f["rectification_overdue"])
    for t in voted:
        rep.line_ids[len(rep.lines)] = (t["id"],)
        rep.add(
            "满意率排名",
            f"第{t['rank']}名 {t['target']}",
            t["vote_satisfied"],
            Rate(t["vote_satisfied"], t["ballots_returned"]),
        )


def _wide_row(t: dict[str, Any]) -> list[Any]:
    rate = Rate(t["vote_satisfied"], t["ballots_returned"])
    return [
        t["target"],
        *(t[k] for k in BALLOTS),
        *(t[k] for k in VOTES),
        rate.text,
        "" if t["rank"] is None else t["rank"],
        t["rectification_rounds"],
        STATE_ZH.get(t["state"], t["state"]),
    ]
