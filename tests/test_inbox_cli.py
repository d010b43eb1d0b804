"""``xieshang inbox --as ACTOR``: the actor's inbox a page at a time, for people and as JSON; and
``fire`` / ``available`` on an instance the actor may not read answer as for a missing one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from xieshang.adapters.cli import app

ORG = "贵阳市政协"
MEMBER = f"m1:member@{ORG}"
OTHER = f"m2:member@{ORG}"
CLOCK = "2024-09-27T09:00:00+08:00"
runner = CliRunner()
WIDE = {"COLUMNS": "240"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "WORKFLOWS", "CLOCK", "DEPLOYMENT", "SYNCHRONOUS"):
        monkeypatch.delenv(f"XIESHANG_{name}", raising=False)
    monkeypatch.setenv("XIESHANG_CLOCK", CLOCK)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'xs.db'}"


def xs(*args: str) -> Result:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def ok_json(*args: str) -> Any:
    result = xs(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def draft(db: str, title: str) -> str:
    data = json.dumps({"title": title, "first_proposer": "m1"})
    return str(ok_json("--db", db, "start", "proposal", "--data", data, "--as", MEMBER)["id"])


def test_the_inbox_pages_with_the_cursor_it_prints(db: str) -> None:
    """m1's three drafts come two to a page, with the triggers m1 may fire; --cursor goes on
    where the page ended; m2, who may not read them, has nothing to act on."""
    made = sorted(draft(db, f"提案{n}") for n in range(3))  # one moment: the id decides
    first = ok_json("--db", db, "inbox", "--as", MEMBER, "--limit", "2")
    assert [i["id"] for i in first["items"]] == made[:2]
    assert first["items"][0]["state"] == "draft"
    assert "submit" in first["items"][0]["may_fire"]
    rest = ok_json(
        "--db", db, "inbox", "--as", MEMBER, "--limit", "2", "--cursor", first["next_cursor"]
    )
    assert ([i["id"] for i in rest["items"]], rest["next_cursor"]) == (made[2:], None)
    assert ok_json("--db", db, "inbox", "--as", OTHER) == {"items": [], "next_cursor": None}
    shown = xs("--db", db, "inbox", "--as", MEMBER, "--state", "draft", "--workflow", "proposal")
    assert shown.exit_code == 0
    assert all(iid in shown.stdout for iid in made) and "submit" in shown.stdout
    nothing = xs("--db", db, "inbox", "--as", OTHER)
    assert "nothing to act on for m2" in nothing.stdout


def test_bad_inbox_options_exit_2_naming_what_is_allowed(db: str) -> None:
    """An unknown state of the workflow, an unknown workflow and a cursor it did not print are
    usage errors (exit 2) naming the option."""
    draft(db, "提案")
    bad = xs("--db", db, "inbox", "--as", MEMBER, "--workflow", "proposal", "--state", "drafts")
    assert bad.exit_code == 2 and "--state 'drafts'" in bad.stderr and "'draft'" in bad.stderr
    bad = xs("--db", db, "inbox", "--as", MEMBER, "--workflow", "proposals")
    assert bad.exit_code == 2 and "--workflow 'proposals'" in bad.stderr
    bad = xs("--db", db, "inbox", "--as", MEMBER, "--cursor", "page-two")
    assert bad.exit_code == 2 and "--cursor 'page-two'" in bad.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["fire", "{}", "submit", "--payload", '{"category": "economy"}', "--as", OTHER],
        ["available", "{}", "--as", OTHER],
        ["show", "{}", "--as", OTHER],
    ],
)
def test_an_unreadable_instance_is_answered_as_a_missing_one(db: str, command: list[str]) -> None:
    """m2 may not read m1's draft: fire, available and show answer it exactly as an instance
    that does not exist (exit 1, the same error but for the id), and nothing is written."""
    iid = draft(db, "提案")
    hidden = xs("--db", db, *[a.replace("{}", iid) for a in command], "--json")
    missing = xs("--db", db, *[a.replace("{}", "nowhere") for a in command], "--json")
    assert hidden.exit_code == missing.exit_code == 1
    assert json.loads(hidden.stdout) == json.loads(missing.stdout.replace("nowhere", iid))
    assert json.loads(hidden.stdout)["error"]["code"] == "not-found"
    assert ok_json("--db", db, "show", iid)["version"] == 1
