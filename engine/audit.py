"""Audit: replay a history through its pinned definition, and verify the hash chains.

A replay re-runs each transition's payload, guard over the instance and effects; the rows the
engine writes on its own (``overdue``, ``remind``, ``parent_update``, ``linked_update``,
``calendar_reconcile``, ``redact``) and an admin writes (``migrate``, ``suspend``, ``resume``,
``set_state``) carry what they changed, and are applied as recorded (a ``remind`` row changes
nothing but the version, and announces its reminder event; a ``migrate`` row switches the
definition the rows after it replay on). A row
whose payload fields were redacted is replayed with ``[redacted]`` in their place, its payload
taken as validated when written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .cascade import recorded_skips
from .checks import Refusal, check
from .commands import commit_step
from .compiler import CompiledTransition, CompiledWorkflow
from .deadlines import due, timers_for
from .definition import Definition
from .derive import event_findings, instance_findings, timer_findings
from .duties_audit import duty_findings, orphaned_duties
from .errors import (
    CommandRefused,
    ConcurrencyConflict,
    ConflictCase,
    Forbidden,
    NotFound,
    TransitionNotAllowed,
    XieshangError,
)
from .events import events_for
from .ledger import verify_ledger
from .loading import compile_definition
from .migration import MIGRATE
from .migration_replay import apply_migration
from .reconcile import RECONCILE
from .records import (
    SYSTEM,
    Actor,
    Commit,
    EventRecord,
    HistoryEntry,
    Instance,
    canonical_json,
    copy_json,
    iso,
)
from .redaction import REDACT, REDACTOR_ROLE, apply_redaction
from .repair import SET_STATE, apply_set_state
from .rows import LINKED_UPDATE, OVERDUE, PARENT_UPDATE, REMIND, recorded_deadline
from .steps import Command, overdue_step, reminder_step
from .suspension import RESUME, SUSPEND, apply_resume, apply_suspend, judge_admin_row

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["replay_rows", "result_of", "verify", "verify_one"]

# the rows an admin writes beside the definition's transitions (a workflow's own trigger of
# the same name is replayed as its transition)
ADMIN_ROWS = frozenset({MIGRATE, SUSPEND, RESUME, SET_STATE})


def replay_rows(
    engine: Engine,
    rows: list[HistoryEntry],
    *,
    unit: str | None = None,
    org: str = "",
    events: list[EventRecord] | None = None,
    warnings: list[tuple[HistoryEntry, list[dict[str, Any]] | None]] | None = None,
    after: list[tuple[HistoryEntry, dict[str, Any]]] | None = None,
) -> Instance:
    """The instance that ``rows`` (an instance's history from row 1) leave.

    Each transition's recorded role must be one the definition allows and the actor holds, and
    separation of duties must hold, as when it was fired. ``unit`` is the unit the instance is
    bound to, for rows written before a creation's row recorded it; ``org`` the instance's org,
    for a creation by an actor of no org written before its row recorded the org. ``events``,
    when given, collects the events the replayed rows announce, ``warnings`` each transition
    row with the warnings its replay raises, and ``after`` each row with the data it left (what
    a duty rule reads).

    Raises:
        Forbidden: a row's role is not allowed, or separation of duties is broken.
        XieshangError: a step its definition refuses.
    """
    first = rows[0]
    if first.seal is not None:  # rows sealed by field also record the unit of a creation
        unit = first.unit
    wf = engine._workflow_by_hash(first.definition_hash)
    created = datetime.fromisoformat(first.occurred_at)
    instance = Instance(
        id=first.instance_id,
        workflow=first.workflow,
        workflow_version=first.workflow_version,
        definition_hash=first.definition_hash,
        org=first.actor.get("org") or org,
        state=first.target,
        data=copy_json(first.payload),
        version=1,
        created_at=created,
        updated_at=created,
        entered_at=created,
        parent_id=first.parent_id,
        unit=unit,
        head_hash=first.hash,
    )
    instance.due_at, instance.due_basis = due(engine, wf, instance)
    recorded_deadline(instance, first)
    if events is not None:
        events += events_for(wf, instance, first, None, deployment=engine.deployment)
    if after is not None:
        after.append((first, copy_json(instance.data)))
    fired: dict[str, set[str]] = {}
    last_by: dict[str, tuple[int, str]] = {}  # trigger -> (seq, actor) of its latest row
    for row in rows[1:]:
        now = datetime.fromisoformat(row.occurred_at)
        actor = Actor.from_dict(row.actor)
        in_place = row.source == instance.state == row.target
        if row.trigger == OVERDUE and in_place:
            commit, instance = overdue_step(engine, wf, instance, now)
            if events is not None:
                events += commit.events
        elif row.trigger == REMIND and in_place:
            if row.role != "system" or actor != SYSTEM:
                raise Forbidden(
                    f"row {row.seq}: a reminder by {actor.id!r} as {row.role!r}; only the "
                    "system sends reminders",
                    trigger=REMIND,
                    actor=actor.id,
                    allowed=["system"],
                )
            remind_at = datetime.fromisoformat(str(row.payload.get("remind_at")))
            commit, instance = reminder_step(engine, wf, instance, remind_at, now)
            if events is not None:
                events += commit.events
        elif row.trigger == REDACT and in_place:
            if row.role != REDACTOR_ROLE or REDACTOR_ROLE not in actor.roles:
                raise Forbidden(
                    f"row {row.seq}: a redaction by {actor.id!r} as {row.role!r}; only "
                    f"{REDACTOR_ROLE!r} may redact",
                    trigger=REDACT,
                    actor=actor.id,
                    allowed=[REDACTOR_ROLE],
                )
            instance = apply_redaction(instance, row.payload, now)
        elif row.trigger in ADMIN_ROWS and row.trigger not in wf.by_trigger:
            wf, instance = _admin_row(engine, wf, instance, row, now)
        elif row.trigger in (PARENT_UPDATE, LINKED_UPDATE, RECONCILE) and in_place:
            before = instance
            instance = instance.copy()
            instance.version += 1
            instance.updated_at = now
            if row.trigger != RECONCILE:
                for name, value in row.payload.get("set", {}).items():
                    if value is None:
                        instance.data.pop(name, None)
                    else:
                        instance.data[name] = value
            recorded_deadline(instance, row)
            # a deadline moved past now lifts the overdue mark, as the update did
            lifted = instance.overdue and instance.due_at is not None and instance.due_at > now
            if row.trigger != RECONCILE and row.deadline is not None and lifted:
                instance.overdue = False
            if events is not None:
                events += _engine_row_events(engine, wf, before, instance, row)
        else:
            commit, instance = _replay_transition(
                engine, wf, instance, row, actor, now, fired, last_by
            )
            recorded_deadline(instance, row)
            if warnings is not None:
                warnings.append((row, commit.history[0].warnings))
            if events is not None:
                events += [e for e in commit.events if e.instance_id == instance.id]
            fired.setdefault(row.trigger, set()).add(str(row.actor.get("id")))
            last_by[row.trigger] = (row.seq, str(row.actor.get("id")))
        instance.head_hash = row.hash
        if after is not None:
            after.append((row, copy_json(instance.data)))
    return instance


def _admin_row(
    engine: Engine, wf: CompiledWorkflow, instance: Instance, row: HistoryEntry, now: datetime
) -> tuple[CompiledWorkflow, Instance]:
    """A ``migrate``, ``suspend``, ``resume`` or ``set_state`` row, applied as recorded after
    checking that an admin wrote it; a migration switches the definition the rows after it
    are replayed on."""
    if row.trigger == MIGRATE:
        return apply_migration(engine, instance, row, now)
    judge_admin_row(row)
    if row.trigger == SET_STATE:
        return wf, apply_set_state(wf, instance, row, now)
    if row.source != instance.state or row.target != instance.state:
        raise TransitionNotAllowed(
            f"replay of row {row.seq}: {row.trigger} moves {row.source!r} to {row.target!r}, "
            f"the instance is in {instance.state!r}",
            trigger=row.trigger,
            state=instance.state,
            allowed=[],
        )
    if row.trigger == SUSPEND:
        return wf, apply_suspend(instance, now)
    return wf, apply_resume(instance, row.payload, now, row)


def _engine_row_events(
    engine: Engine, wf: CompiledWorkflow, before: Instance, after: Instance, row: HistoryEntry
) -> list[EventRecord]:
    """The events a ``parent_update``, ``linked_update`` or ``calendar_reconcile`` row
    announced, from what it records (as :func:`xieshang.steps.data_update` and
    :mod:`xieshang.reconcile` built them)."""
    if row.trigger == RECONCILE:
        due_at = row.payload.get("due_at", {})
        extra: dict[str, Any] | None = {
            "due_at_before": due_at.get("from"),
            "due_at": due_at.get("to"),
        }
        name = "instance.deadline_changed"
    else:
        moved = (after.due_at, after.overdue) != (before.due_at, before.overdue)
        name = "instance.deadline_changed" if moved else "instance.updated"
        extra = {"due_at_before": iso(before.due_at) if before.due_at else None} if moved else None
    return events_for(wf, after, row, None, deployment=engine.deployment, names=[name], extra=extra)


def _replay_transition(
    engine: Engine,
    wf: CompiledWorkflow,
    instance: Instance,
    row: HistoryEntry,
    actor: Actor,
    now: datetime,
    fired: Mapping[str, set[str]],
    last_by: Mapping[str, tuple[int, str]],
) -> tuple[Commit, Instance]:
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
    command = Command(row.trigger, actor, row.payload, now, row.reason or "-")
    errors: list[CommandRefused] = []
    for t in candidates:
        try:
            checked = check(
                engine, wf, instance, t, command, replay=True, validated=bool(row.redacted_fields())
            )
        except Refusal as r:
            errors.append(r.error)
            continue
        _judge_role(row, t, actor, fired, last_by)
        # the row as it was written: its reason, command id and role, not the replay's
        as_written = replace(command, reason=row.reason, command_id=row.command_id)
        checked = replace(checked, command=as_written, role=row.role)
        if row.redacted_fields() or any("parent" in w.when.needs for w in t.warnings):
            # the payload its warnings may quote is gone, or they read the parent as it was:
            # they are taken as recorded
            checked = replace(checked, warnings=tuple(row.warnings or ()))
        elif skips := recorded_skips(row.warnings):
            # the children a cascade left were judged as they were then
            checked = replace(checked, warnings=(*checked.warnings, *skips))
        return commit_step(engine, checked, replay=True)
    raise errors[0]


def _judge_role(
    row: HistoryEntry,
    t: CompiledTransition,
    actor: Actor,
    fired: Mapping[str, set[str]],
    last_by: Mapping[str, tuple[int, str]],
) -> None:
    """A row's role must be one the transition allows and its actor holds, and separation of
    duties must hold over the rows before it: a loosened stored definition or a rewritten actor
    cannot pass a replay."""
    if row.role not in t.roles or row.role not in actor.roles:
        raise Forbidden(
            f"row {row.seq}: {row.trigger!r} was fired as {row.role!r} by {actor.id!r} (roles "
            f"{sorted(actor.roles)}); the definition allows {', '.join(sorted(t.roles))}",
            trigger=row.trigger,
            actor=actor.id,
            allowed=sorted(t.roles),
        )
    triggers = t.spec.not_by_triggers
    if t.spec.not_by_scope == "last":
        last = max((last_by[name] for name in triggers if name in last_by), default=None)
        barred = last is not None and last[1] == actor.id
    else:
        barred = actor.id in set().union(*(fired.get(name, set()) for name in triggers))
    if barred:
        raise Forbidden(
            f"row {row.seq}: {actor.id!r} fired {row.trigger!r} after firing "
            f"{', '.join(triggers)} (separation of duties, scope {t.spec.not_by_scope})",
            trigger=row.trigger,
            actor=actor.id,
            allowed=[],
        )


def result_of(engine: Engine, row: HistoryEntry, instance_id: str | None, trigger: str) -> Instance:
    """The instance as the command of ``row`` left it, for a retry of that command.

    Raises:
        ConcurrencyConflict: the command id was used for another instance or trigger.
    """
    if (instance_id is not None and row.instance_id != instance_id) or row.trigger != trigger:
        raise ConcurrencyConflict(row.instance_id, None, row.seq, case=ConflictCase.COMMAND_USED)
    rows = engine.store.history(row.instance_id)[: row.seq]
    stored = engine.store.load(row.instance_id)
    return replay_rows(engine, rows, unit=stored.unit if stored is not None else None)


def verify(
    engine: Engine, instance_id: str | None, checkpoints: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The problems of one instance, or of all and of the store-wide ledger (see
    :meth:`Engine.verify`)."""
    ids = [instance_id] if instance_id is not None else list(engine.store.instance_ids())
    problems: list[dict[str, Any]] = []
    for iid in ids:
        problem = verify_one(engine, iid)
        if problem is not None:
            problems.append(problem)
    if instance_id is None:
        reported = {p["instance_id"] for p in problems}
        findings = verify_ledger(
            engine.store.ledger(),
            engine.store.row_hashes(),
            engine.store.instance_orgs(),
            checkpoints=checkpoints,
        )
        problems += [
            f for f in findings if f["instance_id"] is None or f["instance_id"] not in reported
        ]
        problems += orphaned_duties(engine, set(ids))
    return problems


def verify_one(engine: Engine, instance_id: str) -> dict[str, Any] | None:
    """The first problem of one instance's chain and replay, or None when it verifies.

    Raises:
        NotFound: neither an instance row nor history rows for ``instance_id``.
    """

    def broken(seq: int | None, kind: str, message: str) -> dict[str, Any]:
        return {"instance_id": instance_id, "seq": seq, "kind": kind, "message": message}

    stored = engine.store.load(instance_id, fresh=True)
    rows = engine.store.history(instance_id)
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
            return broken(expected_seq, kind, f"row {expected_seq} expected, found row {row.seq}")
        if row.prev_hash != prev:
            return broken(row.seq, "reordered", f"row {row.seq} does not follow the row before it")
        if row.compute_hash() != row.hash:
            return broken(row.seq, "changed", f"row {row.seq} was changed after it was written")
        prev = row.hash
    if stored.head_hash != prev or stored.version != len(rows):
        return broken(
            len(rows) + 1,
            "removed",
            f"the instance is at version {stored.version} but the history ends at row {len(rows)}",
        )
    altered = _definition_altered(engine, stored.definition_hash)
    if altered is not None:
        return broken(None, "definition-altered", altered)
    announced: list[EventRecord] = []
    warned: list[tuple[HistoryEntry, list[dict[str, Any]] | None]] = []
    steps: list[tuple[HistoryEntry, dict[str, Any]]] = []
    try:
        replayed = replay_rows(
            engine,
            rows,
            unit=stored.unit,
            org=stored.org,
            events=announced,
            warnings=warned,
            after=steps if engine.duties is not None else None,
        )
    except Forbidden as e:
        return broken(None, "role-not-allowed", e.message)
    except XieshangError as e:
        return broken(None, "replay-failed", e.message)
    except (ValueError, TypeError, KeyError) as e:  # a rewritten row that does not parse
        return broken(None, "replay-failed", f"a row cannot be read: {e}")
    replayed_data, stored_data = canonical_json(replayed.data), canonical_json(stored.data)
    if (replayed.state, replayed_data) != (stored.state, stored_data):
        return broken(
            None,
            "replay-differs",
            f"replay gives state {replayed.state!r} and data {replayed_data}, the store holds "
            f"{stored.state!r} and {stored_data}",
        )
    for row, replayed_warnings in warned:
        if row.warnings != replayed_warnings:
            return broken(
                row.seq,
                "warnings-differ",
                f"row {row.seq} records the warnings {canonical_json(row.warnings)}; its replay "
                f"gives {canonical_json(replayed_warnings)}",
            )
    org_known = "org" in rows[0].actor
    for kind, message in instance_findings(stored, replayed, org_known=org_known):
        return broken(None, kind, message)
    for seq, kind, message in event_findings(announced, engine.store.outbox(instance_id), rows):
        return broken(seq, kind, message)
    expected = timers_for(engine, engine._workflow_of(replayed), replayed)
    for kind, message in timer_findings(engine.store.timers_of(instance_id), expected):
        return broken(None, kind, message)
    for seq, kind, message in duty_findings(engine, stored.org, instance_id, steps):
        return broken(seq, kind, message)
    return None


def _definition_altered(engine: Engine, content_hash: str) -> str | None:
    """Why the stored body of a definition is not the one its hash names, or None."""
    body = engine.store.load_definition(content_hash)
    if body is None:
        return None
    return _body_mismatch(content_hash, body)


@lru_cache(maxsize=256)
def _body_mismatch(content_hash: str, body: str) -> str | None:
    try:
        found = compile_definition(Definition.model_validate(json.loads(body))).hash
    except (XieshangError, ValueError) as e:
        return f"the stored definition {content_hash[:12]} cannot be read: {e}"
    if found != content_hash:
        return (
            f"the stored definition {content_hash[:12]} was altered: its body hashes to "
            f"{found[:12]}"
        )
    return None
