"""A bounded walk of a workflow as it runs: what its guards, roles and timers let happen.

The walk starts instances with data made from the workflow's field types
(:mod:`.payloads`), and from each situation it reaches tries every trigger the definition
lets fire from each open instance's state (the children's too), as actors of the trigger's
roles, with each payload variant. It also waits for the earliest pending timer and ticks. Each
successful command or tick leads to a new situation; a situation is the states, data
signatures, overdue flags and pending timers of every instance in the store, and one already
seen is not walked again. The commands run through the engine on an in-memory store, every
check included: what the walk reaches, a real deployment can reach.

A refused command changes nothing, so commands are tried on one copy of the store until one
is accepted; only then is the store copied again.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from xieshang import (
    SYSTEM,
    Actor,
    CommandRefused,
    Engine,
    FixedClock,
    Forbidden,
    HistoryEntry,
    InvalidPayload,
    NotFound,
    Registry,
    TransitionNotAllowed,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.compiler import CompiledWorkflow

from .payloads import UNIT, fill_actor, variants

__all__ = ["ORG", "T0", "Move", "Walk", "actor_for", "actors_of", "walk"]

ORG = "explore"
T0 = datetime(2027, 3, 1, 1, tzinfo=UTC)  # a Monday, 09:00 in Beijing


@dataclass(frozen=True)
class Move:
    """One command the walk may send: fire ``trigger`` of an instance of ``workflow`` (or
    ``start`` it) as an actor of ``role``, with ``payload``."""

    workflow: str
    trigger: str
    role: str
    payload: dict[str, Any]


@dataclass
class Walk:
    """What a walk saw: per workflow id, the states held and the triggers fired; per
    (workflow, trigger), how the attempts ended; the moves that were accepted at least once."""

    target: str
    situations: int = 0
    attempts: int = 0
    bounded: bool = False
    reached: dict[str, set[str]] = field(default_factory=dict)
    fired: dict[str, set[str]] = field(default_factory=dict)
    timers_fired: set[tuple[str, str]] = field(default_factory=set)
    outcomes: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    accepted: list[Move] = field(default_factory=list)

    def saw(self, workflow: str, trigger: str, outcome: str) -> None:
        self.outcomes.setdefault((workflow, trigger), Counter())[outcome] += 1


def actors_of(wf: CompiledWorkflow, role: str) -> list[Actor]:
    """Two actors of ``role`` (two, so that a separation of duties can be satisfied), acting
    for the walk's unit when the role is bound to units."""
    return [actor_for(wf, role, k) for k in (1, 2)]


def actor_for(wf: CompiledWorkflow | None, role: str, k: int) -> Actor:
    """The ``k``-th (1 or 2) actor of ``role`` the walk uses."""
    unit = UNIT if wf is not None and role in wf.bound else None
    return Actor.of(f"{role}-{k}", role, org=ORG, unit=unit)


