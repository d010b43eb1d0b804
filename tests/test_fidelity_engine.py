"""The engine follows practice: soft rules warn, an approved plan revision applies itself,
reports follow the business year, and available() and refusals say what an actor may do.

Every scenario runs on SQLite and PostgreSQL (the ``sql_url`` fixture), through the bundled
workflows, with the clock moved by the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from store_contract import sql_connection

from xieshang import (
    Actor,
    Engine,
    FixedClock,
    HistoryEntry,
    Registry,
    TransitionNotAllowed,
)
from xieshang.adapters.http import create_app
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.reports import plan_report, review_report
from xieshang.adapters.sql import open_store
from xieshang.workflows import load_registry

CN = timezone(timedelta(hours=8))
ORG = "demo_city_cppcc"


def who(name: str, *roles: str, unit: str | None = None) -> Actor:
    return Actor.of(name, *roles, org=ORG, unit=unit)


OFFICE = who("office", "cppcc_office")
PARTY_OFFICE = who("party-office", "party_office")
CHAIRS = who("chairs", "chairpersons_council")
PSC = who("psc", "party_standing_committee")
COMMITTEE = who("econ", "special_committee")
MEMBER = who("m1", "member")

LATE_NOTICE = (
    "会议通知须在会议日期（2024-06-20）前至少15个工作日发出；现距会议只有10个工作日 / "
    "the notice must go out at least 15 working days before the meeting on 2024-06-20"
)


def at(day: str, hour: int = 10) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), CN).replace(hour=hour)


class World:
    """An engine on a SQL store, with a clock the test moves."""

    def __init__(self, url: str, registry: Registry) -> None:
        self.url = url
        self.clock = FixedClock(at("2024-01-08"))
        self.store = open_store(url)
        self.engine = Engine(self.store, registry, self.clock)

    def on(self, day: str, hour: int = 10) -> Engine:
        self.clock.set(at(day, hour))
        return self.engine


@pytest.fixture
def world(sql_url: str, registry: Registry) -> Iterator[World]:
    w = World(sql_url, registry)
    yield w
    w.store.close()


@pytest.fixture
def strict(sql_url: str) -> Iterator[World]:
    """A world whose deployment refuses late notices (``notice_late: refuse``)."""
    w = World(sql_url, load_registry(params={"consultation_topic": {"notice_late": "refuse"}}))
    yield w
    w.store.close()


def topic(title: str, tid: str, due: str = "2024-11-30") -> dict[str, Any]:
    return {
        "id": tid,
        "title": title,
        "category": "society",
        "form": "bimonthly_forum",
        "lead_leader": "王副主席",
        "responsible_department": "社会和法制委员会",
        "responsible_person": "李主任",
        "due_date": due,
    }


TOPICS = [
    topic("农村环境综合整治", "t1"),
    topic("破解上学难", "t2"),
    topic("老旧小区加装电梯", "t3"),
]


def plan_in_force(w: World, year: int = 2024, start: str = "2024-01-08") -> str:
    """A plan of ``year`` approved with TOPICS, each topic approved; the clock stays on the day
    of the approval."""
    engine = w.on(start)
    pid = engine.start("annual_consultation_plan", {"year": year}, OFFICE).id
    engine.fire(pid, "suggest_topic", MEMBER, {"title": "农村环境综合整治"})
    engine.fire(pid, "close_collection", OFFICE)
    engine.fire(pid, "submit_for_joint_revision", OFFICE, {"topics": TOPICS})
    engine.fire(pid, "submit_to_chairs", PARTY_OFFICE)
    engine.fire(pid, "chairs_reviewed", CHAIRS, {"decision": "agree"})
    engine.fire(pid, "approve_plan", PSC, {"approved": ["t1", "t2", "t3"]})
    for kid in engine.children(pid):
        engine.fire(kid.id, "approve", OFFICE)
    return pid


def topic_id(engine: Engine, pid: str, tid: str) -> str:
    return next(c.id for c in engine.children(pid) if c.data["topic_id"] == tid)


def revise(w: World, pid: str, cancelled: list[str], added: list[dict[str, Any]]) -> Engine:
    """Propose and review a revision up to its approval (not approved yet)."""
    engine = w.on("2024-04-01")
    payload = {"cancelled": cancelled, "added": added}
    engine.fire(pid, "propose_revision", PARTY_OFFICE, payload, reason="市委新部署")
    engine.fire(pid, "revise_jointly", PARTY_OFFICE)
    engine.fire(pid, "chairs_reviewed", CHAIRS, {"decision": "agree"})
    return engine


def preparing(w: World) -> str:
    """A standalone topic in preparation for a meeting on 2024-06-20."""
    engine = w.on("2024-02-01")
    tid = engine.start("consultation_topic", {"title": "智慧交通建设"}, MEMBER).id
    engine.fire(tid, "include", OFFICE, {"form": "bimonthly_forum", "category": "society"})
    breakdown = {
        "lead_leader": "张副主席",
        "responsible_department": "市交通运输局",
        "responsible_person": "赵处长",
        "due_date": "2024-10-31",
    }
    engine.fire(tid, "approve", PSC, breakdown)
    w.on("2024-05-20").fire(tid, "start_preparation", COMMITTEE, {"meeting_date": "2024-06-20"})
    return tid


def rewrite_chain(url: str, engine: Engine, iid: str, change: dict[int, dict[str, Any]]) -> None:
    """Rewrite fields of some rows of an instance and recompute every hash after them, as a
    database writer who knows the hashing would: only the replay can tell."""
    prev = ""
    with sql_connection(url) as (conn, mark):
        for row in engine.history(iid):
            body = {**row.to_dict(), **change.get(row.seq, {}), "prev_hash": prev}
            body.pop("hash")
            new = HistoryEntry(**body).sealed()
            sql = (
                "UPDATE history SET payload = ?, warnings = ?, prev_hash = ?, hash = ? "
                "WHERE instance_id = ? AND seq = ?"
            )
            warnings = json.dumps(new.warnings) if new.warnings is not None else None
            params = (json.dumps(new.payload), warnings, new.prev_hash, new.hash, iid, new.seq)
            conn.execute(sql.replace("?", mark), params)
            prev = new.hash
        conn.execute(
            "UPDATE instances SET head_hash = ? WHERE id = ?".replace("?", mark), (prev, iid)
        )
    engine.store.load(iid, fresh=True)


# -- 1. soft rules ---------------------------------------------------------------------------


def test_a_late_notice_goes_out_and_its_row_and_event_carry_the_warning(world: World) -> None:
    """A notice 10 working days before the meeting (15 are due) is sent; the row records
    notice_late with its message, a consultation_topic.warning event announces it, and the
    history verifies."""
    tid = preparing(world)
    engine = world.on("2024-06-05")
    done = engine.fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]})
    assert (done.state, done.data["notice_sent_on"]) == ("preparing", "2024-06-05")
    row = engine.history(tid)[-1]
    assert (row.trigger, row.warnings) == (
        "send_notice",
        [{"code": "notice_late", "message": LATE_NOTICE}],
    )
    events = [e for e in engine.store.outbox(tid) if e.seq == row.seq]
    assert [e.type for e in events] == [
        "xieshang.instance.transitioned",
        "xieshang.consultation_topic.notice_sent",
        "xieshang.consultation_topic.warning",
    ]
    data = events[-1].body["data"]
    assert (data["code"], data["message"], data["trigger"]) == (
        "notice_late",
        LATE_NOTICE,
        "send_notice",
    )
    assert engine.verify() == []


def test_a_notice_on_time_records_no_warning(world: World) -> None:
    """16 working days before the meeting, the notice row records no warning and no warning
    event goes out."""
    tid = preparing(world)
    engine = world.on("2024-05-27")
    engine.fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]})
    assert engine.history(tid)[-1].warnings is None
    assert not any(e.type.endswith(".warning") for e in engine.store.outbox(tid))


def test_a_deployment_that_refuses_late_notices_refuses_with_the_rule(strict: World) -> None:
    """With notice_late: refuse, the late notice is an ordinary refusal naming the rule and the
    same message; nothing is written, and what the office may do instead is listed."""
    tid = preparing(strict)
    engine = strict.on("2024-06-05")
    before = (engine.get(tid).version, len(engine.store.outbox(tid)))
    with pytest.raises(TransitionNotAllowed) as refused:
        engine.fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]})
    assert refused.value.message == f"'send_notice' refused in state 'preparing': {LATE_NOTICE}"
    assert refused.value.details["rule"] == "notice_late"
    assert refused.value.allowed == ["cancel", "carry_over", "reschedule", "send_materials"]
    assert (engine.get(tid).version, len(engine.store.outbox(tid))) == before
    assert engine.get(tid).data.get("notice_sent_on") is None
    choice = next(a for a in engine.available(tid, OFFICE) if a.trigger == "send_notice")
    assert (choice.allowed, choice.needs_payload) == (False, False)
    assert choice.reason == refused.value.message
    strict.on("2024-05-27")
    assert engine.fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]}).version == before[0] + 1


def test_late_minutes_warn_and_replay_gives_the_same_warning(world: World) -> None:
    """Minutes submitted after 7 working days carry minutes_late, naming the last day."""
    tid = preparing(world)
    world.on("2024-05-27").fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]})
    world.on("2024-06-05").fire(tid, "send_materials", OFFICE, {"materials": ["材料"]})
    engine = world.on("2024-06-20")
    engine.fire(tid, "hold_meeting", CHAIRS, {"attendance": 30})
    engine.fire(tid, "draft_outcome", COMMITTEE, {"kind": "minutes", "text": "纪要"})
    world.on("2024-07-02").fire(tid, "submit_outcome", OFFICE, {"recipients": ["participants"]})
    assert engine.history(tid)[-1].warnings == [
        {
            "code": "minutes_late",
            "message": "会议纪要须在会后7个工作日内报送（会议2024-06-20，最迟2024-07-01） / "
            "minutes must go out within 7 working days after the meeting (held on 2024-06-20, "
            "due by 2024-07-01)",
        }
    ]
    assert engine.verify(tid) == []


def test_verify_names_a_row_whose_warnings_were_rewritten(world: World) -> None:
    """Dropping a recorded warning (and recomputing the chain) passes the hashes; the replay
    raises the warning again and verify names the row."""
    tid = preparing(world)
    engine = world.on("2024-06-05")
    engine.fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]})
    seq = engine.get(tid).version
    rewrite_chain(world.url, engine, tid, {seq: {"warnings": None}})
    [problem] = engine.verify(tid)
    assert (problem["seq"], problem["kind"]) == (seq, "warnings-differ")
    assert problem["message"].startswith(f"row {seq} records the warnings null; its replay gives")


def test_verify_names_a_warning_added_to_a_row_that_had_none(world: World) -> None:
    """A warning written into a row that raised none is found the same way."""
    tid = preparing(world)
    engine = world.on("2024-05-27")
    engine.fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]})
    seq = engine.get(tid).version
    forged = [{"code": "notice_late", "message": "晚了"}]
    rewrite_chain(world.url, engine, tid, {seq: {"warnings": forged}})
    assert [(p["seq"], p["kind"]) for p in engine.verify(tid)] == [(seq, "warnings-differ")]


# -- 2. an approved revision applies itself ----------------------------------------------------


def test_an_approved_revision_cancels_and_adds_its_topics_in_the_same_commit(
    world: World,
) -> None:
    """approve_revision moves t3 to cancelled_by_revision (one system row recording plan
    version 2) and starts t4, in the commit of the approval: their ledger positions follow the
    approval's, and everything verifies."""
    pid = plan_in_force(world)
    engine = revise(world, pid, ["t3"], [topic("城区共享单车停放管理", "t4")])
    t1, t3 = topic_id(engine, pid, "t1"), topic_id(engine, pid, "t3")
    head = engine.store.ledger_head()[0]
    plan = engine.fire(pid, "approve_revision", PSC)
    assert (plan.state, plan.data["plan_version"], plan.data["planned_count"]) == (
        "in_force",
        2,
        3,
    )
    cancelled = engine.get(t3)
    assert (cancelled.state, cancelled.final, cancelled.data["cancelled_in_plan_version"]) == (
        "cancelled_by_revision",
        True,
        2,
    )
    row = engine.history(t3)[-1]
    assert (row.trigger, row.source, row.target, row.actor, row.role, row.payload) == (
        "cancel_by_revision",
        "approved",
        "cancelled_by_revision",
        {"id": "system", "roles": ["system"]},
        "system",
        {"plan_version": 2},
    )
    t4 = topic_id(engine, pid, "t4")
    assert (engine.get(t4).state, engine.get(t4).data["plan_version"]) == ("suggested", 2)
    assert engine.get(t1).state == "approved"
    written = [(e.instance_id, e.seq) for e in engine.store.ledger(after=head)]
    assert written == [(pid, plan.version), (t4, 1), (t3, row.seq)]
    assert {e.type for e in engine.store.outbox(t3) if e.seq == row.seq} == {
        "xieshang.instance.transitioned",
        "xieshang.instance.completed",
        "xieshang.consultation_topic.cancelled",
    }
    assert engine.verify() == []


