"""What a walk means for the workflow it walked: each state, trigger and timer that never
came to pass, and why, as far as the walk can tell.

Kinds:

``unreachable-state``
    no path of transitions leads to it from an initial state (the graph alone says so);
``unreached-state``
    transitions lead to it, but the walk never got there: guards, roles or payloads stand in
    the way;
``final-unreached``
    the same of a final state: an instance can never end there;
``guard-never-passes``
    the trigger was sent from a state it fires from, by an actor allowed to, and its guard
    refused every payload tried;
``separation-blocks``
    every actor allowed to send the trigger was barred by its ``not_by`` rule;
``no-actor-may-fire``
    no actor of the trigger's roles (for the instance's units) was allowed to send it;
``payload-never-accepted``
    every payload tried was refused by the trigger's payload fields;
``timer-never-fires``
    the timer's trigger never fired when the walk waited for it.

A walk that ran out of its budget says so (``bounded``): what it did not reach may lie beyond.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from xieshang.compiler import CompiledTransition, CompiledWorkflow

from .walk import Walk

__all__ = ["Finding", "findings", "graph_reachable"]


@dataclass(frozen=True)
class Finding:
    kind: str
    where: str  # the place in the workflow file: states.NAME, transitions.TRIGGER, timers[K]
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def graph_reachable(wf: CompiledWorkflow) -> set[str]:
    """The states some path of transitions reaches from an initial state."""
    d = wf.definition
    seen = {name for name, state in d.states.items() if state.initial}
    todo = list(seen)
    while todo:
        state = todo.pop()
        for t in d.transitions:
            if state in t.from_ and t.to not in seen:
                seen.add(t.to)
                todo.append(t.to)
    return seen


def _other_instances(t: CompiledTransition) -> bool:
    return t.uses_lookup or t.update_instance is not None or t.fire_on_instance is not None


def findings(wf: CompiledWorkflow, walk: Walk) -> list[Finding]:
    d = wf.definition
    reached = walk.reached.get(wf.id, set())
    fired = walk.fired.get(wf.id, set())
    graph = graph_reachable(wf)
    out: list[Finding] = []
    for name, state in d.states.items():
        if name in reached:
            continue
        where = f"states.{name}"
        if name not in graph:
            out.append(Finding("unreachable-state", where, f"no transition leads to {name!r}"))
        elif state.final:
            out.append(
                Finding(
                    "final-unreached",
                    where,
                    f"final state {name!r} was never reached: transitions lead to it, but "
                    "guards, roles or payloads never let one fire",
                )
            )
        else:
            out.append(
                Finding(
                    "unreached-state",
                    where,
                    f"state {name!r} was never reached: transitions lead to it, but guards, "
                    "roles or payloads never let one fire",
                )
            )
    kinds = {
        "guard": ("guard-never-passes", "its guard refused every payload tried"),
        "not-by": ("separation-blocks", "its not_by rule barred every actor allowed to send it"),
        "no-role": ("no-actor-may-fire", "no actor of its roles was allowed to send it"),
        "unreadable": ("no-actor-may-fire", "no actor of its roles may read the instance"),
        "payload": ("payload-never-accepted", "every payload tried was refused"),
    }
    for trigger in dict.fromkeys(t.trigger for t in d.transitions):
        if trigger in fired:
            continue
        outcomes = walk.outcomes.get((wf.id, trigger))
        if not outcomes:
            continue  # never tried: its states were never reached (reported above)
        top = max(kinds, key=lambda k: (outcomes.get(k, 0), k))
        if outcomes.get(top, 0) == 0:
            continue
        kind, why = kinds[top]
        tried = sum(outcomes.values())
        if any(_other_instances(t) for t in wf.by_trigger.get(trigger, ())):
            why += " (it reads or changes other instances, which the walk does not make)"
        out.append(
            Finding(
                kind, f"transitions.{trigger}", f"{trigger!r} never fired in {tried} tries: {why}"
            )
        )
    for k, timer in enumerate(d.timers):
        if (wf.id, timer.fire) in walk.timers_fired:
            continue
        why = (
            f"state {timer.in_!r} was never reached"
            if timer.in_ not in reached
            else f"waiting in {timer.in_!r} never fired {timer.fire!r}"
        )
        out.append(Finding("timer-never-fires", f"timers[{k}]", f"the timer never fired: {why}"))
    return out
