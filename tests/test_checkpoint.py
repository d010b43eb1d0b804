"""Checkpoints of the SQLite log run on the store's own thread, not inside a caller's commit.

The store's connections checkpoint by themselves only past a bound no working thread lets the
log reach; the thread keeps the log short, stops with the store, and starts again in a forked
child. Each test would fail with the thread gone: the log would grow with every commit.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from xieshang import Actor, Engine
from xieshang.adapters.sql import open_store
from xieshang.adapters.sql.checkpoint import AUTOCHECKPOINT, EVERY
from xieshang.workflows import bundled

MEMBER = Actor.of("m1", "member", org="gy")
COMMITTEE = Actor.of("c1", "proposal_committee", org="gy")
CHAIR = Actor.of("ch1", "chairpersons_council", org="gy")


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("xieshang-checkpoint")]


def log_frames(path: Path) -> int:
    """The frames in the file's log (its header is 32 bytes, each frame a page and 24 bytes)."""
    wal = Path(f"{path}-wal")
    return (wal.stat().st_size - 32) // (4096 + 24) if wal.exists() else 0


def flag_many(engine: Engine, count: int) -> None:
    i = engine.start("proposal", {"title": "log", "first_proposer": "m1"}, MEMBER)
    engine.fire(i.id, "submit", MEMBER, {"category": "economy"})
    engine.fire(i.id, "start_review", COMMITTEE)
    engine.fire(i.id, "file", COMMITTEE, {"number": "L-1"})
    for k in range(count):
        engine.fire(i.id, "flag_key", CHAIR, {"lead_leader": f"L{k}"})


def test_commits_do_not_checkpoint_the_log_themselves(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/a.db", synchronous="NORMAL") as store:
        conn = store._get()
        try:
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (AUTOCHECKPOINT,)
        finally:
            store._put(conn)


def test_the_thread_keeps_the_log_short(tmp_path: Path) -> None:
    """Five times EVERY steps write some 50 pages each EVERY: without the thread the log would
    hold them all (no commit reaches the connections' own bound); with it, it is started over
    after each checkpoint and never holds much more than two rounds."""
    path = tmp_path / "b.db"
    with open_store(f"sqlite:///{path}", synchronous="NORMAL") as store:
        engine = Engine(store, bundled())
        checkpoints = store._checkpoints
        assert checkpoints is not None
        most = 0
        for _ in range(5):
            flag_many(engine, EVERY)
            checkpoints.settle()
            most = max(most, log_frames(path))
        assert checkpoints.runs >= 5
        # each step writes at least its instance, history, outbox and ledger pages
        assert most < 3 * EVERY * 12, most
        assert most < 5 * EVERY * 4  # what the log would hold with no checkpoint at all
        assert all(engine.verify(i.id) == [] for i in engine.query().items)


def test_the_thread_starts_with_the_first_commit_and_stops_with_the_store(tmp_path: Path) -> None:
    before = len(checkpoint_threads())
    store = open_store(f"sqlite:///{tmp_path}/c.db", synchronous="NORMAL")
    engine = Engine(store, bundled())
    assert engine.query().items == []
    assert len(checkpoint_threads()) == before  # a store that only read has none
    flag_many(engine, 1)
    assert len(checkpoint_threads()) == before + 1
    store.close()
    assert len(checkpoint_threads()) == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_a_thread_of_its_own(tmp_path: Path) -> None:
    """The child inherits the store but not its thread: its commits start one, and its log
    is checkpointed (the child exits 0 only if a checkpoint ran there)."""
    path = tmp_path / "d.db"
    store = open_store(f"sqlite:///{path}", synchronous="NORMAL")
    engine = Engine(store, bundled())
    flag_many(engine, 1)
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 when its own thread checkpointed
        code = 1
        try:
            store._idle.clear()  # the parent's connections are not the child's to use
            checkpoints = store._checkpoints
            assert checkpoints is not None
            runs = checkpoints.runs
            flag_many(engine, EVERY)
            checkpoints.settle()
            code = 0 if checkpoints.runs > runs else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    store.close()
    assert os.waitstatus_to_exitcode(status) == 0
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM history").fetchone()[0] == 5 + 4 + EVERY