def test_a_revision_cancelling_a_closed_topic_is_refused_naming_it(world: World) -> None:
    """If a topic the revision cancels has already ended, the approval is refused naming the
    topic and its state; the plan, its topics and the store are left as they were."""
    pid = plan_in_force(world)
    engine = world.engine
    t3 = topic_id(engine, pid, "t3")
    engine.fire(t3, "carry_over", OFFICE, reason="转入下年度")
    engine = revise(world, pid, ["t3"], [topic("城区共享单车停放管理", "t4")])
    before = (engine.get(pid).version, engine.store.ledger_head(), len(engine.children(pid)))
    with pytest.raises(TransitionNotAllowed) as refused:
        engine.fire(pid, "approve_revision", PSC)
    assert refused.value.message == (
        f"'approve_revision' refused in state 'revising': its consultation_topic {t3!r} "
        "(老旧小区加装电梯) is in state 'carried_over': 'cancel_by_revision' cannot fire in state "
        "'carried_over' (only from approved, preparing, suggested); 'system' may fire now: nothing"
    )
    target = refused.value.details["target"]
    assert (target["id"], target["trigger"], target["state"]) == (
        t3,
        "cancel_by_revision",
        "carried_over",
    )
    assert refused.value.allowed == ["send_back"]
    after = (engine.get(pid).version, engine.store.ledger_head(), len(engine.children(pid)))
    assert after == before and engine.get(pid).state == "revising"
    assert engine.get(t3).state == "carried_over"


