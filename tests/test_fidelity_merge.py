"""Three rules of practice in the bundled proposal workflow, with the reports they feed.

- 并案: a proposal merges only into a filed one; the main proposal takes in the merged
  proposers (each with the proposal it came from), every reply names them all, and each of them
  evaluates, counted by ``params.evaluation_rule``.
- 转社情民意: a proposal not filed on a ground ``params.convertible_grounds`` lists becomes an
  opinion report with its proposer's consent; both record the other's id; the review report
  counts it as not filed and as converted.
- The channel a proposal came in by (``params.channels``) gives the online share of the review
  and handling reports.

Each scenario runs on SQLite and PostgreSQL; each refusal names what was wrong and changes
nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from xieshang import Actor, Engine, FixedClock, Registry, TransitionNotAllowed
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.reports import handling_report, opinions_report, review_report
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled_files

CN = timezone(timedelta(hours=8))
ORG = "demo_city_cppcc"
STAFF = Actor.of("s1", "proposal_committee", org=ORG)
OFFICE = Actor.of("o1", "supervision_office", org=ORG)


def member(name: str) -> Actor:
    return Actor.of(name, "member", org=ORG)


def unit(name: str) -> Actor:
    return Actor.of(f"staff-{name}", "handling_unit", org=ORG, unit=name)


def registry(**params: Any) -> Registry:
    files = ((str(f), f.read_text(encoding="utf-8")) for f in bundled_files())
    return Registry.from_texts(files, params={"proposal": params})


def new_engine(store: Any, **params: Any) -> Engine:
    counter = itertools.count(1)
    clock = FixedClock(datetime(2024, 3, 4, 9, tzinfo=CN))
    return Engine(store, registry(**params), clock, ids=lambda: f"i{next(counter):03d}")


@pytest.fixture
def on_sql(sql_url: str) -> Iterator[Callable[..., Engine]]:
    """Engines over the test's SQL database (SQLite, then PostgreSQL), with proposal params."""
    stores: list[Any] = []

    def make(**params: Any) -> Engine:
        stores.append(open_store(sql_url, synchronous="NORMAL"))
        return new_engine(stores[-1], **params)

    yield make
    for store in stores:
        store.close()


def reviewed(
    engine: Engine,
    proposer: str,
    *,
    co: tuple[str, ...] = (),
    category: str = "society",
    channel: str | None = None,
) -> str:
    """A proposal by ``proposer`` (with co-proposers who sign), submitted and under review."""
    first = member(proposer)
    pid = engine.start(
        "proposal", {"title": f"{proposer}的提案", "first_proposer": proposer}, first
    ).id
    if co:
        engine.fire(pid, "invite_cosigners", first, {"co_proposers": list(co)})
        for name in co:
            engine.fire(pid, "cosign", member(name))
    payload = {"category": category} | ({"channel": channel} if channel else {})
    engine.fire(pid, "submit", first, payload)
    engine.fire(pid, "start_review", STAFF)
    return pid


def reply_all(engine: Engine, pid: str, classes: dict[str, str]) -> None:
    """Every open unit of the proposal acknowledges, contacts the proposer and replies."""
    for child in engine.children(pid):
        if child.final or child.workflow != "proposal_handling":
            continue
        who = unit(child.unit or "")
        engine.fire(child.id, "acknowledge", who, {"contact_person": "联系人"})
        engine.fire(child.id, "contact_proposer", who, {"mode": "face_to_face"})
        engine.fire(
            child.id,
            "draft_reply",
            who,
            {"reply_class": classes[child.unit or ""], "reply_text": "答复函", "signer": "局长"},
        )
        engine.fire(child.id, "submit_reply", who)
        engine.fire(child.id, "approve_reply", OFFICE)


def snapshot(engine: Engine, *ids: str) -> list[tuple[str, int, int, str]]:
    """Each instance's state, version and history length, and the number of events."""
    out = []
    for iid in ids:
        inst = engine.get(iid, fresh=True)
        out.append((inst.state, inst.version, len(engine.history(iid)), str(inst.data)))
    return [*out, ("outbox", len(engine.store.outbox()), 0, "")]


def lines(rep: Any) -> dict[tuple[str, str], tuple[str, str]]:
    return {(r[0], r[1]): (str(r[2]), r[3]) for r in rep.rows()}


