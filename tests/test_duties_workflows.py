"""The members' duty workflows: meeting attendance, the standing members' duty report (常委述职)
and the yearly awards (评优), each driven to every final state, each with a refusal that names
what was wrong."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from xieshang import Actor, Engine, FixedClock, Forbidden, InvalidPayload, TransitionNotAllowed
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled

CN = timezone(timedelta(hours=8))
ORG = "gy"
OFFICE = Actor.of("o1", "cppcc_office", org=ORG)
CHAIRS = Actor.of("ch1", "chairpersons_council", org=ORG)
COMMITTEE = Actor.of("c1", "special_committee", org=ORG)
STANDING = Actor.of("s1", "standing_member", org=ORG)


def at(day: str, hour: int = 10) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), CN).replace(hour=hour)


class Env:
    def __init__(self) -> None:
        self.clock = FixedClock(at("2024-12-02"))
        self.engine = Engine(MemoryStore(), bundled(), self.clock)

    def on(self, day: str, hour: int = 10) -> Engine:
        self.clock.set(at(day, hour))
        return self.engine


@pytest.fixture
def env() -> Env:
    return Env()


def test_a_meeting_roll_closes_or_is_cancelled_with_a_reason(env: Env) -> None:
    engine = env.on("2024-03-01")
    data = {"title": "常委会议", "kind": "standing_committee", "meeting_date": "2024-03-01",
            "invited": ["s1", "s2"]}  # fmt: skip
    mid = engine.start("meeting_attendance", data, OFFICE, org=ORG).id
    engine.fire(mid, "sign_in", Actor.of("s1", "member", org=ORG))
    closed = engine.fire(mid, "close", OFFICE)
    assert (closed.state, closed.data["present"], closed.data["on_leave"]) == ("closed", ["s1"], [])
    other = engine.start("meeting_attendance", data, OFFICE, org=ORG).id
    with pytest.raises(InvalidPayload, match="reason"):
        engine.fire(other, "cancel", OFFICE)
    assert engine.fire(other, "cancel", OFFICE, reason="改期").state == "cancelled"


def test_a_standing_members_report_is_returned_reviewed_and_published(env: Env) -> None:
    engine = env.on("2024-12-02")
    data = {"member": "s1", "year": 2024, "body": "2024年度履职报告"}
    with pytest.raises(TransitionNotAllowed, match="只能由常委本人起草"):
        engine.start("standing_report", data, Actor.of("s2", "standing_member", org=ORG))
    rid = engine.start("standing_report", data, STANDING).id
    engine.fire(rid, "submit", STANDING)
    with pytest.raises(Forbidden):
        engine.fire(rid, "review", OFFICE, {"rating": "good"})
    engine.fire(rid, "return_for_revision", OFFICE, reason="补充调研情况")
    engine.fire(rid, "submit", STANDING, {"body": "修改后的报告"})
    engine = env.on("2024-12-12")
    engine.fire(rid, "review", CHAIRS, {"rating": "excellent"})
    done = env.on("2024-12-16").fire(rid, "publish", OFFICE)
    assert (done.state, done.final, done.data["rating"], done.data["body"]) == (
        "published", True, "excellent", "修改后的报告",
    )  # fmt: skip
    assert done.data["published_on"] == "2024-12-16"


def awards_to_publicised(env: Env) -> str:
    engine = env.on("2024-12-09")
    aid = engine.start(
        "annual_awards", {"year": 2024, "award": "outstanding_member", "places": 2}, OFFICE
    ).id
    with pytest.raises(TransitionNotAllowed, match="候选人不少于名额"):
        engine.fire(aid, "nominate", OFFICE, {"nominees": ["m1"]})
    engine.fire(aid, "nominate", OFFICE, {"nominees": ["m1", "m2", "m3", "m4"]})
    with pytest.raises(TransitionNotAllowed, match="推荐人选须在候选人之中"):
        engine.fire(aid, "recommend", COMMITTEE, {"recommended": ["m9"]})
    engine.fire(aid, "recommend", COMMITTEE, {"recommended": ["m1", "m2", "m3"]})
    with pytest.raises(TransitionNotAllowed, match="不超过名额"):
        engine.fire(aid, "decide", CHAIRS, {"awardees": ["m1", "m2", "m3"]})
    engine.fire(aid, "decide", CHAIRS, {"awardees": ["m1", "m2"]})
    publicised = engine.fire(aid, "publicise", OFFICE)
    # five working days from Monday 9 December: Monday 16 December
    assert publicised.data["objections_end"] == "2024-12-16"
    return aid


def test_awards_are_announced_by_the_timer_after_the_objection_window(env: Env) -> None:
    aid = awards_to_publicised(env)
    engine = env.on("2024-12-13")
    with pytest.raises(TransitionNotAllowed, match="公示期至2024-12-16"):
        engine.fire(aid, "announce", OFFICE)
    engine.tick(at("2024-12-20", 8))
    done = engine.get(aid)
    assert (done.state, done.data["awardees"]) == ("announced", ["m1", "m2"])


def test_an_upheld_objection_removes_the_awardee_before_the_announcement(env: Env) -> None:
    aid = awards_to_publicised(env)
    engine = env.on("2024-12-12")
    objector = Actor.of("m5", "member", org=ORG)
    with pytest.raises(TransitionNotAllowed, match="异议须针对拟表彰人选"):
        engine.fire(aid, "object", objector, {"against": "m9"}, reason="不实")
    engine.fire(aid, "object", objector, {"against": "m2"}, reason="年度出勤不足")
    engine = env.on("2024-12-17")
    with pytest.raises(TransitionNotAllowed, match="异议均已处理"):
        engine.fire(aid, "announce", OFFICE)
    engine.fire(aid, "rule_on_objection", CHAIRS, {"against": "m2", "upheld": True}, reason="属实")
    done = engine.fire(aid, "announce", OFFICE)
    assert (done.state, done.data["awardees"], done.data["open_objections"]) == (
        "announced", ["m1"], 0,
    )  # fmt: skip
