"""The compiler: a checked definition becomes one shared pytransitions machine.

This is the only module that imports ``transitions``. The machine has no models of its own and
``auto_transitions=False``; each of our transitions is one machine event (``t0``, ``t1`` ...), so
the machine checks the source state and moves a small slotted object that the runtime loads
from the store. Callers see our types and our errors, never ``MachineError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transitions import EventData, Machine, MachineError

from .access import CompiledRule
from .definition import ChildFireSpec, Definition, FieldSpec, Label, TransitionSpec
from .errors import TransitionNotAllowed
from .expressions import Compiled
from .schema_types import Validator

__all__ = [
    "CompiledChildFire",
    "CompiledTransition",
    "CompiledWarning",
    "CompiledWorkflow",
    "Cursor",
]


class Cursor:
    """What the shared machine moves: only a state."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


@dataclass(frozen=True, slots=True, eq=False)
class CompiledWarning:
    """A ``warn:`` entry ready to run: its condition, its message and its placeholders, and
    whether this deployment refuses the step instead (its mode resolved against the params)."""

    code: str
    when: Compiled
    message: Label
    refuse: bool
    message_parts: tuple[tuple[str, Compiled], ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class CompiledChildFire:
    """A ``children_fire:`` entry ready to run: which children match, and the payload."""

    spec: ChildFireSpec
    when: Compiled
    payload: tuple[tuple[str, Compiled], ...] = ()


@dataclass(slots=True, eq=False)
class CompiledTransition:
    index: int
    spec: TransitionSpec
    sources: frozenset[str]
    roles: frozenset[str]
    guard: Compiled | None
    sets: tuple[tuple[str, Compiled], ...]
    payload: Validator | None
    spawn_for_each: Compiled | None = None
    spawn_data: tuple[tuple[str, Compiled], ...] = ()
    spawn_bind: Compiled | None = None
    needs: dict[str, frozenset[str] | None] = field(default_factory=dict)
    uses_functions: bool = False
    uses_lookup: bool = False  # its guard calls lookup(id)
    message_parts: tuple[tuple[str, Compiled], ...] = ()
    children_set: tuple[tuple[str, Compiled], ...] = ()
    update_instance: Compiled | None = None
    update_set: tuple[tuple[str, Compiled], ...] = ()
    spawn_id: Compiled | None = None
    fire_on_instance: Compiled | None = None
    fire_on_payload: tuple[tuple[str, Compiled], ...] = ()
    children_fire: tuple[CompiledChildFire, ...] = ()
    warnings: tuple[CompiledWarning, ...] = ()

    @property
    def trigger(self) -> str:
        return self.spec.trigger

    @property
    def target(self) -> str:
        return self.spec.to

    @property
    def event(self) -> str:
        return f"t{self.index}"

    @property
    def by_role_alone(self) -> bool:
        """Whether, the payload unknown, the actor's role and unit alone decide it: no guard,
        no effects, no soft rules, no separation of duties."""
        return (
            self.guard is None
            and not self.sets
            and not self.warnings
            and not self.spec.not_by_triggers
        )


@dataclass(eq=False)
class CompiledWorkflow:
    """A definition ready to run: its machine, its validators, its compiled expressions."""

    definition: Definition
    params: dict[str, Any]
    transitions: list[CompiledTransition]
    data_adapter: Validator
    field_adapters: dict[str, Validator]
    functions: dict[str, Any]
    source: str = ""
    by_trigger: dict[str, list[CompiledTransition]] = field(default_factory=dict)
    by_state: dict[str, list[CompiledTransition]] = field(default_factory=dict)
    deadline_at: dict[str, Compiled] = field(default_factory=dict)
    bound: dict[str, tuple[Compiled, ...] | None] = field(default_factory=dict)
    read_rules: tuple[CompiledRule, ...] = ()
    start_guard: Compiled | None = None
    start_message_parts: tuple[tuple[str, Compiled], ...] = ()
    _machine: Any = None
    final_states: frozenset[str] = frozenset()
    public_fields: tuple[str, ...] = ()  # the data fields events carry (``public: true``)
    _schemas: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.definition
        self.final_states = d.final_states
        self.public_fields = tuple(k for k, spec in d.data.items() if spec.public)
        machine = Machine(
            model=None,
            states=list(d.states),
            initial=None,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for t in self.transitions:
            moving: list[Any] = [s for s in t.sources if s != t.target]
            if moving:
                machine.add_transition(t.event, moving, t.target)
            if t.target in t.sources:  # from its own state it stays: an internal transition,
                machine.add_transition(t.event, t.target, None)  # no exit and entry
            self.by_trigger.setdefault(t.trigger, []).append(t)
            for s in t.sources:
                self.by_state.setdefault(s, []).append(t)
        self._machine = machine

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def hash(self) -> str:
        return self.definition.content_hash

    @property
    def data_fields(self) -> dict[str, FieldSpec]:
        return self.definition.data

    def payload_schema(self, transition: CompiledTransition) -> dict[str, Any] | None:
        """The JSON Schema of a transition's payload (made once), or None if it takes none."""
        if transition.payload is None:
            return None
        found = self._schemas.get(transition.index)
        if found is None:
            found = self._schemas[transition.index] = transition.payload.adapter.json_schema()
        return found

    def move(self, cursor: Cursor, transition: CompiledTransition) -> None:
        """Move ``cursor`` along ``transition`` through the shared machine: the machine's
        transition from the cursor's state executes on it (the event's own dispatch, which adds
        a queue, callbacks and hooks this machine has none of, is left out)."""
        machine = self._machine
        event = machine.events[transition.event]
        try:
            found = event.transitions.get(cursor.state)
            if not found:
                raise MachineError(f"Can't trigger event {event.name} from state {cursor.state}!")
            data = EventData(machine.get_state(cursor.state), event, machine, cursor, (), {})
            data.transition = found[0]
            moved = found[0].execute(data)
        except MachineError as e:
            allowed = sorted({t.trigger for t in self.by_state.get(cursor.state, ())})
            raise TransitionNotAllowed(
                f"{transition.trigger!r} cannot fire from state {cursor.state!r}",
                trigger=transition.trigger,
                state=cursor.state,
                allowed=allowed,
            ) from e
        if not moved:  # pragma: no cover - the machine has no conditions of its own
            raise TransitionNotAllowed(
                f"{transition.trigger!r} did not move from {cursor.state!r}",
                trigger=transition.trigger,
                state=cursor.state,
                allowed=[],
            )
