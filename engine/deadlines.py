"""Deadlines and timers: when a state's deadline falls, and the timers a state visit sets.

Dates counted in working days record the calendar basis they were counted on
(:mod:`xieshang.schedules`), so that :mod:`xieshang.reconcile` can move them when it changes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from .calendar import CHINA_TZ, Duration, before, deadline, due_after, parse_duration
from .compiler import CompiledWorkflow
from .context import calendar_of, functions_of
from .date_functions import date_functions
from .expressions import activation, instance_view
from .records import Instance, TimerRecord
from .rows import OVERDUE
from .schedules import CalendarChain, Tracking

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["due", "duration", "timers_for"]


def duration(wf: CompiledWorkflow, text: str) -> Duration:
    """A duration of the definition: literal text, or the name of one of its ``params``."""
    if text.startswith("params."):
        text = str(wf.params[text.removeprefix("params.")])
    return parse_duration(text)


def due(
    engine: Engine, wf: CompiledWorkflow, instance: Instance
) -> tuple[datetime | None, str | None]:
    """The deadline of the instance's current state visit and its calendar basis, or Nones."""
    spec = wf.definition.states[instance.state].deadline
    if spec is None:
        return None, None
    entered = instance.entered_at
    cal = calendar_of(engine, wf)
    roll = spec.roll == "next_workday"
    if spec.after is not None:
        return deadline(cal, entered, duration(wf, spec.after), roll=roll)
    # the calendar is tracked so that a date counted in working days (or rolled) records
    # the years it was counted on
    tracking = Tracking(cal) if isinstance(cal, CalendarChain) else None
    data = {k: instance.data.get(k) for k in wf.definition.data}
    variables = {"data": data, "params": wf.params, "now": entered}
    variables["instance"] = instance_view(instance)
    functions = date_functions(tracking) if tracking is not None else functions_of(engine, wf)
    try:
        value = wf.deadline_at[instance.state].run(activation(variables, functions))
    except Exception:
        return None, None
    if value is None:
        return None, None
    day = date.fromisoformat(str(value)[:10])
    moment = due_after(
        tracking or cal,
        datetime.combine(day, datetime.min.time(), CHINA_TZ),
        parse_duration("0 days"),
        roll=roll,
    )
    return moment, tracking.basis() if tracking is not None else None


def timers_for(engine: Engine, wf: CompiledWorkflow, instance: Instance) -> list[TimerRecord]:
    """Every pending timer of the instance's current state visit."""
    if instance.final:
        return []
    cal = calendar_of(engine, wf)
    out: list[TimerRecord] = []
    for spec in wf.definition.timers:
        if spec.in_ == instance.state:
            at, basis = deadline(
                cal,
                instance.entered_at,
                duration(wf, spec.after),
                roll=spec.roll == "next_workday",
            )
            out.append(
                TimerRecord(
                    instance.id, "timer", spec.fire, at, instance.version, instance.org, basis
                )
            )
    spec_deadline = wf.definition.states[instance.state].deadline
    if instance.due_at is not None and spec_deadline is not None and not instance.overdue:
        out.append(
            TimerRecord(
                instance.id,
                "deadline",
                OVERDUE,
                instance.due_at,
                instance.version,
                instance.org,
                instance.due_basis,
            )
        )
        if spec_deadline.remind_before is not None:
            ahead = duration(wf, spec_deadline.remind_before)
            remind_at = before(cal, instance.due_at, ahead)
            if remind_at > instance.entered_at:
                out.append(
                    TimerRecord(
                        instance.id,
                        "reminder",
                        "remind",
                        remind_at,
                        instance.version,
                        instance.org,
                        instance.due_basis,
                    )
                )
    return out