def _signature(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _signature(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", min(len(value), 2))
    if isinstance(value, str) and len(value) > 24:
        return "text"
    return value


def _situation(store: MemoryStore) -> tuple[Any, Any]:
    """Where the walk stands: the states, overdue flags and pending timers of every instance
    (the shape), and with it the signatures of their data."""
    shape = sorted(
        (i.workflow, i.state, i.overdue, i.parent_id is None) for i in store._instances.values()
    )
    timers = sorted((t.kind, t.trigger) for t in store._timers)
    data = sorted((i.workflow, i.state, _signature(i.data)) for i in store._instances.values())
    return (tuple(shape), tuple(timers)), tuple(data)


@dataclass
class _Node:
    store: MemoryStore
    clock: FixedClock
    depth: int


class _Walker:
    def __init__(self, registry: Registry, target: CompiledWorkflow, budget: int, depth: int):
        self.registry = registry
        self.target = target
        self.budget = budget
        self.depth = depth
        self.result = Walk(target.id)
        self.seen: dict[Any, set[Any]] = {}
        self.data_variants = 3
        self.queue: deque[_Node] = deque()
        self.today: date = (T0 + timedelta(hours=8)).date()
        self._variants: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def engine(self, store: MemoryStore, clock: FixedClock) -> Engine:
        return Engine(store, self.registry, clock)

    def payloads(self, wf: CompiledWorkflow, trigger: str | None) -> list[dict[str, Any]]:
        key = (wf.hash, trigger or "")
        if key not in self._variants:
            if trigger is None:
                fields = wf.definition.data
            else:
                t = next(t for t in wf.definition.transitions if t.trigger == trigger)
                fields = t.payload
            self._variants[key] = variants(fields, self.today, start=trigger is None)
        return self._variants[key]

    def record(self, before: MemoryStore | None, after: MemoryStore) -> list[HistoryEntry]:
        """Note the states held and the triggers fired that ``after`` has and ``before`` had
        not; the new history rows."""
        for i in after._instances.values():
            self.result.reached.setdefault(i.workflow, set()).add(i.state)
        new: list[HistoryEntry] = []
        for instance_id, rows in after._history.items():
            old = len(before._history.get(instance_id, ())) if before is not None else 0
            new += rows[old:]
        for row in new:
            self.result.fired.setdefault(row.workflow, set()).add(row.trigger)
        return new

    def offer(self, store: MemoryStore, clock: FixedClock, depth: int) -> None:
        """Walk on from ``store`` unless this situation was seen, or its shape was seen with
        ``data_variants`` kinds of data already (data that differs in ways no guard reads would
        otherwise multiply the walk). Every start is walked: its data decides the rest."""
        shape, data = _situation(store)
        kinds = self.seen.setdefault(shape, set())
        if data in kinds or (depth > 0 and len(kinds) >= self.data_variants):
            return
        kinds.add(data)
        self.queue.append(_Node(store, clock, depth))

    def start(self) -> None:
        wf = self.target
        roles = wf.definition.start.roles or tuple(wf.definition.roles) or ("starter",)
        for data in self.payloads(wf, None):
            for role in roles:
                store, clock = MemoryStore(), FixedClock(T0)
                actor = actors_of(wf, role)[0]
                self.result.attempts += 1
                try:
                    self.engine(store, clock).start(
                        wf.id, fill_actor(data, actor.id), actor, unit=UNIT
                    )
                except CommandRefused as e:
                    self.result.saw(wf.id, "start", _outcome(e))
                    continue
                self.result.saw(wf.id, "start", "fired")
                self.result.accepted.append(Move(wf.id, "start", role, data))
                self.record(None, store)
                self.offer(store, clock, 0)
                break

    def expand(self, node: _Node) -> None:
        work = node.store.fork()
        clock = FixedClock(node.clock.now())
        for instance in sorted(node.store._instances.values(), key=lambda i: i.id):
            if instance.final:
                continue
            wf = self.registry.by_hash(instance.definition_hash)
            if wf is None:
                continue
            for t in wf.definition.transitions:
                if instance.state not in t.from_ or set(t.roles) <= {"system"}:
                    continue
                for payload in self.payloads(wf, t.trigger):
                    if self._try(work, clock, instance.id, wf, t.trigger, t.roles, payload):
                        self.record(node.store, work)
                        self.offer(work, clock, node.depth + 1)
                        work, clock = node.store.fork(), FixedClock(node.clock.now())
        self._wait(node)

    def _try(
        self,
        store: MemoryStore,
        clock: FixedClock,
        instance_id: str,
        wf: CompiledWorkflow,
        trigger: str,
        roles: Iterable[str],
        payload: dict[str, Any],
    ) -> bool:
        """Send one command as each actor of ``roles`` in turn until one is accepted or the
        refusal does not depend on the actor; whether it was accepted."""
        engine = self.engine(store, clock)
        seen: list[str] = []
        for actor in [a for r in sorted(roles) if r != "system" for a in actors_of(wf, r)]:
            self.result.attempts += 1
            try:
                engine.fire(
                    instance_id, trigger, actor, fill_actor(payload, actor.id), reason="walk"
                )
            except Forbidden as e:
                seen.append(_outcome(e))
                continue
            except NotFound:
                seen.append("unreadable")  # this actor may not read the instance: the next may
                continue
            except CommandRefused as e:
                seen.append(_outcome(e))
                if seen[-1] == "guard":
                    continue  # a guard may read who acts: the next actor
                break
            self.result.saw(wf.id, trigger, "fired")
            self.result.accepted.append(Move(wf.id, trigger, min(actor.roles), payload))
            return True
        # the refusal of the actor that got furthest through the checks
        self.result.saw(wf.id, trigger, min(seen or ["no-role"], key=_FURTHEST.index))
        return False

    def _wait(self, node: _Node) -> None:
        """Move the clock to the earliest pending timer and tick."""
        if not node.store._timers:
            return
        due = min(t.due_at for t in node.store._timers)
        store = node.store.fork()
        clock = FixedClock(max(due, node.clock.now()) + timedelta(minutes=1))
        self.engine(store, clock).tick(clock.now())
        for row in self.record(node.store, store):
            if row.actor.get("id") == SYSTEM.id:
                self.result.timers_fired.add((row.workflow, row.trigger))
        self.offer(store, clock, node.depth + 1)

    def run(self) -> Walk:
        self.start()
        while self.queue:
            if self.result.situations >= self.budget:
                self.result.bounded = True
                break
            node = self.queue.popleft()
            self.result.situations += 1
            if node.depth < self.depth:
                self.expand(node)
            elif any(not i.final for i in node.store._instances.values()):
                self.result.bounded = True  # an open instance was left unwalked
        return self.result


_FURTHEST = ("guard", "payload", "refused", "state", "not-by", "no-role", "unreadable")


def _outcome(error: CommandRefused) -> str:
    if isinstance(error, Forbidden):
        return "not-by" if "not_by" in error.details else "no-role"
    if isinstance(error, TransitionNotAllowed):
        return "guard" if error.guard else "state"
    if isinstance(error, InvalidPayload):
        return "payload"
    return "refused"


def walk(registry: Registry, workflow: str, *, budget: int = 400, depth: int = 40) -> Walk:
    """Walk ``workflow`` of ``registry`` (its newest version) for at most ``budget``
    situations of at most ``depth`` steps."""
    return _Walker(registry, registry.get(workflow), budget, depth).run()
