"""The ``xieshang`` command line: checking and drawing workflow files, running and auditing."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sysconfig
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from xieshang import FixedClock, SettingsError, SystemClock
from xieshang.adapters.cli import app
from xieshang.adapters.settings import Settings, build_engine

ORG = "贵阳市政协"
MEMBER = f"m1:member@{ORG}"
COMMITTEE = f"c1:proposal_committee@{ORG}"
# a draft is read by its author alone: refusals on one are shown by the author in another role
AUTHOR_AS_COMMITTEE = f"m1:proposal_committee@{ORG}"
OFFICE = f"s1:supervision_office@{ORG}"
UNIT = f"u1:handling_unit@{ORG}/市教育局"
CLOCK = "2024-09-27T09:00:00+08:00"
PROPOSAL_DATA = json.dumps({"title": "关于加强农村教育的建议", "first_proposer": "m1"})

SURVEY = """\
id: survey
version: 1
title: {zh: 调研课题}
roles:
  office: {zh: 办公室}
data:
  topic: {type: string, required: true}
states:
  open: {initial: true, label: {zh: 已立项}}
  done: {final: true, label: {zh: 已结题}}
transitions:
  - trigger: finish
    label: {zh: 结题}
    from: open
    to: done
    roles: [office]
"""

BROKEN = """\
id: broken
version: 1
title: {zh: 有错的流程}
roles:
  office: {zh: 办公室}
states:
  open: {initial: true, label: {zh: 开}}
  done: {final: true, label: {zh: 完}}
transitions:
  - trigger: finish
    from: open
    to: dnoe
    roles: [ofice]
"""

SPAWNS = """\
id: batch
version: 1
title: {zh: 批量交办}
roles:
  office: {zh: 办公室}
states:
  open: {initial: true, label: {zh: 开}}
  done: {final: true, label: {zh: 完}}
transitions:
  - trigger: dispatch
    from: open
    to: done
    roles: [office]
    payload:
      units: {type: list, items: string, required: true}
    spawn:
      workflow: WORKFLOW
      for_each: payload.units
      data: {title: "'交办'", first_proposer: item}
"""

runner = CliRunner()
WIDE = {"COLUMNS": "240"}  # rich wraps tables to the terminal width


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "WORKFLOWS", "CLOCK", "DEPLOYMENT", "SYNCHRONOUS"):
        monkeypatch.delenv(f"XIESHANG_{name}", raising=False)
    monkeypatch.setenv("XIESHANG_CLOCK", CLOCK)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'xs.db'}"


def xs(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; our errors and bad input never end in a traceback."""
    result = runner.invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def ok_json(*args: str, env: dict[str, str] | None = None) -> Any:
    result = xs(*args, "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def new_proposal(db: str) -> str:
    started = ok_json("--db", db, "start", "proposal", "--data", PROPOSAL_DATA, "--as", MEMBER)
    return str(started["id"])


def installed_script() -> str:
    found = shutil.which("xieshang", path=sysconfig.get_path("scripts")) or shutil.which("xieshang")
    assert found, "the console script is not installed: pip install -e ."
    return found


# -- validate --------------------------------------------------------------------------------


def test_validate_ticks_every_valid_file_and_exits_0(tmp_path: Path) -> None:
    """Valid files, given one by one or as a directory, each get a ✓ line and exit 0."""
    write(tmp_path / "flows" / "survey.yaml", SURVEY)
    bundled = Path(__file__).parents[1] / "workflows" / "proposal.yaml"
    result = xs("validate", str(tmp_path / "flows"), str(bundled))
    assert result.exit_code == 0, result.output
    assert f"✓ {tmp_path / 'flows' / 'survey.yaml'}" in result.stdout
    assert f"✓ {bundled}" in result.stdout


def test_validate_lists_every_problem_with_its_file_and_line(tmp_path: Path) -> None:
    """A broken file exits 1 and prints each problem as file:line: CODE path: message."""
    write(tmp_path / "broken.yaml", BROKEN)
    result = xs("validate", "broken.yaml")
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if " XS" in line]
    assert lines == [
        "broken.yaml:12: XS101 transitions[0].to: unknown state 'dnoe'; did you mean 'done'?",
        "broken.yaml:13: XS110 transitions[0].roles[0]: unknown role 'ofice'; did you mean "
        "'office'?",
    ]
    assert "✓" not in result.stdout


