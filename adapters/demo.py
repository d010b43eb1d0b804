"""``xieshang demo``: a simulated year of the consultation work of a city 政协.

A fresh SQLite database, the bundled workflows and a simulated clock: the annual consultation
plan (51 topics in 5 categories) is collected, drafted, reviewed and approved; consultations are
held and their outcomes instructed and fed back; a few hundred proposals are reviewed and handled
by the city's departments (some units are released and replaced, some reply late, some replies
leave the proposer unsatisfied and are handled again); opinion reports are adopted and
instructed; one department goes through a democratic appraisal. Every step goes through the
public :class:`~xieshang.Engine` API, the way an integrating system would drive it. Then the
year's reports are printed and the audit chain of every instance is verified.

Everything is derived from ``random.Random(seed)`` and a fixed clock, with deterministic instance
ids: the same seed gives the same database contents and the same reports.
"""

from __future__ import annotations

import heapq
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xieshang import Actor, CalendarChain, CommandRefused, Engine, FixedClock, XieshangError
from xieshang.workflows import bundled

from .reports import (
    Report,
    handling_report,
    opinions_report,
    plan_report,
    render_table,
    review_report,
)

__all__ = ["DemoResult", "register_cli", "run_demo"]

CN = timezone(timedelta(hours=8))
YEAR = 2024
ORG = "demo_city_cppcc"
CATEGORIES = ["economy", "politics", "culture", "society", "ecology"]
UNITS = [
    "urban_management",
    "transport",
    "traffic_police",
    "housing",
    "natural_resources",
    "education",
    "health",
    "civil_affairs",
    "culture_tourism",
    "water",
    "ecology_env",
    "market_regulation",
    "agriculture",
    "power_supply",
    "human_resources",
    "united_front",
]
FORMS = [
    "thematic_standing_meeting",
    "thematic_consultation",
    "bimonthly_forum",
    "chair_interview",
    "inspection_consultation",
    "counterpart_consultation",
    "sector_consultation",
    "proposal_handling_consultation",
    "online_consultation",
]
TOPIC_TITLES = [
    "农村环境综合整治",
    "助推航空港经济区发展",
    "加强农村社会治理",
    "服务民营经济发展",
    "破解“上学难、上好学难”",
    "破解“住房难”",
    "破解“养老难”",
    "缓解“出行难、停车难”与智慧交通建设",
    "养老服务业发展",
    "“公交都市”建设",
    "现代高效农业示范园区建设",
    "美丽乡村与生态建设",
    "扶贫攻坚与同步小康",
    "社区容量过大亟待调整分设",
    "校园周边食品安全整治",
    "非公经济组织党建工作",
    "城区共享单车停放管理",
    "老旧小区加装电梯",
    "电动自行车充电设施建设",
    "低空经济发展",
]
SUBJECTS = [
    "停车",
    "学位",
    "养老",
    "菜市场",
    "公交线路",
    "雨污分流",
    "老旧小区",
    "托育",
    "就业",
    "文旅",
    "电梯",
    "充电桩",
]
GROUNDS = ["personal", "no_concrete_suggestion", "in_litigation", "advertising"]


def who(name: str, *roles: str, unit: str | None = None) -> Actor:
    return Actor.of(name, *roles, org=ORG, unit=unit)


OFFICE = who("cppcc-office", "cppcc_office")
PARTY_OFFICE = who("party-office", "party_office")
GOV_OFFICE = who("gov-office", "government_office")
CHAIRS = who("chairs", "chairpersons_council")
PSC = who("psc", "party_standing_committee")
STANDING = who("standing", "standing_committee")
COMMITTEE = who("proposal-committee", "proposal_committee")
SPECIAL = who("econ-committee", "special_committee")
SUPERVISION = who("supervision", "supervision_office")
OPINION_OFFICE = who("info-centre", "opinion_office")
APPROVER = who("deputy-sg", "opinion_approver")
SIGNER = who("sg", "opinion_signer")


def unit_actor(name: str) -> Actor:
    return who(f"staff-{name}", "handling_unit", unit=name)


def dept_actor(name: str) -> Actor:
    return who(f"dept-{name}", "department", unit=name)


