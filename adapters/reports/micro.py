"""小微协商: the year's grassroots consultations, step by step, and where the escalated went.

The steps reached are counted from the history (confirmed, consulted, agreed), the outcome from
the state (evaluated, escalated, dropped), the tasks from the agreed items' data, and what an
escalation became from the proposal or opinion report it started as a child.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .labels import SATISFACTION, SATISFACTION_ZH, UNSTATED
from .model import Rate, Report
from .reading import Reader, new_report

__all__ = ["micro_report"]

CHANNEL_ZH = {
    "reception": "接待日",
    "visit": "走访",
    "online": "网上",
    "survey": "问卷调查",
    "mailbox": "意见箱",
    "other": "其他",
}
ESCALATED_ZH = {"proposal": "转为提案", "opinion_report": "转为社情民意信息"}
_STEPS = {"confirm_topic": "topic_confirmed", "consult": "consulted", "agree": "agreed"}
_FINAL = {"evaluated", "escalated", "dropped"}
# an opinion report counts as adopted once the office adopted it, whatever came after
_NOT_ADOPTED = {"draft", "submitted", "not_adopted"}


def micro_report(source: Any, year: int, org: str | None = None) -> Report:
    """小微协商: collected, confirmed, consulted, agreed, evaluated, escalated, dropped."""
    reader = Reader(source)
    try:
        scope = reader.scope("micro_consultation", year, org)
        rows = reader.instances(scope)
        marks = reader.triggered(scope, {*_STEPS, "report_progress"})
        proposal_scope = reader.child_scope("proposal", scope)
        proposals = reader.instances(proposal_scope)
        filed = reader.triggered(proposal_scope, {"file"})["file"]
        opinions = reader.instances(reader.child_scope("opinion_report", scope))
    finally:
        reader.close()
    rep = new_report("micro", "小微协商情况", year, org)
    states = Counter(r.state for r in rows)
    evaluation = Counter(r.data.get("evaluation") for r in rows if r.state == "evaluated")
    blank = {"collected": 0, "evaluated": 0, "escalated": 0}
    by_channel: dict[str, dict[str, int]] = defaultdict(lambda: dict(blank))
    by_community: dict[str, dict[str, int]] = defaultdict(lambda: dict(blank))
    for r in rows:
        for table, name in (
            (by_channel, r.data.get("channel")),
            (by_community, r.data.get("community")),
        ):
            entry = table[str(name or UNSTATED)]
            entry["collected"] += 1
            entry["evaluated"] += 1 if r.state == "evaluated" else 0
            entry["escalated"] += 1 if r.state == "escalated" else 0
    rep.figures = {
        "collected": len(rows),
        **{name: sum(1 for r in rows if marks[t][r.id]) for t, name in _STEPS.items()},
        "evaluated": states["evaluated"],
        "escalated": states["escalated"],
        "dropped": states["dropped"],
        "open": sum(n for s, n in states.items() if s not in _FINAL),
        "by_state": dict(sorted(states.items())),
        "escalated_to": {
            k: sum(1 for r in rows if r.data.get("escalated_to") == k) for k in ESCALATED_ZH
        },
        "escalated_proposals_filed": sum(1 for p in proposals if filed[p.id]),
        "escalated_opinions_adopted": sum(1 for o in opinions if o.state not in _NOT_ADOPTED),
        "participants": sum(len(r.data.get("participants") or []) for r in rows),
        "tasks": sum(len(r.data.get("tasks") or []) for r in rows),
        "tasks_done": sum(len(r.data.get("done_tasks") or []) for r in rows),
        "progress_reports": sum(marks["report_progress"][r.id] for r in rows),
        "evaluation": {s: evaluation[s] for s in SATISFACTION},
        "by_channel": dict(sorted(by_channel.items())),
        "by_community": dict(sorted(by_community.items())),
    }
    _add_lines(rep)
    return rep


def _add_lines(rep: Report) -> None:
    f = rep.figures
    n, ev, esc = f["collected"], f["evaluation"], f["escalated_to"]
    rep.rates = {
        "consultation_rate": Rate(f["consulted"], n),
        "closure_rate": Rate(f["evaluated"], n),
        "escalation_rate": Rate(f["escalated"], n),
        "task_completion_rate": Rate(f["tasks_done"], f["tasks"]),
        "satisfaction_rate": Rate(ev["satisfied"] + ev["basically_satisfied"], f["evaluated"]),
        "escalated_filing_rate": Rate(f["escalated_proposals_filed"], esc["proposal"]),
    }
    rates = rep.rates
    rep.add("总体", "收集议题", n)
    rep.add("总体", "确定议题", f["topic_confirmed"], Rate(f["topic_confirmed"], n))
    rep.add("总体", "协商议事", f["consulted"], rates["consultation_rate"])
    rep.add("总体", "形成共识", f["agreed"], Rate(f["agreed"], n))
    rep.add("总体", "反馈评价办结", f["evaluated"], rates["closure_rate"])
    rep.add("总体", "转提案或社情民意", f["escalated"], rates["escalation_rate"])
    rep.add("总体", "不予协商", f["dropped"], Rate(f["dropped"], n))
    rep.add("总体", "进行中", f["open"])
    rep.add("落实", "参加人次", f["participants"])
    rep.add("落实", "交办任务", f["tasks"])
    rep.add("落实", "已完成任务", f["tasks_done"], rates["task_completion_rate"])
    rep.add("落实", "进展报告（次）", f["progress_reports"])
    for s in SATISFACTION:
        rep.add("群众评价", SATISFACTION_ZH[s], ev[s], Rate(ev[s], f["evaluated"]))
    rep.add(
        "群众评价",
        "满意+基本满意",
        ev["satisfied"] + ev["basically_satisfied"],
        rates["satisfaction_rate"],
    )
    rep.add("转办去向", ESCALATED_ZH["proposal"], esc["proposal"])
    rep.add(
        "转办去向", "其中已立案", f["escalated_proposals_filed"], rates["escalated_filing_rate"]
    )
    rep.add("转办去向", ESCALATED_ZH["opinion_report"], esc["opinion_report"])
    rep.add(
        "转办去向",
        "其中已采用",
        f["escalated_opinions_adopted"],
        Rate(f["escalated_opinions_adopted"], esc["opinion_report"]),
    )
    for section, key, names in (
        ("按收集渠道（收集/办结率）", "by_channel", CHANNEL_ZH),
        ("按街道社区（收集/办结率）", "by_community", {}),
    ):
        for name, e in f[key].items():
            rep.add(
                section, names.get(name, name), e["collected"], Rate(e["evaluated"], e["collected"])
            )
