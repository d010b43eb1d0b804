"""Every query shape the API and the command line offer reads its first page in order from an
index: SQLite never sorts all the matches (no temporary B-tree) nor walks the whole table.
``xieshang list --overdue --unit`` lists exactly the overdue instances of that unit. A bulk
load writes the rows applying the same commits one by one writes. Migration 0008 upgrades a
database made at 0007."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel
from typer.testing import CliRunner

from xieshang import Actor, Commit, Engine, FixedClock, Query, Registry, Usage
from xieshang.access import principals
from xieshang.adapters.cli import app
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import SQLStore, open_store, upgrade
from xieshang.adapters.sql import readers as sql_readers
from xieshang.adapters.sql.connect import _alembic_config
from xieshang.adapters.sql.store import sa_engine

CN = timezone(timedelta(hours=8))
CASE = """\
id: {id}
version: 1
title: {{zh: 案件}}
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
  title: {{type: string, required: true}}
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
WORKFLOWS = ("case", "note")
ORGS = ("org0", "org1")
UNITS = ("u0", "u1", "u2", "u3", "u4")
COUNT = 3000
runner = CliRunner()


def registry() -> Registry:
    return Registry.from_texts([(f"{w}.yaml", CASE.format(id=w)) for w in WORKFLOWS])


def clerk(org: str) -> Actor:
    return Actor.of(f"clerk-{org}", "clerk", org=org)


def officer(org: str, unit: str) -> Actor:
    return Actor.of(f"officer-{unit}", "handling_unit", org=org, unit=unit)


class Recorder(MemoryStore):
    """The in-memory store, keeping the commits the engine makes on it."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[Commit] = []

    def apply(self, commit: Commit) -> None:
        super().apply(commit)
        self.commits.append(commit)


def fate(k: int) -> int:
    """What becomes of the k-th case: 0 received, 1 handling (then overdue), 2 replied, 3 closed."""
    return (0, 0, 1, 2, 3, 0, 2)[k % 7]


def made(count: int) -> tuple[list[Commit], list[Any]]:
    """The commits of ``count`` cases started and moved by an engine in memory (three seconds
    apart, in two orgs and five units), ticked on until the ones handling are overdue; and the
    instances as they end."""
    clock = FixedClock(datetime(2024, 3, 4, 9, tzinfo=CN))
    store = Recorder()
    numbers = iter(range(count))
    engine = Engine(store, registry(), clock, ids=lambda: f"c{next(numbers):05d}")
    for k in range(count):
        clock.advance(seconds=3)
        org, unit = ORGS[k % 2], UNITS[k % 5]
        i = engine.start(WORKFLOWS[k % 3 % 2], {"title": f"案件 {k}"}, clerk(org), unit=unit)
        if fate(k) >= 1:
            engine.fire(i.id, "accept", clerk(org))
        if fate(k) >= 2:
            engine.fire(i.id, "reply", officer(org, unit))
        if fate(k) == 3:
            engine.fire(i.id, "close", clerk(org))
    clock.advance(days=5)
    engine.tick(clock.now())
    return store.commits, [store.load(f"c{k:05d}") for k in range(count)]


def loaded(url: str, count: int) -> SQLStore:
    store = open_store(url)
    engine = Engine(store, registry())
    for wf in registry().versions():
        engine._remember_definition(wf)
    store.bulk_load(made(count)[0])
    return store


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLStore]:
    """A SQLite database of a few thousand cases, analyzed as a deployment's would be."""
    path = tmp_path_factory.mktemp("plans") / "xs.db"
    store = loaded(f"sqlite:///{path}", COUNT)
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")
    store.close()
    with open_store(f"sqlite:///{path}") as fresh:
        yield fresh


class Watch:
    """A store that remembers the queries the engine sends it."""

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


