"""Versions side by side: two files of one workflow id load together; new instances start on
the newest version unless their org pins another; instances of every version keep running on
the definition they started on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from xieshang import (
    Actor,
    Engine,
    FixedClock,
    InvalidPayload,
    NotFound,
    Registry,
    SettingsError,
    TransitionNotAllowed,
    UnknownTrigger,
)
from xieshang.adapters.settings import Settings, build_engine
from xieshang.adapters.sql import open_store
from xieshang.workflows import load_registry

FIXTURES = Path(__file__).parent / "fixtures" / "versions"
CN = timezone(timedelta(hours=8))
MEMBER = Actor.of("m1", "member", org="guiyang")
OFFICE = Actor.of("o1", "office", org="guiyang")
ZUNYI_OFFICE = Actor.of("o2", "office", org="zunyi")


@pytest.fixture(scope="module")
def versions() -> Registry:
    return load_registry([FIXTURES])


@pytest.fixture
def engine(sql_url: str, versions: Registry, clock: FixedClock) -> Iterator[Engine]:
    with open_store(sql_url) as store:
        yield Engine(store, versions, clock, pins={"guiyang": {"suggestion": 1}})


def test_both_versions_load_and_the_newest_is_the_default(versions: Registry) -> None:
    """The registry holds versions 1 and 2 of suggestion, and of key_proposal_selection."""
    assert versions.version_numbers("suggestion") == [1, 2]
    assert versions.version_numbers("key_proposal_selection") == [1, 2]
    assert versions.get("suggestion").definition.version == 2
    assert versions.for_start("suggestion", "zunyi").definition.version == 2
    assert versions.for_start("suggestion", "guiyang", {"guiyang": {"suggestion": 1}}).hash == (
        versions.get("suggestion", 1).hash
    )


def test_v1_instances_keep_running_beside_v2(engine: Engine) -> None:
    """A pinned org starts on version 1 and runs its triggers; another org starts on version 2
    and runs version 2's; each replays and verifies on its own definition."""
    old = engine.start("suggestion", {"title": "社区养老", "note": "急"}, MEMBER)
    new = engine.start(
        "suggestion",
        {"title": "公交", "category": "society"},
        Actor.of("m2", "member", org="zunyi"),
    )
    assert (old.workflow_version, new.workflow_version) == (1, 2)
    engine.fire(old.id, "accept", OFFICE)
    engine.fire(new.id, "accept", ZUNYI_OFFICE)
    assert (engine.get(old.id).state, engine.get(new.id).state) == ("reviewing", "under_review")
    with pytest.raises(UnknownTrigger) as err:  # version 1 has no refer
        engine.fire(old.id, "refer", OFFICE, {"department": "民政局"})
    assert err.value.allowed == ["accept", "answer"]
    engine.fire(new.id, "refer", ZUNYI_OFFICE, {"department": "民政局"})
    engine.fire(old.id, "answer", OFFICE, {"answer": "已采纳"})
    assert engine.get(old.id).state == "answered" and engine.get(new.id).state == "referred"
    assert engine.verify() == []


def test_a_pin_to_a_version_not_loaded_names_the_loaded_ones(
    versions: Registry, clock: FixedClock, tmp_path: Path
) -> None:
    """Nothing starts on a version that is not there; the refusal names the pin."""
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        engine = Engine(store, versions, clock, pins={"guiyang": {"suggestion": 7}})
        with pytest.raises(NotFound) as err:
            engine.start("suggestion", {"title": "x"}, MEMBER)
    assert err.value.message == (
        "no workflow \"suggestion v7 (pinned for org 'guiyang')\"; known: suggestion v1, "
        "suggestion v2"
    )


