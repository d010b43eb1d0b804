"""Where the command routes run a step: on the event loop over a store of this machine (SQLite,
memory), on a worker thread over PostgreSQL, and on worker threads for a while after a step
that took long (it waited, most likely for another process's write lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from xieshang.adapters.http import MemoryTokenStore, create_app, runner
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql.store import open_store
from xieshang.records import Actor, Commit
from xieshang.runtime import Engine
from xieshang.workflows import bundled

START = {"workflow": "proposal", "data": {"title": "t", "first_proposer": "m1"}}
WORKER = "AnyIO worker thread"  # the name of the threads routes written as plain functions use


class Watched:
    """A store that notes the thread each commit is written on; ``slow`` makes the commits
    whose number (from 1) it names wait first, as a commit held up by a lock would."""

    def __init__(self, inner: Any, slow: frozenset[int] = frozenset()) -> None:
        self.inner = inner
        self.slow = slow
        self.threads: list[str] = []

    def apply(self, commit: Commit) -> None:
        self.threads.append(threading.current_thread().name)
        if len(self.threads) in self.slow:
            time.sleep(runner.SLOW_SECONDS * 2)
        self.inner.apply(commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextmanager
def served(store: Watched) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    tokens = MemoryTokenStore()
    member = tokens.create(Actor.parse("m1:member,chairpersons_council@o"))
    committee = tokens.create(Actor.parse("c1:proposal_committee@o"))
    with (
        serve_in_thread(create_app(Engine(store, bundled()), tokens)) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {member}"}) as m,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {committee}"}) as c,
    ):
        yield m, c


def steps(m: httpx.Client, c: httpx.Client, count: int) -> list[int]:
    """Start a proposal, then fire the first ``count - 1`` of submit, start_review, file and
    flag_key on it: the statuses."""
    r = m.post("/instances", json=START)
    statuses = [r.status_code]
    iid = r.json()["id"]
    moves = [
        (m, "submit", {"category": "economy"}),
        (c, "start_review", {}),
        (c, "file", {"number": "N-1"}),
        (m, "flag_key", {"lead_leader": "L"}),
    ]
    for client, trigger, payload in moves[: count - 1]:
        r = client.post(f"/instances/{iid}/fire", json={"trigger": trigger, "payload": payload})
        statuses.append(r.status_code)
    return statuses


def test_a_step_runs_on_the_event_loop_over_sqlite_and_on_a_worker_over_postgres(
    sql_url: str,
) -> None:
    """Start and fire write their commit on the server's event loop when the store works on
    this machine, and on a worker thread when it waits for a network."""
    store = Watched(open_store(sql_url))
    try:
        with served(store) as (m, c):
            assert steps(m, c, 4) == [201, 200, 200, 200]
    finally:
        store.inner.close()
    assert len(store.threads) == 4
    if store.inner.postgres:
        assert store.threads == [WORKER] * 4
    else:
        assert WORKER not in store.threads
        assert len(set(store.threads)) == 1  # the one thread of the event loop


def test_a_store_that_does_not_say_it_is_local_gets_worker_threads() -> None:
    """A store of the integrator's own without ``local = True`` is waited for on a worker
    thread; the in-memory store says it is local."""

    class Remote(MemoryStore):
        local = False

    mine, memory = Watched(Remote()), Watched(MemoryStore())
    for store in (mine, memory):
        with served(store) as (m, c):
            assert steps(m, c, 2) == [201, 200]
    assert mine.threads == [WORKER] * 2
    assert WORKER not in memory.threads


def test_after_a_slow_step_the_steps_go_to_worker_threads_for_a_while(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that took longer than ``SLOW_SECONDS`` sends the next ones to worker threads
    until ``COOL_SECONDS`` have passed; then they run on the event loop again."""
    monkeypatch.setattr(runner, "COOL_SECONDS", 0.5)
    store = Watched(open_store(f"sqlite:///{tmp_path}/s.db"), slow=frozenset({2}))
    try:
        with served(store) as (m, c):
            fire = f"/instances/{m.post('/instances', json=START).json()['id']}/fire"
            submit = {"trigger": "submit", "payload": {"category": "economy"}}
            assert m.post(fire, json=submit).status_code == 200  # slow
            assert c.post(fire, json={"trigger": "start_review"}).status_code == 200
            time.sleep(0.6)
            filing = {"trigger": "file", "payload": {"number": "N-1"}}
            assert c.post(fire, json=filing).status_code == 200
    finally:
        store.inner.close()
    loop = store.threads[0]
    assert loop != WORKER
    assert store.threads == [loop, loop, WORKER, loop]
