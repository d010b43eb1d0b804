"""How fast the engine fires durable commands, against the floor of the database itself.

    python bench/fire.py [--n N] [--pg URL]

For SQLite at synchronous=FULL and NORMAL (and PostgreSQL with --pg), the engine fires
``flag_key`` on the bundled ``proposal`` workflow (a step with a payload, two effects and two
events), and the floor is the bare driver (``sqlite3`` / ``psycopg``) doing three writes per
transaction in the same schema with the same settings: update the instance row (the statement
the store uses for this step), insert one history row, insert one outbox row, with the row
contents the engine wrote; the engine writes one outbox row more (two events per step). The two
run in alternating chunks within one run, so that a busy machine slows both alike. Also printed: the
engine on the in-memory store (fires/s, and us/fire of a guarded step), the bytes an instance
takes in the SQL store's cache (tracemalloc), and, at FULL, eight threads firing at once (their
commits share syncs: group commit) against the floor's rate of one transaction at a time, and the
CPU a fire costs with two threads firing at once against one alone (``thread_cpu_ratio``).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from xieshang import Actor, Engine
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import SQLStore, open_store
from xieshang.records import iso
from xieshang.workflows import bundled

MEMBER = Actor.of("m1", "member", org="bench")
COMMITTEE = Actor.of("c1", "proposal_committee", org="bench")
CHAIR = Actor.of("ch1", "chairpersons_council", org="bench")
INSTANCES = 100
CHUNK = 100


RESULTS: dict[str, str] = {}  # printed last, as one RESULT line


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# the statement the store runs for a step that stays in its state with the same deadline
UPDATE = (
    "UPDATE instances SET workflow_version = ?, definition_hash = ?, data = ?, version = ?, "
    "updated_at = ?, entered_at = ?, final = ?, overdue = ?, head_hash = ? "
    "WHERE id = ? AND version = ?"
)
HISTORY = (
    "INSERT INTO history (instance_id, seq, workflow, workflow_version, definition_hash, "
    '"trigger", '
    "source, target, actor, role, reason, payload, visibility, occurred_at, recorded_at, "
    "command_id, prev_hash, hash, parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?, ?)"
)
INSERT_INSTANCE = (
    "INSERT INTO instances (id, workflow, workflow_version, definition_hash, org, state, data, "
    "version, created_at, updated_at, entered_at, final, due_at, overdue, parent_id, unit, "
    "head_hash, children_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
)
OUTBOX = (
    "INSERT INTO outbox (event_id, instance_id, seq, type, org, body, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def filed_instances(engine: Engine, count: int) -> list[str]:
    ids = []
    for k in range(count):
        i = engine.start("proposal", {"title": f"bench {k}", "first_proposer": "m1"}, MEMBER)
        engine.fire(i.id, "submit", MEMBER, {"category": "economy"})
        engine.fire(i.id, "start_review", COMMITTEE)
        engine.fire(i.id, "file", COMMITTEE, {"number": f"B-{k}"})
        ids.append(i.id)
    return ids


class Floor:
    """The bare driver writing the engine's rows again: three writes per transaction."""

    def __init__(self, conn: Any, postgres: bool, source: SQLStore, ids: list[str]) -> None:
        mark = "%s" if postgres else "?"
        self.conn = conn
        self.begin = "BEGIN" if postgres else "BEGIN IMMEDIATE"
        self.sql = [s.replace("?", mark) for s in (UPDATE, HISTORY, OUTBOX)]
        self.rows: list[tuple[list[Any], list[Any], list[Any]]] = []
        start = 10**6  # the floor's own rows, well away from the engine's versions
        for iid in ids:
            inst = source.load(iid, fresh=True)
            assert inst is not None
            entry = source.history(iid)[-1]
            event = source.outbox(iid)[-1]
            fid = f"floor-{iid}"
            conn.execute(
                INSERT_INSTANCE.replace("?", mark),
                (
                    fid,
                    inst.workflow,
                    inst.workflow_version,
                    inst.definition_hash,
                    inst.org,
                    inst.state,
                    dumps(inst.data),
                    start,
                    iso(inst.created_at),
                    iso(inst.updated_at),
                    iso(inst.entered_at),
                    inst.final,
                    None,
                    inst.overdue,
                    None,
                    None,
                    inst.head_hash,
                ),
            )
            update = [
                inst.workflow_version,
                inst.definition_hash,
                dumps(inst.data),
                0,
                iso(inst.updated_at),
                iso(inst.entered_at),
                inst.final,
                inst.overdue,
                entry.hash,
                fid,
                0,
            ]
            history = [
                fid,
                0,
                entry.workflow,
                entry.workflow_version,
                entry.definition_hash,
                entry.trigger,
                entry.source,
                entry.target,
                dumps(entry.actor),
                entry.role,
                entry.reason,
                dumps(entry.payload),
                entry.visibility,
                entry.occurred_at,
                entry.recorded_at,
                None,
                entry.prev_hash,
                entry.hash,
                None,
            ]
            outbox = ["", fid, 0, event.type, event.org, dumps(event.body), entry.recorded_at]
            self.rows.append((update, history, outbox))
        self.versions = [start] * len(ids)
        self.k = 0

    def run(self, count: int) -> None:
        conn, (update_sql, history_sql, outbox_sql) = self.conn, self.sql
        for _ in range(count):
            at = self.k % len(self.rows)
            self.k += 1
            update, history, outbox = self.rows[at]
            version = self.versions[at]
            update[3], update[10] = version + 1, version
            history[1] = outbox[2] = version + 1
            outbox[0] = f"{history[0]}-{version + 1}-0"
            conn.execute(self.begin)
            cur = conn.execute(update_sql, update)
            assert cur.rowcount == 1
            conn.execute(history_sql, history)
            conn.execute(outbox_sql, outbox)
            conn.execute("COMMIT")
            self.versions[at] = version + 1


