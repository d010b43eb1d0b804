"""提案办理情况: how the units handled the filed proposals.

The proposal's figures (answer classes, reply, closure, satisfaction) come from the proposals;
each unit's from its ``proposal_handling`` children, and its satisfaction from the proposer's
evaluation (the lead unit's, or each unit's own in split mode).

On time (按期) is judged on the first reply against the due date in force at that moment, an
approved extension included: a proposal's ``first_replied_on`` and ``due_at_first_reply``, a
unit's round-0 reply (its ``on_time``). Re-handling replies count as replies, never as on time or
late. Each unit also gets its late assisting opinions and a handling score (:mod:`.score`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .labels import (
    CLASS_ZH,
    CLASSES,
    ONLINE,
    REPLIED_OR_LATER,
    SATISFACTION,
    SATISFACTION_ZH,
    UNCLASSIFIED,
    UNIT_ZH,
    UNSTATED,
)
from .model import Rate, Report
from .reading import Reader, Row, new_report
from .score import Weights, formula_notes, unit_score

__all__ = ["handling_report"]

_ALL_CLASSES = (*CLASSES, UNCLASSIFIED)
_UNIT_HEADERS = ["承办单位", "交办", "答复", "逾期", "申退", "A", "B", "C", UNCLASSIFIED, "满意率"]
# the score's inputs beside it, so that a row can be checked by hand against the notes' formula
_SCORE_HEADERS = ["承办单位", "按期", "逾期", "会办逾期", "按期率", "满意率", "A类占比", "得分"]
_OPINION_SENT = {"opinion_sent", "countersigned"}


def handling_report(
    source: Any,
    year: int,
    org: str | None = None,
    *,
    workflow: str = "proposal",
    unit_workflow: str = "proposal_handling",
) -> Report:
    """提案办理情况: answer classes, closure, reply, on-time and satisfaction rates, per unit."""
    reader = Reader(source)
    try:
        scope = reader.scope(workflow, year, org)
        rows = reader.instances(scope)
        marks = reader.triggered(scope, {"file", "overdue"})
        filed = [r for r in rows if marks["file"][r.id]]
        filed_ids = {r.id for r in filed}
        kid_scope = reader.child_scope(unit_workflow, scope)
        kids = [k for k in reader.instances(kid_scope) if k.parent_id in filed_ids]
        kid_marks = reader.triggered(kid_scope, {"request_return", "overdue"})
        params = reader.params(kid_scope)
    finally:
        reader.close()
    units = _units(kids, kid_marks)
    _add_evaluations(units, filed)
    weights = Weights.from_params(params)
    _add_scores(units, weights)
    rep = new_report("handling", "提案办理情况统计", year, org)
    rep.figures = _figures(filed, marks["overdue"])
    rep.figures["units"] = dict(sorted(units.items()))
    rep.figures["assist_opinions"] = sum(u["assist_opinions"] for u in units.values())
    rep.figures["late_assist_opinions"] = sum(u["late_assist_opinions"] for u in units.values())
    rep.figures["score_weights"] = None if weights is None else weights.to_dict()
    rep.rates = _rates(rep.figures)
    _add_overall_lines(rep)
    _add_unit_lines(rep)
    if units and weights is not None:
        rep.notes = formula_notes(weights, params)
    return rep


def _reply_class(data: Mapping[str, Any]) -> str:
    cls = data.get("reply_class")
    return cls if cls in CLASSES else UNCLASSIFIED


def _first_reply_on_time(data: Mapping[str, Any]) -> bool:
    """Whether a replied proposal's first reply was on time. A proposal replied before the first
    reply was recorded has only its last reply and due date to go by."""
    if data.get("first_replied_on"):
        on, due = data["first_replied_on"], data.get("due_at_first_reply")
    else:
        on, due = data.get("replied_on"), data.get("reply_due")
    return bool(on and due and on <= due)


def _figures(filed: list[Row], overdue_marks: Counter[str]) -> dict[str, Any]:
    """The proposals' own figures (without ``units``)."""
    classes = Counter(_reply_class(r.data) for r in filed)
    replied = [r for r in filed if r.state in REPLIED_OR_LATER]
    on_time = sum(1 for r in replied if _first_reply_on_time(r.data))
    sat = Counter(
        r.data.get("satisfaction") for r in filed if r.data.get("satisfaction") in SATISFACTION
    )
    return {
        "filed": len(filed),
        "classes": {c: classes[c] for c in _ALL_CLASSES},
        "replied": len(replied),
        "replied_on_time": on_time,
        "closed": sum(1 for r in filed if r.state == "closed"),
        "evaluated": sum(sat.values()),
        "satisfaction": {s: sat[s] for s in SATISFACTION},
        "overdue": sum(1 for r in filed if r.overdue or overdue_marks[r.id]),
        "key_proposals": sum(1 for r in filed if r.data.get("key_proposal")),
        "rehandled": sum(1 for r in filed if (r.data.get("rehandle_count") or 0) > 0),
        "online": sum(1 for r in filed if r.data.get("channel") == ONLINE),
    }


