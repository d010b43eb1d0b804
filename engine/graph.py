"""Graph checks on a workflow's states: pure functions over states and edges."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["no_path_to_final", "reachable", "successors", "trap_states", "unreachable"]

Edges = Iterable[tuple[str, str]]


def successors(edges: Edges) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for source, target in edges:
        out.setdefault(source, set()).add(target)
    return out


def reachable(start: str, graph: Mapping[str, set[str]]) -> set[str]:
    """Every state reachable from ``start``, ``start`` included."""
    seen = {start}
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def unreachable(states: Iterable[str], initial: str, graph: Mapping[str, set[str]]) -> list[str]:
    """States that no sequence of transitions reaches from the initial state."""
    seen = reachable(initial, graph)
    return [s for s in states if s not in seen]


def trap_states(
    states: Iterable[str], finals: set[str], graph: Mapping[str, set[str]]
) -> list[str]:
    """Non-final states with no transition out."""
    return [s for s in states if s not in finals and not graph.get(s)]


def no_path_to_final(
    states: Iterable[str], finals: set[str], graph: Mapping[str, set[str]]
) -> list[str]:
    """States from which no final state can be reached."""
    reverse: dict[str, set[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            reverse.setdefault(target, set()).add(source)
    can_finish: set[str] = set()
    for final in finals:
        can_finish |= reachable(final, reverse)
    return [s for s in states if s not in can_finish]
