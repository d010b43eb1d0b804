"""The members' duty commands and route: ``member show``, ``duties check``, ``duties schema``,
``duties recompute`` (a dry run writes nothing), ``report duties`` in every format, ``--duties``
choosing the rules, and ``GET /members/{id}/duties`` answering as the read scope says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from typer.testing import CliRunner, Result

from xieshang import Actor, Engine
from xieshang.adapters.cli import app
from xieshang.adapters.http import create_app
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.settings import Settings, build_engine
from xieshang.workflows import DUTIES_FILE

ORG = "gy"
OFFICE = f"o1:cppcc_office@{ORG}"
CLOCK = "2024-03-01T09:00:00+08:00"
runner = CliRunner()
WIDE = {"COLUMNS": "240"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "WORKFLOWS", "CLOCK", "DEPLOYMENT", "SYNCHRONOUS", "DUTIES"):
        monkeypatch.delenv(f"XIESHANG_{name}", raising=False)
    monkeypatch.setenv("XIESHANG_CLOCK", CLOCK)
    monkeypatch.chdir(tmp_path)


def xs(*args: str) -> Result:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def ok_json(*args: str) -> Any:
    result = xs(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A meeting: m1 signed in, m2 on leave, m3 recorded present by the office."""
    url = f"sqlite:///{tmp_path / 'xs.db'}"
    data = {"title": "双月协商座谈会", "kind": "consultation", "meeting_date": "2024-03-01",
            "invited": ["m1", "m2", "m3"]}  # fmt: skip
    mid = ok_json("--db", url, "start", "meeting_attendance", "--data", json.dumps(data),
                  "--as", OFFICE)["id"]  # fmt: skip
    ok_json("--db", url, "fire", mid, "sign_in", "--as", f"m1:member@{ORG}")
    ok_json("--db", url, "fire", mid, "request_leave", "--reason", "出差",
            "--as", f"m2:member@{ORG}")  # fmt: skip
    ok_json("--db", url, "fire", mid, "record_present", "--payload",
            json.dumps({"members": ["m3"]}), "--as", OFFICE)  # fmt: skip
    return url


def test_member_show_lists_the_records_totals_and_shortfalls(db: str) -> None:
    shown = ok_json("--db", db, "member", "show", "m1", "--year", "2024", "--as", OFFICE)
    assert (shown["total"], shown["counted"], shown["items"]) == (
        2, {"attendance": 2}, {"attendance": 1},
    )  # fmt: skip
    assert [(r["rule"], r["seq"], r["points"]) for r in shown["records"]] == [("attended", 2, 2)]
    assert shown["shortfalls"] == [
        {"category": "proposal", "need": 1, "have": 0},
        {"category": "opinion", "need": 2, "have": 0},
    ]
    table = xs("--db", db, "member", "show", "m2", "--year", "2024")
    assert table.exit_code == 0 and "leave" in table.output and "会议出勤 0/1" in table.output
    refused = xs("--db", db, "member", "show", "m1", "--year", "2024", "--as", f"m2:member@{ORG}")
    assert refused.exit_code == 1 and "no member record 'm1'" in refused.output


def test_duties_check_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    broken = (
        DUTIES_FILE.read_text(encoding="utf-8")
        .replace(
            "workflow: meeting_attendance\n    trigger: sign_in",
            "workflow: meeting_atendance\n    trigger: sign_in",
        )
        .replace("category: speech\n", "category: speeches\n")
    )
    path = tmp_path / "duties.yaml"
    path.write_text(broken, encoding="utf-8")
    result = xs("duties", "check", str(path), "--json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert [(p["code"], p["path"]) for p in body["problems"]] == [
        ("XS142", "rules[5].workflow"),
        ("XS144", "rules[8].category"),
    ]
    text = broken.splitlines()
    for p in body["problems"]:
        assert ("meeting_atendance" if p["code"] == "XS142" else "speeches") in text[p["line"] - 1]
    assert ok_json("duties", "check", str(DUTIES_FILE)) == {"file": str(DUTIES_FILE), "ok": True}
    schema = json.loads(xs("duties", "schema").stdout)
    assert schema["title"] == "DutyFile" and "rules" in schema["required"]


