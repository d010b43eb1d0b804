"""What the constructs tests share: an engine over each store, and a snapshot of a store.

Each engine runs the workflows given as YAML texts on the memory store, a SQLite file and a
PostgreSQL schema (the ``postgres`` mark), on a fixed clock and with readable ids.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from xieshang import Engine, FixedClock, Registry
from xieshang.adapters.memory import MemoryStore

CN = timezone(timedelta(hours=8))
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def make_engine(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    texts: dict[str, str],
    *,
    start: datetime = datetime(2024, 3, 4, 9, tzinfo=CN),
) -> Iterator[Engine]:
    """An engine over ``request.param``'s store running the workflows ``texts`` (id -> YAML)."""
    registry = Registry.from_texts([(f"{k}.yaml", v) for k, v in texts.items()])
    clock = FixedClock(start)
    counter = itertools.count(1)
    ids = lambda: f"i{next(counter):03d}"  # noqa: E731 (a one-line id generator)
    if request.param == "memory":
        yield Engine(MemoryStore(), registry, clock, ids=ids)
        return
    from xieshang.adapters.sql import open_store

    url = (
        f"sqlite:///{tmp_path / 'constructs.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    store = open_store(url, synchronous="NORMAL")
    yield Engine(store, registry, clock, ids=ids)
    store.close()  # type: ignore[attr-defined]


def snapshot(engine: Engine) -> tuple[Any, ...]:
    """Every instance (id, state, version, data), the length of each history and the outbox."""
    ids = sorted(engine.store.instance_ids())  # type: ignore[attr-defined]
    rows = [engine.store.load(i, fresh=True) for i in ids]
    return (
        [(r.id, r.state, r.version, r.data) for r in rows if r is not None],
        [len(engine.store.history(i)) for i in ids],
        len(engine.store.outbox()),
    )
