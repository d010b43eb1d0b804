"""Timers: a tick fires every timer that is due, each exactly once, through the command path.

A ``timer`` fires its trigger as the system actor; a ``deadline`` marks its instance overdue;
a ``reminder`` writes one internal ``remind`` history row (state and data unchanged) and emits
its event. Each timer is consumed in the transaction of its effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .commands import step
from .errors import CommandRefused, ConcurrencyConflict, NotFound, TransitionNotAllowed
from .records import SYSTEM, TimerRecord
from .rows import OVERDUE
from .steps import Command, overdue_step, reminder_step

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["TickReport", "run_timer", "tick"]


@dataclass
class TickReport:
    """What one tick did: timers fired, found stale, or lost to another worker."""

    fired: int = 0
    stale: int = 0
    conflicts: int = 0
    refusals: list[str] = field(default_factory=list)


def tick(engine: Engine, now: datetime, limit: int) -> TickReport:
    """Fire the timers due up to ``now`` (see :meth:`Engine.tick`)."""
    report = TickReport()
    for timer in engine.store.due_timers(now, limit):
        try:
            run_timer(engine, timer, now)
            report.fired += 1
        except ConcurrencyConflict:
            report.conflicts += 1
        except (CommandRefused, NotFound) as e:
            engine.store.delete_timer(timer)
            report.stale += 1
            report.refusals.append(f"{timer.instance_id} {timer.trigger}: {e.message}")
    return report


def run_timer(engine: Engine, timer: TimerRecord, now: datetime) -> None:
    """Do what one timer does, consuming it in the same commit.

    Raises:
        CommandRefused: the timer is stale (its trigger is refused, its deadline moved).
        NotFound: its instance is gone.
        ConcurrencyConflict: another writer moved the instance first.
    """
    instance = engine._load(timer.instance_id, None, fresh=True)
    wf = engine._workflow_of(instance)
    if timer.kind == "timer":
        commit, _ = step(engine, wf, instance, Command(timer.trigger, SYSTEM, {}, now))
    elif timer.kind == "deadline":
        if instance.overdue or instance.due_at is None or instance.due_at > now:
            raise TransitionNotAllowed(
                "the deadline moved or was already marked",
                trigger=OVERDUE,
                state=instance.state,
                allowed=[],
            )
        commit, _ = overdue_step(engine, wf, instance, now)
    else:
        commit, _ = reminder_step(engine, wf, instance, timer.due_at, now)
    commit.consume_timers.append(timer)
    engine.store.apply(commit)
