"""The SQLAlchemy engine the adapters use on SQLite: a transaction SQLAlchemy begins is one
SQLite transaction (the driver itself is left in autocommit mode for the store's own BEGIN)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from xieshang.adapters.sql import open_store
from xieshang.adapters.sql.connect import BEGIN_MODE, sa_engine


@pytest.fixture
def url(tmp_path: Path) -> str:
    found = f"sqlite:///{tmp_path}/engine.db"
    open_store(found).close()
    return found


def deliveries(url: str) -> list[str]:
    engine = sa_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT event_id FROM deliveries"))]
    finally:
        engine.dispose()


INSERT = sa.text(
    "INSERT INTO deliveries (event_id, sink, status, attempts) VALUES (:e, 's', 'pending', 0)"
)


def test_a_failed_begin_block_leaves_none_of_its_writes(url: str) -> None:
    engine = sa_engine(url)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(INSERT, {"e": "a"})
        conn.execute(INSERT, {"e": "b"})
        raise RuntimeError("fails after two writes")
    engine.dispose()
    assert deliveries(url) == []


def test_a_begin_block_is_seen_by_others_only_when_it_commits(url: str) -> None:
    engine = sa_engine(url)
    with engine.begin() as conn:
        conn.execute(INSERT, {"e": "a"})
        assert deliveries(url) == []  # not yet committed
    engine.dispose()
    assert deliveries(url) == ["a"]


def test_an_immediate_transaction_holds_the_write_lock_from_its_start(url: str) -> None:
    engine = sa_engine(url)
    other = sa_engine(url, busy_timeout_ms=50)
    with engine.connect() as conn:
        conn = conn.execution_options(**{BEGIN_MODE: "IMMEDIATE"})
        with (
            conn.begin(),
            pytest.raises(sa.exc.OperationalError, match="locked"),
            other.begin() as c2,
        ):
            c2.execute(INSERT, {"e": "blocked"})
    engine.dispose()
    other.dispose()
    assert deliveries(url) == []


def test_the_known_schema_head_is_the_migrations_head() -> None:
    """A database at ``SCHEMA_HEAD`` is opened without loading the migrations: the constant must
    name the newest migration, or a database one migration behind would be taken as current."""
    from alembic.script import ScriptDirectory

    from xieshang.adapters.sql.connect import SCHEMA_HEAD, _alembic_config

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == SCHEMA_HEAD


def test_a_database_behind_the_head_is_upgraded_and_one_at_it_is_left_alone(
    tmp_path: Path,
) -> None:
    """``upgrade`` of a database one migration behind brings it to the head; of one at the head,
    it changes nothing (the version row is the same row, untouched)."""
    from alembic import command

    from xieshang.adapters.sql.connect import SCHEMA_HEAD, _alembic_config, upgrade

    url = f"sqlite:///{tmp_path}/behind.db"
    engine = sa_engine(url)
    try:
        with engine.begin() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0010_versions")

        def version() -> list[str]:
            with engine.connect() as conn:
                return [
                    r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                ]

        def tables() -> set[str]:
            return set(sa.inspect(engine).get_table_names())

        assert version() == ["0010_versions"] and "duty_records" not in tables()
        upgrade(engine)
        assert version() == [SCHEMA_HEAD] and "duty_records" in tables()
        before = Path(f"{tmp_path}/behind.db").read_bytes()
        upgrade(engine)
        assert Path(f"{tmp_path}/behind.db").read_bytes() == before
    finally:
        engine.dispose()