def test_recompute_dry_run_writes_nothing_and_the_recompute_is_recorded(
    db: str, tmp_path: Path
) -> None:
    """Rules with 5 points a sign-in: the dry run shows m1 going from 2 to 5 and leaves the
    records; the recompute stores them and its hash; verify passes; the report counts them."""
    rules = DUTIES_FILE.read_text(encoding="utf-8").replace(
        "trigger: sign_in\n    category: attendance\n    points: 2",
        "trigger: sign_in\n    category: attendance\n    points: 5",
    )
    path = tmp_path / "rules.yaml"
    path.write_text(rules, encoding="utf-8")
    dry = ok_json("--db", db, "--duties", str(path), "duties", "recompute", "--year", "2024",
                  "--dry-run")  # fmt: skip
    assert dry["members"] == [
        {"member": "m1", "before": 2, "after": 5},
        {"member": "m2", "before": 0, "after": 0},
        {"member": "m3", "before": 2, "after": 2},
    ]
    assert "recompute" not in dry
    assert ok_json("--db", db, "member", "show", "m1", "--year", "2024")["total"] == 2
    done = ok_json("--db", db, "--duties", str(path), "duties", "recompute", "--year", "2024",
                   "--as", "o1")  # fmt: skip
    assert len(done["recompute"]) == 64 and done["records_after"] == 3
    assert ok_json("--db", db, "member", "show", "m1", "--year", "2024")["total"] == 5
    assert xs("--db", db, "audit", "verify").exit_code == 0
    report = json.loads(xs("report", "duties", "--year", "2024", "--db", db,
                           "--format", "json").stdout)  # fmt: skip
    assert [(m["member"], m["rank"], m["total"]) for m in report["figures"]["members"]] == [
        ("m1", 1, 5), ("m3", 2, 2), ("m2", 3, 0),
    ]  # fmt: skip


def test_the_duties_report_in_csv_and_xlsx(db: str, tmp_path: Path) -> None:
    csv = xs("report", "duties", "--year", "2024", "--db", db, "--format", "csv").stdout
    assert "会议出勤" in csv and "未登记" in csv
    out = tmp_path / "duties.xlsx"
    assert xs("report", "duties", "--year", "2024", "--db", db, "--format", "xlsx",
              "-o", str(out)).exit_code == 0  # fmt: skip
    book = openpyxl.load_workbook(out)
    ranking = [s for s in book.sheetnames if "委员排名" in s]
    assert ranking
    rows = list(book[ranking[0]].iter_rows(values_only=True))
    assert [r[1] for r in rows[1:]] == ["m1", "m3", "m2"]


@pytest.fixture
def served(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, httpx.Client]]:
    monkeypatch.setenv("XIESHANG_DATABASE_URL", db)
    engine: Engine = build_engine(Settings())
    tokens = token_store_for(db)
    with serve_in_thread(create_app(engine, tokens)) as base:
        clients = {
            name: httpx.Client(
                base_url=base,
                headers={"Authorization": f"Bearer {tokens.create(Actor.parse(who))}"},
                timeout=10,
            )
            for name, who in {
                "m1": f"m1:member@{ORG}",
                "m2": f"m2:member@{ORG}",
                "office": OFFICE,
                "elsewhere": "o9:cppcc_office@zy",
            }.items()
        }
        yield clients
        for c in clients.values():
            c.close()


def test_get_member_duties_answers_as_the_read_scope_says(served: dict[str, httpx.Client]) -> None:
    """m1 and the office of m1's org read m1's record; m2 and another org's office get the same
    404 as for a member with no record."""
    for name in ("m1", "office"):
        r = served[name].get("/members/m1/duties", params={"year": 2024})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["total"], [x["rule"] for x in body["records"]]) == (2, ["attended"])
    missing = served["office"].get("/members/m7/duties", params={"year": 2024})
    for name in ("m2", "elsewhere"):
        r = served[name].get("/members/m1/duties", params={"year": 2024})
        assert r.status_code == 404
        assert r.json()["detail"].replace("m1", "m7") == missing.json()["detail"]
    assert served["m1"].get("/members/m1/duties").status_code == 422