def test_validate_json_format_gives_valid_flag_and_problems(tmp_path: Path) -> None:
    """--format json prints {"valid": false, "problems": [...]} with code, path and line."""
    write(tmp_path / "broken.yaml", BROKEN)
    write(tmp_path / "survey.yaml", SURVEY)
    result = xs("validate", "--format", "json", "broken.yaml", "survey.yaml")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [(p["file"], p["line"], p["code"], p["path"]) for p in report["problems"]] == [
        ("broken.yaml", 12, "XS101", "transitions[0].to"),
        ("broken.yaml", 13, "XS110", "transitions[0].roles[0]"),
    ]
    assert json.loads(xs("validate", "--format", "json", "survey.yaml").stdout) == {
        "valid": True,
        "files": ["survey.yaml"],
        "problems": [],
    }


def test_validate_names_both_files_of_an_id_clash(tmp_path: Path) -> None:
    """Two files defining the same id and version are one XS117 problem naming both files."""
    write(tmp_path / "a.yaml", SURVEY)
    write(tmp_path / "b.yaml", SURVEY.replace("调研课题", "另一个调研"))
    result = xs("validate", "a.yaml", "b.yaml")
    assert result.exit_code == 1
    (line,) = [line for line in result.stdout.splitlines() if "XS117" in line]
    assert line.startswith("b.yaml:1: XS117 id:")
    assert "a.yaml" in line
    assert "✓ a.yaml" in result.stdout


def test_validate_knows_bundled_workflows_for_spawns(tmp_path: Path) -> None:
    """A spawn of a bundled workflow is valid; a spawn of an unknown one is XS118."""
    write(tmp_path / "good.yaml", SPAWNS.replace("WORKFLOW", "proposal"))
    write(tmp_path / "bad" / "bad.yaml", SPAWNS.replace("WORKFLOW", "proposl"))
    assert xs("validate", "good.yaml").exit_code == 0
    result = xs("validate", "bad/bad.yaml")
    assert result.exit_code == 1
    assert "XS118 transitions[0].spawn.workflow: spawn names unknown workflow 'proposl'" in (
        result.stdout
    )


def test_validate_of_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    """A path that does not exist exits 2 naming it."""
    result = xs("validate", "nowhere.yaml")
    assert result.exit_code == 2
    assert "'nowhere.yaml': no such file or directory" in result.stderr


