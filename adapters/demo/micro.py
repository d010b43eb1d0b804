"""Micro-consultations (小微协商) at the members' workstations: the seven steps, or a problem
beyond the community escalated as a proposal that is then filed and handled, or dropped."""

from __future__ import annotations

from datetime import date, timedelta

from .cast import COMMITTEE, SUBJECTS, UNITS, YEAR, day, dept_actor, who
from .proposals import handled_life
from .sim import Life, Sim

__all__ = ["micro_life"]

COMMUNITIES = ["云岩区中华路街道", "南明区花果园街道", "观山湖区金华园街道", "花溪区贵筑街道"]
CHANNELS = ["reception", "visit", "online", "survey", "mailbox"]
WORKSTATION = who("workstation", "member_workstation")


def micro_life(sim: Sim, n: int) -> Life:
    """The ``n``-th item of the year: every sixth is escalated as a proposal (the fourth of six)
    or dropped (the sixth of six); the rest go through the seven steps."""
    engine, rng = sim.engine, sim.rng
    d0 = date(YEAR, 2, 19) + timedelta(days=17 * n + rng.randrange(7))
    resident = who(f"resident-{n:02d}", "public")
    member = who(f"m{rng.randrange(180):03d}", "member")
    subject = SUBJECTS[rng.randrange(len(SUBJECTS))]
    yield day(d0)
    mid = engine.start(
        "micro_consultation",
        {
            "title": f"小区{subject}问题",
            "description": f"居民反映小区{subject}问题，希望协商解决",
            "raised_by": resident.id,
            "community": COMMUNITIES[n % len(COMMUNITIES)],
            "channel": CHANNELS[rng.randrange(len(CHANNELS))],
        },
        resident,
    ).id
    if n % 6 == 5:
        yield day(d0 + timedelta(days=3))
        engine.fire(mid, "drop", WORKSTATION, reason="已通过信访渠道办理，不再协商")
        return
    yield day(d0 + timedelta(days=5))
    engine.fire(mid, "confirm_topic", WORKSTATION, {"party_org_agreed": True})
    yield day(d0 + timedelta(days=12))
    engine.fire(mid, "prepare", member, {"research": "走访住户，查看现场"})
    yield day(d0 + timedelta(days=20))
    participants = [member.id, resident.id, "社区居委会", "物业公司", "街道办"][: 3 + n % 3]
    engine.fire(mid, "consult", WORKSTATION, {"participants": participants, "minutes": "议事记录"})
    if n % 6 == 3:
        yield day(d0 + timedelta(days=22))
        engine.fire(
            mid,
            "escalate",
            member,
            {"target": "proposal", "body": f"关于解决{subject}问题的建议"},
            reason="涉及多个部门，超出社区职权",
        )
        yield from _proposal(sim, mid, member.id, d0 + timedelta(days=22))
        return
    owners = rng.sample(UNITS, 1 + n % 2)
    due = (d0 + timedelta(days=60)).isoformat()
    tasks = [
        {"task": f"{subject}整改{k + 1}", "owner": u, "due_date": due} for k, u in enumerate(owners)
    ]
    yield day(d0 + timedelta(days=21))
    engine.fire(mid, "agree", WORKSTATION, {"consensus": "形成共识", "tasks": tasks})
    engine.fire(mid, "assign_tasks", WORKSTATION)
    for k, t in enumerate(tasks):
        yield day(d0 + timedelta(days=35 + 7 * k))
        engine.fire(
            mid,
            "report_progress",
            dept_actor(t["owner"]),
            {"task": t["task"], "progress": "已完成", "done": True},
        )
    yield day(d0 + timedelta(days=55))
    feeling = rng.choices(["satisfied", "basically_satisfied", "unsatisfied"], [70, 25, 5])[0]
    engine.fire(mid, "evaluate", WORKSTATION, {"evaluation": feeling})


def _proposal(sim: Sim, mid: str, proposer_id: str, d0: date) -> Life:
    """The escalated proposal: its member submits it, the committee files it, units handle it."""
    engine = sim.engine
    proposer = who(proposer_id, "member")
    pid = next(c.id for c in engine.children(mid) if c.workflow == "proposal")
    yield day(d0 + timedelta(days=2))
    engine.fire(pid, "submit", proposer, {"category": "society"})
    yield day(d0 + timedelta(days=5))
    engine.fire(pid, "start_review", COMMITTEE)
    engine.fire(pid, "file", COMMITTEE, {"number": f"{YEAR}W{pid[-4:]}"})
    yield from handled_life(sim, pid, proposer, d0 + timedelta(days=5))