def test_a_missing_or_broken_rules_file_stops_the_engine_before_any_database(
    tmp_path: Path,
) -> None:
    """build_engine names the rules file it cannot read, or lists its problems, and creates no
    database; the command line says the same."""
    from xieshang import DutiesFileError, Usage

    with pytest.raises(Usage, match="cannot read the duty rules file"):
        build_engine(Settings(database_url="x.db", duties=tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        DUTIES_FILE.read_text(encoding="utf-8").replace("trigger: adopt", "trigger: adpot"),
        encoding="utf-8",
    )
    with pytest.raises(DutiesFileError, match="did you mean 'adopt'"):
        build_engine(Settings(database_url="x.db", duties=broken))
    assert not (tmp_path / "x.db").exists() and not Path("x.db").exists()
    result = xs("--db", "y.db", "--duties", str(broken), "list")
    assert result.exit_code == 1 and "XS143" in result.output


def test_the_duties_report_for_a_member_shows_only_that_members_row(db: str) -> None:
    """A member producing the report sees the totals whole and only their own ranking row; the
    office sees every member's."""
    args = ["report", "duties", "--year", "2024", "--db", db, "--format", "json"]
    mine = json.loads(xs(*args, "--as", f"m3:member@{ORG}").stdout)["figures"]
    assert [(m["member"], m["rank"]) for m in mine["members"]] == [("m3", 1)]
    assert mine["points"] == 4
    office = json.loads(xs(*args, "--as", OFFICE).stdout)["figures"]
    assert [m["member"] for m in office["members"]] == ["m1", "m3", "m2"]


def test_the_worker_reloads_its_rules_and_says_when_a_recompute_applied_others(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker runs with the rules file; a recompute of 2024 applies rules with 5 points a
    sign-in. The worker says, once, that its rules are not the recompute's; when its file is
    changed to the recompute's rules, it reloads them and says nothing more. A broken file is
    reported and the rules in use are kept."""
    from xieshang.adapters.cli.worker import _DutyWatch

    path = tmp_path / "rules.yaml"
    path.write_text(DUTIES_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    newer = DUTIES_FILE.read_text(encoding="utf-8").replace(
        "trigger: sign_in\n    category: attendance\n    points: 2",
        "trigger: sign_in\n    category: attendance\n    points: 5",
    )
    (tmp_path / "newer.yaml").write_text(newer, encoding="utf-8")
    ok_json("--db", db, "--duties", str(tmp_path / "newer.yaml"), "duties", "recompute",
            "--year", "2024", "--as", "o1")  # fmt: skip
    engine = build_engine(Settings(database_url=db, duties=path, clock=CLOCK))
    try:
        watch = _DutyWatch(engine, path)
        capsys.readouterr()
        watch.poll()
        said = capsys.readouterr().err
        assert "are not those of 2024's last recompute" in said and "by o1" in said
        watch.next_check = 0.0
        watch.poll()
        assert capsys.readouterr().err == ""  # said once
        path.write_text("rules: [\n", encoding="utf-8")
        watch.seen = -1.0  # the file changed (its time may not have moved within the test)
        kept = engine.duties
        watch.poll()
        assert "duty rules not reloaded" in capsys.readouterr().err and engine.duties is kept
        path.write_text(newer, encoding="utf-8")
        watch.seen = -1.0
        watch.poll()
        said = capsys.readouterr().err
        assert "reloaded" in said and "not those of" not in said
        assert engine.duties is not None and engine.duties is not kept
        recomputed = engine.store.duty_recomputes(2024)[-1]  # type: ignore[attr-defined]
        assert engine.duties.hash == recomputed.rules_hash
    finally:
        engine.store.close()
