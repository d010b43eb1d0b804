"""Cascade: a step that ends an instance fires a trigger on each of its open children.

The loader checks that a ``cascade`` is on a transition to a final state and, for the child
workflows loaded alongside, that every state a child can be open in lets the system fire the
trigger (``XS133``). At run time each open child gets its own checked step as the system, in
the parent's commit, reading the parent as after its step; a child that refuses is left as it
is, and the parent's row records it in a ``cascade_skipped`` warning (which child, its state,
why). A replay of the parent takes that warning as recorded and fires nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .checker import Checker, suggest
from .compiler import CompiledWorkflow
from .context import children_of, parent_as_after
from .definition import TransitionSpec
from .errors import CommandRefused
from .events import events_for
from .records import SYSTEM, Commit, Instance
from .steps import Command, Step, absorb

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["CASCADE_SKIPPED", "cascade", "check_cascade", "recorded_skips"]

CASCADE_SKIPPED = "cascade_skipped"

StepFn = Callable[["Engine", CompiledWorkflow, Instance, Command], tuple[Commit, Instance]]


def check_cascade(checker: Checker, i: int, t: TransitionSpec) -> None:
    """The load-time problems of ``transitions[i].cascade``: a target that is not final
    (``XS133``), an unknown workflow (``XS118``), and a child state, of a workflow loaded
    alongside, from which the system may not fire the trigger (``XS133``)."""
    if not t.cascade:
        return
    path = ("transitions", i, "cascade")
    target = checker.d.states.get(t.to)
    if target is not None and not target.final:
        checker.add(
            "XS133",
            "cascade-gap",
            f"cascade fires on the children when the instance ends, but {t.to!r} is not a "
            f"final state; final states: {', '.join(sorted(checker.d.final_states))}",
            path,
        )
    spawned = sorted({s.spawn.workflow for s in checker.d.transitions if s.spawn is not None})
    for j, entry in enumerate(t.cascade):
        where = (*path, j)
        if entry.workflow is not None:
            if not checker.workflow_ref(entry.workflow, "cascade", (*where, "workflow")):
                continue
            workflows = [entry.workflow]
        else:
            workflows = spawned
        for workflow in workflows:
            states = checker.open_states.get(workflow)
            if states is None:
                continue  # not loaded alongside: a child that cannot take it is recorded
            gaps = sorted(s for s, triggers in states.items() if entry.trigger not in triggers)
            known: set[str] = set().union(*states.values())
            if gaps:
                checker.add(
                    "XS133",
                    "cascade-gap",
                    f"cascade fires {entry.trigger!r} on {workflow} children, which the system "
                    f"may not fire from their open states {', '.join(gaps)}; add a transition "
                    "from each allowing the system role"
                    + ("" if entry.trigger in known else suggest(entry.trigger, known)),
                    (*where, "trigger"),
                )


def cascade(engine: Engine, commit: Commit, checked: Step, new: Instance, step: StepFn) -> None:
    """Fire each ``cascade`` trigger on the instance's open children, each a step of its own
    added to ``commit``; the children that refuse are recorded on the instance's row."""
    t, command = checked.t, checked.command
    skipped: list[dict[str, Any]] = []
    # a child this commit already moved (children_fire) is not stepped twice
    written = {u.id for u, _ in commit.updates}
    with parent_as_after(new):
        for child in children_of(engine, new.id):
            if child.final or child.id in written:
                continue
            entry = next((e for e in t.spec.cascade if e.workflow in (None, child.workflow)), None)
            if entry is None:
                continue
            as_system = Command(entry.trigger, SYSTEM, {}, command.now, command.reason)
            try:
                child_commit, _ = step(engine, engine._workflow_of(child), child, as_system)
            except CommandRefused as e:
                skipped.append(
                    {
                        "id": child.id,
                        "workflow": child.workflow,
                        "state": child.state,
                        "trigger": entry.trigger,
                        "reason": e.message,
                    }
                )
                continue
            absorb(commit, child_commit)
    if skipped:
        _record(engine, commit, checked, new, skipped)


def recorded_skips(warnings: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The ``cascade_skipped`` warnings of a row (what a replay takes as recorded)."""
    return [w for w in warnings or () if w.get("code") == CASCADE_SKIPPED]


def _record(
    engine: Engine, commit: Commit, checked: Step, new: Instance, skipped: list[dict[str, Any]]
) -> None:
    """Reseal the instance's row with a ``cascade_skipped`` warning, and announce it."""
    shown = "；".join(f"{s['workflow']} {s['id']}（{s['state']}）：{s['reason']}" for s in skipped)
    names = ", ".join(f"{s['id']} ({s['state']})" for s in skipped)
    warning = {
        "code": CASCADE_SKIPPED,
        "message": f"未联动的子实例：{shown} / children not cascaded: {names}",
        "children": skipped,
    }
    entry = next(h for h in commit.history if h.instance_id == new.id)
    redone = replace(entry, warnings=[*(entry.warnings or ()), warning], hash="").sealed()
    new.head_hash = redone.hash
    commit.history[commit.history.index(entry)] = redone
    old_events = events_for(checked.wf, new, entry, checked.t, deployment=engine.deployment)
    stale = {e.id for e in old_events}
    fresh = events_for(checked.wf, new, redone, checked.t, deployment=engine.deployment)
    at = next((k for k, e in enumerate(commit.events) if e.id in stale), len(commit.events))
    commit.events[:] = [
        *commit.events[:at],
        *fresh,
        *(e for e in commit.events[at:] if e.id not in stale),
    ]
