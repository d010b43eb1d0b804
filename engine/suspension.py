"""Suspension: an instance held still by an ``admin``, its clock stopped until it is resumed.

``suspend`` writes one internal, audited row (:data:`SUSPEND`, with a reason) that records the
pending timers it takes away; while the instance is suspended every command on it is refused,
naming the suspension and that ``resume`` is what is allowed, and no timer fires. ``resume``
writes one row (:data:`RESUME`) that gives the timers back, each moved by the time the instance
was suspended, and moves the deadline by the same time: the time limit stops while the instance
is held (an instance already marked overdue keeps its mark and its date). Both rows announce no
event; a replay applies them as recorded and checks that an ``admin`` wrote them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import Forbidden, InvalidPayload, NotFound, TransitionNotAllowed
from .records import Actor, Commit, HistoryEntry, Instance, TimerRecord, iso
from .redaction import REDACTOR_ROLE
from .rows import history_row, recorded_deadline

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = [
    "ADMIN_ROLE",
    "RESUME",
    "SUSPEND",
    "apply_resume",
    "apply_suspend",
    "judge_admin_row",
    "refuse_while_suspended",
    "require_admin",
    "require_reason",
    "resume",
    "suspend",
    "suspended_refusal",
]

SUSPEND = "suspend"
RESUME = "resume"
ADMIN_ROLE = REDACTOR_ROLE  # the one role that suspends, resumes, migrates and sets states


def suspended_refusal(instance: Instance, trigger: str) -> TransitionNotAllowed:
    """The refusal of ``trigger`` on a suspended instance: what holds it, and what is allowed."""
    since = iso(instance.suspended_at) if instance.suspended_at is not None else "?"
    return TransitionNotAllowed(
        f"{trigger!r} refused: instance {instance.id} is suspended since {since}; nothing "
        f"may act on it until an admin resumes it (allowed: {RESUME})",
        trigger=trigger,
        state=instance.state,
        allowed=[RESUME],
        suspended_at=since,
    )


def require_admin(actor: Actor, trigger: str) -> None:
    """Raises Forbidden unless ``actor`` holds the ``admin`` role."""
    if ADMIN_ROLE not in actor.roles:
        raise Forbidden(
            f"actor {actor.id!r} with roles {sorted(actor.roles)} may not {trigger}; allowed "
            f"roles: {ADMIN_ROLE}",
            trigger=trigger,
            actor=actor.id,
            allowed=[ADMIN_ROLE],
        )


def require_reason(reason: str | None, trigger: str) -> str:
    """The reason, stripped; InvalidPayload when there is none."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidPayload(f"command {trigger!r}", [{"field": "reason", "error": "required"}])
    return reason.strip()


def judge_admin_row(row: HistoryEntry) -> None:
    """In a replay: a row only an admin writes must have been written as one."""
    actor = Actor.from_dict(row.actor)
    if row.role != ADMIN_ROLE or ADMIN_ROLE not in actor.roles:
        raise Forbidden(
            f"row {row.seq}: {row.trigger!r} by {actor.id!r} as {row.role!r}; only "
            f"{ADMIN_ROLE!r} may {row.trigger}",
            trigger=row.trigger,
            actor=actor.id,
            allowed=[ADMIN_ROLE],
        )


def suspend(engine: Engine, instance_id: str, actor: Actor, reason: str | None) -> Instance:
    """Suspend an open instance (see the module).

    Raises:
        Forbidden: the actor is not an ``admin``.
        InvalidPayload: no reason.
        NotFound: no such instance (or another org's).
        TransitionNotAllowed: the instance is final, or suspended already.
    """
    require_admin(actor, SUSPEND)
    instance = engine._load(instance_id, actor, fresh=True)
    why = require_reason(reason, SUSPEND)
    if instance.suspended_at is not None:
        raise TransitionNotAllowed(
            f"instance {instance_id} is suspended already (since "
            f"{iso(instance.suspended_at)}); allowed: {RESUME}",
            trigger=SUSPEND,
            state=instance.state,
            allowed=[RESUME],
        )
    if instance.final:
        raise TransitionNotAllowed(
            f"instance {instance_id} is final (state {instance.state!r}): nothing runs that "
            "could be suspended",
            trigger=SUSPEND,
            state=instance.state,
            allowed=[],
        )
    now = engine.clock.now()
    held = engine.store.timers_of(instance_id)
    record = {"timers": [_timer_record(t) for t in held]}
    new = apply_suspend(instance, now)
    entry = _row(engine, instance, new, SUSPEND, actor, record, why, now)
    engine.store.apply(
        Commit(updates=[(new, instance.version)], history=[entry], clear_timers=[instance_id])
    )
    return new


