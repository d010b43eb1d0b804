"""The select of a :class:`xieshang.Query`: its text made once per shape, its values bound by name.

A query's shape is what its text depends on: which criteria it names, how many states and
reader principals, the booleans written into the text, the data field it compares, and an
inbox's clauses (with the stored definitions they expand to). Building and compiling the
statement takes longer than the database needs for a first page, so the text is kept per
shape and a query of a known shape only binds its values, by name, in the order the text
takes them.

Read scope is an ``EXISTS`` on ``readers`` probed by its primary key for each row the page
walks (the instance's few rows in one range, each tested against the actor's principals), and
an inbox is merged selects of one definition and state each (and, for a role bound to the
instance's own unit, one for the unit and one for instances without one), each read in page
order from an index that starts with the org the actor reads in.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlmodel import SQLModel

from xieshang import ActClause, Query

from . import tables  # noqa: F401 - registers the tables on SQLModel.metadata
from .rows import INSTANCE_COLUMNS, dump

__all__ = ["WALK_SETTINGS", "QueryText", "read_generic"]

INSTANCES = SQLModel.metadata.tables["instances"]
READERS = SQLModel.metadata.tables["readers"]

_SHAPES = 512  # texts kept; past that the cache starts again
_ARMS = 64  # an inbox's arms merged at most (SQLite merges up to 500 selects)
_CRITERIA = ("workflow", "state", "org", "unit", "parent_id")


class _Along(sa.Join):
    """A principal's reader rows joined to their instances, read in that order: the reader
    rows are the outer loop. SQLite's planner, which does not know how few rows a principal
    has, would otherwise walk an index of the other criteria and sort what it finds."""

    inherit_cache = True


@compiles(_Along, "sqlite")
def _cross(join: _Along, compiler: Any, **kw: Any) -> str:
    # SQLite keeps the left table of a CROSS JOIN as the outer loop (its documented way to
    # fix the order of a join); the ON clause stays as it is
    text: str = compiler.visit_join(join, **kw)
    return text.replace(" JOIN ", " CROSS JOIN ", 1)


def _in(column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``column IN (...)`` with one parameter per value, never one list expanded when the
    statement runs, so the text is complete once compiled (none: false)."""
    each = [v if isinstance(v, sa.BindParameter) else sa.literal(v) for v in values]
    return column.in_(each) if each else sa.false()


def _named(prefix: str, count: int) -> list[sa.BindParameter[Any]]:
    return [sa.bindparam(f"{prefix}{k}", type_=sa.Text) for k in range(count)]


@dataclass(frozen=True, slots=True)
class _Text:
    """A compiled select: its text, and per parameter in the order the driver takes them
    (positional) or by name, the query value it binds (``q_...``) or a constant of the shape."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]
    positional: bool

    def bind(self, values: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The parameters of the text, given the values of a query of its shape."""
        every = {**self.constants, **values}
        if self.positional:
            return [every[n] for n in self.names]
        return {n: every[n] for n in self.names}


def _shape(
    query: Query,
    definitions: Sequence[tuple[str, str]],
    levels: bool,
    narrow: tuple[bool, ...] | None,
) -> tuple[Any, ...]:
    """What the text of ``query``'s select depends on (never the values it binds)."""
    return (
        levels,
        narrow,
        tuple(getattr(query, name) is not None for name in _CRITERIA),
        query.overdue,
        query.final,
        None if query.states is None else len(query.states),
        query.after is not None,
        query.field,
        None if query.readers is None else len(query.readers),
        query.acts,
        tuple(map(tuple, definitions)) if query.acts is not None else (),
    )


def _values(query: Query) -> dict[str, Any]:
    """The values ``query`` binds, by parameter name."""
    values: dict[str, Any] = {f"q_{n}": getattr(query, n) for n in _CRITERIA}
    values["q_limit"] = query.limit
    values.update((f"q_s{k}", s) for k, s in enumerate(query.states or ()))
    values.update((f"q_r{k}", p) for k, p in enumerate(sorted(query.readers or ())))
    if query.after is not None:
        values["q_after_at"], values["q_after_id"] = query.after.key
    if query.field is not None:
        values["q_value"] = dump(query.value)
    return values


