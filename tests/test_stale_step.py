"""A step whose instance row is no longer at the version it expected is refused whole, even
when nothing else in the database would stop it.

Usually a stale step also collides with the history row the winner wrote at the same step
number. Here the expected version is one the row never had and the step number is free, so
only the check of the update itself stands between the step and a history row, an event and a
ledger entry written without their instance row. On PostgreSQL a step of one instance is sent
in one round trip with its commit, so that check must fail on the server.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_contract import bump, propose

from xieshang import ConcurrencyConflict, ConflictCase, Engine, Registry
from xieshang.adapters.sql import open_store
from xieshang.records import Commit


def counts(url: str) -> tuple[int, ...]:
    """Rows of history, outbox and ledger, read with the bare driver."""
    tables = ("history", "outbox", "ledger")
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
    with psycopg.connect(url) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ahead=st.integers(min_value=1, max_value=50), events=st.integers(min_value=0, max_value=3))
def test_a_step_expecting_a_version_the_row_is_not_at_writes_nothing(
    sql_url: str, registry: Registry, ahead: int, events: int
) -> None:
    with open_store(sql_url) as store:
        engine = Engine(store, registry)
        current = propose(engine)
        before = counts(sql_url)
        new, entry, event = bump(current)  # step number current.version + 1: not yet used
        made = [replace(event, id=f"{event.id}-{k}") for k in range(events)]
        wrong = current.version + ahead
        with pytest.raises(ConcurrencyConflict) as caught:
            store.apply(Commit(updates=[(new, wrong)], history=[entry], events=made))
        assert caught.value.case is ConflictCase.ANOTHER_WRITER
        assert (caught.value.expected, caught.value.actual) == (wrong, current.version)
        assert counts(sql_url) == before
        stored = store.load(current.id, fresh=True)
        assert stored is not None and stored.version == current.version
        assert engine.verify(current.id) == []
        assert store.ledger_head()[0] == before[2]


def test_the_step_after_a_refused_one_is_written(sql_url: str, registry: Registry) -> None:
    """The refusal leaves the connection fit for the next step (its transaction rolled back)."""
    with open_store(sql_url) as store:
        engine = Engine(store, registry)
        current = propose(engine)
        new, entry, event = bump(current)
        stale = Commit(updates=[(new, current.version + 1)], history=[entry], events=[event])
        with pytest.raises(ConcurrencyConflict):
            store.apply(stale)
        before = counts(sql_url)
        store.apply(Commit(updates=[(new, current.version)], history=[entry], events=[event]))
        stored = store.load(current.id, fresh=True)
        assert stored is not None and stored.version == new.version
        assert counts(sql_url) == tuple(n + 1 for n in before)
        assert [e.seq for e in store.history(current.id)][-1] == new.version
