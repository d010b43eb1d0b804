"""A proposal with its handling units: children, joins, bound units, reassignment, re-handling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from xieshang import Actor, Engine, FixedClock, Forbidden, TransitionNotAllowed, UnknownTrigger
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled

CN = timezone(timedelta(hours=8))
MEMBER = Actor.of("m1", "member", org="city")
STAFF = Actor.of("s1", "proposal_committee", org="city")
OFFICE = Actor.of("o1", "supervision_office", org="city")


def unit(name: str) -> Actor:
    return Actor.of(f"staff-{name}", "handling_unit", org="city", unit=name)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    clock = FixedClock(datetime(2024, 3, 4, 9, tzinfo=CN))
    if request.param == "memory":
        yield Engine(MemoryStore(), bundled(), clock)
        return
    from xieshang.adapters.sql import open_store

    url = (
        f"sqlite:///{tmp_path / 'children.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    store = open_store(url, synchronous="NORMAL")
    yield Engine(store, bundled(), clock)
    store.close()


def filed(engine: Engine, title: str = "破解“停车难”") -> str:
    pid = engine.start("proposal", {"title": title, "first_proposer": "m1"}, MEMBER).id
    engine.fire(pid, "submit", MEMBER, {"category": "society"})
    engine.fire(pid, "start_review", STAFF)
    engine.fire(pid, "file", STAFF, {"number": title[:8]})
    return pid


def child_of(engine: Engine, pid: str, unit_name: str) -> str:
    return next(c.id for c in engine.children(pid) if c.unit == unit_name and not c.final)


def start_handling(engine: Engine, cid: str, who: Actor) -> None:
    engine.fire(cid, "acknowledge", who, {"contact_person": "联系人"})
    engine.fire(cid, "contact_proposer", who, {"mode": "face_to_face"})


def reply(engine: Engine, cid: str, who: Actor, reply_class: str = "B") -> None:
    engine.fire(
        cid,
        "draft_reply",
        who,
        {"reply_class": reply_class, "reply_text": "答复函", "signer": "局长"},
    )
    engine.fire(cid, "submit_reply", who)
    engine.fire(cid, "approve_reply", OFFICE)


def test_assignment_starts_one_bound_child_per_unit(engine: Engine) -> None:
    """Assigning lead+assisting starts a child per unit, bound to it, in the same step."""
    pid = filed(engine)
    inst = engine.fire(
        pid,
        "assign",
        OFFICE,
        {
            "mode": "lead_assisting",
            "lead_unit": "transport",
            "units": ["transport", "traffic_police", "housing"],
        },
    )
    kids = engine.children(pid)
    assert inst.state == "assigned"
    assert sorted((c.unit, c.data["role"], c.state) for c in kids) == [
        ("housing", "assisting", "notified"),
        ("traffic_police", "assisting", "notified"),
        ("transport", "lead", "notified"),
    ]
    assert all(c.parent_id == pid and engine.history(c.id)[0].parent_id == pid for c in kids)
    assert engine.verify() == []


def test_lead_cannot_submit_before_every_assisting_unit_countersigns(engine: Engine) -> None:
    """The lead's reply is refused until all assisting units countersigned, naming those missing."""
    pid = filed(engine)
    engine.fire(
        pid,
        "assign",
        OFFICE,
        {
            "mode": "lead_assisting",
            "lead_unit": "transport",
            "units": ["transport", "traffic_police", "housing"],
        },
    )
    lead, police, housing = (
        child_of(engine, pid, u) for u in ("transport", "traffic_police", "housing")
    )
    for cid, name in ((lead, "transport"), (police, "traffic_police"), (housing, "housing")):
        start_handling(engine, cid, unit(name))
    with pytest.raises(TransitionNotAllowed) as early:
        engine.fire(
            lead,
            "draft_reply",
            unit("transport"),
            {"reply_class": "A", "reply_text": "x", "signer": "y"},
        )
    assert "traffic_police" in early.value.message and "housing" in early.value.message
    engine.fire(police, "send_assist_opinion", unit("traffic_police"), {"opinion": "同意"})
    engine.fire(housing, "send_assist_opinion", unit("housing"), {"opinion": "同意"})
    engine.fire(
        lead,
        "draft_reply",
        unit("transport"),
        {"reply_class": "A", "reply_text": "答复", "signer": "局长"},
    )
    engine.fire(police, "countersign", unit("traffic_police"))
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(lead, "submit_reply", unit("transport"))
    assert "housing" in err.value.message and "traffic_police" not in err.value.message
    engine.fire(housing, "countersign", unit("housing"))
    engine.fire(lead, "submit_reply", unit("transport"))
    engine.fire(lead, "approve_reply", OFFICE)
    parent = engine.get(pid)
    assert (parent.state, parent.data["reply_class"]) == ("replied", "A")
    assert engine.history(pid)[-1].actor["id"] == "system"