class QueryText:
    """The text of each shape of query for one driver, kept, and the values of each query."""

    def __init__(self, postgres: bool, dialect: Dialect) -> None:
        self.postgres = postgres
        self.dialect = dialect
        self._texts: dict[tuple[Any, ...], _Text] = {}

    def select(
        self,
        query: Query,
        definitions: Sequence[tuple[str, str]] = (),
        levels: bool = False,
        narrow: tuple[bool, ...] | None = None,
    ) -> tuple[str, Sequence[Any] | dict[str, Any]]:
        """The select of the instances ``query`` asks for, and its parameters; with ``levels``,
        each row ends with the highest level the query's readers hold on it; ``narrow`` says,
        for each of the readers in sorted order, whether it reads few instances."""
        key = _shape(query, definitions, levels, narrow)
        values = _values(query)
        text = self._texts.get(key)
        if text is None:
            stmt = self.statement(query, definitions, levels, narrow)
            compiled = stmt.compile(dialect=self.dialect)
            every = compiled.construct_params(params=values)
            positional = compiled.positiontup is not None
            names = tuple(compiled.positiontup if positional else every)  # type: ignore[arg-type]
            constants = {n: v for n, v in every.items() if not n.startswith("q_")}
            text = _Text(compiled.string, names, constants, positional)
            if len(self._texts) >= _SHAPES:
                self._texts.clear()
            self._texts[key] = text
        return text.sql, text.bind(values)

    def statement(
        self,
        query: Query,
        definitions: Sequence[tuple[str, str]] = (),
        levels: bool = False,
        narrow: tuple[bool, ...] | None = None,
    ) -> sa.Select[Any] | sa.CompoundSelect[Any]:
        """The select of ``query``'s shape, its values as named parameters (``q_...``).

        ``definitions`` are the (hash, workflow) of the stored definitions: an inbox's clause
        of definitions the engine has not loaded matches the instances pinned to those of them
        it does not know (see :meth:`arms`). With ``levels`` (and readers in the query), each
        row ends with a ``level`` column: the highest level the readers hold on the instance,
        read in the same statement, so a scoped page needs no second one to redact its rows.
        """
        c = INSTANCES.c
        where: list[sa.ColumnElement[bool]] = [
            c[n] == sa.bindparam(f"q_{n}", type_=sa.Text)
            for n in _CRITERIA
            if getattr(query, n) is not None
        ]
        # Booleans are written into the text, not bound: the partial indexes of overdue
        # instances serve only a query whose text says ``overdue = 1`` (SQLite) or ``overdue =
        # true`` (PostgreSQL, also in a prepared statement's generic plan).
        for column, flag in ((c.overdue, query.overdue), (c.final, query.final)):
            if flag is not None:
                where.append(column == (sa.true() if flag else sa.false()))
        if query.states is not None:
            where.append(_in(c.state, _named("q_s", len(query.states))))
        if query.field is not None:
            where.append(self.field_equals(query.field))
        after = (
            (sa.bindparam("q_after_at", type_=sa.Text), sa.bindparam("q_after_id", type_=sa.Text))
            if query.after is not None
            else None
        )
        columns: list[Any] = [c[name] for name in INSTANCE_COLUMNS]
        limit = sa.bindparam("q_limit", type_=sa.Integer)
        source: sa.FromClause = INSTANCES
        if query.readers is not None:
            r = READERS.c
            principals = _named("q_r", len(query.readers))
            # An instance has a few readers rows: one range of the primary key, each row tested
            # against the actor's principals, is quicker than one lookup per principal, which
            # SQLite makes unless the column is kept from the index by a unary plus (the
            # PostgreSQL planner does the former by itself).
            principal = r.principal if self.postgres else sa.literal_column("+readers.principal")

            def held(some: list[sa.BindParameter[Any]]) -> tuple[sa.ColumnElement[bool], ...]:
                return r.instance_id == c.id, _in(principal, some)

            # the level: the instance's range again, only for the rows of the page
            best = sa.select(sa.func.max(r.level)).where(*held(principals)).scalar_subquery()
            if narrow is not None and query.acts is None and any(narrow):
                walks = [p for p, few in zip(principals, narrow, strict=True) if few]
                wide = [p for p, few in zip(principals, narrow, strict=True) if not few]
                scope = sa.exists().where(*held(wide)) if wide else None
                keys = self._walked(where, after, scope, walks, limit)
                page = keys.subquery("page")
                # the page's instances by their key, in the page's order
                rows = sa.select(*columns).select_from(_Along(page, INSTANCES, page.c.id == c.id))
                if levels:
                    rows = rows.add_columns(best.label("level"))
                return rows.order_by(page.c.created_at, page.c.id)
            if levels and self.postgres:
                # one range of reader rows per instance, for both the test and the level: the
                # rows that hold none give no level (PostgreSQL keeps the aggregate as the
                # inner side of the loop and filters on it, half the probes of an EXISTS and a
                # subquery)
                held_at = sa.select(sa.func.max(r.level).label("level")).where(*held(principals))
                lateral = held_at.lateral("held")
                source = INSTANCES.join(lateral, sa.true())
                columns.append(lateral.c.level)
                where.append(lateral.c.level.is_not(None))
            else:
                if levels:
                    columns.append(best.label("level"))
                where.append(sa.exists().where(*held(principals)))
        if after is not None:
            where.append(sa.tuple_(c.created_at, c.id) > sa.tuple_(*after))
        arms = self.arms(query.acts, definitions) if query.acts is not None else None
        if arms is not None and len(arms) > 1:
            # one select per arm, each read in page order from an index, merged in that order;
            # PostgreSQL's planner takes the index only when each arm is limited to a page too
            selects = [sa.select(*columns).select_from(source).where(*where, arm) for arm in arms]
            if self.postgres:
                selects = [s.order_by(c.created_at, c.id).limit(limit) for s in selects]
            union = sa.union_all(*selects)
            paged = union.selected_columns
            return union.order_by(paged.created_at, paged.id).limit(limit)
        if arms is not None:
            where.append(arms[0] if arms else sa.false())
        elif query.acts is not None:
            where.append(sa.or_(sa.false(), *map(self.acts, query.acts)))
        rows = sa.select(*columns).select_from(source).where(*where)
        return rows.order_by(c.created_at, c.id).limit(limit)

    def _walked(
        self,
        where: list[sa.ColumnElement[bool]],
        after: tuple[sa.BindParameter[Any], sa.BindParameter[Any]] | None,
        wide: sa.Exists | None,
        walks: list[sa.BindParameter[Any]],
        limit: sa.BindParameter[Any],
    ) -> sa.Select[Any] | sa.CompoundSelect[Any]:
        """The keys (``created_at``, ``id``) of a scoped page: the union of one select per
        principal that reads few instances (``walks``), each a range of its reader rows in page
        order (``ix_readers_principal_created``), the instance probed by its key for the other
        criteria; and, for the principals that read many, the walk along the instances' index,
        each tested by ``wide`` against their reader rows. Each select stops at a page, so the
        union sorts a few pages of keys at most, an instance that more than one principal reads
        once. The caller reads the page's rows by their keys."""
        c = INSTANCES.c
        selects = []
        if wide is not None:
            paged = [sa.tuple_(c.created_at, c.id) > sa.tuple_(*after)] if after else []
            selects.append(
                sa.select(c.created_at, c.id)
                .where(*where, *paged, wide)
                .order_by(c.created_at, c.id)
            )
        for k, who in enumerate(walks):
            walk = READERS.alias(f"walk{k}")
            w = walk.c
            paged = [sa.tuple_(w.created_at, w.instance_id) > sa.tuple_(*after)] if after else []
            selects.append(
                sa.select(w.created_at, w.instance_id.label("id"))
                .select_from(_Along(walk, INSTANCES, w.instance_id == c.id))
                .where(w.principal == who, *paged, *where)
                .order_by(w.created_at, w.instance_id)
            )
        if len(selects) == 1:
            return selects[0].limit(limit)
        arms = [s.limit(limit).subquery(f"arm{k}") for k, s in enumerate(selects)]
        union = sa.union(*(sa.select(*arm.c) for arm in arms))
        keys = union.selected_columns
        return union.order_by(keys.created_at, keys.id).limit(limit)

    def arms(
        self, acts: tuple[ActClause, ...], definitions: Sequence[tuple[str, str]]
    ) -> list[sa.ColumnElement[bool]] | None:
        """An inbox's clauses as disjoint arms, each of one definition and one state (and, for
        a role bound to the instance's own unit, of that unit or of no unit), which an index
        on (org, workflow, state, ...) or (org, unit, workflow, state, ...) reads in page order:
        an OR of the clauses could only be read along all of the org's instances, testing each,
        however few match. A clause of definitions the engine has not loaded becomes one arm of
        the stored definitions it does not know, or none (the engine stores a definition before
        it pins an instance to it). None when the clauses overlap, or are too many to merge:
        then their OR."""
        c = INSTANCES.c
        arms: list[sa.ColumnElement[bool]] = []
        seen: set[tuple[str, str]] = set()
        unknown: set[str] = set()
        others = 0
        for clause in acts:
            if clause.definition_hash is not None:
                for state in clause.states:
                    seen.add((clause.definition_hash, state))
                    arms += self._unit_arms(replace(clause, states=(state,)))
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

    def _unit_arms(self, clause: ActClause) -> list[sa.ColumnElement[bool]]:
        """One state's clause as disjoint arms: for a role bound to the instance's own unit,
        the instances without a unit, those of the actor's unit, and (when data fields bind the
        role too) the others whose fields hold it; else the clause itself."""
        if clause.anywhere or not clause.own_unit:
            return [self.acts(clause)]
        c = INSTANCES.c
        base = self.acts(replace(clause, own_unit=False, unit=None, fields=()), units=False)
        out = [sa.and_(base, c.unit.is_(None))]
        if clause.unit is not None:
            out.append(sa.and_(base, c.unit == clause.unit))
            if clause.fields:
                held = [self.field_holds(f, clause.unit) for f in clause.fields]
                out.append(sa.and_(base, c.unit.is_not(None), c.unit != clause.unit, sa.or_(*held)))
        return out

    def acts(self, clause: ActClause, units: bool = True) -> sa.ColumnElement[bool]:
        """The instances an inbox clause matches (see :class:`xieshang.ActClause`); with
        ``units`` false, leaving out the test of the units a bound role acts for."""
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
        if clause.anywhere or not units:
            return sa.and_(*where)
        found: list[sa.ColumnElement[bool]] = []
        if clause.own_unit:
            found.append(c.unit.is_(None))
            if clause.unit is not None:
                found.append(c.unit == clause.unit)
        if clause.unit is not None:
            found += [self.field_holds(f, clause.unit) for f in clause.fields]
        return sa.and_(*where, sa.or_(sa.false(), *found))

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

    def field_equals(self, field: str) -> sa.ColumnElement[bool]:
        """``data[field]`` equals the JSON value bound as ``q_value``; a missing field equals
        None."""
        data = INSTANCES.c.data
        value = sa.bindparam("q_value", type_=sa.Text)
        if self.postgres:
            null = sa.cast(sa.literal("null"), JSONB)
            found = sa.func.coalesce(sa.cast(data, JSONB).op("->")(field), null)
            return found == sa.cast(value, JSONB)
        path = '$."' + field.replace('"', '""') + '"'
        # both sides go through json_extract, so strings, numbers, booleans and lists compare
        # as SQLite's JSON functions see them; IS makes a missing field equal to null
        return sa.func.json_extract(data, path).is_not_distinct_from(
            sa.func.json_extract(value, "$")
        )


