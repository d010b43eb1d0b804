"""The life of a proposal: filed or not, assigned, handled by its units, evaluated.

The phases are generators joined with ``yield from``, so the random draws and the moments come
in the same order as in one long life: a seed gives the same year.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from xieshang import Actor, Instance

from .cast import (
    CATEGORIES,
    COMMITTEE,
    GROUNDS,
    SUBJECTS,
    SUPERVISION,
    UNITS,
    YEAR,
    day,
    unit_actor,
    who,
)  # fmt: skip
from .sim import Life, Sim

__all__ = ["handled_life", "proposal_life"]

Phase = Generator[datetime, None, bool]  # yields moments; returns whether the life goes on


@dataclass
class _Proposal:
    id: str
    proposer: Actor
    filed_on: date
    mode: str = "sole"


def proposal_life(sim: Sim, n: int, main_ids: list[str]) -> Life:
    """One proposal of the year; ``n`` numbers it, ``main_ids`` are the filed ones to merge into."""
    p = yield from _reviewed(sim, n, main_ids)
    if p is None:
        return
    yield from handled_life(sim, p.id, p.proposer, p.filed_on)


def handled_life(sim: Sim, pid: str, proposer: Actor, filed_on: date) -> Life:
    """A filed proposal from its assignment to its evaluation."""
    p = _Proposal(pid, proposer, filed_on)
    yield from _assigned(sim, p)
    late = sim.rng.random() < 0.08
    # half of the slow units ask in time for an extension, and reply within it
    extend = late and sim.rng.random() < 0.5
    release = sim.rng.random() < 0.08
    yield from _units_settled(sim, p, release)
    rounds = 0
    while True:
        if not (yield from _handled(sim, p, late, extend)):
            return  # never evaluated: the evaluation window closes it
        _others_evaluate(sim, p)
        if rounds == 0 and sim.rng.random() < 0.08:
            sim.engine.fire(p.id, "evaluate", p.proposer, {"satisfaction": "unsatisfied"})
            rounds += 1
            late = extend = False
            continue
        feeling = sim.rng.choices(["satisfied", "basically_satisfied"], [75, 25])[0]
        sim.engine.fire(p.id, "evaluate", p.proposer, {"satisfaction": feeling})
        return


def _others_evaluate(sim: Sim, p: _Proposal) -> None:
    """The proposers besides the first (co-proposers, proposers of merged proposals) evaluate
    first; under the default rule the first proposer's evaluation then decides."""
    engine = sim.engine
    main = engine.get(p.id)
    round_ = main.data["rehandle_count"]
    replied = [
        c.unit for c in engine.children(p.id) if c.state == "replied" and c.data["round"] == round_
    ]
    for other in main.data["proposers"][1:]:
        actor = who(other, "member")
        if p.mode == "split":
            for name in replied:
                engine.fire(
                    p.id, "evaluate_unit", actor, {"unit": name, "satisfaction": "satisfied"}
                )
        engine.fire(p.id, "evaluate", actor, {"satisfaction": "satisfied"})


def _reviewed(sim: Sim, n: int, main_ids: list[str]) -> Generator[datetime, None, _Proposal | None]:
    """Drafted, cosigned, submitted and reviewed: the filed proposal, or None when it was
    rejected, converted, merged or withdrawn."""
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
    channel = rng.choices(["online", "paper", "session"], [80, 8, 12])[0]
    yield day(d0 + timedelta(days=1))
    engine.fire(pid, "submit", proposer, {"category": category, "channel": channel})
    yield day(d0 + timedelta(days=4))
    engine.fire(pid, "start_review", COMMITTEE)
    if not _filed(sim, pid, proposer, n, main_ids):
        return None
    return _Proposal(pid, proposer, d0)


def _filed(sim: Sim, pid: str, proposer: Actor, n: int, main_ids: list[str]) -> bool:
    """The committee's decision: filed (True), or rejected, converted, merged, withdrawn."""
    engine, rng = sim.engine, sim.rng
    roll = rng.random()
    if roll < 0.05:
        engine.fire(
            pid,
            "reject",
            COMMITTEE,
            {"ground": GROUNDS[rng.randrange(len(GROUNDS))]},
            reason="不符合立案条件",
        )
        return False
    if roll < 0.09:
        # not filed for want of a concrete suggestion; the proposer agrees to an opinion report
        engine.fire(
            pid,
            "convert",
            COMMITTEE,
            {"ground": "no_concrete_suggestion", "proposer_consented": True},
        )
        return False
    # a proposal merges only into one that is filed and not yet assigned
    mains = [m for m in main_ids if engine.get(m).state == "filed"] if roll < 0.12 else []
    if mains:
        engine.fire(pid, "merge_into", COMMITTEE, {"main_id": mains[rng.randrange(len(mains))]})
        return False
    if roll < 0.14:
        engine.fire(pid, "withdraw", proposer, reason="提案人申请撤案")
        return False
    engine.fire(pid, "file", COMMITTEE, {"number": f"{YEAR}{n + 1:04d}"})
    main_ids.append(pid)
    return True


