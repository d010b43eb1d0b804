"""What the reports read: the instances of a workflow in a year, and their history by trigger.

One query each, over the ``instances`` and ``history`` tables, never a replay of histories.
An instance counts in the business year its data names (``data.year``: the plan's year, the
proposal's session year), and only when it names none in the year it was created (China time).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from xieshang.adapters.sql import engine_for
from xieshang.adapters.sql.tables import definitions as DEFINITIONS
from xieshang.adapters.sql.tables import history as HISTORY
from xieshang.adapters.sql.tables import instances as INSTANCES

from .labels import CN
from .model import Report

__all__ = ["Reader", "Row", "new_report"]


def _year_bounds(year: int) -> tuple[str, str]:
    from xieshang.shared import iso

    return iso(datetime(year, 1, 1, tzinfo=CN)), iso(datetime(year + 1, 1, 1, tzinfo=CN))


class _DataYear(FunctionElement[int]):
    """``data.year`` of an instance row when it is an integer, else NULL (a workflow whose data
    has no year, or a year of another type, never breaks the query)."""

    type = sa.Integer()
    inherit_cache = True


@compiles(_DataYear)
def _data_year_sqlite(element: _DataYear, compiler: SQLCompiler, **kw: Any) -> str:
    data = compiler.process(INSTANCES.c.data, **kw)
    return (
        f"CASE WHEN json_type({data}, '$.year') = 'integer' THEN json_extract({data}, '$.year') END"
    )


@compiles(_DataYear, "postgresql")
def _data_year_postgresql(element: _DataYear, compiler: SQLCompiler, **kw: Any) -> str:
    data = compiler.process(INSTANCES.c.data, **kw)
    doc = f"CAST({data} AS JSONB)"
    return (
        f"CASE WHEN jsonb_typeof({doc} -> 'year') = 'number' "
        f"THEN CAST({doc} ->> 'year' AS NUMERIC) END"
    )


@dataclass
class Row:
    """An instance as the reports see it."""

    id: str
    state: str
    data: dict[str, Any]
    overdue: bool
    unit: str | None
    parent_id: str | None


class Reader:
    """Reads for one report, on the database ``source`` names (see :func:`engine_for`)."""

    def __init__(self, source: Any) -> None:
        self.engine, self.owned = engine_for(source)

    def close(self) -> None:
        if self.owned:
            self.engine.dispose()

    @staticmethod
    def scope(workflow: str, year: int | None, org: str | None) -> sa.Select[Any]:
        """The ids of the instances of ``workflow`` of business year ``year`` in ``org``: those
        whose ``data.year`` is ``year``, and those that name no year created in it."""
        q = sa.select(INSTANCES.c.id).where(INSTANCES.c.workflow == workflow)
        if year is not None:
            lo, hi = _year_bounds(year)
            named = _DataYear()
            created = sa.and_(INSTANCES.c.created_at >= lo, INSTANCES.c.created_at < hi)
            q = q.where(sa.or_(named == year, sa.and_(named.is_(None), created)))
        if org is not None:
            q = q.where(INSTANCES.c.org == org)
        return q

    @staticmethod
    def child_scope(workflow: str, parents: sa.Select[Any]) -> sa.Select[Any]:
        """The ids of the ``workflow`` children of the instances in ``parents``."""
        return sa.select(INSTANCES.c.id).where(
            INSTANCES.c.workflow == workflow, INSTANCES.c.parent_id.in_(parents)
        )

    def instances(self, scope: sa.Select[Any]) -> list[Row]:
        q = (
            sa.select(
                INSTANCES.c.id,
                INSTANCES.c.state,
                INSTANCES.c.data,
                INSTANCES.c.overdue,
                INSTANCES.c.unit,
                INSTANCES.c.parent_id,
            )
            .where(INSTANCES.c.id.in_(scope))
            .order_by(INSTANCES.c.created_at, INSTANCES.c.id)
        )
        with self.engine.connect() as conn:
            return [
                Row(r.id, r.state, json.loads(r.data), bool(r.overdue), r.unit, r.parent_id)
                for r in conn.execute(q)
            ]

    def triggered(self, scope: sa.Select[Any], triggers: set[str]) -> dict[str, Counter[str]]:
        """Per trigger, how many history rows each instance of ``scope`` has with it."""
        out: dict[str, Counter[str]] = {t: Counter() for t in triggers}
        q = (
            sa.select(HISTORY.c.instance_id, HISTORY.c.trigger, sa.func.count())
            .where(HISTORY.c.trigger.in_(sorted(triggers)), HISTORY.c.instance_id.in_(scope))
            .group_by(HISTORY.c.instance_id, HISTORY.c.trigger)
        )
        with self.engine.connect() as conn:
            for iid, trig, n in conn.execute(q):
                out[trig][iid] = n
        return out

    def params(self, scope: sa.Select[Any]) -> dict[str, Any]:
        """The params in force (name -> value, a deployment's overrides included) of the newest
        definition the instances of ``scope`` are pinned to; empty when there is none."""
        pinned = sa.select(INSTANCES.c.definition_hash).where(INSTANCES.c.id.in_(scope))
        q = (
            sa.select(DEFINITIONS.c.body)
            .where(DEFINITIONS.c.hash.in_(pinned))
            .order_by(DEFINITIONS.c.version.desc(), DEFINITIONS.c.created_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            body = conn.execute(q).scalar_one_or_none()
        if body is None:
            return {}
        specs = json.loads(body).get("params") or {}
        return {name: spec.get("default") for name, spec in specs.items()}


def new_report(kind: str, title: str, year: int, org: str | None) -> Report:
    """An empty report titled for its year."""
    return Report(kind=kind, title=f"{year}年{title}", year=year, org=org)
