"""The command line for people: bad input is refused with an exit code and a message, never a
traceback, and changes nothing; reading commands never create a database; --json anywhere;
output is never cut short; names a person may mistype are suggested."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from xieshang.adapters.cli import app

ORG = "贵阳市政协"
MEMBER = f"m1:member@{ORG}"
COMMITTEE = f"s1:proposal_committee@{ORG}"
OFFICE = f"o1:supervision_office@{ORG}"
CLOCK = "2024-09-27T09:00:00+08:00"
DATA = json.dumps({"title": "关于加强农村教育的建议", "first_proposer": "m1"}, ensure_ascii=False)
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "WORKFLOWS", "CLOCK", "DEPLOYMENT", "SYNCHRONOUS", "CALENDAR"):
        monkeypatch.delenv(f"XIESHANG_{name}", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("XIESHANG_CLOCK", CLOCK)
    monkeypatch.chdir(tmp_path)


def xs(*args: str) -> Result:
    """The CLI in-process: never a traceback, whatever it is given."""
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def ok(*args: str) -> Any:
    result = xs(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def proposal(db: str, title: str | None = None) -> str:
    data = DATA if title is None else json.dumps({"title": title, "first_proposer": "m1"})
    return str(ok("--db", db, "start", "proposal", "--data", data, "--as", MEMBER)["id"])


def rows(db: str, iid: str) -> int:
    return len(ok("--db", db, "history", iid))


# -- bad input -----------------------------------------------------------------------------------

DEEP = '{"a":' * 4000 + "1" + "}" * 4000
BAD_PAYLOADS = [
    ("nested 4000", DEEP, 2, "nests deeper than a JSON reader goes"),
    (
        "nested 40",
        '{"category": "society", "x": ' + '{"a":' * 40 + "1" + "}" * 40 + "}",
        1,
        "nests deeper than 32 levels",
    ),
    ("NaN", '{"category": NaN}', 1, "category: is not a finite number"),
    ("1e999", '{"category": "society", "n": 1e999}', 1, "n: is not a finite number"),
    ("NUL", '{"category": "soc\\u0000iety"}', 1, "category: holds a NUL character"),
    ("a list", "[1, 2]", 2, "--payload must be a JSON object, got list"),
]


@pytest.mark.parametrize(
    ("case", "payload", "code", "message"), BAD_PAYLOADS, ids=[b[0] for b in BAD_PAYLOADS]
)
def test_a_bad_payload_exits_with_its_message_and_changes_nothing(
    tmp_path: Path, case: str, payload: str, code: int, message: str
) -> None:
    """NaN, 1e999, NUL, deep nesting, a list: exit 1 or 2 naming it; the instance is as it was."""
    db = str(tmp_path / "x.db")
    iid = proposal(db)
    result = xs("--db", db, "fire", iid, "submit", "--payload", payload, "--as", MEMBER)
    assert result.exit_code == code
    assert message in " ".join(result.stderr.split())
    machine = xs("--db", db, "fire", iid, "submit", "--payload", payload, "--as", MEMBER, "--json")
    assert json.loads(machine.stdout)["error"]["code"] in ("invalid-payload", "usage")
    assert rows(db, iid) == 1


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    poison=st.sampled_from(["NaN", "Infinity", "-1e999", '"\\u0000"', '"\\ud800"', "1" + "0" * 30]),
    depth=st.integers(0, 3),
    where=st.sampled_from(["--payload", "--data"]),
)
def test_fuzz_the_cli_refuses_every_poisoned_json(
    tmp_path_factory: pytest.TempPathFactory, poison: str, depth: int, where: str
) -> None:
    """A poisoned value at any depth of --payload or --data: exit 1, a message, nothing written."""
    db = str(tmp_path_factory.mktemp("fuzz") / "x.db")
    iid = proposal(db)
    value = "[" * depth + poison + "]" * depth
    if where == "--payload":
        args = ["fire", iid, "submit", "--payload", f'{{"category": "society", "x": {value}}}']
    else:
        args = [
            "start",
            "proposal",
            "--data",
            f'{{"title": "t", "first_proposer": "m1", "x": {value}}}',
        ]
    result = xs("--db", db, *args, "--as", MEMBER)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid ")
    assert [i["id"] for i in ok("--db", db, "list")["items"]] == [iid]
    assert rows(db, iid) == 1


# -- reading commands never create a database ----------------------------------------------------

READERS = [
    ["list"],
    ["show", "abc"],
    ["history", "abc"],
    ["available", "abc", "--as", MEMBER],
    ["audit", "verify"],
    ["report", "review", "--year", "2024"],
]


@pytest.mark.parametrize("command", READERS, ids=[" ".join(c[:2]) for c in READERS])
@pytest.mark.parametrize("kind", ["missing", "empty file", "not ours"])
def test_a_reading_command_refuses_a_database_that_is_not_there(
    tmp_path: Path, command: list[str], kind: str
) -> None:
    """A missing file, an empty file, or a SQLite file without our tables: exit 2 naming the
    path and `xieshang demo`; no file is created or changed."""
    path = tmp_path / "nothing.db"
    if kind == "empty file":
        path.touch()
    elif kind == "not ours":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
        conn.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = xs("--db", str(path), *command)
    assert result.exit_code == 2
    said = " ".join(result.stderr.split())
    assert str(path) in said and "xieshang demo" in said and "--db" in said
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "xieshang.db").exists()


@pytest.mark.postgres
def test_a_reading_command_refuses_a_postgresql_database_without_our_tables(
    pg_database: str,
) -> None:
    """An empty PostgreSQL schema is refused by list, and no table is made in it."""
    result = xs("--db", pg_database, "list")
    assert result.exit_code == 2
    assert "holds no xieshang data" in result.stderr and "xieshang demo" in result.stderr
    with psycopg.connect(pg_database) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchone()
    assert tables == (0,)


def test_the_db_option_takes_a_path_or_a_url(tmp_path: Path) -> None:
    """--db x.db and --db sqlite:///x.db are the same database, for every command."""
    iid = proposal("x.db")
    assert ok("--db", f"sqlite:///{tmp_path / 'x.db'}", "show", iid)["id"] == iid
    assert ok("report", "review", "--year", "2024", "--db", "x.db")["year"] == 2024


