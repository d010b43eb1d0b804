"""Reads scoped to an actor: what of an instance, its history and its children it may see,
and the pages of a query (an inbox among them).

The levels and their redaction are :mod:`xieshang.access`'s; here they meet the store. An
instance the actor may not read is NotFound, like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from . import access
from .context import children_of
from .errors import NotFound, Usage
from .inbox import act_clauses, may_fire
from .ports import PageCursor, Query
from .records import Actor, Commit, HistoryEntry, Instance

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = [
    "Page",
    "as_read",
    "children",
    "get",
    "history",
    "level",
    "query",
    "readable",
    "rebuild_readers",
]

# rows an inbox asks the store for at once: the checks drop some, and the page must be full
_INBOX_BATCH, _INBOX_BATCH_MAX = 50, 500


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query and the cursor of the next, if any.

    ``next_cursor`` is set when the page is full (the next page may be empty); pass it as
    ``Query.after``. For an inbox (``Query.actionable_by``), ``triggers`` maps each instance id
    to the triggers that actor may fire on it now (some with a suitable payload).
    """

    items: list[Instance]
    next_cursor: PageCursor | None
    triggers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def level(engine: Engine, instance: Instance, actor: Actor | None) -> int:
    """How far ``actor`` may read ``instance``: 0 not at all, then see, data, internal."""
    if access.unscoped(actor):
        return access.INTERNAL
    assert actor is not None
    if actor.org is not None and actor.org != instance.org:
        return 0
    stored = engine.store.readers([instance.id]).get(instance.id, {})
    return access.level_of(stored, actor)


def _read(
    engine: Engine,
    instance_id: str,
    actor: Actor | None,
    *,
    fresh: bool = False,
    shared: bool = False,
) -> tuple[Instance, int]:
    """The instance and the level ``actor`` reads it at; NotFound when that is nothing.
    ``shared``: as for ``Engine._load``."""
    instance = engine._load(instance_id, actor, fresh=fresh, shared=shared)
    found = level(engine, instance, actor)
    if found <= 0 and not fresh:  # judged on a cached row: the stored one may be readable
        instance = engine._load(instance_id, actor, fresh=True)
        found = level(engine, instance, actor)
    if found <= 0:
        raise NotFound("instance", instance_id)
    return instance, found


def as_read(
    engine: Engine, instance: Instance, actor: Actor | None, *, known: int | None = None
) -> Instance:
    """``instance`` as ``actor`` reads it: whole from the ``data`` level, else only its public
    fields (also when the actor reads it no more: a step it fired moved it out of its sight).
    ``known``: that level, when the caller knows it (a step that left the readers as they were
    leaves it as it was)."""
    if access.unscoped(actor):
        return instance
    found = known if known is not None else level(engine, instance, actor)
    return access.redact_instance(engine._workflow_of(instance), instance, found)


def readable(engine: Engine, instance_id: str, actor: Actor | None) -> Instance:
    """The stored instance, unredacted, if ``actor`` may read it; else NotFound, as for none."""
    return _read(engine, instance_id, actor)[0]


def read_at_level(
    engine: Engine, instance_id: str, actor: Actor | None, *, shared: bool = False
) -> tuple[Instance, int]:
    """:func:`readable`, and the level ``actor`` reads the instance at. ``shared``: as for
    ``Engine._load``."""
    return _read(engine, instance_id, actor, shared=shared)


def get(engine: Engine, instance_id: str, actor: Actor | None, *, fresh: bool) -> Instance:
    instance, found = _read(engine, instance_id, actor, fresh=fresh)
    return access.redact_instance(engine._workflow_of(instance), instance, found)


def history(engine: Engine, instance_id: str, actor: Actor | None) -> list[HistoryEntry]:
    instance, found = _read(engine, instance_id, actor)
    rows = engine.store.history(instance_id)
    return access.redact_history(engine._workflow_of(instance), rows, found)


def children(engine: Engine, instance_id: str, actor: Actor | None) -> list[Instance]:
    _read(engine, instance_id, actor)
    kids = children_of(engine, instance_id)
    if access.unscoped(actor):
        return kids
    assert actor is not None
    stored = engine.store.readers([k.id for k in kids])
    out: list[Instance] = []
    for k in kids:
        found = access.level_of(stored.get(k.id, {}), actor)
        if found > 0:
            out.append(access.redact_instance(engine._workflow_of(k), k, found))
    return out