def day(d: date, hour: int = 10) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=CN)


@dataclass
class DemoResult:
    """What a run did: wall time, transitions (history rows), database size, reports, refusals."""

    db: Path
    seconds: float
    transitions: int
    instances: int
    db_bytes: int
    refusals: list[str] = field(default_factory=list)
    reports: dict[str, Report] = field(default_factory=dict)
    verify_problems: list[dict[str, Any]] = field(default_factory=list)


Life = Iterator[datetime]


class _Sim:
    """A queue of lives (generators): each yields when it next acts; the clock follows."""

    def __init__(self, engine: Engine, clock: FixedClock, rng: random.Random) -> None:
        self.engine = engine
        self.clock = clock
        self.rng = rng
        self.queue: list[tuple[datetime, int, str, Life]] = []
        self.seq = 0
        self.refusals: list[str] = []
        self.last_tick: date | None = None
        self.on_step: Callable[[str], None] = lambda kind: None

    def add(self, kind: str, life: Life) -> None:
        try:
            when = next(life)
        except StopIteration:
            return
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, kind, life))

    def run(self, until: datetime) -> None:
        while self.queue and self.queue[0][0] <= until:
            when, _, kind, life = heapq.heappop(self.queue)
            self._tick_to(when)
            self.clock.set(when)
            try:
                nxt = next(life)
            except StopIteration:
                self.on_step(kind)
                continue
            except CommandRefused as e:
                self.refusals.append(f"{kind} {when:%m-%d}: {e}")
                self.on_step(kind)
                continue
            self.seq += 1
            heapq.heappush(self.queue, (max(nxt, when), self.seq, kind, life))
        self._tick_to(until)
        self.clock.set(until)

    def _tick_to(self, when: datetime) -> None:
        # the timers of every day up to this moment fire at 08:00 of each day
        today = when.date()
        if self.last_tick is None:
            self.last_tick = today
            return
        d = self.last_tick + timedelta(days=1)
        while d <= today:
            moment = day(d, 8)
            if moment <= when:
                self.clock.set(moment)
                while self.engine.tick(moment).fired:
                    pass
                self.last_tick = d
            d += timedelta(days=1)


# -- the lives -----------------------------------------------------------------------------------


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


def plan_life(sim: _Sim, topics: int, held: int, instructed: int) -> Life:
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
    for rank, idx in enumerate(order):
        tid = kids[idx].id
        if rank < held:
            meeting = MEETING_DAYS[rank % len(MEETING_DAYS)]
            sim.add("topic", topic_life(sim, tid, meeting, brief=rank < instructed))
        else:
            sim.add("topic", carried_over_life(sim, tid))
    yield day(date(YEAR, 12, 27))
    engine.fire(pid, "close_year", OFFICE, {"summary": f"全年计划议题{topics}个"})


def carried_over_life(sim: _Sim, tid: str) -> Life:
    yield day(date(YEAR, 2, 26))
    sim.engine.fire(tid, "approve", OFFICE)
    yield day(date(YEAR, 12, 16))
    sim.engine.fire(tid, "carry_over", OFFICE, reason="条件尚不成熟，转入下年度")


def topic_life(sim: _Sim, tid: str, meeting: date, *, brief: bool) -> Life:
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


