"""Driver errors become ours at the SQL boundary, most specific first (:func:`classify`).

=====================================================  =====================================
driver error                                           raised as
=====================================================  =====================================
unique ``history.command_id``                          ConcurrencyConflict (the first row)
unique ``instances.id``                                ConcurrencyConflict (the stored one)
unique ``history`` (instance, seq) / ``outbox`` id     ConcurrencyConflict
PostgreSQL serialization failure / deadlock            ConcurrencyConflict
any other integrity error (foreign key, not null)      StoreError
operational error (locked, connection lost, I/O)       StoreUnavailable
any other driver error                                 StoreError
=====================================================  =====================================
"""

from __future__ import annotations

import sqlite3

import psycopg
import sqlalchemy as sa

from xieshang import StoreError, StoreUnavailable

__all__ = ["DRIVER_ERRORS", "classify", "plain"]

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

    Returns one of ``command-id``, ``instance-id``, ``history-seq``, ``retry``, ``integrity``,
    ``unavailable``, ``other``.
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
