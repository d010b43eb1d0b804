"""The members' year in the demo: the roster (sectors and special committees), the meetings
they attend or take leave from, the standing members' duty reports and the year's awards.

These lives draw from a random generator of their own, so that the other lives of a seed
run as they did before the members' duties were simulated.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from xieshang import DutyRules, Engine
from xieshang.shared import (
    DutyFile,
    DutyRecompute,
    RecomputePlan,
    apply_recompute,
    compile_duty_rules,
    count_year,
)

from .cast import CHAIRS, OFFICE, YEAR, day, who
from .sim import Life, Sim

__all__ = [
    "MEMBERS",
    "STANDING",
    "awards_life",
    "demo_rules",
    "meeting_life",
    "pin_rules",
    "standing_report_life",
]

MEMBERS = 180  # m000 .. m179, as the proposals and consultations name them
STANDING = 30  # m000 .. m029 are standing committee members (常委)
SECTORS = [
    "中共", "民革", "民盟", "民建", "民进", "农工党", "致公党", "九三学社", "无党派人士", "共青团",
    "工会", "妇联", "科协", "台联", "工商联", "文化艺术界", "科学技术界", "社会科学界", "经济界",
    "农业界", "教育界", "体育界", "新闻出版界", "医药卫生界", "对外友好界",
    "社会福利和社会保障界", "少数民族界", "宗教界",
]  # fmt: skip
COMMITTEES = [
    "提案委员会", "经济委员会", "人口资源环境委员会", "教科文卫体委员会", "社会和法制委员会",
]  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "建国华明丽敏静军伟芳强磊洋艳勇杰娟涛超霞平刚桂英"
# (kind, month, day, invited): one plenary, four standing committee sessions, six forums
MEETINGS = [
    ("plenary", 1, 16, MEMBERS),
    ("standing_committee", 3, 20, STANDING),
    ("standing_committee", 6, 19, STANDING),
    ("standing_committee", 9, 18, STANDING),
    ("standing_committee", 12, 18, STANDING),
    *(("consultation", m, 22, 25) for m in (2, 4, 6, 8, 10, 12)),
]
TITLES = {"plenary": "全体会议", "standing_committee": "常委会议", "consultation": "双月协商座谈会"}
LEAVE_REASONS = ["公务出差", "因病", "单位重要工作", "外出学习"]


def member_id(n: int) -> str:
    return f"m{n:03d}"


def demo_rules(rules: DutyRules) -> DutyRules:
    """``rules`` with the demo city's roster: each member's name, sector and committee."""
    roster = {
        member_id(n): {
            "name": SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 7) % len(GIVEN)],
            "sector": SECTORS[n % len(SECTORS)],
            "committee": COMMITTEES[n % len(COMMITTEES)],
            "standing": n < STANDING,
        }
        for n in range(MEMBERS)
    }
    body = rules.file.model_dump(mode="json", exclude_none=True)
    return compile_duty_rules(DutyFile.model_validate({**body, "members": roster}), origin="demo")


def meeting_life(sim: Sim, rng: random.Random, k: int) -> Life:
    """One meeting's roll: most invited members sign in (at a plenary the office records them
    in one step), some take leave, the office records a few who did not sign in themselves,
    and closes the roll."""
    kind, month, d, invited_count = MEETINGS[k]
    on = date(YEAR, month, d)
    if invited_count >= MEMBERS:
        invited = [member_id(n) for n in range(MEMBERS)]
    elif kind == "standing_committee":
        invited = [member_id(n) for n in range(STANDING)]
    else:
        invited = sorted(member_id(n) for n in rng.sample(range(MEMBERS), invited_count))
    yield day(on, 8)
    engine = sim.engine
    title = f"{YEAR}年{TITLES[kind]}（{month}月）"
    mid = engine.start(
        "meeting_attendance",
        {"title": title, "kind": kind, "meeting_date": on.isoformat(), "invited": invited},
        OFFICE,
    ).id
    yield day(on, 9)
    late: list[str] = []
    for m in invited:
        draw = rng.random()
        if draw < 0.85 and kind == "plenary":
            late.append(m)  # a plenary's roll is taken at the door and recorded by the office
        elif draw < 0.85:
            engine.fire(mid, "sign_in", who(m, "member"))
        elif draw < 0.93:
            reason = LEAVE_REASONS[rng.randrange(len(LEAVE_REASONS))]
            engine.fire(mid, "request_leave", who(m, "member"), reason=reason)
        elif draw < 0.97:
            late.append(m)
    if late:
        engine.fire(mid, "record_present", OFFICE, {"members": late})
    yield day(on, 18)
    engine.fire(mid, "close", OFFICE)


def standing_report_life(sim: Sim, rng: random.Random, n: int) -> Life:
    """A standing member's duty report: drafted, submitted, reviewed, published in December."""
    member = who(member_id(n), "standing_member")
    on = date(YEAR, 12, 2) + timedelta(days=rng.randrange(5))
    yield day(on, 10)
    engine = sim.engine
    rid = engine.start(
        "standing_report",
        {"member": member.id, "year": YEAR, "body": f"{YEAR}年度履职情况报告"},
        member,
    ).id
    engine.fire(rid, "submit", member)
    yield day(date(YEAR, 12, 12), 15)
    rating = rng.choices(["excellent", "good", "fair"], [30, 60, 10])[0]
    engine.fire(rid, "review", CHAIRS, {"rating": rating})
    yield day(date(YEAR, 12, 16), 10)
    engine.fire(rid, "publish", OFFICE)


def awards_life(sim: Sim, places: int = 10) -> Life:
    """优秀委员: nominated from the ledger's leading members in December, reviewed, decided,
    publicised for the objection window, announced by the timer when it passes."""
    yield day(date(YEAR, 12, 9), 10)
    engine = sim.engine
    rules = engine.duties
    assert rules is not None
    records = engine.store.duty_records(year=YEAR)  # type: ignore[attr-defined]
    ranked = sorted(count_year(rules, YEAR, records).values(), key=lambda m: (-m.total, m.member))
    nominees = [m.member for m in ranked[: places * 2]]
    aid = engine.start(
        "annual_awards", {"year": YEAR, "award": "outstanding_member", "places": places}, OFFICE
    ).id
    engine.fire(aid, "nominate", OFFICE, {"nominees": nominees})
    yield day(date(YEAR, 12, 11), 10)
    committee = who("econ-committee", "special_committee")
    engine.fire(aid, "recommend", committee, {"recommended": nominees[: places + places // 2]})
    yield day(date(YEAR, 12, 13), 10)
    engine.fire(aid, "decide", CHAIRS, {"awardees": nominees[:places]})
    engine.fire(aid, "publicise", OFFICE)


def pin_rules(engine: Engine, rules: DutyRules) -> DutyRecompute:
    """Record that the year was counted under ``rules`` (with the demo's roster), so that the
    duty report finds the roster in the database. Every record was written under these rules,
    so the records stay as they are; ``audit verify`` checks them against history."""
    records = engine.store.duty_records(year=YEAR)  # type: ignore[attr-defined]
    plan = RecomputePlan(YEAR, rules, list(records), list(records))
    return apply_recompute(engine, plan, OFFICE.id)