# -- --json anywhere -----------------------------------------------------------------------------


def test_json_is_taken_before_or_after_every_command(tmp_path: Path) -> None:
    """Each command gives the same JSON with --json before its name as after its arguments,
    plugins' commands (report, calendar, tokens) included."""
    flow = tmp_path / "flows" / "survey.yaml"
    flow.parent.mkdir()
    flow.write_text(
        "id: survey\nversion: 1\ntitle: {zh: 调研}\nroles: {office: {zh: 办公室}}\n"
        "states:\n  open: {initial: true, label: {zh: 开}}\n  done: {final: true, label: {zh: 完}}"
        "\ntransitions:\n  - {trigger: finish, from: open, to: done, roles: [office]}\n",
        encoding="utf-8",
    )
    iid = proposal("x.db")
    commands = [
        ["list"],
        ["show", iid],
        ["history", iid],
        ["available", iid, "--as", MEMBER],
        ["audit", "verify"],
        ["report", "review", "--year", "2024"],
        ["validate", str(flow)],
        ["calendar", "add-workdays", "2024-09-27", "5"],
        ["tokens", "list"],
    ]
    for command in commands:
        before = xs("--db", "x.db", "--json", *command)
        after = xs("--db", "x.db", *command, "--json")
        assert before.exit_code == after.exit_code == 0, (command, before.output)
        assert json.loads(before.stdout) == json.loads(after.stdout), command


# -- output for people ---------------------------------------------------------------------------


def test_piped_output_is_never_cut_short(tmp_path: Path) -> None:
    """A long title and an org name wider than any terminal come out whole when piped, in the
    installed command's real pipe too: no ellipsis, no wrapping inside a value."""
    title = "关于" + "加强城乡社区养老服务体系建设" * 12 + "的建议"
    iid = proposal("x.db", title)
    shown = xs("--db", "x.db", "show", iid)
    assert title in shown.stdout and "…" not in shown.stdout
    listed = xs("--db", "x.db", "list")
    assert iid in listed.stdout and "…" not in listed.stdout
    done = subprocess.run(
        [sys.executable, "-m", "xieshang.adapters.cli", "--db", "x.db", "show", iid],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "XIESHANG_CLOCK": CLOCK, "COLUMNS": "40"},
    )
    assert done.returncode == 0, done.stderr
    assert title in done.stdout and "…" not in done.stdout


def test_an_empty_list_says_so_naming_the_filters() -> None:
    """No instance matches: the list says so, with what was asked."""
    proposal("x.db")
    result = xs("--db", "x.db", "list", "--workflow", "proposal", "--state", "closed")
    assert result.exit_code == 0
    assert result.stdout.strip() == "没有实例 no instances (workflow proposal, state closed)"


