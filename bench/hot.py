"""Hot instances on PostgreSQL: eight processes firing on the same hundred instances.

    python bench/hot.py [--pg URL] [--n FIRES] [--quick]

Each process has its own store (and cache) and fires ``flag_key`` on instances drawn at random
from the shared hundred; an attempt that loses the race to another process (a version conflict
at the write) is a wasted transaction. The floor is the bare driver doing optimistic writes on
the same rows: read the version, then ``UPDATE ... WHERE version = read`` and an outbox row, in
one transaction (fewer writes than a step); a zero row count is its conflict. Printed: both
conflict rates (conflicts per committed step), their ratio, and fires/s on disjoint instances
(each process its own twelve, timed from the moment all of them are set up) against the
floor's. URL defaults to ``$XIESHANG_TEST_PG_URL``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import time
import uuid
from typing import Any

import psycopg
from fire import CHAIR, filed_instances
from sqlalchemy.engine import make_url

from xieshang import ConcurrencyConflict, Engine
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

PROCESSES = 8
INSTANCES = 100


def engine_worker(url: str, ids: list[str], n: int, seed: int, out: Any, go: Any) -> None:
    store = open_store(url)
    engine = Engine(store, bundled())
    conflicts = [0]
    apply = store.apply

    def counted(commit: Any) -> None:
        try:
            apply(commit)
        except ConcurrencyConflict:
            conflicts[0] += 1
            raise

    store.apply = counted  # type: ignore[method-assign]
    rng = random.Random(seed)
    done = 0
    ready(go)
    started = time.perf_counter()
    for k in range(n):
        try:
            engine.fire(rng.choice(ids), "flag_key", CHAIR, {"lead_leader": f"H{seed}-{k}"})
            done += 1
        except ConcurrencyConflict:
            pass  # lost every retry: counted above
    out.put((done, conflicts[0], time.perf_counter() - started))
    store.close()


def raw_worker(url: str, ids: list[str], n: int, seed: int, out: Any, go: Any) -> None:
    rng = random.Random(seed)
    done = conflicts = 0
    with psycopg.connect(url, autocommit=True) as conn:
        ready(go)
        started = time.perf_counter()
        for k in range(n):
            iid = rng.choice(ids)
            with conn.transaction():
                row = conn.execute("SELECT version, data FROM instances WHERE id = %s", (iid,))
                version, data = row.fetchone()  # type: ignore[misc]
                body = json.loads(data)
                body["lead_leader"] = f"R{seed}-{k}"
                cur = conn.execute(
                    "UPDATE instances SET version = %s, data = %s WHERE id = %s AND version = %s",
                    (version + 1, json.dumps(body), iid, version),
                )
                if cur.rowcount != 1:
                    conflicts += 1
                    continue
                conn.execute(
                    "INSERT INTO outbox (event_id, instance_id, seq, type, org, body, created_at) "
                    "VALUES (%s, %s, %s, 'raw', 'bench', '{}', '')",
                    (f"raw-{uuid.uuid4().hex}", iid, version + 1),
                )
            done += 1
    out.put((done, conflicts, time.perf_counter() - started))


def ready(go: Any) -> None:
    """Wait, set up, until every process is: starting a process and importing is not a fire."""
    go.wait(timeout=600)


def run(worker: Any, url: str, groups: list[list[str]], n: int) -> tuple[int, int, float]:
    """Committed steps, conflicts, and the seconds from the moment every process was ready (its
    imports, store and definitions set up) until the last one finished."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    go = ctx.Barrier(PROCESSES + 1)
    procs = [
        ctx.Process(target=worker, args=(url, groups[p], n, p, out, go)) for p in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    go.wait(timeout=600)
    started = time.perf_counter()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    return sum(r[0] for r in results), sum(r[1] for r in results), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("XIESHANG_TEST_PG_URL"))
    parser.add_argument("--n", type=int, default=1000, help="fires per process")
    parser.add_argument("--quick", action="store_true", help="150 fires per process")
    args = parser.parse_args()
    if not args.pg:
        parser.error("a PostgreSQL URL: --pg URL or $XIESHANG_TEST_PG_URL")
    n = 150 if args.quick else args.n
    admin_url = args.pg.replace("postgresql+psycopg://", "postgresql://")
    name = f"xs_hot_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        with open_store(url) as store:
            ids = filed_instances(Engine(store, bundled()), INSTANCES)
        shared = [ids] * PROCESSES
        disjoint = [ids[p::PROCESSES] for p in range(PROCESSES)]
        figures: dict[str, float] = {}
        for label, worker in (("engine", engine_worker), ("raw", raw_worker)):
            done, conflicts, _ = run(worker, url, shared, n)
            figures[f"{label}_conflict_rate"] = conflicts / max(done, 1)
            done, _, wall = run(worker, url, disjoint, n)
            figures[f"{label}_disjoint_per_s"] = done / wall
            print(
                f"{label:<7} hot: {figures[f'{label}_conflict_rate']:.3f} conflicts per step   "
                f"disjoint: {figures[f'{label}_disjoint_per_s']:.0f} fires/s"
            )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ratio = figures["engine_conflict_rate"] / max(figures["raw_conflict_rate"], 1e-9)
    disjoint = figures["engine_disjoint_per_s"] / figures["raw_disjoint_per_s"]
    print(
        f"RESULT conflict_rate={figures['engine_conflict_rate']:.3f} "
        f"raw_conflict_rate={figures['raw_conflict_rate']:.3f} conflict_ratio={ratio:.2f} "
        f"disjoint_ratio={disjoint:.2f} processes={PROCESSES} instances={INSTANCES} fires={n}"
    )


if __name__ == "__main__":
    main()