def evaluate(engine: Engine, pid: str, who: str, overall: str, **units: str) -> Any:
    for name, feeling in units.items():
        engine.fire(pid, "evaluate_unit", member(who), {"unit": name, "satisfaction": feeling})
    return engine.fire(pid, "evaluate", member(who), {"satisfaction": overall})


# -- 并案 ---------------------------------------------------------------------------------------


def test_merged_proposers_receive_every_reply_and_evaluate(
    on_sql: Callable[..., Engine], sql_url: str
) -> None:
    """Two proposals merge into a filed one; a merge into a proposal under review or assigned is
    refused; the merged proposers are named by both replies (a re-handling round) and evaluate
    each unit's reply in split mode; the first proposer's evaluation decides (the default)."""
    engine = on_sql()
    main = reviewed(engine, "m1")
    engine.fire(main, "file", STAFF, {"number": "2024-001"})
    joint = reviewed(engine, "m2", co=("m3",))
    single = reviewed(engine, "m4")
    for merged in (joint, single):
        done = engine.fire(merged, "merge_into", STAFF, {"main_id": main})
        assert (done.state, done.data["merged_into"]) == ("merged", main)
    data = engine.get(main).data
    assert data["proposers"] == ["m1", "m2", "m3", "m4"]
    assert data["merged_from"] == [joint, single]
    assert data["merged_proposers"] == [
        {"proposer": "m2", "from_proposal": joint},
        {"proposer": "m3", "from_proposal": joint},
        {"proposer": "m4", "from_proposal": single},
    ]
    assert [(h.trigger, h.actor["id"]) for h in engine.history(main)][-2:] == [
        ("take_in_merged", "system"),
        ("take_in_merged", "system"),
    ]

    late = reviewed(engine, "m5", category="economy")
    pending = reviewed(engine, "m6", category="economy")
    before = snapshot(engine, late, pending)
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(late, "merge_into", STAFF, {"main_id": pending})
    assert err.value.message.startswith(
        "'merge_into' refused in state 'under_review': 只能并入已立案的提案 / a proposal merges "
        f"only into a filed one (proposal {pending!r} is in state 'under_review': "
        "'take_in_merged' cannot fire in state 'under_review' (only from filed)"
    )
    assert snapshot(engine, late, pending) == before

    engine.fire(main, "assign", OFFICE, {"mode": "split", "units": ["housing", "water"]})
    before = snapshot(engine, late, main)
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(late, "merge_into", STAFF, {"main_id": main})
    assert f"(proposal {main!r} is in state 'assigned': 'take_in_merged' cannot fire in state " in (
        err.value.message
    )
    assert err.value.details["target"]["state"] == "assigned"
    assert snapshot(engine, late, main) == before
    engine.fire(late, "file", STAFF, {"number": "2024-002"})

    reply_all(engine, main, {"housing": "A", "water": "B"})
    # a merged proposer's evaluation is recorded; it does not decide
    after = evaluate(engine, main, "m2", "unsatisfied", housing="satisfied", water="unsatisfied")
    assert (after.state, after.data.get("satisfaction"), after.data["unit_evaluations"]) == (
        "replied",
        None,
        [],
    )
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(main, "evaluate", member("m1"), {"satisfaction": "satisfied"})
    assert "分办的提案须先逐一评价各承办单位的答复" in err.value.message
    again = evaluate(engine, main, "m1", "unsatisfied", housing="satisfied", water="unsatisfied")
    assert (again.state, again.data["rehandle_count"]) == ("rehandling", 1)
    reply_all(engine, main, {"housing": "A", "water": "A"})
    evaluate(engine, main, "m3", "satisfied", housing="satisfied", water="basically_satisfied")
    closed = evaluate(
        engine, main, "m1", "basically_satisfied", housing="satisfied", water="basically_satisfied"
    )
    assert (closed.state, closed.data["satisfaction"]) == ("closed", "basically_satisfied")
    assert closed.data["unit_evaluations"] == [
        {"unit": "housing", "round": 0, "satisfaction": "satisfied"},
        {"unit": "water", "round": 0, "satisfaction": "unsatisfied"},
        {"unit": "housing", "round": 1, "satisfaction": "satisfied"},
        {"unit": "water", "round": 1, "satisfaction": "basically_satisfied"},
    ]
    assert [(e["proposer"], e["round"], e["satisfaction"]) for e in closed.data["evaluations"]] == [
        ("m2", 0, "unsatisfied"),
        ("m1", 0, "unsatisfied"),
        ("m3", 1, "satisfied"),
        ("m1", 1, "basically_satisfied"),
    ]
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(main, "evaluate", member("m4"), {"satisfaction": "satisfied"})
    assert "'evaluate' cannot fire in state 'closed'" in err.value.message

    replies = [e for e in engine.store.outbox(main) if e.type == "xieshang.proposal.replied"]
    assert [e.body["data"]["data"]["proposers"] for e in replies] == [["m1", "m2", "m3", "m4"]] * 2
    assert engine.verify() == []

    review = review_report(sql_url, 2024, ORG)
    assert review.figures == {
        "received": 5,
        "filed": 2,
        "not_filed": 0,
        "merged": 2,
        "converted": 0,
        "withdrawn": 0,
        "pending": 1,
        "not_filed_by_ground": {},
        "converted_by_ground": {},
        "online": 5,
        "by_category": {
            "economy": {"received": 2, "filed": 1},
            "society": {"received": 3, "filed": 1},
        },
        "by_proposer_kind": {
            "individual": {"received": 4, "filed": 2},
            "joint": {"received": 1, "filed": 0},
        },
        "by_channel": {"online": {"received": 5, "filed": 2}},
    }
    assert lines(review)[("总体", "并案")] == ("2", "40.0%")
    assert lines(review)[("总体", "立案")] == ("2", "40.0%")
    handling = handling_report(sql_url, 2024, ORG)
    f = handling.figures
    assert (f["filed"], f["replied"], f["closed"], f["evaluated"], f["rehandled"]) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert f["satisfaction"] == {"satisfied": 0, "basically_satisfied": 1, "unsatisfied": 0}
    assert f["classes"] == {"A": 1, "B": 0, "C": 0, "未分类": 1}
    per_unit = {
        name: (u["assigned"], u["replies"], u["evaluated"], u["satisfied"])
        for name, u in f["units"].items()
    }
    assert per_unit == {"housing": (2, 2, 2, 2), "water": (2, 2, 2, 1)}
    assert handling.rates["satisfaction_rate"].text == "100.0%"


