"""Proposal handling as practised: the assisting opinion's own limit, on time judged on the first
reply against the due date then in force (extensions included), and the per-unit handling score.

Each scenario runs on SQLite and PostgreSQL, and the handling report's figures are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from xieshang import (
    Actor,
    DefinitionError,
    Engine,
    FixedClock,
    Instance,
    Registry,
    TransitionNotAllowed,
)
from xieshang.adapters.reports import Report, handling_report
from xieshang.adapters.sql import open_store
from xieshang.workflows import BUNDLED_DIR, bundled, load_registry

CN = timezone(timedelta(hours=8))
ORG = "city"
MEMBER = Actor.of("m1", "member", org=ORG)
STAFF = Actor.of("s1", "proposal_committee", org=ORG)
OFFICE = Actor.of("o1", "supervision_office", org=ORG)


def unit(name: str) -> Actor:
    return Actor.of(f"staff-{name}", "handling_unit", org=ORG, unit=name)


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=CN)


@dataclass
class World:
    """An engine on a real database, its clock, and the database's URL for the reports."""

    engine: Engine
    clock: FixedClock
    url: str

    def on(self, day: str, hour: int = 9) -> None:
        self.clock.set(at(day, hour))

    def filed(self, title: str) -> str:
        pid = self.engine.start("proposal", {"title": title, "first_proposer": "m1"}, MEMBER).id
        self.engine.fire(pid, "submit", MEMBER, {"category": "society"})
        self.engine.fire(pid, "start_review", STAFF)
        self.engine.fire(pid, "file", STAFF, {"number": title})
        return pid

    def child(self, pid: str, name: str, round_: int = 0) -> Instance:
        return next(
            c for c in self.engine.children(pid) if c.unit == name and c.data["round"] == round_
        )

    def start_handling(self, cid: str, name: str) -> None:
        self.engine.fire(cid, "acknowledge", unit(name), {"contact_person": "联系人"})
        self.engine.fire(cid, "contact_proposer", unit(name), {"mode": "face_to_face"})

    def reply(self, cid: str, name: str, reply_class: str) -> None:
        who = unit(name)
        payload = {"reply_class": reply_class, "reply_text": "答复函", "signer": "局长"}
        self.engine.fire(cid, "draft_reply", who, payload)
        self.engine.fire(cid, "submit_reply", who)
        self.engine.fire(cid, "approve_reply", OFFICE)

    def report(self) -> Report:
        return handling_report(self.url, 2024, ORG)


@pytest.fixture
def make_world(sql_url: str) -> Iterator[Callable[[Registry], World]]:
    """A world on the test's database, with the given workflows, on 2024-03-04 09:00."""
    stores = []

    def make(registry: Registry) -> World:
        store = open_store(sql_url, synchronous="NORMAL")
        stores.append(store)
        clock = FixedClock(at("2024-03-04"))
        return World(Engine(store, registry, clock), clock, sql_url)

    yield make
    for store in stores:
        store.close()


def lines(rep: Report) -> dict[tuple[str, str], tuple[object, str]]:
    return {(r[0], r[1]): (r[2], r[3]) for r in rep.rows()}