def test_times_carry_their_zone() -> None:
    """show, list and history print China time with +08:00."""
    iid = proposal("x.db")
    for command in (["show", iid], ["list"], ["history", iid]):
        assert "2024-09-27 09:00 +08:00" in xs("--db", "x.db", *command).stdout, command


def test_available_shows_each_triggers_payload_fields() -> None:
    """Each trigger lists the payload fields it takes, required ones starred."""
    iid = proposal("x.db")
    table = xs("--db", "x.db", "available", iid, "--as", MEMBER).stdout
    submit = next(line for line in table.splitlines() if "(submit)" in line)
    assert "category*" in submit
    assert "填写 payload (* required)" in table


# -- did you mean --------------------------------------------------------------------------------


def test_an_unknown_trigger_suggests_among_the_states_triggers_only() -> None:
    """'start_reviw' suggests 'start_review' and lists what can fire from 'submitted' only."""
    iid = proposal("x.db")
    ok(
        "--db",
        "x.db",
        "fire",
        iid,
        "submit",
        "--payload",
        '{"category": "society"}',
        "--as",
        MEMBER,
    )
    result = xs("--db", "x.db", "fire", iid, "start_reviw", "--as", COMMITTEE)
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert "has no trigger 'start_reviw'; did you mean 'start_review'?" in said
    assert "return_for_revision, start_review, withdraw)" in said
    assert "assign" not in said and "file" not in said
    error = json.loads(
        xs("--db", "x.db", "fire", iid, "start_reviw", "--as", COMMITTEE, "--json").stdout
    )["error"]
    assert error["allowed"] == ["return_for_revision", "start_review", "withdraw"]
    assert rows("x.db", iid) == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["start", "proposl", "--as", MEMBER], 1, "did you mean 'proposal'?"),
        (["list", "--workflow", "proposl"], 2, "did you mean 'proposal'?"),
        (["list", "--state", "submited"], 2, "did you mean 'submitted'"),
        (["list", "--workflow", "proposal", "--state", "fild"], 2, "did you mean 'filed' or"),
        (
            ["start", "proposal", "--data", DATA, "--as", f"member:m1@{ORG}"],
            2,
            f"did you mean 'm1:member@{ORG}'? (an actor is id:role)",
        ),
        (
            ["start", "proposal", "--data", DATA, "--as", f"m1:membr@{ORG}"],
            2,
            "did you mean 'member'?",
        ),
    ],
)
def test_mistyped_names_get_the_nearest_known_ones(
    args: list[str], code: int, message: str
) -> None:
    """Workflows, states and roles (a swapped id:role recognised) are suggested; nothing is
    written."""
    iid = proposal("x.db")
    result = xs("--db", "x.db", *args)
    assert result.exit_code == code
    assert message in " ".join(result.stderr.split())
    assert [i["id"] for i in ok("--db", "x.db", "list")["items"]] == [iid]


# -- tick ----------------------------------------------------------------------------------------


def test_tick_lists_what_fired() -> None:
    """tick names each timer it fired (kind, trigger, instance, due time with its zone), and
    says when nothing was due."""
    iid = proposal("x.db")
    steps = [
        ("submit", MEMBER, '{"category": "society"}'),
        ("start_review", COMMITTEE, None),
        ("file", COMMITTEE, '{"number": "1"}'),
        ("assign", OFFICE, '{"mode": "sole", "units": ["housing"]}'),
    ]
    for trigger, actor, payload in steps:
        ok(
            "--db",
            "x.db",
            "fire",
            iid,
            trigger,
            "--as",
            actor,
            *(["--payload", payload] if payload else []),
        )
    report = ok("--db", "x.db", "tick", "--now", "2024-12-27T23:00:00+08:00")
    assert report["fired"] == 1
    assert [(t["instance_id"], t["kind"], t["outcome"]) for t in report["timers"]] == [
        (iid, "reminder", "fired")
    ]
    late = xs("--db", "x.db", "tick", "--now", "2024-12-28T08:00:00+08:00").stdout
    assert re.search(
        rf"^fired +deadline +overdue {iid} \(due 2024-12-2\d \d\d:\d\d \+08:00\)$", late, re.M
    ), late
    assert "fired 1, stale 0" in late
    idle = xs("--db", "x.db", "tick", "--now", "2024-12-28T09:00:00+08:00").stdout
    assert "nothing was due up to 2024-12-28 09:00 +08:00" in idle
