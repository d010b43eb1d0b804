"""The demo: a simulated year, deterministic for a seed, with an intact audit chain."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xieshang.adapters.cli import app
from xieshang.adapters.demo import run_demo


def small(path: Path, seed: int = 7) -> dict[str, object]:
    result = run_demo(path, seed=seed, proposals=30, topics=8, opinions=5, progress=False)
    assert result.verify_problems == []
    assert result.refusals == []
    assert result.transitions > 200 and result.db_bytes > 0
    return {k: r.to_dict() for k, r in result.reports.items()}


def test_same_seed_gives_the_same_reports(tmp_path: Path) -> None:
    first = small(tmp_path / "a.db")
    second = small(tmp_path / "b.db")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    handling = first["handling"]["figures"]  # type: ignore[index]
    assert handling["filed"] > 20 and handling["closed"] >= handling["filed"] - 3
    # eight topics approved in February; the June revision cancels one and adds one
    assert first["plan"]["figures"]["planned"] == 9  # type: ignore[index]
    plan = first["plan"]["figures"]  # type: ignore[index]
    assert plan["cancelled"] == 1
    assert plan["held"] + plan["carried_over"] == 8 and plan["closed"] == plan["held"]
    assert 0 < plan["instructed"] <= plan["held"]
    opinions = first["opinions"]["figures"]  # type: ignore[index]
    assert opinions["submitted"] == 5
    assert opinions["adopted"] + opinions["not_adopted"] == 5
    key = first["key_proposals"]["figures"]  # type: ignore[index]
    assert key["supervised"] >= 1 and key["concluded"] == key["written_back"] == key["supervised"]
    appraisal = first["appraisal"]["figures"]  # type: ignore[index]
    assert (appraisal["voted"], appraisal["recounts"], appraisal["rectified_again"]) == (4, 1, 1)
    micro = first["micro"]["figures"]  # type: ignore[index]
    assert (micro["collected"], micro["escalated"], micro["escalated_proposals_filed"]) == (
        12,
        2,
        2,
    )
    online = first["online"]["figures"]  # type: ignore[index]
    assert (online["posted"], online["closed_without_comments"]) == (6, 1)


def test_another_seed_gives_another_year(tmp_path: Path) -> None:
    one, two = small(tmp_path / "a.db", seed=1), small(tmp_path / "b.db", seed=2)
    assert one != two
    review = two["review"]["figures"]  # type: ignore[index]
    # proposals merge into filed ones and are converted into opinion reports
    assert review["merged"] > 0 and review["converted"] > 0
    assert review["converted_by_ground"] == {"no_concrete_suggestion": review["converted"]}


def test_demo_command_replaces_the_database_and_verifies(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    db.write_bytes(b"an old file")
    args = ["demo", "--db", str(db), "--proposals", "12", "--topics", "5", "--opinions", "3"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["verified"] is True and out["transitions"] > 0
    assert out["reports"]["plan"]["figures"]["planned"] == 6  # five, one cancelled, one added
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "✓" in table.output and "transitions" in table.output
    report = CliRunner().invoke(
        app, ["report", "review", "--year", "2024", "--db", str(db), "--format", "json"]
    )
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["figures"]["received"] > 0
    duties = CliRunner().invoke(
        app, ["report", "duties", "--year", "2024", "--db", str(db), "--format", "json"]
    )
    assert duties.exit_code == 0, duties.output
    figures = json.loads(duties.output)["figures"]
    members = figures["members"]
    assert len(members) == 180 and len(figures["by_sector"]) == 28
    assert members[0]["rank"] == 1 and members[0]["total"] >= members[-1]["total"]
    assert sum(m["total"] for m in members) == figures["points"] > 0
    assert {m["sector"] for m in members} >= {"中共", "宗教界"}
