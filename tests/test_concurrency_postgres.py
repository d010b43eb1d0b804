"""Many processes firing at the same instances on PostgreSQL: no lost update, every conflict told.

Each worker process (multiprocessing, spawn) repeatedly reads an instance and fires ``flag_key``
with the version it read as ``expected_version``, naming its attempt in the payload; once per
round it also fires with a version it knows is stale. Every attempt must either be stored (its
payload appears in the history exactly once) or raise ConcurrencyConflict; the histories must
run 1..n without a gap, and the hash chains must verify. The driver logs nothing of its own
about the refused writes: each is told to its caller alone.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import random
from collections import Counter
from typing import Any

import pytest
from store_contract import CHAIR, propose, to_filed

from xieshang import ConcurrencyConflict, Engine, Registry
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

pytestmark = pytest.mark.postgres

WORKERS = 4
ROUNDS = 12
INSTANCES = 3


def worker(url: str, ids: list[str], number: int, start: Any, results: Any) -> None:
    """Fire at random instances; report what was stored and what conflicted."""
    stored: list[str] = []
    conflicts: list[tuple[str, int, int | None]] = []
    rng = random.Random(number)
    warned = logging.handlers.BufferingHandler(10_000)  # what the driver logs of its own
    warned.setLevel(logging.WARNING)
    logging.getLogger("psycopg").addHandler(warned)
    with open_store(url) as store:
        engine = Engine(store, bundled())
        start.wait(60)
        for k in range(ROUNDS):
            iid = rng.choice(ids)
            current = store.load(iid, fresh=True)
            assert current is not None
            tag = f"w{number}-{k}"
            try:
                engine.fire(
                    iid, "flag_key", CHAIR, {"lead_leader": tag}, expected_version=current.version
                )
                stored.append(tag)
            except ConcurrencyConflict as e:
                assert (e.instance_id, e.expected) == (iid, current.version)
                conflicts.append((iid, current.version, e.actual))
            try:
                engine.fire(
                    iid,
                    "flag_key",
                    CHAIR,
                    {"lead_leader": f"{tag}-stale"},
                    expected_version=current.version - 1,
                )
                stored.append(f"{tag}-stale")  # would be a lost update: checked below
            except ConcurrencyConflict as e:
                conflicts.append((iid, current.version - 1, e.actual))
    results.put((number, stored, conflicts, [r.getMessage() for r in warned.buffer]))


def test_processes_racing_on_the_same_instances_lose_no_update(
    pg_database: str, registry: Registry
) -> None:
    """Every attempt is stored once or refused as a conflict; histories are whole and verify."""
    with open_store(pg_database) as store:
        engine = Engine(store, registry)
        ids = [propose(engine, f"并发{k}").id for k in range(INSTANCES)]
        for iid in ids:
            to_filed(engine, iid)
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=worker, args=(pg_database, ids, n, start, results))
        for n in range(WORKERS)
    ]
    for p in processes:
        p.start()
    start.set()
    reports = [results.get(timeout=180) for _ in processes]
    for p in processes:
        p.join(60)
        assert p.exitcode == 0
    stored = [tag for _, tags, _, _ in reports for tag in tags]
    conflicts = [c for _, _, found, _ in reports for c in found]
    # a refused write is told to its caller alone, not also logged by the driver
    assert [m for *_, logged in reports for m in logged] == []
    assert not [tag for tag in stored if tag.endswith("-stale")]
    assert len(stored) + len(conflicts) == WORKERS * ROUNDS * 2
    assert len(conflicts) >= WORKERS * ROUNDS  # at least every stale attempt
    with open_store(pg_database) as store:
        engine = Engine(store, registry)
        flagged: Counter[str] = Counter()
        for iid in ids:
            rows = store.history(iid)
            assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
            stored_instance = store.load(iid, fresh=True)
            assert stored_instance is not None and stored_instance.version == len(rows)
            flagged.update(r.payload["lead_leader"] for r in rows if r.trigger == "flag_key")
        assert flagged == Counter(stored)  # each stored attempt exactly once, none lost
        assert sum(flagged.values()) == len(stored)
        assert engine.verify() == []


def test_a_step_waiting_for_the_ledger_lock_appends_after_what_committed_meanwhile(
    pg_database: str, registry: Registry
) -> None:
    """Another writer holds the ledger's lock, appends a position and commits while a step
    waits for the lock: the step, reading the head in the same round trip as it takes the
    lock, sees that position and appends after it (no duplicate, no gap)."""
    import threading
    import time

    import psycopg

    with open_store(pg_database) as store:
        engine = Engine(store, registry)
        iid = propose(engine, "锁").id
        to_filed(engine, iid)
        head, head_hash = store.ledger_head()
        holder = psycopg.connect(pg_database.replace("+psycopg", ""), autocommit=True)
        holder.execute("BEGIN")
        holder.execute(store._sql.ledger_lock)
        done: list[BaseException | None] = []

        def step() -> None:
            try:
                engine.fire(iid, "flag_key", CHAIR, {"lead_leader": "waited"})
                done.append(None)
            except BaseException as e:  # reported below
                done.append(e)

        waiting = threading.Thread(target=step)
        waiting.start()
        time.sleep(0.5)
        assert not done  # the step waits for the lock
        holder.execute(
            "INSERT INTO ledger (position, instance_id, seq, org, row_hash, prev_hash, hash) "
            "VALUES (%s, 'other', 1, 'gy', 'r', %s, 'h')",
            (head + 1, head_hash),
        )
        holder.execute("COMMIT")
        waiting.join(30)
        holder.close()
        assert done == [None]
        positions = [e.position for e in store.ledger(after=head)]
        assert positions == [head + 1, head + 2]
        assert store.ledger(after=head + 1)[0].prev_hash == "h"
