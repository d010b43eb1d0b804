"""The democratic appraisal of one department."""

from __future__ import annotations

from datetime import date

from .cast import CHAIRS, PSC, SPECIAL, STANDING, YEAR, day, who
from .sim import Life, Sim


def appraisal_life(sim: Sim) -> Life:
    engine = sim.engine
    target = who("police", "appraised_unit", unit="traffic_police")
    yield day(date(YEAR, 3, 5))
    aid = engine.start(
        "democratic_appraisal",
        {"year": YEAR, "target": "市公安局交警支队", "target_unit": "traffic_police"},
        CHAIRS,
    ).id
    engine.fire(aid, "request_consent", CHAIRS)
    yield day(date(YEAR, 3, 12))
    engine.fire(aid, "consent", PSC)
    engine.fire(
        aid, "adopt_work_plan", STANDING, {"work_plan": "宣传动员、调研测评、集中评议、整改总结"}
    )
    yield day(date(YEAR, 4, 20))
    engine.fire(aid, "record_findings", SPECIAL, {"finding": "群众测评满意度82%"})
    yield day(date(YEAR, 5, 14))
    engine.fire(aid, "open_vote", STANDING, {"members_total": 80, "present": 62})
    ballots = {
        "issued": 62,
        "returned": 62,
        "satisfied": 49,
        "unsatisfied": 6,
        "unknown": 5,
        "blank": 2,
    }
    engine.fire(aid, "record_ballots", STANDING, ballots)
    engine.fire(aid, "issue_feedback", STANDING, {"appraisal_report": "评议意见：停车秩序待改进"})
    yield day(date(YEAR, 6, 3))
    engine.fire(aid, "submit_rectification_plan", target, {"rectification_plan": "整改方案"})
    yield day(date(YEAR, 8, 30))
    engine.fire(aid, "report_rectification", target, {"report": "第一轮整改报告"})
    engine.fire(aid, "accept_rectification", STANDING)
    yield day(date(YEAR, 9, 10))
    engine.fire(aid, "rectify_again", STANDING, reason="回头看：仍有占道停车")
    yield day(date(YEAR, 11, 15))
    engine.fire(aid, "report_rectification", target, {"report": "第二轮整改报告"})
    engine.fire(aid, "accept_rectification", STANDING)
    yield day(date(YEAR, 11, 25))
    engine.fire(aid, "close", STANDING, {"conclusion": "整改到位"})