# an inbox: one select per workflow and state of the actor's org, each in page order, merged;
# for a role bound to the instance's own unit, one of its unit and one of no unit
ARMS = "ix_instances_org_workflow_state (org=? AND workflow=? AND state=?)"
UNIT_ARMS = "ix_instances_org_unit_state (org=? AND unit=? AND workflow=? AND state=?)"
# each shape: the query, the actor it is read as (None: unscoped), the index its page walks
SHAPES: dict[str, tuple[Query, Actor | None, str]] = {
    "workflow and state": (
        Query(workflow="case", state="replied"),
        None,
        "ix_instances_workflow_state (workflow=? AND state=?)",
    ),
    "overdue": (Query(overdue=True), None, "ix_instances_overdue"),
    "overdue by org": (Query(org="org1", overdue=True), None, "ix_instances_org_overdue (org=?)"),
    "unit": (Query(unit="u3"), None, "ix_instances_unit (unit=?)"),
    "org and workflow": (
        Query(org="org1", workflow="note"),
        None,
        "ix_instances_org_workflow (org=? AND workflow=?)",
    ),
    "parent": (Query(parent_id="c00001"), None, "ix_instances_parent_id (parent_id=?)"),
    "after a cursor": (
        Query(after=("2024-03-04T01:30:00.000000+00:00|c00600")),
        None,
        "ix_instances_created ((created_at,id)>(?,?))",
    ),
    "overdue after a cursor": (
        Query(overdue=True, after=("2024-03-04T01:30:00.000000+00:00|c00600")),
        None,
        "ix_instances_overdue ((created_at,id)>(?,?))",
    ),
    "read as a clerk: overdue": (
        Query(overdue=True),
        clerk("org1"),
        "ix_instances_org_overdue (org=?)",
    ),
    "read as a clerk: workflow": (
        Query(workflow="note"),
        clerk("org1"),
        "ix_instances_org_workflow (org=? AND workflow=?)",
    ),
    "read as a clerk: unit": (Query(unit="u3"), clerk("org1"), "ix_instances_unit (unit=?)"),
    "read as a clerk: workflow and state": (
        Query(workflow="case", state="replied"),
        clerk("org1"),
        ARMS,
    ),
    "read as a unit": (Query(), officer("org1", "u3"), "ix_instances_org_created (org=?)"),
    "inbox": (Query(actionable_by=clerk("org1")), None, ARMS),
    "inbox of states": (
        Query(actionable_by=clerk("org1"), states=["received", "replied"]),
        None,
        ARMS,
    ),
    "inbox of a unit": (
        Query(actionable_by=officer("org1", "u3"), states=["handling"]),
        None,
        UNIT_ARMS,
    ),
    "inbox of a unit, every state": (Query(actionable_by=officer("org1", "u3")), None, UNIT_ARMS),
}


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every principal counts as reading many instances: scoped pages walk the instances."""
    monkeypatch.setattr(sql_readers, "FEW", 0)
    monkeypatch.setattr(sql_readers, "FEW_FILTERED", 0)


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_query_shape_reads_its_first_page_from_an_index(
    analyzed: SQLStore, wide: None, name: str
) -> None:
    """The plan of the store's query walks the named index in page order (every select of it,
    for an inbox's merged selects): no temporary B-tree (a sort of every match), no scan of
    the table; and the page holds what the query asks, in page order."""
    query, actor, index = SHAPES[name]
    watch = Watch(analyzed)
    page = Engine(watch, registry()).query(replace(query, limit=20), actor=actor)  # type: ignore[arg-type]
    stored = analyzed._read(analyzed._sql.definitions)
    asked = watch.asked[0]
    assert not any(analyzed.narrow(asked) or ())
    sql, params = analyzed._sql.query(asked, stored, levels=asked.readers is not None)
    with sqlite3.connect(str(analyzed.url.database)) as conn:
        plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    assert not [line for line in plan if "TEMP B-TREE" in line], plan
    walks = [line for line in plan if line.startswith(("SEARCH instances", "SCAN instances"))]
    assert walks and all(line.endswith(f" USING INDEX {index}") for line in walks), plan
    assert not [line for line in plan if "MULTI-INDEX OR" in line], plan
    probes = [line for line in plan if line.startswith("SEARCH readers")]
    # read scope: one range of the instance's readers rows, not one lookup per principal
    assert all(line.endswith("(instance_id=?)") for line in probes), plan
    assert bool(probes) == (actor is not None or query.actionable_by is not None), plan
    if probes:  # the level of each row of the page is read by the same statement
        assert "max(readers.level)" in sql
    assert page.items or name == "parent", "the shape matches some instances"
    keys = [(i.created_at, i.id) for i in page.items]
    assert keys == sorted(keys)


SCOPED = {name: shape for name, shape in SHAPES.items() if shape[1] is not None}
# a clerk who is also an officer of u3 reads u3's cases as both: each comes once
BOTH = Actor.of("clerk-officer", "clerk", "handling_unit", org="org1", unit="u3")
SCOPED |= {"read as both": (Query(), BOTH, ""), "both, a unit": (Query(unit="u3"), BOTH, "")}


@pytest.mark.parametrize("name", list(SCOPED))
def test_a_page_read_along_the_reader_rows_is_the_page_read_along_the_instances(
    analyzed: SQLStore, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Each scoped shape, every principal counted as reading few instances (one select each,
    along its reader rows, or as SQLite's planner finds cheaper for a filter) and as reading
    many (the walk along the instances): the same pages, row for row, level for level, cursor
    for cursor, to the end."""
    query, actor, _ = SCOPED[name]
    engine = Engine(analyzed, registry())
    pages = {}
    for bound in (0, 10**9):
        monkeypatch.setattr(sql_readers, "FEW", bound)
        monkeypatch.setattr(sql_readers, "FEW_FILTERED", bound)
        got, after = [], None
        for _ in range(COUNT // 97 + 2):  # a page that does not move on fails, not hangs
            page = engine.query(replace(query, limit=97, after=after), actor=actor)
            got.append((page.items, page.next_cursor))
            if (after := page.next_cursor) is None:
                break
        assert after is None
        pages[bound] = got
    assert pages[0] == pages[10**9]
    assert sum(len(items) for items, _ in pages[0]) > 97
    assert actor is not None
    asked = replace(query, limit=97, org=actor.org, readers=principals(actor))
    _assert_along_reader_rows(analyzed, asked)


def _assert_along_reader_rows(store: SQLStore, asked: Query) -> None:
    """Every principal of ``asked`` is one select along its reader rows in page order, each
    instance read by its key: no index of the other criteria walked, nothing else sorted than
    the few pages the selects give; the level of each row read by the same statement."""
    assert store.narrow(asked) == (True,) * len(asked.readers or ())
    sql, params = store._sql.query(asked, levels=True, narrow=store.narrow(asked))
    with sqlite3.connect(str(store.url.database)) as conn:
        plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    along = [line for line in plan if line.startswith("SEARCH walk")]
    assert len(along) == len(asked.readers or ()), plan
    assert all(" COVERING INDEX ix_readers_principal_created (principal=?" in x for x in along)
    probed = [line for line in plan if line.startswith(("SEARCH instances", "SCAN instances"))]
    assert probed and all(line.endswith("(id=?)") for line in probed), plan
    assert "max(readers.level)" in sql


@pytest.mark.parametrize("unit", ["u3", "u9"])
def test_a_unit_that_reads_few_instances_pages_along_its_reader_rows(
    analyzed: SQLStore, unit: str
) -> None:
    """An officer of a unit (u9 has no cases at all), no filter: each of its principals reads
    few instances, so its page is one select per principal along its reader rows in page order,
    each instance read by its key, never a walk along the org's instances; the level of each
    row read by the same statement."""
    actor = officer("org1", unit)
    _assert_along_reader_rows(analyzed, Query(limit=20, org="org1", readers=principals(actor)))
    page = Engine(analyzed, registry()).query(Query(limit=20), actor=actor)
    mine = [f"c{k:05d}" for k in range(COUNT) if k % 2 == 1 and UNITS[k % 5] == unit]
    assert [i.id for i in page.items] == mine[:20]


def test_the_overdue_shapes_list_exactly_the_overdue_cases(analyzed: SQLStore) -> None:
    """The partial indexes of overdue instances hold every overdue case and nothing else."""
    engine = Engine(analyzed, registry())
    expected = [f"c{k:05d}" for k in range(COUNT) if fate(k) == 1]
    assert [i.id for i in engine.query(overdue=True, limit=COUNT).items] == expected
    in_org1 = [iid for iid in expected if int(iid[1:]) % 2 == 1]
    assert [i.id for i in engine.query(org="org1", overdue=True, limit=COUNT).items] == in_org1
    assert len(engine.query(overdue=False, limit=COUNT).items) == COUNT - len(expected)


def test_a_bulk_load_writes_what_applying_each_commit_writes(tmp_path: Path) -> None:
    """The same commits, bulk-loaded into one database and applied one by one to another,
    leave the same rows in every table; the loaded database verifies (chains, replays and the
    ledger)."""
    commits, _ = made(60)
    dumps = []
    for name, load in (("bulk", True), ("each", False)):
        url = f"sqlite:///{tmp_path / name}.db"
        with open_store(url) as store:
            engine = Engine(store, registry())
            for wf in registry().versions():
                engine._remember_definition(wf)
            if load:
                assert store.bulk_load(commits) == sum(len(c.history) for c in commits)
            else:
                for commit in commits:
                    store.apply(commit)
            assert engine.verify() == []
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            dumps.append(
                {
                    table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                    for table in sorted(SQLModel.metadata.tables)
                    if table not in ("definitions", "tokens")
                }
            )
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["instances"]) == 60 and len(dumps[0]["ledger"]) > 60


