"""A report produced for an actor leaves out the detail rows of instances it may not read (wide
rows, ranking lines, per-target figures) and keeps the year's counts whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_access import NOW, ORG, put

from xieshang import Actor, Commit, Engine, FixedClock
from xieshang.adapters.reports import report
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

VOTE = {
    "members_total": 40,
    "present": 38,
    "ballots_issued": 38,
    "ballots_returned": 36,
    "vote_unsatisfied": 2,
    "vote_unknown": 1,
    "vote_blank": 0,
}


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Two appraised units voted on in 2024; the one of 市水务局 is read by the office only."""
    url = f"sqlite:///{tmp_path / 'xs.db'}"
    with open_store(url) as store:
        engine = Engine(store, bundled(), FixedClock(NOW))
        for iid, target, satisfied in (("a1", "市教育局", 33), ("a2", "市水务局", 30)):
            data = {"target": target, "target_unit": target, "year": 2024, **VOTE}
            put(engine, "democratic_appraisal", "voting", {**data, "vote_satisfied": satisfied},
                iid=iid)  # fmt: skip
        store.apply(Commit(readers={"a2": {"r:cppcc_office": 3}}))
    return url


def test_a_report_for_an_actor_shows_only_what_it_may_read(db: str) -> None:
    """For a member, the 市水务局 row, ranking line and per-target figure are gone, and so is
    everything for another org's member; for no actor, both units are there. The counts of
    the year are the same for all."""
    whole = report("appraisal", db, 2024, ORG)
    member = report("appraisal", db, 2024, ORG, actor=Actor.of("m1", "member", org=ORG))
    stranger = report("appraisal", db, 2024, ORG, actor=Actor.of("m9", "member", org="town"))
    assert [row[0] for row in whole.wide["评议对象"][1]] == ["市教育局", "市水务局"]
    assert [row[0] for row in member.wide["评议对象"][1]] == ["市教育局"]
    assert stranger.wide["评议对象"][1] == []
    ranked = [ln.item for ln in member.lines if ln.section == "满意率排名"]
    assert ranked == ["第1名 市教育局"]
    assert [ln.item for ln in whole.lines if ln.section == "满意率排名"] == [
        "第1名 市教育局",
        "第2名 市水务局",
    ]
    assert [t["target"] for t in member.figures["per_target"]] == ["市教育局"]
    assert member.figures["top"] == ["市教育局"] and whole.figures["top"] == [
        "市教育局",
        "市水务局",
    ]
    for rep in (member, stranger):
        assert rep.figures["targets"] == whole.figures["targets"] == 2
        assert rep.rates["satisfaction_rate"] == whole.rates["satisfaction_rate"]


def test_the_report_command_takes_the_actor_it_is_for(db: str) -> None:
    """``xieshang report appraisal --as`` prints only the rows the actor may read; a malformed
    actor exits 2 naming --as."""
    from typer.testing import CliRunner

    from xieshang.adapters.cli import app

    runner = CliRunner()
    args = ["--db", db, "report", "appraisal", "--year", "2024", "--org", ORG, "--format", "csv"]
    whole = runner.invoke(app, args, env={"COLUMNS": "240"})
    member = runner.invoke(app, [*args, "--as", f"m1:member@{ORG}"], env={"COLUMNS": "240"})
    assert whole.exit_code == member.exit_code == 0, member.output
    assert "市水务局" in whole.stdout and "市水务局" not in member.stdout
    assert "市教育局" in member.stdout
    bad = runner.invoke(app, [*args, "--as", "m1"])
    assert bad.exit_code == 2 and "--as 'm1'" in bad.output
