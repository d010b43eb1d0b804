"""`xieshang calendar` and `--calendar`: office staff enter next year's notice and reconcile."""

from __future__ import annotations

import json
from pathlib import Path

from test_calendar_sources import FILE_2027, WINDOW
from typer.testing import CliRunner

from xieshang.adapters.cli import app

CLERK = "c1:clerk@city"
BAD = (
    "2027:\n"
    "  source: s\n"
    "  holidays: [2027-13-01, 2027-01-01, 2027-01-01, '2027-03-05..2027-03-01']\n"
    "  workdays: [2027-02-15, 2027-01-01]\n"
    "soon: {}\n"
)


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_check_lists_every_problem_of_a_file_with_its_line_and_exits_1(tmp_path: Path) -> None:
    """Each mistake is one line: file, line, code, path; and the exit code is 1."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    out = json.loads(invoke("calendar", "check", str(bad), "--json", code=1))
    assert not out["ok"]
    assert [(p["code"], p["line"]) for p in out["problems"]] == [
        ("XS302", 3),
        ("XS304", 3),
        ("XS303", 3),
        ("XS310", 4),
        ("XS305", 4),
        ("XS310", 4),
        ("XS301", 5),
    ]
    good = tmp_path / "good.yaml"
    good.write_text(FILE_2027, encoding="utf-8")
    assert json.loads(invoke("calendar", "check", str(good), "--json"))["years"] == [2027]


def test_add_workdays_says_when_it_counted_on_a_provisional_year(tmp_path: Path) -> None:
    """Without a file, 5 working days after 2026-12-28 is 2027-01-05, provisional; with the
    2027 notice (01-04 a holiday) it is 2027-01-06 and no longer provisional."""
    plain = json.loads(invoke("calendar", "add-workdays", "2026-12-28", "5", "--json"))
    assert (plain["date"], plain["provisional"]) == ("2027-01-05", [2027])
    cal = tmp_path / "cal.yaml"
    cal.write_text(FILE_2027, encoding="utf-8")
    filed = json.loads(
        invoke("--calendar", str(cal), "calendar", "add-workdays", "2026-12-28", "5", "--json")
    )
    assert (filed["date"], filed["provisional"]) == ("2027-01-06", [])


def test_show_marks_a_provisional_year_and_names_the_source(tmp_path: Path) -> None:
    """A year past the table shows as provisional; the file's year shows its notice."""
    plain = json.loads(invoke("calendar", "show", "2027", "--json"))
    assert plain["provisional"] and "2027-01-01" in plain["holidays"]
    cal = tmp_path / "cal.yaml"
    cal.write_text(FILE_2027, encoding="utf-8")
    filed = json.loads(invoke("--calendar", str(cal), "calendar", "show", "2027", "--json"))
    assert not filed["provisional"] and filed["source"].startswith("国务院办公厅")


def test_a_missing_calendar_file_is_named_and_nothing_runs(tmp_path: Path) -> None:
    """`--calendar` naming no file is refused with the path, exit 1, no database created."""
    db = tmp_path / "x.db"
    result = CliRunner().invoke(
        app,
        [
            "--db",
            f"sqlite:///{db}",
            "--calendar",
            str(tmp_path / "nope.yaml"),
            "calendar",
            "reconcile",
        ],
    )
    assert result.exit_code == 1
    assert "nope.yaml" in result.output
    assert not db.exists()


def test_start_across_new_year_then_reconcile_with_the_notice(tmp_path: Path) -> None:
    """The README path for an office: a window opened 2026-12-28 is provisional in `show
    --json`; after the notice is entered, `calendar reconcile` moves it with one row and
    `audit verify` passes."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "window.yaml").write_text(WINDOW, encoding="utf-8")
    base = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--workflows", str(flows)]
    clock = ["--clock", "2026-12-28T09:00:00+08:00"]
    started = json.loads(
        invoke(
            *base, *clock, "start", "window", "--data", '{"title": "t"}', "--as", CLERK, "--json"
        )
    )
    shown = invoke(*base, "show", started["id"], "--json")
    assert "provisional" in shown and json.loads(shown)["due_provisional"] == [2027]
    cal = tmp_path / "cal.yaml"
    cal.write_text(FILE_2027, encoding="utf-8")
    later = ["--clock", "2026-12-30T09:00:00+08:00", "--calendar", str(cal)]
    dry = json.loads(invoke(*base, *later, "calendar", "reconcile", "--dry-run", "--json"))
    assert [c["due_after"] for c in dry["changes"]] == ["2027-01-06"]
    done = json.loads(invoke(*base, *later, "calendar", "reconcile", "--json"))
    assert [c["due_after"] for c in done["changes"]] == ["2027-01-06"]
    history = json.loads(invoke(*base, "history", started["id"], "--json"))
    rows = history["history"] if isinstance(history, dict) else history
    assert [r["trigger"] for r in rows] == ["start", "calendar_reconcile"]
    assert json.loads(invoke(*base, "show", started["id"], "--json"))["due_provisional"] == []
    invoke(*base, "audit", "verify")
    again = json.loads(invoke(*base, *later, "calendar", "reconcile", "--json"))
    assert again["changes"] == []


def test_bad_dates_are_refused_naming_the_value_and_the_form(tmp_path: Path) -> None:
    """`calendar add-workdays` with an impossible date and `audit export` with a bad or a
    backwards range exit non-zero naming what was given; export writes no bundle."""
    result = CliRunner().invoke(app, ["calendar", "add-workdays", "2027-02-30", "5"])
    assert result.exit_code == 2
    assert "2027-02-30" in result.output and "YYYY-MM-DD" in result.output
    db = f"sqlite:///{tmp_path / 'x.db'}"
    out = tmp_path / "b.zip"
    base = ["--db", db, "audit", "export", "--org", "gy", "-o", str(out)]
    bad = CliRunner().invoke(app, [*base, "--from", "2024-13-01", "--to", "2024-12-31"])
    assert bad.exit_code == 2 and "2024-13-01" in bad.output
    backwards = CliRunner().invoke(app, [*base, "--from", "2024-12-31", "--to", "2024-01-01"])
    assert backwards.exit_code == 1 and "before" in backwards.output
    assert not out.exists()


def test_verify_with_a_checkpoint_but_no_public_key_is_refused(tmp_path: Path) -> None:
    """A checkpoint is never taken on trust: without --public-key the command says so."""
    cp = tmp_path / "cp.json"
    cp.write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["--db", f"sqlite:///{tmp_path / 'x.db'}", "audit", "verify", "--checkpoint", str(cp)]
    )
    assert result.exit_code == 2 and "--public-key" in result.output
