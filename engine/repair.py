"""Repair: put an instance in a state by hand, for what no transition and no migration covers.

``set_state`` is one internal, audited row (:data:`SET_STATE`) by an ``admin`` with a reason: the
instance enters the named state of the definition it runs as if it had just arrived there (its
entry time now, the overdue mark lifted, the state's deadline and timers set afresh); its data
stay. The row records the deadline it set, so a replay gives the same instance without counting
again, and checks that an ``admin`` wrote it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import access
from .compiler import CompiledWorkflow
from .deadlines import due, timers_for
from .errors import InvalidPayload, TransitionNotAllowed
from .records import Actor, Commit, HistoryEntry, Instance, iso
from .rows import history_row
from .suspension import ADMIN_ROLE, refuse_while_suspended, require_admin, require_reason

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = [
    "SET_STATE",
    "apply_recorded_due",
    "apply_set_state",
    "entered",
    "recorded_due",
    "set_state",
]

SET_STATE = "set_state"


def set_state(
    engine: Engine, instance_id: str, state: str, actor: Actor, reason: str | None
) -> Instance:
    """Put an instance in ``state`` (see the module).

    Raises:
        Forbidden: the actor is not an ``admin``.
        InvalidPayload: no reason, or ``state`` is not a state of the instance's definition
            (naming its states).
        NotFound: no such instance (or another org's).
        TransitionNotAllowed: the instance is in that state already, or suspended.
    """
    require_admin(actor, SET_STATE)
    instance = engine._load(instance_id, actor, fresh=True)
    why = require_reason(reason, SET_STATE)
    refuse_while_suspended(instance, SET_STATE)
    wf = engine._workflow_of(instance)
    states = list(wf.definition.states)
    if state not in wf.definition.states:
        raise InvalidPayload(
            f"command {SET_STATE!r} on {instance_id}",
            [
                {
                    "field": "state",
                    "error": f"not a state of {wf.id}@{wf.definition.version}, which this "
                    f"instance runs; its states: {', '.join(states)}",
                    "got": repr(state),
                }
            ],
        )
    if state == instance.state:
        raise TransitionNotAllowed(
            f"instance {instance_id} is in state {state!r} already; other states: "
            f"{', '.join(s for s in states if s != state)}",
            trigger=SET_STATE,
            state=instance.state,
            allowed=[s for s in states if s != state],
        )
    now = engine.clock.now()
    new = entered(instance, wf, state, now)
    new.due_at, new.due_basis = due(engine, wf, new)
    record = recorded_due(new)
    entry = history_row(
        instance,
        new,
        SET_STATE,
        actor,
        ADMIN_ROLE,
        record,
        now=now,
        recorded_at=engine.clock.now(),
        reason=why,
        visibility="internal",
    )
    commit = Commit(
        updates=[(new, instance.version)],
        history=[entry],
        clear_timers=[instance_id],
        timers=timers_for(engine, wf, new),
    )
    if access.readers_key(wf, new) != access.readers_key(wf, instance):
        commit.readers[new.id] = access.readers(wf, new)
    engine.store.apply(commit)
    return new


def entered(instance: Instance, wf: CompiledWorkflow, state: str, now: datetime) -> Instance:
    """``instance`` one version on, just entered ``state`` of ``wf`` (no deadline yet)."""
    new = instance.copy()
    new.version += 1
    new.updated_at = now
    new.state = state
    new.entered_at = now
    new.final = state in wf.final_states
    new.overdue = False
    new.due_at, new.due_basis = None, None
    return new


def apply_set_state(
    wf: CompiledWorkflow, instance: Instance, row: HistoryEntry, now: datetime
) -> Instance:
    """In a replay: the instance after a ``set_state`` row, its deadline the one recorded.

    Raises:
        TransitionNotAllowed: the row names a state its definition does not have.
    """
    if row.target not in wf.definition.states or row.source != instance.state:
        raise TransitionNotAllowed(
            f"replay of row {row.seq}: {SET_STATE} from {row.source!r} to {row.target!r}, but "
            f"the instance is in {instance.state!r} and its states are "
            f"{', '.join(wf.definition.states)}",
            trigger=SET_STATE,
            state=instance.state,
            allowed=list(wf.definition.states),
        )
    new = entered(instance, wf, row.target, now)
    apply_recorded_due(new, row.payload)
    return new


def recorded_due(instance: Instance) -> dict[str, Any]:
    """What a repair or migration row records of the deadline it set (None: no deadline)."""
    return {
        "due_at": iso(instance.due_at) if instance.due_at else None,
        "due_basis": instance.due_basis,
    }


def apply_recorded_due(instance: Instance, record: dict[str, Any]) -> None:
    """In a replay: the deadline a row's :func:`recorded_due` holds."""
    at = record.get("due_at")
    instance.due_at = datetime.fromisoformat(str(at)) if at else None
    basis = record.get("due_basis")
    instance.due_basis = str(basis) if at and basis is not None else None