def test_installed_script_reports_problems_as_greppable_lines(tmp_path: Path) -> None:
    """The console script, run as a process, exits 1 with one plain line per problem."""
    write(tmp_path / "broken.yaml", BROKEN)
    done = subprocess.run(
        [installed_script(), "validate", "broken.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    problem_lines = re.findall(r"^broken\.yaml:\d+: XS\d{3} \S+: .+$", done.stdout, re.M)
    assert len(problem_lines) == 2
    assert "Traceback" not in done.stderr


# -- schema and diagram ------------------------------------------------------------------------


def test_schema_is_json_describing_transitions() -> None:
    """`xieshang schema` prints a JSON Schema with a transitions property."""
    result = xs("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "transitions" in schema["properties"]
    assert "states" in schema["required"]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("mermaid", ["stateDiagram-v2", "已立案", "交办"]), ("dot", ["digraph", "已立案", "交办"])],
)
def test_diagram_of_a_bundled_workflow_shows_chinese_labels(fmt: str, expected: list[str]) -> None:
    """Mermaid and dot drawings of a workflow id carry the Chinese state and step labels."""
    result = xs("diagram", "proposal", "--format", fmt)
    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.stdout


def test_diagram_of_a_file_writes_the_output_file(tmp_path: Path) -> None:
    """A workflow file can be drawn straight to a file with -o."""
    write(tmp_path / "survey.yaml", SURVEY)
    result = xs("diagram", "survey.yaml", "--format", "mermaid", "-o", "survey.mmd")
    assert result.exit_code == 0, result.output
    drawn = (tmp_path / "survey.mmd").read_text(encoding="utf-8")
    assert "已结题" in drawn
    assert "结题" in drawn


def test_diagram_of_an_unknown_workflow_lists_the_known_ones() -> None:
    """An id no file defines exits 1 naming it and the ids that exist."""
    result = xs("diagram", "proposl")
    assert result.exit_code == 1
    assert "no workflow 'proposl'; known: " in result.stderr
    assert "proposal," in result.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs the graphviz dot binary")
def test_diagram_svg_is_rendered_by_graphviz(tmp_path: Path) -> None:
    """--format svg runs graphviz and writes an SVG document with the Chinese labels."""
    result = xs("diagram", "proposal", "--format", "svg", "-o", "proposal.svg")
    assert result.exit_code == 0, result.output
    svg = (tmp_path / "proposal.svg").read_text(encoding="utf-8")
    assert "<svg" in svg
    assert "已办结" in svg


def test_diagram_svg_without_graphviz_explains_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the dot binary, svg exits 2 naming the binary, the install and the alternatives."""
    monkeypatch.setenv("PATH", str(tmp_path))
    result = xs("diagram", "proposal", "--format", "svg")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "'dot' binary" in message
    assert "apt-get install graphviz" in message
    assert "--format dot or --format mermaid" in message


def test_installed_script_without_graphviz_exits_2(tmp_path: Path) -> None:
    """The console script with no dot on PATH fails cleanly with the install hint."""
    done = subprocess.run(
        [installed_script(), "diagram", "proposal", "--format", "svg"],
        env={"PATH": str(tmp_path), "XIESHANG_CLOCK": CLOCK},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "apt-get install graphviz" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


# -- running instances ---------------------------------------------------------------------------


def fire(db: str, iid: str, trigger: str, actor: str, payload: dict[str, Any] | None = None) -> Any:
    args = ["--db", db, "fire", iid, trigger, "--as", actor]
    if payload is not None:
        args += ["--payload", json.dumps(payload, ensure_ascii=False)]
    return ok_json(*args)


def test_a_proposal_runs_from_start_to_closed_through_the_cli(db: str) -> None:
    """start, fire, show, history, list, available and audit verify drive one proposal to closed."""
    pid = new_proposal(db)
    for trigger, actor, payload, state in [
        ("submit", MEMBER, {"category": "society"}, "submitted"),
        ("start_review", COMMITTEE, None, "under_review"),
        ("file", COMMITTEE, {"number": "2024-001"}, "filed"),
        ("assign", OFFICE, {"mode": "sole", "units": ["市教育局"]}, "assigned"),
    ]:
        before = ok_json("--db", db, "show", pid)["version"]
        moved = fire(db, pid, trigger, actor, payload)
        assert (moved["state"], moved["version"]) == (state, before + 1)

    (child,) = ok_json("--db", db, "list", "--parent", pid)["items"]
    assert (child["workflow"], child["unit"], child["state"]) == (
        "proposal_handling",
        "市教育局",
        "notified",
    )
    cid = child["id"]
    choices = {c["trigger"]: c for c in ok_json("--db", db, "available", cid, "--as", UNIT)}
    ack = choices["acknowledge"]
    assert (ack["to"], ack["allowed"], ack["needs_payload"], ack["warnings"]) == (
        "acknowledged",
        False,
        True,
        [],
    )
    assert ack["reason"] == "needs a payload (required contact_person)"
    assert ack["payload_schema"]["required"] == ["contact_person"]
    fire(db, cid, "acknowledge", UNIT, {"contact_person": "王老师"})
    fire(db, cid, "contact_proposer", UNIT, {"mode": "face_to_face"})
    reply = {"reply_class": "A", "reply_text": "已采纳", "signer": "局长"}
    fire(db, cid, "draft_reply", UNIT, reply)
    fire(db, cid, "submit_reply", UNIT)
    assert fire(db, cid, "approve_reply", OFFICE)["state"] == "replied"
    assert ok_json("--db", db, "show", pid)["state"] == "replied"
    closed = fire(db, pid, "evaluate", MEMBER, {"satisfaction": "satisfied"})
    assert (closed["state"], closed["final"]) == ("closed", True)

    shown = ok_json("--db", db, "show", pid)
    assert shown["data"]["number"] == "2024-001"
    assert shown["data"]["units"] == ["市教育局"]
    assert (shown["state"], shown["final"], shown["org"]) == ("closed", True, ORG)
    assert shown["created_at"].startswith("2024-09-27T01:00:00")

    rows = ok_json("--db", db, "history", pid)
    assert rows[0]["trigger"] == "start"
    assert rows[-1]["trigger"] == "evaluate"
    assert [r["seq"] for r in rows] == list(range(1, shown["version"] + 1))
    assert all(r["prev_hash"] == p["hash"] for p, r in itertools.pairwise(rows))

    listed = ok_json("--db", db, "list", "--state", "closed")
    assert [i["id"] for i in listed["items"]] == [pid]
    assert ok_json("--db", db, "list", "--state", "draft")["items"] == []
    assert ok_json("--db", db, "audit", "verify") == {"ok": True, "checked": 2, "problems": []}

    human = xs("--db", db, "show", pid)
    assert "已办结 (closed)" in human.stdout
    assert "提案办理" in human.stdout
    table = xs("--db", db, "history", pid, env=WIDE)
    assert "已答复 (replied) → 已办结 (closed)" in table.stdout


def test_available_explains_why_a_trigger_is_not_allowed(db: str) -> None:
    """available lists every trigger from the state, with the refusal reason for this actor."""
    pid = new_proposal(db)
    choices = {
        c["trigger"]: c for c in ok_json("--db", db, "available", pid, "--as", AUTHOR_AS_COMMITTEE)
    }
    assert set(choices) == {"invite_cosigners", "submit", "withdraw"}
    assert choices["submit"]["allowed"] is False
    assert "allowed roles" in choices["submit"]["reason"]
    result = xs("--db", db, "available", pid, "--as", MEMBER)
    assert "提交 (submit)" in result.stdout


def test_list_pages_with_the_cursor_it_prints(db: str) -> None:
    """--limit pages the list; --cursor continues after the last row of the page before."""
    first, second, third = (
        ok_json(
            "--db",
            db,
            "--clock",
            f"2024-09-2{day}T09:00:00+08:00",
            "start",
            "proposal",
            "--data",
            PROPOSAL_DATA,
            "--as",
            MEMBER,
        )["id"]
        for day in (7, 8, 9)
    )
    page = ok_json("--db", db, "list", "--workflow", "proposal", "--limit", "2")
    assert [i["id"] for i in page["items"]] == [first, second]
    rest = ok_json("--db", db, "list", "--limit", "2", "--cursor", page["next_cursor"])
    assert [i["id"] for i in rest["items"]] == [third]
    assert rest["next_cursor"] is None


def test_a_cursor_it_did_not_print_is_a_usage_error(db: str) -> None:
    """A malformed --cursor exits 2 naming the option."""
    result = xs("--db", db, "list", "--cursor", "page-two")
    assert result.exit_code == 2
    assert "--cursor 'page-two'" in result.stderr


REFUSALS = [
    (["start", "nosuch", "--as", MEMBER], "not-found", "no workflow 'nosuch'"),
    (["start", "proposal", "--data", "{}", "--as", MEMBER], "invalid-payload", "title"),
    (["fire", "{id}", "fly", "--as", MEMBER], "unknown-trigger", "has no trigger 'fly'"),
    (
        ["fire", "{id}", "file", "--as", AUTHOR_AS_COMMITTEE],
        "transition-not-allowed",
        "cannot fire",
    ),
    (
        [
            "fire",
            "{id}",
            "submit",
            "--payload",
            '{"category": "society"}',
            "--as",
            AUTHOR_AS_COMMITTEE,
        ],
        "forbidden",
        "may not fire 'submit'",
    ),
    (
        ["fire", "{id}", "submit", "--payload", '{"category": "sports"}', "--as", MEMBER],
        "invalid-payload",
        "category",
    ),
    (
        [
            "fire",
            "{id}",
            "submit",
            "--payload",
            '{"category": "society"}',
            "--as",
            MEMBER,
            "--expected-version",
            "5",
        ],
        "concurrency-conflict",
        "not the expected 5",
    ),
    (["show", "nosuch"], "not-found", "no instance 'nosuch'"),
    (["history", "nosuch"], "not-found", "no instance 'nosuch'"),
    (["available", "nosuch", "--as", MEMBER], "not-found", "no instance 'nosuch'"),
    (["audit", "verify", "nosuch"], "not-found", "no instance 'nosuch'"),
]


@pytest.mark.parametrize(("args", "code", "message"), REFUSALS, ids=[r[1] for r in REFUSALS])
def test_every_refusal_exits_1_with_its_message_and_changes_nothing(
    db: str, args: list[str], code: str, message: str
) -> None:
    """A refused command exits 1 printing the typed error's message; the instance is unchanged."""
    pid = new_proposal(db)
    argv = ["--db", db, *(a.replace("{id}", pid) for a in args)]
    human = xs(*argv)
    assert human.exit_code == 1
    assert message in human.stderr
    assert human.stdout == ""
    machine = xs(*argv, "--json")
    assert machine.exit_code == 1
    assert json.loads(machine.stdout)["error"]["code"] == code
    unchanged = ok_json("--db", db, "show", pid)
    assert (unchanged["state"], unchanged["version"]) == ("draft", 1)
    assert len(ok_json("--db", db, "history", pid)) == 1


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--data", "{title: x}", "--data is not valid JSON"),
        ("--data", '["a list"]', "--data must be a JSON object"),
        ("--payload", "{", "--payload is not valid JSON"),
        ("--payload", "42", "--payload must be a JSON object"),
    ],
)
def test_bad_json_is_a_usage_error_naming_the_option(
    db: str, option: str, value: str, message: str
) -> None:
    """Bad JSON in --data or --payload exits 2 naming the option and the text given."""
    command = ["start", "proposal"] if option == "--data" else ["fire", "x", "submit"]
    result = xs("--db", db, *command, option, value, "--as", MEMBER, "--json")
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert json.loads(result.stdout)["error"]["option"] == option


