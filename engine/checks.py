"""The checks of a candidate transition, in their fixed order, and what an actor may fire now.

Each check that fails raises :class:`Refusal` naming its :class:`Check`: among several
candidate transitions of one trigger, the refusal of the one that got furthest is reported.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .access import evaluate_bound
from .compiler import CompiledTransition, CompiledWorkflow
from .context import Scope, context, guard_message, jsonable
from .errors import (
    CommandRefused,
    Forbidden,
    FunctionFailed,
    InvalidPayload,
    TransitionNotAllowed,
)
from .records import REDACTED, Actor, Instance, copy_json
from .schema_types import field_errors
from .steps import Command, Step

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = [
    "Availability",
    "Check",
    "Refusal",
    "available",
    "check",
    "role_for",
    "triggers_from",
    "validate_data",
]


class Check(enum.IntEnum):
    """The checks of a transition, ranked by how far a command got when one refused it."""

    ROLE = 1  # the actor's role, and the unit a bound role acts for
    SEPARATION_OF_DUTIES = 2
    PAYLOAD = 3
    # the effects run after the guard but rank with the reason: a guard's refusal is the one
    # reported when another candidate's effects fail
    REASON_OR_EFFECTS = 4
    GUARD = 5


class Refusal(Exception):
    """Internal: a refusal and the check that gave it (to choose among candidate transitions)."""

    def __init__(self, check: Check, error: CommandRefused) -> None:
        self.check = check
        self.error = error


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether an actor may fire a trigger now, and if not, why."""

    trigger: str
    target: str
    allowed: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "to": self.target,
            "allowed": self.allowed,
            "reason": self.reason,
        }


def role_for(actor: Actor, allowed: frozenset[str]) -> str | None:
    """The role the actor acts in: the first of its roles that is allowed, or None."""
    common = actor.roles & allowed
    return min(common) if common else None


def triggers_from(wf: CompiledWorkflow, state: str) -> list[str]:
    return sorted({t.trigger for t in wf.by_state.get(state, ())})


def check(
    engine: Engine,
    wf: CompiledWorkflow,
    instance: Instance,
    t: CompiledTransition,
    command: Command,
    *,
    replay: bool = False,
    children: list[Instance] | None = None,
    validated: bool = False,
) -> Step:
    """Run the checks of one candidate transition; raise Refusal at the first that fails.

    With ``replay``, what was judged against the world at the time (roles, units,
    separation of duties, guards over children or other instances) is not judged again; the
    payload, the guard over the instance and the effects, which decide the stored state and
    data, are. ``validated`` takes the payload as it was validated when written (a replayed row
    with redacted fields, whose placeholders no schema would accept).
    """
    actor, now, reason = command.actor, command.now, command.reason
    role = role_for(actor, t.roles) if not replay else (min(actor.roles) if actor.roles else "")
    if role is None:
        raise Refusal(
            Check.ROLE,
            Forbidden(
                f"actor {actor.id!r} with roles {sorted(actor.roles)} may not fire "
                f"{t.trigger!r}; allowed roles: {', '.join(sorted(t.roles))}",
                trigger=t.trigger,
                actor=actor.id,
                allowed=sorted(t.roles),
            ),
        )
    if role in wf.bound and not replay:
        _check_unit(wf, instance, t, actor, role)
    if t.spec.not_by and not replay:
        earlier = engine.store.actors_of(instance.id, frozenset(t.spec.not_by))
        if actor.id in earlier:
            raise Refusal(
                Check.SEPARATION_OF_DUTIES,
                Forbidden(
                    f"actor {actor.id!r} fired {', '.join(t.spec.not_by)} on this instance and "
                    f"so may not fire {t.trigger!r} (separation of duties)",
                    trigger=t.trigger,
                    actor=actor.id,
                    allowed=[],
                    not_by=list(t.spec.not_by),
                ),
            )
    values = dict(command.payload) if validated else _validate_payload(t, command.payload)
    if t.spec.reason_required and not (reason and reason.strip()):
        raise Refusal(
            Check.REASON_OR_EFFECTS,
            InvalidPayload(f"command {t.trigger!r}", [{"field": "reason", "error": "required"}]),
        )
    scope = Scope(wf, instance, t, actor, values, now)
    ctx = context(engine, scope, children=children)
    world = replay and ("children" in t.needs or "siblings" in t.needs or t.uses_lookup)
    if t.guard is not None and not world:
        failed: dict[str, Any] = {}
        try:
            ok = t.guard.run(ctx)
        except FunctionFailed as e:
            ok = e.message
            failed = {"function_failed": e.to_dict()}
        except Exception as e:
            ok = f"error: {e}"
        if ok is not True:
            message = guard_message(engine, scope)
            detail = "" if ok is False else f" ({ok})"
            raise Refusal(
                Check.GUARD,
                TransitionNotAllowed(
                    f"{t.trigger!r} refused in state {instance.state!r}: {message}{detail}",
                    trigger=t.trigger,
                    state=instance.state,
                    allowed=triggers_from(wf, instance.state),
                    guard=t.guard.source,
                    **failed,
                ),
            )
    new_data = _effects(wf, instance, t, ctx, replay)
    return Step(wf, instance, t, command, role, values, new_data)


