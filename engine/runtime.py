"""The runtime: start, fire, available, and the reads over a store.

A command is checked in a fixed order (instance, trigger, state, role, separation of duties,
payload, reason, guard), moved by the compiled machine, and written as one :class:`Commit`:
the instance row, one history row, its outbox events. A refused command writes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import cel
from pydantic import ValidationError

from . import access
from .access import evaluate_bound
from .calendar import (
    CHINA_TZ,
    Calendar,
    Duration,
    before,
    deadline,
    due_after,
    get_calendar,
    parse_duration,
)
from .compiler import CompiledTransition, CompiledWorkflow, Cursor
from .definition import Definition
from .errors import (
    CalendarError,
    CommandRefused,
    ConcurrencyConflict,
    ConflictCase,
    Forbidden,
    FunctionFailed,
    InvalidPayload,
    NotFound,
    TransitionNotAllowed,
    UnknownTrigger,
    Usage,
    XieshangError,
)
from .events import events_for, reminder_event
from .expressions import date_functions
from .ledger import verify_ledger
from .loading import compile_definition
from .ports import Clock, Query, Store, SystemClock
from .reconcile import RECONCILE, ReconcileReport, reconcile
from .records import (
    SYSTEM,
    Actor,
    Commit,
    HistoryEntry,
    Instance,
    TimerRecord,
    canonical_json,
    copy_json,
    iso,
)
from .registry import Registry
from .schedules import CalendarChain, Tracking, provisional_years
from .schema_types import field_errors

__all__ = ["Availability", "Engine", "Page", "TickReport"]

START = "start"
PARENT_UPDATE = "parent_update"
_ALL_NAMES = ("data", "payload", "actor", "instance", "params", "now", "children", "siblings")
_RETRIES = 5
OVERDUE = "overdue"


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


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query and the cursor of the next, if any."""

    items: list[Instance]
    next_cursor: str | None


class _Refusal(Exception):
    """Internal: a refusal and how far the checks got (to choose among candidate transitions)."""

    def __init__(self, stage: int, error: CommandRefused) -> None:
        self.stage = stage
        self.error = error


