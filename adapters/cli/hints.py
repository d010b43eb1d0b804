"""Did you mean: the names a person may mistype (workflows, states, triggers, roles), and the
nearest known ones, by :mod:`difflib`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from xieshang import Actor, Registry, Usage

__all__ = ["KNOWN_ROLES", "check_actor", "check_state", "check_workflow", "did_you_mean"]

# roles the adapters themselves give meaning to, beside the workflows' own
KNOWN_ROLES = frozenset({"admin", "auditor", "system"})


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` (or 'x' or 'y'), or nothing when no choice is near."""
    near = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    if not near:
        return ""
    return "; did you mean " + " or ".join(repr(n) for n in near) + "?"


def check_workflow(registry: Registry, workflow: str, option: str = "--workflow") -> None:
    """Refuse a workflow id the deployment does not run, suggesting the nearest."""
    known = registry.ids()
    if workflow not in known:
        raise Usage(
            f"{option} {workflow!r}: no such workflow{did_you_mean(workflow, known)} "
            f"(known: {', '.join(sorted(known))})",
            option,
            allowed=sorted(known),
        )


def check_state(registry: Registry, state: str, workflow: str | None) -> None:
    """Refuse a state no workflow (or not ``workflow``) has, suggesting the nearest."""
    flows = [registry.get(workflow)] if workflow is not None else list(registry)
    known = sorted({s for wf in flows for s in wf.definition.states})
    if state not in known:
        where = f"workflow {workflow!r}" if workflow is not None else "any workflow"
        listed = f" (its states: {', '.join(known)})" if workflow is not None else ""
        raise Usage(
            f"--state {state!r}: no state of {where}{did_you_mean(state, known)}{listed}",
            "--state",
            allowed=known,
        )


def check_actor(actor: Actor, text: str, registry: Registry) -> Actor:
    """``actor`` when one of its roles is known to a workflow (or to the adapters); else a
    Usage error that recognises ``role:id`` given for ``id:role`` and suggests near roles."""
    known = {r for wf in registry for r in wf.definition.roles} | KNOWN_ROLES
    if not actor.roles or actor.roles & known:
        return actor
    roles = ",".join(sorted(actor.roles))
    message = f"--as {text!r}: no workflow has the role{'s' * (len(actor.roles) > 1)} {roles}"
    if actor.id in known:
        where = text.partition("@")[1] + text.partition("@")[2]
        message += f"; did you mean '{roles}:{actor.id}{where}'? (an actor is id:role)"
    else:
        message += did_you_mean(min(actor.roles), known)
    raise Usage(message, "--as")
