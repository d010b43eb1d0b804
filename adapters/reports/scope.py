"""A report produced for an actor: the rows that show an instance it may not read are left out.

A report's counts and rates over the year name no instance and stay whole (so a reader who
may not read some of the year's instances still sees them counted).
Its detail rows (a wide table's row per key proposal, online topic or appraised unit, a line of
the satisfaction ranking, the per-target figures and the names at the top and bottom of the
ranking) show the data of one instance or two; for an actor such a row is kept
only when it may read every instance the row shows at the ``data`` level (the same reader
principals a scoped ``get`` compares), the instance being of its org when it has one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from xieshang import SYSTEM, Actor
from xieshang.adapters.sql import engine_for
from xieshang.adapters.sql.tables import instances as INSTANCES
from xieshang.shared import DATA_LEVEL, reader_principals

from .model import Report

__all__ = ["readable", "scope_report"]

READERS = INSTANCES.metadata.tables["readers"]


def readable(source: Any, ids: set[str], actor: Actor) -> set[str]:
    """The ids among ``ids`` of instances ``actor`` reads at the ``data`` level."""
    if not ids:
        return set()
    r, i = READERS.c, INSTANCES.c
    q = (
        sa.select(r.instance_id)
        .join(INSTANCES, i.id == r.instance_id)
        .where(
            r.instance_id.in_(sorted(ids)),
            r.principal.in_(sorted(reader_principals(actor))),
            r.level >= DATA_LEVEL,
        )
        .distinct()
    )
    if actor.org is not None:
        q = q.where(i.org == actor.org)
    engine, owned = engine_for(source)
    try:
        with engine.connect() as conn:
            return {str(row[0]) for row in conn.execute(q)}
    finally:
        if owned:
            engine.dispose()


def scope_report(rep: Report, source: Any, actor: Actor | None) -> Report:
    """``rep`` with the detail rows of instances ``actor`` may not read left out (all of them
    kept for no actor or the system actor)."""
    if actor is None or actor == SYSTEM:
        return rep
    listed = [*rep.row_ids.values(), *rep.figure_ids.values(), list(rep.line_ids.values())]
    ok = readable(source, {iid for rows in listed for ids in rows for iid in ids}, actor)
    for name, rows in rep.figure_ids.items():
        rep.figures[name] = [
            x for x, ids in zip(rep.figures[name], rows, strict=True) if set(ids) <= ok
        ]
    rep.figure_ids = {}
    for name, rows in rep.row_ids.items():
        headers, table = rep.wide[name]
        kept = [n for n, ids in enumerate(rows) if set(ids) <= ok]
        rep.wide[name] = (headers, [table[n] for n in kept])
        rep.row_ids[name] = [rows[n] for n in kept]
    dropped = {n for n, ids in rep.line_ids.items() if not set(ids) <= ok}
    rep.lines = [line for n, line in enumerate(rep.lines) if n not in dropped]
    rep.line_ids = {}
    return rep
