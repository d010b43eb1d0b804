"""Shared fixtures: the bundled registry, a fixed clock, and the databases the SQL tests run on.

PostgreSQL tests (marked ``postgres``) use the server named by ``XIESHANG_TEST_PG_URL``; each
test gets a schema of its own. Without that variable they skip, except in CI (``CI=true``),
where a missing or unreachable server fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from xieshang import Engine, FixedClock, Registry, Store
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

PG_ENV = "XIESHANG_TEST_PG_URL"


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The bundled workflows, compiled once per test session."""
    return bundled()


@pytest.fixture
def clock() -> FixedClock:
    """A clock that stands still at 2024-03-01 09:00 UTC until a test moves it."""
    return FixedClock(datetime(2024, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL server of ``$XIESHANG_TEST_PG_URL``, checked to answer, as a plain URL."""
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {PG_ENV} is not set: the PostgreSQL tests must run in CI")
        pytest.skip(f"{PG_ENV} is not set")
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as e:
        pytest.fail(f"{PG_ENV}={url!r} does not answer: {e}")
    return url


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[str]:
    """The URL of an empty PostgreSQL namespace: a new schema first on its search_path.

    A schema, not a database: creating a database costs about a second, a schema milliseconds.
    """
    name = f"xs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each SQL backend: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/xieshang.db"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path, registry: Registry) -> Iterator[Engine]:
    """An engine of the bundled workflows over each store (memory, a SQLite file, a PostgreSQL
    schema), on a clock standing at 2024-03-01 01:00 UTC; a module with workflows of its own
    defines its own ``engine``."""
    store: Store = (
        MemoryStore()
        if request.param == "memory"
        else open_store(
            f"sqlite:///{tmp_path / 'x.db'}"
            if request.param == "sqlite"
            else request.getfixturevalue("pg_database")
        )
    )
    yield Engine(store, registry, FixedClock(datetime(2024, 3, 1, 1, tzinfo=UTC)))
    close = getattr(store, "close", None)
    if callable(close):
        close()
