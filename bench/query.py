"""The first page of every query shape at a million instances, with the plan the database uses.

    python bench/query.py [--quick] [--instances N] [--page 50]

Builds 1,000,000 instances (200,000 with ``--quick``) of two small workflows in four orgs and
forty units: an engine on the in-memory store starts them and moves them (60% received, 2%
handling and overdue, 20% replied, 18% closed), and ``SQLStore.bulk_load`` writes its commits
ten thousand instances at a time: the rows the engine writes, hash chains and ledger included
(a sample is verified). Then, for each shape the API and CLI offer (unscoped as the library and
``xieshang list`` ask, scoped as the HTTP API and ``--as`` ask, and the inbox), it prints the
plan (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL) and the first page's time: the store's
query alone and the whole ``engine.query``, the median of seven. Last, starting an instance on
that database against an empty one. PostgreSQL runs too when ``$XIESHANG_TEST_PG_URL`` is set
(in a schema of its own, dropped at the end), except in the quick form, where it takes
``--postgres``: the quick form is for 2 cores in under four minutes. The last line is ``RESULT``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql
from sqlalchemy.engine import make_url

from xieshang import Actor, Commit, Engine, FixedClock, PageCursor, Query, Registry
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import SQLStore, open_store
from xieshang.adapters.sql import readers as sql_readers
from xieshang.adapters.sql.queries import WALK_SETTINGS

WORKFLOW = """
id: {id}
version: 1
title: {{zh: 查询基准, en: Query benchmark}}
calendar: weekdays
roles:
  clerk: {{zh: 办事员}}
  handling_unit: {{zh: 承办单位}}
bound_roles: [handling_unit]
read:
  data:
    - units: [handling_unit]
  internal:
    - roles: [clerk]
start:
  roles: [clerk]
data:
  title: {{type: string, required: true, max_length: 100}}
states:
  received: {{initial: true, label: {{zh: 已收到}}}}
  handling: {{label: {{zh: 办理中}}, deadline: {{after: 1 day}}}}
  replied: {{label: {{zh: 已答复}}}}
  closed: {{final: true, label: {{zh: 已办结}}}}
transitions:
  - {{trigger: accept, from: received, to: handling, roles: [clerk]}}
  - {{trigger: reply, from: handling, to: replied, roles: [handling_unit]}}
  - {{trigger: close, from: replied, to: closed, roles: [clerk]}}
"""
WORKFLOWS = ("bench_case", "bench_note")
ORGS = tuple(f"org{k}" for k in range(4))
UNITS = tuple(f"u{k:02d}" for k in range(40))
CHUNK = 10_000
T0 = datetime(2020, 1, 6, 1, tzinfo=UTC)
RUNS = 7


def registry() -> Registry:
    return Registry.from_texts([(f"{w}.yaml", WORKFLOW.format(id=w)) for w in WORKFLOWS])


def clerk(org: str) -> Actor:
    return Actor.of(f"clerk-{org}", "clerk", org=org)


def officer(org: str, unit: str) -> Actor:
    return Actor.of(f"officer-{org}-{unit}", "handling_unit", org=org, unit=unit)


class Recorder(MemoryStore):
    """The in-memory store, keeping the commits the engine makes on it for a bulk load."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[Commit] = []

    def apply(self, commit: Commit) -> None:
        super().apply(commit)
        self.commits.append(commit)


@functools.cache
def _registry() -> Registry:
    return registry()