def race(
    engine_fire: Callable[[int], None], floor: Floor, n: int, settle: Callable[[], None]
) -> tuple[float, float]:
    """Seconds the engine and the floor take for ``n`` transactions each, in alternating chunks.
    The engine's chunk ends when the log checkpoints its commits asked for have run (on the
    store's own thread): that work is counted as the engine's, not left to slow the floor."""
    spent_engine = spent_floor = 0.0
    done = 0
    while done < n:
        step = min(CHUNK, n - done)
        t = time.perf_counter()
        floor.run(step)
        spent_floor += time.perf_counter() - t
        t = time.perf_counter()
        for k in range(done, done + step):
            engine_fire(k)
        settle()
        spent_engine += time.perf_counter() - t
        done += step
    return spent_engine, spent_floor


def durable(url: str, floor_conn: Any, n: int, label: str, **options: Any) -> None:
    store = open_store(url, **options)
    try:
        engine = Engine(store, bundled())
        ids = filed_instances(engine, INSTANCES)
        floor = Floor(floor_conn, store.postgres, store, ids)

        def fire(k: int) -> None:
            engine.fire(ids[k % len(ids)], "flag_key", CHAIR, {"lead_leader": f"L{k}"})

        checkpoints = store._checkpoints
        settle = checkpoints.settle if checkpoints is not None else lambda: None
        race(fire, floor, min(n, 200), settle)  # warm up: statements prepared, caches filled
        spent_engine, spent_floor = race(fire, floor, n, settle)
        ratio = spent_floor / spent_engine
        key = label.lower().removeprefix("sqlite ").replace("postgresql", "pg")
        RESULTS[f"{key}_ratio"] = f"{ratio:.2f}"
        RESULTS[f"{key}_fires_per_s"] = f"{n / spent_engine:.0f}"
        print(
            f"{label:<22} engine {n / spent_engine:8.0f} fires/s ({spent_engine / n * 1e6:6.0f} us)"
            f"   floor {n / spent_floor:8.0f} txn/s ({spent_floor / n * 1e6:6.0f} us)"
            f"   ratio {ratio:.2f}"
        )
        problems = engine.verify(ids[0])
        assert not problems, problems
        if not store.postgres and options.get("synchronous") == "FULL":
            grouped(engine, store, ids, n, n / spent_floor)
    finally:
        store.close()


