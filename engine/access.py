"""Access: the units an instance binds its unit-level roles to, and who may read it.

A definition's ``bound_roles`` names, per role, where its units come from; a ``read:`` section
grants three levels (``see`` < ``data`` < ``internal``) to roles, bound units, actors named in
the data, or anyone of the org, by state and condition. After every step the engine turns the
rules into *reader principals* (``r:ROLE``, ``u:ROLE:UNIT``, ``a:ACTOR``, ``*``), each with the
highest level granted, and stores them with the step; every scoped read (get, history, children,
query, HTTP, CLI, the event stream) compares them with the principals of the reading actor.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .definition import ReadRule
from .expressions import Compiled, activation, instance_view
from .records import SYSTEM, Actor, HistoryEntry, Instance, copy_json

if TYPE_CHECKING:
    from .compiler import CompiledTransition, CompiledWorkflow

__all__ = [
    "ANYONE",
    "DATA",
    "DEFAULT_HIDDEN_STATES",
    "INTERNAL",
    "LEVELS",
    "SEE",
    "CompiledRule",
    "default_rules",
    "evaluate_bound",
    "level_of",
    "principals",
    "readers",
    "redact_history",
    "redact_instance",
    "unscoped",
]

SEE, DATA, INTERNAL = 1, 2, 3
LEVELS = {"see": SEE, "data": DATA, "internal": INTERNAL}
ANYONE = "*"
# what a workflow without a ``read:`` section never shows to a scoped reader
DEFAULT_HIDDEN_STATES = frozenset({"draft"})
DEFAULT_PUBLIC_FLAG = "is_public"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One read rule with its expressions compiled, and the level it grants."""

    level: int
    roles: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    named: tuple[Compiled, ...] = ()
    anyone: bool = False
    states: frozenset[str] = frozenset()
    not_states: frozenset[str] = frozenset()
    when: Compiled | None = None


def default_rules(definition_states: Iterable[str], data_fields: Iterable[str]) -> list[ReadRule]:
    """The rules of a level a definition leaves out: anyone of the org sees everything, except
    in a ``draft`` state and while ``data.is_public`` is false (those only trusted callers)."""
    hidden = tuple(s for s in definition_states if s in DEFAULT_HIDDEN_STATES)
    when = f"data.{DEFAULT_PUBLIC_FLAG} != false" if DEFAULT_PUBLIC_FLAG in data_fields else None
    return [ReadRule(anyone=True, not_states=hidden, when=when)]


def unscoped(actor: Actor | None) -> bool:
    """Calls without an actor, and the engine's own system actor, read everything."""
    return actor is None or actor == SYSTEM


@functools.lru_cache(maxsize=4096)  # asked for each instance a page or a command reads
def principals(actor: Actor) -> frozenset[str]:
    """What an actor reads as: anyone, itself, each of its roles, each role for its unit."""
    out = {ANYONE, f"a:{actor.id}"}
    for role in actor.roles:
        out.add(f"r:{role}")
        if actor.unit is not None:
            out.add(f"u:{role}:{actor.unit}")
    return frozenset(out)


def level_of(reader_levels: Mapping[str, int], actor: Actor) -> int:
    """The highest level any of the actor's principals holds; 0: it may not see the instance."""
    best, get = 0, reader_levels.get
    for p in principals(actor):  # a loop: a generator under max() costs twice as much
        found = get(p, 0)
        if found > best:
            best = found
    return best


@dataclass(frozen=True, slots=True)
class _Reads:
    """What a workflow's read rules and unit bindings read: data fields, params members and
    instance members (None: all of them). Only these are passed to CEL (converting a value
    costs microseconds), and only these decide an instance's readers."""

    data: tuple[str, ...]
    params: tuple[str, ...] | None
    members: tuple[str, ...] | None


_READS: dict[str, _Reads] = {}
# readers by what they depend on, per workflow: most steps leave an instance's readers as they
# were, and many instances share them
_MEMO: dict[str, dict[Any, dict[str, int]]] = {}
_MEMO_SIZE = 4096


def _reads(wf: CompiledWorkflow) -> _Reads:
    found = _READS.get(wf.hash)
    if found is None:
        exprs = [e for rule in wf.read_rules for e in (rule.when, *rule.named) if e is not None]
        exprs += [e for sources in wf.bound.values() for e in (sources or ())]
        needed: dict[str, set[str] | None] = {}
        for e in exprs:
            for name, members in e.needs.items():
                held = needed.setdefault(name, set())
                if members is None or held is None:
                    needed[name] = None
                else:
                    held |= members
        data = needed.get("data", set())
        fields = wf.definition.data if data is None else sorted(data & set(wf.definition.data))
        params, view = needed.get("params", set()), needed.get("instance", set())
        found = _READS[wf.hash] = _Reads(
            tuple(fields),
            None if params is None else tuple(sorted(params)),
            None if view is None else tuple(sorted(view)),
        )
    return found