def test_a_revision_postpones_its_topics_to_next_year(world: World) -> None:
    """A topic the approved revision postpones is carried over (结转下年) in the approval's
    commit, by the system, recording the plan version; close_year counts it as carried over."""
    pid = plan_in_force(world)
    engine = world.on("2024-04-01")
    payload = {"postponed": ["t2"]}
    engine.fire(pid, "propose_revision", PARTY_OFFICE, payload, reason="条件不具备")
    engine.fire(pid, "revise_jointly", PARTY_OFFICE)
    engine.fire(pid, "chairs_reviewed", CHAIRS, {"decision": "agree"})
    t2 = topic_id(engine, pid, "t2")
    plan = engine.fire(pid, "approve_revision", PSC)
    assert (plan.data["plan_version"], plan.data["revision_postponed"]) == (2, ["t2"])
    moved = engine.get(t2)
    assert (moved.state, moved.final, moved.data["postponed_in_plan_version"]) == (
        "carried_over",
        True,
        2,
    )
    row = engine.history(t2)[-1]
    assert (row.trigger, row.role, row.payload) == (
        "postpone_by_revision",
        "system",
        {"plan_version": 2},
    )
    assert engine.verify() == []


def test_a_topic_of_a_plan_is_not_cancelled_by_hand(world: World) -> None:
    """The office's own cancel is for topics of no plan; a plan's topic ends only by revision."""
    pid = plan_in_force(world)
    engine = world.engine
    t2 = topic_id(engine, pid, "t2")
    with pytest.raises(TransitionNotAllowed) as refused:
        engine.fire(t2, "cancel", OFFICE, reason="不再开展")
    assert "只能经计划调整" in refused.value.message
    assert "cancel" not in refused.value.allowed
    assert refused.value.allowed == ["carry_over", "start_preparation"]
    assert engine.get(t2).state == "approved"