def proposal_life(sim: _Sim, n: int, main_ids: list[str]) -> Life:
    engine, rng = sim.engine, sim.rng
    # session proposals in January, the rest through the year until September
    if rng.random() < 0.6:
        d0 = date(YEAR, 1, 8) + timedelta(days=rng.randrange(20))
    else:
        d0 = date(YEAR, 3, 1) + timedelta(days=rng.randrange(200))
    proposer_id = f"m{rng.randrange(180):03d}"
    kind = rng.choices(["individual", "joint", "collective"], [60, 30, 10])[0]
    proposer = who(proposer_id, "party_org" if kind == "collective" else "member")
    subject = SUBJECTS[rng.randrange(len(SUBJECTS))]
    category = CATEGORIES[rng.randrange(5)]
    yield day(d0, 9)
    data: dict[str, Any] = {
        "title": f"关于改善{subject}问题的建议（{n + 1}）",
        "first_proposer": proposer_id,
    }
    if kind == "collective":
        data["proposer_kind"] = "collective"
    pid = engine.start("proposal", data, proposer).id
    if kind == "joint":
        co = sorted({f"m{rng.randrange(180):03d}" for _ in range(2)} - {proposer_id}) or ["m999"]
        engine.fire(pid, "invite_cosigners", proposer, {"co_proposers": co})
        yield day(d0, 15)
        for cosigner in co:
            engine.fire(pid, "cosign", who(cosigner, "member"))
    yield day(d0 + timedelta(days=1))
    engine.fire(pid, "submit", proposer, {"category": category})
    yield day(d0 + timedelta(days=4))
    engine.fire(pid, "start_review", COMMITTEE)
    roll = rng.random()
    if roll < 0.05:
        engine.fire(
            pid,
            "reject",
            COMMITTEE,
            {"ground": GROUNDS[rng.randrange(len(GROUNDS))]},
            reason="不符合立案条件",
        )
        return
    if roll < 0.09:
        engine.fire(
            pid, "convert", COMMITTEE, {"target": "opinion_report", "proposer_consented": True}
        )
        return
    if roll < 0.12 and main_ids:
        engine.fire(
            pid, "merge_into", COMMITTEE, {"main_id": main_ids[rng.randrange(len(main_ids))]}
        )
        return
    if roll < 0.14:
        engine.fire(pid, "withdraw", proposer, reason="提案人申请撤案")
        return
    engine.fire(pid, "file", COMMITTEE, {"number": f"{YEAR}{n + 1:04d}"})
    main_ids.append(pid)
    yield day(d0 + timedelta(days=10))
    mode = rng.choices(["sole", "lead_assisting", "split"], [70, 20, 10])[0]
    units = rng.sample(UNITS, 1 if mode == "sole" else rng.choice([2, 2, 3]))
    payload: dict[str, Any] = {"mode": mode, "units": units}
    if mode == "lead_assisting":
        payload["lead_unit"] = units[0]
    engine.fire(pid, "assign", SUPERVISION, payload)
    assigned = d0 + timedelta(days=10)
    late = rng.random() < 0.08
    release = rng.random() < 0.08
    # units acknowledge, or one asks to be released and is replaced
    yield day(assigned + timedelta(days=2))
    kids = [c for c in engine.children(pid) if not c.final]
    if release:
        victim = kids[rng.randrange(len(kids))]
        engine.fire(
            victim.id,
            "request_return",
            unit_actor(victim.unit or ""),
            {"suggested_unit": "另一部门"},
            reason="非本单位职责",
        )
        yield day(assigned + timedelta(days=4))
        options = [u for u in UNITS if u not in {c.unit for c in engine.children(pid)}]
        engine.fire(
            victim.id,
            "approve_return",
            SUPERVISION,
            {"new_unit": options[rng.randrange(len(options))]},
        )
    rounds = 0
    while True:
        start = sim.clock.now().date()
        yield day(start + timedelta(days=2))
        kids = [c for c in engine.children(pid) if not c.final]
        for c in kids:
            a = unit_actor(c.unit or "")
            if c.state == "notified":
                engine.fire(c.id, "acknowledge", a, {"contact_person": "联络员"})
            engine.fire(
                c.id,
                "contact_proposer",
                a,
                {"mode": rng.choice(["face_to_face", "phone", "forum"])},
            )
        work = rng.randrange(100, 125) if late else rng.randrange(30, 80)
        yield day(start + timedelta(days=work))
        kids = [c for c in engine.children(pid) if not c.final]
        assisting = [c for c in kids if c.data["role"] == "assisting"]
        repliers = [c for c in kids if c.data["role"] != "assisting"]
        for c in assisting:
            engine.fire(
                c.id,
                "send_assist_opinion",
                unit_actor(c.unit or ""),
                {"opinion": "同意主办单位意见"},
            )
        cls = rng.choices(["A", "B", "C"], [31, 50, 19])[0]
        for c in repliers:
            engine.fire(
                c.id,
                "draft_reply",
                unit_actor(c.unit or ""),
                {"reply_class": cls, "reply_text": "答复函", "signer": "局长"},
            )
        for c in assisting:
            engine.fire(c.id, "countersign", unit_actor(c.unit or ""))
        yield day(start + timedelta(days=work + 1))
        for c in repliers:
            engine.fire(c.id, "submit_reply", unit_actor(c.unit or ""))
        yield day(start + timedelta(days=work + 3))
        for c in repliers:
            engine.fire(c.id, "approve_reply", SUPERVISION)
        if rng.random() < 0.05:
            return  # never evaluated: the evaluation window closes it
        yield day(start + timedelta(days=work + 8))
        if mode == "split":
            for c in repliers:
                engine.fire(
                    pid, "evaluate_unit", proposer, {"unit": c.unit, "satisfaction": "satisfied"}
                )
        if rounds == 0 and rng.random() < 0.08:
            engine.fire(pid, "evaluate", proposer, {"satisfaction": "unsatisfied"})
            rounds += 1
            late = False
            continue
        feeling = rng.choices(["satisfied", "basically_satisfied"], [75, 25])[0]
        engine.fire(pid, "evaluate", proposer, {"satisfaction": feeling})
        return


