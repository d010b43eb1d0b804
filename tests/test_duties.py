"""The duty ledger: each committed step that matches a rule writes its members' duty records in
the step's own transaction (SQLite, PostgreSQL, memory); caps and quotas are applied when a
year is counted; verify finds a record missing, altered or extra; a recompute's dry run
changes nothing and a recompute is recorded with the rules' hash."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from store_contract import sql_connection

from xieshang import (
    Actor,
    DutyRules,
    Engine,
    FixedClock,
    InvalidPayload,
    NotFound,
    Registry,
    TransitionNotAllowed,
    XieshangError,
    load_duties,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.shared import apply_recompute, member_year, recompute_plan

CN = timezone(timedelta(hours=8))
ORG = "gy"
OFFICE = Actor.of("o1", "cppcc_office", org=ORG)
COMMITTEE = Actor.of("c1", "proposal_committee", org=ORG)
CHAIRS = Actor.of("ch1", "chairpersons_council", org=ORG)


def member(mid: str) -> Actor:
    return Actor.of(mid, "member", org=ORG)


RULES = """\
version: 1
title: {zh: 测试规则}
categories:
  attendance: {label: {zh: 会议出勤}, cap: 5}
  proposal: {label: {zh: 提案}}
year_cap: 12
quotas:
  - {category: proposal, at_least: 1}
  - {category: attendance, at_least: 2}
rules:
  - id: attended
    workflow: meeting_attendance
    trigger: sign_in
    category: attendance
    points: 2
  - id: plenary
    workflow: meeting_attendance
    trigger: sign_in
    when: data.kind == 'plenary'
    category: attendance
    points: 1
  - id: leave
    workflow: meeting_attendance
    trigger: request_leave
    category: attendance
    points: 0
  - id: recorded
    workflow: meeting_attendance
    trigger: record_present
    member: payload.members
    category: attendance
    points: 2
  - id: filed
    workflow: proposal
    trigger: file
    member: data.first_proposer
    category: proposal
    points: 5
  - id: cosigned
    workflow: proposal
    trigger: file
    member: data.co_proposers
    category: proposal
    points: 2
"""


@pytest.fixture(scope="module")
def rules(registry: Registry) -> DutyRules:
    return load_duties(RULES, "rules.yaml", registry)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2024, 3, 1, 9, tzinfo=CN))


@pytest.fixture
def engine(
    sql_url: str, registry: Registry, clock: FixedClock, rules: DutyRules
) -> Iterator[Engine]:
    with open_store(sql_url) as store:
        yield Engine(store, registry, clock, duties=rules)


def meeting(engine: Engine, invited: list[str], kind: str = "consultation") -> str:
    data = {"title": "座谈会", "kind": kind, "meeting_date": "2024-03-01", "invited": invited}
    return engine.start("meeting_attendance", data, OFFICE, org=ORG).id


def filed_proposal(engine: Engine, first: str, co: list[str] | None = None) -> str:
    by = member(first)
    pid = engine.start("proposal", {"title": "关于社区养老的建议", "first_proposer": first}, by).id
    if co:
        engine.fire(pid, "invite_cosigners", by, {"co_proposers": co})
        for c in co:
            engine.fire(pid, "cosign", member(c))
    engine.fire(pid, "submit", by, {"category": "society"})
    engine.fire(pid, "start_review", COMMITTEE)
    engine.fire(pid, "file", COMMITTEE, {"number": f"N-{pid[-6:]}"})
    return pid


def summary(engine: Engine) -> list[tuple[str, str, int, int]]:
    """(member, rule, points, seq) of every stored record, sorted."""
    records = engine.store.duty_records()  # type: ignore[attr-defined]
    return sorted((r.member, r.rule, r.points, r.seq) for r in records)


def test_attendance_leave_and_recorded_presence_each_write_their_records(engine: Engine) -> None:
    """A sign-in earns the actor 2 points, a leave (with its reason) 0, the office's record of
    members present 2 each; at a plenary a sign-in also earns the plenary rule's point."""
    mid = meeting(engine, ["m1", "m2", "m3", "m4"])
    engine.fire(mid, "sign_in", member("m1"))
    engine.fire(mid, "request_leave", member("m2"), reason="公务出差")
    engine.fire(mid, "record_present", OFFICE, {"members": ["m3", "m4"]})
    plenary = meeting(engine, ["m1"], kind="plenary")
    engine.fire(plenary, "sign_in", member("m1"))
    assert summary(engine) == [
        ("m1", "attended", 2, 2),
        ("m1", "attended", 2, 2),
        ("m1", "plenary", 1, 2),
        ("m2", "leave", 0, 3),
        ("m3", "recorded", 2, 4),
        ("m4", "recorded", 2, 4),
    ]
    [leave] = [r for r in engine.store.duty_records(member="m2")]  # type: ignore[attr-defined]
    assert (leave.instance_id, leave.year, leave.category, leave.org) == (
        mid, 2024, "attendance", ORG,
    )  # fmt: skip
    assert engine.history(mid)[2].reason == "公务出差"
    assert engine.verify() == []