def test_verify_replays_the_cancelling_row_of_a_revision(world: World) -> None:
    """The system row a revision wrote on its topic is replayed like any step: rewriting the
    plan version it recorded (hashes recomputed) leaves data the replay contradicts."""
    pid = plan_in_force(world)
    engine = revise(world, pid, ["t3"], [])
    engine.fire(pid, "approve_revision", PSC)
    t3 = topic_id(engine, pid, "t3")
    assert engine.verify() == []
    seq = engine.get(t3).version
    rewrite_chain(world.url, engine, t3, {seq: {"payload": {"plan_version": 5}}})
    [problem] = engine.verify(t3)
    assert problem["kind"] == "replay-differs"
    assert '"cancelled_in_plan_version":5' in problem["message"]
    assert '"cancelled_in_plan_version":2' in problem["message"]


# -- 3. reports follow the business year ------------------------------------------------------


def test_a_plan_approved_in_december_for_next_year_counts_in_next_year(world: World) -> None:
    """The 2025 plan approved on 2024-12-20 puts its three topics in the 2025 report; a topic
    approved on its own in 2024 counts in 2024."""
    plan_in_force(world, year=2025, start="2024-12-02")
    engine = world.on("2024-06-03")
    own = engine.start("consultation_topic", {"title": "夜间经济"}, MEMBER).id
    engine.fire(own, "include", OFFICE, {"form": "chair_interview", "category": "economy"})
    breakdown = {
        "lead_leader": "刘副主席",
        "responsible_department": "市商务局",
        "responsible_person": "钱处长",
        "due_date": "2024-12-15",
    }
    assert engine.fire(own, "approve", PSC, breakdown).data["year"] == 2024
    assert plan_report(world.url, 2025, ORG).figures["planned"] == 3
    assert plan_report(world.url, 2024, ORG).figures["planned"] == 1
    assert plan_report(world.url, 2026, ORG).figures["planned"] == 0