@pytest.mark.parametrize(
    ("actor", "message"),
    [
        ("m1", "expected id:role"),
        ("m1:member@", "expected id:role"),
        ("m1 member", "expected id:role"),
        ('{"roles": ["member"]}', "needs a string 'id'"),
        ('{"id": "m1", "roles": "member"}', "list of strings"),
        ('{"id": ', "--as"),
    ],
)
def test_a_malformed_actor_is_a_usage_error_naming_as(db: str, actor: str, message: str) -> None:
    """An --as that is neither id:role[,role][@org[/unit]] nor an actor object exits 2."""
    result = xs("--db", db, "start", "proposal", "--data", PROPOSAL_DATA, "--as", actor)
    assert result.exit_code == 2
    assert "--as" in result.stderr
    assert message in result.stderr
    assert xs("--db", db, "list").exit_code == 2  # no database was created


def test_an_actor_may_be_given_as_a_json_object(db: str) -> None:
    """--as accepts {"id", "roles", "org", "unit"}; the org becomes the instance's org."""
    actor = json.dumps({"id": "m1", "roles": ["member"], "org": "镇远县政协"}, ensure_ascii=False)
    started = ok_json("--db", db, "start", "proposal", "--data", PROPOSAL_DATA, "--as", actor)
    assert started["org"] == "镇远县政协"