def test_a_refused_step_writes_no_duty_record(engine: Engine) -> None:
    """A member who is not invited, a second sign-in and a leave without its reason are each
    refused, and none of them writes a duty record."""
    mid = meeting(engine, ["m1"])
    with pytest.raises(TransitionNotAllowed, match="only an invited member"):
        engine.fire(mid, "sign_in", member("m9"))
    with pytest.raises(InvalidPayload, match="reason"):
        engine.fire(mid, "request_leave", member("m1"))
    engine.fire(mid, "sign_in", member("m1"))
    with pytest.raises(TransitionNotAllowed):
        engine.fire(mid, "sign_in", member("m1"))
    assert summary(engine) == [("m1", "attended", 2, 2)]


def test_a_step_whose_duty_record_cannot_be_stored_is_not_stored_either(
    engine: Engine, sql_url: str
) -> None:
    """The records are written in the step's transaction: when the database refuses the duty
    record (a row with its key was slipped in by hand), the step itself is not stored: the
    instance keeps its version, no history row, no other record."""
    mid = meeting(engine, ["m1", "m2"])
    with sql_connection(sql_url) as (conn, mark):
        conn.execute(
            "INSERT INTO duty_records (instance_id, seq, rule, member, org, year, category, "
            f"points, occurred_at) VALUES ({', '.join([mark] * 9)})",
            (mid, 2, "attended", "m1", ORG, 2024, "attendance", 2, "2024-03-01T01:00:00+00:00"),
        )
    with pytest.raises(XieshangError):
        engine.fire(mid, "sign_in", member("m1"))
    assert engine.get(mid).version == 1
    assert len(engine.history(mid)) == 1
    assert engine.store.duty_records(instance_id=mid)[0].occurred_at.startswith("2024-03-01T01")  # type: ignore[attr-defined]
    assert len(engine.store.duty_records()) == 1  # type: ignore[attr-defined]


def test_the_memory_store_keeps_the_records_of_committed_steps_only(
    registry: Registry, clock: FixedClock, rules: DutyRules
) -> None:
    """The memory store writes a commit's records with it, and a refused command none."""
    engine = Engine(MemoryStore(), registry, clock, duties=rules)
    mid = meeting(engine, ["m1", "m2"])
    engine.fire(mid, "sign_in", member("m1"))
    with pytest.raises(TransitionNotAllowed):
        engine.fire(mid, "sign_in", member("m3"))
    assert summary(engine) == [("m1", "attended", 2, 2)]
    assert engine.verify() == []


def test_first_proposer_and_cosigners_earn_at_filing(engine: Engine) -> None:
    """Filing earns the first proposer 5 points and each co-proposer 2, all from one row."""
    pid = filed_proposal(engine, "m1", ["m2", "m3"])
    filed_seq = engine.history(pid)[-1].seq
    assert summary(engine) == [
        ("m1", "filed", 5, filed_seq),
        ("m2", "cosigned", 2, filed_seq),
        ("m3", "cosigned", 2, filed_seq),
    ]


def test_caps_apply_when_a_year_is_counted_and_records_keep_their_points(
    engine: Engine,
) -> None:
    """Three sign-ins earn 6 attendance points, counted as the category's cap of 5; two filed
    proposals earn 10; the year counts 15 down to its cap of 12. The records keep 2 points
    each. A member with only a leave has every quota unmet (a zero-point record meets none)."""
    for _ in range(3):
        engine.fire(meeting(engine, ["m1", "m2"]), "sign_in", member("m1"))
    engine.fire(meeting(engine, ["m2"]), "request_leave", member("m2"), reason="因病")
    filed_proposal(engine, "m1")
    filed_proposal(engine, "m1")
    m1, _ = member_year(engine, "m1", 2024)
    assert (m1.earned, m1.counted, m1.total) == (
        {"attendance": 6, "proposal": 10}, {"attendance": 5, "proposal": 10}, 12,
    )  # fmt: skip
    assert sorted(r.points for r in m1.records) == [2, 2, 2, 5, 5]
    assert m1.shortfalls == []
    m2, _ = member_year(engine, "m2", 2024)
    assert (m2.total, m2.items) == (0, {})
    assert [s.to_dict() for s in m2.shortfalls] == [
        {"category": "proposal", "need": 1, "have": 0},
        {"category": "attendance", "need": 2, "have": 0},
    ]