def test_a_late_assisting_opinion_is_accepted_announced_and_counted(
    make_world: Callable[[Registry], World],
) -> None:
    """An assisting unit owes its opinion within a month of assignment (2024-03-04 -> 04-04):
    one sent on the last day is on time; one sent the day after is accepted, recorded late and
    announced as ``proposal_handling.assist_opinion_overdue``, and the unit report counts it."""
    w = make_world(bundled())
    pid = w.filed("2024-001")
    units = ["transport", "traffic_police", "housing"]
    w.engine.fire(
        pid, "assign", OFFICE, {"mode": "lead_assisting", "lead_unit": "transport", "units": units}
    )
    lead, police, housing = (w.child(pid, name).id for name in units)
    w.on("2024-03-05")
    for cid, name in zip((lead, police, housing), units, strict=True):
        w.start_handling(cid, name)

    w.on("2024-04-04", 17)
    sent = w.engine.fire(police, "send_assist_opinion", unit("traffic_police"), {"opinion": "同意"})
    assert (sent.state, sent.data["opinion_late"], sent.data["opinion_sent_on"]) == (
        "opinion_sent",
        False,
        "2024-04-04",
    )
    w.on("2024-04-05")
    before = (w.engine.get(lead).to_dict(), len(w.engine.store.outbox(lead)))
    with pytest.raises(TransitionNotAllowed) as refused:
        w.engine.fire(lead, "send_assist_opinion", unit("transport"), {"opinion": "主办意见"})
    assert "只有协办单位送会办意见" in refused.value.message  # the lead replies; it sends none
    assert (w.engine.get(lead).to_dict(), len(w.engine.store.outbox(lead))) == before
    late = w.engine.fire(housing, "send_assist_opinion", unit("housing"), {"opinion": "同意"})
    assert (late.state, late.data["opinion_late"], late.data["opinion_sent_on"]) == (
        "opinion_sent",
        True,
        "2024-04-05",
    )
    types = [e.type for e in w.engine.store.outbox(housing)]
    assert types[-2:] == [
        "xieshang.proposal_handling.opinion_sent",
        "xieshang.proposal_handling.assist_opinion_overdue",
    ]
    assert "xieshang.proposal_handling.assist_opinion_overdue" not in [
        e.type for e in w.engine.store.outbox(police)
    ]

    w.on("2024-04-08")
    w.engine.fire(
        lead,
        "draft_reply",
        unit("transport"),
        {"reply_class": "B", "reply_text": "答复函", "signer": "局长"},
    )
    w.engine.fire(police, "countersign", unit("traffic_police"))
    w.engine.fire(housing, "countersign", unit("housing"))
    w.engine.fire(lead, "submit_reply", unit("transport"))
    w.engine.fire(lead, "approve_reply", OFFICE)
    w.engine.fire(pid, "evaluate", MEMBER, {"satisfaction": "satisfied"})
    assert w.engine.get(pid).state == "closed"
    assert w.engine.verify() == []

    rep = w.report()
    f = rep.figures
    assert (f["assist_opinions"], f["late_assist_opinions"]) == (2, 1)
    got = {
        name: (u["assist_opinions"], u["late_assist_opinions"], u["first_replies"], u["score"])
        for name, u in f["units"].items()
    }
    # the lead: on time 40 + satisfied 40 + class A 0 of 1 = 80; an assisting unit has nothing
    # to count but its opinion: full marks, 2 off for the late one
    assert got == {
        "housing": (1, 1, 0, 98),
        "traffic_police": (1, 0, 0, 100),
        "transport": (0, 0, 1, 80),
    }
    shown = lines(rep)
    assert shown[("总体", "逾期会办意见")] == (1, "50.0%")
    assert shown[("市住建局", "逾期会办意见")] == (1, "100.0%")
    assert shown[("市公安局交警支队", "逾期会办意见")] == (0, "0.0%")
    headers, rows = rep.wide["承办单位得分"]
    assert headers[3] == "会办逾期"
    assert [r[3] for r in rows] == [1, 0, 0]  # housing, traffic_police, transport
    assert "会办意见须在交办后1个月内送主办单位，逾期送达照收，计为逾期会办意见。" in rep.notes


def test_an_assisting_unit_that_sends_no_opinion_is_overdue_after_its_window(
    make_world: Callable[[Registry], World],
) -> None:
    """In handling, an assisting unit's deadline is its opinion window (04-04), not the reply's
    due date: the tick of 04-05 marks it overdue and leaves the lead unit, due in June, alone."""
    w = make_world(bundled())
    pid = w.filed("2024-002")
    units = ["transport", "housing"]
    w.engine.fire(
        pid, "assign", OFFICE, {"mode": "lead_assisting", "lead_unit": "transport", "units": units}
    )
    lead, housing = (w.child(pid, name).id for name in units)
    w.on("2024-03-05")
    for cid, name in zip((lead, housing), units, strict=True):
        w.start_handling(cid, name)
    # a deadline on a date runs out when that day ends (China time)
    assert w.engine.get(housing).due_at == at("2024-04-05", 0)
    assert w.engine.get(lead).due_at == at("2024-06-05", 0)
    w.engine.tick(at("2024-04-05", 10))
    assert (w.engine.get(housing).overdue, w.engine.get(lead).overdue) == (True, False)
    assert w.engine.verify() == []


def test_the_assisting_opinion_window_is_a_param_of_the_deployment(tmp_path: Path) -> None:
    """With a window of 2 months, the opinion sent on 2024-04-05 is on time; a window that is
    not a duration is refused at load, naming the param."""
    registry = load_registry(params={"proposal_handling": {"assist_opinion_window": "2 months"}})
    url = f"sqlite:///{tmp_path / 'window.db'}"
    store = open_store(url, synchronous="NORMAL")
    clock = FixedClock(at("2024-03-04"))
    w = World(Engine(store, registry, clock), clock, url)
    pid = w.filed("2024-002")
    w.engine.fire(
        pid,
        "assign",
        OFFICE,
        {"mode": "lead_assisting", "lead_unit": "transport", "units": ["transport", "housing"]},
    )
    housing = w.child(pid, "housing").id
    w.start_handling(housing, "housing")
    w.on("2024-04-05")
    sent = w.engine.fire(housing, "send_assist_opinion", unit("housing"), {"opinion": "同意"})
    assert sent.data["opinion_late"] is False
    store.close()
    with pytest.raises(DefinitionError) as bad:
        load_registry(params={"proposal_handling": {"assist_opinion_window": "a month or so"}})
    assert "assist_opinion_window" in str(bad.value) and "accepted forms" in str(bad.value)


