"""Driver errors become ours at the SQL boundary, most specific first (:func:`classify`).

=====================================================  =====================================
driver error                                           raised as
=====================================================  =====================================
unique ``history.command_id``                          ConcurrencyConflict (the first row)
unique ``instances.id``                                ConcurrencyConflict (the stored one)
unique ``history`` (instance, seq) / ``outbox`` id     ConcurrencyConflict
PostgreSQL serialization failure / deadlock            ConcurrencyConflict
PostgreSQL division by zero (a step's update guard)    ConcurrencyConflict
any other integrity error (foreign key, not null)      StoreError
operational error (locked, connection lost, I/O)       StoreUnavailable
any other driver error                                 StoreError
=====================================================  =====================================
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import psycopg
import sqlalchemy as sa

from xieshang import (
    Commit,
    ConcurrencyConflict,
    ConflictCase,
    StoreError,
    StoreUnavailable,
    XieshangError,
)

if TYPE_CHECKING:
    from .statements import Statements

__all__ = ["DRIVER_ERRORS", "classify", "conflict", "plain"]

DRIVER_ERRORS = (sqlite3.Error, psycopg.Error)

_CONSTRAINTS = {
    "uq_history_command_id": "command-id",
    "history.command_id": "command-id",
    "pk_instances": "instance-id",
    "instances.id": "instance-id",
    "pk_history": "history-seq",
    "history.instance_id, history.seq": "history-seq",
    "uq_outbox_event_id": "history-seq",
    "outbox.event_id": "history-seq",
}


def classify(error: BaseException) -> str:
    """Which row of the error mapping a driver error falls in (see the module docstring).

    Returns one of ``command-id``, ``instance-id``, ``history-seq``, ``retry``, ``stale``,
    ``integrity``, ``unavailable``, ``other``.
    """
    if isinstance(error, sa.exc.DBAPIError) and isinstance(error.orig, BaseException):
        error = error.orig
    if isinstance(error, psycopg.IntegrityError):
        return _CONSTRAINTS.get(error.diag.constraint_name or "", "integrity")
    if isinstance(error, sqlite3.IntegrityError):
        text = str(error)
        name = text.partition("constraint failed: ")[2] if "UNIQUE" in text else ""
        return _CONSTRAINTS.get(name, "integrity")
    if isinstance(error, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected):
        return "retry"
    if isinstance(error, psycopg.errors.DivisionByZero):  # see Statements.step
        return "stale"
    if isinstance(error, sqlite3.OperationalError | psycopg.OperationalError):
        return "unavailable"
    return "other"


def plain(error: BaseException) -> StoreError:
    """The error for a driver error that names no instance (integrity, unavailable, other)."""
    kind = classify(error)
    inner = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    detail = str(inner).strip().splitlines()[0] if str(inner).strip() else type(inner).__name__
    if kind == "unavailable":
        return StoreUnavailable(f"the database is unavailable: {detail}", driver_error=detail)
    return StoreError(f"the database refused the operation: {detail}", driver_error=detail)


def conflict(error: BaseException, commit: Commit, conn: Any, sql: Statements) -> XieshangError:
    """The error for a driver error in ``commit``: the conflict it names, read on ``conn``."""
    kind = classify(error)
    p = sql.p
    if kind == "command-id":
        for e in commit.history:
            if e.command_id is None:
                continue
            found = conn.execute(
                f"SELECT instance_id, seq FROM history WHERE command_id = {p}", (e.command_id,)
            ).fetchone()
            if found is not None:
                return ConcurrencyConflict(found[0], None, found[1], case=ConflictCase.COMMAND_USED)
        return ConcurrencyConflict(commit.history[0].instance_id, case=ConflictCase.COMMAND_USED)
    if kind == "instance-id":
        for new in commit.inserts:
            found = conn.execute(sql.version, (new.id,)).fetchone()
            if found is not None:
                return ConcurrencyConflict(
                    new.id, None, found[0], case=ConflictCase.INSTANCE_EXISTS
                )
    if kind in ("instance-id", "history-seq", "retry", "stale"):
        expected = {new.id: v for new, v in commit.updates}
        iid = (
            commit.updates[0][0].id
            if commit.updates
            else commit.inserts[0].id
            if commit.inserts
            else commit.history[0].instance_id
        )
        found = conn.execute(sql.version, (iid,)).fetchone()
        return ConcurrencyConflict(
            iid, expected.get(iid), found[0] if found else None,
            case=ConflictCase.ANOTHER_WRITER,
        )  # fmt: skip
    return plain(error)
