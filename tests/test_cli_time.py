"""Time on the command line: a simulated clock, `tick --now`, and a worker that stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from xieshang.adapters.cli import app

MEMBER = "m1:member@city"
STAFF = "s1:proposal_committee@city"
OFFICE = "o1:supervision_office@city"


def run(db: str, *args: str, clock: str | None = None) -> dict[str, object]:
    options = ["--db", db] + (["--clock", clock] if clock else [])
    result = CliRunner().invoke(app, [*options, *args, "--json"])
    assert result.exit_code == 0, result.output
    value: dict[str, object] = json.loads(result.stdout)
    return value


def test_tick_now_marks_a_late_proposal_overdue_once(tmp_path: Path) -> None:
    """On a simulated clock, `tick --now` past the reply deadline flags the proposal once."""
    db = f"sqlite:///{tmp_path / 'time.db'}"
    clock = "2024-09-27T09:00:00+08:00"
    pid = str(
        run(
            db,
            "start",
            "proposal",
            "--data",
            '{"title": "老旧小区加装电梯", "first_proposer": "m1"}',
            "--as",
            MEMBER,
            clock=clock,
        )["id"]
    )
    run(
        db,
        "fire",
        pid,
        "submit",
        "--payload",
        '{"category": "society"}',
        "--as",
        MEMBER,
        clock=clock,
    )
    run(db, "fire", pid, "start_review", "--as", STAFF, clock=clock)
    run(db, "fire", pid, "file", "--payload", '{"number": "1"}', "--as", STAFF, clock=clock)
    run(
        db,
        "fire",
        pid,
        "assign",
        "--payload",
        '{"mode": "sole", "units": ["housing"]}',
        "--as",
        OFFICE,
        clock=clock,
    )
    early = run(db, "tick", "--now", "2024-12-27T23:00:00+08:00")
    late = run(db, "tick", "--now", "2024-12-28T08:00:00+08:00")
    again = run(db, "tick", "--now", "2025-01-05T08:00:00+08:00")
    assert (early["fired"], late["fired"], again["fired"]) == (1, 1, 0)  # reminder, then overdue
    shown = run(db, "show", pid)
    assert shown["overdue"] is True


def test_tick_refuses_a_time_without_a_timezone(tmp_path: Path) -> None:
    """--now must say its timezone; a bare date is a usage error (exit 2) naming the option."""
    result = CliRunner().invoke(
        app, ["--db", f"sqlite:///{tmp_path / 'x.db'}", "tick", "--now", "2025-01-01"]
    )
    assert result.exit_code == 2 and "--now" in result.output


def test_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """`xieshang worker` runs until SIGTERM, then says it stopped and exits 0."""
    env = {**os.environ, "XIESHANG_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from xieshang.adapters.cli import main; main()",
            "worker",
            "--poll-interval",
            "0.2",
            "--no-relay",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    with proc, proc.stderr:
        deadline = time.monotonic() + 60
        line = proc.stderr.readline()
        while "ticking" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        assert "ticking" in line
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(30) == 0
    assert "worker: stopped" in rest


def test_validating_an_edited_copy_of_a_bundled_workflow_replaces_it(tmp_path: Path) -> None:
    """A process owner's copy of proposal.yaml is checked in place of the bundled one."""
    from xieshang.workflows import BUNDLED_DIR

    copy = tmp_path / "proposal.yaml"
    copy.write_text((BUNDLED_DIR / "proposal.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(copy)])
    assert result.exit_code == 0, result.output
    broken = copy.read_text(encoding="utf-8").replace("to: submitted", "to: submited", 1)
    copy.write_text(broken, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(copy)])
    assert result.exit_code == 1 and "XS101" in result.output and "XS117" not in result.output
