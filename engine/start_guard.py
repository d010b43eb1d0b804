"""The guard of a start: what must hold of a new instance's data, params and actor.

The loader compiles ``start.guard`` and its message's placeholders over ``data`` (as
validated, defaults filled), ``params``, ``actor`` and ``now``; :func:`check_start` runs it for
a start command, after the roles and the data. Children started by a parent's spawn are not
judged by it: the parent's step is their start.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .checker import Checker
from .compiler import CompiledWorkflow
from .context import fill_label, functions_of
from .errors import FunctionFailed, TransitionNotAllowed
from .expressions import ACTOR_FIELDS, Compiled, activation
from .records import Actor
from .rows import START

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["check_start", "compile_start"]

_NAMES = ["data", "params", "actor", "now"]


def compile_start(checker: Checker) -> tuple[Compiled | None, tuple[tuple[str, Compiled], ...]]:
    """The compiled ``start.guard`` and the placeholders of its message (problems for bad ones)."""
    spec = checker.d.start
    if spec.guard is None:
        return None, ()
    members: dict[str, Any] = {
        "data": set(checker.d.data),
        "params": set(checker.d.params),
        "actor": ACTOR_FIELDS,
    }
    guard = checker.expr(spec.guard, ("start", "guard"), _NAMES, members)
    parts: tuple[tuple[str, Compiled], ...] = ()
    if spec.guard_message is not None:
        path = ("start", "guard_message")
        parts = checker.placeholders(spec.guard_message, path, _NAMES, members)
    return guard, parts


def check_start(
    engine: Engine, wf: CompiledWorkflow, data: dict[str, Any], actor: Actor, now: datetime
) -> None:
    """Refuse a start whose guard does not hold, naming the guard and its message.

    Raises:
        TransitionNotAllowed: the guard is false, fails (``function_failed``) or is no bool.
    """
    guard = wf.start_guard
    if guard is None:
        return
    variables = {
        "data": {k: data.get(k) for k in wf.definition.data},
        "params": wf.params,
        "actor": {
            "id": actor.id,
            "roles": sorted(actor.roles),
            "org": actor.org,
            "unit": actor.unit,
        },
        "now": now,
    }
    ctx = activation(variables, functions_of(engine, wf))
    failed: dict[str, Any] = {}
    try:
        ok = guard.run(ctx)
    except FunctionFailed as e:
        ok, failed = e.message, {"function_failed": e.to_dict()}
    except Exception as e:
        ok = f"error: {e}"
    if ok is True:
        return
    label = wf.definition.start.guard_message
    message = (
        f"guard is not satisfied: {guard.source}"
        if label is None
        else fill_label(label, wf.start_message_parts, ctx)
    )
    detail = "" if ok is False else f" ({ok})"
    raise TransitionNotAllowed(
        f"{START!r} of {wf.id!r} refused: {message}{detail}",
        trigger=START,
        state=wf.definition.initial_state,
        allowed=[],
        guard=guard.source,
        **failed,
    )
