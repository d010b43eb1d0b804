"""The loader's checks of states, timers and the graph: one initial state, deadlines, each timer
firing a trigger the system may fire there, and the graph walks (unreachable states, trap
states, states with no path to a final state).

The graph of a file with problems is walked with what is known: a transition whose target is
unknown (a misspelt state, a broken entry) may lead anywhere, one whose source is unknown may
lead to its target, so that no graph problem is a consequence of another problem.
"""

from __future__ import annotations

from .checker import SYSTEM_ROLE, Checker, suggest
from .expressions import INSTANCE_FIELDS
from .graph import no_path_to_final, successors, trap_states, unreachable
from .shape_errors import closest
from .yamlsafe import Path

__all__ = ["check_graph", "check_states", "check_timers", "flags_unknown"]


def flags_unknown(checker: Checker) -> bool:
    """Whether which states are initial or final is unknown (a misshapen ``states``)."""
    return checker.unknown("states") or any(
        checker.unknown("states", name) for name in checker.d.states
    )


def check_states(checker: Checker) -> None:
    """Exactly one initial state, not final; each deadline's duration or date expression."""
    initials = [n for n, s in checker.d.states.items() if s.initial]
    if len(initials) != 1 and not flags_unknown(checker):
        what = "no initial state" if not initials else f"{len(initials)} initial states {initials}"
        checker.add(
            "XS103",
            "initial-state",
            f"exactly one state must be initial; found {what}",
            ("states",),
        )
    for name, s in checker.d.states.items():
        if s.initial and s.final:
            checker.add(
                "XS103",
                "initial-state",
                "the initial state cannot be final",
                ("states", name, "final"),
            )
        if s.deadline is not None:
            if s.deadline.after is not None:
                checker.check_duration(s.deadline.after, ("states", name, "deadline", "after"))
            else:
                names = ["data", "params", "instance", "now"]
                members = {
                    "data": checker.declared("data"),
                    "params": checker.declared("params"),
                    "instance": INSTANCE_FIELDS,
                }
                compiled = checker.expr(
                    str(s.deadline.at), ("states", name, "deadline", "at"), names, members
                )
                if compiled is not None:
                    checker.deadline_at[name] = compiled
            if s.deadline.remind_before is not None:
                checker.check_duration(
                    s.deadline.remind_before, ("states", name, "deadline", "remind_before")
                )


def check_timers(checker: Checker) -> None:
    """Each timer: its state, its duration, a trigger the system role may fire in that state."""
    triggers = set(checker.d.triggers())
    for i, timer in enumerate(checker.d.timers):
        path: Path = ("timers", i)
        checker.state_ref(timer.in_, (*path, "in"))
        checker.check_duration(timer.after, (*path, "after"))
        if checker.trigger_unknown(timer.fire) or any(
            checker.unknown("transitions", j, key)
            for j, t in enumerate(checker.d.transitions)
            if t.trigger == timer.fire
            for key in ("roles", "join")
        ):
            continue
        if timer.fire not in triggers:
            checker.add(
                "XS113",
                "unknown-trigger",
                f"timer fires unknown trigger {timer.fire!r}" + suggest(timer.fire, triggers),
                (*path, "fire"),
            )
        elif timer.in_ in checker.d.states and not any(
            timer.in_ in t.from_ and SYSTEM_ROLE in t.roles
            for t in checker.d.transitions
            if t.trigger == timer.fire
        ):
            checker.add(
                "XS113",
                "unknown-trigger",
                f"no transition {timer.fire!r} from {timer.in_!r} allows the system role",
                (*path, "fire"),
            )


def check_graph(checker: Checker) -> None:
    """Unreachable states, trap states and states with no path to a final state."""
    d = checker.d
    if flags_unknown(checker) or checker.unknown("transitions"):
        return
    states = list(d.states)
    edges = [
        (s, t.to) for t in d.transitions for s in t.from_ if s in d.states and t.to in d.states
    ]
    initials = [n for n, s in d.states.items() if s.initial]
    initial = initials[0] if len(initials) == 1 else None
    # a misspelt state stands for the state it is closest to, as its problem suggests
    ends: list[tuple[tuple[str, ...] | None, str | None]] = [
        (t.from_, t.to)
        for t in d.transitions
        if t.to not in d.states or any(s not in d.states for s in t.from_)
    ]
    for raw in checker.unsure.dropped:
        raw = raw if isinstance(raw, dict) else {}
        to = raw.get("to")
        ends.append((_readable(raw.get("from")), to if isinstance(to, str) else None))
    for sources, written in ends:
        sources = tuple(_meant(s, states) for s in sources) if sources is not None else None
        target = _meant(written, states) if written is not None else None
        target = target if target in d.states else None
        known = [s for s in sources or () if s in d.states]
        if target is None and not known and sources is None:
            return  # neither end known: nothing can be said of the graph
        if target is None:
            edges += [(s, other) for s in known for other in states]  # it may lead anywhere
            continue
        edges += [(s, target) for s in known]
        if (sources is None or len(known) < len(sources)) and initial is not None:
            edges.append((initial, target))  # from somewhere: count its target as reached
    # a transition from unknown states may be the way out of any state
    exits_known = all(
        sources is not None and {_meant(s, states) for s in sources} <= d.states.keys()
        for sources, _ in ends
    )
    graph = successors(edges)
    finals = set(d.final_states)
    if initial is not None:
        for s in unreachable(states, initial, graph):
            checker.add(
                "XS104",
                "unreachable-state",
                f"state {s!r} cannot be reached from the initial state {initial!r}",
                ("states", s),
            )
    if not exits_known:
        return
    traps = trap_states(states, finals, graph)
    for s in traps:
        checker.add(
            "XS105", "trap-state", f"state {s!r} is not final and has no way out", ("states", s)
        )
    if not finals:
        checker.add("XS106", "no-path-to-final", "the workflow has no final state", ("states",))
        return
    for s in no_path_to_final(states, finals, graph):
        if s not in traps:
            checker.add(
                "XS106",
                "no-path-to-final",
                f"no final state can be reached from {s!r}",
                ("states", s),
            )


def _meant(state: str, states: list[str]) -> str:
    return state if state in states else closest(state, states) or state


def _readable(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None
