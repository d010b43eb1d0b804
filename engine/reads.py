"""Reads scoped to an actor: what of an instance, its history and its children it may see.

The levels and their redaction are :mod:`xieshang.access`'s; here they meet the store. An
instance the actor may not read is NotFound, like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import access
from .context import children_of
from .errors import NotFound, Usage
from .ports import Query
from .records import Actor, Commit, HistoryEntry, Instance, iso

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["Page", "children", "get", "history", "level", "query", "rebuild_readers"]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query and the cursor of the next, if any."""

    items: list[Instance]
    next_cursor: str | None


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
    engine: Engine, instance_id: str, actor: Actor | None, *, fresh: bool = False
) -> tuple[Instance, int]:
    """The instance and the level ``actor`` reads it at; NotFound when that is nothing."""
    instance = engine._load(instance_id, actor, fresh=fresh)
    found = level(engine, instance, actor)
    if found <= 0:
        raise NotFound("instance", instance_id)
    return instance, found


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
    scoped = not access.unscoped(actor)
    if scoped:
        assert actor is not None
        if actor.org is not None and q.org is not None and q.org != actor.org:
            return Page([], None)
        q = replace(q, org=actor.org or q.org, readers=access.principals(actor))
    items = engine.store.query(q)
    cursor = None
    if len(items) == q.limit and items:
        last = items[-1]
        cursor = f"{iso(last.created_at)}|{last.id}"
    if scoped:
        assert actor is not None
        stored = engine.store.readers([i.id for i in items])
        items = [
            access.redact_instance(
                engine._workflow_of(i), i, access.level_of(stored.get(i.id, {}), actor)
            )
            for i in items
        ]
    return Page(items, cursor)


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
