"""A process killed in the middle of a commit leaves nothing half-written.

The child process fires commands with ``XIESHANG_FAULT=after_instance_update:N``: the store kills
it (SIGKILL) the N-th time a commit has written its instance rows and nothing else yet. After
that, a new store on the same database must show every instance at the version of its last
history row, outbox rows only for stored history rows, and a history that verifies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from store_contract import COMMITTEE, sql_connection

from xieshang import Engine, Registry
from xieshang.adapters.sql import SQLStore, open_store
from xieshang.adapters.sql.store import ENV_FAULT

CHILD = """
import sys
from xieshang import Actor, Engine
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

member = Actor.of("m1", "member", org="gy")
committee = Actor.of("c1", "proposal_committee", org="gy")
store = open_store(sys.argv[1])
engine = Engine(store, bundled())
ids = [engine.start("proposal", {"title": f"t{k}", "first_proposer": "m1"}, member).id
       for k in range(3)]
print("started", *ids, flush=True)
for trigger, actor, payload in [("submit", member, {"category": "economy"}),
                                ("start_review", committee, {})]:
    for iid in ids:
        engine.fire(iid, trigger, actor, payload)
        print("fired", iid, trigger, flush=True)
print("finished", flush=True)
"""

STARTS = 3
KILLED_AT = 8  # the 8th commit: 3 starts and 4 fires are written, the 5th fire is cut short


def run_child(url: str) -> list[list[str]]:
    env = {**os.environ, ENV_FAULT: f"after_instance_update:{KILLED_AT}"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return [line.split() for line in done.stdout.splitlines()]


def test_a_process_killed_after_the_instance_update_leaves_nothing_half_written(
    sql_url: str, registry: Registry
) -> None:
    """Only whole commits survive the kill; the cut one left no row in any table."""
    lines = run_child(sql_url)
    ids = lines[0][1:]
    fired = [line[1] for line in lines if line[0] == "fired"]
    assert len(fired) == KILLED_AT - STARTS - 1 and lines[-1][0] == "fired"
    cut_short = ids[len(fired) % len(ids)]
    with open_store(sql_url) as store:
        engine = Engine(store, registry)
        for iid in ids:
            stored = store.load(iid, fresh=True)
            rows = store.history(iid)
            assert stored is not None and stored.version == rows[-1].seq == len(rows)
            assert stored.version == 1 + fired.count(iid)
        assert [r.trigger for r in store.history(cut_short)] == ["start", "submit"]
        with sql_connection(sql_url) as (conn, _):
            history = conn.execute("SELECT count(*) FROM history").fetchone()[0]
            orphans = conn.execute(
                "SELECT count(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM history h "
                "WHERE h.instance_id = o.instance_id AND h.seq = o.seq)"
            ).fetchone()[0]
        assert (history, orphans) == (STARTS + len(fired), 0)
        assert engine.verify() == []
        moved = engine.fire(cut_short, "start_review", COMMITTEE)
        assert moved.version == 3 and engine.verify(cut_short) == []


def test_without_the_variable_the_store_has_no_fault_hook(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The test hook is off unless $XIESHANG_FAULT is set."""
    monkeypatch.delenv(ENV_FAULT, raising=False)
    with SQLStore(f"sqlite:///{tmp_path}/x.db") as store:
        assert store.fault_hook is None
