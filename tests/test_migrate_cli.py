"""``xieshang migrate``, ``suspend``, ``resume`` and ``admin set-state`` on the command line:
the same reports and refusals as the Python API, exit 1 when an instance cannot move."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from xieshang import Actor, Engine, FixedClock
from xieshang.adapters.cli import app
from xieshang.adapters.sql import open_store
from xieshang.workflows import load_registry

FIXTURES = Path(__file__).parent / "fixtures" / "versions"
ORG = "guiyang"
MEMBER = Actor.of("m1", "member", org=ORG)
OFFICE = Actor.of("o1", "office", org=ORG)
CLOCK = "2024-03-02T09:00:00+00:00"


def seeded(tmp_path: Path) -> tuple[str, str, str]:
    """A database with one version-1 suggestion under review and one submitted."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    clock = FixedClock(datetime(2024, 3, 1, 9, tzinfo=UTC))
    with open_store(url) as store:
        engine = Engine(store, load_registry([FIXTURES]), clock, pins={ORG: {"suggestion": 1}})
        review = engine.start("suggestion", {"title": "社区养老"}, MEMBER).id
        engine.fire(review, "accept", OFFICE)
        waiting = engine.start("suggestion", {"title": "公交"}, MEMBER).id
    return url, review, waiting


def run(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["--db", url, "--workflows", str(FIXTURES), "--clock", CLOCK, *args]
    )
    return result.exit_code, result.output


def test_migrate_dry_run_then_for_real(tmp_path: Path) -> None:
    """The dry run reports both instances and exits 1 for the one that cannot move; the real
    run moves the other; audit verify passes."""
    url, review, waiting = seeded(tmp_path)
    args = ["migrate", "suggestion", "--to", "2", "--map", "reviewing=under_review"]
    args += ["--set", "category='society'"]
    code, out = run(url, *args, "--dry-run", "--json")
    assert code == 1
    report = json.loads(out)
    assert (report["dry_run"], report["migrated"], report["refused"]) == (True, 0, 1)
    plans = {p["instance_id"]: p for p in report["instances"]}
    assert plans[review]["target"] == "under_review" and plans[review]["problems"] == []
    assert plans[waiting]["problems"][0].startswith("its pending timer firing 'accept'")
    code, out = run(url, *args, "--reason", "第二版")
    assert code == 1
    assert f"✓ {review} reviewing@v1 moved to under_review@v2; data: category=society" in out
    assert f"✗ {waiting} submitted@v1: cannot move" in out
    assert "suggestion → version 2: 1 moved, 1 cannot move" in out
    code, out = run(url, "show", review, "--json")
    assert (json.loads(out)["state"], json.loads(out)["workflow_version"]) == ("under_review", 2)
    code, out = run(url, "audit", "verify")
    assert code == 0, out


def test_a_malformed_map_is_a_usage_error(tmp_path: Path) -> None:
    url, _, _ = seeded(tmp_path)
    code, out = run(url, "migrate", "suggestion", "--to", "2", "--map", "reviewing")
    assert code == 2
    assert "--map 'reviewing': expected OLD=NEW, two state names" in out


def test_suspend_resume_and_set_state(tmp_path: Path) -> None:
    """Each command writes its row; a fire while suspended exits 1 naming ``resume``."""
    url, review, waiting = seeded(tmp_path)
    code, out = run(url, "suspend", review, "--reason", "核查")
    assert code == 0 and f"✓ {review} suspended (version 3)" in out
    code, out = run(url, "fire", review, "answer", "--as", "o1:office@guiyang", "--payload",
                    '{"answer": "x"}')  # fmt: skip
    assert code == 1 and "is suspended since" in out and "(allowed: resume)" in out
    code, out = run(url, "resume", review, "--reason", "核查完毕", "--as", "a1:admin@guiyang")
    assert code == 0 and f"✓ {review} resumed (version 4)" in out
    code, out = run(url, "admin", "set-state", waiting, "reviewing", "--reason", "纸质受理")
    assert code == 0 and f"✓ {waiting} now in reviewing (version 2)" in out
    code, out = run(url, "admin", "set-state", waiting, "nowhere", "--reason", "x")
    assert code == 1 and "its states: submitted, reviewing, answered" in out
    code, out = run(url, "suspend", review, "--reason", "x", "--as", "o1:office@guiyang")
    assert code == 1 and "allowed roles: admin" in out
    code, out = run(url, "audit", "verify")
    assert code == 0, out


def test_show_names_the_suspension_and_the_definition_version(tmp_path: Path) -> None:
    url, review, _ = seeded(tmp_path)
    run(url, "suspend", review, "--reason", "核查")
    code, out = run(url, "show", review)
    assert code == 0
    assert "3 (definition v1)" in out
    assert "since 2024-03-02 17:00 +08:00 (resume to go on)" in out