def test_released_unit_is_replaced_and_the_parent_deadline_stays(engine: Engine) -> None:
    """A released unit ends 'reassigned', a new child joins the same parent, due date unchanged."""
    pid = filed(engine)
    engine.fire(
        pid,
        "assign",
        OFFICE,
        {
            "mode": "lead_assisting",
            "lead_unit": "transport",
            "units": ["transport", "water", "housing"],
        },
    )
    due_before = engine.get(pid).due_at
    water = child_of(engine, pid, "water")
    engine.fire(
        water,
        "request_return",
        unit("water"),
        {"suggested_unit": "urban_management"},
        reason="非本单位职责",
    )
    engine.fire(water, "approve_return", OFFICE, {"new_unit": "urban_management"})
    kids = {c.unit: c for c in engine.children(pid)}
    assert kids["water"].state == "reassigned" and kids["water"].final
    assert kids["urban_management"].state == "notified"
    assert kids["urban_management"].data["role"] == "assisting"
    assert engine.get(pid).due_at == due_before
    # the proposal names the new unit instead of the released one, and its bound role follows
    parent = engine.get(pid)
    assert parent.data["units"] == ["transport", "housing", "urban_management"]
    assert parent.data["lead_unit"] == "transport"
    assert [h.trigger for h in engine.history(pid)][-1] == "take_reassignment"
    choices = {a.trigger: a for a in engine.available(pid, unit("urban_management"))}
    assert choices["request_extension"].needs_payload  # only the new due date stands in the way
    refused = {a.trigger: a for a in engine.available(pid, unit("water"))}["request_extension"]
    assert not refused.needs_payload and "water" in str(refused.reason)
    with pytest.raises(Forbidden):
        engine.fire(pid, "request_extension", unit("water"), {"new_due": "2024-12-01"},
                    reason="延期")  # fmt: skip
    for name in ("transport", "urban_management", "housing"):
        start_handling(engine, child_of(engine, pid, name), unit(name))
    for name in ("urban_management", "housing"):
        engine.fire(
            child_of(engine, pid, name), "send_assist_opinion", unit(name), {"opinion": "同意"}
        )
    lead = child_of(engine, pid, "transport")
    engine.fire(
        lead,
        "draft_reply",
        unit("transport"),
        {"reply_class": "B", "reply_text": "答复", "signer": "局长"},
    )
    for name in ("urban_management", "housing"):
        engine.fire(child_of(engine, pid, name), "countersign", unit(name))
    engine.fire(lead, "submit_reply", unit("transport"))
    engine.fire(lead, "approve_reply", OFFICE)
    assert engine.get(pid).state == "replied"
    engine.fire(pid, "evaluate", MEMBER, {"satisfaction": "unsatisfied"})
    again = [c for c in engine.children(pid) if c.data["round"] == 1]
    assert [(c.unit, c.data["role"]) for c in again] == [("transport", "lead")]
    start_handling(engine, again[0].id, unit("transport"))
    reply(engine, again[0].id, unit("transport"), "A")
    parent = engine.get(pid)
    assert (parent.state, parent.data["reply_class"]) == ("replied", "A")
    closed = engine.fire(pid, "evaluate", MEMBER, {"satisfaction": "basically_satisfied"})
    assert closed.state == "closed"
    assert engine.verify() == []


def test_duplicates_merged_then_split_between_units(engine: Engine) -> None:
    """Three duplicates merge into one, split between units; each unit's reply is evaluated."""
    main = filed(engine, "电动自行车充电设施建设")
    for title in ("小区电动车充电难", "电动车充电桩建设"):
        dup = engine.start("proposal", {"title": title, "first_proposer": "m1"}, MEMBER).id
        engine.fire(dup, "submit", MEMBER, {"category": "society"})
        engine.fire(dup, "start_review", STAFF)
        assert engine.fire(dup, "merge_into", STAFF, {"main_id": main}).state == "merged"
    engine.fire(main, "assign", OFFICE, {"mode": "split", "units": ["housing", "power_supply"]})
    for name in ("housing", "power_supply"):
        cid = child_of(engine, main, name)
        start_handling(engine, cid, unit(name))
        reply(engine, cid, unit(name), "A" if name == "housing" else "B")
        assert engine.get(main).state == ("replied" if name == "power_supply" else "assigned")
    replies = {c.unit: c.data["reply_class"] for c in engine.children(main)}
    assert replies == {"housing": "A", "power_supply": "B"}
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(main, "evaluate", MEMBER, {"satisfaction": "satisfied"})
    assert "逐一评价" in err.value.message
    engine.fire(main, "evaluate_unit", MEMBER, {"unit": "housing", "satisfaction": "satisfied"})
    with pytest.raises(TransitionNotAllowed):  # once per unit and round
        engine.fire(main, "evaluate_unit", MEMBER, {"unit": "housing", "satisfaction": "satisfied"})
    engine.fire(
        main,
        "evaluate_unit",
        MEMBER,
        {"unit": "power_supply", "satisfaction": "basically_satisfied"},
    )
    closed = engine.fire(main, "evaluate", MEMBER, {"satisfaction": "basically_satisfied"})
    assert closed.state == "closed"
    assert [e["unit"] for e in closed.data["unit_evaluations"]] == ["housing", "power_supply"]
    assert len(engine.query(workflow="proposal", state="merged").items) == 2