def test_a_retried_command_id_does_not_fire_twice(db: str) -> None:
    """The same --command-id twice gives the same result and one history row."""
    pid = new_proposal(db)
    args = ["--db", db, "fire", pid, "submit", "--payload", '{"category": "society"}']
    first = ok_json(*args, "--as", MEMBER, "--command-id", "cmd-1")
    again = ok_json(*args, "--as", MEMBER, "--command-id", "cmd-1")
    assert first["version"] == again["version"] == 2
    assert len(ok_json("--db", db, "history", pid)) == 2


# -- settings and workflow directories -----------------------------------------------------------


def test_a_workflow_dropped_in_a_workflows_dir_can_be_run(db: str, tmp_path: Path) -> None:
    """A YAML file in a --workflows directory is a new workflow type, no Python needed."""
    write(tmp_path / "flows" / "survey.yaml", SURVEY)
    data = json.dumps({"topic": "乡村振兴"}, ensure_ascii=False)
    office = f"o1:office@{ORG}"
    unknown = xs("--db", db, "start", "survey", "--data", data, "--as", office)
    assert unknown.exit_code == 1
    assert "no workflow 'survey'" in unknown.stderr
    flows = str(tmp_path / "flows")
    started = ok_json(
        "--db", db, "--workflows", flows, "start", "survey", "--data", data, "--as", office
    )
    done = ok_json(
        "--db", db, "--workflows", flows, "fire", started["id"], "finish", "--as", office
    )
    assert (done["workflow"], done["state"], done["final"]) == ("survey", "done", True)
    shown = xs("--db", db, "--workflows", flows, "show", started["id"])
    assert "已结题 (done)" in shown.stdout