def test_a_bulk_load_of_a_step_on_an_instance_it_did_not_insert_changes_nothing(
    sql_url: str,
) -> None:
    """A bulk load takes new instances only: a commit updating another is refused with Usage
    naming it, and nothing of the load is written."""
    commits, _ = made(10)
    with open_store(sql_url) as store:
        store.bulk_load(commits[:3])
        before = len(store.query(Query(limit=100)))
        later = [c for c in commits[3:] if c.updates and c.updates[0][0].id == "c00002"]
        with pytest.raises(Usage, match="'c00002', which no earlier commit of this load"):
            store.bulk_load(later)
        assert len(store.query(Query(limit=100))) == before == 3
        assert Engine(store, registry()).verify() == []


def test_migration_0008_upgrades_a_database_made_at_0007(sql_url: str) -> None:
    """A database at 0007 with instances in it upgrades to the head: the instances are kept,
    its schema is the models' (new and widened indexes included), and queries read them. (The
    rows are written at the head, whose instance rows have columns 0007 lacks, then the schema
    is taken down to 0007 with them in it.)"""
    upgrade(sql_url)
    commits, _ = made(30)
    with SQLStore(sql_url) as store:
        Engine(store, registry())._remember_definition(registry().get("case"))
        Engine(store, registry())._remember_definition(registry().get("note"))
        store.bulk_load(commits)
    _downgrade(sql_url, "0007_org_created")
    upgrade(sql_url)
    assert _schema_diff(sql_url) == []
    with open_store(sql_url) as store:
        overdue = [i.id for i in store.query(Query(overdue=True, org="org1"))]
        assert overdue == [f"c{k:05d}" for k in range(30) if fate(k) == 1 and k % 2 == 1]
        assert Engine(store, registry()).verify() == []