def _check_unit(
    wf: CompiledWorkflow, instance: Instance, t: CompiledTransition, actor: Actor, role: str
) -> None:
    """A role bound to units is acted in only for one of the instance's units."""
    units = evaluate_bound(wf, instance).get(role)
    if units is not None and actor.unit not in units:
        where = (
            f"unit {units[0]!r}"
            if units and wf.bound[role] is None
            else f"units {', '.join(map(repr, units))}"
            if units
            else "no unit yet"
        )
        raise Refusal(
            Check.ROLE,
            Forbidden(
                f"actor {actor.id!r} acts for unit {actor.unit!r}; as {role!r} this "
                f"instance is bound to {where}",
                trigger=t.trigger,
                actor=actor.id,
                allowed=list(units),
                unit=actor.unit,
            ),
        )


def _effects(
    wf: CompiledWorkflow, instance: Instance, t: CompiledTransition, ctx: Any, replay: bool
) -> dict[str, Any]:
    """The instance data after the transition's ``set:`` effects, every failure listed. In a
    replay, a value that is the placeholder of a redacted one is kept as it is."""
    new_data = dict(instance.data)
    errors: list[dict[str, Any]] = []
    for name, expr in t.sets:
        try:
            value = jsonable(expr.run(ctx))
            if value is None:
                if wf.definition.data[name].required:
                    errors.append({"field": name, "error": "a required field cannot be unset"})
                new_data.pop(name, None)
                continue
            if replay and value == REDACTED:
                new_data[name] = value
                continue
            new_data[name] = wf.field_adapters[name].dump_python(
                wf.field_adapters[name].validate_python(value), mode="json"
            )
        except ValidationError as e:
            errors += field_errors(e, f"{name}")
        except Exception as e:
            errors.append({"field": name, "error": f"{expr.source}: {e}"})
    if errors:
        raise Refusal(Check.REASON_OR_EFFECTS, InvalidPayload(f"effects of {t.trigger!r}", errors))
    return new_data


def _not_a_mapping(value: Any) -> dict[str, Any]:
    got = f"{value!r} that is a {type(value).__name__}"
    return {"field": "", "error": "must be an object of field names to values", "got": got}


def validate_data(wf: CompiledWorkflow, data: Mapping[str, Any]) -> dict[str, Any]:
    """An instance's data: the defaults, then ``data``, validated against the data fields.

    Raises:
        InvalidPayload: not a mapping, or fields that do not validate (all of them listed).
    """
    fields = wf.definition.data.items()
    merged = {k: copy_json(spec.default) for k, spec in fields if spec.default is not None}
    if not isinstance(data, Mapping):
        raise InvalidPayload(f"data of {wf.id!r}", [_not_a_mapping(data)])
    merged.update(data)
    try:
        valid = wf.data_adapter.validate_python(merged)
    except ValidationError as e:
        raise InvalidPayload(f"data of {wf.id!r}", field_errors(e)) from None
    return dict(wf.data_adapter.dump_python(valid, mode="json"))


def _validate_payload(t: CompiledTransition, payload: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, Mapping):
        error = _not_a_mapping(payload)
        raise Refusal(Check.PAYLOAD, InvalidPayload(f"payload of {t.trigger!r}", [error]))
    if t.payload is None:
        if payload:
            undeclared = "not a declared field (this trigger takes no payload)"
            errors = [{"field": k, "error": undeclared} for k in payload]
            raise Refusal(Check.PAYLOAD, InvalidPayload(f"payload of {t.trigger!r}", errors))
        return {}
    try:
        valid = t.payload.validate_python(dict(payload))
    except ValidationError as e:
        invalid = InvalidPayload(f"payload of {t.trigger!r}", field_errors(e))
        raise Refusal(Check.PAYLOAD, invalid) from None
    return dict(t.payload.dump_python(valid, mode="json"))


def available(engine: Engine, instance: Instance, actor: Actor) -> list[Availability]:
    """Every trigger that can fire from the instance's state, and whether ``actor`` may fire it
    (judged with an empty payload: what depends on the payload is reported as allowed)."""
    wf = engine._workflow_of(instance)
    now = engine.clock.now()
    out: list[Availability] = []
    for t in wf.by_state.get(instance.state, ()):
        reason = None
        try:
            check(engine, wf, instance, t, Command(t.trigger, actor, {}, now, "-"))
        except Refusal as r:
            payload_guard = r.check == Check.GUARD and "payload" in (
                t.guard.source if t.guard else ""
            )
            depends_on_payload = r.check == Check.PAYLOAD or payload_guard
            if depends_on_payload or (
                r.check == Check.REASON_OR_EFFECTS and isinstance(r.error, InvalidPayload)
            ):
                reason = None
            else:
                reason = r.error.message
        out.append(Availability(t.trigger, t.target, reason is None, reason))
    return out
