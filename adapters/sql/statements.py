"""The statements of the SQL store, written once per store for its driver's placeholder.

The instance and history columns come from :mod:`.rows`, so a statement and the row it reads
name the same columns in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import SQLModel

from xieshang import ActClause, Query

from . import tables  # noqa: F401 - registers the tables on SQLModel.metadata
from .rows import HISTORY_COLUMNS, INSTANCE_COLUMNS, dump

__all__ = ["Statements"]

INSTANCES = SQLModel.metadata.tables["instances"]
READERS = SQLModel.metadata.tables["readers"]
_ICOLS = ", ".join(INSTANCE_COLUMNS)
_HCOLS = ", ".join(f'"{c}"' if c == "trigger" else c for c in HISTORY_COLUMNS)
# What a step may change. The identity columns (workflow, org, parent, unit) never change, and
# leaving them out of the SET spares SQLite the upkeep of their indexes.
_UPDATED = ["workflow_version", "definition_hash", "state", "data", "version", "updated_at",
            "entered_at", "final", "due_at", "overdue", "head_hash", "due_basis",
            "suspended_at"]  # fmt: skip


_SHAPES = 512  # compiled query shapes kept; past that the cache starts again
_ARMS = 64  # an inbox's arms merged at most (SQLite merges up to 500 selects)


def _in(column: sa.ColumnElement[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """``column IN (...)`` with one parameter per value, so that its text depends on the
    number of values only (none: false)."""
    each = [sa.literal(v) for v in values]
    return column.in_(each) if each else sa.false()


class Statements:
    """The SQL text of every statement the store runs on PostgreSQL (``%s``) or SQLite (``?``)."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.dialect: Dialect = (
            postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
            if postgres
            else sqlite_dialect.dialect()
        )
        p = "%s" if postgres else "?"

        def marks(n: int) -> str:
            return ", ".join([p] * n)

        self.load = f"SELECT {_ICOLS} FROM instances WHERE id = {p}"
        self.insert = f"INSERT INTO instances ({_ICOLS}) VALUES ({marks(len(INSTANCE_COLUMNS))})"
        # keyed by (state unchanged, due_at unchanged): columns left out keep their index as is
        self.updates = {
            (same_state, same_due): "UPDATE instances SET " + ", ".join(
                f"{c} = {p}" for c in _UPDATED
                if not (same_state and c == "state") and not (same_due and c == "due_at")
            ) + f" WHERE id = {p} AND version = {p}"
            for same_state in (False, True)
            for same_due in (False, True)
        }  # fmt: skip
        self.version = f"SELECT version FROM instances WHERE id = {p}"
        self.history_insert = (
            f"INSERT INTO history ({_HCOLS}) VALUES ({marks(len(HISTORY_COLUMNS))})"
        )
        self.history = f"SELECT {_HCOLS} FROM history WHERE instance_id = {p} ORDER BY seq"
        self.command = f"SELECT {_HCOLS} FROM history WHERE command_id = {p}"
        self.reseal = (
            f"UPDATE history SET payload = {p}, seal = {p} "
            f"WHERE instance_id = {p} AND seq = {p} AND hash = {p}"
        )
        self.outbox_insert = (
            "INSERT INTO outbox (event_id, instance_id, seq, type, org, body, created_at) "
            f"VALUES ({marks(7)})"
        )
        self.clear = f"DELETE FROM timers WHERE instance_id = {p}"
        self.timer_insert = (
            f'INSERT INTO timers (instance_id, kind, "trigger", due_at, version, org, basis) '
            f"VALUES ({marks(7)})"
        )
        self.consume = (
            f"DELETE FROM timers WHERE id = (SELECT id FROM timers WHERE instance_id = {p} "
            f'AND kind = {p} AND "trigger" = {p} AND due_at = {p} AND version = {p} '
            f"AND org = {p} ORDER BY id LIMIT 1)"
        )
        # The ledger's head is its last position. On PostgreSQL a transaction-scoped advisory
        # lock, taken last, just before COMMIT, orders the writers: they wait for each other only
        # while one of them commits. SQLite's write lock is taken at BEGIN; there the store
        # remembers the head it last wrote and appends after it only if it is still the last
        # position (``ledger_append``), reading the head again when another writer came between.
        self.ledger_lock = "SELECT pg_advisory_xact_lock(8679604582553462130)" if postgres else ""
        self.ledger_tail = "SELECT position, hash FROM ledger ORDER BY position DESC LIMIT 1"
        self.ledger_append = (
            "INSERT INTO ledger (position, instance_id, seq, org, row_hash, prev_hash, hash) "
            f"SELECT {marks(7)} WHERE (SELECT COALESCE(MAX(position), 0) FROM ledger) = {p}"
        )
        self.ledger_insert = (
            "INSERT INTO ledger (position, instance_id, seq, org, row_hash, prev_hash, hash) "
            f"VALUES ({marks(7)})"
        )
        self.touch = (
            f"UPDATE instances SET children_version = children_version + 1 "
            f"WHERE id = {p} AND children_version = {p}"
        )
        self.children = f"SELECT children_version FROM instances WHERE id = {p}"
        self.readers_clear = f"DELETE FROM readers WHERE instance_id = {p}"
        self.readers_insert = (
            f"INSERT INTO readers (instance_id, principal, level) VALUES ({marks(3)})"
        )
        self.definitions = "SELECT hash, workflow FROM definitions"
        self.p = p
        self._shapes: dict[Any, Any] = {}  # compiled queries by shape (see _compiled)
        self._acts: dict[tuple[ActClause, ...], sa.ColumnElement[bool]] = {}

    def query(
        self, query: Query, definitions: Sequence[tuple[str, str]] = ()
    ) -> tuple[str, Sequence[Any] | dict[str, Any]]:
        """The select of the instances ``query`` asks for, and its parameters.

        ``definitions`` are the (hash, workflow) of the stored definitions: an inbox's clause
        of definitions the engine has not loaded matches the instances pinned to those of them
        it does not know (see :meth:`_arms`).
        """
        c = INSTANCES.c
        where: list[sa.ColumnElement[bool]] = []
        criteria = ((c.workflow, query.workflow), (c.state, query.state), (c.org, query.org),
                    (c.unit, query.unit), (c.parent_id, query.parent_id))  # fmt: skip
        where += [column == want for column, want in criteria if want is not None]
        # Booleans are written into the text, not bound: the partial indexes of overdue
        # instances serve only a query whose text says ``overdue = 1`` (SQLite) or ``overdue =
        # true`` (PostgreSQL, also in a prepared statement's generic plan).
        for column, flag in ((c.overdue, query.overdue), (c.final, query.final)):
            if flag is not None:
                where.append(column == (sa.true() if flag else sa.false()))
        if query.states is not None:
            where.append(_in(c.state, query.states))
        if query.after is not None:
            where.append(
                sa.tuple_(c.created_at, c.id) > sa.tuple_(*map(sa.literal, query.after.key))
            )
        if query.field is not None:
            where.append(self.field_equals(query.field, query.value))
        if query.readers is not None:
            r = READERS.c
            where.append(
                sa.exists().where(r.instance_id == c.id, _in(r.principal, sorted(query.readers)))
            )
        columns = [c[name] for name in INSTANCE_COLUMNS]
        arms = self._arms(query.acts, definitions) if query.acts is not None else None
        if arms is not None and len(arms) > 1:
            # one select per arm, each read in page order from an index, merged in that order;
            # PostgreSQL's planner takes the index only when each arm is limited to a page too
            selects = [sa.select(*columns).where(*where, arm) for arm in arms]
            if self.postgres:
                selects = [s.order_by(c.created_at, c.id).limit(query.limit) for s in selects]
            union = sa.union_all(*selects)
            paged = union.selected_columns
            return self._compiled(union.order_by(paged.created_at, paged.id).limit(query.limit))
        if arms is not None:
            where.append(arms[0] if arms else sa.false())
        elif query.acts is not None:
            where.append(self._any_act(query.acts))
        stmt = sa.select(*columns).where(*where)
        return self._compiled(stmt.order_by(c.created_at, c.id).limit(query.limit))

    def _arms(
        self, acts: tuple[ActClause, ...], definitions: Sequence[tuple[str, str]]
    ) -> list[sa.ColumnElement[bool]] | None:
        """An inbox's clauses as disjoint arms, each of one definition and one state, which an
        index on (workflow, state, created_at, id) reads in page order: an OR of the clauses
        could only be read along all of the org's instances, testing each, however few match.
        A clause of definitions the engine has not loaded becomes one arm of the stored
        definitions it does not know, or none (the engine stores a definition before it pins
        an instance to it). None when the clauses overlap, or are too many to merge: then
        their OR."""
        c = INSTANCES.c
        arms: list[sa.ColumnElement[bool]] = []
        seen: set[tuple[str, str]] = set()
        unknown: set[str] = set()
        others = 0
        for clause in acts:
            if clause.definition_hash is not None:
                for state in clause.states:
                    seen.add((clause.definition_hash, state))
                    arms.append(self.acts(replace(clause, states=(state,))))
                continue
            hashes = sorted(
                h for h, w in definitions
                if h not in clause.known and clause.workflow in (None, w)
            )  # fmt: skip
            if hashes:
                others += 1
                unknown.update(hashes)
                arms.append(sa.and_(self.acts(clause), _in(c.definition_hash, hashes)))
        keys = [h for h, _ in seen]
        disjoint = len(seen) == sum(
            len(a.states) for a in acts if a.definition_hash is not None
        ) and not (others > 1 or unknown.intersection(keys))
        return arms if disjoint and len(arms) <= _ARMS else None

    def _compiled(
        self, stmt: sa.Select[Any] | sa.CompoundSelect[Any]
    ) -> tuple[str, Sequence[Any] | dict[str, Any]]:
        """The SQL text of ``stmt`` and its parameters. Compiling takes longer than the database
        needs for a first page, so the text is kept per shape of query (SQLAlchemy's cache key:
        the statement without its values; every list is one parameter per element, so its
        length is part of the shape) and only the values are taken from ``stmt``."""
        key = stmt._generate_cache_key()
        compiled = self._shapes.get(key.key) if key is not None else None
        if compiled is None:
            compiled = stmt.compile(dialect=self.dialect, cache_key=key)
            if key is not None:
                if len(self._shapes) >= _SHAPES:
                    self._shapes.clear()
                self._shapes[key.key] = compiled
        values = compiled.construct_params(
            extracted_parameters=key.bindparams if key is not None else None
        )
        if compiled.positiontup is not None:
            return compiled.string, [values[k] for k in compiled.positiontup]
        return compiled.string, dict(values)

    def _any_act(self, acts: tuple[ActClause, ...]) -> sa.ColumnElement[bool]:
        """The clauses of an inbox together, made once per actor and page size of batches: an
        inbox asks with the same clauses page after page, and making them is most of the time
        a query of a few rows takes."""
        found = self._acts.get(acts)
        if found is None:
            if len(self._acts) >= _SHAPES:
                self._acts.clear()
            found = self._acts[acts] = sa.or_(sa.false(), *map(self.acts, acts))
        return found

    def acts(self, clause: ActClause) -> sa.ColumnElement[bool]:
        """The instances an inbox clause matches (see :class:`xieshang.ActClause`)."""
        c = INSTANCES.c
        where: list[sa.ColumnElement[bool]] = []
        if clause.workflow is not None:
            where.append(c.workflow == clause.workflow)
        if clause.definition_hash is None:
            where += [c.final.is_(False), sa.not_(_in(c.definition_hash, clause.known))]
            if clause.states:
                where.append(_in(c.state, clause.states))
            return sa.and_(*where)
        where += [c.definition_hash == clause.definition_hash, _in(c.state, clause.states)]
        if clause.anywhere:
            return sa.and_(*where)
        units: list[sa.ColumnElement[bool]] = []
        if clause.own_unit:
            units.append(c.unit.is_(None))
            if clause.unit is not None:
                units.append(c.unit == clause.unit)
        if clause.unit is not None:
            units += [self.field_holds(f, clause.unit) for f in clause.fields]
        return sa.and_(*where, sa.or_(sa.false(), *units))

    def field_holds(self, field: str, unit: str) -> sa.ColumnElement[bool]:
        """``data[field]`` is the text ``unit`` or a list holding it."""
        data = INSTANCES.c.data
        if self.postgres:
            # a JSON array contains a scalar it holds, and a scalar contains itself
            found = sa.cast(data, JSONB).op("->")(field)
            return found.op("@>")(sa.cast(sa.literal(dump(unit)), JSONB))
        # json_each walks a list's elements, or gives a scalar as its one row
        each = sa.func.json_each(data, '$."' + field.replace('"', '""') + '"').table_valued("value")
        return sa.select(sa.literal(1)).select_from(each).where(each.c.value == unit).exists()

    def field_equals(self, field: str, value: Any) -> sa.ColumnElement[bool]:
        """``data[field] == value`` compared as JSON values; a missing field equals None."""
        data = INSTANCES.c.data
        if self.postgres:
            null = sa.cast(sa.literal("null"), JSONB)
            found = sa.func.coalesce(sa.cast(data, JSONB).op("->")(field), null)
            return found == sa.cast(sa.literal(dump(value)), JSONB)
        path = '$."' + field.replace('"', '""') + '"'
        # both sides go through json_extract, so strings, numbers, booleans and lists compare
        # as SQLite's JSON functions see them; IS makes a missing field equal to null
        return sa.func.json_extract(data, path).is_not_distinct_from(
            sa.func.json_extract(dump(value), "$")
        )
