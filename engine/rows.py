"""History rows: the one way a step's audited row is built, and what it records of deadlines.

Every row is built by :func:`history_row` from the instance before and after the step: a
creation, a transition, an overdue mark, a reminder sent, a parent's update of a child, another
instance's update of this one, a calendar reconcile.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .records import Actor, HistoryEntry, Instance, iso, new_seal
from .schedules import provisional_years

__all__ = [
    "LINKED_UPDATE",
    "OVERDUE",
    "PARENT_UPDATE",
    "REMIND",
    "START",
    "deadline_set",
    "history_row",
    "recorded_deadline",
]

START = "start"
OVERDUE = "overdue"
PARENT_UPDATE = "parent_update"
LINKED_UPDATE = "linked_update"
REMIND = "remind"  # a reminder before a deadline was sent: an internal row, state unchanged


def history_row(
    before: Instance | None,
    after: Instance,
    trigger: str,
    actor: Actor,
    role: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    recorded_at: datetime,
    reason: str | None = None,
    visibility: str = "public",
    command_id: str | None = None,
    warnings: list[dict[str, Any]] | None = None,
) -> HistoryEntry:
    """The sealed row of the step from ``before`` (None for a creation) to ``after``, chained
    to the row before; ``after.head_hash`` becomes its hash.

    Args:
        now: when the step happened (``occurred_at``).
        recorded_at: when it is written, by the engine's clock.
        warnings: the soft checks the step passed with a warning (code and message).
    """
    entry = HistoryEntry(
        instance_id=after.id,
        seq=after.version,
        workflow=after.workflow,
        workflow_version=after.workflow_version,
        definition_hash=after.definition_hash,
        trigger=trigger,
        source=before.state if before is not None else None,
        target=after.state,
        actor=actor.to_dict(),
        role=role,
        reason=reason,
        payload=payload,
        visibility=visibility,
        occurred_at=iso(now),
        recorded_at=iso(recorded_at),
        command_id=command_id,
        prev_hash=before.head_hash if before is not None else "",
        parent_id=after.parent_id,
        deadline=deadline_set(after, before),
        warnings=warnings or None,
        seal=new_seal(payload),
        unit=after.unit if before is None else None,
    ).sealed()
    after.head_hash = entry.hash
    return entry


def deadline_set(new: Instance, old: Instance | None) -> dict[str, Any] | None:
    """What a history row records of the deadline its step set: the date, the calendar basis it
    was counted on and the provisional years in it; None when the step left it as it was."""
    if new.due_at is None:
        return None
    if old is not None and (old.due_at, old.due_basis) == (new.due_at, new.due_basis):
        return None
    out: dict[str, Any] = {"due_at": iso(new.due_at)}
    if new.due_basis is not None:
        out["basis"] = new.due_basis
        out["provisional"] = provisional_years(new.due_basis)
    return out


def recorded_deadline(instance: Instance, row: HistoryEntry) -> None:
    """In a replay, the deadline is the one the row recorded (counted on the calendar then)."""
    if row.deadline is not None and "due_at" in row.deadline:
        instance.due_at = datetime.fromisoformat(row.deadline["due_at"])
        instance.due_basis = row.deadline.get("basis")
