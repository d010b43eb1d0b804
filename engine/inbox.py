"""The inbox: what an actor may act on now, narrowed by the store and decided by the checks.

Each compiled workflow already holds the table an inbox needs: per state, its transitions and
the roles allowed on each (``by_state``), and per role where its units come from (``bound``).
For one actor these become :class:`~xieshang.ports.ActClause` filters a store evaluates
(SQL on SQLite and PostgreSQL, Python in memory): the states where a role of the actor fires
something, and, where that role is bound to units, the columns or data fields that must name
the actor's unit. What depends on values no store can judge (guards, separation of duties, a
binding computed by an expression over several fields, definitions the engine has not loaded)
is left to :func:`may_fire`, which runs the checks ``available()`` runs on each instance the
store matched. A store may match more than an actor may act on, never less.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .checks import fireable, role_for
from .compiler import CompiledWorkflow
from .definition import FieldSpec
from .ports import ActClause
from .records import Actor, Instance

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["Binding", "act_clauses", "binding", "clauses_of", "may_fire"]

_DATA_FIELD = re.compile(r"\s*data\.([A-Za-z_][A-Za-z0-9_]*)\s*")
_UNIT_TYPES = frozenset({"string", "text", "enum"})


@dataclass(frozen=True, slots=True)
class Binding:
    """Where a role acts on an instance, as a store can test it: anywhere, for the instance's
    own ``unit`` (or on an instance without one), or for a unit one of the data ``fields``
    holds."""

    anywhere: bool = False
    own_unit: bool = False
    fields: tuple[str, ...] = ()


_ANYWHERE = Binding(anywhere=True)
_BINDINGS: dict[tuple[str, str], Binding] = {}


def _holds_units(spec: FieldSpec) -> bool:
    return spec.type in _UNIT_TYPES or (spec.type == "list" and spec.items in _UNIT_TYPES)


def binding(wf: CompiledWorkflow, role: str) -> Binding:
    """How ``role`` is bound to units in ``wf``: a role bound by expressions that are each a
    plain text field (``data.lead_unit``, ``data.units``) is tested by the store; any other
    expression is judged by the checks (the store then matches every unit)."""
    key = (wf.hash, role)
    found = _BINDINGS.get(key)
    if found is not None:
        return found
    if role not in wf.bound:
        found = _ANYWHERE
    elif (sources := wf.bound[role]) is None:
        found = Binding(own_unit=True)
    else:
        fields: list[str] = []
        for expr in sources:
            m = _DATA_FIELD.fullmatch(expr.source)
            spec = wf.definition.data.get(m.group(1)) if m else None
            if m is None or spec is None or not _holds_units(spec):
                fields = []
                found = _ANYWHERE
                break
            if m.group(1) not in fields:
                fields.append(m.group(1))
        found = found or Binding(fields=tuple(fields))
    _BINDINGS[key] = found
    return found


def _merge(found: list[Binding], unit: str | None) -> Binding | None:
    """One state's bindings together; None when the actor can act there for no unit."""
    if any(b.anywhere for b in found):
        return _ANYWHERE
    own = any(b.own_unit for b in found)
    fields = [] if unit is None else list(dict.fromkeys(f for b in found for f in b.fields))
    if not own and not fields:
        return None
    return Binding(own_unit=own, fields=tuple(fields))


def clauses_of(
    wf: CompiledWorkflow, actor: Actor, states: Iterable[str] | None = None
) -> list[ActClause]:
    """The clauses of one workflow version for ``actor``: per set of states that share a
    binding, where some trigger from the state allows a role of the actor (the role the checks
    would act in: the first allowed of its roles)."""
    wanted = set(states) if states is not None else None
    by_binding: dict[Binding, list[str]] = {}
    for state, transitions in wf.by_state.items():
        if wanted is not None and state not in wanted:
            continue
        found = [
            binding(wf, role) for t in transitions if (role := role_for(actor, t.roles)) is not None
        ]
        merged = _merge(found, actor.unit) if found else None
        if merged is not None:
            by_binding.setdefault(merged, []).append(state)
    return [
        ActClause(
            wf.id,
            wf.hash,
            tuple(sorted(names)),
            anywhere=b.anywhere,
            unit=actor.unit,
            own_unit=b.own_unit,
            fields=b.fields,
        )
        for b, names in by_binding.items()
    ]


def act_clauses(
    engine: Engine, actor: Actor, workflow: str | None, states: Iterable[str] | None
) -> tuple[ActClause, ...]:
    """The clauses of every workflow version the engine knows (of ``workflow``, if given), and
    one for the instances pinned to a definition it has not loaded (decided by the checks)."""
    wanted = tuple(sorted(set(states))) if states is not None else None
    known = [wf for wf in engine.registry.versions() if workflow is None or wf.id == workflow]
    out = [c for wf in known for c in clauses_of(wf, actor, wanted)]
    out.append(ActClause(workflow, None, wanted or (), known=tuple(wf.hash for wf in known)))
    return tuple(out)


def may_fire(engine: Engine, instance: Instance, actor: Actor) -> tuple[str, ...]:
    """The triggers ``actor`` may fire on ``instance`` now: those ``available()`` allows, or
    allows with a suitable payload; empty when the instance is not in its inbox."""
    return fireable(engine, instance, actor)
