"""The runtime: start, fire, available, and the reads over a store.

A command is checked in a fixed order (instance, trigger, state, role, separation of duties,
payload, reason, guard), moved by the compiled machine, and written as one :class:`Commit`:
the instance row, one history row, its outbox events. A refused command writes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import cel
from pydantic import ValidationError

from .calendar import (
    CHINA_TZ,
    Duration,
    add_months,
    add_workdays,
    due_after,
    get_calendar,
    parse_duration,
)
from .compiler import CompiledTransition, CompiledWorkflow, Cursor
from .definition import Definition
from .errors import (
    CommandRefused,
    ConcurrencyConflict,
    ConflictCase,
    Forbidden,
    InvalidPayload,
    NotFound,
    TransitionNotAllowed,
    UnknownTrigger,
    Usage,
    XieshangError,
)
from .events import events_for, reminder_event
from .loading import compile_definition
from .ports import Clock, Query, Store, SystemClock
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
from .schema_types import field_errors

__all__ = ["Availability", "Engine", "Page", "TickReport"]

START = "start"
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
    """

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock | None = None,
        *,
        ids: Callable[[], str] | None = None,
        deployment: str = "default",
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock or SystemClock()
        self._ids = ids or (lambda: uuid.uuid4().hex)
        self.deployment = deployment
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
        bound = instance.unit is not None and role in wf.definition.bound_roles
        if bound and actor.unit != instance.unit and not replay:
            raise _Refusal(
                1,
                Forbidden(
                    f"actor {actor.id!r} acts for unit {actor.unit!r}; this instance is bound to "
                    f"unit {instance.unit!r}",
                    trigger=t.trigger,
                    actor=actor.id,
                    allowed=[str(instance.unit)],
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
            try:
                ok = t.guard.run(context)
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
        )
        if moved or cursor.state in wf.deadline_at:
            new.due_at = self._due(wf, new, new.entered_at)
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
        if t.spec.spawn is not None:
            self._spawn(commit, wf, instance, new, t, actor, role, values, now)
        return commit, new

    # -- reads -------------------------------------------------------------------------------

    def get(self, instance_id: str, actor: Actor | None = None) -> Instance:
        """The instance as stored. Raises NotFound (also for another org's instance)."""
        return self._load(instance_id, actor)

    def history(self, instance_id: str, actor: Actor | None = None) -> list[HistoryEntry]:
        """The instance's history, oldest first; the first entry is its creation."""
        self._load(instance_id, actor)
        return self.store.history(instance_id)

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

    def query(self, query: Query | None = None, **criteria: Any) -> Page:
        """Instances matching ``query`` (or keyword criteria of :class:`Query`), one page.

        Raises:
            Usage: a keyword that is not a criterion of :class:`Query`.
        """
        try:
            q = query or Query(**criteria)
        except TypeError as e:
            raise Usage(f"not a query: {e}", "criteria", allowed=list(Query.__match_args__)) from e
        items = self.store.query(q)
        cursor = None
        if len(items) == q.limit and items:
            last = items[-1]
            cursor = f"{iso(last.created_at)}|{last.id}"
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
        instance.due_at = self._due(wf, instance, created)
        for row in rows[1:]:
            now = datetime.fromisoformat(row.occurred_at)
            actor = Actor.from_dict(row.actor)
            if row.trigger == OVERDUE and row.source == instance.state == row.target:
                instance = self._overdue_step(wf, instance, now)[1]
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
                )
                break
            else:
                raise errors[0]
            instance.head_hash = row.hash
        return instance

    def verify(self, instance_id: str | None = None) -> list[dict[str, Any]]:
        """Check the hash chain and the replay of one instance, or of all.

        Returns:
            One problem dict per broken instance (``instance_id``, ``seq``, ``kind``,
            ``message``); an empty list when everything verifies.
        """
        ids = [instance_id] if instance_id is not None else list(self.store.instance_ids())
        problems: list[dict[str, Any]] = []
        for iid in ids:
            problem = self._verify_one(iid)
            if problem is not None:
                problems.append(problem)
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
        """The guard's message, its ``{expression}`` placeholders filled in."""
        assert t.guard is not None
        if t.spec.guard_message is None:
            return f"guard is not satisfied: {t.guard.source}"
        message = t.spec.guard_message.zh
        if t.spec.guard_message.en:
            message += f" / {t.spec.guard_message.en}"
        if not t.message_parts:
            return message
        context = self._full_context(wf, instance, actor, t, payload, now)
        for source, part in t.message_parts:
            try:
                value = part.run(context)
            except Exception:
                continue
            shown = "、".join(map(str, value)) if isinstance(value, list) else str(value)
            message = message.replace("{" + source + "}", shown)
        return message

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
        return cel.Context(variables, wf.functions if t.uses_functions else None)

    def _due(self, wf: CompiledWorkflow, instance: Instance, entered: datetime) -> datetime | None:
        """The deadline of the instance's current state, or None."""
        spec = wf.definition.states[instance.state].deadline
        if spec is None:
            return None
        cal = get_calendar(wf.definition.calendar)
        roll = spec.roll == "next_workday"
        if spec.after is not None:
            return due_after(cal, entered, self._duration(wf, spec.after), roll=roll)
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
            wf.functions,
        )
        try:
            value = wf.deadline_at[instance.state].run(context)
        except Exception:
            return None
        if value is None:
            return None
        day = date.fromisoformat(str(value)[:10])
        return due_after(
            cal,
            datetime.combine(day, datetime.min.time(), CHINA_TZ),
            parse_duration("0 days"),
            roll=roll,
        )

    @staticmethod
    def _duration(wf: CompiledWorkflow, text: str) -> Duration:
        if text.startswith("params."):
            text = str(wf.params[text.removeprefix("params.")])
        return parse_duration(text)

    def _timers_for(self, wf: CompiledWorkflow, instance: Instance) -> list[TimerRecord]:
        """Every pending timer of the instance's current state visit."""
        if instance.final:
            return []
        cal = get_calendar(wf.definition.calendar)
        out: list[TimerRecord] = []
        for spec in wf.definition.timers:
            if spec.in_ == instance.state:
                due = due_after(
                    cal,
                    instance.entered_at,
                    self._duration(wf, spec.after),
                    roll=spec.roll == "next_workday",
                )
                out.append(
                    TimerRecord(
                        instance.id, "timer", spec.fire, due, instance.version, instance.org
                    )
                )
        deadline = wf.definition.states[instance.state].deadline
        if instance.due_at is not None and deadline is not None and not instance.overdue:
            out.append(
                TimerRecord(
                    instance.id,
                    "deadline",
                    OVERDUE,
                    instance.due_at,
                    instance.version,
                    instance.org,
                )
            )
            if deadline.remind_before is not None:
                before = self._duration(wf, deadline.remind_before)
                remind_at = _minus(cal, instance.due_at, before)
                if remind_at > instance.entered_at:
                    out.append(
                        TimerRecord(
                            instance.id,
                            "reminder",
                            "remind",
                            remind_at,
                            instance.version,
                            instance.org,
                        )
                    )
        return out

    # -- children ----------------------------------------------------------------------------

    def children(self, instance_id: str, actor: Actor | None = None) -> list[Instance]:
        """The child instances of an instance (one per handling unit, say), oldest first."""
        self._load(instance_id, actor)
        return self._children(instance_id)

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
        instance.due_at = self._due(wf, instance, now)
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
        ).sealed()
        instance.head_hash = entry.hash
        commit.inserts.append(instance)
        commit.history.append(entry)
        commit.events += events_for(wf, instance, entry, None, deployment=self.deployment)
        commit.timers += self._timers_for(wf, instance)
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
            return

    # -- time --------------------------------------------------------------------------------

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


def _minus(cal: Any, moment: datetime, duration: Duration) -> datetime:
    if duration.unit in ("hours", "minutes"):
        return moment - timedelta(**{duration.unit: duration.amount})
    day = moment.astimezone(CHINA_TZ).date()
    if duration.unit == "working_days":
        day = add_workdays(cal, day, -duration.amount)
    elif duration.unit == "months":
        day = add_months(day, -duration.amount)
    else:
        day = day - timedelta(days=duration.amount * (7 if duration.unit == "weeks" else 1))
    return datetime.combine(day, moment.astimezone(CHINA_TZ).timetz())


@dataclass
class TickReport:
    """What one tick did: timers fired, found stale, or lost to another worker."""

    fired: int = 0
    stale: int = 0
    conflicts: int = 0
    refusals: list[str] = field(default_factory=list)