def _not_a_mapping(value: Any) -> dict[str, Any]:
    got = f"{value!r} that is a {type(value).__name__}"
    return {"field": "", "error": "must be an object of field names to values", "got": got}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class Engine:
    """Runs workflow instances over a store.

    Args:
        store: where instances, history and the outbox live (in-memory, SQLite, PostgreSQL).
        registry: the compiled workflows (``xieshang.workflows.bundled()`` for the built-in ones).
        clock: where time comes from; ``SystemClock()`` by default.
        ids: makes new instance ids; uuid4 hex by default.
        deployment: names this deployment in the ``source`` of events.
        calendar: the deployment's working-day calendar (its calendar file over the official
            table); the official table, then provisional statutory holidays, when None.
    """

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock | None = None,
        *,
        ids: Callable[[], str] | None = None,
        deployment: str = "default",
        calendar: CalendarChain | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock or SystemClock()
        self._ids = ids or (lambda: uuid.uuid4().hex)
        self.deployment = deployment
        self.calendar = calendar if calendar is not None else CalendarChain()
        self._functions: dict[str, dict[str, Callable[..., Any]]] = {}
        self._saved_definitions: set[str] = set()

    # -- commands ----------------------------------------------------------------------------

    def start(
        self,
        workflow: str,
        data: Mapping[str, Any] | None,
        actor: Actor,
        *,
        org: str | None = None,
        command_id: str | None = None,
        parent_id: str | None = None,
        unit: str | None = None,
    ) -> Instance:
        """Start an instance of ``workflow`` in its initial state.

        ``command_id`` makes the call idempotent: a retry with the same id returns the instance
        its first call created and writes nothing (the id is stored with the history row, in
        the same transaction). A host on another database can record the id in its own
        transaction first, then call again until it succeeds.

        Raises:
            NotFound: no such workflow.
            Forbidden: the actor may not start it, or acts for another org.
            InvalidPayload: ``data`` does not match the workflow's data fields (all errors listed).
        """
        if command_id is not None:
            done = self.store.find_command(command_id)
            if done is not None:
                return self._result_of(done, None, START)
        wf = self.registry.get(workflow)
        org = org or actor.org or ""
        if actor.org is not None and actor.org != org:
            raise Forbidden(
                f"actor {actor.id!r} of org {actor.org!r} cannot start an instance for org {org!r}",
                trigger=START,
                actor=actor.id,
                allowed=[actor.org],
            )
        start_roles = wf.definition.start.roles
        role = self._role(actor, frozenset(start_roles)) if start_roles else self._any_role(actor)
        if role is None:
            raise Forbidden(
                f"actor {actor.id!r} with roles {sorted(actor.roles)} may not start {workflow!r}; "
                f"allowed roles: {', '.join(start_roles)}",
                trigger=START,
                actor=actor.id,
                allowed=list(start_roles),
            )
        values = self._validate_data(wf, data or {})
        self._remember_definition(wf)
        now = self.clock.now()
        commit = Commit()
        instance = self._created(
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
        self.store.apply(commit)
        return instance

    def fire(
        self,
        instance_id: str,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
        command_id: str | None = None,
    ) -> Instance:
        """Fire ``trigger`` on an instance as ``actor``; returns the instance after the step.

        Checks, in order: the instance exists (and belongs to the actor's org), the trigger
        exists, it can fire from the current state, the actor has an allowed role, separation of
        duties, the payload, the reason, the guard. Then the step is written in one transaction.

        ``command_id`` makes the call idempotent: a retry with the same id returns the
        instance as that step left it and writes nothing; the same id for another trigger or
        instance is a ConcurrencyConflict naming the row it was used for.

        Raises:
            NotFound, UnknownTrigger, TransitionNotAllowed, Forbidden, InvalidPayload:
                the command was refused; nothing was written or emitted.
            ConcurrencyConflict: ``expected_version`` did not match, or another writer won.
        """
        if command_id is not None:
            done = self.store.find_command(command_id)
            if done is not None:
                return self._result_of(done, instance_id, trigger)
        fresh = False
        for attempt in range(_RETRIES):
            instance = self._load(instance_id, actor, fresh=fresh)
            if expected_version is not None and instance.version != expected_version:
                if not fresh:
                    fresh = True
                    continue
                raise ConcurrencyConflict(instance_id, expected_version, instance.version)
            wf = self._workflow_of(instance)
            now = self.clock.now()
            try:
                commit, result = self._step(
                    wf, instance, trigger, actor, payload or {}, reason, command_id, now
                )
            except CommandRefused:
                if fresh:
                    raise
                # judged against a cached row: if another process moved it, judge the fresh one
                current = self.store.load(instance_id, fresh=True)
                if current is None or current.version == instance.version:
                    raise
                fresh = True
                continue
            if instance.parent_id is not None:
                self._join(commit, result, now)
            try:
                self.store.apply(commit)
            except ConcurrencyConflict:
                # a stale cached row, or a sibling's step touched the parent first: re-read
                # everything and re-check, unless the caller's own expected version is gone
                fresh = True
                if attempt + 1 < _RETRIES:
                    continue
                raise
            return result
        raise ConcurrencyConflict(
            instance_id, expected_version, case=ConflictCase.RETRIES_EXHAUSTED
        )

    def _step(
        self,
        wf: CompiledWorkflow,
        instance: Instance,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any],
        reason: str | None,
        command_id: str | None,
        now: datetime,
    ) -> tuple[Commit, Instance]:
        candidates = wf.by_trigger.get(trigger)
        if not candidates:
            raise UnknownTrigger(wf.id, trigger, wf.definition.triggers())
        here = [t for t in candidates if instance.state in t.sources]
        if not here:
            allowed = self._triggers_from(wf, instance.state)
            sources = sorted({s for t in candidates for s in t.sources})
            raise TransitionNotAllowed(
                f"{trigger!r} cannot fire in state {instance.state!r} (only from "
                f"{', '.join(sources)}); from {instance.state!r}: "
                f"{', '.join(allowed) or 'nothing'}",
                trigger=trigger,
                state=instance.state,
                allowed=allowed,
            )
        best: _Refusal | None = None
        for t in here:
            try:
                role, values, new_data = self._check(wf, instance, t, actor, payload, reason, now)
            except _Refusal as r:
                if best is None or r.stage > best.stage:
                    best = r
                continue
            return self._commit(
                wf, instance, t, actor, role, values, new_data, reason, now, command_id
            )
        assert best is not None
        raise best.error

    def _check(
        self,
        wf: CompiledWorkflow,
        instance: Instance,
        t: CompiledTransition,
        actor: Actor,
        payload: Mapping[str, Any],
        reason: str | None,
        now: datetime,
        *,
        replay: bool = False,
        children: list[Instance] | None = None,
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """Run the checks of one candidate transition; raise _Refusal at the first that fails.

        With ``replay``, what was judged against the world at the time (roles, units,
        separation of duties, guards over children) is not judged again; the payload, the guard
        over the instance and the effects, which decide the stored state and data, are.
        """
        role = (
            self._role(actor, t.roles) if not replay else (min(actor.roles) if actor.roles else "")
        )
        if role is None:
            raise _Refusal(
                1,
                Forbidden(
                    f"actor {actor.id!r} with roles {sorted(actor.roles)} may not fire "
                    f"{t.trigger!r}; allowed roles: {', '.join(sorted(t.roles))}",
                    trigger=t.trigger,
                    actor=actor.id,
                    allowed=sorted(t.roles),
                ),
            )
        if role in wf.bound and not replay:
            units = evaluate_bound(wf, instance).get(role)
            if units is not None and actor.unit not in units:
                where = (
                    f"unit {units[0]!r}"
                    if units and wf.bound[role] is None
                    else f"units {', '.join(map(repr, units))}"
                    if units
                    else "no unit yet"
                )
                raise _Refusal(
                    1,
                    Forbidden(
                        f"actor {actor.id!r} acts for unit {actor.unit!r}; as {role!r} this "
                        f"instance is bound to {where}",
                        trigger=t.trigger,
                        actor=actor.id,
                        allowed=list(units),
                        unit=actor.unit,
                    ),
                )
        if t.spec.not_by and not replay:
            earlier = self.store.actors_of(instance.id, frozenset(t.spec.not_by))
            if actor.id in earlier:
                raise _Refusal(
                    2,
                    Forbidden(
                        f"actor {actor.id!r} fired {', '.join(t.spec.not_by)} on this instance and "
                        f"so may not fire {t.trigger!r} (separation of duties)",
                        trigger=t.trigger,
                        actor=actor.id,
                        allowed=[],
                        not_by=list(t.spec.not_by),
                    ),
                )
        values = self._validate_payload(t, payload)
        if t.spec.reason_required and not (reason and reason.strip()):
            raise _Refusal(
                4,
                InvalidPayload(
                    f"command {t.trigger!r}", [{"field": "reason", "error": "required"}]
                ),
            )
        context = self._context(wf, instance, actor, t, values, now, children=children)
        world = replay and ("children" in t.needs or "siblings" in t.needs)
        if t.guard is not None and not world:
            failed: dict[str, Any] = {}
            try:
                ok = t.guard.run(context)
            except FunctionFailed as e:
                ok = e.message
                failed = {"function_failed": e.to_dict()}
            except Exception as e:
                ok = f"error: {e}"
            if ok is not True:
                message = self._guard_message(wf, instance, actor, t, values, now)
                detail = "" if ok is False else f" ({ok})"
                raise _Refusal(
                    5,
                    TransitionNotAllowed(
                        f"{t.trigger!r} refused in state {instance.state!r}: {message}{detail}",
                        trigger=t.trigger,
                        state=instance.state,
                        allowed=self._triggers_from(wf, instance.state),
                        guard=t.guard.source,
                        **failed,
                    ),
                )
        new_data = dict(instance.data)
        errors: list[dict[str, Any]] = []
        for name, expr in t.sets:
            try:
                value = _jsonable(expr.run(context))
                if value is None:
                    if wf.definition.data[name].required:
                        errors.append({"field": name, "error": "a required field cannot be unset"})
                    new_data.pop(name, None)
                    continue
                new_data[name] = wf.field_adapters[name].dump_python(
                    wf.field_adapters[name].validate_python(value), mode="json"
                )
            except ValidationError as e:
                errors += field_errors(e, f"{name}")
            except Exception as e:
                errors.append({"field": name, "error": f"{expr.source}: {e}"})
        if errors:
            raise _Refusal(4, InvalidPayload(f"effects of {t.trigger!r}", errors))
        return role, values, new_data

    def _commit(
        self,
        wf: CompiledWorkflow,
        instance: Instance,
        t: CompiledTransition,
        actor: Actor,
        role: str,
        values: dict[str, Any],
        new_data: dict[str, Any],
        reason: str | None,
        now: datetime,
        command_id: str | None,
        *,
        replay: bool = False,
    ) -> tuple[Commit, Instance]:
        cursor = Cursor(instance.state)
        wf.move(cursor, t)
        moved = cursor.state != instance.state
        new = Instance(
            instance.id,
            instance.workflow,
            instance.workflow_version,
            instance.definition_hash,
            instance.org,
            cursor.state,
            new_data,
            instance.version + 1,
            instance.created_at,
            now,
            now if moved else instance.entered_at,
            cursor.state in wf.final_states,
            instance.due_at,
            False if moved else instance.overdue,
            instance.parent_id,
            instance.unit,
            children_version=instance.children_version,
            due_basis=instance.due_basis,
        )
        if moved or cursor.state in wf.deadline_at:
            new.due_at, new.due_basis = self._due(wf, new, new.entered_at)
        reschedule = moved or new.due_at != instance.due_at
        if reschedule and not moved and new.overdue and (new.due_at is None or new.due_at > now):
            new.overdue = False  # the deadline moved past now (an approved extension)
        entry = HistoryEntry(
            instance_id=instance.id,
            seq=new.version,
            workflow=wf.id,
            workflow_version=wf.definition.version,
            definition_hash=wf.hash,
            trigger=t.trigger,
            source=instance.state,
            target=new.state,
            actor=actor.to_dict(),
            role=role,
            reason=reason,
            payload=values,
            visibility=t.spec.visibility,
            occurred_at=iso(now),
            recorded_at=iso(datetime.now(UTC)),
            command_id=command_id,
            prev_hash=instance.head_hash,
            parent_id=instance.parent_id,
            deadline=_deadline_set(new, instance),
        ).sealed()
        new.head_hash = entry.hash
        commit = Commit(
            updates=[(new, instance.version)],
            history=[entry],
            events=events_for(wf, new, entry, t, deployment=self.deployment),
        )
        if reschedule:
            commit.clear_timers.append(new.id)
            commit.timers.extend(self._timers_for(wf, new))
        now_readers = access.readers(wf, new)
        if now_readers != access.readers(wf, instance):
            commit.readers[new.id] = now_readers
        if t.spec.spawn is not None:
            self._spawn(commit, wf, instance, new, t, actor, role, values, now)
        if t.children_set and not replay:
            self._set_children(commit, wf, new, t, actor, role, values, now)
        return commit, new

    # -- reads -------------------------------------------------------------------------------

    def get(self, instance_id: str, actor: Actor | None = None, *, fresh: bool = False) -> Instance:
        """The instance as stored; as ``actor`` sees it when one is given (its ``read:`` rules:
        only public fields below the ``data`` level).

        Raises:
            NotFound: no such instance, another org's, or one the actor may not read (the same
                answer for all three).
        """
        instance, level = self._read(instance_id, actor, fresh=fresh)
        return access.redact_instance(self._workflow_of(instance), instance, level)

    def history(self, instance_id: str, actor: Actor | None = None) -> list[HistoryEntry]:
        """The instance's history, oldest first; the first entry is its creation. As ``actor``
        sees it when one is given: internal rows only at the ``internal`` level, payloads cut
        to public fields below ``data``.

        Raises:
            NotFound: as for :meth:`get`.
        """
        instance, level = self._read(instance_id, actor)
        rows = self.store.history(instance_id)
        return access.redact_history(self._workflow_of(instance), rows, level)

    def level(self, instance: Instance, actor: Actor | None) -> int:
        """How far ``actor`` may read ``instance``: 0 not at all, then see, data, internal."""
        if access.unscoped(actor):
            return access.INTERNAL
        assert actor is not None
        if actor.org is not None and actor.org != instance.org:
            return 0
        stored = self.store.readers([instance.id]).get(instance.id, {})
        return access.level_of(stored, actor)

    def rebuild_readers(self, instance_id: str | None = None) -> int:
        """Write the reader principals of one instance, or of all, from their definitions (for
        instances stored before read scopes existed, or after a definition's rules changed in
        place). Returns how many instances' readers were rewritten."""
        ids = [instance_id] if instance_id is not None else list(self.store.instance_ids())
        changed = 0
        for iid in ids:
            instance = self.store.load(iid, fresh=True)
            if instance is None:
                raise NotFound("instance", iid)
            levels = access.readers(self._workflow_of(instance), instance)
            if self.store.readers([iid]).get(iid, {}) != levels:
                self.store.apply(Commit(readers={iid: levels}))
                changed += 1
        return changed

    def _read(
        self, instance_id: str, actor: Actor | None, *, fresh: bool = False
    ) -> tuple[Instance, int]:
        """The instance and the level ``actor`` reads it at; NotFound when that is nothing."""
        instance = self._load(instance_id, actor, fresh=fresh)
        level = self.level(instance, actor)
        if level <= 0:
            raise NotFound("instance", instance_id)
        return instance, level

    def available(self, instance_id: str, actor: Actor) -> list[Availability]:
        """Every trigger that can fire from the current state, and whether ``actor`` may fire it.

        The guard is evaluated with an empty payload, so a guard that reads the payload is
        reported as allowed (the payload is checked when the command comes).
        """
        instance = self._load(instance_id, actor)
        wf = self._workflow_of(instance)
        now = self.clock.now()
        out: list[Availability] = []
        for t in wf.by_state.get(instance.state, ()):
            reason = None
            try:
                self._check(wf, instance, t, actor, {}, "-", now)
            except _Refusal as r:
                if r.stage == 3 or (
                    r.stage == 5 and "payload" in (t.guard.source if t.guard else "")
                ):
                    reason = None  # depends on the payload the caller will send
                elif r.stage == 4 and isinstance(r.error, InvalidPayload):
                    reason = None
                else:
                    reason = r.error.message
            out.append(Availability(t.trigger, t.target, reason is None, reason))
        return out

    def query(
        self, query: Query | None = None, *, actor: Actor | None = None, **criteria: Any
    ) -> Page:
        """Instances matching ``query`` (or keyword criteria of :class:`Query`), one page.

        With ``actor``, only what it may read (filtered by the store, before paging: a page is
        full whenever more readable instances follow), each as :meth:`get` would show it.

        Raises:
            Usage: a keyword that is not a criterion of :class:`Query`.
        """
        try:
            q = query or Query(**criteria)
        except TypeError as e:
            raise Usage(f"not a query: {e}", "criteria", allowed=list(Query.__match_args__)) from e
        scoped = not access.unscoped(actor)
        if scoped:
            assert actor is not None
            if actor.org is not None and q.org is not None and q.org != actor.org:
                return Page([], None)
            q = replace(q, org=actor.org or q.org, readers=access.principals(actor))
        items = self.store.query(q)
        cursor = None
        if len(items) == q.limit and items:
            last = items[-1]
            cursor = f"{iso(last.created_at)}|{last.id}"
        if scoped:
            assert actor is not None
            stored = self.store.readers([i.id for i in items])
            items = [
                access.redact_instance(
                    self._workflow_of(i), i, access.level_of(stored.get(i.id, {}), actor)
                )
                for i in items
            ]
        return Page(items, cursor)

    # -- audit -------------------------------------------------------------------------------

    def replay(self, instance_id: str) -> Instance:
        """Re-run the stored history through the pinned definition; returns the rebuilt instance.

        Raises:
            XieshangError: when the history cannot be re-run (a step its definition refuses).
        """
        rows = self.store.history(instance_id)
        if not rows:
            raise NotFound("instance", instance_id)
        return self._replay_rows(rows)

    def _replay_rows(self, rows: list[HistoryEntry]) -> Instance:
        first = rows[0]
        wf = self._workflow_by_hash(first.definition_hash)
        created = datetime.fromisoformat(first.occurred_at)
        instance = Instance(
            id=first.instance_id,
            workflow=first.workflow,
            workflow_version=first.workflow_version,
            definition_hash=first.definition_hash,
            org=first.actor.get("org") or "",
            state=first.target,
            data=copy_json(first.payload),
            version=1,
            created_at=created,
            updated_at=created,
            entered_at=created,
            parent_id=first.parent_id,
            head_hash=first.hash,
        )
        instance.due_at, instance.due_basis = self._due(wf, instance, created)
        _recorded_deadline(instance, first)
        for row in rows[1:]:
            now = datetime.fromisoformat(row.occurred_at)
            actor = Actor.from_dict(row.actor)
            if row.trigger == OVERDUE and row.source == instance.state == row.target:
                instance = self._overdue_step(wf, instance, now)[1]
                instance.head_hash = row.hash
                continue
            if row.trigger == PARENT_UPDATE and row.source == instance.state == row.target:
                instance = instance.copy()
                instance.version += 1
                instance.updated_at = now
                for name, value in row.payload.get("set", {}).items():
                    if value is None:
                        instance.data.pop(name, None)
                    else:
                        instance.data[name] = value
                _recorded_deadline(instance, row)
                instance.head_hash = row.hash
                continue
            if row.trigger == RECONCILE and row.source == instance.state == row.target:
                instance = instance.copy()
                instance.version += 1
                instance.updated_at = now
                _recorded_deadline(instance, row)
                instance.head_hash = row.hash
                continue
            candidates = [
                t
                for t in wf.by_trigger.get(row.trigger, ())
                if instance.state in t.sources and t.target == row.target
            ]
            if not candidates:
                raise TransitionNotAllowed(
                    f"replay of row {row.seq}: no transition {row.trigger!r} from "
                    f"{instance.state!r} to {row.target!r}",
                    trigger=row.trigger,
                    state=instance.state,
                    allowed=[],
                )
            errors: list[CommandRefused] = []
            for t in candidates:
                try:
                    _, values, new_data = self._check(
                        wf, instance, t, actor, row.payload, row.reason or "-", now, replay=True
                    )
                except _Refusal as r:
                    errors.append(r.error)
                    continue
                _, instance = self._commit(
                    wf,
                    instance,
                    t,
                    actor,
                    row.role,
                    values,
                    new_data,
                    row.reason,
                    now,
                    row.command_id,
                    replay=True,
                )
                break
            else:
                raise errors[0]
            _recorded_deadline(instance, row)
            instance.head_hash = row.hash
        return instance

    def verify(
        self,
        instance_id: str | None = None,
        *,
        checkpoints: Iterable[Mapping[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        """Check the hash chain and the replay of one instance, or of all; for all, also the
        store-wide ledger against the history and against verified ``checkpoints``.

        Returns:
            One problem dict per broken instance (``instance_id``, ``seq``, ``kind``,
            ``message``), then the ledger's findings (with their ``position``) for instances
            not already reported; an empty list when everything verifies.
        """
        ids = [instance_id] if instance_id is not None else list(self.store.instance_ids())
        problems: list[dict[str, Any]] = []
        for iid in ids:
            problem = self._verify_one(iid)
            if problem is not None:
                problems.append(problem)
        if instance_id is None:
            reported = {p["instance_id"] for p in problems}
            findings = verify_ledger(
                self.store.ledger(),
                self.store.row_hashes(),
                self.store.instance_orgs(),
                checkpoints=checkpoints,
            )
            problems += [
                f for f in findings if f["instance_id"] is None or f["instance_id"] not in reported
            ]
        return problems

    def _verify_one(self, instance_id: str) -> dict[str, Any] | None:
        def broken(seq: int | None, kind: str, message: str) -> dict[str, Any]:
            return {"instance_id": instance_id, "seq": seq, "kind": kind, "message": message}

        stored = self.store.load(instance_id, fresh=True)
        rows = self.store.history(instance_id)
        if stored is None and not rows:
            raise NotFound("instance", instance_id)
        if stored is None:
            return broken(None, "missing-instance", "history rows without an instance row")
        if not rows:
            return broken(None, "missing-history", "the instance has no history")
        prev = ""
        for expected_seq, row in enumerate(rows, start=1):
            if row.seq != expected_seq:
                kind = "removed" if row.seq > expected_seq else "reordered"
                return broken(
                    expected_seq, kind, f"row {expected_seq} expected, found row {row.seq}"
                )
            if row.prev_hash != prev:
                return broken(
                    row.seq, "reordered", f"row {row.seq} does not follow the row before it"
                )
            if row.compute_hash() != row.hash:
                return broken(row.seq, "changed", f"row {row.seq} was changed after it was written")
            prev = row.hash
        if stored.head_hash != prev or stored.version != len(rows):
            return broken(
                len(rows) + 1,
                "removed",
                f"the instance is at version {stored.version} but the history ends at "
                f"row {len(rows)}",
            )
        try:
            replayed = self._replay_rows(rows)
        except XieshangError as e:
            return broken(None, "replay-failed", e.message)
        except (ValueError, TypeError, KeyError) as e:  # a rewritten row that does not parse
            return broken(None, "replay-failed", f"a row cannot be read: {e}")
        if (replayed.state, canonical_json(replayed.data)) != (
            stored.state,
            canonical_json(stored.data),
        ):
            return broken(
                None,
                "replay-differs",
                f"replay gives state {replayed.state!r} and data "
                f"{canonical_json(replayed.data)}, the store holds {stored.state!r} and "
                f"{canonical_json(stored.data)}",
            )
        return None

    # -- helpers -----------------------------------------------------------------------------

    def _load(self, instance_id: str, actor: Actor | None, *, fresh: bool = False) -> Instance:
        instance = self.store.load(instance_id, fresh=fresh)
        if instance is None or (
            actor is not None and actor.org is not None and actor.org != instance.org
        ):
            raise NotFound("instance", instance_id)
        return instance

    def _workflow_of(self, instance: Instance) -> CompiledWorkflow:
        return self._workflow_by_hash(instance.definition_hash)

    def _workflow_by_hash(self, content_hash: str) -> CompiledWorkflow:
        wf = self.registry.by_hash(content_hash)
        if wf is not None:
            return wf
        body = self.store.load_definition(content_hash)
        if body is None:
            raise NotFound("definition", content_hash, allowed=[w.hash for w in self.registry])

        wf = compile_definition(Definition.model_validate(json.loads(body)))
        self.registry.add(wf, latest=False)
        return wf

    def _remember_definition(self, wf: CompiledWorkflow) -> None:
        if wf.hash not in self._saved_definitions:
            self.store.save_definition(
                wf.hash, wf.id, wf.definition.version, canonical_json(wf.definition.to_json())
            )
            self._saved_definitions.add(wf.hash)

    def _result_of(self, row: HistoryEntry, instance_id: str | None, trigger: str) -> Instance:
        if (instance_id is not None and row.instance_id != instance_id) or row.trigger != trigger:
            raise ConcurrencyConflict(
                row.instance_id, None, row.seq, case=ConflictCase.COMMAND_USED
            )
        rows = self.store.history(row.instance_id)[: row.seq]
        return self._replay_rows(rows)

    @staticmethod
    def _role(actor: Actor, allowed: frozenset[str]) -> str | None:
        common = actor.roles & allowed
        return min(common) if common else None

    @staticmethod
    def _any_role(actor: Actor) -> str:
        return min(actor.roles) if actor.roles else ""

    @staticmethod
    def _triggers_from(wf: CompiledWorkflow, state: str) -> list[str]:
        return sorted({t.trigger for t in wf.by_state.get(state, ())})

    def _validate_data(self, wf: CompiledWorkflow, data: Mapping[str, Any]) -> dict[str, Any]:
        merged = {
            k: copy_json(spec.default)
            for k, spec in wf.definition.data.items()
            if spec.default is not None
        }
        if not isinstance(data, Mapping):
            raise InvalidPayload(f"data of {wf.id!r}", [_not_a_mapping(data)])
        merged.update(data)
        try:
            valid = wf.data_adapter.validate_python(merged)
        except ValidationError as e:
            raise InvalidPayload(f"data of {wf.id!r}", field_errors(e)) from None
        return dict(wf.data_adapter.dump_python(valid, mode="json"))

    @staticmethod
    def _validate_payload(t: CompiledTransition, payload: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(payload, Mapping):
            error = _not_a_mapping(payload)
            raise _Refusal(3, InvalidPayload(f"payload of {t.trigger!r}", [error]))
        if t.payload is None:
            if payload:
                raise _Refusal(
                    3,
                    InvalidPayload(
                        f"payload of {t.trigger!r}",
                        [
                            {
                                "field": k,
                                "error": "not a declared field (this trigger takes no payload)",
                            }
                            for k in payload
                        ],
                    ),
                )
            return {}
        try:
            valid = t.payload.validate_python(dict(payload))
        except ValidationError as e:
            raise _Refusal(
                3, InvalidPayload(f"payload of {t.trigger!r}", field_errors(e))
            ) from None
        return dict(t.payload.dump_python(valid, mode="json"))

    def _guard_message(
        self,
        wf: CompiledWorkflow,
        instance: Instance,
        actor: Actor,
        t: CompiledTransition,
        payload: dict[str, Any],
        now: datetime,
    ) -> str:
        """The guard's message, its ``{expression}`` placeholders filled in: durations in the
        language of each part, and a placeholder that cannot be computed shown as ``?``."""
        assert t.guard is not None
        if t.spec.guard_message is None:
            return f"guard is not satisfied: {t.guard.source}"
        zh, en = t.spec.guard_message.zh, t.spec.guard_message.en
        if t.message_parts:
            context = self._full_context(wf, instance, actor, t, payload, now)
            for source, part in t.message_parts:
                try:
                    value = part.run(context)
                except Exception:
                    value = None
                token = "{" + source + "}"
                zh = zh.replace(token, _shown(value, "zh"))
                en = en.replace(token, _shown(value, "en")) if en else en
        return f"{zh} / {en}" if en else zh

    def _full_context(
        self,
        wf: CompiledWorkflow,
        instance: Instance,
        actor: Actor,
        t: CompiledTransition,
        payload: dict[str, Any],
        now: datetime,
    ) -> Any:
        """A CEL context with every name, for expressions outside the guard and effects
        (message placeholders, spawn lists), which are rare enough not to be measured."""
        probe = CompiledTransition(
            index=t.index,
            spec=t.spec,
            sources=t.sources,
            roles=t.roles,
            guard=None,
            sets=(),
            payload=None,
            needs=dict.fromkeys(_ALL_NAMES),
            uses_functions=True,
        )
        return self._context(wf, instance, actor, probe, payload, now)

    def _context(
        self,
        wf: CompiledWorkflow,
        instance: Instance,
        actor: Actor,
        t: CompiledTransition,
        payload: dict[str, Any],
        now: datetime,
        *,
        children: list[Instance] | None = None,
    ) -> Any:
        """The CEL context of one transition: only the names and members its expressions read.

        ``children`` replaces the stored children when the caller knows newer ones (a join
        checked in the same commit as the child step that completes it).
        """
        variables: dict[str, Any] = {}
        for name, members in t.needs.items():
            if name == "data":
                source = instance.data
                keys = wf.definition.data if members is None else members
                variables[name] = {k: source.get(k) for k in keys}
            elif name == "payload":
                keys = t.spec.payload if members is None else members
                variables[name] = {k: payload.get(k) for k in keys}
            elif name == "actor":
                variables[name] = {
                    "id": actor.id,
                    "roles": sorted(actor.roles),
                    "org": actor.org,
                    "unit": actor.unit,
                }
            elif name == "instance":
                variables[name] = {
                    "id": instance.id,
                    "workflow": instance.workflow,
                    "state": instance.state,
                    "version": instance.version,
                    "org": instance.org,
                    "created_at": instance.created_at,
                    "entered_at": instance.entered_at,
                    "parent_id": instance.parent_id,
                    "unit": instance.unit,
                }
            elif name == "params":
                variables[name] = wf.params
            elif name == "now":
                variables[name] = now
            elif name == "children":
                kids = children if children is not None else self._children(instance.id)
                variables[name] = [_summary(c) for c in kids]
            elif name == "siblings":
                variables[name] = (
                    [_summary(c) for c in self._children(instance.parent_id) if c.id != instance.id]
                    if instance.parent_id
                    else []
                )
        return cel.Context(variables, self._functions_of(wf) if t.uses_functions else None)

    def _calendar_of(self, wf: CompiledWorkflow) -> Calendar:
        return get_calendar(wf.definition.calendar, self.calendar)

    def _functions_of(self, wf: CompiledWorkflow) -> dict[str, Callable[..., Any]]:
        """The date functions bound to this engine's calendar (not the package tables alone)."""
        name = wf.definition.calendar
        found = self._functions.get(name)
        if found is None:
            found = self._functions[name] = date_functions(self._calendar_of(wf))
        return found

    def _due(
        self, wf: CompiledWorkflow, instance: Instance, entered: datetime
    ) -> tuple[datetime | None, str | None]:
        """The deadline of the instance's current state and its calendar basis, or Nones."""
        spec = wf.definition.states[instance.state].deadline
        if spec is None:
            return None, None
        cal = self._calendar_of(wf)
        roll = spec.roll == "next_workday"
        if spec.after is not None:
            return deadline(cal, entered, self._duration(wf, spec.after), roll=roll)
        # the calendar is tracked so that a date counted in working days (or rolled) records
        # the years it was counted on
        tracking = Tracking(cal) if isinstance(cal, CalendarChain) else None
        data = {k: instance.data.get(k) for k in wf.definition.data}
        context = cel.Context(
            {
                "data": data,
                "params": wf.params,
                "now": entered,
                "instance": {
                    "id": instance.id,
                    "state": instance.state,
                    "org": instance.org,
                    "workflow": instance.workflow,
                    "version": instance.version,
                    "created_at": instance.created_at,
                    "entered_at": entered,
                    "parent_id": instance.parent_id,
                    "unit": instance.unit,
                },
            },
            date_functions(tracking) if tracking is not None else self._functions_of(wf),
        )
        try:
            value = wf.deadline_at[instance.state].run(context)
        except Exception:
            return None, None
        if value is None:
            return None, None
        day = date.fromisoformat(str(value)[:10])
        due = due_after(
            tracking or cal,
            datetime.combine(day, datetime.min.time(), CHINA_TZ),
            parse_duration("0 days"),
            roll=roll,
        )
        return due, tracking.basis() if tracking is not None else None

    @staticmethod
    def _duration(wf: CompiledWorkflow, text: str) -> Duration:
        if text.startswith("params."):
            text = str(wf.params[text.removeprefix("params.")])
        return parse_duration(text)

    def _timers_for(self, wf: CompiledWorkflow, instance: Instance) -> list[TimerRecord]:
        """Every pending timer of the instance's current state visit."""
        if instance.final:
            return []
        cal = self._calendar_of(wf)
        out: list[TimerRecord] = []
        for spec in wf.definition.timers:
            if spec.in_ == instance.state:
                due, basis = deadline(
                    cal,
                    instance.entered_at,
                    self._duration(wf, spec.after),
                    roll=spec.roll == "next_workday",
                )
                out.append(
                    TimerRecord(
                        instance.id, "timer", spec.fire, due, instance.version, instance.org, basis
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
                ahead = self._duration(wf, spec_deadline.remind_before)
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

    # -- children ----------------------------------------------------------------------------

    def children(self, instance_id: str, actor: Actor | None = None) -> list[Instance]:
        """The child instances of an instance (one per handling unit, say), oldest first; with
        ``actor``, only the children it may read, as :meth:`get` shows them.

        Raises:
            NotFound: as for :meth:`get` (of the parent).
        """
        self._read(instance_id, actor)
        kids = self._children(instance_id)
        if access.unscoped(actor):
            return kids
        assert actor is not None
        stored = self.store.readers([k.id for k in kids])
        out: list[Instance] = []
        for k in kids:
            level = access.level_of(stored.get(k.id, {}), actor)
            if level > 0:
                out.append(access.redact_instance(self._workflow_of(k), k, level))
        return out

    def _children(self, parent_id: str | None) -> list[Instance]:
        if parent_id is None:
            return []
        return self.store.query(Query(parent_id=parent_id, limit=10_000))

    def _spawn(
        self,
        commit: Commit,
        wf: CompiledWorkflow,
        old: Instance,
        new: Instance,
        t: CompiledTransition,
        actor: Actor,
        role: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> None:
        """Start one child per element of the spawn list, in the same commit as the step."""
        spec = t.spec.spawn
        assert spec is not None and t.spawn_for_each is not None
        child_wf = self.registry.get(spec.workflow)
        self._remember_definition(child_wf)
        base = self._full_context(wf, new, actor, t, payload, now)
        try:
            items = t.spawn_for_each.run(base)
        except Exception as e:
            raise InvalidPayload(
                f"spawn of {t.trigger!r}", [{"field": "for_each", "error": str(e)}]
            ) from None
        parent_id = old.parent_id if spec.sibling else old.id
        parent_org = old.org
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items or []):
            base.add_variable("item", item)
            base.add_variable("index", index)
            try:
                data = {k: _jsonable(expr.run(base)) for k, expr in t.spawn_data}
                unit = t.spawn_bind.run(base) if t.spawn_bind is not None else None
            except Exception as e:
                errors.append({"field": f"spawn[{index}]", "error": str(e)})
                continue
            try:
                values = self._validate_data(
                    child_wf, {k: v for k, v in data.items() if v is not None}
                )
            except InvalidPayload as e:
                errors += [{**err, "field": f"spawn[{index}].{err['field']}"} for err in e.errors]
                continue
            self._created(
                commit,
                child_wf,
                values,
                actor,
                role,
                parent_org,
                now,
                parent_id=parent_id,
                unit=None if unit is None else str(unit),
            )
        if errors:
            raise InvalidPayload(f"children spawned by {t.trigger!r}", errors)

    def _set_children(
        self,
        commit: Commit,
        wf: CompiledWorkflow,
        new: Instance,
        t: CompiledTransition,
        actor: Actor,
        role: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> None:
        """Set ``children_set`` fields on every open child, in the same commit as the step:
        one ``parent_update`` history row per child that changes, its deadline recomputed."""
        context = self._full_context(wf, new, actor, t, payload, now)
        try:
            wanted = {k: _jsonable(expr.run(context)) for k, expr in t.children_set}
        except Exception as e:
            raise InvalidPayload(
                f"children_set of {t.trigger!r}", [{"field": "children_set", "error": str(e)}]
            ) from None
        for child in self._children(new.id):
            if child.final:
                continue
            child_wf = self._workflow_of(child)
            changed: dict[str, Any] = {}
            for name, value in wanted.items():
                if name not in child_wf.definition.data:
                    continue  # a child of another workflow that has no such field
                if value is not None:
                    adapter = child_wf.field_adapters[name]
                    value = adapter.dump_python(adapter.validate_python(value), mode="json")
                if child.data.get(name) != value:
                    changed[name] = value
            if not changed:
                continue
            updated = child.copy()
            updated.version += 1
            updated.updated_at = now
            for name, value in changed.items():
                if value is None:
                    updated.data.pop(name, None)
                else:
                    updated.data[name] = value
            if child.state in child_wf.deadline_at:
                updated.due_at, updated.due_basis = self._due(child_wf, updated, child.entered_at)
                if updated.overdue and updated.due_at is not None and updated.due_at > now:
                    updated.overdue = False
            entry = HistoryEntry(
                instance_id=child.id,
                seq=updated.version,
                workflow=child_wf.id,
                workflow_version=child_wf.definition.version,
                definition_hash=child.definition_hash,
                trigger=PARENT_UPDATE,
                source=child.state,
                target=child.state,
                actor=actor.to_dict(),
                role=role,
                reason=None,
                payload={"parent_id": new.id, "parent_trigger": t.trigger, "set": changed},
                visibility="public",
                occurred_at=iso(now),
                recorded_at=iso(datetime.now(UTC)),
                command_id=None,
                prev_hash=child.head_hash,
                parent_id=child.parent_id,
                deadline=_deadline_set(updated, child),
            ).sealed()
            updated.head_hash = entry.hash
            child_readers = access.readers(child_wf, updated)
            if child_readers != access.readers(child_wf, child):
                commit.readers[child.id] = child_readers
            moved = (updated.due_at, updated.overdue) != (child.due_at, child.overdue)
            commit.updates.append((updated, child.version))
            commit.history.append(entry)
            commit.events += events_for(
                child_wf,
                updated,
                entry,
                None,
                deployment=self.deployment,
                names=["instance.deadline_changed" if moved else "instance.updated"],
                extra={"due_at_before": iso(child.due_at) if child.due_at else None}
                if moved
                else None,
            )
            if moved:
                commit.clear_timers.append(child.id)
                commit.timers.extend(self._timers_for(child_wf, updated))

    def _created(
        self,
        commit: Commit,
        wf: CompiledWorkflow,
        values: dict[str, Any],
        actor: Actor,
        role: str,
        org: str,
        now: datetime,
        *,
        parent_id: str | None = None,
        unit: str | None = None,
        command_id: str | None = None,
    ) -> Instance:
        """Add a new instance to ``commit``: its row, its creation as history row 1, its
        events and the timers of its initial state."""
        instance = Instance(
            id=self._ids(),
            workflow=wf.id,
            workflow_version=wf.definition.version,
            definition_hash=wf.hash,
            org=org,
            state=wf.definition.initial_state,
            data=values,
            version=1,
            created_at=now,
            updated_at=now,
            entered_at=now,
            parent_id=parent_id,
            unit=unit,
        )
        instance.due_at, instance.due_basis = self._due(wf, instance, now)
        entry = HistoryEntry(
            instance_id=instance.id,
            seq=1,
            workflow=wf.id,
            workflow_version=wf.definition.version,
            definition_hash=wf.hash,
            trigger=START,
            source=None,
            target=instance.state,
            actor=actor.to_dict(),
            role=role,
            reason=None,
            payload=copy_json(values),
            visibility="public",
            occurred_at=iso(now),
            recorded_at=iso(datetime.now(UTC)),
            command_id=command_id,
            prev_hash="",
            parent_id=parent_id,
            deadline=_deadline_set(instance, None),
        ).sealed()
        instance.head_hash = entry.hash
        commit.inserts.append(instance)
        commit.history.append(entry)
        commit.events += events_for(wf, instance, entry, None, deployment=self.deployment)
        commit.timers += self._timers_for(wf, instance)
        commit.readers[instance.id] = access.readers(wf, instance)
        return instance

    def _join(self, commit: Commit, child: Instance, now: datetime) -> None:
        """Touch the parent; if this child step completes a join, fire it in the same commit."""
        assert child.parent_id is not None
        parent = self._load(child.parent_id, None, fresh=True)
        commit.touch.append((parent.id, parent.children_version))
        pwf = self._workflow_of(parent)
        joins = [t for t in pwf.by_state.get(parent.state, ()) if t.spec.join is not None]
        if not joins:
            return
        siblings = {c.id: c for c in self._children(parent.id)}
        siblings[child.id] = child
        for inserted in commit.inserts:
            if inserted.parent_id == parent.id:
                siblings[inserted.id] = inserted
        kids = list(siblings.values())
        for t in joins:
            if not _join_ready(t, kids):
                continue
            try:
                role, values, new_data = self._check(
                    pwf, parent, t, SYSTEM, {}, None, now, children=kids
                )
            except _Refusal:
                continue
            parent_commit, _ = self._commit(
                pwf, parent, t, SYSTEM, role, values, new_data, None, now, None
            )
            commit.updates += parent_commit.updates
            commit.history += parent_commit.history
            commit.events += parent_commit.events
            commit.timers += parent_commit.timers
            commit.clear_timers += parent_commit.clear_timers
            commit.inserts += parent_commit.inserts
            commit.readers.update(parent_commit.readers)
            return

    # -- time --------------------------------------------------------------------------------

    def use_calendar(self, calendar: CalendarChain) -> None:
        """Count working days on ``calendar`` from now on (a calendar file that was edited);
        then :meth:`reconcile_calendar` moves what was counted on the old one."""
        self.calendar = calendar
        self._functions.clear()

    def reconcile_calendar(
        self, now: datetime | None = None, *, dry_run: bool = False
    ) -> ReconcileReport:
        """Move the pending deadlines and timers of open instances that were counted on
        calendar data that has since changed (a provisional year now in the deployment's file
        or the official table): one audited ``calendar_reconcile`` row and one
        ``instance.deadline_changed`` event per instance. What already fired stays.
        """
        return reconcile(self, now, dry_run=dry_run)

    def tick(self, now: datetime | None = None, *, limit: int = 1000) -> TickReport:
        """Fire every timer due up to ``now`` (the clock's time by default).

        A timer fires its trigger as the ``system`` actor through the normal checked and audited
        command path; a deadline marks the instance overdue (one history row and one
        ``xieshang.instance.overdue`` event, once); a reminder emits an event without changing
        the instance. Safe to run from many processes at once: each timer is consumed in the
        same transaction as its effect, so it acts exactly once.
        """
        now = now or self.clock.now()
        report = TickReport()
        for timer in self.store.due_timers(now, limit):
            try:
                self._run_timer(timer, now)
                report.fired += 1
            except ConcurrencyConflict:
                report.conflicts += 1
            except (CommandRefused, NotFound) as e:
                self.store.delete_timer(timer)
                report.stale += 1
                report.refusals.append(f"{timer.instance_id} {timer.trigger}: {e.message}")
        return report

    def _run_timer(self, timer: TimerRecord, now: datetime) -> None:
        instance = self._load(timer.instance_id, None, fresh=True)
        wf = self._workflow_of(instance)
        if timer.kind == "timer":
            commit, _ = self._step(wf, instance, timer.trigger, SYSTEM, {}, None, None, now)
        elif timer.kind == "deadline":
            if instance.overdue or instance.due_at is None or instance.due_at > now:
                raise TransitionNotAllowed(
                    "the deadline moved or was already marked",
                    trigger=OVERDUE,
                    state=instance.state,
                    allowed=[],
                )
            commit, _ = self._overdue_step(wf, instance, now)
        else:
            commit = Commit(
                events=reminder_event(wf, instance, timer, now, deployment=self.deployment)
            )
        commit.consume_timers.append(timer)
        self.store.apply(commit)

    def _overdue_step(
        self, wf: CompiledWorkflow, instance: Instance, now: datetime
    ) -> tuple[Commit, Instance]:
        new = instance.copy()
        new.version += 1
        new.overdue = True
        new.updated_at = now
        entry = HistoryEntry(
            instance_id=instance.id,
            seq=new.version,
            workflow=wf.id,
            workflow_version=wf.definition.version,
            definition_hash=wf.hash,
            trigger=OVERDUE,
            source=instance.state,
            target=instance.state,
            actor=SYSTEM.to_dict(),
            role="system",
            reason=None,
            payload={"due_at": iso(instance.due_at) if instance.due_at else None},
            visibility="public",
            occurred_at=iso(now),
            recorded_at=iso(datetime.now(UTC)),
            command_id=None,
            prev_hash=instance.head_hash,
            parent_id=instance.parent_id,
        ).sealed()
        new.head_hash = entry.hash
        commit = Commit(
            updates=[(new, instance.version)],
            history=[entry],
            events=events_for(
                wf, new, entry, None, deployment=self.deployment, names=["instance.overdue"]
            ),
        )
        return commit, new


def _join_ready(t: CompiledTransition, children: list[Instance]) -> bool:
    spec = t.spec.join
    assert spec is not None
    counted = [c for c in children if c.state not in spec.ignore]
    if not counted:
        return False
    if spec.when == "all_final":
        return all(c.final for c in counted)
    if spec.when == "all_in":
        return all(c.state in spec.states for c in counted)
    return sum(c.state in spec.states for c in counted) >= (spec.count or 1)


def _summary(child: Instance) -> dict[str, Any]:
    return {
        "id": child.id,
        "workflow": child.workflow,
        "state": child.state,
        "unit": child.unit,
        "final": child.final,
        "data": child.data,
    }


def _shown(value: Any, lang: str) -> str:
    """A value in a message: a list joined, a duration in the message's language."""
    if value is None:
        return "?"
    if isinstance(value, list):
        return ("、" if lang == "zh" else ", ").join(_shown(v, lang) for v in value)
    text = str(value)
    if lang == "zh" and isinstance(value, str) and value[:1].isdigit():
        try:
            return parse_duration(value).zh
        except CalendarError:
            return text
    return text


def _deadline_set(new: Instance, old: Instance | None) -> dict[str, Any] | None:
    """What a history row records of the deadline its step set: the date, the calendar basis it
    was counted on and the provisional years in it; None when the step left it as it was."""
    if new.due_at is None:
        return None
    if old is not None and (old.due_at, old.due_basis) == (new.due_at, new.due_basis):
        return None
    out: dict[str, Any] = {"due_at": iso(new.due_at)}
    if new.due_basis is not None:
        out["basis"] = new.due_basis
        out["provisional"] = provisional_years(new.due_basis)
    return out


def _recorded_deadline(instance: Instance, row: HistoryEntry) -> None:
    """In a replay, the deadline is the one the row recorded (counted on the calendar then)."""
    if row.deadline is not None and "due_at" in row.deadline:
        instance.due_at = datetime.fromisoformat(row.deadline["due_at"])
        instance.due_basis = row.deadline.get("basis")


@dataclass
class TickReport:
    """What one tick did: timers fired, found stale, or lost to another worker."""

    fired: int = 0
    stale: int = 0
    conflicts: int = 0
    refusals: list[str] = field(default_factory=list)