def _assigned(sim: Sim, p: _Proposal) -> Life:
    """The supervision office assigns one unit, a lead and assisting units, or split units."""
    rng = sim.rng
    yield day(p.filed_on + timedelta(days=10))
    p.mode = rng.choices(["sole", "lead_assisting", "split"], [70, 20, 10])[0]
    units = rng.sample(UNITS, 1 if p.mode == "sole" else rng.choice([2, 2, 3]))
    payload: dict[str, Any] = {"mode": p.mode, "units": units}
    if p.mode == "lead_assisting":
        payload["lead_unit"] = units[0]
    sim.engine.fire(p.id, "assign", SUPERVISION, payload)


def _open_children(sim: Sim, pid: str) -> list[Instance]:
    return [c for c in sim.engine.children(pid) if not c.final]


def _units_settled(sim: Sim, p: _Proposal, release: bool) -> Life:
    """Units acknowledge, or one asks to be released and is replaced."""
    engine, rng = sim.engine, sim.rng
    assigned = p.filed_on + timedelta(days=10)
    yield day(assigned + timedelta(days=2))
    kids = _open_children(sim, p.id)
    if not release:
        return
    victim = kids[rng.randrange(len(kids))]
    engine.fire(
        victim.id,
        "request_return",
        unit_actor(victim.unit or ""),
        {"suggested_unit": "另一部门"},
        reason="非本单位职责",
    )
    yield day(assigned + timedelta(days=4))
    options = [u for u in UNITS if u not in {c.unit for c in engine.children(p.id)}]
    engine.fire(
        victim.id,
        "approve_return",
        SUPERVISION,
        {"new_unit": options[rng.randrange(len(options))]},
    )


def _handled(sim: Sim, p: _Proposal, late: bool, extend: bool) -> Phase:
    """One round of handling: contact, the assisting units' opinions (most within their month),
    an extension for a slow unit that asks, the reply (assisting units countersign), approval;
    then the split units' evaluations. False when the proposer never evaluates."""
    engine, rng = sim.engine, sim.rng
    start = sim.clock.now().date()
    yield day(start + timedelta(days=2))
    for c in _open_children(sim, p.id):
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
    opinion = rng.randrange(5, 25) if rng.random() < 0.8 else rng.randrange(32, 55)
    yield day(start + timedelta(days=min(work, opinion)))
    for c in _open_children(sim, p.id):
        if c.data["role"] == "assisting":
            engine.fire(
                c.id,
                "send_assist_opinion",
                unit_actor(c.unit or ""),
                {"opinion": "同意主办单位意见"},
            )
    if extend:
        yield from _extended(sim, p, start)
    yield day(start + timedelta(days=work))
    kids = _open_children(sim, p.id)
    assisting = [c for c in kids if c.data["role"] == "assisting"]
    repliers = [c for c in kids if c.data["role"] != "assisting"]
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
        return False
    yield day(start + timedelta(days=work + 8))
    if p.mode == "split":
        for c in repliers:
            engine.fire(
                p.id, "evaluate_unit", p.proposer, {"unit": c.unit, "satisfaction": "satisfied"}
            )
    return True


def _extended(sim: Sim, p: _Proposal, start: date) -> Life:
    """A unit asks for 45 more days two months into the handling; the office approves, and the
    open units' due dates move with the proposal's."""
    yield day(start + timedelta(days=60))
    data = sim.engine.get(p.id).data
    new_due = date.fromisoformat(data["reply_due"]) + timedelta(days=45)
    asker = unit_actor(data.get("lead_unit") or data["units"][0])
    sim.engine.fire(
        p.id, "request_extension", asker, {"new_due": new_due.isoformat()}, reason="需协调专项资金"
    )
    yield day(start + timedelta(days=61))
    sim.engine.fire(p.id, "approve_extension", SUPERVISION)
