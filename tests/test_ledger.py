"""The store-wide ledger and signed checkpoints catch what per-instance chains cannot.

Each tamper is done as a hostile database administrator would, in plain SQL, on SQLite and
PostgreSQL; each is found with its instance, row or ledger position and kind.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from store_contract import propose, sql_connection, to_filed

from xieshang import Engine, FixedClock, Registry
from xieshang.adapters.checkpoints import (
    CheckpointError,
    generate_key,
    load_private_key,
    load_public_key,
    make_checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from xieshang.adapters.sql import open_store
from xieshang.ledger import GENESIS, LedgerEntry, verify_ledger
from xieshang.records import HistoryEntry, iso
from xieshang.workflows import bundled


@pytest.fixture
def engine(sql_url: str, registry: Registry, clock: FixedClock) -> Iterator[Engine]:
    with open_store(sql_url) as store:
        yield Engine(store, registry, clock)


def tamper(url: str, *statements: tuple[str, tuple[object, ...]]) -> None:
    with sql_connection(url) as (conn, mark):
        for sql, params in statements:
            conn.execute(sql.replace("?", mark), params)


def filed(engine: Engine, n: int = 2) -> list[str]:
    ids = [propose(engine, f"提案{i}").id for i in range(n)]
    for iid in ids:
        to_filed(engine, iid)
    assert engine.verify() == []
    return ids


def kinds(problems: list[dict[str, object]]) -> set[tuple[object, object]]:
    return {(p["instance_id"], p["kind"]) for p in problems}


def test_every_committed_row_has_one_ledger_position_in_order(engine: Engine) -> None:
    """Positions run 1..N without a gap, one per history row, each chained to the one before."""
    ids = filed(engine)
    ledger = engine.store.ledger()
    rows = sum(len(engine.history(i)) for i in ids)
    assert [e.position for e in ledger] == list(range(1, rows + 1))
    assert ledger[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(ledger))
    assert engine.store.ledger_head() == (ledger[-1].position, ledger[-1].hash)


def test_cutting_the_last_rows_and_rolling_the_instance_back_is_found(
    engine: Engine, sql_url: str
) -> None:
    """Two DELETEs and one UPDATE that hide the last step pass the chain but not the ledger."""
    target, _ = filed(engine)
    rows = engine.history(target)
    last, before = rows[-1], rows[-2]
    earlier = engine._replay_rows(rows[:-1])
    tamper(
        sql_url,
        ("DELETE FROM outbox WHERE instance_id = ? AND seq = ?", (target, last.seq)),
        ("DELETE FROM history WHERE instance_id = ? AND seq = ?", (target, last.seq)),
        (
            "UPDATE instances SET version = ?, head_hash = ?, state = ?, data = ? WHERE id = ?",
            (before.seq, before.hash, before.target, json.dumps(earlier.data), target),
        ),
    )
    problems = engine.verify()
    assert (target, "removed") in kinds(problems)
    removed = next(p for p in problems if p["kind"] == "removed")
    assert removed["seq"] == last.seq and removed["position"] is not None


def test_deleting_a_whole_instance_is_found(engine: Engine, sql_url: str) -> None:
    """Its instance row, history, outbox and timers gone: each ledgered row is 'removed'."""
    target, _ = filed(engine)
    tamper(
        sql_url,
        ("DELETE FROM outbox WHERE instance_id = ?", (target,)),
        ("DELETE FROM timers WHERE instance_id = ?", (target,)),
        ("DELETE FROM readers WHERE instance_id = ?", (target,)),
        ("DELETE FROM history WHERE instance_id = ?", (target,)),
        ("DELETE FROM instances WHERE id = ?", (target,)),
    )
    problems = engine.verify()
    assert kinds(problems) == {(target, "removed")}
    assert len(problems) == len([e for e in engine.store.ledger() if e.instance_id == target])


def test_deleting_only_the_instance_row_leaves_orphans_that_are_found(
    engine: Engine, sql_url: str
) -> None:
    """History rows without their instance are findings, not silence."""
    target, _ = filed(engine)
    with sql_connection(sql_url) as (conn, mark):
        if mark == "%s":
            conn.execute("SET session_replication_role = replica")  # foreign keys off
        else:
            conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(f"DELETE FROM timers WHERE instance_id = {mark}", (target,))
        conn.execute(f"DELETE FROM instances WHERE id = {mark}", (target,))
    assert (target, "orphaned") in kinds(engine.verify())


def test_moving_an_instance_to_another_org_is_found(engine: Engine, sql_url: str) -> None:
    """Changing the instance row's org silently moves a proposal between bodies: moved-org."""
    target, _ = filed(engine)
    tamper(sql_url, ("UPDATE instances SET org = ? WHERE id = ?", ("other_city", target)))
    assert (target, "moved-org") in kinds(engine.verify())


