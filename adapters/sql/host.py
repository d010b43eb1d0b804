"""The SQL store inside a transaction its host owns: :meth:`SQLStore.bind`.

A host that keeps its own rows in the same database (an attachment, a task of its OA) commits
them and the engine's steps together, or neither: it hands its connection, inside its
transaction, to :meth:`xieshang.Engine.unit_of_work`. Each command then runs its statements on
that connection under a savepoint and never commits; a refused or conflicting command rolls
back to its savepoint and leaves the host's transaction as it was. Whether anything lasts is
the host's ``COMMIT`` or ``ROLLBACK``.

Accepted connections: a SQLAlchemy ``Connection`` or ``Session`` (its connection), a
``psycopg`` connection, a ``sqlite3`` connection, each on the store's own database.
"""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.pq import TransactionStatus

from xieshang import Usage

from .cache import RowCache

if TYPE_CHECKING:
    from .store import SQLStore

__all__ = ["bound_store", "driver_connection"]

SAVEPOINT = "xieshang_step"


def driver_connection(conn: Any) -> Any:
    """The driver's connection behind what a host passes: SQLAlchemy ``Session`` or
    ``Connection``, or a ``psycopg`` / ``sqlite3`` connection as is.

    Raises:
        Usage: anything else.
    """
    if isinstance(conn, sqlite3.Connection | psycopg.Connection):
        return conn
    get = getattr(conn, "connection", None)
    if callable(get):  # a SQLAlchemy Session: the Connection of its transaction
        conn = get()
    fairy = getattr(conn, "connection", None)  # a SQLAlchemy Connection: its pooled connection
    raw = getattr(fairy, "dbapi_connection", None)
    if isinstance(raw, sqlite3.Connection | psycopg.Connection):
        return raw
    raise Usage(
        f"a unit of work needs the host's connection inside its transaction: a SQLAlchemy "
        f"Connection or Session, a psycopg connection or a sqlite3 connection, not "
        f"{type(conn).__name__}",
        option="connection",
    )


def _check_sqlite(store: SQLStore, raw: sqlite3.Connection) -> None:
    row = raw.execute("PRAGMA database_list").fetchone()
    here = os.path.realpath(str(row[2])) if row and row[2] else ""
    want = os.path.realpath(str(store.url.database))
    if here != want:
        raise Usage(
            f"the host's connection is on {here or 'an in-memory database'!r}, the store on "
            f"{want!r}: one transaction needs one database",
            option="connection",
        )
    if raw.in_transaction:
        return
    if raw.isolation_level is None or getattr(raw, "autocommit", None) is True:
        raise Usage(
            "the host's sqlite3 connection is in autocommit mode and no transaction is open: "
            "execute BEGIN IMMEDIATE first (or pass a SQLAlchemy Connection in its transaction)",
            option="connection",
        )
    # the sqlite3 module opens its implicit transaction only before a change: open it now, for
    # the host to commit or roll back, and take the write lock first (no upgrade deadlock)
    raw.execute("BEGIN IMMEDIATE")


def _check_postgres(store: SQLStore, raw: psycopg.Connection[Any]) -> None:
    if raw.info.dbname != store.url.database:
        raise Usage(
            f"the host's connection is on database {raw.info.dbname!r}, the store on "
            f"{store.url.database!r}: one transaction needs one database",
            option="connection",
        )
    if raw.autocommit and raw.info.transaction_status == TransactionStatus.IDLE:
        raise Usage(
            "the host's psycopg connection is in autocommit mode and no transaction is open: "
            "use it inside `with conn.transaction():` (or pass a connection with autocommit off)",
            option="connection",
        )


def bound_store(store: SQLStore, conn: Any) -> SQLStore:
    """A view of ``store`` whose every statement runs on the host's connection ``conn``, inside
    the host's transaction: savepoints instead of BEGIN and COMMIT, no cache of its own.

    Raises:
        Usage: ``conn`` is not a connection, is on another database or another kind of database,
            or is in autocommit mode outside a transaction.
    """
    raw = driver_connection(conn)
    if isinstance(raw, psycopg.Connection) != store.postgres:
        kind = "PostgreSQL" if store.postgres else "SQLite"
        raise Usage(
            f"the store is on {kind}; the host's connection is a {type(raw).__module__} "
            "connection to another kind of database",
            option="connection",
        )
    if store.postgres:
        _check_postgres(store, raw)
    else:
        _check_sqlite(store, raw)
    view = object.__new__(type(store))
    view.__dict__.update(store.__dict__)
    view._cache = RowCache(0)
    view._group = None  # its commits are the host's to make
    view._idle = []
    view._closed = False
    view._begin = f"SAVEPOINT {SAVEPOINT}"
    view._end = f"RELEASE SAVEPOINT {SAVEPOINT}"
    view._undo = (f"ROLLBACK TO SAVEPOINT {SAVEPOINT}", f"RELEASE SAVEPOINT {SAVEPOINT}")
    view._host = raw
    view._parent = store
    return view