def test_the_workflows_env_variable_adds_directories(db: str, tmp_path: Path) -> None:
    """XIESHANG_WORKFLOWS (os.pathsep-separated) adds workflow dirs, also beside --workflows."""
    flows = write(tmp_path / "flows" / "survey.yaml", SURVEY).parent
    env = {"XIESHANG_WORKFLOWS": f"{tmp_path / 'empty'}{os.pathsep}{flows}"}
    (tmp_path / "empty").mkdir()
    data = '{"topic": "t"}'
    started = ok_json("--db", db, "start", "survey", "--data", data, "--as", "o1:office", env=env)
    assert started["state"] == "open"
    again = ok_json("--db", db, "--workflows", str(flows), "show", started["id"], env=env)
    assert again["id"] == started["id"]


def test_an_id_clash_in_the_workflows_dirs_names_both_files(db: str, tmp_path: Path) -> None:
    """Two files of one id in the loaded directories refuse every command, naming both files."""
    write(tmp_path / "a" / "survey.yaml", SURVEY)
    write(tmp_path / "b" / "copy.yaml", SURVEY)
    result = xs(
        "--db", db, "--workflows", str(tmp_path / "a"), "--workflows", str(tmp_path / "b"), "list"
    )
    assert result.exit_code == 1
    message = result.stderr
    assert "XS117" in message
    assert str(tmp_path / "a" / "survey.yaml") in message
    assert str(tmp_path / "b" / "copy.yaml") in message


def test_a_broken_workflow_file_is_reported_before_any_database_is_opened(tmp_path: Path) -> None:
    """A broken file in --workflows exits 1 with file:line problems and creates no database."""
    write(tmp_path / "flows" / "broken.yaml", BROKEN)
    result = xs("--workflows", "flows", "list", "--json")
    assert result.exit_code == 1
    assert f"{Path('flows') / 'broken.yaml'}:12: XS101" in result.stderr
    problems = json.loads(result.stdout)["error"]["problems"]
    assert {p["code"] for p in problems} == {"XS101", "XS110"}
    assert not (tmp_path / "xieshang.db").exists()


def test_a_missing_workflows_dir_is_a_usage_error(db: str) -> None:
    """--workflows naming nothing exits 2 rather than silently loading nothing."""
    result = xs("--db", db, "--workflows", "nowhere", "list")
    assert result.exit_code == 2
    assert "--workflows 'nowhere'" in result.stderr


@pytest.mark.parametrize("clock", ["2024-09-27T09:00:00", "2024", "tomorrow"])
def test_a_clock_that_is_not_iso_with_a_timezone_is_a_usage_error(db: str, clock: str) -> None:
    """XIESHANG_CLOCK must be an ISO datetime with a timezone; else exit 2 naming the variable."""
    result = xs("--db", db, "list", env={"XIESHANG_CLOCK": clock})
    assert result.exit_code == 2
    assert "XIESHANG_CLOCK" in result.stderr
    assert "timezone" in result.stderr
    assert repr(clock) in result.stderr


def test_the_simulated_clock_dates_what_happens(db: str) -> None:
    """--clock sets the time of a step: its history row and the deadline it starts."""
    pid = new_proposal(db)
    ok_json(
        "--db", db, "fire", pid, "submit", "--payload", '{"category": "society"}', "--as", MEMBER
    )
    later = ["--db", db, "--clock", "2024-10-08T10:00:00+08:00"]
    ok_json(*later, "fire", pid, "start_review", "--as", COMMITTEE)
    rows = ok_json("--db", db, "history", pid)
    assert rows[1]["occurred_at"].startswith("2024-09-27T01:00:00")
    assert rows[2]["occurred_at"].startswith("2024-10-08T02:00:00")


def test_the_default_database_is_a_file_in_the_working_directory(tmp_path: Path) -> None:
    """Without --db or XIESHANG_DATABASE_URL, instances live in ./xieshang.db."""
    started = ok_json("start", "proposal", "--data", PROPOSAL_DATA, "--as", MEMBER)
    assert (tmp_path / "xieshang.db").is_file()
    assert ok_json("show", started["id"])["id"] == started["id"]


# -- audit -----------------------------------------------------------------------------------------