def test_a_row_inserted_without_the_ledger_is_found(engine: Engine, sql_url: str) -> None:
    """A forged row appended to an instance's chain (hash recomputed) was never ledgered."""
    target, _ = filed(engine)
    last = engine.history(target)[-1]
    body = asdict(last)
    body.update(seq=last.seq + 1, prev_hash=last.hash, reason="伪造")
    forged = HistoryEntry(**body).sealed()
    tamper(
        sql_url,
        (
            "INSERT INTO history (instance_id, seq, workflow, workflow_version, definition_hash, "
            '"trigger", source, target, actor, role, reason, payload, visibility, occurred_at, '
            "recorded_at, command_id, prev_hash, hash, parent_id) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                forged.instance_id,
                forged.seq,
                forged.workflow,
                forged.workflow_version,
                forged.definition_hash,
                forged.trigger,
                forged.source,
                forged.target,
                json.dumps(forged.actor),
                forged.role,
                forged.reason,
                json.dumps(forged.payload),
                forged.visibility,
                forged.occurred_at,
                forged.recorded_at,
                None,
                forged.prev_hash,
                forged.hash,
                forged.parent_id,
            ),
        ),
        (
            "UPDATE instances SET version = ?, head_hash = ? WHERE id = ?",
            (forged.seq, forged.hash, target),
        ),
    )
    assert target in {p["instance_id"] for p in engine.verify()}
    store = engine.store
    alone = verify_ledger(store.ledger(), store.row_hashes(), store.instance_orgs())
    assert [(p["instance_id"], p["seq"], p["kind"]) for p in alone] == [
        (target, forged.seq, "inserted")
    ]


def test_a_row_ledgered_twice_is_found(engine: Engine, sql_url: str) -> None:
    """A second ledger position for a row that already has one, chained properly, is found."""
    filed(engine)
    head = engine.store.ledger()[-1]
    again = LedgerEntry(
        head.position + 1, head.instance_id, head.seq, head.org, head.row_hash, head.hash
    ).sealed()
    tamper(
        sql_url,
        (
            "INSERT INTO ledger (position, instance_id, seq, org, row_hash, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (again.position, again.instance_id, again.seq, again.org, again.row_hash,
             again.prev_hash, again.hash),
        ),
    )  # fmt: skip
    problems = engine.verify()
    assert [(p["kind"], p["position"], p["seq"]) for p in problems] == [
        ("ledger-duplicate", again.position, head.seq)
    ]