def _rates(figures: Mapping[str, Any]) -> dict[str, Rate]:
    n, classes, sat = figures["filed"], figures["classes"], figures["satisfaction"]
    return {
        "closure_rate": Rate(figures["closed"], n),
        "reply_rate": Rate(figures["replied"], n),
        "on_time_rate": Rate(figures["replied_on_time"], figures["replied"]),
        "satisfaction_rate": Rate(
            sat["satisfied"] + sat["basically_satisfied"], figures["evaluated"]
        ),
        "adoption_rate": Rate(classes["A"], n),
        "online_share": Rate(figures["online"], n),
        **{f"class_{c}_share": Rate(classes[c], n) for c in CLASSES},
        "unclassified_share": Rate(classes[UNCLASSIFIED], n),
    }


def _blank_unit() -> dict[str, Any]:
    return {
        "assigned": 0,
        "replies": 0,
        "first_replies": 0,
        "on_time_replies": 0,
        "late_replies": 0,
        "rehandling_replies": 0,
        "assist_opinions": 0,
        "late_assist_opinions": 0,
        "return_requests": 0,
        "released": 0,
        "countersigned": 0,
        "overdue": 0,
        "open": 0,
        "classes": {c: 0 for c in _ALL_CLASSES},
        "evaluated": 0,
        "satisfied": 0,
        "score": None,
    }


def _unit_reply_on_time(data: Mapping[str, Any]) -> bool:
    """Whether a unit's reply was on time: its ``on_time``, or for a reply recorded before that
    field, its reply date against its due date (which no longer moves once it has replied)."""
    flag = data.get("on_time")
    if isinstance(flag, bool):
        return flag
    due, on = data.get("due"), data.get("replied_on")
    return not (due and on and on > due)


def _units(kids: list[Row], marks: Mapping[str, Counter[str]]) -> dict[str, dict[str, Any]]:
    """Each unit's counts from its handling children (assignments, replies, returns)."""
    units: dict[str, dict[str, Any]] = {}
    for k in kids:
        u = units.setdefault(k.unit or UNSTATED, _blank_unit())
        u["assigned"] += 1
        u["return_requests"] += marks["request_return"][k.id]
        u["overdue"] += 1 if (k.overdue or marks["overdue"][k.id]) else 0
        if k.data.get("role") == "assisting" and k.state in _OPINION_SENT:
            u["assist_opinions"] += 1
            u["late_assist_opinions"] += 1 if k.data.get("opinion_late") is True else 0
        if k.state == "replied":
            u["replies"] += 1
            u["classes"][_reply_class(k.data)] += 1
            if (k.data.get("round") or 0) > 0:
                u["rehandling_replies"] += 1
            else:
                u["first_replies"] += 1
                on_time = _unit_reply_on_time(k.data)
                u["on_time_replies" if on_time else "late_replies"] += 1
        elif k.state == "reassigned":
            u["released"] += 1
        elif k.state == "countersigned":
            u["countersigned"] += 1
        else:
            u["open"] += 1
    return units


def _evaluations(r: Row) -> Iterable[tuple[Any, Any]]:
    """(unit, satisfaction) pairs of a proposal: the lead unit's, or each unit's in split mode."""
    if r.data.get("mode") == "split":
        evaluations = r.data.get("unit_evaluations") or []
        return [(e.get("unit"), e.get("satisfaction")) for e in evaluations]
    return [(r.data.get("lead_unit"), r.data.get("satisfaction"))]


def _add_evaluations(units: dict[str, dict[str, Any]], filed: list[Row]) -> None:
    for r in filed:
        for name, feeling in _evaluations(r):
            if name and feeling in SATISFACTION:
                u = units.setdefault(name, _blank_unit())
                u["evaluated"] += 1
                u["satisfied"] += 1 if feeling != "unsatisfied" else 0