def test_a_members_record_is_read_by_the_member_and_the_office_only(engine: Engine) -> None:
    """The member and the office of the member's org read it; another member, or an office
    of another org, is answered as for a member with no record."""
    engine.fire(meeting(engine, ["m1"]), "sign_in", member("m1"))
    assert member_year(engine, "m1", 2024, member("m1"))[0].total == 2
    assert member_year(engine, "m1", 2024, OFFICE)[0].total == 2
    for reader in (member("m2"), Actor.of("o2", "cppcc_office", org="zy")):
        with pytest.raises(NotFound, match="no member record 'm1'"):
            member_year(engine, "m1", 2024, reader)
    with pytest.raises(NotFound):
        member_year(engine, "m7", 2024)


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("UPDATE duty_records SET points = 50 WHERE member = 'm1'", "duty-altered"),
        ("DELETE FROM duty_records WHERE member = 'm1'", "duty-missing"),
        (
            "INSERT INTO duty_records (instance_id, seq, rule, member, org, year, category, "
            "points, occurred_at) SELECT instance_id, seq, rule, 'm8', org, year, category, "
            "points, occurred_at FROM duty_records WHERE member = 'm1'",
            "duty-extra",
        ),
        (
            "INSERT INTO duty_records (instance_id, seq, rule, member, org, year, category, "
            "points, occurred_at) SELECT 'no-such-instance', seq, rule, member, org, year, "
            "category, points, occurred_at FROM duty_records WHERE member = 'm1'",
            "duty-orphaned",
        ),
    ],
    ids=["altered", "missing", "extra", "orphaned"],
)
def test_verify_finds_a_tampered_duty_record(
    engine: Engine, sql_url: str, statement: str, kind: str
) -> None:
    """A record changed, removed or added in plain SQL differs from the records its history
    earns: verify names the instance, the row and the kind."""
    mid = meeting(engine, ["m1", "m2"])
    engine.fire(mid, "sign_in", member("m1"))
    engine.fire(mid, "sign_in", member("m2"))
    assert engine.verify() == []
    with sql_connection(sql_url) as (conn, _):
        conn.execute(statement)
    [problem] = engine.verify()
    named = "no-such-instance" if kind == "duty-orphaned" else mid
    assert (problem["instance_id"], problem["seq"], problem["kind"]) == (named, 2, kind)


def test_recompute_dry_run_changes_nothing_and_a_recompute_is_recorded(
    engine: Engine, registry: Registry, sql_url: str
) -> None:
    """New rules (3 points a sign-in): the plan shows each member's old and new totals and
    changes nothing; applying it replaces the year's records and records the recompute with the
    rules' hash; the year is then counted and verified under those rules, even by an engine
    that was given the old ones."""
    mid = meeting(engine, ["m1", "m2"])
    engine.fire(mid, "sign_in", member("m1"))
    engine.fire(mid, "request_leave", member("m2"), reason="外出学习")
    before = summary(engine)
    new_rules = load_duties(
        RULES.replace(
            "trigger: sign_in\n    category: attendance\n    points: 2",
            "trigger: sign_in\n    category: attendance\n    points: 3",
        ),
        "new.yaml",
        registry,
    )
    plan = recompute_plan(engine, new_rules, 2024)
    assert plan.changes() == [("m1", 2, 3), ("m2", 0, 0)]
    assert summary(engine) == before
    assert engine.store.duty_recomputes() == []  # type: ignore[attr-defined]
    done = apply_recompute(engine, plan, "o1")
    assert summary(engine) == [("m1", "attended", 3, 2), ("m2", "leave", 0, 3)]
    [stored] = engine.store.duty_recomputes(2024)  # type: ignore[attr-defined]
    assert (stored.rules_hash, stored.before, stored.after, stored.actor) == (
        new_rules.hash, {"m1": 2, "m2": 0}, {"m1": 3, "m2": 0}, "o1",
    )  # fmt: skip
    assert stored.hash == done.hash != ""
    assert engine.verify() == []
    assert member_year(engine, "m1", 2024)[0].total == 3