def grouped(engine: Engine, store: SQLStore, ids: list[str], n: int, floor_rate: float) -> None:
    """Eight threads of one process fire at once (on instances of their own): their commits
    share syncs. The ratio is against the floor's rate of one transaction at a time."""
    threads, each = 8, max(n // 8, 1)
    group = store._group
    assert group is not None
    before = group.batches, group.commits
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        mine = ids[w::threads]
        try:
            for k in range(each):
                engine.fire(mine[k % len(mine)], "flag_key", CHAIR, {"lead_leader": f"G{w}-{k}"})
        except BaseException as e:  # reported after the run
            errors.append(e)

    pool = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    t = time.perf_counter()
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    spent = time.perf_counter() - t
    assert not errors, errors[:3]
    rate = threads * each / spent
    batches, commits = group.batches - before[0], group.commits - before[1]
    RESULTS["group_ratio"] = f"{rate / floor_rate:.2f}"
    RESULTS["group_fires_per_s"] = f"{rate:.0f}"
    print(
        f"{'SQLite FULL, 8 threads':<22} engine {rate:8.0f} fires/s"
        f"   floor {floor_rate:8.0f} txn/s (one at a time)   ratio {rate / floor_rate:.2f}"
        f"   {commits / max(batches, 1):.1f} commits per sync"
    )


def sqlite_floor_conn(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def sqlite_runs(n: int) -> None:
    for synchronous in ("FULL", "NORMAL"):
        with tempfile.TemporaryDirectory() as tmp:
            floor_path = Path(tmp) / "floor.db"
            open_store(f"sqlite:///{floor_path}").close()  # the same schema, migrated
            conn = sqlite_floor_conn(floor_path, synchronous)
            try:
                durable(
                    f"sqlite:///{tmp}/engine.db",
                    conn,
                    n,
                    f"SQLite {synchronous}",
                    synchronous=synchronous,
                )
            finally:
                conn.close()


def postgres_run(url: str, n: int) -> None:
    admin_url = url.replace("postgresql+psycopg://", "postgresql://")
    names = [f"xs_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        engine_url, floor_url = (
            make_url(admin_url).set(database=name).render_as_string(hide_password=False)
            for name in names
        )
        open_store(floor_url).close()
        with psycopg.connect(floor_url, autocommit=True) as conn:
            durable(engine_url, conn, n, "PostgreSQL")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def memory_run(n: int) -> None:
    engine = Engine(MemoryStore(), bundled())
    ids = filed_instances(engine, INSTANCES)
    t = time.perf_counter()
    for k in range(n):
        engine.fire(ids[k % len(ids)], "flag_key", CHAIR, {"lead_leader": f"L{k}"})
    spent = time.perf_counter() - t
    drafts = [
        engine.start("proposal", {"title": f"g {k}", "first_proposer": "m1"}, MEMBER).id
        for k in range(n)
    ]
    t = time.perf_counter()
    for iid in drafts:  # submit has a CEL guard and six effects
        engine.fire(iid, "submit", MEMBER, {"category": "economy", "is_public": True})
    guarded = time.perf_counter() - t
    RESULTS["memory_guard_us"] = f"{spent / n * 1e6:.0f}"  # flag_key: a guard, two effects
    RESULTS["memory_submit_us"] = f"{guarded / n * 1e6:.0f}"
    print(
        f"{'memory':<22} engine {n / spent:8.0f} fires/s ({spent / n * 1e6:6.0f} us)"
        f"   guarded step (submit): {guarded / n * 1e6:.0f} us/fire"
    )


def cache_bytes(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/cache.db"
        with open_store(url, synchronous="NORMAL") as store:
            ids = filed_instances(Engine(store, bundled()), count)
        with SQLStore(url, cache_size=count) as store:
            store.load(ids[0])  # the connection and its statements, not counted
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            for iid in ids[1:]:
                store.load(iid)
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
            print(
                f"{'cache':<22} {grown / (count - 1):.0f} bytes per cached instance "
                f"(a filed proposal, {count} cached)"
            )


def thread_cost(n: int) -> None:
    """CPU per fire (of the whole process) at NORMAL with two threads firing at once, against
    one thread alone in the same run: what running side by side costs each step. Every call
    into the driver lets the other thread take the interpreter, which the caller then waits to
    take back; the in-memory engine, which makes no such calls, pays nothing for it."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/threads.db", synchronous="NORMAL")
        try:
            engine = Engine(store, bundled())
            ids = filed_instances(engine, INSTANCES)

            def cpu_per_fire(threads: int, tag: str) -> float:
                each = n // threads

                def worker(w: int) -> None:
                    mine = ids[w::threads]
                    for k in range(each):
                        lead = {"lead_leader": f"{tag}{w}-{k}"}
                        engine.fire(mine[k % len(mine)], "flag_key", CHAIR, lead)

                pool = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
                before = time.process_time()
                for th in pool:
                    th.start()
                for th in pool:
                    th.join()
                return (time.process_time() - before) / (threads * each)

            cpu_per_fire(1, "warm")
            one, two = cpu_per_fire(1, "a"), cpu_per_fire(2, "b")
        finally:
            store.close()
    RESULTS["thread_cpu_ratio"] = f"{two / one:.2f}"
    print(
        f"{'SQLite NORMAL, 2 threads':<22} CPU {two * 1e6:6.0f} us/fire"
        f"   one thread {one * 1e6:6.0f} us/fire   ratio {two / one:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="transactions per measurement")
    parser.add_argument("--pg", help="a PostgreSQL URL; the bench creates and drops databases")
    parser.add_argument("--quick", action="store_true", help="500 transactions each")
    args = parser.parse_args()
    if args.quick:
        args.n = 500
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.n} transactions each; {os.cpu_count()} CPUs, load average {load:.1f}")
    sqlite_runs(args.n)
    if args.pg:
        postgres_run(args.pg, args.n)
    thread_cost(args.n)
    memory_run(args.n)
    cache_bytes(1000)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in RESULTS.items()))


if __name__ == "__main__":
    main()
