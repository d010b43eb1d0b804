"""What expressions see: the context of a transition's guard and effects, and guard messages.

A context holds only the names and members a transition's expressions read (converting values
into CEL costs microseconds each), the date functions bound to the engine's calendar, and for a
guard that reads other instances, ``lookup`` bound to the store and the instance's org; a
child's ``parent`` is read from the store when an expression reads it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .calendar import Calendar, get_calendar, parse_duration
from .compiler import CompiledTransition, CompiledWorkflow
from .date_functions import date_functions
from .definition import Label
from .errors import CalendarError
from .expressions import (
    LOOKUP,
    PARENT,
    Compiled,
    activation,
    guarded,
    instance_view,
)
from .ports import Query
from .records import Actor, Instance, iso

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = [
    "Scope",
    "calendar_of",
    "children_of",
    "context",
    "fill_label",
    "fill_message",
    "full_context",
    "functions_of",
    "guard_message",
    "jsonable",
    "lookup_function",
    "parent_as_after",
    "parent_view",
    "summary",
]

_ALL_NAMES = (
    "data",
    "payload",
    "actor",
    "instance",
    "params",
    "now",
    "children",
    "siblings",
    PARENT,
)

# parents whose step is being committed, as after it: the steps such a parent fires on its
# children (children_fire, cascade) see it as it will be stored, not as it was
_NEWER_PARENTS: contextvars.ContextVar[dict[str, Instance] | None] = contextvars.ContextVar(
    "xieshang_newer_parents", default=None
)


@contextlib.contextmanager
def parent_as_after(parent: Instance) -> Iterator[None]:
    """While the parent's step fires steps on its children, they read it as after the step."""
    known = _NEWER_PARENTS.get() or {}
    token = _NEWER_PARENTS.set({**known, parent.id: parent})
    try:
        yield
    finally:
        _NEWER_PARENTS.reset(token)


def parent_view(engine: Engine, instance: Instance) -> dict[str, Any] | None:
    """What ``parent`` is to an expression: the instance's parent as stored (or as after the
    parent's step that is firing this one), with the members of a ``lookup``; None without
    one."""
    if instance.parent_id is None:
        return None
    found = (_NEWER_PARENTS.get() or {}).get(instance.parent_id)
    if found is None:
        found = engine.store.load(instance.parent_id, fresh=True)
    if found is None:
        return None
    return _linked_view(found)


# not frozen, for the cost of building it on every step (see xieshang.records.HistoryEntry)
@dataclass(slots=True, unsafe_hash=True)
class Scope:
    """What a transition's expressions are evaluated over: the instance (as before the step
    for its guard and effects, as after it for spawn lists and ``children_set``), the actor,
    the validated payload and the time."""

    wf: CompiledWorkflow
    instance: Instance
    t: CompiledTransition
    actor: Actor
    payload: dict[str, Any]
    now: datetime


def calendar_of(engine: Engine, wf: CompiledWorkflow) -> Calendar:
    """The calendar ``wf`` counts working days on, over the engine's calendar chain."""
    return get_calendar(wf.definition.calendar, engine.calendar)


def functions_of(engine: Engine, wf: CompiledWorkflow) -> dict[str, Callable[..., Any]]:
    """The date functions bound to this engine's calendar (not the package tables alone)."""
    name = wf.definition.calendar
    found = engine._functions.get(name)
    if found is None:
        found = engine._functions[name] = date_functions(calendar_of(engine, wf))
    return found


def children_of(engine: Engine, parent_id: str | None) -> list[Instance]:
    """The stored children of an instance, oldest first; none for no parent."""
    if parent_id is None:
        return []
    return engine.store.query(Query(parent_id=parent_id, limit=10_000))


def context(engine: Engine, scope: Scope, *, children: list[Instance] | None = None) -> Any:
    """The context of one transition: only the names and members its expressions read.

    ``children`` replaces the stored children when the caller knows newer ones (a join
    checked in the same commit as the child step that completes it).
    """
    wf, instance, t, payload = scope.wf, scope.instance, scope.t, scope.payload
    variables: dict[str, Any] = {}
    for name, members in t.needs.items():
        if name == "data":
            source = instance.data
            keys = wf.definition.data if members is None else members
            variables[name] = {k: source.get(k) for k in keys}
        elif name == "payload":
            keys = t.spec.payload if members is None else members
            variables[name] = {k: payload.get(k) for k in keys}
        elif name == "actor":
            actor = scope.actor
            variables[name] = {
                "id": actor.id,
                "roles": sorted(actor.roles),
                "org": actor.org,
                "unit": actor.unit,
            }
        elif name == "instance":
            view = instance_view(instance)
            variables[name] = (
                view if members is None else {k: view[k] for k in members if k in view}
            )
        elif name == "params":
            params = wf.params
            variables[name] = (
                params if members is None else {k: params[k] for k in members if k in params}
            )
        elif name == "now":
            variables[name] = scope.now
        elif name == "children":
            kids = children if children is not None else children_of(engine, instance.id)
            variables[name] = [summary(c) for c in kids]
        elif name == "siblings":
            siblings = children_of(engine, instance.parent_id) if instance.parent_id else []
            variables[name] = [summary(c) for c in siblings if c.id != instance.id]
        elif name == PARENT:
            variables[name] = parent_view(engine, instance)
    functions = functions_of(engine, wf) if t.uses_functions else None
    if t.uses_lookup:
        functions = {**(functions or {}), LOOKUP: lookup_function(engine, instance.org)}
    return activation(variables, functions)