def _add_scores(units: dict[str, dict[str, Any]], weights: Weights | None) -> None:
    if weights is None:
        return  # a unit workflow without the score's params: no score
    for u in units.values():
        u["score"] = unit_score(
            weights,
            on_time=Rate(u["on_time_replies"], u["first_replies"]),
            satisfaction=Rate(u["satisfied"], u["evaluated"]),
            class_a=Rate(u["classes"]["A"], u["replies"]),
            late_replies=u["late_replies"],
            late_opinions=u["late_assist_opinions"],
        )


def _add_overall_lines(rep: Report) -> None:
    f, rates = rep.figures, rep.rates
    n, classes, sat = f["filed"], f["classes"], f["satisfaction"]
    rep.add("总体", "立案提案", n)
    rep.add("总体", "已答复", f["replied"], rates["reply_rate"])
    rep.add("总体", "按期答复", f["replied_on_time"], rates["on_time_rate"])
    rep.add("总体", "已办结", f["closed"], rates["closure_rate"])
    rep.add("总体", "已评价", f["evaluated"])
    rep.add(
        "总体",
        "满意+基本满意",
        sat["satisfied"] + sat["basically_satisfied"],
        rates["satisfaction_rate"],
    )
    rep.add("总体", "逾期", f["overdue"], Rate(f["overdue"], n))
    rep.add("总体", "重新办理", f["rehandled"], Rate(f["rehandled"], n))
    rep.add("总体", "重点提案", f["key_proposals"])
    rep.add("总体", "网上提交", f["online"], rates["online_share"])
    rep.add(
        "总体",
        "逾期会办意见",
        f["late_assist_opinions"],
        Rate(f["late_assist_opinions"], f["assist_opinions"]),
    )
    for c in CLASSES:
        rep.add("答复类别", CLASS_ZH[c], classes[c], rates[f"class_{c}_share"])
    rep.add("答复类别", UNCLASSIFIED, classes[UNCLASSIFIED], rates["unclassified_share"])
    for s in SATISFACTION:
        rep.add("评价", SATISFACTION_ZH[s], sat[s], Rate(sat[s], f["evaluated"]))


def _add_unit_lines(rep: Report) -> None:
    """One section per unit (detail lines), the wide table of units and that of their scores."""
    wide: list[list[Any]] = []
    scores: list[list[Any]] = []
    for key_name, u in rep.figures["units"].items():
        name = UNIT_ZH.get(key_name, key_name)
        due_replies = u["assigned"] - u["released"] - u["countersigned"]
        satisfied = Rate(u["satisfied"], u["evaluated"])
        first = u["first_replies"]
        wide.append(
            [
                name,
                u["assigned"],
                u["replies"],
                u["late_replies"],
                u["return_requests"],
                *(u["classes"][c] for c in _ALL_CLASSES),
                satisfied.text,
            ]
        )
        scores.append(
            [
                name,
                u["on_time_replies"],
                u["late_replies"],
                u["late_assist_opinions"],
                Rate(u["on_time_replies"], first).text,
                satisfied.text,
                Rate(u["classes"]["A"], u["replies"]).text,
                "—" if u["score"] is None else u["score"],
            ]
        )
        rep.detail.add(name)
        rep.add(name, "交办件次", u["assigned"])
        rep.add(name, "答复", u["replies"], Rate(u["replies"], due_replies))
        rep.add(name, "首次答复", first)
        rep.add(name, "按期答复", u["on_time_replies"], Rate(u["on_time_replies"], first))
        rep.add(name, "逾期答复", u["late_replies"], Rate(u["late_replies"], first))
        rep.add(name, "重新办理答复", u["rehandling_replies"])
        rep.add(name, "申退", u["return_requests"])
        rep.add(name, "改办", u["released"])
        rep.add(name, "会签", u["countersigned"])
        opinions, late = u["assist_opinions"], u["late_assist_opinions"]
        rep.add(name, "会办意见", opinions)
        rep.add(name, "逾期会办意见", late, Rate(late, opinions))
        for c in _ALL_CLASSES:
            rep.add(name, f"{c}类" if c in CLASSES else c, u["classes"][c])
        rep.add(name, "满意+基本满意", u["satisfied"], satisfied)
        rep.add(name, "得分", u["score"])
    rep.wide["承办单位"] = (_UNIT_HEADERS, wide)
    rep.wide["承办单位得分"] = (_SCORE_HEADERS, scores)
