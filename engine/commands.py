"""Commands: start an instance, fire a trigger, each written as one Commit or refused whole.

What a command carries was refused first if no store could keep it (:mod:`xieshang.inputs`);
a fired trigger's candidate transitions are then checked (:mod:`xieshang.checks`); the first that
passes is committed with what it does to children, with the join it completes in a parent, and
with the step its ``fire_on`` makes on another instance. A command id seen before is answered by
the first command's result only when the request is the same (:func:`request_differs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import reads
from .cascade import cascade
from .checks import Refusal, allowed_now, check, role_for, validate_data
from .children import join_ready, set_children, spawn
from .compiler import CompiledWorkflow
from .context import Scope, children_of, full_context, jsonable, parent_as_after, summary
from .errors import (
    CommandRefused,
    ConcurrencyConflict,
    ConflictCase,
    Forbidden,
    InvalidPayload,
    TransitionNotAllowed,
    UnknownTrigger,
)
from .links import update_linked
from .records import SYSTEM, Actor, Commit, HistoryEntry, Instance, canonical_json
from .rows import START
from .start_guard import check_start
from .steps import Command, Step, absorb, created, moved
from .suspension import suspended_refusal

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["commit_step", "fire", "request_differs", "start", "step"]

_RETRIES = 5


def _same(row: HistoryEntry, values: dict[str, Any]) -> bool:
    """Whether ``values`` are the payload of ``row``; a redacted field cannot be compared and
    counts as the same."""
    if set(values) != set(row.payload):
        return False
    redacted = set(row.redacted_fields())
    return all(
        name in redacted or canonical_json(values[name]) == canonical_json(row.payload[name])
        for name in values
    )


def request_differs(
    engine: Engine,
    row: HistoryEntry,
    *,
    instance_id: str | None,
    trigger: str,
    payload: dict[str, Any],
    reason: str | None = None,
    workflow: str | None = None,
    org: str | None = None,
) -> str | None:
    """What of a command differs from the command that wrote ``row`` under the same command
    id (``instance``, ``workflow``, ``org``, ``trigger``, ``payload``, ``reason``), or None
    when it is the same request. Payloads are compared as validated, so that spellings a
    schema reads alike (a date, a number) are the same."""
    if row.trigger != trigger:
        return "trigger"
    if instance_id is not None and row.instance_id != instance_id:
        return "instance"
    wf = engine._workflow_by_hash(row.definition_hash)
    if trigger == START and row.source is None:
        if workflow is not None and workflow != row.workflow:
            return "workflow"
        stored = engine.store.load(row.instance_id)
        if org is not None and stored is not None and stored.org != org:
            return "org"
        try:
            return None if _same(row, validate_data(wf, payload)) else "payload"
        except InvalidPayload:
            return "payload"
    if (row.reason or None) != (reason or None):
        return "reason"
    for t in wf.by_trigger.get(trigger, ()):
        if row.source not in t.sources:
            continue
        if t.payload is None:
            if not payload and not row.payload:
                return None
            continue
        try:
            values = t.payload.checked(payload)
        except ValidationError:
            continue
        if _same(row, dict(values)):
            return None
    return "payload"


def start(
    engine: Engine,
    workflow: str,
    data: Mapping[str, Any],
    actor: Actor,
    org: str,
    *,
    command_id: str | None,
    parent_id: str | None,
    unit: str | None,
) -> Instance:
    """Start an instance (see :meth:`Engine.start`)."""
    try:
        wf = engine.registry.for_start(workflow, org, engine.pins)
    except Forbidden as e:  # the org may not start it: refused before an actor was known
        e.actor = e.details["actor"] = actor.id
        raise
    if actor.org is not None and actor.org != org:
        raise Forbidden(
            f"actor {actor.id!r} of org {actor.org!r} cannot start an instance for org {org!r}",
            trigger=START,
            actor=actor.id,
            allowed=[actor.org],
        )
    start_roles = wf.definition.start.roles
    if start_roles:
        role = role_for(actor, frozenset(start_roles))
    else:
        role = min(actor.roles) if actor.roles else ""
    if role is None:
        raise Forbidden(
            f"actor {actor.id!r} with roles {sorted(actor.roles)} may not start {workflow!r}; "
            f"allowed roles: {', '.join(start_roles)}",
            trigger=START,
            actor=actor.id,
            allowed=list(start_roles),
        )
    values = validate_data(wf, data)
    now = engine.clock.now()
    check_start(engine, wf, values, actor, now)
    engine._remember_definition(wf)
    commit = Commit()
    instance = created(
        engine,
        commit,
        wf,
        values,
        actor,
        role,
        org,
        now,
        parent_id=parent_id,
        unit=unit,
        command_id=command_id,
    )
    engine.store.apply(commit)
    return instance


def fire(
    engine: Engine,
    instance_id: str,
    trigger: str,
    actor: Actor,
    payload: Mapping[str, Any],
    *,
    reason: str | None,
    expected_version: int | None,
    command_id: str | None,
) -> tuple[Instance, int | None]:
    """Fire a trigger (see :meth:`Engine.fire`), judging again after a lost race. Returns the
    instance as the step left it, and the level the actor reads it at when the step left its
    readers as they were (None when that is not known)."""
    fresh = False
    seen: int | None = None
    for attempt in range(_RETRIES):
        # the step changes nothing in the instance it judges (it builds the new one): the
        # store may lend its own
        if attempt == 0:  # one the actor may not read is answered as missing
            instance, seen = reads.read_at_level(engine, instance_id, actor, shared=True)
        else:
            instance, seen = engine._load(instance_id, actor, fresh=fresh, shared=True), None
        if expected_version is not None and instance.version != expected_version:
            if not fresh:
                fresh = True
                continue
            raise ConcurrencyConflict(instance_id, expected_version, instance.version)
        wf = engine._workflow_of(instance)
        command = Command(trigger, actor, payload, engine.clock.now(), reason, command_id)
        try:
            commit, result = step(engine, wf, instance, command)
        except CommandRefused:
            if fresh:
                raise
            # judged against a cached row: if another process moved it, judge the fresh one
            current = engine.store.load(instance_id, fresh=True)
            if current is None or current.version == instance.version:
                raise
            fresh = True
            continue
        if instance.parent_id is not None:
            _join(engine, commit, result, command)
        try:
            engine.store.apply(commit)
        except ConcurrencyConflict as e:
            if e.case is ConflictCase.COMMAND_USED:
                raise  # another command with this id won: the caller compares the two
            # a stale cached row, or a sibling's step touched the parent first: re-read
            # everything and re-check, unless the caller's own expected version is gone
            fresh = True
            if attempt + 1 < _RETRIES:
                continue
            raise
        return result, (seen if instance_id not in commit.readers else None)
    raise ConcurrencyConflict(instance_id, expected_version, case=ConflictCase.RETRIES_EXHAUSTED)


def step(
    engine: Engine, wf: CompiledWorkflow, instance: Instance, command: Command
) -> tuple[Commit, Instance]:
    """The commit of the first candidate transition of the command's trigger that passes its
    checks; the refusal of the one that got furthest when none does."""
    trigger = command.trigger
    if instance.suspended_at is not None:
        raise suspended_refusal(instance, trigger)
    candidates = wf.by_trigger.get(trigger)
    if not candidates:
        raise UnknownTrigger(wf.id, trigger, wf.definition.triggers())
    here = [t for t in candidates if instance.state in t.sources]
    if not here:
        allowed = allowed_now(engine, instance, command.actor, besides=trigger)
        sources = sorted({s for t in candidates for s in t.sources})
        raise TransitionNotAllowed(
            f"{trigger!r} cannot fire in state {instance.state!r} (only from "
            f"{', '.join(sources)}); {command.actor.id!r} may fire now: "
            f"{', '.join(allowed) or 'nothing'}",
            trigger=trigger,
            state=instance.state,
            allowed=allowed,
        )
    best: Refusal | None = None
    for t in here:
        try:
            checked = check(engine, wf, instance, t, command)
        except Refusal as r:
            if best is None or r.check > best.check:
                best = r
            continue
        try:
            return commit_step(engine, checked)
        except TransitionNotAllowed as e:  # a child that children_fire could not move
            raise _naming_allowed(engine, instance, command, e) from None
    assert best is not None
    if isinstance(best.error, TransitionNotAllowed):
        raise _naming_allowed(engine, instance, command, best.error)
    raise best.error


def _naming_allowed(
    engine: Engine, instance: Instance, command: Command, error: TransitionNotAllowed
) -> TransitionNotAllowed:
    """The refusal, its ``allowed`` the triggers the actor could fire now instead."""
    allowed = allowed_now(engine, instance, command.actor, besides=command.trigger)
    error.allowed = allowed
    error.details["allowed"] = allowed
    return error


def commit_step(engine: Engine, checked: Step, *, replay: bool = False) -> tuple[Commit, Instance]:
    """The commit of a checked transition: the step, the children it spawns and (unless in a
    replay, where each other instance's own rows say it) the fields it sets on its children
    and on the instance its ``update:`` names, the step it fires on another instance, the
    steps it fires on its children and those its ``cascade`` fires on its open children."""
    commit, new = moved(engine, checked)
    if checked.t.spec.spawn is not None:
        spawn(engine, commit, checked, new, replay=replay)
    if checked.t.children_set and not replay:
        set_children(engine, commit, checked, new)
    if checked.t.update_instance is not None and not replay:
        update_linked(engine, commit, checked, new)
    if checked.t.spec.fire_on is not None and not replay:
        _fire_on(engine, commit, checked, new)
    if checked.t.children_fire and not replay:
        with parent_as_after(new):
            _fire_children(engine, commit, checked, new)
    if checked.t.spec.cascade and not replay:
        cascade(engine, commit, checked, new, step)
    return commit, new


def _fire_children(engine: Engine, commit: Commit, checked: Step, new: Instance) -> None:
    """Fire each ``children_fire`` trigger on the stored children it matches, as the system
    actor, each a checked step of its own added to ``commit``; one refusal refuses all."""
    t, now = checked.t, checked.command.now
    base = full_context(
        engine, Scope(checked.wf, new, t, checked.command.actor, checked.values, now)
    )
    kids = children_of(engine, new.id)
    for entry in t.children_fire:
        spec = entry.spec
        for child in kids:
            if child.workflow != spec.workflow:
                continue
            base.add_variable("child", summary(child))
            try:
                if entry.when.run(base) is not True:
                    continue
                payload = {k: jsonable(c.run(base)) for k, c in entry.payload}
            except Exception as e:
                raise InvalidPayload(
                    f"children_fire of {t.trigger!r}",
                    [{"field": f"child {child.id}", "error": str(e)}],
                ) from None
            command = Command(
                spec.trigger,
                SYSTEM,
                {k: v for k, v in payload.items() if v is not None},
                now,
                checked.command.reason,
            )
            try:
                child_commit, _ = step(engine, engine._workflow_of(child), child, command)
            except CommandRefused as e:
                title = child.data.get("title")
                raise TransitionNotAllowed(
                    f"{t.trigger!r} refused in state {checked.instance.state!r}: its "
                    f"{spec.workflow} {child.id!r}{f' ({title})' if title else ''} is in state "
                    f"{child.state!r}: {e.message}",
                    trigger=t.trigger,
                    state=checked.instance.state,
                    allowed=[],
                    target={
                        "id": child.id,
                        "workflow": spec.workflow,
                        "trigger": spec.trigger,
                        "state": child.state,
                        "refusal": e.to_dict(),
                    },
                ) from None
            absorb(commit, child_commit)


def _join(engine: Engine, commit: Commit, child: Instance, command: Command) -> None:
    """Touch the parent; if this child step completes a join, fire it in the same commit."""
    assert child.parent_id is not None
    parent = engine._load(child.parent_id, None, fresh=True)
    commit.touch.append((parent.id, parent.children_version))
    pwf = engine._workflow_of(parent)
    joins = [t for t in pwf.by_state.get(parent.state, ()) if t.spec.join is not None]
    if not joins:
        return
    siblings = {c.id: c for c in children_of(engine, parent.id)}
    siblings[child.id] = child
    for inserted in commit.inserts:
        if inserted.parent_id == parent.id:
            siblings[inserted.id] = inserted
    kids = list(siblings.values())
    for t in joins:
        if not join_ready(t, kids):
            continue
        if parent.suspended_at is not None:  # the join waits: the parent's clock has stopped
            raise suspended_refusal(parent, t.trigger)
        as_system = Command(t.trigger, SYSTEM, {}, command.now)
        try:
            checked = check(engine, pwf, parent, t, as_system, children=kids)
        except Refusal:
            continue
        parent_commit, _ = commit_step(engine, checked)
        absorb(commit, parent_commit)
        return


def _fire_on(engine: Engine, commit: Commit, checked: Step, new: Instance) -> None:
    """Fire the step's ``fire_on`` trigger on the instance it names, as ``system``, in the
    same commit. When that instance refuses, the step is refused, naming its state and why."""
    t, command, source = checked.t, checked.command, checked.instance
    spec = t.spec.fire_on
    assert spec is not None and t.fire_on_instance is not None
    scope = Scope(checked.wf, new, t, command.actor, checked.values, command.now)
    ctx = full_context(engine, scope)
    try:
        target_id = t.fire_on_instance.run(ctx)
        payload = {name: jsonable(expr.run(ctx)) for name, expr in t.fire_on_payload}
    except Exception as e:
        error = {"field": "fire_on", "error": str(e)}
        raise InvalidPayload(f"fire_on of {t.trigger!r}", [error]) from None
    lead = f"{t.trigger!r} refused in state {source.state!r}: "
    if spec.message is not None:
        lead += spec.message.zh + (f" / {spec.message.en}" if spec.message.en else "") + " ("
    close = ")" if spec.message is not None else ""
    about: dict[str, Any] = {"id": target_id, "workflow": spec.workflow, "trigger": spec.trigger}
    allowed: list[str] = []  # step() names what the actor may fire instead
    target = (
        engine.store.load(target_id, fresh=True)
        if isinstance(target_id, str) and target_id and target_id != new.id
        else None
    )
    if target is None or target.org != new.org or target.workflow != spec.workflow:
        raise TransitionNotAllowed(
            f"{lead}there is no other {spec.workflow} {target_id!r} of org {new.org!r} to "
            f"fire {spec.trigger!r} on{close}",
            trigger=t.trigger,
            state=source.state,
            allowed=allowed,
            target=about,
        )
    as_system = Command(spec.trigger, SYSTEM, payload, command.now)
    try:
        target_commit, _ = step(engine, engine._workflow_of(target), target, as_system)
    except CommandRefused as e:
        raise TransitionNotAllowed(
            f"{lead}{spec.workflow} {target.id!r} is in state {target.state!r}: {e.message}{close}",
            trigger=t.trigger,
            state=source.state,
            allowed=allowed,
            target={**about, "state": target.state, "refusal": e.to_dict()},
        ) from None
    absorb(commit, target_commit)