def resume(engine: Engine, instance_id: str, actor: Actor, reason: str | None) -> Instance:
    """Resume a suspended instance, its deadline and timers moved by the time it was held.

    Raises:
        Forbidden: the actor is not an ``admin``.
        InvalidPayload: no reason.
        NotFound: no such instance (or another org's).
        TransitionNotAllowed: the instance is not suspended.
    """
    require_admin(actor, RESUME)
    instance = engine._load(instance_id, actor, fresh=True)
    why = require_reason(reason, RESUME)
    if instance.suspended_at is None:
        raise TransitionNotAllowed(
            f"instance {instance_id} is not suspended: there is nothing to resume (allowed: "
            f"{SUSPEND})",
            trigger=RESUME,
            state=instance.state,
            allowed=[SUSPEND],
        )
    rows = engine.store.history(instance_id)
    held_row = next((r for r in reversed(rows) if r.trigger == SUSPEND), None)
    if held_row is None:
        raise NotFound("suspend row of instance", instance_id)
    now = engine.clock.now()
    held = max(now - instance.suspended_at, timedelta(0))  # a clock set back holds nothing
    record = {"suspended_at": iso(instance.suspended_at), "held_seconds": held.total_seconds()}
    new = apply_resume(instance, record, now)
    entry = _row(engine, instance, new, RESUME, actor, record, why, now)
    timers = [
        TimerRecord(
            instance_id,
            str(t["kind"]),
            str(t["trigger"]),
            datetime.fromisoformat(str(t["due_at"])) + held,
            new.version,
            instance.org,
            t.get("basis"),
        )
        for t in held_row.payload.get("timers", ())
    ]
    engine.store.apply(
        Commit(
            updates=[(new, instance.version)],
            history=[entry],
            clear_timers=[instance_id],
            timers=timers,
        )
    )
    return new


def apply_suspend(instance: Instance, now: datetime) -> Instance:
    """The instance after a suspend row (also how a replay applies one)."""
    new = instance.copy()
    new.version += 1
    new.updated_at = now
    new.suspended_at = now
    return new


def apply_resume(
    instance: Instance, record: dict[str, Any], now: datetime, row: HistoryEntry | None = None
) -> Instance:
    """The instance after a resume row: running again, its deadline moved by the time held
    unless it is overdue already. A replay passes the ``row``, whose recorded deadline wins."""
    new = instance.copy()
    new.version += 1
    new.updated_at = now
    new.suspended_at = None
    if row is not None:
        recorded_deadline(new, row)
    elif new.due_at is not None and not new.overdue:
        new.due_at += timedelta(seconds=float(record["held_seconds"]))
    return new


def _timer_record(t: TimerRecord) -> dict[str, Any]:
    return {"kind": t.kind, "trigger": t.trigger, "due_at": iso(t.due_at), "basis": t.basis}


def _row(
    engine: Engine,
    before: Instance,
    after: Instance,
    trigger: str,
    actor: Actor,
    payload: dict[str, Any],
    reason: str,
    now: datetime,
) -> HistoryEntry:
    return history_row(
        before,
        after,
        trigger,
        actor,
        ADMIN_ROLE,
        payload,
        now=now,
        recorded_at=engine.clock.now(),
        reason=reason,
        visibility="internal",
    )


def refuse_while_suspended(instance: Instance, trigger: str) -> None:
    """Raises the suspension's refusal when ``instance`` is suspended."""
    if instance.suspended_at is not None:
        raise suspended_refusal(instance, trigger)