def readers_key(wf: CompiledWorkflow, instance: Instance) -> tuple[Any, ...]:
    """What an instance's readers depend on: a step that leaves it as it was leaves them too."""
    reads = _reads(wf)
    key: tuple[Any, ...] = (instance.state, instance.unit, *map(instance.data.get, reads.data))
    members = reads.members
    if members is None or members:
        view = instance_view(instance)
        key += tuple(view[m] for m in (members if members is not None else sorted(view)))
    return key


_KEEPS: dict[tuple[str, int], bool] = {}


def keeps_readers(wf: CompiledWorkflow, t: CompiledTransition) -> bool:
    """Whether a step of ``t`` that stays in its state leaves the instance's readers as they
    were, whatever the data: the read rules and bindings read no instance member and none of
    the fields its effects set (what :func:`readers_key` holds is then unchanged)."""
    found = _KEEPS.get((wf.hash, t.index))
    if found is None:
        reads = _reads(wf)
        found = reads.members == () and not any(name in reads.data for name, _ in t.sets)
        _KEEPS[(wf.hash, t.index)] = found
    return found


def _context(wf: CompiledWorkflow, instance: Instance) -> Any:
    reads = _reads(wf)
    variables: dict[str, Any] = {"data": {k: instance.data.get(k) for k in reads.data}}
    if reads.params is None:
        variables["params"] = wf.params
    elif reads.params:
        variables["params"] = {k: wf.params.get(k) for k in reads.params}
    if reads.members is None or reads.members:
        view = instance_view(instance)
        if reads.members is not None:
            view = {m: view[m] for m in reads.members if m in view}
        variables["instance"] = view
    return activation(variables, wf.functions)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None and v != ""]
    return [] if value == "" else [str(value)]


def evaluate_bound(
    wf: CompiledWorkflow, instance: Instance, context: Any = None
) -> dict[str, list[str] | None]:
    """The units each bound role may act for on this instance, in the order named.

    None for a role bound the old way (to the instance's own unit) on an instance without one:
    such a role is not bound there. An expression that fails yields no unit.
    """
    out: dict[str, list[str] | None] = {}
    for role, sources in wf.bound.items():
        if sources is None:
            out[role] = None if instance.unit is None else [instance.unit]
            continue
        context = context if context is not None else _context(wf, instance)
        units: list[str] = []
        for expr in sources:
            try:
                found = _strings(expr.run(context))
            except Exception:
                found = []
            units += [u for u in found if u not in units]
        out[role] = units
    return out


def readers(wf: CompiledWorkflow, instance: Instance) -> dict[str, int]:
    """The reader principals of the instance as it is now, each with its highest level."""
    key: Any = readers_key(wf, instance)
    try:
        hash(key)
    except TypeError:  # a list or object field: its text stands for it
        key = repr(key)
    memo = _MEMO.setdefault(wf.hash, {})
    found = memo.get(key)
    if found is None:
        found = _readers(wf, instance)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = found
    return dict(found)


def _readers(wf: CompiledWorkflow, instance: Instance) -> dict[str, int]:
    context = _context(wf, instance)
    bound: dict[str, list[str] | None] | None = None
    out: dict[str, int] = {}

    def grant(principal: str, level: int) -> None:
        if out.get(principal, 0) < level:
            out[principal] = level

    for rule in wf.read_rules:
        if rule.states and instance.state not in rule.states:
            continue
        if instance.state in rule.not_states:
            continue
        if rule.when is not None:
            try:
                ok = rule.when.run(context)
            except Exception:
                ok = False
            if ok is not True:
                continue
        if rule.anyone:
            grant(ANYONE, rule.level)
        for role in rule.roles:
            grant(f"r:{role}", rule.level)
        if rule.units:
            bound = bound if bound is not None else evaluate_bound(wf, instance, context)
            for role in rule.units:
                for unit in bound.get(role) or ():
                    grant(f"u:{role}:{unit}", rule.level)
        for expr in rule.named:
            try:
                names = _strings(expr.run(context))
            except Exception:
                names = []
            for name in names:
                grant(f"a:{name}", rule.level)
    return out


def redact_instance(wf: CompiledWorkflow, instance: Instance, level: int) -> Instance:
    """The instance as a reader of ``level`` sees it: below ``data``, only its public fields."""
    if level >= DATA:
        return instance
    fields = wf.definition.data
    public = {k: v for k, v in instance.data.items() if k in fields and fields[k].public}
    return replace(instance, data=copy_json(public))  # a copy of the public fields alone


def redact_history(
    wf: CompiledWorkflow, rows: list[HistoryEntry], level: int
) -> list[HistoryEntry]:
    """The rows a reader of ``level`` sees: internal rows only at ``internal``; below ``data``
    each payload keeps only the public data fields (the row's hash then no longer matches:
    a redacted row is a view, never evidence)."""
    if level >= INTERNAL:
        return rows
    public = [r for r in rows if r.visibility == "public"]
    if level >= DATA:
        return public
    fields = wf.definition.data
    out: list[HistoryEntry] = []
    for r in public:
        payload = {k: v for k, v in r.payload.items() if k in fields and fields[k].public}
        out.append(replace(r, payload=payload))
    return out