def test_two_stores_on_one_database_keep_one_gap_free_ledger(
    engine: Engine, sql_url: str, registry: Registry, clock: FixedClock
) -> None:
    """When another store (another process) wrote in between, each store appends after the
    head the other wrote, leaving neither a gap nor a fork."""
    with open_store(sql_url) as other_store:
        other = Engine(other_store, registry, clock)
        for k in range(3):
            for e in (engine, other, other):
                to_filed(e, propose(e, f"轮流{k}").id)
    ledger = engine.store.ledger()
    assert [e.position for e in ledger] == list(range(1, len(ledger) + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(ledger))
    assert engine.verify() == []


def test_a_store_whose_remembered_head_was_cut_does_not_leave_a_gap(
    engine: Engine, sql_url: str
) -> None:
    """If the ledger's tail is gone (a restore, a tamper), the next commit chains to the real last
    position: the gap is never widened by the store itself."""
    filed(engine)
    last = engine.store.ledger()[-1]
    tamper(sql_url, ("DELETE FROM ledger WHERE position = ?", (last.position,)))
    to_filed(engine, propose(engine, "之后").id)
    positions = [e.position for e in engine.store.ledger()]
    assert positions == list(range(1, len(positions) + 1))


# --- checkpoints ------------------------------------------------------------------------------


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "audit.key"
    generate_key(path)
    return path


def checkpoint_now(engine: Engine, key: Path, path: Path) -> dict[str, object]:
    made = make_checkpoint(engine.store, load_private_key(key), engine.clock.now())
    write_checkpoint(made, path)
    return read_checkpoint(path, load_public_key(key.with_name(key.name + ".pub")))


def rewrite_everything(url: str, engine: Engine, target: str) -> None:
    """The strongest writer without the key: move a step's time and recompute every hash, the
    instance's chain, its events, the whole ledger and its head."""
    rows = engine.history(target)
    new_rows: list[HistoryEntry] = []
    prev = ""
    for row in rows:
        body = asdict(row)
        if row.seq == 3:
            moved = datetime.fromisoformat(body["occurred_at"]) + timedelta(seconds=59)
            body["occurred_at"] = iso(moved)
        body["prev_hash"] = prev
        entry = HistoryEntry(**body).sealed()
        new_rows.append(entry)
        prev = entry.hash
    statements: list[tuple[str, tuple[object, ...]]] = [
        (
            "UPDATE history SET occurred_at = ?, prev_hash = ?, hash = ? "
            "WHERE instance_id = ? AND seq = ?",
            (e.occurred_at, e.prev_hash, e.hash, target, e.seq),
        )
        for e in new_rows
    ]
    statements.append(("UPDATE instances SET head_hash = ? WHERE id = ?", (prev, target)))
    moved_row = next(e for e in new_rows if e.seq == 3)
    for event in engine.store.outbox(target):
        if event.seq == 3:
            body = {**event.body, "time": moved_row.occurred_at}
            statements.append(
                ("UPDATE outbox SET body = ? WHERE event_id = ?", (json.dumps(body), event.id))
            )
    hashes = {(target, e.seq): e.hash for e in new_rows}
    ledger_prev = GENESIS
    for old in engine.store.ledger():
        row_hash = hashes.get((old.instance_id, old.seq), old.row_hash)
        new = LedgerEntry(old.position, old.instance_id, old.seq, old.org, row_hash, ledger_prev)
        new = new.sealed()
        statements.append(
            (
                "UPDATE ledger SET row_hash = ?, prev_hash = ?, hash = ? WHERE position = ?",
                (new.row_hash, new.prev_hash, new.hash, new.position),
            )
        )
        ledger_prev = new.hash
    tamper(url, *statements)


def test_a_full_rewrite_passes_without_a_checkpoint_and_fails_with_one(
    engine: Engine, sql_url: str, key: Path, tmp_path: Path
) -> None:
    """Recomputing every hash fools the chains and the ledger; a checkpoint signed before the
    rewrite names the ledger position that no longer matches."""
    target, _ = filed(engine)
    statement = checkpoint_now(engine, key, tmp_path / "cp1.json")
    assert engine.verify(checkpoints=[statement]) == []
    rewrite_everything(sql_url, engine, target)
    assert engine.verify() == []  # without the key's witness, the rewrite is consistent
    problems = engine.verify(checkpoints=[statement])
    assert [p["kind"] for p in problems] == ["checkpoint-mismatch"]
    assert problems[0]["position"] == statement["position"]


def test_cutting_the_ledger_tail_past_a_checkpoint_is_found(
    engine: Engine, sql_url: str, key: Path, tmp_path: Path
) -> None:
    """Removing the newest steps everywhere (history, ledger) is 'truncated'."""
    filed(engine)
    statement = checkpoint_now(engine, key, tmp_path / "cp.json")
    last = engine.store.ledger()[-1]
    before = engine.store.ledger()[-2]
    rows = engine.history(last.instance_id)
    earlier = engine._replay_rows(rows[:-1])
    tamper(
        sql_url,
        ("DELETE FROM outbox WHERE instance_id = ? AND seq = ?", (last.instance_id, last.seq)),
        ("DELETE FROM history WHERE instance_id = ? AND seq = ?", (last.instance_id, last.seq)),
        (
            "UPDATE instances SET version = ?, head_hash = ?, state = ?, data = ? WHERE id = ?",
            (
                rows[-2].seq,
                rows[-2].hash,
                rows[-2].target,
                json.dumps(earlier.data),
                last.instance_id,
            ),
        ),
        ("DELETE FROM ledger WHERE position = ?", (last.position,)),
    )
    assert engine.store.ledger_head() == (before.position, before.hash)
    assert engine.verify() == []
    problems = engine.verify(checkpoints=[statement])
    assert [(p["kind"], p["position"]) for p in problems] == [("truncated", last.position)]


def test_a_checkpoint_signed_with_another_key_is_refused(
    engine: Engine, key: Path, tmp_path: Path
) -> None:
    """A forged or altered checkpoint is a CheckpointError, never a pass."""
    filed(engine, 1)
    other = tmp_path / "other.key"
    generate_key(other)
    made = make_checkpoint(engine.store, load_private_key(other), engine.clock.now())
    write_checkpoint(made, tmp_path / "forged.json")
    with pytest.raises(CheckpointError, match="does not verify"):
        read_checkpoint(tmp_path / "forged.json", load_public_key(key.with_name("audit.key.pub")))
    made = make_checkpoint(engine.store, load_private_key(key), engine.clock.now())
    made["statement"]["position"] = 1
    write_checkpoint(made, tmp_path / "altered.json")
    with pytest.raises(CheckpointError, match="does not verify"):
        read_checkpoint(tmp_path / "altered.json", load_public_key(key.with_name("audit.key.pub")))


def test_a_key_is_never_overwritten(key: Path) -> None:
    """keygen on an existing file refuses, naming it, and leaves the key as it was."""
    before = key.read_bytes()
    with pytest.raises(CheckpointError, match="exists"):
        generate_key(key)
    assert key.read_bytes() == before
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_a_killed_checkpoint_writer_leaves_the_old_file_or_none(tmp_path: Path) -> None:
    """SIGKILL at any moment of `audit checkpoint -o` leaves a whole checkpoint or none."""
    db = tmp_path / "x.db"
    key = tmp_path / "k"
    generate_key(key)
    env = {**os.environ, "XIESHANG_DATABASE_URL": f"sqlite:///{db}"}
    cli = [sys.executable, "-m", "xieshang.adapters.cli"]
    subprocess.run([*cli, "audit", "verify"], env=env, check=False, capture_output=True)
    public = load_public_key(tmp_path / "k.pub")
    for delay in (0.05, 0.15, 0.3, 0.5, 0.8):
        out = tmp_path / "cp.json"
        proc = subprocess.Popen(
            [*cli, "audit", "checkpoint", "--key-file", str(key), "-o", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if out.exists():
            assert read_checkpoint(out, public)["format"] == "xieshang-checkpoint/1"
    done = subprocess.run(
        [*cli, "audit", "checkpoint", "--key-file", str(key), "-o", str(tmp_path / "cp.json")],
        env=env,
        check=False,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    assert read_checkpoint(tmp_path / "cp.json", public)["position"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cp.json.")]


def test_the_worker_writes_checkpoints_that_verify(tmp_path: Path) -> None:
    """`worker --checkpoint-dir` signs the ledger head into the directory; the checkpoint
    verifies with the public key and holds the ledger to what was there."""
    db = tmp_path / "w.db"
    key = tmp_path / "k"
    generate_key(key)
    url = f"sqlite:///{db}"
    with open_store(url) as store:
        engine = Engine(store, bundled())
        filed(engine, 1)
    cps = tmp_path / "cps"
    env = {**os.environ, "XIESHANG_DATABASE_URL": url}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "xieshang.adapters.cli"),
            *("worker", "--poll-interval", "0.1", "--no-relay"),
            *("--checkpoint-dir", str(cps), "--checkpoint-every", "0.01", "--key-file", str(key)),
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (cps.exists() and list(cps.glob("checkpoint-*.json"))):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    [found] = list(cps.glob("checkpoint-*.json"))  # the head did not move: one checkpoint
    statement = read_checkpoint(found, load_public_key(tmp_path / "k.pub"))
    with open_store(url) as store:
        assert statement["position"] == store.ledger_head()[0] == 4
        assert statement["instances_by_org"] == {"gy": 1}