def test_a_proposal_for_the_next_session_counts_in_the_session_year(world: World) -> None:
    """A proposal started on 2026-12-30 for the 2027 session counts in 2027; one with no year
    counts in the year of its submission, China time (2026-12-31 20:00 UTC is 2027)."""
    engine = world.on("2026-12-30")
    session = {"session": "session_proposal", "year": 2027}
    for name, data, submitted in (
        ("m1", session, at("2026-12-30")),
        ("m2", {}, at("2026-12-31")),
        ("m3", {}, datetime(2026, 12, 31, 20, tzinfo=UTC)),
    ):
        member = who(name, "member")
        world.clock.set(at("2026-12-30"))
        pid = engine.start(
            "proposal", {"title": f"{name}的提案", "first_proposer": name, **data}, member
        ).id
        world.clock.set(submitted)
        engine.fire(pid, "submit", member, {"category": "society"})
    years = sorted(i.data["year"] for i in engine.query(workflow="proposal").items)
    assert years == [2026, 2027, 2027]
    assert review_report(world.url, 2027, ORG).figures["received"] == 2
    assert review_report(world.url, 2026, ORG).figures["received"] == 1


# -- 4. available() tells the truth --------------------------------------------------------------


def test_a_trigger_whose_guard_reads_the_payload_needs_a_payload(world: World) -> None:
    """chairs_reviewed (a required decision the guard reads) is never plainly allowed: it needs a
    payload, with its schema; a trigger the role may not fire is refused with the reason."""
    engine = world.on("2024-01-08")
    pid = engine.start("annual_consultation_plan", {"year": 2024}, OFFICE).id
    engine.fire(pid, "suggest_topic", MEMBER, {"title": "农村环境综合整治"})
    engine.fire(pid, "close_collection", OFFICE)
    engine.fire(pid, "submit_for_joint_revision", OFFICE, {"topics": TOPICS})
    engine.fire(pid, "submit_to_chairs", PARTY_OFFICE)
    [review, also] = engine.available(pid, CHAIRS)
    assert (review.trigger, review.target, review.allowed, review.needs_payload) == (
        "chairs_reviewed",
        "party_approval",
        False,
        True,
    )
    assert review.reason == "needs a payload (required decision; the guard reads it)"
    assert review.payload_schema == {
        "additionalProperties": False,
        "properties": {
            "decision": {"enum": ["agree", "revise"], "title": "Decision", "type": "string"},
            "remarks": {"maxLength": 20000, "title": "Remarks", "type": "string"},
        },
        "required": ["decision"],
        "title": "chairs_reviewed_payload",
        "type": "object",
    }
    assert (also.target, also.needs_payload) == ("drafting", True)
    [theirs, _] = engine.available(pid, OFFICE)
    assert (theirs.allowed, theirs.needs_payload) == (False, False)
    assert theirs.reason == (
        "actor 'office' with roles ['cppcc_office'] may not fire 'chairs_reviewed'; "
        "allowed roles: chairpersons_council"
    )


def test_a_guard_over_the_children_refuses_whatever_the_payload(world: World) -> None:
    """propose_revision's guard reads its payload: it needs one. close_year needs a payload
    too, but its guard (every topic final) reads none and refuses it while topics are open."""
    pid = plan_in_force(world)
    engine = world.engine
    choices = {a.trigger: a for a in engine.available(pid, OFFICE)}
    assert set(choices) == {"propose_revision", "close_year"}
    assert choices["propose_revision"].needs_payload
    assert choices["propose_revision"].reason == "needs a payload (the guard reads it)"
    close = choices["close_year"]
    assert (close.allowed, close.needs_payload) == (False, False)
    assert (close.reason or "").startswith("'close_year' refused in state 'in_force': 尚有议题")


