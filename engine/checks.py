"""The checks of a candidate transition, in their fixed order, and what an actor may fire now.

Each check that fails raises :class:`Refusal` naming its :class:`Check`: among several
candidate transitions of one trigger, the refusal of the one that got furthest is reported.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .access import evaluate_bound
from .compiler import CompiledTransition, CompiledWorkflow
from .context import Scope, context, fill_message, guard_message, jsonable
from .errors import (
    CommandRefused,
    Forbidden,
    FunctionFailed,
    InvalidPayload,
    TransitionNotAllowed,
)
from .pinning import explain_pinned
from .records import REDACTED, Actor, Instance, copy_json
from .schema_types import field_errors
from .steps import Command, Step
from .suspension import suspended_refusal

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = [
    "Availability",
    "Check",
    "Refusal",
    "allowed_now",
    "available",
    "check",
    "fireable",
    "role_for",
    "validate_data",
]


# what a guard may read of other instances: judged against them as they were, not in a replay
_WORLD = frozenset({"children", "siblings", "parent"})


class Check(enum.IntEnum):
    """The checks of a transition, ranked by how far a command got when one refused it."""

    ROLE = 1  # the actor's role, and the unit a bound role acts for
    SEPARATION_OF_DUTIES = 2
    PAYLOAD = 3
    # the effects run after the guard but rank with the reason: a guard's refusal is the one
    # reported when another candidate's effects fail
    REASON_OR_EFFECTS = 4
    GUARD = 5  # the guard, and a soft rule (warn:) the deployment makes a refusal


class Refusal(Exception):
    """Internal: a refusal and the check that gave it (to choose among candidate transitions)."""

    def __init__(self, check: Check, error: CommandRefused) -> None:
        self.check = check
        self.error = error


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether an actor may fire a trigger now, and if not, why.

    ``allowed``: it fires now as it is, with no payload. ``needs_payload``: nothing but the
    payload stands in the way, and whether it passes depends on the payload (a required field,
    or a guard that reads it). Neither: ``reason`` says why not. ``payload_schema`` is the JSON
    Schema of the payload, for every trigger that takes one; ``warnings`` are what its soft
    rules that do not read the payload would record if it fired now.
    """

    trigger: str
    target: str
    allowed: bool
    reason: str | None = None
    needs_payload: bool = False
    payload_schema: dict[str, Any] | None = None
    warnings: tuple[dict[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "to": self.target,
            "allowed": self.allowed,
            "reason": self.reason,
            "needs_payload": self.needs_payload,
            "payload_schema": self.payload_schema,
            "warnings": [dict(w) for w in self.warnings],
        }


def role_for(actor: Actor, allowed: frozenset[str]) -> str | None:
    """The role the actor acts in: the first of its roles that is allowed, or None."""
    common = actor.roles & allowed
    return min(common) if common else None


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
    probe: bool = False,
) -> Step:
    """Run the checks of one candidate transition; raise Refusal at the first that fails.

    With ``replay``, what was judged against the world at the time (roles, units,
    separation of duties, guards over the parent, children or other instances) is not judged
    again; the
    payload, the guard over the instance and the effects, which decide the stored state and
    data, are. ``validated`` takes the payload as it was validated when written (a replayed row
    with redacted fields, whose placeholders no schema would accept). With ``probe`` the
    payload is unknown (:func:`available`): it is not validated, and the guard and soft rules
    that read it are not run.
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
    if t.spec.not_by_triggers and not replay:
        _separation_of_duties(engine, instance, t, actor)
    if probe:
        values: dict[str, Any] = {}
    elif validated:
        values = dict(command.payload)
    else:
        try:
            values = _validate_payload(t, command.payload)
        except Refusal as r:
            assert isinstance(r.error, InvalidPayload)
            raise Refusal(
                r.check, explain_pinned(engine, wf, instance, t.trigger, r.error)
            ) from None
    if t.spec.reason_required and not (reason and reason.strip()):
        raise Refusal(
            Check.REASON_OR_EFFECTS,
            InvalidPayload(f"command {t.trigger!r}", [{"field": "reason", "error": "required"}]),
        )
    scope = Scope(wf, instance, t, actor, values, now)
    ctx = context(engine, scope, children=children)
    world = replay and (not _WORLD.isdisjoint(t.needs) or t.uses_lookup)
    unknown = probe and t.guard is not None and "payload" in t.guard.needs
    if t.guard is not None and not world and not unknown:
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
                    allowed=[],
                    guard=t.guard.source,
                    **failed,
                ),
            )
    # a redacted row's payload is placeholders: the soft rules that read it cannot be judged
    warnings = _soft_rules(engine, scope, ctx, probe=probe or validated, replay=replay)
    new_data = _effects(wf, instance, t, ctx, replay)
    return Step(wf, instance, t, command, role, values, new_data, warnings)


def _separation_of_duties(
    engine: Engine, instance: Instance, t: CompiledTransition, actor: Actor
) -> None:
    """Refuse an actor the transition's ``not_by`` rule bars: one who ever fired one of its
    triggers here (scope ``ever``), or the actor of the most recent such step (``last``)."""
    triggers = t.spec.not_by_triggers
    scope = t.spec.not_by_scope
    if scope == "ever":
        barred = actor.id in engine.store.actors_of(instance.id, frozenset(triggers))
        did = "fired"
    else:
        last = next(
            (r for r in reversed(engine.store.history(instance.id)) if r.trigger in triggers),
            None,
        )
        barred = last is not None and last.actor.get("id") == actor.id
        did = "made the last"
    if barred:
        raise Refusal(
            Check.SEPARATION_OF_DUTIES,
            Forbidden(
                f"actor {actor.id!r} {did} {', '.join(triggers)} on this instance and so may "
                f"not fire {t.trigger!r} (separation of duties: not_by "
                f"[{', '.join(triggers)}], scope {scope})",
                trigger=t.trigger,
                actor=actor.id,
                allowed=[],
                not_by=list(triggers),
                scope=scope,
            ),
        )


def _soft_rules(
    engine: Engine, scope: Scope, ctx: Any, *, probe: bool = False, replay: bool = False
) -> tuple[dict[str, str], ...]:
    """The warnings of the transition's ``warn:`` entries that hold, each ``{code, message}``;
    an entry this deployment refuses raises the refusal instead. A condition that cannot be
    evaluated, or gives no bool, counts as holding (with what went wrong after the message).
    A replay skips the entries that read the parent (their warnings are taken as recorded)."""
    raised: list[dict[str, str]] = []
    for w in scope.t.warnings:
        if (probe and "payload" in w.when.needs) or (replay and "parent" in w.when.needs):
            continue
        detail = ""
        try:
            hit = w.when.run(ctx)
        except FunctionFailed as e:
            hit, detail = None, f" ({e.message})"
        except Exception as e:
            hit, detail = None, f" (error: {e})"
        if hit is False:
            continue
        if hit is not True and not detail:
            detail = f" (not a bool: {hit!r})"
        message = fill_message(engine, scope, w.message, w.message_parts) + detail
        if w.refuse:
            raise Refusal(
                Check.GUARD,
                TransitionNotAllowed(
                    f"{scope.t.trigger!r} refused in state {scope.instance.state!r}: {message}",
                    trigger=scope.t.trigger,
                    state=scope.instance.state,
                    allowed=[],
                    rule=w.code,
                ),
            )
        raised.append({"code": w.code, "message": message})
    return tuple(raised)


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
            new_data[name] = wf.field_adapters[name].checked(value)
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
        return dict(wf.data_adapter.checked(merged))
    except ValidationError as e:
        raise InvalidPayload(f"data of {wf.id!r}", field_errors(e)) from None


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
        return dict(t.payload.checked(dict(payload)))
    except ValidationError as e:
        invalid = InvalidPayload(f"payload of {t.trigger!r}", field_errors(e))
        raise Refusal(Check.PAYLOAD, invalid) from None


def available(engine: Engine, instance: Instance, actor: Actor) -> list[Availability]:
    """Every transition from the instance's state, and whether ``actor`` may fire it now, may
    fire it with a suitable payload, or may not (and why)."""
    wf = engine._workflow_of(instance)
    now = engine.clock.now()
    if instance.suspended_at is not None:  # nothing fires until an admin resumes it
        return [
            Availability(t.trigger, t.target, False, suspended_refusal(instance, t.trigger).message)
            for t in wf.by_state.get(instance.state, ())
        ]
    return [
        _availability(engine, wf, instance, t, actor, now)
        for t in wf.by_state.get(instance.state, ())
    ]


def allowed_now(engine: Engine, instance: Instance, actor: Actor, *, besides: str) -> list[str]:
    """The triggers other than ``besides`` that ``actor`` could fire now (with a suitable
    payload, where one is needed): what a refusal names as allowed."""
    return sorted(t for t in fireable(engine, instance, actor) if t != besides)


def fireable(engine: Engine, instance: Instance, actor: Actor) -> tuple[str, ...]:
    """The triggers of :func:`available` that are allowed or need only a suitable payload, in
    order, each once: its judgement without the descriptions (what an inbox asks of each row)."""
    if instance.suspended_at is not None:
        return ()
    wf, now = engine._workflow_of(instance), None
    out: dict[str, None] = {}
    for t in wf.by_state.get(instance.state, ()):
        if t.trigger in out:
            continue
        if t.by_role_alone:  # what check() would judge of it, without building a step
            role = role_for(actor, t.roles)
            if role is None:
                continue
            if role in wf.bound:
                try:
                    _check_unit(wf, instance, t, actor, role)
                except Refusal:
                    continue
            out[t.trigger] = None
            continue
        now = now or engine.clock.now()  # one moment for every transition judged
        try:
            check(engine, wf, instance, t, Command(t.trigger, actor, {}, now, "-"), probe=True)
        except Refusal as r:
            # effects that failed on the payload left out: a suitable payload may pass them
            if not (r.check == Check.REASON_OR_EFFECTS and t.payload is not None):
                continue
        out[t.trigger] = None
    return tuple(out)


def _availability(
    engine: Engine,
    wf: CompiledWorkflow,
    instance: Instance,
    t: CompiledTransition,
    actor: Actor,
    now: datetime,
) -> Availability:
    """Judge ``t`` for ``actor`` with the payload unknown: the checks that do not read it
    decide; a required field or a guard that reads it makes the answer depend on it."""
    schema = wf.payload_schema(t)
    required = sorted(k for k, f in t.spec.payload.items() if f.required)
    guard_reads = t.guard is not None and "payload" in t.guard.needs
    depends = bool(required) or guard_reads
    try:
        step = check(engine, wf, instance, t, Command(t.trigger, actor, {}, now, "-"), probe=True)
    except Refusal as r:
        if not (r.check == Check.REASON_OR_EFFECTS and t.payload is not None):
            return Availability(t.trigger, t.target, False, r.error.message, payload_schema=schema)
        depends, step = True, None  # the effects failed on the payload left out
    if not depends:
        warnings = step.warnings if step is not None else ()
        return Availability(t.trigger, t.target, True, payload_schema=schema, warnings=warnings)
    why = [f"required {', '.join(required)}"] if required else []
    why += ["the guard reads it"] if guard_reads else []
    reason = "needs a payload" + (f" ({'; '.join(why)})" if why else "")
    return Availability(
        t.trigger,
        t.target,
        False,
        reason,
        needs_payload=True,
        payload_schema=schema,
        warnings=step.warnings if step is not None else (),
    )
