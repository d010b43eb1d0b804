"""What a step writes: the new instance row, its history row, its events and timers, as a Commit.

The kinds of step built here: a creation, a transition that was checked
(:mod:`xieshang.checks`), the overdue mark of a deadline that passed, a reminder sent before a
deadline, and the update of an instance's data by another instance's step (a parent's
``children_set``, an ``update:``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import access
from .compiler import CompiledTransition, CompiledWorkflow, Cursor
from .deadlines import due, timers_for
from .duties import records_for
from .events import events_for, reminder_event
from .records import SYSTEM, Actor, Commit, Instance, TimerRecord, copy_json, iso
from .rows import OVERDUE, REMIND, START, history_row

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = [
    "Command",
    "Step",
    "absorb",
    "created",
    "data_update",
    "moved",
    "overdue_step",
    "reminder_payload",
    "reminder_step",
]


# not frozen, for the cost of building it on every step (see xieshang.records.HistoryEntry)
@dataclass(slots=True, unsafe_hash=True)
class Command:
    """What was asked of an instance: a trigger, by whom, with what, and when."""

    trigger: str
    actor: Actor
    payload: Mapping[str, Any]
    now: datetime
    reason: str | None = None
    command_id: str | None = None


# not frozen, for the cost of building it on every step (see xieshang.records.HistoryEntry)
@dataclass(slots=True, unsafe_hash=True)
class Step:
    """A command that passed the checks of one transition: the role it acts in, the payload
    as validated, the instance data its effects give and the warnings its soft rules raised
    (each ``{code, message}``)."""

    wf: CompiledWorkflow
    instance: Instance
    t: CompiledTransition
    command: Command
    role: str
    values: dict[str, Any]
    new_data: dict[str, Any]
    warnings: tuple[dict[str, str], ...] = ()


def moved(engine: Engine, step: Step) -> tuple[Commit, Instance]:
    """The commit of a checked transition (without what it does to children)."""
    wf, instance, t, now = step.wf, step.instance, step.t, step.command.now
    cursor = Cursor(instance.state)
    wf.move(cursor, t)
    moving = cursor.state != instance.state
    new = Instance(
        instance.id,
        instance.workflow,
        instance.workflow_version,
        instance.definition_hash,
        instance.org,
        cursor.state,
        step.new_data,
        instance.version + 1,
        instance.created_at,
        now,
        now if moving else instance.entered_at,
        cursor.state in wf.final_states,
        instance.due_at,
        False if moving else instance.overdue,
        instance.parent_id,
        instance.unit,
        children_version=instance.children_version,
        due_basis=instance.due_basis,
    )
    if moving or cursor.state in wf.deadline_at:
        new.due_at, new.due_basis = due(engine, wf, new)
    reschedule = moving or new.due_at != instance.due_at
    if reschedule and not moving and new.overdue and (new.due_at is None or new.due_at > now):
        new.overdue = False  # the deadline moved past now (an approved extension)
    entry = history_row(
        instance,
        new,
        t.trigger,
        step.command.actor,
        step.role,
        step.values,
        now=now,
        recorded_at=engine.clock.now(),
        reason=step.command.reason,
        visibility=t.spec.visibility,
        command_id=step.command.command_id,
        warnings=[dict(w) for w in step.warnings],
    )
    commit = Commit(
        updates=[(new, instance.version)],
        history=[entry],
        events=events_for(wf, new, entry, t, deployment=engine.deployment),
    )
    if engine.duties is not None:
        commit.duties = records_for(engine.duties, new.org, entry, new.data)
    if reschedule:
        commit.clear_timers.append(new.id)
        commit.timers.extend(timers_for(engine, wf, new))
    judged = moving or not access.keeps_readers(wf, t)  # else they cannot have changed
    if judged and access.readers_key(wf, new) != access.readers_key(wf, instance):
        now_readers = access.readers(wf, new)
        if now_readers != access.readers(wf, instance):
            commit.readers[new.id] = now_readers
    return commit, new


def created(
    engine: Engine,
    commit: Commit,
    wf: CompiledWorkflow,
    values: dict[str, Any],
    actor: Actor,
    role: str,
    org: str,
    now: datetime,
    *,
    parent_id: str | None = None,
    unit: str | None = None,
    command_id: str | None = None,
    instance_id: str | None = None,
) -> Instance:
    """Add a new instance to ``commit``: its row, its creation as history row 1, its
    events and the timers of its initial state. Its id is ``instance_id`` or a new one."""
    instance = Instance(
        id=instance_id or engine._ids(),
        workflow=wf.id,
        workflow_version=wf.definition.version,
        definition_hash=wf.hash,
        org=org,
        state=wf.definition.initial_state,
        data=values,
        version=1,
        created_at=now,
        updated_at=now,
        entered_at=now,
        parent_id=parent_id,
        unit=unit,
    )
    instance.due_at, instance.due_basis = due(engine, wf, instance)
    entry = history_row(
        None,
        instance,
        START,
        # an actor of no org (the system) starts for ``org``: the row records it, so a replay
        # knows the instance's org from its history
        actor if actor.org is not None else replace(actor, org=org),
        role,
        copy_json(values),
        now=now,
        recorded_at=engine.clock.now(),
        command_id=command_id,
    )
    commit.inserts.append(instance)
    commit.history.append(entry)
    commit.events += events_for(wf, instance, entry, None, deployment=engine.deployment)
    commit.timers += timers_for(engine, wf, instance)
    commit.readers[instance.id] = access.readers(wf, instance)
    if engine.duties is not None:
        commit.duties += records_for(engine.duties, org, entry, instance.data)
    return instance


def overdue_step(
    engine: Engine, wf: CompiledWorkflow, instance: Instance, now: datetime
) -> tuple[Commit, Instance]:
    """The commit that marks an instance overdue: its deadline passed in this state visit."""
    new = instance.copy()
    new.version += 1
    new.overdue = True
    new.updated_at = now
    payload = {"due_at": iso(instance.due_at) if instance.due_at else None}
    entry = history_row(
        instance, new, OVERDUE, SYSTEM, "system", payload, now=now, recorded_at=engine.clock.now()
    )
    commit = Commit(
        updates=[(new, instance.version)],
        history=[entry],
        events=events_for(
            wf, new, entry, None, deployment=engine.deployment, names=["instance.overdue"]
        ),
    )
    return commit, new


def absorb(commit: Commit, other: Commit) -> None:
    """Add what ``other`` writes (a step on another instance) to ``commit``."""
    commit.updates += other.updates
    commit.history += other.history
    commit.events += other.events
    commit.timers += other.timers
    commit.clear_timers += other.clear_timers
    commit.inserts += other.inserts
    commit.consume_timers += other.consume_timers
    commit.touch += other.touch
    commit.reseal += other.reseal
    commit.readers.update(other.readers)
    commit.duties += other.duties


def reminder_payload(instance: Instance, remind_at: datetime) -> dict[str, Any]:
    """What a ``remind`` row records: the deadline reminded of and when the reminder was due."""
    return {
        "due_at": iso(instance.due_at) if instance.due_at else None,
        "remind_at": iso(remind_at),
    }


def reminder_step(
    engine: Engine, wf: CompiledWorkflow, instance: Instance, remind_at: datetime, now: datetime
) -> tuple[Commit, Instance]:
    """The commit of a reminder sent: one internal ``remind`` history row by the system (the
    state, data and deadline unchanged, the version +1) and its ``instance.reminder`` event.

    ``remind_at`` is when the reminder was due (the timer's moment, which names the event)."""
    new = instance.copy()
    new.version += 1
    new.updated_at = now
    entry = history_row(
        instance,
        new,
        REMIND,
        SYSTEM,
        "system",
        reminder_payload(instance, remind_at),
        now=now,
        recorded_at=engine.clock.now(),
        visibility="internal",
    )
    timer = TimerRecord(new.id, "reminder", REMIND, remind_at, new.version, new.org)
    events = reminder_event(wf, new, timer, now, deployment=engine.deployment)
    return Commit(updates=[(new, instance.version)], history=[entry], events=events), new


def data_update(
    engine: Engine,
    commit: Commit,
    wf: CompiledWorkflow,
    instance: Instance,
    changed: Mapping[str, Any],
    step: Step,
    trigger: str,
    payload: dict[str, Any],
) -> None:
    """Add to ``commit`` the update of ``instance``'s data by another instance's ``step``: the
    ``changed`` fields (None unsets one), one in-place history row named ``trigger``, its
    deadline counted again and its readers rewritten when they change."""
    actor, now = step.command.actor, step.command.now
    updated = instance.copy()
    updated.version += 1
    updated.updated_at = now
    for name, value in changed.items():
        if value is None:
            updated.data.pop(name, None)
        else:
            updated.data[name] = value
    if instance.state in wf.deadline_at:
        updated.due_at, updated.due_basis = due(engine, wf, updated)
        if updated.overdue and updated.due_at is not None and updated.due_at > now:
            updated.overdue = False
    entry = history_row(
        instance,
        updated,
        trigger,
        actor,
        step.role,
        payload,
        now=now,
        recorded_at=engine.clock.now(),
    )
    if access.readers_key(wf, updated) != access.readers_key(wf, instance):
        now_readers = access.readers(wf, updated)
        if now_readers != access.readers(wf, instance):
            commit.readers[instance.id] = now_readers
    moved_due = (updated.due_at, updated.overdue) != (instance.due_at, instance.overdue)
    commit.updates.append((updated, instance.version))
    commit.history.append(entry)
    commit.events += events_for(
        wf,
        updated,
        entry,
        None,
        deployment=engine.deployment,
        names=["instance.deadline_changed" if moved_due else "instance.updated"],
        extra={"due_at_before": iso(instance.due_at) if instance.due_at else None}
        if moved_due
        else None,
    )
    if moved_due:
        commit.clear_timers.append(instance.id)
        commit.timers.extend(timers_for(engine, wf, updated))