def handling_year(w: World) -> dict[str, str]:
    """Three sole proposals assigned on 2024-03-04, reply due 2024-06-04, up to 07-15:

    - water replies on 06-05, a day late (class B), satisfied on 06-06;
    - housing gets an extension to 07-31 on 05-21 and replies on 07-15 (class B);
    - education replies on time on 05-10 (class C); the proposer is unsatisfied on 05-13 and
      the re-handling is due 08-13.
    """
    names = ("water", "housing", "education")
    pids = {name: w.filed(f"2024-{i:03d}") for i, name in enumerate(names, 1)}
    for name, pid in pids.items():
        w.engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": [name]})
    w.on("2024-03-05")
    for name, pid in pids.items():
        w.start_handling(w.child(pid, name).id, name)
    w.on("2024-05-10")
    w.reply(w.child(pids["education"], "education").id, "education", "C")
    w.on("2024-05-13")
    w.engine.fire(pids["education"], "evaluate", MEMBER, {"satisfaction": "unsatisfied"})
    w.on("2024-05-14")
    w.start_handling(w.child(pids["education"], "education", 1).id, "education")
    w.on("2024-05-20")
    w.engine.fire(
        pids["housing"],
        "request_extension",
        unit("housing"),
        {"new_due": "2024-07-31"},
        reason="需协调年度预算",
    )
    w.on("2024-05-21")
    w.engine.fire(pids["housing"], "approve_extension", OFFICE)
    w.on("2024-06-05")
    w.engine.tick(at("2024-06-05"))
    w.reply(w.child(pids["water"], "water").id, "water", "B")
    w.on("2024-06-06")
    w.engine.fire(pids["water"], "evaluate", MEMBER, {"satisfaction": "satisfied"})
    w.on("2024-07-15")
    w.reply(w.child(pids["housing"], "housing").id, "housing", "B")
    return pids


def rest_of_year(w: World, pids: dict[str, str]) -> None:
    """After :func:`handling_year`: housing basically satisfied on 07-16; education's
    re-handling reply comes late on 08-20 (class A), satisfied on 08-21."""
    w.on("2024-07-16")
    w.engine.fire(pids["housing"], "evaluate", MEMBER, {"satisfaction": "basically_satisfied"})
    w.on("2024-08-20")
    w.reply(w.child(pids["education"], "education", 1).id, "education", "A")
    w.on("2024-08-21")
    w.engine.fire(pids["education"], "evaluate", MEMBER, {"satisfaction": "satisfied"})


def test_on_time_is_judged_on_the_first_reply_and_a_rehandling_reply_changes_neither(
    make_world: Callable[[Registry], World],
) -> None:
    """The proposal keeps its first reply's date and the due date then in force; the unit report
    judges each unit's first reply only. Education's late re-handling reply (08-20, due 08-13)
    counts as a reply, but neither its proposal nor the unit becomes late."""
    w = make_world(bundled())
    pids = handling_year(w)
    rest_of_year(w, pids)
    education = w.engine.get(pids["education"])
    assert education.state == "closed"
    assert {k: education.data[k] for k in ("first_replied_on", "due_at_first_reply")} == {
        "first_replied_on": "2024-05-10",
        "due_at_first_reply": "2024-06-04",
    }
    assert (education.data["replied_on"], education.data["reply_due"]) == (
        "2024-08-20",
        "2024-08-13",
    )
    again = w.child(pids["education"], "education", 1)
    assert (again.data["on_time"], again.data["due"]) == (False, "2024-08-13")
    water = w.engine.get(pids["water"]).data
    assert (water["first_replied_on"], water["due_at_first_reply"]) == ("2024-06-05", "2024-06-04")
    assert w.engine.verify() == []

    rep = w.report()
    f = rep.figures
    assert (f["filed"], f["replied"], f["replied_on_time"], f["overdue"]) == (3, 3, 2, 1)
    assert rep.rates["on_time_rate"].text == "66.7%"
    got = {
        name: (
            u["assigned"],
            u["replies"],
            u["first_replies"],
            u["on_time_replies"],
            u["late_replies"],
            u["rehandling_replies"],
        )
        for name, u in f["units"].items()
    }
    assert got == {
        "education": (2, 2, 1, 1, 0, 1),
        "housing": (1, 1, 1, 1, 0, 0),
        "water": (1, 1, 1, 0, 1, 0),
    }
    shown = lines(rep)
    assert shown[("总体", "按期答复")] == (2, "66.7%")
    assert shown[("市教育局", "按期答复")] == (1, "100.0%")
    assert shown[("市教育局", "逾期答复")] == (0, "0.0%")
    assert shown[("市教育局", "重新办理答复")] == (1, "")
    assert shown[("市水务局", "逾期答复")] == (1, "100.0%")
    headers, rows = rep.wide["承办单位"]
    assert headers[:4] == ["承办单位", "交办", "答复", "逾期"]
    assert [r[:4] for r in rows] == [
        ["市教育局", 2, 2, 0],
        ["市住建局", 1, 1, 0],
        ["市水务局", 1, 1, 1],
    ]


