"""What a fixed scenario stores is pinned byte for byte: every row of every table.

A run of proposals (creation, steps with payloads and effects, spawned children and their join,
a command id, a reason, a refusal, a redaction, timers fired by a tick), a meeting that earns
duty records, all on a fixed clock with fixed ids and fixed salts, must store exactly the rows
of ``fixtures/stored/*.json``: the same history rows and hashes, ledger entries, events,
timers, readers and duty records. Making a step cheaper may not change one byte of what it
stores. ``XIESHANG_WRITE_STORED=1`` rewrites the fixtures (only for a deliberate change of the
format, reviewed in the diff).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel
from store_contract import CHAIR, MEMBER, OFFICE, propose, to_closed, to_filed

from xieshang import Actor, Engine, FixedClock, Registry, Store, TransitionNotAllowed
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.adapters.sql.store import sa_engine
from xieshang.records import SALT_PREFIX
from xieshang.workflows import default_duties

FIXTURES = Path(__file__).parent / "fixtures" / "stored"
ADMIN = Actor.of("admin-1", "admin", org="gy")
SECRETARIAT = Actor.of("o1", "cppcc_office", org="gy")
WRITE = os.environ.get("XIESHANG_WRITE_STORED") == "1"


@pytest.fixture
def fixed_salts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Salts 0001, 0002 ... in the order fields are sealed, wherever the engine seals a row."""
    counter = itertools.count(1)

    def new_seal(payload: dict[str, Any]) -> dict[str, str]:
        return {name: f"{SALT_PREFIX}{next(counter):032x}" for name in payload}

    for name, module in list(sys.modules.items()):
        if name.startswith("xieshang") and hasattr(module, "new_seal"):
            monkeypatch.setattr(module, "new_seal", new_seal)


def scenario(store: Store, registry: Registry) -> None:
    """Every kind of step the format stores, on a fixed clock with fixed ids."""
    clock = FixedClock(datetime(2024, 3, 1, 9, 0, tzinfo=UTC))
    counter = itertools.count(1)
    engine = Engine(
        store,
        registry,
        clock,
        ids=lambda: f"id-{next(counter):04d}",
        duties=default_duties(registry),
    )
    closed = propose(engine, "关于社区养老服务的建议", body="联系电话 13812345678").id
    clock.advance(hours=1)
    to_closed(engine, closed)
    key = propose(engine, "关于老旧小区加装电梯的建议", co_proposers=["m2"]).id
    to_filed(engine, key)
    clock.advance(minutes=5)
    engine.fire(key, "flag_key", CHAIR, {"lead_leader": "副主席甲"}, command_id="cmd-1")
    engine.fire(key, "flag_key", CHAIR, {"lead_leader": "副主席甲"}, command_id="cmd-1")
    with pytest.raises(TransitionNotAllowed):
        engine.fire(key, "evaluate", MEMBER, {"satisfaction": "satisfied"})
    units = {"mode": "lead_assisting", "units": ["U1", "U2"], "lead_unit": "U2"}
    engine.fire(key, "assign", OFFICE, units, reason="会办")
    engine.redact(closed, ["body"], ADMIN, "提案人要求删除电话号码")
    clock.advance(days=120)
    engine.tick()
    meeting = {
        "title": "座谈会",
        "kind": "plenary",
        "meeting_date": "2024-07-01",
        "invited": ["m1", "m2", "m3"],
    }
    mid = engine.start("meeting_attendance", meeting, SECRETARIAT, org="gy").id
    engine.fire(mid, "sign_in", Actor.of("m1", "member", org="gy"))
    engine.fire(mid, "request_leave", Actor.of("m2", "member", org="gy"), reason="公务出差")
    engine.fire(mid, "record_present", SECRETARIAT, {"members": ["m3"]})
    assert engine.verify() == []


def plain(value: Any) -> Any:
    """A stored value as JSON can hold it: booleans as 0/1 (SQLite's spelling), moments as ISO."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = [plain(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    return value


def sql_rows(url: str) -> dict[str, list[list[Any]]]:
    """Every row of every table, ordered by all its columns; a saved definition without the
    moment it was saved (the wall clock's, not the engine's). An instance's data is compared
    as the JSON it holds: the order of keys in a dict an effect builds follows the process's
    string hashing, and no hash covers that column."""
    out: dict[str, list[list[Any]]] = {}
    with sa_engine(url).connect() as conn:
        for name, table in sorted(SQLModel.metadata.tables.items()):
            columns = [c for c in table.columns if (name, c.name) != ("definitions", "created_at")]
            rows = [[plain(v) for v in row] for row in conn.execute(select(*columns))]
            if name == "instances":
                at = [c.name for c in columns].index("data")
                for row in rows:
                    row[at] = json.loads(row[at])
            out[name] = sorted(rows, key=lambda r: json.dumps(r, ensure_ascii=False))
    return out


def memory_rows(store: MemoryStore) -> dict[str, Any]:
    """What the in-memory store holds, through its own reads."""
    ids = sorted(store.instance_ids())
    return plain(
        {
            "instances": [store.load(i).to_dict() for i in ids],  # type: ignore[union-attr]
            "history": [r.to_dict() for i in ids for r in store.history(i)],
            "outbox": [asdict(e) for e in store.outbox()],
            "ledger": [asdict(e) for e in store.ledger()],
            "timers": [asdict(t) for i in ids for t in store.timers_of(i)],
            "readers": store.readers(ids),
            "duties": [asdict(d) for d in store.duty_records()],
        }
    )


def compare(name: str, stored: Any) -> None:
    path = FIXTURES / f"{name}.json"
    text = json.dumps(stored, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    for table in sorted(set(expected) | set(stored)):
        assert stored.get(table) == expected.get(table), f"{name}: {table} differs"


@pytest.fixture
def sql_store(sql_url: str) -> Iterator[str]:
    with open_store(sql_url):
        pass
    yield sql_url


@pytest.mark.usefixtures("fixed_salts")
def test_the_sql_store_keeps_the_pinned_rows_of_the_scenario(
    sql_store: str, registry: Registry
) -> None:
    """SQLite and PostgreSQL store the same rows, equal to the pinned ones."""
    with open_store(sql_store) as store:
        scenario(store, registry)
    compare("sql", sql_rows(sql_store))


@pytest.mark.usefixtures("fixed_salts")
def test_the_memory_store_keeps_the_pinned_rows_of_the_scenario(registry: Registry) -> None:
    """The in-memory store holds the same records, equal to the pinned ones."""
    store = MemoryStore()
    scenario(store, registry)
    compare("memory", memory_rows(store))