def query(
    engine: Engine, query: Query | None, actor: Actor | None, criteria: dict[str, Any]
) -> Page:
    try:
        q = query or Query(**criteria)
    except TypeError as e:
        raise Usage(f"not a query: {e}", "criteria", allowed=list(Query.__match_args__)) from e
    if q.actionable_by is not None:
        if actor is not None and actor != q.actionable_by:
            raise Usage(
                f"an inbox is read as its own actor: actionable_by {q.actionable_by.id!r} "
                f"but actor {actor.id!r}; pass the same actor or none",
                "actor",
                allowed=[q.actionable_by.id],
            )
        actor = q.actionable_by
    scoped = not access.unscoped(actor)
    if scoped:
        assert actor is not None
        if actor.org is not None and q.org is not None and q.org != actor.org:
            return Page([], None)
        q = replace(q, org=actor.org or q.org, readers=access.principals(actor))
    triggers: dict[str, tuple[str, ...]] = {}
    if q.actionable_by is not None:
        found, cursor = _inbox(engine, q, triggers)
    else:
        found = engine.store.query_read(q)
        cursor = PageCursor.of(found[-1][0]) if found and len(found) == q.limit else None
    if not scoped:
        return Page([i for i, _ in found], cursor, triggers)
    # each row's level was read with it, in the same statement: what the page shows is what
    # that row allowed, with no moment between for its readers to change
    items = [access.redact_instance(engine._workflow_of(i), i, lv) for i, lv in found]
    return Page(items, cursor, triggers)


def _inbox(
    engine: Engine, q: Query, triggers: dict[str, tuple[str, ...]]
) -> tuple[list[tuple[Instance, int]], PageCursor | None]:
    """One page of the instances ``q.actionable_by`` may act on now, and the next cursor.

    The store narrows by state, role and unit (and the read scope); the checks of
    ``available()`` decide the rest on each row, in order. The store is asked again past the
    last row it gave until the page is full or the store has no more, so a page that is not
    the last is always full. The cursor is the last instance on the page: rows after it that
    this call already fetched are judged by the next page, as they are then.
    """
    actor = q.actionable_by
    assert actor is not None
    _known_states(engine, q)
    if q.limit <= 0:
        return [], None
    q = replace(q, acts=act_clauses(engine, actor, q.workflow, q.states))
    found: list[tuple[Instance, int]] = []
    after, batch = q.after, max(q.limit, _INBOX_BATCH)
    while True:
        rows = engine.store.query_read(replace(q, after=after, limit=batch))
        for row in rows:
            i = row[0]
            fire = may_fire(engine, i, actor)
            if not fire:
                continue
            found.append(row)
            triggers[i.id] = fire
            if len(found) == q.limit:
                return found, PageCursor.of(i)
        if len(rows) < batch:
            return found, None
        after, batch = PageCursor.of(rows[-1][0]), min(batch * 2, _INBOX_BATCH_MAX)


def _known_states(engine: Engine, q: Query) -> None:
    """An inbox of a workflow the engine does not run, or of states it does not have, is a
    mistake in the asking: Usage naming what there is."""
    if q.workflow is None:
        return
    if q.workflow not in engine.registry.ids():
        raise Usage(
            f"no workflow {q.workflow!r} to list an inbox of",
            "workflow",
            allowed=engine.registry.ids(),
        )
    # the states of every version loaded: instances of each run side by side
    versions = [w for w in engine.registry.versions() if w.id == q.workflow]
    states = {s: None for w in reversed(versions) for s in w.definition.states}
    unknown = [s for s in (*(q.states or ()), *([q.state] if q.state else [])) if s not in states]
    if unknown:
        raise Usage(
            f"workflow {q.workflow!r} has no state {', '.join(map(repr, unknown))}",
            "states",
            allowed=list(states),
        )


def rebuild_readers(engine: Engine, instance_id: str | None) -> int:
    ids = [instance_id] if instance_id is not None else list(engine.store.instance_ids())
    changed = 0
    for iid in ids:
        instance = engine.store.load(iid, fresh=True)
        if instance is None:
            raise NotFound("instance", iid)
        levels = access.readers(engine._workflow_of(instance), instance)
        if engine.store.readers([iid]).get(iid, {}) != levels:
            engine.store.apply(Commit(readers={iid: levels}))
            changed += 1
    return changed