# The settings a page read along its principals' reader rows runs under on PostgreSQL (every
# principal reads few instances: see readers.narrow). It runs on one plan made for any values,
# and that plan must be the walk itself: each principal's rows in page order, each instance
# probed by its key. Planned without the values, the planner would count an average
# principal's rows, and could join by hash along a whole table, or start parallel workers that
# take longer to start than the page takes to read (30 to 40 ms a page at 1,000,000 instances).
WALK_SETTINGS = (
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
    ("enable_bitmapscan", "off"),
    ("enable_seqscan", "off"),
    ("max_parallel_workers_per_gather", "0"),
)


@functools.cache
def _set_local(settings: tuple[tuple[str, str], ...]) -> str:
    """One statement that sets each of ``settings`` for the transaction alone (``SET LOCAL``
    each, in one statement the server parses once)."""
    every = (("plan_cache_mode", "force_generic_plan"), *settings)
    return "SELECT " + ", ".join(f"set_config('{name}', '{value}', true)" for name, value in every)


def read_generic(
    conn: Any,
    cursor: Any,
    sql: str,
    params: Sequence[Any] | dict[str, Any],
    also: str | None = None,
    settings: tuple[tuple[str, str], ...] = (),
) -> tuple[list[Any], list[Any]]:
    """The rows of an inbox's select on PostgreSQL, from its prepared statement's generic plan,
    in one round trip (a transaction that sets ``plan_cache_mode``, and ``settings`` (name,
    value), for itself alone), and the rows of ``also``, a select without parameters run in
    the same round trip (none without).

    An inbox is merged selects, each an exact range of an index by org, workflow or definition
    and state. Planned for its values, its arms cost the planner several times what reading
    them costs, at every run until the server judges one plan as good; and for some shapes it
    never does. Planned once for any values, each arm is still the range of its index. A scoped
    page is not read so: which way to read it depends on how many rows the actor's principals
    read, which only a plan for the values sees. ``cursor`` runs the select (on ``conn``)."""
    with conn.pipeline():
        conn.execute("BEGIN")
        conn.execute(_set_local(settings))
        found = cursor.execute(sql, params, prepare=True)
        other = conn.execute(also, prepare=True) if also is not None else None
        conn.execute("COMMIT")
    return list(found.fetchall()), list(other.fetchall()) if other is not None else []
