"""Separation of duties with a scope: ``not_by: {triggers: [...], scope: last}``.

The list form, ``not_by: [draft_report]``, bars whoever ever fired one of those triggers on the
instance (``scope: ever``). With ``scope: last`` only the actor of the most recent such step is
barred: a report redrafted by a colleague may be approved by its first drafter. A refusal names
the rule; a replay judges the rule again over the rows before, so a rewritten actor is caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from constructs_support import BACKENDS, make_engine, snapshot

from xieshang import Actor, DefinitionError, Engine, Forbidden, Registry

W1 = Actor.of("w1", "writer", org="city")
W2 = Actor.of("w2", "writer", org="city")
W3 = Actor.of("w3", "writer", org="city")

REPORT = """\
id: report
version: 1
title: {zh: 调研报告}
roles: {writer: {zh: 执笔人}}
data:
  title: {type: string, required: true}
states:
  drafting: {initial: true, label: {zh: 起草中}}
  drafted: {label: {zh: 已起草}}
  approved: {final: true, label: {zh: 已审定}}
  endorsed: {final: true, label: {zh: 已认可}}
transitions:
  - trigger: draft_report
    from: [drafting, drafted]
    to: drafted
    roles: [writer]
  - trigger: approve
    from: drafted
    to: approved
    roles: [writer]
    not_by: {triggers: [draft_report], scope: last}
  - trigger: endorse
    from: drafted
    to: endorsed
    roles: [writer]
    not_by: [draft_report]
"""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request, tmp_path, {"report": REPORT})


def drafted_by(engine: Engine, *writers: Actor) -> str:
    report = engine.start("report", {"title": "关于老旧小区改造的调研报告"}, W1).id
    for w in writers:
        engine.fire(report, "draft_report", w)
    return report


def test_scope_last_bars_the_actor_of_the_latest_draft_naming_the_rule(engine: Engine) -> None:
    report = drafted_by(engine, W1, W2)
    before = snapshot(engine)
    with pytest.raises(Forbidden) as caught:
        engine.fire(report, "approve", W2)
    assert caught.value.message == (
        "actor 'w2' made the last draft_report on this instance and so may not fire 'approve' "
        "(separation of duties: not_by [draft_report], scope last)"
    )
    assert (caught.value.details["not_by"], caught.value.details["scope"]) == (
        ["draft_report"],
        "last",
    )
    assert snapshot(engine) == before


def test_scope_last_lets_an_earlier_drafter_approve(engine: Engine) -> None:
    report = drafted_by(engine, W1, W2)
    approved = engine.fire(report, "approve", W1)
    assert (approved.state, approved.version) == ("approved", 4)
    assert engine.verify() == []


def test_the_list_form_bars_every_earlier_drafter(engine: Engine) -> None:
    report = drafted_by(engine, W1, W2)
    for writer in (W1, W2):
        with pytest.raises(Forbidden) as caught:
            engine.fire(report, "endorse", writer)
        assert caught.value.message == (
            f"actor {writer.id!r} fired draft_report on this instance and so may not fire "
            "'endorse' (separation of duties: not_by [draft_report], scope ever)"
        )
    assert engine.fire(report, "endorse", W3).state == "endorsed"


def test_available_says_the_same(engine: Engine) -> None:
    report = drafted_by(engine, W1, W2)
    by_trigger = {a.trigger: a for a in engine.available(report, W2)}
    assert by_trigger["approve"].allowed is False
    assert "scope last" in (by_trigger["approve"].reason or "")
    assert {a.trigger: a.allowed for a in engine.available(report, W1)} == {
        "draft_report": True,
        "approve": True,
        "endorse": False,
    }


def test_a_replay_judges_the_scope_again(engine: Engine) -> None:
    """The approving row rewritten to name the last drafter fails its replay."""
    report = drafted_by(engine, W1, W2)
    engine.fire(report, "approve", W1)
    rows = engine.store.history(report)
    assert engine._replay_rows(rows).state == "approved"
    forged = [*rows[:-1], replace(rows[-1], actor=W2.to_dict())]
    with pytest.raises(Forbidden) as caught:
        engine._replay_rows(forged)
    assert caught.value.message == (
        "row 4: 'w2' fired 'approve' after firing draft_report (separation of duties, scope last)"
    )


def test_an_unknown_trigger_or_scope_is_refused_with_its_path() -> None:
    text = REPORT.replace(
        "triggers: [draft_report], scope: last", "triggers: [draft_reprot], scope: last"
    )
    with pytest.raises(DefinitionError) as caught:
        Registry.from_texts([("report.yaml", text)])
    assert [(p.code, p.path) for p in caught.value.problems] == [
        ("XS113", "transitions[1].not_by.triggers[0]")
    ]
    assert "did you mean 'draft_report'?" in caught.value.problems[0].message
    text = REPORT.replace("scope: last", "scope: latest")
    with pytest.raises(DefinitionError) as caught:
        Registry.from_texts([("report.yaml", text)])
    assert [p.code for p in caught.value.problems] == ["XS010"]
    assert "transitions[1].not_by" in caught.value.problems[0].path
