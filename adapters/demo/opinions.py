"""The life of an opinion report (社情民意信息): submitted, adopted, instructed, closed."""

from __future__ import annotations

from datetime import date, timedelta

from .cast import (
    APPROVER,
    GOV_OFFICE,
    OPINION_OFFICE,
    SIGNER,
    SUBJECTS,
    UNITS,
    YEAR,
    day,
    dept_actor,
    who,
)
from .sim import Life, Sim


def opinion_life(sim: Sim, n: int) -> Life:
    engine, rng = sim.engine, sim.rng
    d0 = date(YEAR, 2, 20) + timedelta(days=rng.randrange(230))
    reporter = who(f"liaison-{rng.randrange(12):02d}", "info_liaison")
    kind = "info_liaison"
    if n % 3 == 0:  # every third report is a member's, entered in the member's duty record
        reporter, kind = who(f"m{(n * 37) % 180:03d}", "member"), "member"
    yield day(d0)
    subject = SUBJECTS[rng.randrange(len(SUBJECTS))]
    rid = engine.start(
        "opinion_report",
        {
            "title": f"关于{subject}的社情民意（{n + 1}）",
            "body": f"群众反映{subject}问题，建议有关部门研究解决。",
            "reporter": reporter.id,
            "reporter_kind": kind,
        },
        reporter,
    ).id
    engine.fire(rid, "submit", reporter)
    yield day(d0 + timedelta(days=2))
    if rng.random() < 0.25:
        engine.fire(rid, "decline", OPINION_OFFICE, reason="已有同类信息")
        return
    engine.fire(rid, "adopt", OPINION_OFFICE, {"edited_body": f"编辑后的正文：{subject}"})
    engine.fire(rid, "approve", APPROVER)
    engine.fire(rid, "sign_off", SIGNER, {"issue_no": f"{YEAR}-{n + 1:02d}"})
    engine.fire(rid, "dispatch", OPINION_OFFICE, {"recipients": ["party_committee", "government"]})
    if rng.random() < 0.5:
        return  # no instruction: closed by the timer after the instruction window
    yield day(d0 + timedelta(days=12))
    engine.fire(
        rid, "record_instruction", OPINION_OFFICE, {"leader": "市长", "text": "请有关部门办理"}
    )
    dept = UNITS[rng.randrange(len(UNITS))]
    engine.fire(rid, "transfer", GOV_OFFICE, {"department": dept})
    yield day(d0 + timedelta(days=30))
    engine.fire(rid, "report_handling", dept_actor(dept), {"result": "已办理"})
    engine.fire(rid, "feed_back", OPINION_OFFICE, {"feedback": "已反馈信息员"})
