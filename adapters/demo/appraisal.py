"""The democratic appraisal of the year's departments: consent, plan, vote, rectification."""

from __future__ import annotations

from datetime import date, timedelta

from .cast import CHAIRS, OFFICE, PSC, SPECIAL, STANDING, YEAR, day, who
from .sim import Life, Sim

__all__ = ["TARGETS", "appraisal_life"]

# (unit, name, ballots issued = present, satisfied, unsatisfied, unknown, blank, follow-up
# rounds): the traffic police are sent back once after the follow-up; the housing bureau's vote
# is counted twice (a recount replaces the first count)
TARGETS = [
    ("traffic_police", "市公安局交警支队", 62, 49, 6, 5, 2, 1),
    ("housing", "市住建局", 62, 41, 12, 7, 2, 0),
    ("market_regulation", "市市场监管局", 62, 53, 3, 5, 1, 0),
    ("power_supply", "市供电局", 62, 41, 10, 9, 2, 0),
]


def appraisal_life(sim: Sim, k: int) -> Life:
    """The appraisal of ``TARGETS[k]``, a week after the one before it."""
    unit, name, present, satisfied, unsatisfied, unknown, blank, rounds = TARGETS[k]
    engine = sim.engine
    target = who(f"dept-{unit}", "appraised_unit", unit=unit)
    yield day(date(YEAR, 3, 5 + k))
    aid = engine.start(
        "democratic_appraisal", {"year": YEAR, "target": name, "target_unit": unit}, CHAIRS
    ).id
    engine.fire(aid, "request_consent", CHAIRS)
    yield day(date(YEAR, 3, 12 + k))
    engine.fire(aid, "consent", PSC)
    engine.fire(
        aid, "adopt_work_plan", STANDING, {"work_plan": "宣传动员、调研测评、集中评议、整改总结"}
    )
    yield day(date(YEAR, 4, 20 + k))
    engine.fire(aid, "record_findings", SPECIAL, {"finding": f"群众测评满意度{70 + 4 * k}%"})
    yield day(date(YEAR, 5, 14) + timedelta(days=7 * k))
    engine.fire(aid, "open_vote", STANDING, {"members_total": 80, "present": present})
    ballots = {
        "issued": present,
        "returned": present,
        "satisfied": satisfied,
        "unsatisfied": unsatisfied,
        "unknown": unknown,
        "blank": blank,
    }
    if unit == "housing":
        first = {**ballots, "satisfied": satisfied - 1, "blank": blank + 1}
        engine.fire(aid, "record_ballots", OFFICE, first)
    engine.fire(aid, "record_ballots", STANDING, ballots)
    engine.fire(aid, "issue_feedback", STANDING, {"appraisal_report": f"评议意见：{name}"})
    yield day(date(YEAR, 6, 3) + timedelta(days=7 * k))
    engine.fire(aid, "submit_rectification_plan", target, {"rectification_plan": "整改方案"})
    yield day(date(YEAR, 8, 26 + k))
    engine.fire(aid, "report_rectification", target, {"report": "第一轮整改报告"})
    engine.fire(aid, "accept_rectification", STANDING)
    for r in range(rounds):
        yield day(date(YEAR, 9, 10 + r))
        engine.fire(aid, "rectify_again", STANDING, reason="回头看：仍有问题未整改到位")
        yield day(date(YEAR, 11, 15 + r))
        engine.fire(aid, "report_rectification", target, {"report": f"第{r + 2}轮整改报告"})
        engine.fire(aid, "accept_rectification", STANDING)
    yield day(date(YEAR, 11, 25 + k))
    engine.fire(aid, "close", STANDING, {"conclusion": "整改到位"})