def test_pins_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FixedClock
) -> None:
    """``XIESHANG_PINS=org:workflow=version,...`` reaches the engine; a bad one is refused
    naming the form it must have."""
    monkeypatch.setenv("XIESHANG_PINS", "guiyang:suggestion=1, zunyi:suggestion=2")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", workflows=[FIXTURES])
    assert settings.pins == {"guiyang": {"suggestion": 1}, "zunyi": {"suggestion": 2}}
    engine = build_engine(settings)
    try:
        assert engine.start("suggestion", {"title": "x"}, MEMBER).workflow_version == 1
    finally:
        engine.store.close()  # type: ignore[attr-defined]
    monkeypatch.setenv("XIESHANG_PINS", "guiyang:suggestion")
    with pytest.raises(SettingsError) as err:
        Settings()
    assert "expected ORG:WORKFLOW=VERSION" in err.value.message


COMMITTEE = Actor.of("pc", "proposal_committee", org="city")
OLD_COMMITTEE = Actor.of("pc", "proposal_committee", org="old_city")


def _filed(engine: Engine, actor: Actor, title: str) -> str:
    org = actor.org
    member = Actor.of("m1", "member", org=org)
    pid = engine.start("proposal", {"title": title, "first_proposer": "m1"}, member).id
    engine.fire(pid, "submit", member, {"category": "economy"})
    engine.fire(pid, "start_review", actor)
    engine.fire(pid, "file", actor, {"number": title})
    return pid


def test_key_proposal_selection_v1_instances_run_beside_v2(
    sql_url: str, versions: Registry
) -> None:
    """An org pinned to version 1 selects untyped items (its guard checks the fields); an org
    on version 2 selects typed ones (its type refuses an item without a due date)."""
    clock = FixedClock(datetime(2024, 3, 4, 9, tzinfo=CN))
    with open_store(sql_url) as store:
        engine = Engine(store, versions, clock, pins={"old_city": {"key_proposal_selection": 1}})
        old_pid, new_pid = _filed(engine, OLD_COMMITTEE, "甲"), _filed(engine, COMMITTEE, "乙")
        data = {"year": 2024, "filed_count": 20}
        old = engine.start("key_proposal_selection", data, OLD_COMMITTEE)
        new = engine.start("key_proposal_selection", data, COMMITTEE)
        assert (old.workflow_version, new.workflow_version) == (1, 2)
        engine.fire(old.id, "propose_candidates", OLD_COMMITTEE, {"candidates": [old_pid]})
        engine.fire(new.id, "propose_candidates", COMMITTEE, {"candidates": [new_pid]})
        item = {
            "proposal_id": old_pid,
            "lead_leader": "市长",
            "supervising_committee": "经济委员会",
        }
        with pytest.raises(TransitionNotAllowed):  # version 1: the guard wants a due date
            engine.fire(old.id, "select", OLD_COMMITTEE, {"selected": [item]})
        engine.fire(old.id, "select", OLD_COMMITTEE, {"selected": [item | {"due": "2024-09-30"}]})
        new_item = item | {"proposal_id": new_pid}
        with pytest.raises(InvalidPayload):  # version 2: the type wants it
            engine.fire(new.id, "select", COMMITTEE, {"selected": [new_item]})
        engine.fire(new.id, "select", COMMITTEE, {"selected": [new_item | {"due": "2024-09-30"}]})
        assert engine.get(old.id).state == engine.get(new.id).state == "chair_review"
        assert engine.get(old.id).workflow_version == 1
        assert engine.verify() == []


def test_the_python_example_of_the_versions_guide_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/versions.md's Python example runs as written, on the two suggestion files."""
    text = (Path(__file__).parent.parent / "docs" / "versions.md").read_text("utf-8")
    (program,) = re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("suggestion_v1.yaml", "suggestion_v2.yaml"):
        (flows / name).write_text((FIXTURES / name).read_text("utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    exec(compile(program, "docs/versions.md", "exec"), {})  # the page runs as written


def test_a_state_of_an_older_version_can_be_queried(engine: Engine) -> None:
    """``reviewing`` is a state of version 1 only: listing its instances is not refused."""
    iid = engine.start("suggestion", {"title": "社区养老"}, MEMBER).id
    engine.fire(iid, "accept", OFFICE)
    page = engine.query(workflow="suggestion", state="reviewing", actionable_by=OFFICE)
    assert [i.id for i in page.items] == [iid]