def test_an_approved_extension_moves_the_open_units_due_date_and_a_reply_within_it_is_on_time(
    make_world: Callable[[Registry], World],
) -> None:
    """Approving housing's extension to 07-31 moves its unit's due date, its handling deadline
    and its overdue timer: the tick of 06-05 marks only water overdue, and housing's reply of
    07-15 is on time for the proposal and in the unit report."""
    w = make_world(bundled())
    pids = handling_year(w)
    housing = w.child(pids["housing"], "housing")
    assert (housing.state, housing.data["due"], housing.data["on_time"]) == (
        "replied",
        "2024-07-31",
        True,
    )
    moved = [r for r in w.engine.history(housing.id) if r.trigger == "parent_update"]
    assert [r.payload["set"] for r in moved] == [{"due": "2024-07-31"}]
    water = w.child(pids["water"], "water")
    assert [r.trigger for r in w.engine.history(water.id)].count("overdue") == 1
    assert "overdue" not in [r.trigger for r in w.engine.history(housing.id)]
    proposal = w.engine.get(pids["housing"]).data
    assert (proposal["first_replied_on"], proposal["due_at_first_reply"]) == (
        "2024-07-15",
        "2024-07-31",
    )
    assert (proposal["reply_due"], proposal["extensions"]) == ("2024-07-31", 1)

    rep = w.report()
    housing_unit = rep.figures["units"]["housing"]
    assert (housing_unit["on_time_replies"], housing_unit["late_replies"]) == (1, 0)
    # housing within its extension, education's first reply; water's was late
    assert (rep.figures["replied"], rep.figures["replied_on_time"]) == (3, 2)
    assert lines(rep)[("市住建局", "按期答复")] == (1, "100.0%")
    assert w.engine.verify() == []


def test_an_open_units_timer_moves_with_the_extension(
    make_world: Callable[[Registry], World],
) -> None:
    """Before it replies, the extended unit's deadline is the end of 07-31 and its one overdue
    timer is set for that moment; ticking past the old due date leaves it on time."""
    w = make_world(bundled())
    pid = w.filed("2024-010")
    w.engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    cid = w.child(pid, "housing").id
    w.start_handling(cid, "housing")
    assert w.engine.get(cid).due_at == at("2024-06-05", 0)
    w.on("2024-05-20")
    w.engine.fire(pid, "request_extension", unit("housing"), {"new_due": "2024-07-31"}, reason="r")
    w.engine.fire(pid, "approve_extension", OFFICE)
    child = w.engine.get(cid)
    assert (child.data["due"], child.due_at) == ("2024-07-31", at("2024-08-01", 0))
    timers = [t.due_at for t in w.engine.store.timers_of(cid) if t.kind == "deadline"]
    assert timers == [at("2024-08-01", 0)]
    w.engine.tick(at("2024-06-10"))
    assert not w.engine.get(cid).overdue and not w.engine.get(pid).overdue