def test_a_refusal_lists_what_the_actor_could_fire_never_itself(world: World) -> None:
    """close_collection with no suggestion is refused; allowed names suggest_topic only. A
    trigger from another state lists what this actor may fire now, and only that."""
    engine = world.on("2024-01-08")
    pid = engine.start("annual_consultation_plan", {"year": 2024}, OFFICE).id
    with pytest.raises(TransitionNotAllowed) as refused:
        engine.fire(pid, "close_collection", OFFICE)
    assert refused.value.allowed == ["suggest_topic"]
    assert refused.value.to_dict()["allowed"] == ["suggest_topic"]
    with pytest.raises(TransitionNotAllowed) as elsewhere:
        engine.fire(pid, "approve_plan", PSC, {"approved": ["t1"]})
    assert elsewhere.value.allowed == []
    assert elsewhere.value.message == (
        "'approve_plan' cannot fire in state 'collecting' (only from party_approval); "
        "'psc' may fire now: nothing"
    )


def test_http_available_and_refusals_say_what_the_caller_may_do(world: World) -> None:
    """GET /instances/{id}/available carries needs_payload, payload_schema and warnings; a 409
    problem's allowed lists only what the caller could fire now."""
    tid = preparing(world)
    world.on("2024-06-05")
    pid = world.engine.start("annual_consultation_plan", {"year": 2024}, OFFICE).id
    tokens = token_store_for(world.url)
    token = tokens.create(OFFICE)
    app = create_app(world.engine, tokens)
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        r = client.get(f"/instances/{tid}/available")
        assert r.status_code == 200, r.text
        notice = next(a for a in r.json() if a["trigger"] == "send_notice")
        assert notice == {
            "trigger": "send_notice",
            "to": "preparing",
            "allowed": False,
            "reason": "needs a payload (required invitees)",
            "needs_payload": True,
            "payload_schema": {
                "additionalProperties": False,
                "properties": {
                    "invitees": {
                        "items": {"type": "string"},
                        "maxItems": 1000,
                        "minItems": 1,
                        "title": "Invitees",
                        "type": "array",
                    }
                },
                "required": ["invitees"],
                "title": "send_notice_payload",
                "type": "object",
            },
            "warnings": [{"code": "notice_late", "message": LATE_NOTICE}],
        }
        refused = client.post(
            f"/instances/{pid}/fire", json={"trigger": "close_collection", "payload": {}}
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["allowed"] == ["suggest_topic"]
    close = getattr(tokens, "close", None)
    if callable(close):
        close()


# -- the documented example --------------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "workflow-format.md"
SKELETON = """\
id: doc_example
version: 1
title: {zh: 文档示例}
roles: {cppcc_office: {zh: 政协办公室}}
data:
  meeting_date: {type: date}
  invitees: {type: list, items: string}
  notice_sent_on: {type: date}
states:
  preparing: {initial: true, label: {zh: 筹备中}}
  done: {final: true, label: {zh: 结束}}
"""


@pytest.mark.parametrize("mode", ["warn", "refuse"])
def test_the_documented_soft_rule_warns_or_refuses(mode: str) -> None:
    """The warn: example of docs/workflow-format.md, in a workflow of its own, records the late
    notice, or refuses it where the deployment says refuse."""
    example = DOC.read_text(encoding="utf-8").split("```yaml\n")[1].split("```")[0]
    text = (
        SKELETON + example + "  - {trigger: finish, from: preparing, to: done, roles: [system]}\n"
    )
    registry = Registry.from_texts(
        [("doc.yaml", text)], params={"doc_example": {"notice_late": mode}}
    )
    clock = FixedClock(at("2024-06-05"))
    engine = Engine(MemoryStore(), registry, clock)
    iid = engine.start("doc_example", {"meeting_date": "2024-06-20"}, OFFICE).id
    message = (
        "会议通知须在会议日期（2024-06-20）前至少15个工作日发出 / "
        "the notice must go out at least 15 working days before the meeting"
    )
    if mode == "refuse":
        with pytest.raises(TransitionNotAllowed) as refused:
            engine.fire(iid, "send_notice", OFFICE, {"invitees": ["委员"]})
        assert (refused.value.details["rule"], refused.value.allowed) == ("notice_late", [])
        assert engine.get(iid).version == 1
        return
    engine.fire(iid, "send_notice", OFFICE, {"invitees": ["委员"]})
    assert engine.history(iid)[-1].warnings == [{"code": "notice_late", "message": message}]
