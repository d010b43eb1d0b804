"""The store contract on SQLite, and what is particular to SQLite: settings, URLs, locking."""

from __future__ import annotations

import sqlite3
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel
from store_contract import MEMBER, SqlStoreContract, propose, sql_connection, table_counts

from xieshang import Engine, FixedClock, HistoryEntry, Instance, Registry
from xieshang.adapters.sql import StoreError, StoreUnavailable, database_url, open_store
from xieshang.adapters.sql.store import DEFAULT_URL, ENV_URL, _plain, classify


class TestSqliteStore(SqlStoreContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/xieshang.db"


def test_open_store_reads_the_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a URL, open_store uses $XIESHANG_DATABASE_URL and creates the schema there."""
    monkeypatch.setenv(ENV_URL, f"sqlite:///{tmp_path}/from-env.db")
    with open_store() as store:
        assert store.url.database == f"{tmp_path}/from-env.db"
        assert store.load_definition("none") is None
    assert (tmp_path / "from-env.db").exists()


def test_open_store_defaults_to_a_file_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no URL anywhere, the store is ./xieshang.db."""
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.chdir(tmp_path)
    with open_store() as store:
        assert database_url() == DEFAULT_URL
        store.save_definition("h", "w", 1, "{}")
    assert (tmp_path / "xieshang.db").exists()


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:pw@db:5432/x", "postgresql+psycopg://u:pw@db:5432/x"),
        ("postgres://u@db/x", "postgresql+psycopg://u@db/x"),
        (
            "postgresql+psycopg://u@db/x?sslmode=require",
            "postgresql+psycopg://u@db/x?sslmode=require",
        ),
        ("sqlite:///rel/x.db", "sqlite:///rel/x.db"),
        ("sqlite+pysqlite:////abs/x.db", "sqlite:////abs/x.db"),
    ],
)
def test_database_url_names_the_driver_the_store_uses(given: str, used: str) -> None:
    """PostgreSQL URLs are rewritten to psycopg; SQLite file URLs are kept."""
    assert database_url(given) == used


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("mysql://u@db/x", "unsupported database URL"),
        ("postgresql+psycopg2://u@db/x", "unsupported database URL"),
        ("sqlite://", "needs a SQLite file"),
        ("sqlite:///:memory:", "needs a SQLite file"),
        ("not a url", "cannot read the database URL"),
    ],
)
def test_database_url_refuses_what_the_store_cannot_open(given: str, named: str) -> None:
    """Other databases, in-memory SQLite and malformed URLs are refused by name."""
    with pytest.raises(StoreError, match=named) as caught:
        database_url(given)
    assert given.split(":")[0] in caught.value.message or "url" in caught.value.details


@pytest.mark.parametrize(("synchronous", "level"), [("FULL", 2), ("normal", 1)])
def test_sqlite_connections_use_wal_foreign_keys_and_the_chosen_synchronous(
    tmp_path: Path, synchronous: str, level: int
) -> None:
    """Each connection is in WAL mode, enforces foreign keys, waits when busy, syncs as asked."""
    with open_store(
        f"sqlite:///{tmp_path}/s.db", synchronous=synchronous, busy_timeout_ms=1234
    ) as store:
        conn = store._connect()  # the settings live on the driver connection
        try:
            pragmas = [
                conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            ]
            assert pragmas == ["wal", level, 1, 1234]
        finally:
            conn.close()


def test_an_unknown_synchronous_setting_is_refused(tmp_path: Path) -> None:
    """synchronous accepts FULL or NORMAL only, and says so."""
    with pytest.raises(StoreError, match="FULL, NORMAL") as caught:
        open_store(f"sqlite:///{tmp_path}/s.db", synchronous="OFF")
    assert caught.value.details["allowed"] == ["FULL", "NORMAL"]