def test_the_unit_score_follows_the_weights_in_params_and_prints_its_formula(
    make_world: Callable[[Registry], World],
) -> None:
    """Default weights 40/40/20, 5 off per late reply: water 0 + 40 + 0 - 5 = 35, housing
    40 + 40 + 0 = 80, education 40 + 40 + 20 x 1/2 = 90. In July, before housing is evaluated,
    its satisfaction is left out with its weight: 100 x (40 + 0) / 60 = 66.7."""
    w = make_world(bundled())
    pids = handling_year(w)
    july = w.report().figures["units"]
    # education in July: on time 40, unsatisfied so far 0, class C 0
    assert {name: u["score"] for name, u in july.items()} == {
        "education": 40,
        "housing": 66.7,
        "water": 35,
    }
    rest_of_year(w, pids)
    rep = w.report()
    assert {name: u["score"] for name, u in rep.figures["units"].items()} == {
        "education": 90,
        "housing": 80,
        "water": 35,
    }
    assert rep.figures["score_weights"] == {
        "score_on_time": 40,
        "score_satisfaction": 40,
        "score_class_a": 20,
        "score_late_reply": 5,
        "score_late_opinion": 2,
    }
    headers, rows = rep.wide["承办单位得分"]
    assert headers == [
        "承办单位",
        "按期",
        "逾期",
        "会办逾期",
        "按期率",
        "满意率",
        "A类占比",
        "得分",
    ]
    assert rows == [
        ["市教育局", 1, 0, 0, "100.0%", "100.0%", "50.0%", 90],
        ["市住建局", 1, 0, 0, "100.0%", "100.0%", "0.0%", 80],
        ["市水务局", 0, 1, 0, "0.0%", "100.0%", "0.0%", 35],
    ]
    shown = lines(rep)
    assert shown[("市水务局", "得分")] == (35, "")
    assert rep.notes[0].startswith(
        "承办单位得分（满分100）= 100 ×（40×按期答复率 + 40×满意率 + 20×A类占比）"
        "÷ 计入项分值之和 − 5×逾期答复件数 − 2×逾期会办意见件数，最低0分"
    )
    assert all(shown[("说明", note)] == ("", "") for note in rep.notes)
    assert rep.to_dict()["notes"] == rep.notes


def test_a_deployment_scores_on_its_own_scale(make_world: Callable[[Registry], World]) -> None:
    """Weights 6/6/3 make a 15-point score (贵阳: 15 points of a unit's yearly appraisal), 1 off
    per late reply: water 0 + 6 + 0 - 1 = 5, housing 6 + 6 + 0 = 12, education 6 + 6 + 1.5."""
    weights = {
        "score_on_time": 6,
        "score_satisfaction": 6,
        "score_class_a": 3,
        "score_late_reply": 1,
        "score_late_opinion": 0.5,
    }
    w = make_world(load_registry(params={"proposal_handling": weights}))
    rest_of_year(w, handling_year(w))
    rep = w.report()
    assert {name: u["score"] for name, u in rep.figures["units"].items()} == {
        "education": 13.5,
        "housing": 12,
        "water": 5,
    }
    assert rep.figures["score_weights"] == weights
    assert rep.notes[0].startswith(
        "承办单位得分（满分15）= 15 ×（6×按期答复率 + 6×满意率 + 3×A类占比）"
        "÷ 计入项分值之和 − 1×逾期答复件数 − 0.5×逾期会办意见件数"
    )


def test_a_negative_weight_is_refused_at_load_naming_the_param() -> None:
    with pytest.raises(DefinitionError) as bad:
        load_registry(params={"proposal_handling": {"score_late_reply": -5}})
    (problem,) = bad.value.problems
    assert (problem.code, problem.path) == ("XS116", "params.score_late_reply.default")
    assert problem.message == "override -5: must be at least 0"


def test_a_unit_workflow_without_the_weights_gets_no_score(tmp_path: Path) -> None:
    """A deployment's own unit workflow that declares no score params: the report still counts,
    shows no score and prints no formula."""
    files = []
    # the proposal spawns an opinion report when it converts one: that workflow loads too
    for path in sorted([*BUNDLED_DIR.glob("proposal*.yaml"), BUNDLED_DIR / "opinion_report.yaml"]):
        text = path.read_text(encoding="utf-8")
        if path.name == "proposal_handling.yaml":
            text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("  score_"))
        files.append((path.name, text))
    url = f"sqlite:///{tmp_path / 'own.db'}"
    store = open_store(url, synchronous="NORMAL")
    clock = FixedClock(at("2024-03-04"))
    w = World(Engine(store, Registry.from_texts(files), clock), clock, url)
    pid = w.filed("2024-020")
    w.engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["water"]})
    cid = w.child(pid, "water").id
    w.start_handling(cid, "water")
    w.reply(cid, "water", "A")
    store.close()
    rep = w.report()
    water = rep.figures["units"]["water"]
    assert (water["on_time_replies"], water["score"]) == (1, None)
    assert rep.figures["score_weights"] is None and rep.notes == []
    assert rep.wide["承办单位得分"][1] == [["市水务局", 1, 0, 0, "100.0%", "—", "100.0%", "—"]]
