"""The life of the annual consultation plan and of its topics."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from .cast import (
    CATEGORIES,
    CHAIRS,
    FORMS,
    OFFICE,
    PARTY_OFFICE,
    PSC,
    SPECIAL,
    TOPIC_TITLES,
    UNITS,
    YEAR,
    day,
    dept_actor,
    who,
)
from .sim import Life, Sim


def _plan_topics(rng: random.Random, count: int) -> list[dict[str, Any]]:
    topics = []
    for i in range(count):
        title = TOPIC_TITLES[i % len(TOPIC_TITLES)]
        if i >= len(TOPIC_TITLES):
            title = f"{title}（{['调研', '督办', '回头看'][i // len(TOPIC_TITLES) - 1]}）"
        topics.append(
            {
                "id": f"t{i + 1:02d}",
                "title": title,
                "category": CATEGORIES[i % 5],
                "form": FORMS[rng.randrange(len(FORMS))],
                "lead_leader": f"{'王李张刘陈'[i % 5]}副主席",
                "responsible_department": [
                    "经济委员会",
                    "人口资源环境委员会",
                    "教科文卫体委员会",
                    "社会和法制委员会",
                    "提案委员会",
                ][i % 5],
                "responsible_person": f"{'赵钱孙周吴'[i % 5]}主任",
                "due_date": f"{YEAR}-11-30",
            }
        )
    return topics


# meeting dates away from the Spring Festival and National Day holidays
MEETING_DAYS = [date(YEAR, m, d) for m in (4, 5, 6, 7, 8, 9, 11) for d in (10, 18, 25)]


def plan_life(sim: Sim, topics: int, held: int, instructed: int) -> Life:
    engine, rng = sim.engine, sim.rng
    yield day(date(YEAR, 1, 8))
    pid = engine.start(
        "annual_consultation_plan", {"year": YEAR, "deadline": f"{YEAR}-01-31"}, OFFICE
    ).id
    for k in range(12):
        yield day(date(YEAR, 1, 9 + k))
        suggester = who(f"m{k:03d}", "member")
        engine.fire(
            pid,
            "suggest_topic",
            suggester,
            {
                "title": TOPIC_TITLES[rng.randrange(len(TOPIC_TITLES))],
                "category": CATEGORIES[k % 5],
            },
        )
    yield day(date(YEAR, 2, 1))
    plan = _plan_topics(rng, topics)
    engine.fire(pid, "close_collection", OFFICE)
    engine.fire(pid, "submit_for_joint_revision", OFFICE, {"topics": plan})
    yield day(date(YEAR, 2, 5))
    engine.fire(pid, "submit_to_chairs", PARTY_OFFICE)
    yield day(date(YEAR, 2, 7))
    engine.fire(pid, "chairs_reviewed", CHAIRS, {"decision": "agree"})
    yield day(date(YEAR, 2, 20))
    engine.fire(pid, "approve_plan", PSC, {"approved": [t["id"] for t in plan]})
    kids = sorted(engine.children(pid), key=lambda c: c.data["topic_id"])
    order = list(range(len(kids)))
    rng.shuffle(order)
    cancelled: str | None = None
    for rank, idx in enumerate(order):
        tid = kids[idx].id
        if rank < held:
            meeting = MEETING_DAYS[rank % len(MEETING_DAYS)]
            sim.add("topic", topic_life(sim, tid, meeting, brief=rank < instructed))
        elif cancelled is None:
            cancelled = kids[idx].data["topic_id"]  # the mid-year revision cancels it
            sim.add("topic", approved_life(sim, tid))
        else:
            sim.add("topic", carried_over_life(sim, tid))
    if cancelled is not None:
        yield from _revision(sim, pid, cancelled, len(plan) + 1)
    yield day(date(YEAR, 12, 27))
    engine.fire(pid, "close_year", OFFICE, {"summary": f"全年计划议题{topics}个"})


def _revision(sim: Sim, pid: str, cancelled: str, number: int) -> Life:
    """In June the plan is revised through the whole chain: one topic cancelled, one added; the
    approval cancels the one and spawns the other in the same commit."""
    engine = sim.engine
    added = _plan_topics(sim.rng, number)[-1]
    added.update(
        id=f"t{number:02d}", title="关于应对极端天气的城市防汛能力建设", form="bimonthly_forum"
    )
    yield day(date(YEAR, 6, 3))
    engine.fire(
        pid,
        "propose_revision",
        OFFICE,
        {"cancelled": [cancelled], "added": [added]},
        reason="根据市委年中工作部署调整协商计划",
    )
    yield day(date(YEAR, 6, 5))
    engine.fire(pid, "revise_jointly", PARTY_OFFICE)
    yield day(date(YEAR, 6, 7))
    engine.fire(pid, "chairs_reviewed", CHAIRS, {"decision": "agree"})
    yield day(date(YEAR, 6, 14))
    engine.fire(pid, "approve_revision", PSC)
    [new] = [c for c in engine.children(pid) if c.data["topic_id"] == added["id"]]
    sim.add("topic", carried_over_life(sim, new.id, date(YEAR, 6, 20)))


def approved_life(sim: Sim, tid: str) -> Life:
    """A topic approved, then cancelled by the mid-year revision of the plan."""
    yield day(date(YEAR, 2, 26))
    sim.engine.fire(tid, "approve", OFFICE)


def carried_over_life(sim: Sim, tid: str, approved: date = date(YEAR, 2, 26)) -> Life:
    yield day(approved)
    sim.engine.fire(tid, "approve", OFFICE)
    yield day(date(YEAR, 12, 16))
    sim.engine.fire(tid, "carry_over", OFFICE, reason="条件尚不成熟，转入下年度")


def topic_life(sim: Sim, tid: str, meeting: date, *, brief: bool) -> Life:
    engine, rng = sim.engine, sim.rng
    yield day(date(YEAR, 2, 26))
    engine.fire(tid, "approve", OFFICE)
    yield day(meeting - timedelta(days=42))
    engine.fire(
        tid,
        "start_preparation",
        SPECIAL,
        {"meeting_date": meeting.isoformat(), "activity_plan": "工作方案"},
    )
    yield day(meeting - timedelta(days=35))
    engine.fire(tid, "send_notice", OFFICE, {"invitees": ["相关部门", "界别委员"]})
    yield day(meeting - timedelta(days=24))
    engine.fire(tid, "send_materials", OFFICE, {"materials": ["调研报告"]})
    yield day(meeting, 9)
    engine.fire(tid, "hold_meeting", CHAIRS, {"attendance": 30 + rng.randrange(40)})
    yield day(meeting, 16)
    kind = "consultation_brief" if brief else "minutes"
    engine.fire(
        tid,
        "draft_outcome",
        SPECIAL,
        {"kind": kind, "text": "会议纪要" if not brief else "协商专报"},
    )
    engine.fire(tid, "submit_outcome", OFFICE, {"recipients": ["party_committee", "government"]})
    if brief:
        yield day(meeting + timedelta(days=12))
        engine.fire(
            tid,
            "record_instruction",
            OFFICE,
            {
                "leader": "市委书记",
                "text": "请有关部门研究落实",
                "date": (meeting + timedelta(days=10)).isoformat(),
            },
        )
        dept = UNITS[rng.randrange(len(UNITS))]
        engine.fire(tid, "transfer", PARTY_OFFICE, {"departments": [dept]})
        yield day(meeting + timedelta(days=40))
        engine.fire(tid, "progress_report", dept_actor(dept), {"progress": "已制定落实方案"})
        yield day(meeting + timedelta(days=60))
        engine.fire(tid, "feed_back", OFFICE, {"result": "落实情况已向委员通报"})
    yield day(min(meeting + timedelta(days=65), date(YEAR, 12, 20)))
    engine.fire(tid, "close", OFFICE)