FEELING = {"S": "satisfied", "B": "basically_satisfied", "U": "unsatisfied"}


@pytest.mark.parametrize(
    ("rule", "answers", "state", "satisfaction"),
    [
        ("first_proposer", "m2:U m1:B", "closed", "B"),
        ("all", "m1:S m2:S m3:B", "closed", "B"),
        ("all", "m1:S m2:S m3:S", "closed", "S"),
        ("all", "m1:S m2:U m3:S", "rehandling", "U"),
        ("majority", "m1:U m2:S m3:B", "closed", "B"),
        ("majority", "m1:S m2:U m3:S", "closed", "S"),
        ("majority", "m1:U m2:U m3:S", "rehandling", "U"),
    ],
)
def test_the_evaluation_rule_decides_how_answers_count(
    rule: str, answers: str, state: str, satisfaction: str
) -> None:
    """The first proposer's evaluation decides by default, the last one due under ``all`` and
    ``majority``; before it the proposal waits in ``replied`` with no satisfaction. (Answers:
    S satisfied, B basically satisfied, U unsatisfied.)"""
    engine = new_engine(MemoryStore(), evaluation_rule=rule)
    main = reviewed(engine, "m1")
    engine.fire(main, "file", STAFF, {"number": "2024-001"})
    engine.fire(reviewed(engine, "m2", co=("m3",)), "merge_into", STAFF, {"main_id": main})
    engine.fire(main, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    reply_all(engine, main, {"housing": "B"})
    *first, last = [pair.split(":") for pair in answers.split()]
    for who, feeling in first:
        waiting = evaluate(engine, main, who, FEELING[feeling])
        assert (waiting.state, waiting.data.get("satisfaction")) == ("replied", None)
    done = evaluate(engine, main, last[0], FEELING[last[1]])
    assert (done.state, done.data["satisfaction"]) == (state, FEELING[satisfaction])
    assert engine.verify() == []


@pytest.mark.parametrize("rule", ["all", "majority"])
def test_in_split_mode_each_units_verdict_counts_every_proposer(rule: str) -> None:
    engine = new_engine(MemoryStore(), evaluation_rule=rule)
    main = reviewed(engine, "m1")
    engine.fire(main, "file", STAFF, {"number": "2024-001"})
    engine.fire(reviewed(engine, "m2", co=("m3",)), "merge_into", STAFF, {"main_id": main})
    engine.fire(main, "assign", OFFICE, {"mode": "split", "units": ["housing", "water"]})
    reply_all(engine, main, {"housing": "A", "water": "B"})
    evaluate(engine, main, "m1", "satisfied", housing="satisfied", water="unsatisfied")
    evaluate(engine, main, "m2", "satisfied", housing="satisfied", water="satisfied")
    with pytest.raises(TransitionNotAllowed) as err:  # once a round for each proposer
        engine.fire(main, "evaluate", member("m2"), {"satisfaction": "satisfied"})
    assert "由各提案人每轮评价一次" in err.value.message
    with pytest.raises(TransitionNotAllowed) as err:  # only a proposer evaluates
        engine.fire(
            main, "evaluate_unit", member("m9"), {"unit": "water", "satisfaction": "satisfied"}
        )
    assert "分办提案由各提案人逐一评价已答复的单位" in err.value.message
    done = evaluate(
        engine, main, "m3", "satisfied", housing="basically_satisfied", water="satisfied"
    )
    water = "unsatisfied" if rule == "all" else "satisfied"
    housing = "basically_satisfied" if rule == "all" else "satisfied"
    assert done.data["unit_evaluations"] == [
        {"unit": "housing", "round": 0, "satisfaction": housing},
        {"unit": "water", "round": 0, "satisfaction": water},
    ]
    assert (done.state, done.data["satisfaction"]) == ("closed", "satisfied")


# -- 转社情民意 ---------------------------------------------------------------------------------


def test_conversion_into_an_opinion_report_with_consent(
    on_sql: Callable[..., Engine], sql_url: str
) -> None:
    """Converted proposals start an opinion report linked both ways; without consent, or on a
    ground that is not convertible, the conversion is refused and nothing is started."""
    engine = on_sql(convertible_grounds=["no_concrete_suggestion", "personal"])
    vague = reviewed(engine, "m1", channel="paper")
    academic = reviewed(engine, "m2")
    before = snapshot(engine, vague, academic)
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(vague, "convert", STAFF, {"ground": "no_concrete_suggestion"})
    assert err.value.message == (
        "'convert' refused in state 'under_review': 不能转为社情民意：缺少提案人同意"
        "（proposer_consented: true）；可转的不予立案理由：no_concrete_suggestion、personal / "
        "cannot convert: the consent of the proposer (proposer_consented: true) is missing; "
        "convertible grounds: no_concrete_suggestion, personal"
    )
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(academic, "convert", STAFF, {"ground": "academic", "proposer_consented": True})
    assert "不能转为社情民意：以“academic”不予立案的提案不可转；可转的不予立案理由：" in (
        err.value.message
    )
    assert snapshot(engine, vague, academic) == before
    assert engine.query(workflow="opinion_report").items == []

    converted = engine.fire(
        vague, "convert", STAFF, {"ground": "no_concrete_suggestion", "proposer_consented": True}
    )
    report_id = converted.data["converted_to"]
    assert (converted.state, converted.data["not_filed_ground"]) == (
        "converted",
        "no_concrete_suggestion",
    )
    report = engine.get(report_id)
    assert (report.workflow, report.state, report.parent_id) == ("opinion_report", "draft", vague)
    assert {k: report.data[k] for k in ("converted_from", "reporter", "title", "category")} == {
        "converted_from": vague,
        "reporter": "m1",
        "title": "m1的提案",
        "category": "society",
    }
    engine.fire(report_id, "submit", member("m1"))
    engine.fire(academic, "reject", STAFF, {"ground": "academic"}, reason="属学术问题")
    personal = reviewed(engine, "m3")
    engine.fire(personal, "convert", STAFF, {"ground": "personal", "proposer_consented": True})
    engine.fire(reviewed(engine, "m4"), "file", STAFF, {"number": "2024-001"})
    assert engine.verify() == []

    review = review_report(sql_url, 2024, ORG)
    f = review.figures
    assert (f["received"], f["filed"], f["not_filed"], f["converted"], f["merged"]) == (
        4,
        1,
        3,
        2,
        0,
    )
    assert f["not_filed_by_ground"] == {"academic": 1, "no_concrete_suggestion": 1, "personal": 1}
    assert f["converted_by_ground"] == {"no_concrete_suggestion": 1, "personal": 1}
    shown = lines(review)
    assert shown[("总体", "不予立案")] == ("3", "75.0%")
    assert shown[("总体", "其中转社情民意")] == ("2", "50.0%")
    assert shown[("不予立案理由", "学术问题")] == ("1", "33.3%")
    assert shown[("转社情民意（按不予立案理由）", "个人事务")] == ("1", "100.0%")
    assert shown[("转社情民意（按不予立案理由）", "无具体建议")] == ("1", "100.0%")
    assert ("转社情民意（按不予立案理由）", "学术问题") not in shown
    opinions = opinions_report(sql_url, 2024, ORG)
    assert opinions.figures["by_state"] == {"draft": 1, "submitted": 1}
    assert opinions.figures["per_reporter"] == {
        "m1": {"submitted": 1, "adopted": 0, "instructed": 0}
    }


def test_by_default_only_a_proposal_without_a_concrete_suggestion_converts() -> None:
    engine = new_engine(MemoryStore())
    pid = reviewed(engine, "m1")
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(pid, "convert", STAFF, {"ground": "personal", "proposer_consented": True})
    assert "可转的不予立案理由：no_concrete_suggestion /" in err.value.message
    assert engine.get(pid).version == 3 and engine.children(pid) == []


# -- channel ------------------------------------------------------------------------------------


def test_channels_give_the_online_share(on_sql: Callable[..., Engine], sql_url: str) -> None:
    """A proposal names its channel at submission (online when it names none); a channel
    outside params.channels is refused."""
    engine = on_sql()
    filed = [
        reviewed(engine, "m1"),
        reviewed(engine, "m2", channel="online"),
        reviewed(engine, "m3", channel="paper"),
    ]
    for n, pid in enumerate(filed):
        engine.fire(pid, "file", STAFF, {"number": f"2024-{n:03d}"})
    session = reviewed(engine, "m4", channel="session")
    engine.fire(session, "reject", STAFF, {"ground": "personal"}, reason="个人事务")
    fax = engine.start("proposal", {"title": "传真提案", "first_proposer": "m5"}, member("m5")).id
    before = snapshot(engine, fax)
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(fax, "submit", member("m5"), {"category": "society", "channel": "fax"})
    assert "提交渠道须为online、paper、session之一" in err.value.message
    assert "the channel is one of online, paper, session" in err.value.message
    assert snapshot(engine, fax) == before
    engine.fire(fax, "submit", member("m5"), {"category": "society", "channel": "paper"})
    assert [engine.get(p).data["channel"] for p in filed] == ["online", "online", "paper"]

    review = review_report(sql_url, 2024, ORG)
    assert review.figures["by_channel"] == {
        "online": {"received": 2, "filed": 2},
        "paper": {"received": 2, "filed": 1},
        "session": {"received": 1, "filed": 0},
    }
    assert (review.figures["online"], review.rates["online_share"].text) == (2, "40.0%")
    shown = lines(review)
    assert shown[("总体", "网上提交")] == ("2", "40.0%")
    assert shown[("按提交渠道（收到）", "纸质提交")] == ("2", "40.0%")
    assert shown[("按提交渠道（立案）", "纸质提交")] == ("1", "33.3%")
    assert shown[("按提交渠道（收到）", "大会现场提交")] == ("1", "20.0%")
    handling = handling_report(sql_url, 2024, ORG)
    assert (handling.figures["filed"], handling.figures["online"]) == (3, 2)
    assert lines(handling)[("总体", "网上提交")] == ("2", "66.7%")


def test_a_deployment_lists_its_own_channels() -> None:
    """The first channel listed is the default; one not listed is refused."""
    engine = new_engine(MemoryStore(), channels=["paper", "online"])
    pid = engine.start("proposal", {"title": "纸质", "first_proposer": "m1"}, member("m1")).id
    assert engine.fire(pid, "submit", member("m1"), {"category": "society"}).data["channel"] == (
        "paper"
    )
    other = engine.start("proposal", {"title": "现场", "first_proposer": "m2"}, member("m2")).id
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(other, "submit", member("m2"), {"category": "society", "channel": "session"})
    assert "提交渠道须为paper、online之一" in err.value.message
    assert engine.get(other).version == 1