def test_migration_0012_upgrades_a_database_made_at_0011(sql_url: str) -> None:
    """A database at 0011 with instances in it upgrades to the head: the inbox's indexes are
    added, the schema is the models', and an inbox of a unit lists exactly its cases that wait
    for it."""
    ends = _loaded_at(sql_url, 40, "0011_duties")
    added = [d[1].name for d in _schema_diff(sql_url) if d[0] == "add_index"]
    assert sorted(n for n in added if n.startswith("ix_instances")) == [
        "ix_instances_org_unit_state",
        "ix_instances_org_workflow_state",
    ]
    upgrade(sql_url)
    assert _schema_diff(sql_url) == []
    with open_store(sql_url) as store:
        page = Engine(store, registry()).query(actionable_by=officer("org1", "u3"), limit=40)
        waiting = [
            i.id for i in ends if i.org == "org1" and i.unit == "u3" and fate(int(i.id[1:])) == 1
        ]
        assert [i.id for i in page.items] == waiting == ["c00023"]


def test_migration_0015_gives_each_reader_row_its_instance_creation(sql_url: str) -> None:
    """A database at 0014 with instances in it upgrades to the head: every reader row gets its
    instance's creation time, the index along principals in page order replaces the old one,
    the schema is the models', and an officer's scoped pages list exactly its unit's cases in
    order, the steps after the upgrade writing theirs."""
    ends = _loaded_at(sql_url, 40, "0014_cache_epochs")
    upgrade(sql_url)
    assert _schema_diff(sql_url) == []
    with open_store(sql_url) as store:
        rows = store._read(
            "SELECT r.created_at, i.created_at FROM readers r JOIN instances i "
            "ON i.id = r.instance_id"
        )
        assert len(rows) >= 40 and all(mine == theirs for mine, theirs in rows)
        engine = Engine(store, registry())
        actor = officer("org1", "u3")
        started = engine.start("case", {"title": "新"}, clerk("org1"), unit="u3")
        page = engine.query(Query(limit=40), actor=actor)
        mine = [i.id for i in ends if i.org == "org1" and i.unit == "u3"] + [started.id]
        assert [i.id for i in page.items] == mine