def make(first: int) -> list[Commit]:
    """The commits of one chunk of instances, from ``first``: started by an engine in memory
    on a clock of their own (three seconds apart), moved, and ticked five days on so that the
    ones left handling go overdue. Chunks are independent, so two processes make them."""
    count = min(CHUNK, _total - first)
    clock = FixedClock(T0 + (first // CHUNK) * (CHUNK * timedelta(seconds=3) + timedelta(days=5)))
    store = Recorder()
    numbers = iter(range(first, first + count))
    engine = Engine(store, _registry(), clock, ids=lambda: f"q{next(numbers):08d}")
    for k in range(first, first + count):
        clock.advance(seconds=3)
        # org, fate and unit vary independently: every org has cases of every fate and unit
        org, fate = ORGS[k % len(ORGS)], (k // len(ORGS)) % 50
        unit = UNITS[(k // (len(ORGS) * 50)) % len(UNITS)]
        who = clerk(org)
        i = engine.start(WORKFLOWS[k % 3 % 2], {"title": f"case {k}"}, who, unit=unit)
        if fate < 10 or fate >= 30:
            continue  # received: 60%
        engine.fire(i.id, "accept", who)
        if fate == 10:
            continue  # handling, left to go overdue: 2%
        engine.fire(i.id, "reply", officer(org, unit))
        if fate < 20:
            engine.fire(i.id, "close", who)  # closed: 18%; replied: 20%
    clock.advance(days=5)
    engine.tick(clock.now(), limit=CHUNK)
    return store.commits


_total = 0  # how many instances to make: set before the workers start (they fork)


def build(stores: list[SQLStore], count: int) -> dict[str, float]:
    """Make ``count`` instances a chunk at a time in two processes, and bulk-load each chunk
    into every store in order. Returns the seconds spent writing, per store."""
    global _total
    for store in stores:
        engine = Engine(store, _registry())
        for wf in _registry().versions():
            engine._remember_definition(wf)
    spent = {s.url.get_backend_name(): 0.0 for s in stores}
    firsts = list(range(0, count, CHUNK))
    _total = count
    waiting = iter(firsts)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        # the workers make the next two chunks while this process writes one: memory holds
        # three chunks at most, and no core waits for another
        made = deque(pool.apply_async(make, (first,)) for first in itertools.islice(waiting, 2))
        while made:
            commits = made.popleft().get()
            if (first := next(waiting, None)) is not None:
                made.append(pool.apply_async(make, (first,)))
            for store in stores:
                began = time.perf_counter()
                store.bulk_load(commits)
                spent[store.url.get_backend_name()] += time.perf_counter() - began
    return spent


class Watch:
    """A store that remembers the queries the engine sends it (to explain them)."""

    def __init__(self, inner: SQLStore) -> None:
        self.inner = inner
        self.asked: list[Query] = []

    def query(self, query: Query) -> Any:
        self.asked.append(query)
        return self.inner.query(query)

    def query_read(self, query: Query) -> Any:  # a scoped query: its rows with their levels
        self.asked.append(query)
        return self.inner.query_read(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def shapes(store: SQLStore) -> dict[str, tuple[Query, Actor | None]]:
    """Each query shape: the query and the actor it is read as (None: unscoped)."""
    newest = store.query(Query(limit=1000, after=_tail_cursor(store)))
    tail = PageCursor.of(newest[0]) if newest else None
    org, unit = ORGS[1], UNITS[7]
    return {
        "workflow+state": (Query(workflow="bench_case", state="replied"), None),
        "overdue": (Query(overdue=True), None),
        "overdue by org": (Query(org=org, overdue=True), None),
        "unit": (Query(unit=unit), None),
        "org+workflow": (Query(org=org, workflow="bench_note"), None),
        "newest 1000": (Query(after=tail), None),
        "overdue among newest": (Query(overdue=True, after=tail), None),
        "scoped workflow+state": (Query(workflow="bench_case", state="replied"), clerk(org)),
        "scoped overdue": (Query(overdue=True), clerk(org)),
        "scoped unit": (Query(unit=unit), clerk(org)),
        "scoped workflow": (Query(workflow="bench_note"), clerk(org)),
        "scoped by unit officer": (Query(), officer(org, unit)),
        # a unit with no instances: its officer's principals read none
        "scoped, unit with none": (Query(), officer(org, "u-none")),
        "inbox clerk received": (Query(actionable_by=clerk(org), states=["received"]), None),
        "inbox clerk": (Query(actionable_by=clerk(org)), None),
        "inbox officer handling": (
            Query(actionable_by=officer(org, unit), states=["handling"]),
            None,
        ),
        "inbox officer": (Query(actionable_by=officer(org, unit)), None),
    }


def _tail_cursor(store: SQLStore) -> PageCursor | None:
    """The cursor 1,001 instances before the newest: the page after it is the newest 1,000."""
    conn = store._get()
    try:
        row = conn.execute(
            "SELECT created_at, id FROM instances ORDER BY created_at DESC, id DESC "
            "LIMIT 1 OFFSET 1000"
        ).fetchone()
    finally:
        store._put(conn)
    return PageCursor.parse(f"{row[0]}|{row[1]}", "after") if row else None


def explain(store: SQLStore, query: Query) -> list[str]:
    known = store._read(store._sql.definitions) if query.acts is not None else ()
    narrow = store.narrow(query)
    sql, params = store._sql.query(query, known, levels=query.readers is not None, narrow=narrow)
    conn = store._get()
    try:
        if store.postgres and query.acts is not None:
            return generic_plan(conn, sql, params)  # what an inbox runs on
        if store.postgres and narrow is not None:  # walks along reader rows
            return generic_plan(conn, sql, params, WALK_SETTINGS)
        if store.postgres:  # the text numbers its parameters ($1, $2 ...)
            rows = psycopg.RawCursor(conn).execute("EXPLAIN " + sql, params).fetchall()
        else:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    finally:
        store._put(conn)
    return [str(r[0]) for r in rows] if store.postgres else [str(r[-1]) for r in rows]


def generic_plan(
    conn: Any, sql: str, params: Any, settings: tuple[tuple[str, str], ...] = ()
) -> list[str]:
    """PostgreSQL's plan of ``sql`` for any values (the one a prepared statement keeps), under
    ``settings`` as the store sets them, as ``EXPLAIN EXECUTE`` of it prepared by name prints
    it."""
    values = psycopg.sql.SQL(", ").join(psycopg.sql.Literal(v) for v in params)
    conn.execute("BEGIN")
    try:
        conn.execute(f"PREPARE xs_bench_plan AS {sql}")
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        for name, value in settings:
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        explained = psycopg.sql.SQL("EXPLAIN EXECUTE xs_bench_plan({})").format(values)
        rows = conn.execute(explained).fetchall()
        conn.execute("DEALLOCATE xs_bench_plan")
    finally:
        conn.execute("ROLLBACK")
    return ["(one plan for any values)"] + [str(r[0]) for r in rows]


def median_ms(run: Callable[[], object]) -> float:
    run()
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def measure(store: SQLStore, page: int) -> tuple[float, float]:
    """Print every shape's plan and times; the largest store and engine times."""
    watch = Watch(store)
    engine = Engine(watch, registry())  # type: ignore[arg-type]
    worst_store = worst_engine = 0.0
    for name, (q, actor) in shapes(store).items():
        q = replace(q, limit=page)
        watch.asked.clear()
        found = engine.query(q, actor=actor)
        asked, calls = watch.asked[0], len(watch.asked)
        plan = explain(store, asked)
        engine_ms = median_ms(lambda q=q, actor=actor: engine.query(q, actor=actor))
        # what the engine asks: a scoped query reads each row's level with it
        ask = store.query_read if asked.readers is not None else store.query
        store_ms = median_ms(lambda asked=asked, ask=ask: ask(asked))
        worst_store, worst_engine = max(worst_store, store_ms), max(worst_engine, engine_ms)
        print(
            f"  {name:<24} store {store_ms:7.2f} ms  engine.query {engine_ms:7.2f} ms  "
            f"({len(found.items)} items, {calls} store queries)"
        )
        if any(store.narrow(asked) or ()):  # read along reader rows: against the instances
            print(f"      (walking the instances instead: {walking_ms(store, asked):.2f} ms)")
        for line in plan:
            print(f"      {line}")
    return worst_store, worst_engine


def walking_ms(store: SQLStore, asked: Query) -> float:
    """The store's time for a scoped query read along the instances, every principal tested
    on each (what it was before principals that read few were read along their rows)."""
    kept = sql_readers.FEW, sql_readers.FEW_FILTERED
    sql_readers.FEW = sql_readers.FEW_FILTERED = 0
    try:
        return median_ms(lambda: store.query_read(asked))
    finally:
        sql_readers.FEW, sql_readers.FEW_FILTERED = kept


def start_ms(engine: Engine, org: str, n: int = 200) -> float:
    """Median milliseconds of ``engine.start`` of a bench case with a unit."""
    times = []
    for k in range(n):
        began = time.perf_counter()
        engine.start("bench_case", {"title": f"timed {k}"}, clerk(org), unit=UNITS[k % 40])
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def start_ratio(url: str, empty_url: str) -> tuple[float, float]:
    """Starting an instance on the loaded database and on an empty one (same settings)."""
    clock = FixedClock(datetime(2030, 1, 7, 1, tzinfo=UTC))
    out = []
    for target in (empty_url, url):
        with open_store(target) as store:
            engine = Engine(store, registry(), clock)
            start_ms(engine, ORGS[3], 20)
            out.append(start_ms(engine, ORGS[3]))
    return out[0], out[1]


def verify_sample(store: SQLStore) -> int:
    """Verify the chains and replays of a sample of instances and the whole ledger's links."""
    engine = Engine(store, registry())
    ids = [i.id for i in store.query(Query(limit=200))]
    ids += [i.id for i in store.query(Query(overdue=True, limit=50))]
    problems = [p for iid in ids for p in engine.verify(iid)]
    if problems:
        raise SystemExit(f"bulk-loaded instances fail verify: {problems[:3]}")
    return len(ids)


def analyze(store: SQLStore) -> None:
    conn = store._get()
    try:
        conn.execute("ANALYZE")
    finally:
        store._put(conn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 instances")
    parser.add_argument("--instances", type=int, default=None)
    parser.add_argument("--page", type=int, default=50, help="page size (the CLI's default)")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="with --quick, also PostgreSQL ($XIESHANG_TEST_PG_URL; the full form always)",
    )
    args = parser.parse_args()
    count = args.instances or (200_000 if args.quick else 1_000_000)
    folder = Path(tempfile.mkdtemp(prefix="xs-bench-query-"))
    urls = {"sqlite": f"sqlite:///{folder}/loaded.db"}
    empties = {"sqlite": f"sqlite:///{folder}/empty.db"}
    pg = os.environ.get("XIESHANG_TEST_PG_URL") if args.postgres or not args.quick else None
    schemas: list[str] = []
    if pg:
        for kind in ("loaded", "empty"):
            name = f"xs_bench_query_{kind}_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(pg, autocommit=True) as admin:
                admin.execute(f'CREATE SCHEMA "{name}"')
            schemas.append(name)
            url = make_url(pg).update_query_dict({"options": f"-csearch_path={name}"})
            (urls if kind == "loaded" else empties)["postgresql"] = url.render_as_string(
                hide_password=False
            )
    results: dict[str, str] = {"instances": str(count)}
    try:
        stores = [open_store(u, synchronous="NORMAL") if u.startswith("sqlite") else open_store(u)
                  for u in urls.values()]  # fmt: skip
        began = time.perf_counter()
        spent = build(stores, count)
        print(
            f"built {count:,} instances in {time.perf_counter() - began:.1f} s ("
            + ", ".join(f"writing to {k} {v:.1f} s" for k, v in spent.items())
            + ")"
        )
        worst = 0.0
        for store in stores:
            kind = store.url.get_backend_name()
            analyze(store)
            print(f"{kind}: verified {verify_sample(store)} bulk-loaded instances")
            print(f"{kind}: first page of {args.page}, median of {RUNS}")
            store_worst, engine_worst = measure(store, args.page)
            worst = max(worst, store_worst)
            results[f"{kind}_store_ms_max"] = f"{store_worst:.2f}"
            results[f"{kind}_engine_query_ms_max"] = f"{engine_worst:.2f}"
            store.close()
            empty_ms, loaded_ms = start_ratio(urls[kind], empties[kind])
            print(
                f"{kind}: start an instance {loaded_ms:.2f} ms at {count:,} vs {empty_ms:.2f} ms "
                f"empty (x{loaded_ms / empty_ms:.2f})"
            )
            results[f"{kind}_start_ratio"] = f"{loaded_ms / empty_ms:.2f}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for name in schemas:
            with psycopg.connect(pg or "", autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{name}" CASCADE')
    print(
        f"RESULT first_page_ms_max={worst:.2f} instances={count} "
        + " ".join(f"{k}={v}" for k, v in results.items() if k != "instances")
    )


if __name__ == "__main__":
    main()
