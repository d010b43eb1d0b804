"""One way in: database URLs, the engines that open them, and the migrations that shape them.

The store, the relay, the reports, the token store and the commands that drive them all open
the database here, so a URL is read (:func:`database_url`) and connected (:func:`sa_engine`,
:func:`engine_for`) the same way everywhere; :func:`upgrade` runs the alembic migrations.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from xieshang import StoreError

from .errors import plain

__all__ = [
    "DEFAULT_URL",
    "ENV_URL",
    "SCHEMA_HEAD",
    "connect_sqlite",
    "database_url",
    "engine_for",
    "masked_url",
    "sa_engine",
    "upgrade",
]

DEFAULT_URL = "sqlite:///./xieshang.db"
ENV_URL = "XIESHANG_DATABASE_URL"
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_LOCK = 0x7869_6573  # PostgreSQL advisory lock key held while migrating
# The newest migration: a database already there is opened without loading the migrations
# (a test holds this to the migrations' own head)
SCHEMA_HEAD = "0016_ledger_append"


def masked_url(text: str) -> str:
    """``text`` with the password of its user part replaced by ``***``, however malformed the
    rest is: what a message may show of a database URL."""
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    user_part, _, host_part = rest.rpartition("@")
    user, colon, _ = user_part.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host_part}"


def database_url(url: str | None = None) -> str:
    """The URL to use: ``url``, else ``$XIESHANG_DATABASE_URL``, else ``sqlite:///./xieshang.db``.

    ``postgresql://`` and ``postgres://`` are rewritten to ``postgresql+psycopg://``.

    Raises:
        StoreError: a URL that is not SQLite (with a file) or PostgreSQL.
    """
    text = url or os.environ.get(ENV_URL) or DEFAULT_URL
    try:
        parsed = make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        shown = masked_url(text)  # the parser's own message repeats the URL, password and all
        raise StoreError(
            f"cannot read the database URL {shown!r}: expected sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
            url=shown,
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if parsed.database in (None, "", ":memory:"):
            raise StoreError(
                f"the SQL store needs a SQLite file (sqlite:///PATH), not {text!r}; "
                "use xieshang.adapters.memory.MemoryStore for a store in memory",
                url=text,
            )
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise StoreError(
        f"unsupported database URL {parsed.render_as_string()!r}; allowed: sqlite:///PATH, "
        "postgresql://..., postgresql+psycopg://...",
        url=parsed.render_as_string(),
        allowed=["sqlite", "postgresql", "postgresql+psycopg"],
    )


def connect_sqlite(
    path: str, synchronous: str, busy_timeout_ms: int, autocheckpoint: int | None = None
) -> sqlite3.Connection:
    """A connection with the store's settings; ``autocheckpoint`` (pages) replaces SQLite's
    default of 1,000 (see :mod:`.checkpoint`)."""
    # isolation_level=None: we issue BEGIN / COMMIT ourselves; the connection may move between
    # threads because the pool hands it to one thread at a time
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=busy_timeout_ms / 1000,
        cached_statements=256,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        if autocheckpoint is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
    except BaseException:
        conn.close()
        raise
    return conn


# the execution option that makes a SQLite transaction take the write lock when it begins
BEGIN_MODE = "xieshang_sqlite_begin"


def sa_engine(url: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 5000) -> sa.Engine:
    """A SQLAlchemy engine (no pool) whose connections have the store's settings.

    On SQLite, the driver is left in autocommit mode (the store issues BEGIN itself), so the
    engine says BEGIN when SQLAlchemy begins a transaction: ``engine.begin()`` and
    ``conn.begin()`` blocks are then one transaction each, committed once. A connection with
    the execution option ``xieshang_sqlite_begin="IMMEDIATE"`` takes the write lock at once.
    """
    parsed = make_url(database_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = str(parsed.database)
        engine = sa.create_engine(
            "sqlite://",
            poolclass=NullPool,
            creator=lambda: connect_sqlite(path, synchronous, busy_timeout_ms),
        )
        sa.event.listen(engine, "begin", _begin_sqlite)
        return engine
    return sa.create_engine(parsed, poolclass=NullPool)


def _begin_sqlite(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get(BEGIN_MODE, "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _begins_itself(engine: sa.Engine) -> bool:
    return sa.event.contains(engine, "begin", _begin_sqlite)


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    return cfg


def upgrade(target: str | sa.Engine | None = None, *, revision: str = "head") -> None:
    """Create or upgrade the schema (``alembic upgrade``) in one transaction.

    Safe to run from many processes at once: SQLite takes the write lock first, PostgreSQL an
    advisory lock, so the second waits and then finds nothing to do.

    Args:
        target: a URL (see :func:`database_url`) or a SQLAlchemy engine.
        revision: the revision to reach; ``head`` by default.

    Raises:
        StoreError, StoreUnavailable: the database refused or could not be reached.
    """
    engine = target if isinstance(target, sa.Engine) else sa_engine(database_url(target))
    try:
        if revision == "head" and _at_head(engine):
            return
        from alembic import command

        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn = conn.execution_options(**{BEGIN_MODE: "IMMEDIATE"})
                if _begins_itself(engine):
                    conn.begin()
                else:  # an engine made elsewhere: the driver does not begin by itself
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
    except (sa.exc.DBAPIError, sqlite3.Error, psycopg.Error) as e:
        raise plain(e) from e
    finally:
        if engine is not target:
            engine.dispose()


def _at_head(engine: sa.Engine) -> bool:
    """Whether the schema is at :data:`SCHEMA_HEAD` (read without a transaction's lock)."""
    with engine.connect() as conn:
        try:
            found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except sa.exc.DBAPIError:  # no schema yet
            return False
        finally:
            conn.rollback()
    return [row[0] for row in found] == [SCHEMA_HEAD]


def engine_for(source: Any, *, pooled: bool = False) -> tuple[sa.Engine, bool]:
    """A SQLAlchemy engine for ``source``, and whether the caller owns (and must dispose) it.

    Args:
        source: a SQLAlchemy engine (used as is), a store or an :class:`xieshang.Engine` over
            one (its ``sa_engine`` if it has one, else its ``url``), or a database URL.
        pooled: keep connections open between uses (a long-running server); otherwise each
            use connects anew with the store's connection settings (workers, commands).

    Raises:
        StoreError: a URL that names no supported database.
    """
    if isinstance(source, sa.Engine):
        return source, False
    store = getattr(source, "store", source)
    existing = getattr(store, "sa_engine", None)
    if isinstance(existing, sa.Engine):
        return existing, False
    url = getattr(store, "url", source)
    if isinstance(url, sa.URL):
        url = url.render_as_string(hide_password=False)
    if pooled:
        return sa.create_engine(database_url(str(url))), True
    return sa_engine(str(url)), True