def test_a_write_lock_held_past_the_busy_timeout_is_store_unavailable(
    tmp_path: Path, registry: Registry, clock: FixedClock
) -> None:
    """A writer that cannot get the lock in time gets StoreUnavailable and writes nothing."""
    url = f"sqlite:///{tmp_path}/locked.db"
    with open_store(url, busy_timeout_ms=50) as store:
        engine = Engine(store, registry, clock)
        started = propose(engine)
        before = table_counts(url)
        with sql_connection(url) as (other, _):
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailable, match="locked"):
                engine.fire(started.id, "submit", MEMBER, {"category": "economy"})
            other.execute("ROLLBACK")
        assert table_counts(url) == before
        assert engine.fire(started.id, "submit", MEMBER, {"category": "economy"}).version == 2


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    """Opening a file that is not SQLite fails with StoreError, naming the driver's reason."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a database") as caught:
        open_store(f"sqlite:///{path}")
    assert not isinstance(caught.value, StoreUnavailable)


def _unique(constraint: str) -> psycopg.Error:
    class Unique(psycopg.errors.UniqueViolation):
        diag = SimpleNamespace(constraint_name=constraint)  # what the server would report

    return Unique(f"duplicate key value violates unique constraint {constraint!r}")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (sqlite3.IntegrityError("UNIQUE constraint failed: history.command_id"), "command-id"),
        (_unique("uq_history_command_id"), "command-id"),
        (sqlite3.IntegrityError("UNIQUE constraint failed: instances.id"), "instance-id"),
        (_unique("pk_instances"), "instance-id"),
        (
            sqlite3.IntegrityError("UNIQUE constraint failed: history.instance_id, history.seq"),
            "history-seq",
        ),
        (_unique("pk_history"), "history-seq"),
        (sqlite3.IntegrityError("UNIQUE constraint failed: outbox.event_id"), "history-seq"),
        (_unique("uq_outbox_event_id"), "history-seq"),
        (psycopg.errors.SerializationFailure("could not serialize access"), "retry"),
        (psycopg.errors.DeadlockDetected("deadlock detected"), "retry"),
        (sqlite3.IntegrityError("FOREIGN KEY constraint failed"), "integrity"),
        (sqlite3.IntegrityError("NOT NULL constraint failed: instances.org"), "integrity"),
        (psycopg.errors.ForeignKeyViolation("violates foreign key constraint"), "integrity"),
        (_unique("uq_tokens_something_else"), "integrity"),
        (sqlite3.OperationalError("database is locked"), "unavailable"),
        (sqlite3.OperationalError("disk I/O error"), "unavailable"),
        (psycopg.OperationalError("connection refused"), "unavailable"),
        (
            psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
            "unavailable",
        ),
        (
            sa.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("locked")),
            "unavailable",
        ),
        (sqlite3.DatabaseError("file is not a database"), "other"),
        (psycopg.errors.UndefinedTable('relation "instances" does not exist'), "other"),
    ],
)
def test_each_driver_error_maps_to_its_row(error: BaseException, kind: str) -> None:
    """Driver errors are classified most specific first, as the store module's table says."""
    assert classify(error) == kind


@pytest.mark.parametrize(
    ("kind_error", "raised"),
    [
        (sqlite3.OperationalError("database is locked"), StoreUnavailable),
        (psycopg.OperationalError("connection refused"), StoreUnavailable),
        (sqlite3.IntegrityError("FOREIGN KEY constraint failed"), StoreError),
        (sqlite3.DatabaseError("file is not a database"), StoreError),
    ],
)
def test_errors_that_name_no_instance_become_store_errors(
    kind_error: BaseException, raised: type[StoreError]
) -> None:
    """Unavailable becomes StoreUnavailable; integrity and other errors become StoreError."""
    error = _plain(kind_error)
    assert type(error) is raised
    assert str(kind_error) in error.message and error.details["driver_error"] == str(kind_error)


@pytest.mark.parametrize(("table", "record"), [("instances", Instance), ("history", HistoryEntry)])
def test_tables_list_their_columns_in_the_order_of_the_record_fields(
    table: str, record: type
) -> None:
    """Rows are read into records by position, so columns follow the record's fields."""
    columns = [c.name for c in SQLModel.metadata.tables[table].columns]
    assert columns == [f.name for f in fields(record)]
