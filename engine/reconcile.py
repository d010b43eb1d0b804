"""Calendar reconcile: move the pending deadlines and timers counted on calendar data that changed.

A deadline counted over a year that had only provisional data (or whose file entry was since
corrected) records that basis (:mod:`xieshang.schedules`). When better data arrives, each such
open instance gets one audited history row (``calendar_reconcile``, by the system actor) naming
the old date, the new date and the source, one ``instance.deadline_changed`` event, and its
pending timers recomputed. What already fired (an overdue mark, a sent reminder) stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import deadlines
from .calendar import CHINA_TZ, before, deadline
from .compiler import CompiledWorkflow
from .context import calendar_of
from .deadlines import duration
from .errors import ConcurrencyConflict
from .events import events_for
from .records import SYSTEM, Commit, Instance, TimerRecord, iso
from .rows import history_row
from .schedules import CalendarChain, provisional_years, read_basis

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["RECONCILE", "ReconcileReport", "reconcile"]

RECONCILE = "calendar_reconcile"
_RETRIES = 5


@dataclass
class ReconcileReport:
    """What one reconcile did: one entry per instance whose deadline or timers moved."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"changes": self.changes, "conflicts": self.conflicts, "dry_run": self.dry_run}


def _day(moment: datetime | None) -> str | None:
    """A deadline's last day, as people say it: the day before the midnight it falls at."""
    if moment is None:
        return None
    return (moment - timedelta(microseconds=1)).astimezone(CHINA_TZ).date().isoformat()


def _stale(chain: CalendarChain, basis: str | None) -> bool:
    return bool(basis) and bool(chain.changed(basis or ""))


def reconcile(
    engine: Engine, now: datetime | None = None, *, dry_run: bool = False
) -> ReconcileReport:
    """Recompute every pending deadline and timer whose calendar basis has changed.

    Args:
        engine: the engine whose store and calendar to use.
        now: the time the rows are written at (the engine's clock by default).
        dry_run: report what would move and write nothing.
    """
    now = now or engine.clock.now()
    report = ReconcileReport(dry_run=dry_run)
    for instance_id in engine.store.calendar_dependent():
        for _ in range(_RETRIES):
            instance = engine.store.load(instance_id, fresh=True)
            if instance is None or instance.final:
                break
            wf = engine._workflow_of(instance)
            planned = _plan(engine, wf, instance, engine.store.timers_of(instance_id), now)
            if planned is None:
                break
            commit, change = planned
            if dry_run:
                report.changes.append(change)
                break
            try:
                engine.store.apply(commit)
            except ConcurrencyConflict:
                report.conflicts += 1
                continue
            report.changes.append(change)
            break
    return report


def _plan(
    engine: Engine,
    wf: CompiledWorkflow,
    instance: Instance,
    timers: list[TimerRecord],
    now: datetime,
) -> tuple[Commit, dict[str, Any]] | None:
    chain = engine.calendar
    due_stale = not instance.overdue and _stale(chain, instance.due_basis)
    if not due_stale and not any(_stale(chain, t.basis) for t in timers):
        return None
    new = instance.copy()
    new.version += 1
    new.updated_at = now
    if due_stale:
        new.due_at, new.due_basis = deadlines.due(engine, wf, new)
    cal = calendar_of(engine, wf)
    moved_timers: list[dict[str, Any]] = []
    kept: list[TimerRecord] = []
    for t in timers:
        due, basis = t.due_at, t.basis
        if t.kind == "deadline" and new.due_at is not None:
            due, basis = new.due_at, new.due_basis
        elif t.kind == "reminder" and new.due_at is not None:
            spec = wf.definition.states[instance.state].deadline
            if spec is not None and spec.remind_before is not None:
                due = before(cal, new.due_at, duration(wf, spec.remind_before))
                basis = new.due_basis
        elif t.kind == "timer" and _stale(chain, t.basis):
            for spec_timer in wf.definition.timers:
                if spec_timer.in_ == instance.state and spec_timer.fire == t.trigger:
                    due, basis = deadline(
                        cal,
                        instance.entered_at,
                        duration(wf, spec_timer.after),
                        roll=spec_timer.roll == "next_workday",
                    )
                    break
        if due != t.due_at:
            moved_timers.append(
                {"kind": t.kind, "trigger": t.trigger, "from": iso(t.due_at), "to": iso(due)}
            )
        kept.append(TimerRecord(t.instance_id, t.kind, t.trigger, due, new.version, t.org, basis))
    years = sorted({y for b in [new.due_basis, *(t.basis for t in kept)] for y, _ in read_basis(b)})
    sources = {str(y): chain.schedule(y).source for y in years}
    old_day, new_day = _day(instance.due_at), _day(new.due_at)
    where = "；".join(f"{y}年：{sources[str(y)]}" for y in years)
    if old_day != new_day:
        reason = (
            f"节假日安排更新，截止日期由 {old_day} 改为 {new_day}（依据 {where}）"
            f" / holiday schedule updated: due date moved from {old_day} to {new_day}"
        )
    else:
        reason = (
            f"节假日安排更新，截止日期 {new_day or '无'} 不变，计时器已重算（依据 {where}）"
            f" / holiday schedule updated: due date {new_day or 'none'} stands, timers recounted"
        )
    payload: dict[str, Any] = {
        "due_at": {
            "from": iso(instance.due_at) if instance.due_at else None,
            "to": iso(new.due_at) if new.due_at else None,
        },
        "timers": moved_timers,
        "sources": sources,
    }
    entry = history_row(
        instance,
        new,
        RECONCILE,
        SYSTEM,
        "system",
        payload,
        now=now,
        recorded_at=engine.clock.now(),
        reason=reason,
    )
    events = events_for(
        wf,
        new,
        entry,
        None,
        deployment=engine.deployment,
        names=["instance.deadline_changed"],
        extra={"due_at_before": payload["due_at"]["from"], "due_at": payload["due_at"]["to"]},
    )
    commit = Commit(
        updates=[(new, instance.version)],
        history=[entry],
        events=events,
        clear_timers=[instance.id],
        timers=kept,
    )
    change = {
        "instance_id": instance.id,
        "workflow": instance.workflow,
        "state": instance.state,
        "due_before": old_day,
        "due_after": new_day,
        "provisional_before": provisional_years(instance.due_basis),
        "provisional_after": provisional_years(new.due_basis),
        "timers": moved_timers,
        "reason": reason,
    }
    return commit, change
