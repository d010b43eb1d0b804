"""Key proposals and the reports of appraisal, micro and online consultation, on SQLite and
PostgreSQL: each rule as a scenario, each report's figures exact and the same in every format.

- Key proposal candidates are filed proposals of the selection's org and year, checked when
  they are proposed and again when the meeting selects; a refusal names the ids that are not.
- A key proposal's supervision has a leader, a due date (a deadline with its overdue mark),
  progress reports, and writes its outcome back to the proposal (a row on both).
- ``xieshang report key_proposals | appraisal | micro | online``: table, JSON, CSV and xlsx.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from xieshang import Actor, Engine, FixedClock, TransitionNotAllowed
from xieshang.adapters.cli import app
from xieshang.adapters.reports import (
    appraisal_report,
    key_proposals_report,
    micro_report,
    online_report,
    report,
)
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

CN = timezone(timedelta(hours=8))
ORG = "city"
MEMBER = Actor.of("m1", "member", org=ORG)
COMMITTEE = Actor.of("pc", "proposal_committee", org=ORG)
REVIEWER = Actor.of("pc2", "proposal_committee", org=ORG)
CHAIRS = Actor.of("chairs", "chairpersons_council", org=ORG)
OFFICE = Actor.of("office", "cppcc_office", org=ORG)
SPECIAL = Actor.of("econ", "special_committee", org=ORG)


def at(month: int, day: int, hour: int = 9, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, tzinfo=CN)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(at(3, 4))


@pytest.fixture
def engine(sql_url: str, clock: FixedClock) -> Iterator[Engine]:
    store = open_store(sql_url, synchronous="NORMAL")
    counter = iter(range(1, 10**6))
    yield Engine(store, bundled(), clock, ids=lambda: f"k{next(counter):04d}")
    store.close()


def proposal(engine: Engine, title: str, *, org: str = ORG, filed: bool = True) -> str:
    member = Actor.of("m1", "member", org=org)
    pid = engine.start("proposal", {"title": title, "first_proposer": "m1"}, member).id
    if filed:
        engine.fire(pid, "submit", member, {"category": "economy"})
        engine.fire(pid, "start_review", Actor.of("pc", "proposal_committee", org=org))
        engine.fire(pid, "file", Actor.of("pc", "proposal_committee", org=org), {"number": title})
    return pid


def key(pid: str, leader: str, due: str, committee: str = "经济委员会") -> dict[str, str]:
    return {
        "proposal_id": pid,
        "lead_leader": leader,
        "supervising_committee": committee,
        "due": due,
    }


def triggers(engine: Engine, iid: str) -> list[str]:
    return [r.trigger for r in engine.history(iid)]


def formats_agree(url: str, kind: str, tmp_path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """The CLI's table, JSON, CSV and xlsx of ``kind`` carry the figures of ``report()``; the
    printed lines as {(分组, 项目): (数量, 比例)}."""
    from openpyxl import load_workbook

    runner = CliRunner()
    base = ["report", kind, "--year", "2024", "--org", ORG, "--db", url]
    expected = report(kind, url, 2024, ORG)
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.output
    assert expected.title in table.output
    as_json = runner.invoke(app, [*base, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output) == json.loads(expected.to_json())
    out_csv, out_xlsx = tmp_path / f"{kind}.csv", tmp_path / f"{kind}.xlsx"
    assert runner.invoke(app, [*base, "--format", "csv", "-o", str(out_csv)]).exit_code == 0
    rows = list(csv.reader(io.StringIO(out_csv.read_bytes().decode("utf-8-sig"))))
    assert rows[:2] == [[expected.title], ["分组", "项目", "数量", "比例"]]
    from_csv = {(r[0], r[1]): (r[2], r[3]) for r in rows[2:]}
    result = runner.invoke(app, [*base, "--format", "xlsx", "-o", str(out_xlsx)])
    assert result.exit_code == 0, result.output
    book = load_workbook(out_xlsx)
    from_xlsx = {}
    for row in list(book.active.iter_rows(values_only=True))[2:]:
        rate = row[3]
        shown = f"{rate * 100:.1f}%" if isinstance(rate, int | float) else str(rate or "")
        from_xlsx[(str(row[0]), str(row[1]))] = ("" if row[2] is None else str(row[2]), shown)
    for name, (headers, wide) in expected.wide.items():
        sheet = list(book[name].iter_rows(values_only=True))
        assert list(sheet[0]) == headers and len(sheet) == 1 + len(wide)
    want = {(r[0], r[1]): (str(r[2]), r[3]) for r in expected.rows()}
    assert from_csv == want == from_xlsx
    return want


# -- key proposals ---------------------------------------------------------------------------


def test_candidates_must_be_filed_proposals_of_the_org_and_year(
    engine: Engine, clock: FixedClock
) -> None:
    """A draft, a rejected proposal, last year's, another org's and an unknown id are refused
    by name, and the selection does not move; at selection, a candidate withdrawn since is."""
    clock.set(at(12, 20, year=2023))
    last_year = proposal(engine, "去年")
    clock.set(at(3, 4))
    a, b = proposal(engine, "甲"), proposal(engine, "乙")
    draft = proposal(engine, "草稿", filed=False)
    rejected = proposal(engine, "不立案", filed=False)
    engine.fire(rejected, "submit", MEMBER, {"category": "economy"})
    engine.fire(rejected, "start_review", COMMITTEE)
    engine.fire(rejected, "reject", REVIEWER, {"ground": "personal"}, reason="个人事务")
    elsewhere = proposal(engine, "外地", org="town")
    sel = engine.start("key_proposal_selection", {"year": 2024, "filed_count": 20}, COMMITTEE).id
    wrong = [a, draft, rejected, last_year, elsewhere, "nope", b]
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(sel, "propose_candidates", COMMITTEE, {"candidates": wrong})
    named = "、".join([draft, rejected, last_year, elsewhere, "nope"])
    assert f"候选须是本会2024年已立案的提案，以下不是：{named}" in err.value.message
    assert (engine.get(sel).state, engine.get(sel).version) == ("candidates", 1)

    engine.fire(sel, "propose_candidates", COMMITTEE, {"candidates": [a, b]})
    engine.fire(b, "withdraw", MEMBER, reason="提案人申请撤案")
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(
            sel,
            "select",
            COMMITTEE,
            {"selected": [key(a, "市长", "2024-09-30"), key(b, "副市长", "2024-09-30")]},
        )
    assert err.value.message.endswith(f"已不是本年度已立案提案的：{b}")
    with pytest.raises(TransitionNotAllowed):  # a due date that has passed
        engine.fire(sel, "select", COMMITTEE, {"selected": [key(a, "市长", "2024-03-01")]})
    engine.fire(sel, "select", COMMITTEE, {"selected": [key(a, "市长", "2024-09-30")]})
    assert triggers(engine, sel) == ["start", "propose_candidates", "select"]
    assert engine.get(sel).state == "chair_review"
    assert engine.verify() == []


def test_candidates_are_judged_by_the_proposals_session_year(
    engine: Engine, clock: FixedClock
) -> None:
    """A proposal written on 2024-12-30 for the 2025 session is a 2025 candidate, not a 2024
    one: the selection reads the year the proposal records, not the day it was created."""
    clock.set(at(12, 30))
    member = Actor.of("m1", "member", org=ORG)
    early = engine.start(
        "proposal", {"title": "新一届", "first_proposer": "m1", "year": 2025}, member
    ).id
    engine.fire(early, "submit", member, {"category": "economy"})
    engine.fire(early, "start_review", COMMITTEE)
    engine.fire(early, "file", COMMITTEE, {"number": "2025-001"})
    assert engine.get(early).data["year"] == 2025
    clock.set(at(3, 4, year=2025))
    old = engine.start("key_proposal_selection", {"year": 2024, "filed_count": 20}, COMMITTEE).id
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(old, "propose_candidates", COMMITTEE, {"candidates": [early]})
    assert f"候选须是本会2024年已立案的提案，以下不是：{early}" in err.value.message
    new = engine.start("key_proposal_selection", {"year": 2025, "filed_count": 20}, COMMITTEE).id
    engine.fire(new, "propose_candidates", COMMITTEE, {"candidates": [early]})
    assert engine.get(new).version == 2 and engine.get(new).data["candidates"] == [early]
    assert engine.verify() == []


def test_supervision_is_due_reports_progress_and_writes_its_outcome_back(
    engine: Engine, clock: FixedClock, sql_url: str, tmp_path: Path
) -> None:
    """Two key proposals out of eight filed: one concluded on time and implemented, one
    overdue and partly implemented; each outcome is one linked_update row on its proposal."""
    ids = [proposal(engine, f"提案{n}") for n in range(8)]
    a, c = ids[1], ids[4]
    sel = engine.start("key_proposal_selection", {"year": 2024, "filed_count": 20}, COMMITTEE).id
    engine.fire(sel, "propose_candidates", COMMITTEE, {"candidates": [a, ids[2], c]})
    chosen = [key(a, "市长", "2024-06-30"), key(c, "副市长", "2024-04-30", "城建委员会")]
    engine.fire(sel, "select", COMMITTEE, {"selected": chosen})
    engine.fire(sel, "approve", CHAIRS, {"remarks": "同意"})
    for item in chosen:
        engine.fire(item["proposal_id"], "flag_key", CHAIRS, {"lead_leader": item["lead_leader"]})
    engine.fire(sel, "start_supervision", OFFICE)
    kid = {k.data["proposal_id"]: k.id for k in engine.children(sel)}
    assert engine.get(kid[c]).due_at == at(5, 1, 0)  # the end of the due date, China time
    clock.set(at(4, 10))
    for pid in (a, c):
        engine.fire(kid[pid], "report_progress", SPECIAL, {"progress": "已召开督办会"})
    engine.fire(kid[a], "report_progress", SPECIAL, {"progress": "已完成主体工程"})
    engine.tick(at(5, 1, 8))
    assert engine.get(kid[c]).overdue and not engine.get(kid[a]).overdue
    clock.set(at(5, 10))
    engine.fire(
        kid[c], "conclude", SPECIAL, {"outcome": "partly_implemented", "result": "部分完成"}
    )
    clock.set(at(6, 20))
    engine.fire(kid[a], "conclude", SPECIAL, {"outcome": "implemented", "result": "已完成"})

    assert triggers(engine, kid[c]) == ["start", "report_progress", "remind", "overdue", "conclude"]
    back = engine.history(c)[-1]
    assert (back.trigger, back.source, back.target) == ("linked_update", "filed", "filed")
    assert back.payload == {
        "from_id": kid[c],
        "from_workflow": "key_proposal_supervision",
        "from_trigger": "conclude",
        "set": {
            "key_outcome": "partly_implemented",
            "key_result": "部分完成",
            "key_concluded_on": "2024-05-10",
        },
    }
    assert engine.get(a).data["key_outcome"] == "implemented"
    assert engine.get(sel).state == "done"
    assert engine.verify() == []

    rep = key_proposals_report(sql_url, 2024, ORG)
    f = rep.figures
    assert {k: v for k, v in f.items() if not isinstance(v, dict)} == {
        "selections": 1,
        "candidates": 3,
        "approved": 2,
        "supervised": 2,
        "concluded": 2,
        "open": 0,
        "overdue": 1,
        "concluded_on_time": 1,
        "progress_reports": 3,
        "filed": 8,
        "flagged": 2,
        "written_back": 2,
    }
    assert f["outcomes"] == {"implemented": 1, "partly_implemented": 1, "not_implemented": 0}
    assert f["by_leader"] == {
        "副市长": {"supervised": 1, "concluded": 1, "implemented": 0},
        "市长": {"supervised": 1, "concluded": 1, "implemented": 1},
    }
    assert {k: r.text for k, r in rep.rates.items()} == {
        "key_share": "25.0%",
        "selection_rate": "66.7%",
        "conclusion_rate": "100.0%",
        "on_time_rate": "50.0%",
        "implementation_rate": "50.0%",
    }
    lines = formats_agree(sql_url, "key_proposals", tmp_path)
    assert lines[("总体", "确定重点提案（占立案数）")] == ("2", "25.0%")
    assert lines[("督办", "逾期")] == ("1", "50.0%")
    assert lines[("督办结果", "部分落实")] == ("1", "50.0%")
    assert rep.wide["重点提案"][1] == [
        ["提案1", "提案1", "市长", "经济委员会", "2024-06-30", 2, "已办结", "已落实"],
        ["提案4", "提案4", "副市长", "城建委员会", "2024-04-30", 1, "已办结（逾期）", "部分落实"],
    ]


# -- democratic appraisal --------------------------------------------------------------------

STANDING = Actor.of("standing", "standing_committee", org=ORG)
PSC = Actor.of("psc", "party_standing_committee", org=ORG)


def appraise(engine: Engine, name: str, *, org: str = ORG) -> tuple[str, Actor]:
    """An appraisal of ``name`` consented and planned: investigating."""
    unit = f"u-{name}"
    chairs = Actor.of("chairs", "chairpersons_council", org=org)
    data = {"year": 2024, "target": name, "target_unit": unit}
    aid = engine.start("democratic_appraisal", data, chairs).id
    engine.fire(aid, "request_consent", chairs)
    engine.fire(aid, "consent", Actor.of("psc", "party_standing_committee", org=org))
    standing = Actor.of("standing", "standing_committee", org=org)
    engine.fire(aid, "adopt_work_plan", standing, {"work_plan": "评议工作方案"})
    return aid, Actor.of(f"staff-{unit}", "appraised_unit", org=org, unit=unit)


def vote(engine: Engine, aid: str, present: int, issued: int, votes: tuple[int, ...]) -> None:
    engine.fire(aid, "open_vote", STANDING, {"members_total": 80, "present": present})
    s, u, k, b = votes
    counts = {"satisfied": s, "unsatisfied": u, "unknown": k, "blank": b}
    engine.fire(
        aid, "record_ballots", STANDING, {"issued": issued, "returned": sum(votes), **counts}
    )


def rectify(engine: Engine, aid: str, unit: Actor, *, close: bool) -> None:
    engine.fire(aid, "report_rectification", unit, {"report": "整改情况报告"})
    engine.fire(aid, "accept_rectification", STANDING)
    if close:
        engine.fire(aid, "close", STANDING, {"conclusion": "整改到位"})


def test_appraisal_report_ranks_targets_and_counts_rounds(
    engine: Engine, clock: FixedClock, sql_url: str, tmp_path: Path
) -> None:
    """Four targets voted (two tied), one refused by the party committee, one still being
    investigated; a recount replaces the first count; rectification rounds from the history."""
    police, police_unit = appraise(engine, "市交警支队")
    housing, housing_unit = appraise(engine, "市住建局")
    market, market_unit = appraise(engine, "市市场监管局")
    power, _ = appraise(engine, "市供电局")
    appraise(engine, "市水务局")  # still investigating: no vote
    refused = engine.start("democratic_appraisal", {"year": 2024, "target": "市城管局"}, CHAIRS).id
    engine.fire(refused, "request_consent", CHAIRS)
    engine.fire(refused, "refuse_consent", PSC, reason="今年不宜开展")
    appraise(engine, "外地局", org="town")  # another org

    vote(engine, police, 62, 62, (49, 6, 5, 2))
    vote(engine, housing, 60, 60, (39, 13, 6, 2))
    engine.fire(
        housing,
        "record_ballots",
        STANDING,
        {
            "issued": 60,
            "returned": 60,
            "satisfied": 40,
            "unsatisfied": 12,
            "unknown": 6,
            "blank": 2,
        },
    )
    vote(engine, market, 70, 70, (60, 4, 5, 1))
    vote(engine, power, 65, 65, (42, 10, 9, 2))  # 42/63 = 2/3, as the housing bureau's 40/60
    for aid in (police, housing, market, power):
        engine.fire(aid, "issue_feedback", STANDING, {"appraisal_report": "评议意见"})
    for aid, unit in ((police, police_unit), (housing, housing_unit), (market, market_unit)):
        engine.fire(aid, "submit_rectification_plan", unit, {"rectification_plan": "整改方案"})
    rectify(engine, police, police_unit, close=False)
    engine.fire(police, "rectify_again", STANDING, reason="回头看：仍有问题")
    rectify(engine, police, police_unit, close=True)
    rectify(engine, market, market_unit, close=True)
    engine.tick(at(6, 5, 8))  # the housing bureau's 3 months to rectify are over
    assert engine.get(housing).overdue
    assert engine.verify() == []

    rep = appraisal_report(sql_url, 2024, ORG)
    f = rep.figures
    assert {k: v for k, v in f.items() if not isinstance(v, dict | list)} == {
        "targets": 6,
        "rejected": 1,
        "voted": 4,
        "closed": 2,
        "members_total": 320,
        "present": 257,
        "ballots_issued": 257,
        "ballots_returned": 255,
        "vote_satisfied": 191,
        "vote_unsatisfied": 32,
        "vote_unknown": 25,
        "vote_blank": 7,
        "recounts": 1,
        "rectification_rounds": 4,
        "rectified_again": 1,
        "rectification_overdue": 1,
    }
    ranked = {t["target"]: (t["rank"], t["rectification_rounds"]) for t in f["per_target"]}
    assert ranked == {
        "市市场监管局": (1, 1),
        "市交警支队": (2, 2),
        "市住建局": (3, 1),
        "市供电局": (3, 0),
        "市水务局": (None, 0),
        "市城管局": (None, 0),
    }
    assert f["top"] == ["市市场监管局", "市交警支队", "市住建局", "市供电局"]
    assert f["bottom"] == ["市交警支队", "市住建局", "市供电局"]
    assert {k: r.text for k, r in rep.rates.items()} == {
        "attendance_rate": "80.3%",
        "return_rate": "99.2%",
        "satisfaction_rate": "74.9%",
    }
    lines = formats_agree(sql_url, "appraisal", tmp_path)
    assert lines[("测评", "收回票")] == ("255", "99.2%")
    assert lines[("测评", "不了解")] == ("25", "9.8%")
    assert lines[("满意率排名", "第1名 市市场监管局")] == ("60", "85.7%")
    assert lines[("满意率排名", "第3名 市供电局")] == ("42", "66.7%")
    assert lines[("整改", "整改轮次（合计）")] == ("4", "")


# -- micro consultation ----------------------------------------------------------------------

WORKSTATION = Actor.of("ws", "member_workstation", org=ORG)
RESIDENT = Actor.of("r1", "public", org=ORG)


def micro(engine: Engine, title: str, community: str, channel: str) -> str:
    data = {"title": title, "community": community, "channel": channel}
    return engine.start("micro_consultation", data, RESIDENT).id


def consulted(engine: Engine, mid: str, participants: int) -> None:
    engine.fire(mid, "confirm_topic", WORKSTATION, {"party_org_agreed": True})
    engine.fire(mid, "prepare", MEMBER, {"research": "走访"})
    people = [f"p{k}" for k in range(participants)]
    engine.fire(mid, "consult", WORKSTATION, {"participants": people, "minutes": "议事记录"})


def settled(engine: Engine, mid: str, owners: list[str], feeling: str) -> None:
    tasks = [
        {"task": f"任务{k}", "owner": o, "due_date": "2024-06-30"} for k, o in enumerate(owners)
    ]
    engine.fire(mid, "agree", WORKSTATION, {"consensus": "共识", "tasks": tasks})
    engine.fire(mid, "assign_tasks", WORKSTATION)
    for t in tasks:
        dept = Actor.of(f"d-{t['owner']}", "department", org=ORG, unit=t["owner"])
        engine.fire(
            mid, "report_progress", dept, {"task": t["task"], "progress": "完成", "done": True}
        )
    engine.fire(mid, "evaluate", WORKSTATION, {"evaluation": feeling})


def test_micro_report_follows_items_to_their_end_and_escalations_to_the_proposal(
    engine: Engine, sql_url: str, tmp_path: Path
) -> None:
    """Six items: two evaluated, one escalated as a proposal that is filed, one as an opinion
    report still in draft, one dropped, one still being prepared."""
    one = micro(engine, "停车", "中华路街道", "reception")
    consulted(engine, one, 3)
    settled(engine, one, ["transport", "traffic_police"], "satisfied")
    two = micro(engine, "电梯", "花果园街道", "online")
    consulted(engine, two, 4)
    engine.fire(
        two,
        "agree",
        WORKSTATION,
        {
            "consensus": "共识",
            "tasks": [{"task": "加装", "owner": "housing", "due_date": "2024-06-30"}],
        },
    )
    engine.fire(two, "assign_tasks", WORKSTATION)
    housing = Actor.of("d-housing", "department", org=ORG, unit="housing")
    engine.fire(two, "report_progress", housing, {"task": "加装", "progress": "已立项"})
    engine.fire(
        two, "report_progress", housing, {"task": "加装", "progress": "已完工", "done": True}
    )
    engine.fire(two, "evaluate", WORKSTATION, {"evaluation": "basically_satisfied"})
    three = micro(engine, "学位", "中华路街道", "visit")
    consulted(engine, three, 3)
    engine.fire(three, "escalate", MEMBER, {"target": "proposal"}, reason="超出社区职权")
    escalated = engine.children(three)[0].id
    engine.fire(escalated, "submit", MEMBER, {"category": "culture"})
    engine.fire(escalated, "start_review", COMMITTEE)
    engine.fire(escalated, "file", COMMITTEE, {"number": "2024001"})
    four = micro(engine, "噪音", "花果园街道", "mailbox")
    engine.fire(four, "escalate", MEMBER, {"target": "opinion_report"}, reason="涉及全市")
    five = micro(engine, "广场舞", "中华路街道", "reception")
    engine.fire(five, "drop", WORKSTATION, reason="已由社区调解")
    six = micro(engine, "菜市场", "中华路街道", "reception")
    engine.fire(six, "confirm_topic", WORKSTATION, {"party_org_agreed": True})
    engine.fire(six, "prepare", MEMBER, {"research": "走访"})
    assert engine.verify() == []

    rep = micro_report(sql_url, 2024, ORG)
    f = rep.figures
    assert {k: v for k, v in f.items() if not isinstance(v, dict)} == {
        "collected": 6,
        "topic_confirmed": 4,
        "consulted": 3,
        "agreed": 2,
        "evaluated": 2,
        "escalated": 2,
        "dropped": 1,
        "open": 1,
        "escalated_proposals_filed": 1,
        "escalated_opinions_adopted": 0,
        "participants": 10,
        "tasks": 3,
        "tasks_done": 3,
        "progress_reports": 4,
    }
    assert f["escalated_to"] == {"proposal": 1, "opinion_report": 1}
    assert f["evaluation"] == {"satisfied": 1, "basically_satisfied": 1, "unsatisfied": 0}
    assert f["by_community"] == {
        "中华路街道": {"collected": 4, "evaluated": 1, "escalated": 1},
        "花果园街道": {"collected": 2, "evaluated": 1, "escalated": 1},
    }
    assert {k: r.text for k, r in rep.rates.items()} == {
        "consultation_rate": "50.0%",
        "closure_rate": "33.3%",
        "escalation_rate": "33.3%",
        "task_completion_rate": "100.0%",
        "satisfaction_rate": "100.0%",
        "escalated_filing_rate": "100.0%",
    }
    lines = formats_agree(sql_url, "micro", tmp_path)
    assert lines[("总体", "反馈评价办结")] == ("2", "33.3%")
    assert lines[("转办去向", "其中已立案")] == ("1", "100.0%")
    assert lines[("按收集渠道（收集/办结率）", "接待日")] == ("3", "33.3%")


# -- online consultation ---------------------------------------------------------------------


def test_online_report_counts_comments_timer_closes_and_what_followed(
    engine: Engine, clock: FixedClock, sql_url: str, tmp_path: Path
) -> None:
    """Three topics posted (one drew no comment), one still a draft; the comment window closes
    by its timer; one topic summarised, submitted, instructed and fed back."""

    def topic(title: str, channel: str, category: str) -> str:
        data = {"title": title, "channel": channel, "category": category}
        return engine.start("online_consultation", data, OFFICE).id

    busy, quiet = topic("城市更新", "app", "economy"), topic("夜间经济", "portal", "economy")
    for oid in (busy, quiet):
        engine.fire(oid, "open", OFFICE)
    public = Actor.of("web-1", "public", org=ORG)
    for who, text in ((MEMBER, "建议一"), (public, "建议二"), (MEMBER, "建议三")):
        engine.fire(busy, "comment", who, {"text": text})
    engine.tick(at(3, 20, 8))  # the 15-day window of both is over
    assert [r.actor["id"] for r in engine.history(busy) if r.trigger == "close_comments"] == [
        "system"
    ]
    engine.fire(quiet, "close_without_comments", OFFICE)
    clock.set(at(3, 21))
    later = topic("托育服务", "wechat_group", "society")
    engine.fire(later, "open", OFFICE)
    for who in (MEMBER, public):
        engine.fire(later, "comment", who, {"text": "意见"})
    topic("草拟中", "portal", "ecology")
    engine.fire(busy, "summarise", SPECIAL, {"summary": "综述", "suggestion_count": 2})
    engine.fire(busy, "submit", OFFICE, {"recipients": ["government"]})
    engine.fire(busy, "record_instruction", OFFICE, {"leader": "市长", "text": "研究吸收"})
    engine.fire(busy, "feed_back", OFFICE, {"feedback": "已反馈"})
    engine.fire(busy, "close", OFFICE)
    assert engine.verify() == []

    rep = online_report(sql_url, 2024, ORG)
    f = rep.figures
    assert {k: v for k, v in f.items() if not isinstance(v, dict)} == {
        "topics": 4,
        "posted": 3,
        "submitted": 1,
        "instructed": 1,
        "fed_back": 1,
        "closed_without_comments": 1,
        "closed": 2,
        "comments": 5,
        "participants": 4,
        "suggestions": 2,
    }
    assert f["by_channel"] == {
        "app": {"posted": 1, "comments": 3, "suggestions": 2},
        "portal": {"posted": 1, "comments": 0, "suggestions": 0},
        "wechat_group": {"posted": 1, "comments": 2, "suggestions": 0},
    }
    assert {k: r.text for k, r in rep.rates.items()} == {
        "submission_rate": "33.3%",
        "instruction_rate": "100.0%",
        "feedback_rate": "100.0%",
        "suggestion_share": "40.0%",
    }
    lines = formats_agree(sql_url, "online", tmp_path)
    assert lines[("总体", "已发布征求意见")] == ("3", "75.0%")
    assert lines[("参与", "归纳建议（条）")] == ("2", "40.0%")
    assert [row[0] for row in rep.wide["网络协商议题"][1]] == ["城市更新", "夜间经济", "托育服务"]


def test_the_new_reports_are_listed_and_an_unknown_one_refused(
    engine: Engine, sql_url: str
) -> None:
    """``xieshang report`` names every kind; an unknown kind exits 2 and names them; a year
    with nothing gives zeros."""
    runner = CliRunner()
    result = runner.invoke(app, ["report", "appraisals", "--year", "2024", "--db", sql_url])
    assert result.exit_code == 2
    for kind in ("key_proposals", "appraisal", "micro", "online"):
        assert kind in result.output
    empty: dict[str, Any] = report("online", sql_url, 2024, ORG).figures
    assert (empty["topics"], empty["comments"]) == (0, 0)