def test_migration_0013_gives_each_delivery_its_event_position(sql_url: str) -> None:
    """A database at 0012 whose relay registered deliveries upgrades to the head: each delivery
    gets its event's outbox position, the schema is the models', and a relay goes on delivering
    the pending ones in commit order."""
    from xieshang.adapters.events import Relay, SubscriberSink

    _loaded_at(sql_url, 12, "0012_inbox_indexes")
    engine = sa_engine(sql_url)
    try:
        with engine.begin() as conn:  # registered at 0012: the first half delivered
            conn.exec_driver_sql(
                "INSERT INTO deliveries (event_id, sink, status, attempts, next_attempt_at) "
                "SELECT event_id, 'sub:s', CASE WHEN MOD(position, 2) = 0 THEN 'delivered' "
                "ELSE 'pending' END, 0, '2026-01-01T00:00:00.000000+00:00' FROM outbox"
            )
            positions = dict(conn.exec_driver_sql("SELECT event_id, position FROM outbox").all())
    finally:
        engine.dispose()
    upgrade(sql_url)
    assert _schema_diff(sql_url) == []
    with SQLStore(sql_url) as store:
        kept = dict(store._read("SELECT event_id, position FROM deliveries"))
    assert kept == positions and len(kept) >= 12
    got: list[dict[str, Any]] = []
    with SQLStore(sql_url) as store:
        relay = Relay(store, [SubscriberSink("s", got.append)])
        relay.run_once()
        relay.close()
    pending = sorted((p, e) for e, p in positions.items() if p % 2 == 1)
    assert [e["id"] for e in got] == [e for _, e in pending]


def _schema_diff(url: str) -> list[Any]:
    """What alembic finds between the database at ``url`` and the models ([] when they match)."""
    engine = sa_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))
    finally:
        engine.dispose()


def _loaded_at(url: str, count: int, revision: str) -> list[Any]:
    """A database at ``revision`` holding ``count`` bench cases (written at the head, every
    definition remembered, then the schema taken down with them in it); the cases as made."""
    upgrade(url)
    commits, ends = made(count)
    with SQLStore(url) as store:
        for wf in registry().versions():
            Engine(store, registry())._remember_definition(wf)
        store.bulk_load(commits)
    _downgrade(url, revision)
    return ends


def _downgrade(url: str, revision: str) -> None:
    """``alembic downgrade`` of the database at ``url`` to ``revision``."""
    engine = sa_engine(url)
    try:
        with engine.begin() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def test_list_overdue_of_a_unit_lists_exactly_those(tmp_path: Path) -> None:
    """``xieshang list --overdue --unit u3`` lists the overdue cases of u3, oldest first;
    ``--not-overdue`` the others of u3; read as a clerk, only its org's."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for w in WORKFLOWS:
        (flows / f"{w}.yaml").write_text(CASE.format(id=w), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'xs.db'}"
    commits, ends = made(70)
    with open_store(db) as store:
        engine = Engine(store, registry())
        for wf in registry().versions():
            engine._remember_definition(wf)
        store.bulk_load(commits)

    def listed(*options: str) -> list[str]:
        result = runner.invoke(
            app, ["--db", db, "--workflows", str(flows), "list", *options, "--json"]
        )
        assert result.exit_code == 0, result.output
        return [i["id"] for i in json.loads(result.stdout)["items"]]

    overdue_u3 = [i.id for i in ends if i.overdue and i.unit == "u3"]
    assert overdue_u3 == ["c00023", "c00058"]
    assert listed("--overdue", "--unit", "u3") == overdue_u3
    assert listed("--not-overdue", "--unit", "u3") == [
        i.id for i in ends if not i.overdue and i.unit == "u3"
    ]
    assert listed("--overdue", "--unit", "u3", "--as", "clerk-org1:clerk@org1") == ["c00023"]
    assert listed("--overdue", "--unit", "u9") == []
    shown = runner.invoke(
        app, ["--db", db, "--workflows", str(flows), "list", "--overdue", "--unit", "u9"]
    )
    assert "没有实例 no instances (unit u9, overdue)" in shown.stdout


def test_the_relay_reads_a_sinks_pending_deliveries_in_order_from_an_index(
    tmp_path: Path,
) -> None:
    """A pass reads one sink's pending deliveries along ``ix_deliveries_pending``, in position
    order, and never sorts the backlog."""
    from xieshang.adapters.events import JsonLinesSink, Relay

    with open_store(f"sqlite:///{tmp_path / 'relay.db'}") as store:
        relay = Relay(store, [JsonLinesSink(tmp_path / "e.jsonl")])
        try:
            with relay.engine.connect() as conn:
                sql = str(relay._sql_pending.compile(dialect=relay.engine.dialect))
                plan = " | ".join(
                    row[3]
                    for row in conn.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {sql}", ("jsonl", "pending", 500, 0)
                    )
                )
        finally:
            relay.close()
    assert "ix_deliveries_pending (sink=? AND status=?)" in plan
    assert "TEMP B-TREE" not in plan, plan