def lookup_function(engine: Engine, org: str) -> Callable[[Any], dict[str, Any] | None]:
    """``lookup(id)`` for one evaluation: the instance ``id`` of ``org`` as a summary (the
    members of a child in ``children``, and ``parent_id`` and ``created_at``), or None when
    ``org`` has no such instance. Each id is read once per evaluation."""
    seen: dict[str, dict[str, Any] | None] = {}

    def lookup(instance_id: Any) -> dict[str, Any] | None:
        if not isinstance(instance_id, str):
            raise TypeError(f"an instance id is text, not {instance_id!r}")
        if instance_id not in seen:
            found = engine.store.load(instance_id, fresh=True)
            seen[instance_id] = None if found is None or found.org != org else _linked_view(found)
        return seen[instance_id]

    return guarded(LOOKUP, lookup)


def full_context(engine: Engine, scope: Scope) -> Any:
    """A context with every name, for expressions outside the guard and effects (message
    placeholders, spawn lists, children_set), which are rare enough not to be measured."""
    t = scope.t
    probe = CompiledTransition(
        index=t.index,
        spec=t.spec,
        sources=t.sources,
        roles=t.roles,
        guard=None,
        sets=(),
        payload=None,
        needs=dict.fromkeys(_ALL_NAMES),
        uses_functions=True,
        uses_lookup=True,
    )
    return context(engine, replace(scope, t=probe))


def guard_message(engine: Engine, scope: Scope) -> str:
    """The guard's message, its ``{expression}`` placeholders filled in (see
    :func:`fill_message`); the guard's source when it has no message."""
    t = scope.t
    assert t.guard is not None
    if t.spec.guard_message is None:
        return f"guard is not satisfied: {t.guard.source}"
    return fill_message(engine, scope, t.spec.guard_message, t.message_parts)


def fill_message(
    engine: Engine, scope: Scope, label: Label, parts: tuple[tuple[str, Compiled], ...]
) -> str:
    """A message (``zh / en``) with its ``{expression}`` placeholders filled in: durations in
    the language of each part, and a placeholder that cannot be computed shown as ``?``."""
    return fill_label(label, parts, full_context(engine, scope) if parts else None)


def fill_label(label: Label, parts: tuple[tuple[str, Compiled], ...], ctx: Any) -> str:
    """``label`` as ``zh / en``, each ``{expression}`` of ``parts`` run in ``ctx``."""
    zh, en = label.zh, label.en
    if parts:
        for source, part in parts:
            try:
                value = part.run(ctx)
            except Exception:
                value = None
            token = "{" + source + "}"
            zh = zh.replace(token, _shown(value, "zh"))
            en = en.replace(token, _shown(value, "en")) if en else en
    return f"{zh} / {en}" if en else zh


def jsonable(value: Any) -> Any:
    """An expression's result as JSON: timestamps as ISO text, maps and lists all through, each
    map's keys in order (an evaluator gives a map's entries in no fixed order, and what is
    stored must not depend on the run)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _linked_view(found: Instance) -> dict[str, Any]:
    return {**summary(found), "parent_id": found.parent_id, "created_at": found.created_at}


def summary(child: Instance) -> dict[str, Any]:
    """What a child (or sibling) is to an expression: id, workflow, state, unit, final, data."""
    return {
        "id": child.id,
        "workflow": child.workflow,
        "state": child.state,
        "unit": child.unit,
        "final": child.final,
        "data": child.data,
    }


def _shown(value: Any, lang: str) -> str:
    """A value in a message: a list joined, a duration in the message's language."""
    if value is None:
        return "?"
    if isinstance(value, list):
        return ("、" if lang == "zh" else ", ").join(_shown(v, lang) for v in value)
    text = str(value)
    if lang == "zh" and isinstance(value, str) and value[:1].isdigit():
        try:
            return parse_duration(value).zh
        except CalendarError:
            return text
    return text