def test_a_unit_cannot_forward_a_proposal_itself(engine: Engine) -> None:
    """There is no trigger by which a unit hands its proposal to another unit."""
    pid = filed(engine)
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    cid = child_of(engine, pid, "housing")
    with pytest.raises(UnknownTrigger):
        engine.fire(cid, "forward", unit("housing"), {"to": "water"})
    engine.fire(cid, "request_return", unit("housing"), reason="非本单位职责")
    with pytest.raises(Forbidden):
        engine.fire(cid, "approve_return", unit("housing"), {"new_unit": "water"})


def test_assisting_unit_never_replies_to_the_proposer(engine: Engine) -> None:
    """draft_reply is refused for an assisting unit."""
    pid = filed(engine)
    engine.fire(
        pid,
        "assign",
        OFFICE,
        {"mode": "lead_assisting", "lead_unit": "transport", "units": ["transport", "housing"]},
    )
    cid = child_of(engine, pid, "housing")
    start_handling(engine, cid, unit("housing"))
    with pytest.raises(TransitionNotAllowed):
        engine.fire(
            cid,
            "draft_reply",
            unit("housing"),
            {"reply_class": "A", "reply_text": "x", "signer": "y"},
        )


def test_query_by_unit_lists_what_a_unit_has_to_do(engine: Engine) -> None:
    """query(unit=...) gives a unit's open handling items."""
    for title in ("一", "二"):
        pid = filed(engine, title)
        engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    todo = engine.query(workflow="proposal_handling", unit="housing", final=False).items
    assert len(todo) == 2 and all(c.state == "notified" for c in todo)


def test_key_proposals_are_selected_supervised_and_joined(engine: Engine) -> None:
    """Selection refuses non-candidates; each key proposal is a child; all done closes it."""
    committee = Actor.of("p", "proposal_committee", org="city")
    chairs = Actor.of("c", "chairpersons_council", org="city")
    special = Actor.of("e", "special_committee", org="city")
    p1, p2, p3 = (filed(engine, title) for title in ("一", "二", "三"))
    sel = engine.start("key_proposal_selection", {"year": 2024, "filed_count": 445}, committee).id
    engine.fire(sel, "propose_candidates", committee, {"candidates": [p1, p2]})
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(
            sel,
            "select",
            committee,
            {
                "selected": [
                    {
                        "proposal_id": p3,
                        "lead_leader": "市长",
                        "supervising_committee": "经济委员会",
                        "due": "2024-06-30",
                    }
                ]
            },
        )
    assert "候选提案" in err.value.message
    chosen = [
        {
            "proposal_id": p1,
            "lead_leader": "市长",
            "supervising_committee": "经济委员会",
            "due": "2024-06-30",
        },
        {
            "proposal_id": p2,
            "lead_leader": "副市长",
            "supervising_committee": "提案委员会",
            "due": "2024-06-30",
        },
    ]
    engine.fire(sel, "select", committee, {"selected": chosen})
    engine.fire(sel, "approve", chairs, {})
    engine.fire(sel, "start_supervision", committee)
    kids = engine.children(sel)
    assert sorted(k.data["lead_leader"] for k in kids) == ["副市长", "市长"]
    for k in kids:
        with pytest.raises(TransitionNotAllowed):
            engine.fire(k.id, "conclude", special, {"outcome": "implemented", "result": "完成"})
        engine.fire(k.id, "report_progress", special, {"progress": "已开工"})
        engine.fire(k.id, "conclude", special, {"outcome": "implemented", "result": "完成"})
    assert engine.get(sel).state == "done"
    assert engine.verify() == []