def test_audit_verify_passes_an_untouched_history(db: str) -> None:
    """audit verify exits 0 and counts the instances when every chain and replay verifies."""
    new_proposal(db)
    new_proposal(db)
    result = xs("--db", db, "audit", "verify")
    assert result.exit_code == 0
    assert "✓ 2 instances verified" in result.stdout


# -- settings --------------------------------------------------------------------------------------


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """XIESHANG_* variables fill Settings; XIESHANG_WORKFLOWS splits on os.pathsep."""
    monkeypatch.setenv("XIESHANG_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("XIESHANG_WORKFLOWS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    monkeypatch.setenv("XIESHANG_SYNCHRONOUS", "normal")
    monkeypatch.setenv("XIESHANG_DEPLOYMENT", "guiyang")
    s = Settings()
    assert s.database_url == "sqlite:///elsewhere.db"
    assert s.workflows == [tmp_path / "a", tmp_path / "b"]
    assert s.synchronous == "NORMAL"
    assert s.deployment == "guiyang"
    assert s.clock == datetime(2024, 9, 27, 1, tzinfo=UTC)
    assert Settings(database_url="sqlite:///mine.db").database_url == "sqlite:///mine.db"


def test_settings_refuse_an_unknown_synchronous_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """synchronous is FULL or NORMAL; anything else is refused naming the field."""
    monkeypatch.setenv("XIESHANG_SYNCHRONOUS", "OFF")
    with pytest.raises(SettingsError, match="synchronous"):
        Settings()


def test_build_engine_uses_the_simulated_clock_and_the_workflow_dirs(tmp_path: Path) -> None:
    """build_engine loads bundled plus given workflows and fixes the clock at XIESHANG_CLOCK."""
    flows = write(tmp_path / "flows" / "survey.yaml", SURVEY).parent
    engine = build_engine(
        Settings(database_url=f"sqlite:///{tmp_path / 'e.db'}"), workflows_dirs=[flows]
    )
    assert {"proposal", "survey"} <= set(engine.registry.ids())
    assert engine.clock.now() == datetime(2024, 9, 27, 1, tzinfo=UTC)
    assert isinstance(engine.clock, FixedClock)
    assert isinstance(build_engine(Settings(clock=None)).clock, SystemClock)


def test_audit_verify_lists_each_broken_instance_with_seq_and_kind(db: str, tmp_path: Path) -> None:
    """A history row changed in the database fails verify: exit 1 naming instance, seq and kind."""
    intact = new_proposal(db)
    tampered = new_proposal(db)
    fire(db, tampered, "submit", MEMBER, {"category": "society"})
    with sqlite3.connect(tmp_path / "xs.db") as conn:
        conn.execute(
            "UPDATE history SET payload = ? WHERE instance_id = ? AND seq = 2",
            ('{"category": "economy"}', tampered),
        )
    conn.close()
    result = xs("--db", db, "audit", "verify")
    assert result.exit_code == 1
    assert f"{tampered} seq 2: changed:" in result.stdout
    assert intact not in result.stdout
    assert "1 of 2 instances fail verification" in result.stderr
    report = json.loads(xs("--db", db, "audit", "verify", "--json").stdout)
    assert report["ok"] is False
    assert [(p["instance_id"], p["seq"], p["kind"]) for p in report["problems"]] == [
        (tampered, 2, "changed")
    ]
    assert xs("--db", db, "audit", "verify", intact).exit_code == 0
    assert xs("--db", db, "audit", "verify", tampered).exit_code == 1


def test_an_unusable_database_url_is_refused_with_its_reason(tmp_path: Path) -> None:
    """A --db the store cannot use exits non-zero naming the URL, never with a traceback."""
    result = xs("--db", "mysql://localhost/x", "list")
    assert result.exit_code == 1
    assert "mysql://localhost/x" in result.stderr
    assert "sqlite:///PATH" in result.stderr


@pytest.mark.parametrize(("command", "sub"), [("tokens", "create"), ("events", "retry")])
def test_commands_of_other_adapters_are_reachable(command: str, sub: str) -> None:
    """serve, tokens, relay and events are commands of the one xieshang command line."""
    listed = xs("--help")
    for name in ("serve", "tokens", "relay", "events", "validate"):
        assert re.search(rf"^\W*{name}\b", listed.stdout, re.M), name
    result = xs(command, "--help")
    assert result.exit_code == 0
    assert sub in result.stdout
