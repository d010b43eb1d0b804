"""重点提案: the year's key proposals, from candidates to supervision and its outcome.

The selection's figures come from ``key_proposal_selection`` (its candidates and the list the
chairpersons' council approved), the supervision's from its ``key_proposal_supervision``
children (leader, committee, due date, progress reports, overdue marks, outcome), and the share
of filed proposals and the outcomes written back from the year's proposals.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .labels import UNSTATED
from .model import Rate, Report
from .reading import Reader, Row, new_report

__all__ = ["key_proposals_report"]

OUTCOMES = ("implemented", "partly_implemented", "not_implemented")
OUTCOME_ZH = {
    "implemented": "已落实",
    "partly_implemented": "部分落实",
    "not_implemented": "未落实",
}
STATE_ZH = {"supervising": "督办中", "done": "已办结"}
# the selection's list counts once the chairpersons' council approved it
_APPROVED = {"approved", "supervising", "done"}
_HEADERS = [
    "提案编号",
    "案由",
    "领办领导",
    "督办专委会",
    "办结期限",
    "进展报告",
    "状态",
    "督办结果",
]


def key_proposals_report(source: Any, year: int, org: str | None = None) -> Report:
    """重点提案遴选与督办: candidates, key proposals, supervision, outcomes, per leader."""
    reader = Reader(source)
    try:
        scope = reader.scope("key_proposal_selection", year, org)
        selections = reader.instances(scope)
        kid_scope = reader.child_scope("key_proposal_supervision", scope)
        supervisions = reader.instances(kid_scope)
        marks = reader.triggered(kid_scope, {"report_progress", "overdue"})
        proposal_scope = reader.scope("proposal", year, org)
        proposals = reader.instances(proposal_scope)
        filed = reader.triggered(proposal_scope, {"file"})["file"]
    finally:
        reader.close()
    rep = new_report("key_proposals", "重点提案遴选与督办情况", year, org)
    by_id = {p.id: p for p in proposals}
    rep.figures = _figures(selections, supervisions, marks)
    rep.figures["filed"] = sum(1 for p in proposals if filed[p.id])
    rep.figures["flagged"] = sum(1 for p in proposals if p.data.get("key_proposal"))
    rep.figures["written_back"] = sum(1 for p in proposals if p.data.get("key_outcome"))
    f = rep.figures
    rep.rates = {
        "key_share": Rate(f["approved"], f["filed"]),
        "selection_rate": Rate(f["approved"], f["candidates"]),
        "conclusion_rate": Rate(f["concluded"], f["supervised"]),
        "on_time_rate": Rate(f["concluded_on_time"], f["concluded"]),
        "implementation_rate": Rate(f["outcomes"]["implemented"], f["concluded"]),
    }
    _add_lines(rep)
    rep.wide["重点提案"] = (_HEADERS, [_wide_row(s, by_id, marks) for s in supervisions])
    rep.row_ids["重点提案"] = [
        (s.id, *([str(s.data["proposal_id"])] if str(s.data.get("proposal_id")) in by_id else []))
        for s in supervisions
    ]
    return rep


def _figures(
    selections: list[Row], supervisions: list[Row], marks: dict[str, Counter[str]]
) -> dict[str, Any]:
    outcomes = Counter(s.data.get("outcome") for s in supervisions if s.state == "done")
    per: dict[str, dict[str, dict[str, int]]] = {"by_leader": {}, "by_committee": {}}
    for s in supervisions:
        for table, name in (
            ("by_leader", s.data.get("lead_leader")),
            ("by_committee", s.data.get("supervising_committee")),
        ):
            entry = per[table].setdefault(
                str(name or UNSTATED), {"supervised": 0, "concluded": 0, "implemented": 0}
            )
            entry["supervised"] += 1
            entry["concluded"] += 1 if s.state == "done" else 0
            entry["implemented"] += 1 if s.data.get("outcome") == "implemented" else 0
    return {
        "selections": len(selections),
        "candidates": sum(len(s.data.get("candidates") or []) for s in selections),
        "approved": sum(
            len(s.data.get("selected") or []) for s in selections if s.state in _APPROVED
        ),
        "supervised": len(supervisions),
        "concluded": sum(1 for s in supervisions if s.state == "done"),
        "open": sum(1 for s in supervisions if s.state != "done"),
        "overdue": sum(1 for s in supervisions if s.overdue or marks["overdue"][s.id]),
        "concluded_on_time": sum(
            1
            for s in supervisions
            if s.state == "done"
            and s.data.get("concluded_on")
            and s.data["concluded_on"] <= s.data["due"]
        ),
        "progress_reports": sum(marks["report_progress"][s.id] for s in supervisions),
        "outcomes": {o: outcomes[o] for o in OUTCOMES},
        "by_leader": dict(sorted(per["by_leader"].items())),
        "by_committee": dict(sorted(per["by_committee"].items())),
    }


def _add_lines(rep: Report) -> None:
    f, rates = rep.figures, rep.rates
    rep.add("总体", "立案提案", f["filed"])
    rep.add("总体", "候选提案", f["candidates"])
    rep.add("总体", "确定重点提案（占立案数）", f["approved"], rates["key_share"])
    rep.add("总体", "已标记重点提案", f["flagged"])
    rep.add("督办", "督办件数", f["supervised"])
    rep.add("督办", "已办结", f["concluded"], rates["conclusion_rate"])
    rep.add("督办", "按期办结", f["concluded_on_time"], rates["on_time_rate"])
    rep.add("督办", "督办中", f["open"])
    rep.add("督办", "逾期", f["overdue"], Rate(f["overdue"], f["supervised"]))
    rep.add("督办", "进展报告（次）", f["progress_reports"])
    rep.add("督办", "结果已回写提案", f["written_back"], Rate(f["written_back"], f["concluded"]))
    for o in OUTCOMES:
        rep.add("督办结果", OUTCOME_ZH[o], f["outcomes"][o], Rate(f["outcomes"][o], f["concluded"]))
    for section, key in (
        ("按领办领导（督办/落实率）", "by_leader"),
        ("按督办专委会", "by_committee"),
    ):
        for name, e in f[key].items():
            rep.add(section, name, e["supervised"], Rate(e["implemented"], e["supervised"]))


def _wide_row(s: Row, proposals: dict[str, Row], marks: dict[str, Counter[str]]) -> list[Any]:
    proposal = proposals.get(str(s.data.get("proposal_id")))
    data = proposal.data if proposal is not None else {}
    outcome = s.data.get("outcome")
    return [
        data.get("number") or UNSTATED,
        data.get("title") or s.data.get("proposal_id"),
        s.data.get("lead_leader"),
        s.data.get("supervising_committee"),
        s.data.get("due"),
        marks["report_progress"][s.id],
        STATE_ZH.get(s.state, s.state)
        + ("（逾期）" if s.overdue or marks["overdue"][s.id] else ""),
        OUTCOME_ZH.get(outcome, "") if outcome else "",
    ]