def opinion_life(sim: _Sim, n: int) -> Life:
    engine, rng = sim.engine, sim.rng
    d0 = date(YEAR, 2, 20) + timedelta(days=rng.randrange(230))
    reporter = who(f"liaison-{rng.randrange(12):02d}", "info_liaison")
    yield day(d0)
    subject = SUBJECTS[rng.randrange(len(SUBJECTS))]
    rid = engine.start(
        "opinion_report",
        {
            "title": f"关于{subject}的社情民意（{n + 1}）",
            "body": f"群众反映{subject}问题，建议有关部门研究解决。",
            "reporter": reporter.id,
            "reporter_kind": "info_liaison",
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


def appraisal_life(sim: _Sim) -> Life:
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


# -- the run -------------------------------------------------------------------------------------


def _remove(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(db) + suffix)
        if p.exists():
            p.unlink()


def run_demo(
    db: Path = Path("xieshang-demo.db"),
    *,
    seed: int = 2024,
    proposals: int = 240,
    topics: int = 51,
    opinions: int = 26,
    console: Console | None = None,
    progress: bool = True,
    calendar: CalendarChain | None = None,
) -> DemoResult:
    """Run the simulated year into a fresh database at ``db``; see the module docstring.

    ``calendar`` is the deployment's working-day calendar (the package tables when None).
    """
    from xieshang.adapters.sql import open_store

    began = time.perf_counter()
    _remove(db)
    url = f"sqlite:///{db}"
    store = open_store(url, synchronous="NORMAL")
    counter = iter(range(1, 10**9))
    clock = FixedClock(day(date(YEAR, 1, 2), 9))
    engine = Engine(
        store,
        bundled(),
        clock,
        ids=lambda: f"{seed:x}-{next(counter):06d}",
        calendar=calendar,
    )
    rng = random.Random(seed)
    sim = _Sim(engine, clock, rng)
    held = min(topics, max(1, round(topics * 0.6)))
    instructed = min(held, 9)
    sim.add("plan", plan_life(sim, topics, held, instructed))
    main_ids: list[str] = []
    for n in range(proposals):
        sim.add("proposal", proposal_life(sim, n, main_ids))
    for n in range(opinions):
        sim.add("opinion", opinion_life(sim, n))
    sim.add("appraisal", appraisal_life(sim))

    totals = {"plan": 1 + topics, "proposal": proposals, "opinion": opinions, "appraisal": 1}
    labels = {
        "plan": "年度协商计划与议题",
        "proposal": "提案办理",
        "opinion": "社情民意信息",
        "appraisal": "民主评议",
    }
    end = day(date(YEAR, 12, 31), 18)
    if progress:
        bar = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        with bar:
            tasks = {k: bar.add_task(labels[k], total=totals[k]) for k in totals}
            month_task = bar.add_task("模拟时钟（月）", total=12)
            sim.on_step = lambda kind: bar.advance(tasks["plan" if kind == "topic" else kind])
            for month in range(1, 13):
                sim.run(day(date(YEAR, month + 1, 1), 0) if month < 12 else end)
                bar.update(month_task, completed=month)
    else:
        sim.run(end)

    reports = {
        "review": review_report(engine, YEAR, ORG),
        "handling": handling_report(engine, YEAR, ORG),
        "plan": plan_report(engine, YEAR, ORG),
        "opinions": opinions_report(engine, YEAR, ORG),
    }
    problems = engine.verify()
    with _counting(url) as conn:
        transitions = conn.execute(sa.text("SELECT count(*) FROM history")).scalar_one()
        instances = conn.execute(sa.text("SELECT count(*) FROM instances")).scalar_one()
    store.close()
    return DemoResult(
        db=db,
        seconds=time.perf_counter() - began,
        transitions=int(transitions),
        instances=int(instances),
        db_bytes=sum(
            os.path.getsize(str(db) + s) for s in ("", "-wal") if os.path.exists(str(db) + s)
        ),
        refusals=sim.refusals,
        reports=reports,
        verify_problems=problems,
    )


class _counting:
    """A short-lived connection for the closing counts."""

    def __init__(self, url: str) -> None:
        from xieshang.adapters.sql import engine_for

        self.engine: sa.Engine = engine_for(url)[0]

    def __enter__(self) -> sa.Connection:
        self.conn: sa.Connection = self.engine.connect()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
        self.engine.dispose()


def register_cli(app: typer.Typer) -> None:
    """Add ``xieshang demo [--db PATH] [--seed N] [--proposals N] [--topics N]``."""

    @app.command("demo")
    def demo_command(
        ctx: typer.Context,
        db: Annotated[
            Path, typer.Option("--db", help="The SQLite file to create (replaced).")
        ] = Path("xieshang-demo.db"),
        seed: Annotated[int, typer.Option("--seed", help="The seed of the simulation.")] = 2024,
        proposals: Annotated[int, typer.Option("--proposals", help="How many proposals.")] = 240,
        topics: Annotated[int, typer.Option("--topics", help="Topics in the annual plan.")] = 51,
        opinions: Annotated[int, typer.Option("--opinions", help="Opinion reports.")] = 26,
        as_json: Annotated[
            bool, typer.Option("--json", help="The reports as JSON, no progress.")
        ] = False,
    ) -> None:
        """Simulate a year of a city 政协 in a fresh SQLite database, then print its reports."""
        from xieshang.adapters.settings import load_calendar

        console = Console()
        path = getattr(ctx.find_root().obj, "calendar", None) or os.environ.get("XIESHANG_CALENDAR")
        try:
            calendar = load_calendar(path)
        except XieshangError as e:
            typer.echo(f"error: {e.message}", err=True)
            raise typer.Exit(1) from None
        result = run_demo(
            db,
            seed=seed,
            proposals=proposals,
            topics=topics,
            opinions=opinions,
            console=console,
            progress=not as_json,
            calendar=calendar,
        )
        if as_json:
            import json

            typer.echo(
                json.dumps(
                    {
                        "reports": {k: r.to_dict() for k, r in result.reports.items()},
                        "transitions": result.transitions,
                        "instances": result.instances,
                        "refusals": result.refusals,
                        "verified": result.verify_problems == [],
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                    indent=2,
                )
            )
            raise typer.Exit(0 if result.verify_problems == [] else 1)
        for rep in result.reports.values():
            console.print(render_table(rep))
        if result.refusals:
            console.print(f"[yellow]{len(result.refusals)} steps refused by the workflows:[/]")
            for line in result.refusals[:10]:
                console.print(f"  {line}")
        if result.verify_problems:
            console.print(f"[red]✗ audit chain: {len(result.verify_problems)} instances broken[/]")
            raise typer.Exit(1)
        console.print(f"[green]✓[/] audit chain verified for {result.instances} instances")
        console.print(
            f"{result.seconds:.1f} s wall time · {result.transitions} transitions · "
            f"{result.db_bytes / 1_000_000:.1f} MB in {result.db}"
        )
